import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowFormats
import HedgerowS3
import HedgerowStore
import HedgerowTestSupport
import Testing

/// Exports of the persons and sessions models (docs/destinations.md, Models): which
/// rows a window holds, S3 files, PostgreSQL merges that keep the newest version, NoOp counts.
@Suite("Persons and sessions exports")
struct ModelExportTests {
    static func at(_ text: String) -> Timestamp { ISO8601.parse(text)!.timestamp }

    /// Two persons in 10:00–11:00: `a` (identified, with distinct ids d1 and d2) and `b` (d3).
    static func seedPersons(_ server: TestServer, team: Int64) async throws {
        let store = PersonStore()
        try await server.database.transaction { connection in
            try await store.save(
                [
                    Person(
                        uuid: Self.a, teamID: team, properties: ["plan": "free"], createdAt: Self.at("2024-01-01T09:00:00Z"),
                        isIdentified: true, version: 1, updatedAt: Self.at("2024-01-01T10:10:00Z")),
                    Person(
                        uuid: Self.b, teamID: team, createdAt: Self.at("2024-01-01T10:20:00Z"), updatedAt: Self.at("2024-01-01T10:20:00Z")),
                ], on: connection)
            try await store.save(
                [
                    PersonDistinctID(teamID: team, distinctID: "d1", personUUID: Self.a, updatedAt: Self.at("2024-01-01T09:00:00Z")),
                    PersonDistinctID(teamID: team, distinctID: "d2", personUUID: Self.a, updatedAt: Self.at("2024-01-01T10:10:00Z")),
                    PersonDistinctID(teamID: team, distinctID: "d3", personUUID: Self.b, updatedAt: Self.at("2024-01-01T10:20:00Z")),
                ], on: connection)
        }
    }

    /// At 11:30 `a` is changed (a version up) and d3 moves to it (a merge: `b` is gone).
    static func changePersons(_ server: TestServer, team: Int64) async throws {
        let store = PersonStore()
        let later = Self.at("2024-01-01T11:30:00Z")
        try await server.database.transaction { connection in
            try await store.save(
                [
                    Person(
                        uuid: Self.a, teamID: team, properties: ["plan": "pro"], createdAt: Self.at("2024-01-01T09:00:00Z"),
                        isIdentified: true, version: 2, updatedAt: later)
                ], on: connection)
            try await store.save(
                [PersonDistinctID(teamID: team, distinctID: "d3", personUUID: Self.a, version: 1, updatedAt: later)], on: connection)
            try await store.remove(teamID: team, uuids: [Self.b], on: connection)
        }
    }

    static let a = "0190a3b2-0000-7000-8000-00000000000a"
    static let b = "0190a3b2-0000-7000-8000-00000000000b"

    static func create(
        _ server: TestServer, _ world: Fixtures.World, model: String, type: String, config: JSONObject
    ) async throws -> String {
        let result = try await server.request(
            "POST", world.base + "/", key: world.member.key,
            json: .object([
                "name": .string(model), "model": .string(model), "interval": "hour",
                "destination": .object(["type": .string(type), "config": .object(config)]),
            ]))
        #expect(result.status == 201, "\(result.text)")
        #expect(result["model"] == .string(model))
        return result["id"]?.stringValue ?? ""
    }

    static func backfill(
        _ server: TestServer, _ world: Fixtures.World, _ id: String, _ start: String, _ end: String
    ) async throws -> TestResult {
        try await server.request(
            "POST", world.base + "/\(id)/backfills/", key: world.member.key,
            json: .object(["start_at": .string(start), "end_at": .string(end)]))
    }

    /// Captures `$pageview`s of distinct id `v` in `session` through `/batch/`: `(timestamp, URL)`
    /// each, with `extra` properties.
    static func pageviews(
        _ server: TestServer, _ world: Fixtures.World, session: String, _ views: [(String, String)], _ extra: JSONObject = [:]
    ) async throws {
        let token = try #require(
            try await server.request("GET", "/api/users/@me/", key: world.owner.key)["team"]?["api_token"]?.stringValue)
        let events: [JSONValue] = views.map { at, url in
            var properties: JSONObject = ["$session_id": .string(session), "$current_url": .string(url)]
            for entry in extra.entries { properties[entry.key] = entry.value }
            return .object(["event": "$pageview", "distinct_id": "v", "timestamp": .string(at), "properties": .object(properties)])
        }
        let result = try await server.request("POST", "/batch/", json: .object(["api_key": .string(token), "batch": .array(events)]))
        #expect(result.status == 200)
    }

    static func lastRun(_ server: TestServer, _ world: Fixtures.World, _ id: String) async throws -> JSONValue? {
        try await S3DestinationTests.runs(server, world, id).last
    }

    @Test(
        "A window holds each distinct id whose row (mapping or person) last changed in it, once, with the person's newest state",
        arguments: TestBackend.available)
    func personsWindow(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await Self.seedPersons(server, team: world.team)
            let models = ModelRecordStore(database: server.database)
            func read(_ start: String, _ end: String, batch: Int = 1) async throws -> [PersonRecord] {
                var all: [PersonRecord] = []
                let query = ModelQuery(teamID: world.team, start: Self.at(start), end: Self.at(end), isBackfill: false)
                for try await page in models.persons(query, batchSize: batch) { all += page }
                return all
            }
            // d1's mapping is older, but its person changed in the window: it comes with d2.
            let first = try await read("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z")
            #expect(first.map(\.distinctID).sorted() == ["d1", "d2", "d3"])
            let d1 = try #require(first.first { $0.distinctID == "d1" })
            #expect(d1.personID == Self.a && d1.personVersion == 1 && d1.distinctIDVersion == 0 && !d1.isDeleted)
            #expect(d1.insertedAt == Self.at("2024-01-01T10:10:00Z"))
            #expect(try await read("2024-01-01T10:15:00Z", "2024-01-01T11:00:00Z").map(\.distinctID) == ["d3"])
            // d1 was made at 09:00, but its row last changed at 10:10: each row is in the window of its latest change.
            #expect(try await read("2024-01-01T08:00:00Z", "2024-01-01T09:30:00Z", batch: 10).isEmpty)
            let estimate = try await models.personsEstimate(
                ModelQuery(
                    teamID: world.team, start: Self.at("2024-01-01T10:00:00Z"), end: Self.at("2024-01-01T11:00:00Z"), isBackfill: true))
            #expect(estimate.count == 3 && estimate.earliest == Self.at("2024-01-01T10:10:00Z"))
            try await Self.changePersons(server, team: world.team)
            // Every row changed again at 11:30 (its person did): the earlier window holds none now.
            #expect(try await read("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").isEmpty)
            let second = try await read("2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z", batch: 2)
            #expect(second.map(\.distinctID).sorted() == ["d1", "d2", "d3"])
            #expect(second.allSatisfy { $0.personID == Self.a && $0.personVersion == 2 })
            #expect(second.first { $0.distinctID == "d3" }?.distinctIDVersion == 1)
        }
    }

    @Test(
        "PostgreSQL: persons merged on (team_id, distinct_id), newest version kept, an older one never overwrites; no key, no run",
        .enabled(if: TestBackend.postgresURL != nil), arguments: TestBackend.available)
    func personsToPostgres(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await Self.seedPersons(server, team: world.team)
            let (config, schema) = try await PostgresDestinationTests.destination(overrides: [("table_name", "persons")])
            let id = try await Self.create(server, world, model: "persons", type: "Postgres", config: config)
            func rows() async throws -> [SQLRow] {
                try await TestBackend.postgresQuery("SELECT * FROM \(schema).persons ORDER BY distinct_id")
            }
            #expect(try await Self.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            var delivered = try await rows()
            #expect(delivered.count == 3)
            #expect(
                delivered.first?.columns == [
                    "team_id", "distinct_id", "person_id", "properties", "person_distinct_id_version", "person_version", "created_at",
                    "is_deleted",
                ])
            #expect(delivered.map { $0.string("person_id") } == [Self.a, Self.a, Self.b])
            #expect(try JSONParser.parse(delivered[0].string("properties") ?? "") == .object(["plan": "free"]))
            // A person changed between two runs: one row per distinct id, with the newest version.
            try await Self.changePersons(server, team: world.team)
            #expect(try await Self.backfill(server, world, id, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            delivered = try await rows()
            #expect(delivered.count == 3)
            #expect(delivered.allSatisfy { $0.string("person_id") == Self.a && $0.int("person_version") == 2 })
            #expect(delivered.map { $0.int("person_distinct_id_version") } == [0, 0, 1])
            #expect(try JSONParser.parse(delivered[2].string("properties") ?? "") == .object(["plan": "pro"]))
            // A newer row in the destination is never replaced by an older version.
            _ = try await TestBackend.postgresQuery(
                "UPDATE \(schema).persons SET person_version = 99, properties = '{\"plan\":\"newer\"}' WHERE distinct_id = 'd1'")
            #expect(try await Self.backfill(server, world, id, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            delivered = try await rows()
            #expect(delivered.count == 3)
            #expect(delivered[0].int("person_version") == 99)
            #expect(try JSONParser.parse(delivered[0].string("properties") ?? "") == .object(["plan": "newer"]))
            let ledger = try await TestBackend.postgresQuery("SELECT records FROM \(schema).hedgerow_export_ledger ORDER BY delivered_at")
            #expect(ledger.map { $0.int("records") } == [3, 3, 3])
            // A table without the merge key fails the run at once, saying so.
            _ = try await TestBackend.postgresQuery(
                "CREATE TABLE \(schema).keyless (team_id BIGINT, distinct_id TEXT, person_id TEXT, properties JSONB, person_distinct_id_version BIGINT, person_version BIGINT)"
            )
            let keyless = try await Self.create(
                server, world, model: "persons", type: "Postgres", config: config.merging(["table_name": "keyless"]))
            #expect(try await Self.backfill(server, world, keyless, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            let failed = try #require(try await Self.lastRun(server, world, keyless))
            #expect(failed["status"] == "Failed")
            #expect(failed["latest_error"]?.stringValue?.contains("MissingPrimaryKey") == true, "\(failed)")
            #expect(failed["latest_error"]?.stringValue?.contains("PRIMARY KEY (team_id, distinct_id)") == true)
            #expect(try await TestBackend.postgresQuery("SELECT * FROM \(schema).keyless").isEmpty)
            _ = try await TestBackend.postgresQuery("DROP SCHEMA \(schema) CASCADE")
        }
    }

    @Test(
        "PostgreSQL: sessions merged on (team_id, session_id), replaced only by a later end_timestamp",
        .enabled(if: TestBackend.postgresURL != nil), arguments: TestBackend.available)
    func sessionsToPostgres(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let session = "0190a3b2-cccc-7000-8000-000000000001"
            func send(_ at: String, _ url: String) async throws {
                try await Self.pageviews(server, world, session: session, [(at, url)])
            }
            try await send("2024-01-01T10:05:00Z", "https://a.example/one")
            try await send("2024-01-01T10:10:00Z", "https://a.example/two")
            let (config, schema) = try await PostgresDestinationTests.destination(overrides: [("table_name", "sessions")])
            let id = try await Self.create(server, world, model: "sessions", type: "Postgres", config: config)
            func row() async throws -> SQLRow? {
                try await TestBackend.postgresQuery(
                    "SELECT session_id, array_to_string(urls, ' ') AS urls, duration, end_current_url, pageview_count, EXTRACT(EPOCH FROM end_timestamp)::bigint AS end_epoch FROM \(schema).sessions"
                ).first
            }
            #expect(try await Self.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            var delivered = try #require(try await row())
            #expect(delivered.string("session_id") == session && delivered.int("duration") == 300)
            #expect(delivered.string("urls") == "https://a.example/one https://a.example/two")
            try await send("2024-01-01T10:20:00Z", "https://a.example/three")
            #expect(try await Self.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            delivered = try #require(try await row())
            #expect(delivered.int("duration") == 900 && delivered.int("pageview_count") == 3)
            #expect(delivered.string("end_current_url") == "https://a.example/three")
            #expect(try await TestBackend.postgresQuery("SELECT COUNT(*) AS n FROM \(schema).sessions").first?.int("n") == 1)
            // A row that ends later in the destination stays as it is.
            _ = try await TestBackend.postgresQuery(
                "UPDATE \(schema).sessions SET end_timestamp = '2030-01-01T00:00:00Z', duration = 1 WHERE session_id = '\(session)'")
            try await send("2024-01-01T10:30:00Z", "https://a.example/four")
            #expect(try await Self.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            #expect(try await row()?.int("duration") == 1)
            _ = try await TestBackend.postgresQuery("DROP SCHEMA \(schema) CASCADE")
        }
    }

    @Test(
        "S3: the persons files and manifest of a run, under {table}; sessions as Parquet with typed columns",
        arguments: TestBackend.available)
    func toS3(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await Self.seedPersons(server, team: world.team)
            let client = try await S3DestinationTests.bucket("models")
            let persons = try await Self.create(
                server, world, model: "persons", type: "S3",
                config: try S3DestinationTests.config(client, ["prefix": "{table}/{year}", "max_file_size_mb": 1]))
            #expect(try await Self.backfill(server, world, persons, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await S3DestinationTests.engine(server).step()
            let stem = "persons/2024/" + S3DestinationTests.stem
            let manifest = try JSONParser.parse(try await client.getObject(stem + "_manifest.json"))
            #expect(manifest["files"] == [.string(stem + "-0.jsonl")])
            #expect(manifest["records"] == 3)
            let lines = String(decoding: try await client.getObject(stem + "-0.jsonl"), as: UTF8.self).split(separator: "\n")
            let rows = try lines.map { try JSONParser.parse(Array($0.utf8)) }
            #expect(rows.count == 3)
            #expect(
                rows.first?.objectValue?.keys.map { $0 } == [
                    "team_id", "distinct_id", "person_id", "properties", "person_distinct_id_version", "person_version", "created_at",
                    "_inserted_at", "is_deleted",
                ])
            let d1 = try #require(rows.first { $0["distinct_id"] == "d1" })
            #expect(d1["team_id"] == .int(world.team) && d1["properties"] == .object(["plan": "free"]) && d1["is_deleted"] == .bool(false))
            #expect(d1["person_version"] == 1 && d1["created_at"] == "2024-01-01T09:00:00+00:00")

            // Sessions: Parquet, read back by pyarrow with their types.
            try await Self.pageviews(
                server, world, session: "0190a3b2-dddd-7000-8000-000000000001",
                ["10:05", "10:06"].map { ("2024-01-01T\($0):00Z", "https://a.example/\($0)") }, ["utm_source": "newsletter"])
            let sessions = try await Self.create(
                server, world, model: "sessions", type: "S3",
                config: try S3DestinationTests.config(client, ["prefix": "{table}", "file_format": "Parquet", "compression": "zstd"]))
            #expect(try await Self.backfill(server, world, sessions, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await S3DestinationTests.engine(server).step()
            let file = try ReferenceTools.temporaryFile(
                try await client.getObject("sessions/" + S3DestinationTests.stem + ".parquet"), suffix: ".parquet")
            defer { try? FileManager.default.removeItem(at: file) }
            let read = try ReferenceTools.python(
                """
                import sys, json, pyarrow.parquet as pq
                table = pq.read_table(sys.argv[1])
                print(json.dumps({"types": {f.name: str(f.type) for f in table.schema}, "rows": table.to_pylist()}, default=str))
                """, arguments: [file.path])
            let parsed = try JSONParser.parse(Array(read))
            #expect(parsed["types"]?["duration"] == "int64" && parsed["types"]?["is_bounce"] == "bool")
            #expect(parsed["types"]?["start_timestamp"] == "timestamp[us, tz=UTC]" && parsed["types"]?["vitals_lcp"] == "double")
            let session = try #require(parsed["rows"]?.arrayValue?.first)
            #expect(session["duration"] == 60 && session["is_bounce"] == .bool(false) && session["pageview_count"] == 2)
            #expect(session["entry_current_url"] == "https://a.example/10:05" && session["entry_utm_source"] == "newsletter")
            #expect(session["channel_type"] == "Email")
            #expect(session["urls"] == #"["https://a.example/10:05","https://a.example/10:06"]"#)
        }
    }

    @Test("NoOp counts each model's rows; persons ignore event filters", arguments: TestBackend.available)
    func noOp(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await Self.seedPersons(server, team: world.team)
            let id = try await Self.create(server, world, model: "persons", type: "NoOp", config: ["exclude_events": ["$pageview"]])
            let patched = try await server.request(
                "PATCH", world.base + "/\(id)/", key: world.member.key,
                json: .object(["filters": [.object(["key": "plan", "type": "event", "operator": "exact", "value": "x"])]]))
            #expect(patched.status == 200, "\(patched.text)")
            let backfill = try await Self.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z")
            #expect(backfill.status == 201)
            let detail = try await server.request(
                "GET", world.base + "/\(id)/backfills/\(backfill["backfill_id"]?.stringValue ?? "")/", key: world.member.key)
            #expect(detail["total_records_count"] == 3)
            try await PostgresDestinationTests.engine(server).step()
            let run = try #require(try await Self.lastRun(server, world, id))
            #expect(run["status"] == "Completed" && run["records_completed"] == 3, "\(run)")
            // A window without persons has nothing to backfill.
            let empty = try await Self.backfill(server, world, id, "2023-01-01T10:00:00Z", "2023-01-01T11:00:00Z")
            #expect(empty.status == 400 && empty["detail"] == "There is no data to backfill for this model.")
        }
    }
}

extension JSONObject {
    func merging(_ other: JSONObject) -> JSONObject {
        var merged = self
        for entry in other.entries { merged[entry.key] = entry.value }
        return merged
    }
}
