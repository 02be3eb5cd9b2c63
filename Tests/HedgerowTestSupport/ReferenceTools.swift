import Foundation

/// The reference implementations the formats are checked against: the codecs' own command-line
/// tools from Debian and pyarrow from PyPI (in the test virtualenv `scripts/s3-test-server venv` makes).
public enum ReferenceTools {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: String
    }

    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static func run(
        _ executable: String, _ arguments: [String], input: Data? = nil, environment: [String: String]? = nil
    ) throws -> Output {
        let output = try ChildProcess.run(
            executable, arguments, environment: environment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } },
            input: input)
        return Output(status: output.status, stdout: output.stdout, stderr: String(decoding: output.stderr, as: UTF8.self))
    }

    /// The virtualenv's python (pyarrow, duckdb, moto), made on first use.
    public static let python: Result<String, Failure> = {
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
    public static func python(_ program: String, arguments: [String] = [], input: Data? = nil) throws -> Data {
        let output = try run(try python.get(), ["-c", program] + arguments, input: input)
        guard output.status == 0 else { throw Failure("python failed: \(output.stderr)") }
        return output.stdout
    }

    public static func temporaryFile(_ bytes: [UInt8], suffix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-\(UUID().uuidString)\(suffix)")
        try Data(bytes).write(to: url)
        return url
    }
}
