// EngineConfigError.swift: the one error type for engine configurations the engine rejects.

/// An invalid engine configuration (GCC-PHAT settings, pipeline settings), with a clear
/// one-line message; thrown by `GCCPHAT.init` and `TDEPipeline.init`.
public struct EngineConfigError: Error, CustomStringConvertible, Equatable {
    /// The message, one line.
    public let description: String
    /// Creates an error with `message`.
    public init(_ message: String) { description = message }
}
