import CALSA
import Foundation

/// Capture PCMs ALSA knows about: sound cards and the PCM names from the ALSA configuration
/// (`snd_device_name_hint`), for `tded --list-devices`.
public enum DeviceList {
    /// One capture-capable PCM.
    public struct Entry: Equatable, Sendable {
        /// Name to put in `capture.device`.
        public var name: String
        /// ALSA's description (may span lines).
        public var description: String
    }

    /// Sound cards as `(index, short name, long name)`.
    public static func cards() -> [(Int, String, String)] {
        var out: [(Int, String, String)] = []
        var card: Int32 = -1
        while snd_card_next(&card) >= 0 && card >= 0 {
            var name: UnsafeMutablePointer<CChar>?
            var long: UnsafeMutablePointer<CChar>?
            snd_card_get_name(card, &name)
            snd_card_get_longname(card, &long)
            out.append((Int(card), name.map { String(cString: $0) } ?? "?", long.map { String(cString: $0) } ?? "?"))
            free(name); free(long)
        }
        return out
    }

    /// PCMs usable for capture (IOID unset or "Input").
    public static func capturePCMs() -> [Entry] {
        var hints: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        guard snd_device_name_hint(-1, "pcm", &hints) >= 0, let list = hints else { return [] }
        defer { snd_device_name_free_hint(list) }
        var out: [Entry] = []
        var i = 0
        while let h = list[i] {
            i += 1
            func get(_ id: String) -> String? {
                guard let p = snd_device_name_get_hint(h, id) else { return nil }
                defer { free(p) }
                return String(cString: p)
            }
            let ioid = get("IOID")
            if let io = ioid, io != "Input" { continue }
            guard let name = get("NAME") else { continue }
            out.append(Entry(name: name, description: get("DESC") ?? ""))
        }
        return out
    }

    /// The listing printed by `tded --list-devices`.
    public static func report() -> String {
        var s = ""
        let c = cards()
        if c.isEmpty {
            s += "Sound cards: none found\n"
        } else {
            s += "Sound cards:\n"
            for (i, n, l) in c { s += "  card \(i): \(n) - \(l)   (e.g. device = \"plughw:\(i),0\")\n" }
        }
        let p = capturePCMs()
        s += "Capture PCMs (use one as capture.device):\n"
        if p.isEmpty { s += "  none\n" }
        for e in p {
            let desc = e.description.split(separator: "\n").joined(separator: " / ")
            s += "  \(e.name)" + (desc.isEmpty ? "" : "    \(desc)") + "\n"
        }
        return s
    }
}
