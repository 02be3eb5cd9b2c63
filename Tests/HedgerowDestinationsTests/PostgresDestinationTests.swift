import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// Collects the bodies a test webhook receives.
actor WebhookInbox {
    var bodies: [String] = []
    func add(_ body: String) { bodies.append(body) }
}

/// Batch exports into a real PostgreSQL (the test server, in a schema of its own), with the
/// metadata on each backend (docs/engine.md §3, §5, §7).
@Suite("PostgreSQL destination", .enabled(if: TestBackend.postgresURL != nil))
struct PostgresDestinationTests {
    /// A fresh destination schema; returns the export's `destination.config`.
    static func destination(
        schema: String? = nil, overrides: [(String, JSONValue)] = []
    ) async throws -> (config: JSONObject, schema: String) {
        guard let url = TestBackend.postgresURL, case .postgres(let location) = try DatabaseLocation.parse(url) else {
            throw TestSetupError(description: "no PostgreSQL")
        }
        let name = schema ?? "dest_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        _ = try await TestBackend.postgresQuery("CREATE SCHEMA IF NOT EXISTS \(name)")
        var config: JSONObject = [
            "host": .string(location.host), "port": .int(Int64(location.port)), "user": .string(location.username),
            "password": .string(location.password ?? "unused"), "database": .string(location.database ?? "postgres"),
            "schema": .string(name), "table_name": "events",
            // The test server's certificate is self-signed; destinations connect over TLS only.
            "has_self_signed_cert": true,
        ]
        for (key, value) in overrides { config[key] = value }
        return (config, name)
    }

    static func rows(_ schema: String, table: String = "events") async throws -> [SQLRow] {
        try await TestBackend.postgresQuery("SELECT * FROM \(schema).\(table) ORDER BY timestamp, uuid")
    }

    static func engine(_ server: TestServer, at time: String? = nil) throws -> ExportEngine {
        let clock = time.map { ISO8601.parse($0)!.timestamp }
        return ExportEngine(
            database: server.database, secrets: try SecretBox.load(server.configuration), configuration: .forTests,
            logger: TestBackend.logger, clock: { clock ?? .now() })
    }

    static func export(
        _ server: TestServer, _ world: Fixtures.World, config: JSONObject, interval: String = "hour"
    ) async throws -> String {
        let result = try await server.request(
            "POST", world.base + "/", key: world.member.key,
            json: .object([
                "name": "warehouse", "interval": .string(interval),
                "destination": .object(["type": "Postgres", "config": .object(config)]),
            ]))
        #expect(result.status == 201, "\(result.text)")
        #expect(result["destination"]?["config"]?["password"] == nil)
        #expect(result["destination"]?["config"]?["user"] == nil)
        return result["id"]?.stringValue ?? ""
    }

    static func run(_ server: TestServer, exportID: String) async throws -> [SQLRow] {
        try await server.database.read {
            try await $0.query(
                "SELECT id, status, records_completed, latest_error, next_attempt_at, attempt FROM batch_export_runs WHERE batch_export_id = $1 ORDER BY data_interval_end",
                [.text(exportID)])
        }
    }

    @Test(
        "A backfill delivers exactly the events in range, in PostHog's columns (docs/engine.md §3); a second one adds nothing",
        arguments: TestBackend.available)
    func backfillExactlyOnce(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let (config, schema) = try await Self.destination()
            let id = try await Self.export(server, world, config: config)
            let properties = #"{"$ip":"10.1.2.3","$set":{"plan":"pro"},"$set_once":{"first":"x"},"tab":"a\tb\nc\\d"}"#
            _ = try await SQLEventStore(database: server.database).append(
                ["2024-01-01T09:59:59Z", "2024-01-01T10:00:00Z", "2024-01-01T10:30:00Z", "2024-01-01T11:59:59Z", "2024-01-01T12:00:00Z"]
                    .enumerated().map {
                        index, time in
                        let at = ISO8601.parse(time)!.timestamp
                        return Event(
                            uuid: Identifiers.uuidV7(at: at), teamID: world.team, event: "e\(index)", distinctID: "user-\(index)",
                            properties: properties,
                            personID: nil, personProperties: nil, elementsChain: "div:nth-child=\"1\"", timestamp: at, createdAt: at,
                            insertedAt: at)
                    })
            let body: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T12:00:00Z"])
            #expect(try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: body).status == 201)
            try await Self.engine(server).step()
            let delivered = try await Self.rows(schema)
            #expect(delivered.map { $0.string("event") } == ["e1", "e2", "e3"])
            let first = try #require(delivered.first)
            #expect(
                first.columns == [
                    "uuid", "event", "properties", "elements", "set", "set_once", "distinct_id", "team_id", "ip", "site_url", "timestamp",
                ])
            #expect(first.string("distinct_id") == "user-1")
            #expect(first.string("ip") == "10.1.2.3")
            #expect(first["site_url"] == .null)
            #expect(try JSONParser.parse(first.string("set") ?? "") == .object(["plan": "pro"]))
            #expect(try JSONParser.parse(first.string("properties") ?? "")["tab"] == "a\tb\nc\\d")
            #expect(try JSONParser.parse(first.string("elements") ?? "") == .string("div:nth-child=\"1\""))
            #expect(first.int("team_id") == world.team)
            let ledger = try await TestBackend.postgresQuery(
                "SELECT run_id, records FROM \(schema).hedgerow_export_ledger ORDER BY data_interval_end")
            #expect(ledger.map { $0.int("records") } == [2, 1])
            // The same backfill again: delivered again by new runs, stored once.
            #expect(try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: body).status == 201)
            try await Self.engine(server).step()
            #expect(try await Self.rows(schema).count == 3)
            let runs = try await Self.run(server, exportID: id)
            #expect(runs.count == 4)
            #expect(runs.allSatisfy { $0.string("status") == "Completed" })
        }
    }

    @Test(
        "A run whose ledger row exists completes without writing (a retry or a takeover after the commit)", arguments: TestBackend.available
    )
    func ledgerMakesRetriesSafe(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let (config, schema) = try await Self.destination()
            let id = try await Self.export(server, world, config: config)
            try await Fixtures.seedEvents(server, team: world.team, times: ["2024-01-01T10:10:00Z", "2024-01-01T10:20:00Z"])
            _ = try await server.request(
                "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                json: .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"]))
            try await Self.engine(server).step()
            #expect(try await Self.rows(schema).count == 2)
            // A worker died after the destination committed but before the run was recorded: the run is taken over.
            try await server.database.transaction { connection in
                try await connection.execute(
                    "UPDATE batch_export_runs SET status = 'Running', lease_expires_at = $1 WHERE batch_export_id = $2",
                    [.int(1), .text(id)])
            }
            try await Self.engine(server).step()
            #expect(try await Self.rows(schema).count == 2)
            let run = try #require(try await Self.run(server, exportID: id).first)
            #expect(run.string("status") == "Completed")
            #expect(run.int("records_completed") == 2)
            #expect(run.int("attempt") == 2)
        }
    }

    @Test("A run's COPY text is sent in pieces, cut between rows: every event arrives whole", arguments: TestBackend.available)
    func copySentInPieces(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let (config, schema) = try await Self.destination()
            let id = try await Self.export(server, world, config: config)
            let start = ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp
            let filler = String(repeating: "x", count: 400)
            let count = 4_000
            _ = try await SQLEventStore(database: server.database).append(
                (0..<count).map { index in
                    let at = Timestamp(microseconds: start.microseconds + Int64(index) * 1_000)
                    return Event(
                        uuid: Identifiers.uuidV7(at: at), teamID: world.team, event: "e", distinctID: "user-\(index)",
                        properties: #"{"n":\#(index),"filler":"\#(filler)"}"#, personID: nil, personProperties: nil, elementsChain: nil,
                        timestamp: at, createdAt: at, insertedAt: at)
                })
            let body: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"])
            #expect(try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: body).status == 201)
            try await Self.engine(server).step()
            let runs = try await Self.run(server, exportID: id)
            #expect(runs.map { $0.string("status") } == ["Completed"])
            // More than a few pieces' worth of COPY text.
            #expect(count * 400 > 4 * PostgresDestination.copyChunkBytes)
            let stored = try await TestBackend.postgresQuery(
                "SELECT count(*) AS n, count(DISTINCT (properties->>'n')) AS distinct_n, min(length(properties->>'filler')) AS shortest FROM \(schema).events"
            )
            #expect(stored.first?.int("n") == Int64(count))
            #expect(stored.first?.int("distinct_n") == Int64(count))
            #expect(stored.first?.int("shortest") == 400)
        }
    }

    @Test(
        "Binary COPY stores what text COPY stores: the created table, other binary-ready types, and a type that keeps the run in text",
        arguments: TestBackend.available)
    func binaryAndTextCopyAgree(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            // The created table (binary), other types binary COPY writes (text, json, bigint, timestamp
            // without time zone, char), and a uuid column, which only text COPY can fill.
            let (createdConfig, created) = try await Self.destination()
            let (otherConfig, other) = try await Self.destination()
            _ = try await TestBackend.postgresQuery(
                """
                CREATE TABLE \(other).events (uuid TEXT, event TEXT, properties JSON, elements JSONB, set JSONB, set_once TEXT,
                distinct_id CHAR(12), team_id BIGINT, ip TEXT, site_url TEXT, timestamp TIMESTAMP)
                """)
            let (textConfig, text) = try await Self.destination()
            _ = try await TestBackend.postgresQuery(
                """
                CREATE TABLE \(text).events (uuid UUID UNIQUE, event VARCHAR(200), properties JSONB, elements JSONB, set JSONB,
                set_once JSONB, distinct_id VARCHAR(200), team_id INTEGER, ip VARCHAR(200), site_url VARCHAR(200), timestamp TIMESTAMPTZ)
                """)
            let properties = [
                #"{"$ip":"10.1.2.3","$set":{"plan":"pro","n":1.5},"$set_once":{"first":"x"},"tab":"a\tb\nc\\d","ü":"ünï"}"#,
                #"{"nested":{"$set":{"no":1}},"list":[1,"two",null],"$ip":null}"#, "{}",
            ]
            let start = ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp
            _ = try await SQLEventStore(database: server.database).append(
                (0..<30).map { index in
                    let at = Timestamp(microseconds: start.microseconds + Int64(index) * 60_000_123)
                    return Event(
                        uuid: Identifiers.uuidV7(at: at), teamID: world.team, event: index % 2 == 0 ? "$pageview" : "tab\there",
                        distinctID: "user-\(index % 4)", properties: properties[index % 3], personID: nil, personProperties: nil,
                        elementsChain: index % 5 == 0 ? nil : "a:href=\"/x\"", timestamp: at, createdAt: at, insertedAt: at)
                })
            let range: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"])
            for config in [createdConfig, otherConfig, textConfig] {
                let id = try await Self.export(server, world, config: config)
                #expect(
                    try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: range).status == 201)
                try await Self.engine(server).step()
                let runs = try await Self.run(server, exportID: id)
                #expect(runs.map { $0.string("status") } == ["Completed"], "\(runs.map { $0.string("latest_error") ?? "" })")
            }
            func stored(_ schema: String, timestamp: String = "timestamp") async throws -> [[String?]] {
                let columns = [
                    "uuid::text", "event", "properties::jsonb::text", "elements::text", "set::text", "set_once::jsonb::text",
                    "rtrim(distinct_id)", "team_id::text", "ip", "site_url", "to_char(\(timestamp), 'YYYY-MM-DD HH24:MI:SS.US')",
                ]
                let rows = try await TestBackend.postgresQuery(
                    "SELECT \(columns.enumerated().map { "\($1) AS c\($0)" }.joined(separator: ", ")) FROM \(schema).events ORDER BY 1")
                return rows.map { row in columns.indices.map { row.string("c\($0)") } }
            }
            let expected = try await stored(text, timestamp: "timestamp AT TIME ZONE 'UTC'")
            #expect(expected.count == 30)
            #expect(expected.first?[10] == "2024-01-01 10:00:00.000000")
            #expect(expected.last?[10] == "2024-01-01 10:29:00.003567")
            #expect(try await stored(created, timestamp: "timestamp AT TIME ZONE 'UTC'") == expected)
            #expect(try await stored(other) == expected)
        }
    }

    @Test("Scheduled 5-minute runs deliver each tick's events once", arguments: TestBackend.available)
    func scheduledTicks(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let (config, schema) = try await Self.destination()
            let service = BatchExportService(
                database: server.database, secrets: try SecretBox.load(server.configuration), deliverable: Destinations.deliverable,
                outbound: .loopbackAllowed, clock: { ISO8601.parse("2024-03-01T10:02:00Z")!.timestamp })
            let created = try await service.create(
                .environment(String(world.team)),
                body: .object([
                    "name": "w", "interval": "every 5 minutes", "destination": .object(["type": "Postgres", "config": .object(config)]),
                ]),
                principal: try await server.principal(world.member))
            func event(_ inserted: String) -> Event {
                let at = ISO8601.parse(inserted)!.timestamp
                return Event(
                    uuid: Identifiers.uuidV7(at: at), teamID: world.team, event: "x", distinctID: "u", properties: "{}", personID: nil,
                    personProperties: nil, elementsChain: nil, timestamp: at, createdAt: at, insertedAt: at)
            }
            let store = SQLEventStore(database: server.database)
            _ = try await store.append([event("2024-03-01T10:06:00Z"), event("2024-03-01T10:09:59Z"), event("2024-03-01T10:12:00Z")])
            try await Self.engine(server, at: "2024-03-01T10:16:00Z").step()
            #expect(try await Self.rows(schema).count == 3)
            _ = try await store.append([event("2024-03-01T10:16:30Z")])
            try await Self.engine(server, at: "2024-03-01T10:16:00Z").step()
            try await Self.engine(server, at: "2024-03-01T10:21:00Z").step()
            #expect(try await Self.rows(schema).count == 4)
            let runs = try await Self.run(server, exportID: created.export.id)
            #expect(runs.map { $0.int("records_completed") } == [0, 2, 1, 1])
        }
    }

    @Test("Bad credentials fail at once; an unreachable database is retried until it answers", arguments: TestBackend.available)
    func errorClassification(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await Fixtures.seedEvents(server, team: world.team, times: ["2024-01-01T10:10:00Z"])
            let range: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"])

            let (badUser, _) = try await Self.destination(overrides: [("user", "no_such_role")])
            let denied = try await Self.export(server, world, config: badUser)
            _ = try await server.request("POST", world.base + "/\(denied)/backfills/", key: world.member.key, json: range)
            try await Self.engine(server).step()
            let failed = try #require(try await Self.run(server, exportID: denied).first)
            #expect(failed.string("status") == "Failed")
            #expect(failed.string("latest_error")?.hasPrefix("InvalidCredentials: ") == true, "\(failed.string("latest_error") ?? "")")

            let (missingSchema, _) = try await Self.destination(overrides: [("schema", "no_such_schema_here")])
            let noSchema = try await Self.export(server, world, config: missingSchema)
            _ = try await server.request("POST", world.base + "/\(noSchema)/backfills/", key: world.member.key, json: range)
            try await Self.engine(server).step()
            #expect(try await Self.run(server, exportID: noSchema).first?.string("latest_error")?.hasPrefix("SchemaNotFound: ") == true)

            var (unreachable, schema) = try await Self.destination()
            let goodPort = unreachable["port"]
            unreachable["port"] = 1
            let waiting = try await Self.export(server, world, config: unreachable)
            _ = try await server.request("POST", world.base + "/\(waiting)/backfills/", key: world.member.key, json: range)
            // A clock standing still: the step cannot outlast the 1 s backoff and take the retry itself.
            try await Self.engine(server, at: Timestamp.now().iso8601WithOffset).step()
            let retrying = try #require(try await Self.run(server, exportID: waiting).first)
            #expect(retrying.string("status") == "FailedRetryable")
            #expect(retrying.string("latest_error")?.hasPrefix("ConnectionError: ") == true)
            let next = try #require(retrying.int("next_attempt_at"))
            #expect(next > Timestamp.now().microseconds - 60_000_000)
            let logs = try await server.request("GET", world.base + "/\(waiting)/logs/?level=WARNING", key: world.member.key)
            #expect(logs["results"]?.arrayValue?.first?["message"]?.stringValue?.contains("will retry at") == true)
            // The database comes back (the port is fixed, with the credentials again: a stored
            // password follows no change of address); the next attempt, once due, delivers.
            let patched = try await server.request(
                "PATCH", world.base + "/\(waiting)/", key: world.member.key,
                json: .object([
                    "destination": .object([
                        "type": "Postgres",
                        "config": .object([
                            "port": goodPort ?? 5432, "user": unreachable["user"] ?? .null, "password": unreachable["password"] ?? .null,
                        ]),
                    ])
                ]))
            #expect(patched.status == 200)
            try await Self.engine(server, at: Timestamp(microseconds: next + 1).iso8601).step()
            let done = try #require(try await Self.run(server, exportID: waiting).first)
            #expect(done.string("status") == "Completed")
            #expect(try await Self.rows(schema).count == 1)
        }
    }

    /// A PostgreSQL of its own (scripts/postgres-test-server), for tests that stop it or need TLS.
    struct DedicatedServer {
        let directory: String
        let port: Int
        static let script = ReferenceTools.packageRoot.appendingPathComponent("scripts/postgres-test-server").path

        enum Transport { case tlsOffered, tlsOnly, plain }

        static func start(_ transport: Transport = .tlsOffered) throws -> DedicatedServer {
            let directory = NSTemporaryDirectory() + "hedgerow-pg-\(UUID().uuidString.prefix(8))"
            let port = S3TestServer.freePort()
            let started = try ReferenceTools.run(
                Self.script,
                ["start", directory, String(port)] + (transport == .tlsOnly ? ["--tls"] : transport == .plain ? ["--plain"] : []))
            guard started.status == 0 else { throw TestSetupError(description: "postgres did not start: \(started.stderr)") }
            return DedicatedServer(directory: directory, port: port)
        }

        func crash() throws { _ = try ReferenceTools.run(Self.script, ["crash", directory]) }
        func resume() throws { _ = try ReferenceTools.run(Self.script, ["resume", directory]) }
        func remove() {
            _ = try? ReferenceTools.run(Self.script, ["stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }

        var config: JSONObject {
            [
                "host": "127.0.0.1", "port": .int(Int64(port)), "user": "postgres", "password": "unused", "database": "hedgerow_test",
                "has_self_signed_cert": true,
            ]
        }

        func query(_ sql: String) throws -> String {
            let output = try ReferenceTools.run(
                "psql", ["-h", directory, "-p", String(port), "-U", "postgres", "-d", "hedgerow_test", "-qAtc", sql])
            return String(decoding: output.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test(
        "has_self_signed_cert: a TLS-only server with a self-signed certificate is used only when the export says so",
        arguments: TestBackend.available)
    func selfSignedCertificate(backend: TestBackend) async throws {
        let destination = try DedicatedServer.start(.tlsOnly)
        defer { destination.remove() }
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await Fixtures.seedEvents(server, team: world.team, times: ["2024-01-01T10:10:00Z", "2024-01-01T10:20:00Z"])
            let range: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"])
            var trusting = destination.config
            trusting["has_self_signed_cert"] = true
            trusting["table_name"] = "trusting"
            let accepted = try await Self.export(server, world, config: trusting)
            var verifying = destination.config
            verifying["has_self_signed_cert"] = false
            verifying["table_name"] = "verifying"
            let refused = try await Self.export(server, world, config: verifying)
            for id in [accepted, refused] {
                _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: range)
            }
            try await Self.engine(server).step()
            // The server refuses every connection without TLS, so rows arriving prove TLS was used.
            #expect(try await Self.run(server, exportID: accepted).first?.string("status") == "Completed")
            #expect(try destination.query("SELECT count(*) FROM trusting") == "2")
            let failed = try #require(try await Self.run(server, exportID: refused).first)
            #expect(failed.string("status") == "Failed")
            #expect(failed.string("latest_error")?.hasPrefix("TLSCertificateError: ") == true, "\(failed.string("latest_error") ?? "")")
        }
    }

    @Test("A server that offers no TLS is refused, never written to in plaintext", arguments: TestBackend.available)
    func plaintextServerRefused(backend: TestBackend) async throws {
        let destination = try DedicatedServer.start(.plain)
        defer { destination.remove() }
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await Fixtures.seedEvents(server, team: world.team, times: ["2024-01-01T10:10:00Z"])
            let id = try await Self.export(server, world, config: destination.config)
            _ = try await server.request(
                "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                json: .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"]))
            try await Self.engine(server).step()
            let failed = try #require(try await Self.run(server, exportID: id).first)
            #expect(failed.string("status") == "Failed")
            #expect(
                failed.string("latest_error")
                    == "TLSUnavailable: the server does not offer TLS; PostgreSQL destinations connect over TLS only")
            #expect(try destination.query("SELECT count(*) FROM pg_tables WHERE tablename = 'events'") == "0")
        }
    }

    @Test(
        "The destination database crashing in the middle of a run: FailedRetryable with a next attempt, then every event once",
        arguments: TestBackend.available)
    func databaseStoppedDuringRun(backend: TestBackend) async throws {
        let destination = try DedicatedServer.start()
        defer { destination.remove() }
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let total = 150_000
            let base = ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp.microseconds
            for chunk in stride(from: 0, to: total, by: 10_000) {
                _ = try await SQLEventStore(database: server.database).append(
                    (chunk..<chunk + 10_000).map { index in
                        let at = Timestamp(microseconds: base + Int64(index) * 20_000)
                        return Event(
                            uuid: Identifiers.uuidV7(at: at), teamID: world.team, event: "e", distinctID: "u\(index)",
                            properties: #"{"n":\#(index)}"#, personID: nil, personProperties: nil, elementsChain: nil, timestamp: at,
                            createdAt: at, insertedAt: at)
                    })
            }
            let id = try await Self.export(server, world, config: destination.config)
            _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Fixtures.hour)
            // The run goes while the database is crashed under it (once the run is Running).
            async let step: Void = Self.engine(server).step()
            var running = false
            for _ in 0..<500 where !running {
                running = try await Self.run(server, exportID: id).first?.string("status") == "Running"
                if !running { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(running)
            try await Task.sleep(for: .milliseconds(200))
            try destination.crash()
            try await step
            let waiting = try #require(try await Self.run(server, exportID: id).first)
            #expect(waiting.string("status") == "FailedRetryable", "\(waiting.string("latest_error") ?? "")")
            let next = try #require(waiting.int("next_attempt_at"))
            try destination.resume()
            try await Self.engine(server, at: Timestamp(microseconds: next + 1).iso8601).step()
            let done = try #require(try await Self.run(server, exportID: id).first)
            #expect(done.string("status") == "Completed", "\(done.string("latest_error") ?? "")")
            #expect(try destination.query("SELECT count(*) || ' ' || count(DISTINCT uuid) FROM events") == "\(total) \(total)")
        }
    }

    @Test("An existing table is used as it is: columns matched by name, stored uuids skipped", arguments: TestBackend.available)
    func existingTable(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let (config, schema) = try await Self.destination()
            _ = try await TestBackend.postgresQuery(
                "CREATE TABLE \(schema).events (uuid TEXT, event TEXT, timestamp TIMESTAMPTZ, note TEXT DEFAULT 'mine')")
            let id = try await Self.export(server, world, config: config)
            try await Fixtures.seedEvents(server, team: world.team, times: ["2024-01-01T10:10:00Z", "2024-01-01T10:20:00Z"])
            let range: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"])
            _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: range)
            try await Self.engine(server).step()
            _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: range)
            try await Self.engine(server).step()
            let runs = try await Self.run(server, exportID: id)
            #expect(runs.allSatisfy { $0.string("status") == "Completed" }, "\(runs.map { $0.string("latest_error") ?? "" })")
            let rows = try await Self.rows(schema)
            #expect(rows.count == 2)
            #expect(rows.first?.columns == ["uuid", "event", "timestamp", "note"])
            #expect(rows.allSatisfy { $0.string("note") == "mine" })
        }
    }

    @Test(
        "Three failures for good pause the export, cancel its backfills, log an ERROR and call the webhook once",
        arguments: TestBackend.available)
    func autoPause(backend: TestBackend) async throws {
        let inbox = WebhookInbox()
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            await inbox.add(String(buffer: body))
            return .ok
        }
        let hook = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await hook.test(.live) { client in
            let port = try #require(client.port)
            try await TestServer.run(backend) { server in
                let world = try await Fixtures.world(server)
                let (badUser, _) = try await Self.destination(overrides: [("user", "no_such_role")])
                let id = try await Self.export(server, world, config: badUser)
                try await Fixtures.seedEvents(
                    server, team: world.team,
                    times: ["2024-01-01T10:10:00Z", "2024-01-01T11:10:00Z", "2024-01-01T12:10:00Z", "2024-01-01T13:10:00Z"])
                var configuration = EngineConfiguration.forTests
                configuration.alertWebhookURL = "http://127.0.0.1:\(port)/hook"
                let engine = ExportEngine(
                    database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
                    logger: TestBackend.logger)
                for hour in 10...12 {
                    _ = try await server.request(
                        "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                        json: .object([
                            "start_at": .string("2024-01-01T\(hour):00:00Z"), "end_at": .string("2024-01-01T\(hour + 1):00:00Z"),
                        ]))
                    if hour < 12 {
                        try await engine.step()
                        #expect(try await server.request("GET", world.base + "/\(id)/", key: world.member.key)["paused"] == false)
                    }
                }
                // A fourth backfill waits behind the third: it is cancelled when the export pauses.
                let pending = try await server.request(
                    "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                    json: .object(["start_at": "2024-01-01T13:00:00Z", "end_at": "2024-01-01T14:00:00Z"]))
                try await server.database.transaction { connection in
                    try await connection.execute(
                        "UPDATE batch_export_runs SET next_attempt_at = $1 WHERE backfill_id = $2",
                        [.int(Int64.max / 2), .text(pending["backfill_id"]?.stringValue ?? "")])
                }
                try await engine.step()
                let export = try await server.request("GET", world.base + "/\(id)/", key: world.member.key)
                #expect(export["paused"] == true)
                #expect(export["last_paused_at"] != .null)
                let backfill = try await server.request(
                    "GET", world.base + "/\(id)/backfills/\(pending["backfill_id"]?.stringValue ?? "")/", key: world.member.key)
                #expect(backfill["status"] == "Cancelled")
                let errors = try await server.request("GET", world.base + "/\(id)/logs/?level=ERROR", key: world.member.key)
                #expect(
                    errors["results"]?.arrayValue?.contains {
                        $0["message"]?.stringValue?.hasPrefix("Batch export paused: 3 of the last 3 runs failed") == true
                    } == true)
                let bodies = await inbox.bodies
                #expect(bodies.count == 1)
                let alert = try JSONParser.parse(bodies.first ?? "")
                #expect(alert["batch_export_id"] == .string(id))
                #expect(alert["event"] == "batch_export_paused")
                #expect(alert["reason"]?.stringValue?.contains("InvalidCredentials") == true)
                // Unpaused and failing again the same day: paused again, but no second alert.
                _ = try await server.request("POST", world.base + "/\(id)/unpause/", key: world.member.key)
                _ = try await server.request(
                    "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                    json: .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"]))
                try await engine.step()
                #expect(try await server.request("GET", world.base + "/\(id)/", key: world.member.key)["paused"] == true)
                #expect(await inbox.bodies.count == 1)
            }
        }
    }
}
