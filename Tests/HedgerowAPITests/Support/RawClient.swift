import Foundation
import HedgerowTestSupport

/// Python over a real socket, for what an HTTP client library will not send: half-sent bodies,
/// headers that never end, connections held open.
enum RawClient {
    /// Runs `script` with the server's port and `arguments`; what it printed, trimmed. On a thread of
    /// its own: blocking the few threads of Swift's pool would starve the server under test.
    static func run(_ script: String, port: Int, _ arguments: [String]) async throws -> String {
        let python = ProcessInfo.processInfo.environment["HEDGEROW_TEST_PYTHON"] ?? "python3"
        let result = try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try ReferenceTools.run(python, ["-c", script, String(port)] + arguments) }) }
                .start()
        }
        return String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
