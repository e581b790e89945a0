// InputFiles.swift: opening an input path (WAV, model) with errors that say what is wrong.
import Foundation

/// A one-line problem with an input path (the message names the problem, callers prefix the path).
public struct InputFileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Checks before reading a file given on the command line or in the config.
public enum InputFiles {
    /// Throws unless `path` names a regular file this process can open for reading; returns its
    /// size in bytes. The error says which: no such file, symlink loop, permission denied, a
    /// directory, a device or FIFO (never "permission denied?" for a file that is not one).
    @discardableResult
    public static func checkRegularFile(_ path: String) throws -> Int {
        guard !path.isEmpty else { throw InputFileError("empty path") }
        var st = stat()
        guard stat(path, &st) == 0 else { throw InputFileError(describe(errno)) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw InputFileError("is a directory, not a file")
        case S_IFCHR: throw InputFileError("not a regular file (a character device)")
        case S_IFBLK: throw InputFileError("not a regular file (a block device)")
        case S_IFIFO: throw InputFileError("not a regular file (a FIFO)")
        case S_IFSOCK: throw InputFileError("not a regular file (a socket)")
        default: throw InputFileError("not a regular file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw InputFileError("cannot open: \(describe(errno))") }
        close(fd)
        return Int(st.st_size)
    }

    /// A short description of an `open`/`stat` errno.
    public static func describe(_ e: Int32) -> String {
        switch e {
        case ENOENT: return "no such file"
        case ELOOP: return "too many levels of symbolic links (a symlink loop?)"
        case EACCES, EPERM: return "permission denied"
        case ENOTDIR: return "a component of the path is not a directory"
        case ENAMETOOLONG: return "file name too long"
        default: return String(cString: strerror(e))
        }
    }
}
