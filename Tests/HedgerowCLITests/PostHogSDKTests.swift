import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowRuntime
import HedgerowStore
import Logging
import Testing

/// PostHog's Python SDK, installed from PyPI into a throwaway virtual environment, captures events
/// against a running `hedgerow serve`; the test then reads them back from the event store.
@Suite("PostHog SDK", .serialized)
struct PostHogSDKTests {
    static let sdkVersion = "7.91.1"

    static func run(_ executable: String, _ arguments: [String]) throws -> CLITests.Output {
        try CLITests.execute(executable, arguments)
    }

    /// A virtual environment with the SDK, made once per test run.
    static let venv: Result<String, TestFailure> = {
        let directory = NSTemporaryDirectory() + "hedgerow-posthog-sdk-\(ProcessInfo.processInfo.processIdentifier)"
        do {
            let made = try run("/usr/bin/env", ["python3", "-m", "venv", directory])
            guard made.status == 0 else { return .failure(TestFailure("python3 -m venv failed: \(made.stderr)")) }
            let installed = try run(directory + "/bin/pip", ["install", "-q", "--disable-pip-version-check", "posthog==\(sdkVersion)"])
            guard installed.status == 0 else { return .failure(TestFailure("pip install posthog failed: \(installed.stderr)")) }
            return .success(directory)
        } catch {
            return .failure(TestFailure("cannot run python3: \(error)"))
        }
    }()

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("sdk/posthog_sdk_capture.py").path
    }

    @Test(
        "posthog-python captures, batches and gzips events that Hedgerow stores with their fields, also with capture_mode v1",
        arguments: CLITests.Backend.available)
    func pythonSDK(backend: CLITests.Backend) async throws {
        let venv = try Self.venv.get()
        let sandbox = try CLITests.Sandbox.make(backend)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        var token = ""
        let server = try await CLITests.withServer(sandbox) { port in
            let key =
                (try? String(contentsOfFile: sandbox.directory + "/initial-api-key", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let (_, me) = try CLITests.curl(["-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)/api/users/@me/"])
            token = me["team"]?["api_token"]?.stringValue ?? ""
            let captured = try Self.run(venv + "/bin/python", [Self.scriptPath, "http://127.0.0.1:\(port)", token])
            #expect(captured.status == 0, "SDK script failed: \(captured.stderr)")
            #expect(captured.stdout.contains("ok"))
        }
        #expect(server.status == 0)
        #expect(token.hasPrefix("phc_"))

        var configuration = try HedgerowConfiguration.fromEnvironment(sandbox.environment)
        configuration.bootstrapOnEmptyDatabase = false
        var logger = Logger(label: "sdk-test")
        logger.logLevel = .critical
        let events = try await withDatabase(configuration, logger: logger) { database in
            let team = try await database.read { try await $0.first("SELECT id FROM teams ORDER BY id LIMIT 1")?.int("id") } ?? 0
            var all: [Event] = []
            let query = EventQuery(
                teamID: team, field: .insertedAt, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max))
            for try await batch in SQLEventStore(database: database).batches(query, batchSize: 100) { all += batch }
            return all
        }
        #expect(events.count == 210)
        // Capture v1: every event once, $lib from the PostHog-Sdk-Info header, sentinels as properties.
        for compression in ["none", "gzip", "deflate"] {
            #expect(events.filter { $0.event == "sdk v1 \(compression)" }.count == 20, "v1 \(compression)")
        }
        let v1 = try #require(events.first { $0.event == "sdk v1 gzip" })
        let v1Properties = try JSONParser.parse(v1.properties)
        #expect(v1Properties["$lib"] == "posthog-python" && v1Properties["$lib_version"] == .string(Self.sdkVersion))
        #expect(v1Properties["$session_id"] == "session-1" && v1Properties["$set"] == .object(["seen_v1": true]))
        #expect(events.filter { $0.event == "sdk plain" }.count == 120)
        #expect(events.filter { $0.event == "sdk gzip" }.count == 29)
        let fixed = try #require(events.first { $0.event == "sdk fixed" })
        #expect(fixed.uuid == "01900000-0000-7000-8000-000000000001")
        #expect(fixed.distinctID == "fixed-user")
        // The SDK sends sent_at with the batch: the timestamp is corrected by (server now − sent_at), a few ms at most.
        #expect(abs(fixed.timestamp.microseconds - 1_706_933_106_000_000) < 5_000_000)
        let plain = try #require(events.first { $0.event == "sdk plain" })
        let properties = try JSONParser.parse(plain.properties)
        #expect(properties["$set"] == .object(["plan": "pro"]))
        #expect(properties["$lib"] == "posthog-python")
        #expect(properties["index"] != nil)
        #expect(Set(events.map(\.uuid)).count == 210)
    }
}
