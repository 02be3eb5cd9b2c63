import Foundation

/// Python over a real socket, for what an HTTP client library will not send: half-sent bodies,
/// headers that never end, connections held open.
package enum RawClient {
    /// What every script may call: `status(s, wait=20)`, the status line the server answered on
    /// socket `s` within `wait` seconds, or "closed".
    package static let prelude = #"""
        import socket

        def status(s, wait=20):
            s.settimeout(wait)
            answer = b""
            try:
                while b"\r\n" not in answer:
                    data = s.recv(4096)
                    if not data:
                        break
                    answer += data
            except OSError:
                pass
            return answer.split(b"\r\n")[0].decode() if answer else "closed"

        """#

    /// Runs `script` with the server's port and `arguments`; what it printed, trimmed. On a thread of
    /// its own: blocking the few threads of Swift's pool would starve the server under test.
    package static func run(_ script: String, port: Int, _ arguments: [String]) async throws -> String {
        let python = ProcessInfo.processInfo.environment["HEDGEROW_TEST_PYTHON"] ?? "python3"
        let result = try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try ReferenceTools.run(python, ["-c", prelude + script, String(port)] + arguments) })
            }
            .start()
        }
        let printed = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // A script that failed prints nothing: its error is the answer, so that an assertion shows it.
        return printed.isEmpty ? result.stderr.trimmingCharacters(in: .whitespacesAndNewlines) : printed
    }
}
