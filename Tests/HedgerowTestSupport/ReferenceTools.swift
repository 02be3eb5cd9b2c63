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

    private static let launchLock = NSLock()

    /// Starts `process`, one launch at a time in this test process.
    public static func launch(_ process: Process) throws {
        try launchLock.withLock { try process.run() }
    }

    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static func run(
        _ executable: String, _ arguments: [String], input: Data? = nil, environment: [String: String]? = nil
    ) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe()
        let err = Pipe()
        let inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        // Foundation's Process.run on Linux has crashed (SIGSEGV in its memcpy) when several tests
        // launched processes at once; launches are serialised, the runs themselves are not.
        try launch(process)
        if let input {
            let handle = inPipe.fileHandleForWriting
            DispatchQueue.global().async {
                handle.write(input)
                try? handle.close()
            }
        }
        // stderr is drained beside stdout so neither pipe can fill up and stall the child.
        let errorData = LockedData()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errorData.set(err.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: stdout, stderr: String(decoding: errorData.get(), as: UTF8.self))
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

/// A value one thread writes and another reads after a `DispatchGroup.wait()`.
final class LockedData: @unchecked Sendable {
    // Safe: every access holds `lock`.
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    func get() -> Data { lock.withLock { data } }
}
