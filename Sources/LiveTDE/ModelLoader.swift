// ModelLoader.swift: finding and reading the learned encoder's `.safetensors` file.
import Engine
import Foundation

/// A model file that could not be found or read; `description` is one line.
public struct ModelLoaderError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Locates and loads learned-encoder models.
///
/// Lookup order for the model file:
/// 1. an explicit path (`--model PATH`, or `engine.model` in the config); if given it must
///    exist, there is no silent fallback;
/// 2. `$TDED_MODEL`;
/// 3. `models/tded-stream-v1.safetensors` under each ancestor directory of the running
///    executable (so a build inside the repository finds the shipped model), then
///    `share/tded/models/tded-stream-v1.safetensors` beside the executable's `bin/` (where
///    `make install PREFIX=...` puts it), then under the current directory, then
///    `/usr/share/tded/models/tded-stream-v1.safetensors`.
public enum ModelLoader {
    /// The shipped model's path relative to the repository (or install) root.
    public static let defaultRelativePath = "models/tded-stream-v1.safetensors"
    /// Files larger than this are refused before reading (the shipped model is ~1 MB).
    public static let maxFileSize = 1 << 30

    /// Candidate paths in lookup order, for the given environment (see the type's doc).
    /// An explicit path, when present, is the only candidate.
    public static func candidates(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                                  executable: String? = executablePath(),
                                  currentDirectory: String = FileManager.default.currentDirectoryPath,
                                  kind: Kind = .encoder) -> [String] {
        if let e = explicit, !e.isEmpty { return [e] }
        // `relative` under the repository (an ancestor of the executable) or the current
        // directory; `share/tded/relative` under the install prefix (`PREFIX/bin/tded` looks in
        // `PREFIX/share/tded/models/`, as `make install` lays it out); `/usr/share/tded/relative`.
        let relative = kind.relativePath, installed = "share/tded/" + relative, system = "/usr/share/tded/" + relative
        var out: [String] = []
        if let env = environment[kind.environmentKey], !env.isEmpty { out.append(env) }
        if let exe = executable {
            let bin = URL(fileURLWithPath: exe).deletingLastPathComponent().standardizedFileURL
            var dir = bin
            while true {
                out.append(dir.appendingPathComponent(relative).path)
                let up = dir.deletingLastPathComponent().standardizedFileURL
                if up.path == dir.path { break }
                dir = up
            }
            out.append(bin.deletingLastPathComponent().appendingPathComponent(installed).standardizedFileURL.path)
        }
        out.append(URL(fileURLWithPath: currentDirectory).appendingPathComponent(relative).standardizedFileURL.path)
        out.append(system)
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    /// The running executable (resolved through `/proc/self/exe` on Linux).
    public static func executablePath() -> String? {
        let p = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        if p != "/proc/self/exe" { return p }
        return CommandLine.arguments.first.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    }

    /// The two kinds of model file tded reads.
    public enum Kind: Sendable {
        /// The learned encoder (`--method learned`; docs/encoder-spec.md).
        case encoder
        /// The learned pooled-GCC weighting for one estimate over a whole clip
        /// (`--whole --pooling learned`, rectangular windows; docs/gccmask-spec.md).
        case gccMask
        /// The learned pooled-GCC weighting for per-update (live) estimates (Hann windows).
        case gccMaskLive

        /// The shipped file relative to the repository (or `PREFIX/share/tded`, or `/usr/share/tded`).
        public var relativePath: String {
            switch self {
            case .encoder: return ModelLoader.defaultRelativePath
            case .gccMask: return ModelLoader.gccMaskRelativePath
            case .gccMaskLive: return ModelLoader.gccMaskLiveRelativePath
            }
        }
        /// Environment variable naming the file.
        public var environmentKey: String {
            switch self {
            case .encoder: return "TDED_MODEL"
            case .gccMask, .gccMaskLive: return "TDED_POOLING_MODEL"
            }
        }
        var how: String {
            switch self {
            case .encoder: return "no learned model found: set --model PATH, engine.model or TDED_MODEL"
            case .gccMask: return "no learned pooling model found: set --pooling-model PATH, engine.pooling_model or TDED_POOLING_MODEL"
            case .gccMaskLive:
                return "no learned pooling model for per-update estimates (Hann windows) found: set --pooling-model PATH, engine.pooling_model or TDED_POOLING_MODEL"
            }
        }
    }

    /// The shipped learned pooling model relative to the repository (or install) root.
    public static let gccMaskRelativePath = "models/tded-gccmask-v10.safetensors"
    /// The shipped live (per-update, Hann windows) learned pooling model, likewise.
    public static let gccMaskLiveRelativePath = "models/tded-gccmask-live-v2.safetensors"

    /// The first existing candidate; throws naming where it looked when none exists. An
    /// explicit path, or the kind's environment variable when set, is returned as given even
    /// when no such file exists: loading it then says what is wrong with it (a mistyped
    /// `$TDED_POOLING_MODEL` used to be skipped in silence for the shipped file).
    public static func resolve(explicit: String?, kind: Kind = .encoder,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        // An explicit path is loaded as given: `load` then says exactly what is wrong with it.
        if let e = explicit, !e.isEmpty { return e }
        if let e = environment[kind.environmentKey], !e.isEmpty { return e }
        let c = candidates(explicit: explicit, environment: environment, kind: kind)
        for p in c where FileManager.default.fileExists(atPath: p) { return p }
        throw ModelLoaderError("\(kind.how), or install \(kind.relativePath) (looked in \(c.count) places, e.g. \(c.last!))")
    }

    /// Reads and validates the model at `path`; errors name the file.
    public static func load(path: String) throws -> EncoderModel {
        let file = try readFile(path: path)
        do {
            return try EncoderModel(file: file)
        } catch let e as EncoderModelError {
            throw ModelLoaderError("\(path): \(e.description)")
        }
    }

    /// Reads and validates the learned pooling model at `path` (its networks, one or a model
    /// set's members, in increasing `minSpan` order); errors name the file.
    ///
    /// A file read once is kept (`GccMaskModel` is immutable) and handed out again while its
    /// identity and modification time are unchanged, so `tded analyze` on thousands of clips
    /// reads and checksums the model once, not per file (that was about 10 % of its CPU time on
    /// 72-ms clips). A replaced or edited file is read, checked and cached afresh; a file that
    /// fails is never cached.
    public static func loadGccMask(path: String) throws -> [GccMaskModel] {
        let stamp = FileStamp(path: path)
        if let st = stamp, let hit = gccMaskCache.get(path: path, stamp: st) { return hit }
        let file = try readFile(path: path)
        let models: [GccMaskModel]
        do {
            models = try GccMaskModel.members(file: file)
        } catch let e as GccMaskModelError {
            throw ModelLoaderError("\(path): \(e.description)")
        }
        // Stamped before reading: a file changed while it was read gets a new stamp, so a stale
        // entry is never served.
        if let st = stamp { gccMaskCache.put(path: path, stamp: st, models) }
        return models
    }

    /// What identifies a file's contents cheaply: device, inode, size and modification time
    /// (nanoseconds). nil when `stat` fails (the load then reports why).
    struct FileStamp: Equatable {
        let dev: UInt64, ino: UInt64, size: Int64, sec: Int, nsec: Int
        init?(path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            dev = UInt64(st.st_dev); ino = UInt64(st.st_ino); size = Int64(st.st_size)
            sec = Int(st.st_mtim.tv_sec); nsec = Int(st.st_mtim.tv_nsec)
        }
    }

    /// The loaded pooling-model files (a handful at most: one per path a process uses).
    final class ModelCache<Value>: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [String: (FileStamp, Value)] = [:]
        func get(path: String, stamp: FileStamp) -> Value? {
            lock.lock(); defer { lock.unlock() }
            guard let (s, v) = entries[path], s == stamp else { return nil }
            return v
        }
        func put(path: String, stamp: FileStamp, _ value: Value) {
            lock.lock(); defer { lock.unlock() }
            if entries.count >= 16 { entries.removeAll() }
            entries[path] = (stamp, value)
        }
    }

    static let gccMaskCache = ModelCache<[GccMaskModel]>()

    /// Resolves (see `candidates`, `Kind.gccMask`) and loads the learned pooling model.
    public static func loadGccMask(explicit: String?, kind: Kind = .gccMask) throws -> (models: [GccMaskModel], path: String) {
        let p = try resolve(explicit: explicit, kind: kind)
        return (try loadGccMask(path: p), p)
    }

    /// The checked container of the file at `path` (size, readability, safetensors layout, checksum).
    static func readFile(path: String) throws -> SafetensorsFile {
        let size: Int
        do { size = try InputFiles.checkRegularFile(path) } catch let e as InputFileError {
            throw ModelLoaderError("model file \(path): \(e.description == "is a directory, not a file" ? "is a directory" : e.description)")
        }
        guard size <= maxFileSize else {
            throw ModelLoaderError("model file \(path): \(size) bytes is larger than the \(maxFileSize)-byte limit")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ModelLoaderError("model file \(path): cannot read it (\(error.localizedDescription))")
        }
        let bytes = [UInt8](data)
        let file: SafetensorsFile
        do { file = try SafetensorsFile(bytes: bytes) } catch let e as SafetensorsError {
            throw ModelLoaderError("\(path): \(EncoderModelError.container(e).description)")
        }
        try verifyChecksum(file, path: path)
        return file
    }

    /// Metadata key holding the SHA-256 (hex) of the file's tensor data, i.e. every byte after
    /// the JSON header (written by `train/tded_train/export.py`).
    public static let checksumKey = "tded_data_sha256"

    /// Where the warning for a model without a checksum goes (stderr by default).
    nonisolated(unsafe) public static var warn: (String) -> Void = { msg in
        FileHandle.standardError.write(Data("tded: warning: \(msg)\n".utf8))
    }

    /// Checks `checksumKey` against the tensor data: a mismatch (bit flips, truncation, edits)
    /// refuses the model; a file without the key loads with one warning (older exports).
    static func verifyChecksum(_ file: SafetensorsFile, path: String) throws {
        guard let expected = file.metadata[checksumKey] else {
            warn("model file \(path) has no \(checksumKey) checksum; corrupted weights cannot be detected (re-export it, or run python3 -m tded_train.export --add-checksum FILE)")
            return
        }
        let b = file.bytes
        var n = 0
        for i in 0..<8 { n |= Int(b[i]) << (8 * i) }
        let actual = SHA256.hex(b[(8 + n)...])
        guard actual == expected.lowercased() else {
            throw ModelLoaderError("model file \(path): tensor data checksum mismatch (\(checksumKey) says \(expected.prefix(12))..., the data hashes to \(actual.prefix(12))...): the file is corrupted")
        }
    }

    /// Resolves (see `candidates`) and loads a model; returns it with the path it came from.
    public static func loadModel(explicit: String?) throws -> (model: EncoderModel, path: String) {
        let p = try resolve(explicit: explicit)
        return (try load(path: p), p)
    }
}
