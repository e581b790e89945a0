/// Server-Sent Events framing (the `text/event-stream` format browsers read with `EventSource`).
public enum SSE {
    /// One event: an optional `event:` name, then one `data:` field per line of `data`, then a
    /// blank line. Carriage returns and newlines in `data` start new `data:` fields, so no
    /// input can end the event early or inject a field.
    public static func event(_ name: String? = nil, data: String) -> String {
        var s = ""
        if let n = name { s += "event: " + n.filter { $0 != "\n" && $0 != "\r" } + "\n" }
        for part in data.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
            s += "data: " + part + "\n"
        }
        return s + "\n"
    }

    /// The reconnection delay hint for the browser, milliseconds.
    public static func retry(milliseconds: Int) -> String { "retry: \(milliseconds)\n\n" }
}

/// A `--listen` address: `HOST:PORT`, `[IPv6]:PORT`, or just `PORT` (then 127.0.0.1).
public struct ListenAddress: Equatable, Sendable, CustomStringConvertible {
    /// Host or IP literal to bind.
    public var host: String
    /// TCP port (0 = any free port).
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) { self.host = host; self.port = port }

    /// Parses `spec`; nil when it is not one of the accepted forms.
    public init?(_ spec: String) {
        var host = "127.0.0.1", portText = Substring(spec)
        if spec.hasPrefix("[") {
            guard let close = spec.firstIndex(of: "]"), spec[spec.index(after: close)...].hasPrefix(":") else { return nil }
            host = String(spec[spec.index(after: spec.startIndex)..<close])
            portText = spec[spec.index(close, offsetBy: 2)...]
        } else if let colon = spec.lastIndex(of: ":") {
            host = String(spec[..<colon])
            portText = spec[spec.index(after: colon)...]
            if host.contains(":") { return nil }  // a bare IPv6 literal needs brackets
        }
        guard !host.isEmpty, let p = Int(portText), (0...65535).contains(p) else { return nil }
        self.host = host
        self.port = p
    }

    /// True for 127.0.0.0/8, ::1 and `localhost`.
    public var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }

    /// `HOST:PORT` (IPv6 in brackets).
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
