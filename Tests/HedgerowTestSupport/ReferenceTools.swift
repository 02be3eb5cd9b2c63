import Foundation

/// The reference implementations the formats are checked against: the codecs' own command-line
/// tools from Debian and pyarrow from PyPI (in the test virtualenv `scripts/s3-test-server venv` makes).
package enum ReferenceTools {
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
        package init(_ description: String) { self.description = description }
    }

    package struct Output: Sendable {
        package var status: Int32
        package var stdout: Data
        package var stderr: String
    }

    package static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    package static func run(
        _ executable: String, _ arguments: [String], input: Data? = nil, environment: [String: String]? = nil
    ) throws -> Output {
        let output = try ChildProcess.run(
            executable, arguments, environment: environment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } },
            input: input)
        return Output(status: output.status, stdout: output.stdout, stderr: String(decoding: output.stderr, as: UTF8.self))
    }

    /// The virtualenv's python (pyarrow, duckdb, moto), made on first use.
    package static let python: Result<String, Failure> = {
        if let python = ProcessInfo.processInfo.environment["HEDGEROW_TEST_PYTHON"] { return .success(python) }
        do {
            let made = try run(packageRoot.appendingPathComponent("scripts/s3-test-server").path, ["venv"])
            guard made.status == 0 else { return .failure(Failure("scripts/s3-test-server venv failed: \(made.stderr)")) }
            let directory = String(decoding: made.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return .success(directory + "/bin/python")
        } catch {
            return .failure(Failure("cannot make the test virtualenv: \(error)"))
        }
    }()

    /// Runs a python program with the virtualenv's python; its stdout.
    package static func python(_ program: String, arguments: [String] = [], input: Data? = nil) throws -> Data {
        let output = try run(try python.get(), ["-c", program] + arguments, input: input)
        guard output.status == 0 else { throw Failure("python failed: \(output.stderr)") }
        return output.stdout
    }

    package static func temporaryFile(_ bytes: [UInt8], suffix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-\(UUID().uuidString)\(suffix)")
        try Data(bytes).write(to: url)
        return url
    }
}
