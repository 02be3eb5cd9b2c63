import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowRuntime
import HedgerowS3
import HedgerowStore
import HedgerowTestSupport
import Logging
import Testing

/// The `hedgerow` binary as a user runs it: one-shot commands, and `serve` on a real port.
@Suite("Command line", .serialized)
struct CLITests {
    enum Backend: String, CaseIterable, Sendable {
        case sqlite, postgres

        static var available: [Backend] {
            ProcessInfo.processInfo.environment["HEDGEROW_TEST_DATABASE_URL"]?.isEmpty == false ? [.sqlite, .postgres] : [.sqlite]
        }
    }

    /// A data directory and the environment that points the CLI at a fresh database.
    struct Sandbox {
        let directory: String
        var environment: [String: String]

        static func make(_ backend: Backend) throws -> Sandbox {
            let directory = NSTemporaryDirectory() + "hedgerow-cli-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var environment = ProcessInfo.processInfo.environment
            environment["HEDGEROW_DATA_DIR"] = directory
            environment["HEDGEROW_LOG_LEVEL"] = "debug"
            environment["HEDGEROW_ENGINE_POLL_SECONDS"] = "0.2"
            // The tests' destinations (PostgreSQL, moto) listen on loopback, which is denied by default.
            environment["HEDGEROW_DESTINATION_ALLOW_NETWORKS"] = "127.0.0.0/8,::1/128"
            environment["HEDGEROW_DATABASE_URL"] = nil
            if backend == .postgres, let url = environment["HEDGEROW_TEST_DATABASE_URL"] {
                let schema = "cli_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
                _ = try CLITests.psql(url, "CREATE SCHEMA \(schema)")
                environment["HEDGEROW_DATABASE_URL"] = url + (url.contains("?") ? "&" : "?") + "search_path=\(schema)"
            }
            return Sandbox(directory: directory, environment: environment)
        }
    }

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func binaryDirectory() -> String {
        // The test bundle sits next to the products in .build/<configuration>/.
        var url = URL(fileURLWithPath: CommandLine.arguments[0])
        while !FileManager.default.isExecutableFile(atPath: url.deletingLastPathComponent().appendingPathComponent("hedgerow").path),
            url.pathComponents.count > 1
        {
            url.deleteLastPathComponent()
        }
        return url.deletingLastPathComponent().path
    }

    static func run(_ arguments: [String], environment: [String: String], input: String? = nil) throws -> Output {
        try execute(binaryDirectory() + "/hedgerow", arguments, environment: environment, input: input)
    }

    /// Runs a program to its end and returns what it printed.
    static func execute(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: String? = nil
    ) throws -> Output {
        let output = try ChildProcess.run(executable, arguments, environment: environment, input: input.map { Data($0.utf8) })
        return Output(
            status: output.status, stdout: String(decoding: output.stdout, as: UTF8.self),
            stderr: String(decoding: output.stderr, as: UTF8.self))
    }

    static func psql(_ url: String, _ sql: String) throws -> String {
        let output = try ChildProcess.run("psql", [url.replacingOccurrences(of: "?sslmode=disable", with: ""), "-qAtc", sql])
        return String(decoding: output.stdout, as: UTF8.self)
    }

    /// `curl` against the live server: status code and body.
    static func curl(_ arguments: [String]) throws -> (Int, JSONValue) {
        let output = try ChildProcess.run("curl", ["-s", "-w", "\n%{http_code}"] + arguments)
        let text = String(decoding: output.stdout, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let body = lines.dropLast().joined(separator: "\n")
        return (status, (try? JSONParser.parse(body)) ?? .null)
    }

    static func freePort() -> Int { Int.random(in: 20_000..<40_000) }
    /// Where a launched server's metrics listener is (the port after its API port).
    static func metricsPort(of port: Int) -> Int { port + 1 }

    /// Starts `hedgerow serve`, waits until it answers, runs `body`, then stops it with SIGTERM and
    /// returns what it printed and its exit status.
    struct Launched {
        let process: ChildProcess
        let port: Int
        let outPath: String
        let errPath: String
    }

    /// Starts `hedgerow serve` and waits until it answers `/_readyz` (nil when it never does). A
    /// port that was free when chosen can be taken before the server binds it (an outgoing
    /// connection's ephemeral port): then another port is tried, three in all. A start that never
    /// answers is tried once more (a loaded CI machine once left a PostgreSQL connection unanswered
    /// for the whole wait, with no error); two such starts fail the test.
    static func launch(_ sandbox: Sandbox) async throws -> Launched? {
        var portsTaken = 0
        var unanswered: [String] = []
        while true {
            switch try await launchOnce(sandbox) {
            case .ready(let launched): return launched
            case .failed: return nil
            case .portTaken:
                portsTaken += 1
                if portsTaken == 3 {
                    Issue.record("hedgerow serve found no free port in three tries")
                    return nil
                }
            case .unanswered(let log):
                unanswered.append(log)
                if unanswered.count == 2 {
                    Issue.record(
                        "hedgerow serve did not answer /_readyz within 30 s, twice; the end of each log:\n\(unanswered.joined(separator: "\n---\n"))"
                    )
                    return nil
                }
                FileHandle.standardError.write(
                    Data("hedgerow serve did not answer within 30 s; starting it again. Its log:\n\(log)\n".utf8))
            }
        }
    }

    enum LaunchOutcome {
        case ready(Launched)
        case portTaken
        case failed
        case unanswered(String)
    }

    static func launchOnce(_ sandbox: Sandbox) async throws -> LaunchOutcome {
        let port = freePort()
        var environment = sandbox.environment
        environment["HEDGEROW_METRICS_ADDRESS"] = environment["HEDGEROW_METRICS_ADDRESS"] ?? "127.0.0.1:\(metricsPort(of: port))"
        let outPath = sandbox.directory + "/serve-\(port).out"
        let errPath = sandbox.directory + "/serve-\(port).err"
        let process = try ChildProcess(
            binaryDirectory() + "/hedgerow", ["serve", "--port", String(port)], environment: environment,
            stdout: .file(outPath), stderr: .file(errPath))
        // Up to 30 s: the whole suite runs in parallel on two cores, and a restart after kill -9 recovers the WAL.
        for _ in 0..<600 {
            if (try? curl(["http://127.0.0.1:\(port)/_readyz"]))?.0 == 200 {
                return .ready(Launched(process: process, port: port, outPath: outPath, errPath: errPath))
            }
            if !process.isRunning {
                let log = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
                if log.contains("Address already in use") { return .portTaken }
                Issue.record("hedgerow serve stopped before it answered /_readyz; the end of its log:\n\(log.suffix(3000))")
                return .failed
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.signal(SIGKILL)
        await process.exited()
        let log = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return .unanswered(String(log.suffix(3000)))
    }

    /// Starts `hedgerow serve`, waits until it answers, runs `body`, then stops it with SIGTERM and
    /// returns what it printed and its exit status.
    static func withServer(
        _ sandbox: Sandbox, _ body: (Int) async throws -> Void
    ) async throws -> Output {
        guard let launched = try await launch(sandbox) else {
            Issue.record("server did not become ready")
            return Output(status: -1, stdout: "", stderr: "")
        }
        let process = launched.process
        var failure: (any Error)?
        do { try await body(launched.port) } catch { failure = error }
        process.signal(SIGTERM)
        // A server that does not stop within 15 s is a failure, not a hang of the whole suite.
        var waited = 0
        while process.isRunning, waited < 300 {
            try? await Task.sleep(for: .milliseconds(50))
            waited += 1
        }
        let stopped = !process.isRunning
        if !stopped { process.signal(SIGKILL) }
        let status = await process.exited()
        #expect(stopped, "the server did not stop within 15 s of SIGTERM")
        let output = Output(
            status: status,
            stdout: (try? String(contentsOfFile: launched.outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: launched.errPath, encoding: .utf8)) ?? "")
        if let failure { throw failure }
        return output
    }

    @Test("serve: the first start prints the initial key once and writes it 0600; SIGTERM stops it cleanly", arguments: Backend.available)
    func firstStartPrintsKeyOnce(backend: Backend) async throws {
        let sandbox = try Sandbox.make(backend)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        var key = ""
        let first = try await Self.withServer(sandbox) { port in
            key =
                (try? String(contentsOfFile: sandbox.directory + "/initial-api-key", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let (status, body) = try Self.curl(["-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)/api/organizations/"])
            #expect(status == 200)
            #expect(body["count"] == 1)
            #expect(body["results"]?.arrayValue?.first?["name"] == "Default organization")
            // /metrics is served on its own loopback listener, not on the API's port.
            let (metricsStatus, _) = try Self.curl(["http://127.0.0.1:\(Self.metricsPort(of: port))/metrics"])
            #expect(metricsStatus == 200)
            let (publicStatus, publicBody) = try Self.curl(["http://127.0.0.1:\(port)/metrics"])
            #expect(publicStatus == 404 && publicBody["type"] == "invalid_request")
        }
        #expect(first.status == 0, "exit status \(first.status): \(first.stderr)")
        #expect(first.stdout.contains(key))
        #expect(first.stdout.contains("curl -H \"Authorization: Bearer \(key)\""))
        let attributes = try FileManager.default.attributesOfItem(atPath: sandbox.directory + "/initial-api-key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // The key is printed on stdout for the operator, never written to the log.
        #expect(!first.stderr.contains(key))

        let second = try await Self.withServer(sandbox) { port in
            let (status, _) = try Self.curl(["http://127.0.0.1:\(port)/api/organizations/?personal_api_key=\(key)"])
            #expect(status == 200)
        }
        #expect(second.status == 0)
        #expect(!second.stdout.contains("phx_"))
        #expect(!second.stderr.contains(key))
        #expect(second.stderr.contains("path=/api/organizations/"))
    }

    @Test("serve: a secret-key file that exists but cannot be read stops the server, and is not replaced")
    func unreadableSecretKeyStopsTheServer() async throws {
        let sandbox = try Sandbox.make(.sqlite)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        // A directory where the key file belongs: unreadable as a file even for root.
        let keyPath = sandbox.directory + "/secret-key"
        try FileManager.default.createDirectory(atPath: keyPath, withIntermediateDirectories: true)
        var environment = sandbox.environment
        environment["HEDGEROW_SECRET_KEY"] = nil
        let result = try Self.run(["serve", "--port", String(Self.freePort())], environment: environment)
        #expect(result.status != 0)
        #expect(result.stderr.contains("exists but cannot be read"), "\(result.stderr)")
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: keyPath, isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    @Test("users, keys and members commands work together with the API", arguments: Backend.available)
    func accountCommands(backend: Backend) async throws {
        let sandbox = try Sandbox.make(backend)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        var environment = sandbox.environment
        environment["HEDGEROW_LOG_LEVEL"] = "error"
        #expect(try Self.run(["migrate"], environment: environment).status == 0)
        // First start on the empty database creates the admin and the default organization.
        _ = try await Self.withServer(sandbox) { _ in }
        // The password comes from standard input, never from the command line (the process list shows that).
        let created = try Self.run(
            ["users", "create", "--email", "Bob@Example.com", "--password-stdin", "--first-name", "Bob"], environment: environment,
            input: "hunter2\n")
        #expect(created.status == 0, "\(created.stderr)")
        let noPassword = try Self.run(["users", "create", "--email", "eve@example.com", "--password-stdin"], environment: environment)
        #expect(noPassword.status != 0 && noPassword.stderr.contains("standard input holds no password"), "\(noPassword.stderr)")
        let twice = try Self.run(
            ["users", "create", "--email", "eve@example.com", "--password", "x", "--password-stdin"], environment: environment, input: "y\n"
        )
        #expect(twice.status != 0 && twice.stderr.contains("at most one of --password, --password-stdin and --prompt-password"))
        #expect(created.stdout.contains("bob@example.com"))
        let duplicate = try Self.run(["users", "create", "--email", "bob@example.com"], environment: environment)
        #expect(duplicate.status != 0)
        #expect(duplicate.stderr.contains("already exists"))

        let keyRun = try Self.run(
            ["keys", "create", "--email", "bob@example.com", "--scopes", "organization:read"], environment: environment)
        #expect(keyRun.status == 0, "\(keyRun.stderr)")
        let lines = keyRun.stdout.split(separator: "\n")
        #expect(lines.count == 1)
        let bobKey = String(lines.first ?? "")
        #expect(bobKey.hasPrefix("phx_") && bobKey.count == 47)

        let invalid = try Self.run(["keys", "create", "--email", "bob@example.com", "--scopes", "nope:read"], environment: environment)
        #expect(invalid.status != 0)
        #expect(invalid.stderr.contains("Invalid scope: nope:read"))

        let server = try await Self.withServer(sandbox) { port in
            let admin =
                (try? String(contentsOfFile: sandbox.directory + "/initial-api-key", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let (_, adminOrgs) = try Self.curl(["-H", "Authorization: Bearer \(admin)", "http://127.0.0.1:\(port)/api/organizations/"])
            let orgID = adminOrgs["results"]?.arrayValue?.first?["id"]?.stringValue ?? ""
            let (_, before) = try Self.curl(["-H", "Authorization: Bearer \(bobKey)", "http://127.0.0.1:\(port)/api/organizations/"])
            #expect(before["count"] == 0)
            // The CLI writes while the server runs (SQLite: another process on the same file).
            let added = try Self.run(
                ["members", "add", "--organization", orgID, "--email", "bob@example.com", "--level", "8"], environment: environment)
            #expect(added.status == 0, "\(added.stderr)")
            let (_, after) = try Self.curl(["-H", "Authorization: Bearer \(bobKey)", "http://127.0.0.1:\(port)/api/organizations/"])
            #expect(after["count"] == 1)
            #expect(after["results"]?.arrayValue?.first?["membership_level"] == 8)
            let (status, _) = try Self.curl([
                "-X", "PATCH", "-H", "Authorization: Bearer \(bobKey)", "-H", "Content-Type: application/json",
                "-d", "{\"name\":\"x\"}", "http://127.0.0.1:\(port)/api/organizations/\(orgID)/",
            ])
            #expect(status == 403)
        }
        #expect(server.status == 0)
        #expect(!server.stderr.contains(bobKey))

        let badLevel = try Self.run(
            ["members", "add", "--organization", UUID().uuidString, "--email", "bob@example.com", "--level", "3"], environment: environment)
        #expect(badLevel.status != 0)
        let unscoped = try Self.run(["keys", "create", "--email", "bob@example.com", "--scopes", ""], environment: environment)
        #expect(unscoped.status == 0)
    }

    @Test(
        "two servers on one database: a key narrowed, then deleted, through one stops working on the other within one second",
        arguments: Backend.available)
    func revocationAcrossProcesses(backend: Backend) async throws {
        let sandbox = try Sandbox.make(backend)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        var environment = sandbox.environment
        environment["HEDGEROW_LOG_LEVEL"] = "error"
        _ = try await Self.withServer(sandbox) { _ in }
        #expect(try Self.run(["users", "create", "--email", "carol@example.com"], environment: environment).status == 0)
        let readKey = try Self.run(
            ["keys", "create", "--email", "carol@example.com", "--label", "reader", "--scopes", "organization:read,project:read"],
            environment: environment
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let fullKey = try Self.run(["keys", "create", "--email", "carol@example.com", "--label", "full"], environment: environment)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let admin =
            (try? String(contentsOfFile: sandbox.directory + "/initial-api-key", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""

        /// Asks `port` for the organization with `key` every 20 ms until the answer is `status`;
        /// returns the seconds that took, nil when it never came within five seconds.
        func secondsUntil(_ status: Int, port: Int, key: String, organization: String) async throws -> Double? {
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(5) {
                let (answer, _) = try Self.curl([
                    "-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)/api/organizations/\(organization)/",
                ])
                if answer == status {
                    let elapsed = ContinuousClock.now - start
                    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }

        _ = try await Self.withServer(sandbox) { first in
            _ = try await Self.withServer(sandbox) { second in
                let (_, organizations) = try Self.curl([
                    "-H", "Authorization: Bearer \(admin)", "http://127.0.0.1:\(first)/api/organizations/",
                ])
                let organization = organizations["results"]?.arrayValue?.first?["id"]?.stringValue ?? ""
                #expect(
                    try Self.run(
                        ["members", "add", "--organization", organization, "--email", "carol@example.com", "--level", "1"],
                        environment: environment
                    ).status == 0)
                // The first server authenticates the reader key (and keeps it in memory).
                #expect(try await secondsUntil(200, port: first, key: readKey, organization: organization) != nil)
                let (_, keys) = try Self.curl([
                    "-H", "Authorization: Bearer \(fullKey)", "http://127.0.0.1:\(second)/api/personal_api_keys/",
                ])
                let readerID = keys.arrayValue?.first(where: { $0["label"] == "reader" })?["id"]?.stringValue ?? ""
                #expect(!readerID.isEmpty)

                let (narrowed, _) = try Self.curl([
                    "-X", "PATCH", "-H", "Authorization: Bearer \(fullKey)", "-H", "Content-Type: application/json",
                    "-d", "{\"scopes\":[\"project:read\"]}", "http://127.0.0.1:\(second)/api/personal_api_keys/\(readerID)/",
                ])
                #expect(narrowed == 200)
                let forbidden = try await secondsUntil(403, port: first, key: readKey, organization: organization)
                #expect(forbidden.map { $0 < 1 } == true, "narrowed key still granted on the other server after \(forbidden ?? 5) s")

                let (deleted, _) = try Self.curl([
                    "-X", "DELETE", "-H", "Authorization: Bearer \(fullKey)",
                    "http://127.0.0.1:\(second)/api/personal_api_keys/\(readerID)/",
                ])
                #expect(deleted == 204)
                let refused = try await secondsUntil(401, port: first, key: readKey, organization: organization)
                #expect(refused.map { $0 < 1 } == true, "deleted key still accepted by the other server after \(refused ?? 5) s")
            }
        }
    }

    @Test(
        "serve runs the export engine: a NoOp backfill completes; secrets sent to a refused type never reach the log",
        arguments: Backend.available)
    func serveRunsTheEngine(backend: Backend) async throws {
        let sandbox = try Sandbox.make(backend)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        let secret = "AKIA-NOT-FOR-LOGS-\(UUID().uuidString)"
        let output = try await Self.withServer(sandbox) { port in
            let key =
                (try? String(contentsOfFile: sandbox.directory + "/initial-api-key", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let auth = ["-H", "Authorization: Bearer \(key)", "-H", "Content-Type: application/json"]
            let (_, me) = try Self.curl(auth + ["http://127.0.0.1:\(port)/api/users/@me/"])
            let token = me["team"]?["api_token"]?.stringValue ?? ""
            let team = me["team"]?["id"]?.description ?? ""
            let base = "http://127.0.0.1:\(port)/api/environments/\(team)/batch_exports/"
            let hour: Int64 = 3_600_000_000
            let now = Timestamp.now().microseconds
            let start = Timestamp(microseconds: (now / hour - 3) * hour)
            let end = Timestamp(microseconds: (now / hour - 1) * hour)
            let events = (0..<3).map { index in
                JSONValue.object([
                    "event": .string("e\(index)"), "distinct_id": "u",
                    "timestamp": .string(Timestamp(microseconds: start.microseconds + Int64(index) * 1_800_000_000).iso8601),
                ])
            }
            let (captured, _) = try Self.curl([
                "-X", "POST", "-d", JSONWriter.string(.object(["api_key": .string(token), "batch": .array(events)])),
                "http://127.0.0.1:\(port)/batch/",
            ])
            #expect(captured == 200)
            let (created, export) = try Self.curl(
                auth + ["-d", #"{"name": "noop", "interval": "hour", "destination": {"type": "NoOp", "config": {}}}"#, base])
            #expect(created == 201)
            let id = export["id"]?.stringValue ?? ""
            let (_, backfill) = try Self.curl(
                auth + [
                    "-d", JSONWriter.string(.object(["start_at": .string(start.iso8601), "end_at": .string(end.iso8601)])),
                    base + "\(id)/backfills/",
                ])
            let backfillID = backfill["backfill_id"]?.stringValue ?? ""
            var status = ""
            var detail = JSONValue.null
            for _ in 0..<100 where status != "Completed" {
                try await Task.sleep(for: .milliseconds(100))
                (_, detail) = try Self.curl(auth + [base + "\(id)/backfills/\(backfillID)/"])
                status = detail["status"]?.stringValue ?? ""
            }
            #expect(status == "Completed", "\(detail)")
            #expect(detail["total_records_count"] == 3)
            let (refused, _) = try Self.curl(
                auth + [
                    "-d",
                    #"{"name": "rs", "interval": "hour", "destination": {"type": "Redshift", "config": {"host": "h", "user": "u", "password": "\#(secret)", "database": "d", "properties_data_type": "json"}}}"#,
                    base,
                ])
            #expect(refused == 400)
            // An accepted destination with secrets: stored sealed, never shown, never logged.
            let (accepted, warehouse) = try Self.curl(
                auth + [
                    "-d",
                    #"{"name": "pg", "interval": "hour", "destination": {"type": "Postgres", "config": {"host": "db.invalid", "user": "loader", "password": "\#(secret)", "database": "dw"}}}"#,
                    base,
                ])
            #expect(accepted == 201)
            let exportID = warehouse["id"]?.stringValue ?? ""
            #expect(!JSONWriter.string(warehouse).contains(secret))
            let (_, shown) = try Self.curl(auth + [base + "\(exportID)/"])
            #expect(!JSONWriter.string(shown).contains(secret))
            // A new port needs the credentials again (a stored password follows no change of address).
            let (_, patched) = try Self.curl(
                ["-X", "PATCH"] + auth + [
                    "-d",
                    #"{"destination": {"type": "Postgres", "config": {"port": 6543, "user": "loader", "password": "\#(secret)"}}}"#,
                    base + "\(exportID)/",
                ])
            #expect(patched["destination"]?["config"]?["port"] == 6543)
            let (_, logs) = try Self.curl(auth + [base + "\(exportID)/logs/"])
            #expect(!JSONWriter.string(logs).contains(secret))
        }
        #expect(output.status == 0)
        #expect(output.stderr.contains("Run completed"))
        #expect(!output.stderr.contains(secret))
        #expect(!output.stdout.contains(secret))
        for file in ["hedgerow.sqlite", "hedgerow.sqlite-wal"] {
            let bytes = (try? String(contentsOfFile: sandbox.directory + "/" + file, encoding: .isoLatin1)) ?? ""
            #expect(!bytes.contains(secret), "\(file) holds the secret in the clear")
        }
    }

    @Test(
        "kill -9 in the middle of a run, then a restart: the run is taken over and the destination holds every event once",
        .enabled(if: ProcessInfo.processInfo.environment["HEDGEROW_TEST_DATABASE_URL"]?.isEmpty == false),
        arguments: Backend.available)
    func killDuringRun(backend: Backend) async throws {
        try await Self.killPostgresRun(backend, model: "events", key: "uuid", total: 150_000) { try await Self.seedHour($0, total: $1) }
    }

    @Test(
        "kill -9 in the middle of a persons run, then a restart: every distinct id is in the destination once",
        .enabled(if: ProcessInfo.processInfo.environment["HEDGEROW_TEST_DATABASE_URL"]?.isEmpty == false),
        arguments: Backend.available)
    func killDuringPersonsRun(backend: Backend) async throws {
        try await Self.killPostgresRun(backend, model: "persons", key: "distinct_id", total: 120_000) {
            try await Self.seedPersons($0, total: $1)
        }
    }

    @Test(
        "kill -9 in the middle of a BigQuery run, then a restart: the next attempt drops the old stage table and every event is in the table once",
        .enabled(if: BigQueryEmulator.url != nil))
    func killDuringBigQueryRun() async throws {
        try await BigQueryEmulator.withTokenEndpoint { _, tokenURI in
            var sandbox = try Sandbox.make(.sqlite)
            defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
            sandbox.environment["HEDGEROW_RUN_LEASE_SECONDS"] = "2"
            sandbox.environment["HEDGEROW_LOG_LEVEL"] = "info"
            sandbox.environment["HEDGEROW_BIGQUERY_URL"] = BigQueryEmulator.url
            sandbox.environment["HEDGEROW_ALLOW_INSECURE_HTTP_DESTINATIONS"] = "1"
            let total = 100_000
            try await Self.seedHour(sandbox, total: total)
            let dataset = try BigQueryEmulator.makeDataset()
            let table = "`\(BigQueryEmulator.project).\(dataset).events`"
            let log = try await Self.killDuringBackfill(
                sandbox,
                destination: .object(["type": "BigQuery", "config": .object(BigQueryEmulator.config(dataset: dataset, tokenURI: tokenURI))]
                ),
                killAfter: .milliseconds(300), polls: 900
            ) {
                // The killed attempt got no further than its stage table: the final table holds nothing.
                let midway = try BigQueryEmulator.official(
                    """
                    from google.api_core.exceptions import NotFound
                    try: out(list(client.query("SELECT COUNT(*) AS n FROM \(table)").result())[0]["n"])
                    except NotFound: out(0)
                    """)
                #expect(midway == 0)
            }
            guard let log else { return }
            let counts = try BigQueryEmulator.official(
                "out(list(client.query(\"SELECT COUNT(*) AS n, COUNT(DISTINCT uuid) AS d FROM \(table)\").result())[0].values())")
            #expect(counts == [.int(Int64(total)), .int(Int64(total))])
            #expect(log.contains("attempt 2"), "the run should have been taken over")
            #expect(try BigQueryEmulator.tables(dataset) == ["events"])
        }
    }

    @Test(
        "kill -9 in the middle of a Redshift run (INSERT mode, SUPER columns), then a restart: every event is in the table once",
        .enabled(if: ProcessInfo.processInfo.environment["HEDGEROW_TEST_DATABASE_URL"] != nil))
    func killDuringRedshiftRun() async throws {
        try await Self.killPostgresRun(.sqlite, model: "events", key: "uuid", total: 60_000, type: "Redshift") { sandbox, total in
            try await Self.seedHour(sandbox, total: total)
        }
    }

    @Test(
        "kill -9 in the middle of a Snowflake run, then a restart: every event is in the table once",
        .enabled(if: SnowflakeEmulator.url != nil))
    func killDuringSnowflakeRun() async throws {
        var sandbox = try Sandbox.make(.sqlite)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        sandbox.environment["HEDGEROW_RUN_LEASE_SECONDS"] = "2"
        sandbox.environment["HEDGEROW_LOG_LEVEL"] = "info"
        sandbox.environment["HEDGEROW_SNOWFLAKE_URL"] = SnowflakeEmulator.url
        let total = 100_000
        try await Self.seedHour(sandbox, total: total)
        let database = try SnowflakeEmulator.makeDatabase()
        let table = "\(database).PUBLIC.EVENTS"
        let log = try await Self.killDuringBackfill(
            sandbox, destination: .object(["type": "Snowflake", "config": .object(SnowflakeEmulator.config(database: database))]),
            killAfter: .milliseconds(300), polls: 900
        ) {
            // The killed attempt got no further than its (temporary) stage table.
            let midway = try SnowflakeEmulator.official(
                """
                try:
                    cursor.execute("SELECT COUNT(*) FROM \(table)"); out(cursor.fetchone()[0])
                except snowflake.connector.errors.ProgrammingError:
                    out(0)
                """)
            #expect(midway == 0)
        }
        guard let log else { return }
        let counts = try SnowflakeEmulator.rows("SELECT COUNT(*) AS n, COUNT(DISTINCT \"uuid\") AS d FROM \(table)")
        #expect(counts.first?["N"] == .int(Int64(total)) && counts.first?["D"] == .int(Int64(total)), "\(counts)")
        #expect(log.contains("attempt 2"), "the run should have been taken over")
    }

    /// Seeds `total` rows of `model`, backfills them to a PostgreSQL table named after the model,
    /// kills the server mid-run and restarts it: the table then holds every row once (by `key`).
    static func killPostgresRun(
        _ backend: Backend, model: String, key: String, total: Int, type: String = "Postgres", seed: (Sandbox, Int) async throws -> Void
    ) async throws {
        var sandbox = try Sandbox.make(backend)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        sandbox.environment["HEDGEROW_RUN_LEASE_SECONDS"] = "2"
        sandbox.environment["HEDGEROW_LOG_LEVEL"] = "info"
        let url = ProcessInfo.processInfo.environment["HEDGEROW_TEST_DATABASE_URL"] ?? ""
        guard case .postgres(let destination) = try DatabaseLocation.parse(url) else { return }
        let schema = "kill_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        _ = try Self.psql(url, "CREATE SCHEMA \(schema)")
        try await seed(sandbox, total)
        var config: JSONObject = [
            "host": .string(destination.host), "port": .int(Int64(destination.port)), "user": .string(destination.username),
            "password": "x", "database": .string(destination.database ?? "postgres"), "schema": .string(schema),
            "table_name": .string(model), "has_self_signed_cert": true,
        ]
        if type == "Redshift" {
            // PostgreSQL standing in for Redshift: SUPER and JSON_PARSE in the destination schema.
            _ = try Self.psql(url, "CREATE DOMAIN \(schema).super AS jsonb")
            _ = try Self.psql(
                url, "CREATE FUNCTION \(schema).json_parse(text) RETURNS \(schema).super LANGUAGE SQL IMMUTABLE AS $$ SELECT $1::jsonb $$")
            config["properties_data_type"] = "super"
        }
        let log = try await Self.killDuringBackfill(
            sandbox, model: model, destination: .object(["type": .string(type), "config": .object(config)]), killAfter: .milliseconds(300),
            polls: 600
        ) {
            // The killed run's transaction was rolled back: nothing half-delivered is visible.
            let midway = try Self.psql(url, "SELECT count(*) FROM \(schema).\(model)").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(midway == "0" || midway.isEmpty)
        }
        guard let log else { return }
        let counts = try Self.psql(url, "SELECT count(*) || ' ' || count(DISTINCT \(key)) FROM \(schema).\(model)")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(counts == "\(total) \(total)")
        #expect(log.contains("attempt 2"), "the run should have been taken over")
        _ = try Self.psql(url, "DROP SCHEMA \(schema) CASCADE")
    }

    /// Starts the server once (bootstrap: admin, organization, environment 1), then runs `body` on
    /// its database while it is down.
    static func withSeededSandbox(_ sandbox: Sandbox, _ body: @escaping @Sendable (any Database) async throws -> Void) async throws {
        _ = try await Self.withServer(sandbox) { _ in }
        var configuration = try HedgerowConfiguration.fromEnvironment(sandbox.environment)
        configuration.bootstrapOnEmptyDatabase = false
        var logger = Logger(label: "kill-test")
        logger.logLevel = .critical
        try await withDatabase(configuration, logger: logger, body)
    }

    /// First start (bootstrap), then `total` persons of one distinct id each, changed in
    /// 2025-06-01 00:00–01:00 of environment 1, stored while the server is down.
    static func seedPersons(_ sandbox: Sandbox, total: Int) async throws {
        let hour: Int64 = 1_748_736_000_000_000
        try await Self.withSeededSandbox(sandbox) { database in
            let store = PersonStore()
            for chunk in stride(from: 0, to: total, by: 5_000) {
                let range = chunk..<min(chunk + 5_000, total)
                let times = range.map { Timestamp(microseconds: hour + Int64($0) * (3_600_000_000 / Int64(total))) }
                let uuids = times.map { Identifiers.uuidV7(at: $0) }
                try await database.transaction { connection in
                    try await store.save(
                        zip(uuids, times).map { uuid, at in
                            Person(uuid: uuid, teamID: 1, properties: ["email": "someone@example.com"], createdAt: at, updatedAt: at)
                        }, on: connection)
                    try await store.save(
                        zip(range, zip(uuids, times)).map { index, pair in
                            PersonDistinctID(teamID: 1, distinctID: "user-\(index)", personUUID: pair.0, updatedAt: pair.1)
                        }, on: connection)
                }
            }
        }
    }

    /// Starts the server on a seeded sandbox, creates an hourly export to `destination`, backfills
    /// 2025-06-01 00:00–01:00, kills the server with SIGKILL `killAfter` into the running run, calls
    /// `whileDown`, restarts the server and waits (`polls` × 0.1 s) for the backfill to complete.
    /// Returns the restarted server's log; nil when a server did not start (recorded as an issue).
    static func killDuringBackfill(
        _ sandbox: Sandbox, model: String = "events", destination: JSONValue, killAfter: Duration, polls: Int,
        whileDown: () async throws -> Void
    ) async throws -> String? {
        guard let first = try await Self.launch(sandbox) else {
            Issue.record("server did not start")
            return nil
        }
        let key = (try String(contentsOfFile: sandbox.directory + "/initial-api-key", encoding: .utf8)).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let auth = ["-H", "Authorization: Bearer \(key)", "-H", "Content-Type: application/json"]
        let base = "http://127.0.0.1:\(first.port)/api/environments/1/batch_exports/"
        let (_, export) = try Self.curl(
            auth + [
                "-d",
                JSONWriter.string(.object(["name": "k", "model": .string(model), "interval": "hour", "destination": destination])), base,
            ])
        let id = export["id"]?.stringValue ?? ""
        let (_, backfill) = try Self.curl(
            auth + ["-d", #"{"start_at": "2025-06-01T00:00:00Z", "end_at": "2025-06-01T01:00:00Z"}"#, base + "\(id)/backfills/"])
        let backfillID = backfill["backfill_id"]?.stringValue ?? ""
        // Kill the server once the run is Running and has sent some of its batches.
        var running = false
        for _ in 0..<200 where !running {
            let (_, runs) = try Self.curl(auth + [base + "\(id)/runs/"])
            running = runs["results"]?.arrayValue?.first?["status"] == "Running"
            if !running { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(running)
        try await Task.sleep(for: killAfter)
        first.process.signal(SIGKILL)
        await first.process.exited()
        try await whileDown()

        guard let second = try await Self.launch(sandbox) else {
            Issue.record("server did not restart")
            return nil
        }
        let base2 = "http://127.0.0.1:\(second.port)/api/environments/1/batch_exports/"
        var status = ""
        for _ in 0..<polls where status != "Completed" {
            try await Task.sleep(for: .milliseconds(100))
            let (_, detail) = try Self.curl(auth + [base2 + "\(id)/backfills/\(backfillID)/"])
            status = detail["status"]?.stringValue ?? ""
        }
        second.process.signal(SIGTERM)
        await second.process.exited()
        #expect(status == "Completed")
        return (try? String(contentsOfFile: second.errPath, encoding: .utf8)) ?? ""
    }

    /// First start (bootstrap), then `total` events in 2025-06-01 00:00–01:00 of environment 1,
    /// stored while the server is down.
    static func seedHour(_ sandbox: Sandbox, total: Int, padding: Int = 0) async throws {
        let hour: Int64 = 1_748_736_000_000_000
        let filler = String(repeating: "x", count: padding)
        try await Self.withSeededSandbox(sandbox) { database in
            let store = SQLEventStore(database: database)
            for chunk in stride(from: 0, to: total, by: 10_000) {
                _ = try await store.append(
                    (chunk..<min(chunk + 10_000, total)).map { index in
                        let at = Timestamp(microseconds: hour + Int64(index) * (3_600_000_000 / Int64(total)))
                        return Event(
                            uuid: Identifiers.uuidV7(at: at), teamID: 1, event: "e", distinctID: "u\(index % 100)",
                            properties: #"{"$ip":"1.2.3.4","n":\#(index),"pad":"\#(filler)"}"#, personID: nil, personProperties: nil,
                            elementsChain: nil, timestamp: at, createdAt: at, insertedAt: at)
                    })
            }
        }
    }

    @Test("kill -9 in the middle of an S3 multipart upload, then a restart: one complete file and its manifest, no upload left open")
    func killDuringS3Upload() async throws {
        var sandbox = try Sandbox.make(.sqlite)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        sandbox.environment["HEDGEROW_RUN_LEASE_SECONDS"] = "2"
        sandbox.environment["HEDGEROW_LOG_LEVEL"] = "info"
        sandbox.environment["HEDGEROW_S3_PART_SIZE_MB"] = "5"
        sandbox.environment["HEDGEROW_S3_UPLOADS_IN_FLIGHT"] = "1"
        let s3URL = try S3TestServer.shared.get()
        let bucket = S3Client(
            endpoint: try #require(S3Endpoint.parse(s3URL, virtualHosted: false)), region: "us-east-1",
            bucket: S3TestServer.bucketName("kill"), credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        try await bucket.createBucket()
        // About 90 MB of JSONLines: many 5 MB parts, so the kill lands in the middle of the upload.
        let total = 200_000
        try await Self.seedHour(sandbox, total: total, padding: 300)

        let config: JSONValue = .object([
            "bucket_name": .string(bucket.bucket), "region": "us-east-1", "prefix": "lake", "endpoint_url": .string(s3URL),
            "aws_access_key_id": "k", "aws_secret_access_key": "s",
        ])
        let log = try await Self.killDuringBackfill(
            sandbox, destination: .object(["type": "S3", "config": config]), killAfter: .milliseconds(1500), polls: 900
        ) {
            // Parts of an upload never completed are not an object: nothing is listed yet.
            let listed = try await bucket.listObjects(prefix: "")
            #expect(listed.isEmpty)
        }
        guard let log else { return }
        let stem = "lake/2025-06-01T00:00:00+00:00-2025-06-01T01:00:00+00:00"
        #expect(try await bucket.listObjects(prefix: "").map(\.key).sorted() == [stem + ".jsonl", stem + "_manifest.json"])
        // The killed attempt's upload was aborted by the attempt that took over: no stored parts are left behind.
        #expect(try await bucket.listMultipartUploads(prefix: "").isEmpty)
        let lines = try await bucket.getObject(stem + ".jsonl").split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == total)
        let uuids = Set(lines.compactMap { try? JSONParser.parse(Array($0))["uuid"]?.stringValue })
        #expect(uuids.count == total)
        #expect(log.contains("attempt 2"), "the run should have been taken over")
    }

    @Test("kill -9 in the middle of an Azure Blob upload, then a restart: the file holds every event once, beside its manifest")
    func killDuringAzureBlobUpload() async throws {
        var sandbox = try Sandbox.make(.sqlite)
        defer { try? FileManager.default.removeItem(atPath: sandbox.directory) }
        sandbox.environment["HEDGEROW_RUN_LEASE_SECONDS"] = "2"
        sandbox.environment["HEDGEROW_LOG_LEVEL"] = "info"
        sandbox.environment["HEDGEROW_AZURE_BLOB_BLOCK_SIZE_MB"] = "2"
        sandbox.environment["HEDGEROW_AZURE_BLOB_UPLOADS_IN_FLIGHT"] = "1"
        let container = try AzureBlobTestServer.makeContainer("kill")
        // About 90 MB of JSONLines: many 2 MB blocks, so the kill lands in the middle of the upload.
        let total = 200_000
        try await Self.seedHour(sandbox, total: total, padding: 300)
        let config: JSONValue = .object([
            "container_name": .string(container), "prefix": "lake", "connection_string": .string(try AzureBlobTestServer.shared.get()),
        ])
        let log = try await Self.killDuringBackfill(
            sandbox, destination: .object(["type": "AzureBlob", "config": config]), killAfter: .milliseconds(1500), polls: 900
        ) {
            // Blocks never committed are not a blob: nothing is listed yet.
            let listed = try AzureBlobTestServer.blobs(container)
            #expect(listed.isEmpty)
        }
        guard let log else { return }
        let stem = "lake/2025-06-01T00:00:00+00:00-2025-06-01T01:00:00+00:00"
        let blobs = try AzureBlobTestServer.blobs(container)
        #expect(blobs.keys.sorted() == [stem + ".jsonl", stem + "_manifest.json"])
        let lines = (blobs[stem + ".jsonl"]?.bytes ?? []).split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == total)
        #expect(Set(lines.compactMap { try? JSONParser.parse(Array($0))["uuid"]?.stringValue }).count == total)
        #expect(log.contains("attempt 2"), "the run should have been taken over")
    }
}
