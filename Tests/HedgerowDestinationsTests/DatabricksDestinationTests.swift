import AsyncHTTPClient
import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowExport
import HedgerowFormats
import HedgerowRuntime
import HedgerowS3
import HedgerowStore
import HedgerowTestSupport
import Testing

@testable import HedgerowDestinations

/// Databricks exports. Whole runs go to the workspace contract server (the documented OAuth M2M,
/// Files API and Statement Execution contract, every request checked; COPY INTO and the SQL on
/// DuckDB), and the client's statements also run on brickhouse (real Delta
/// tables through Databricks' Statement Execution API).
@Suite("Databricks destination")
struct DatabricksDestinationTests {
    static func integration(
        _ server: TestServer, _ world: Fixtures.World, id: String = DatabricksTestServers.clientID,
        secret: String = DatabricksTestServers.clientSecret
    ) async throws -> Int64 {
        let result = try await server.request(
            "POST", "/api/environments/\(world.team)/integrations/", key: world.member.key,
            json: .object([
                "kind": "databricks",
                "config": .object([
                    "server_hostname": "dbc-hedgerow.cloud.databricks.com", "client_id": .string(id),
                    "client_secret": .string(secret),
                ]),
            ]))
        #expect(result.status == 201, "\(result.text)")
        return Fixtures.integrationID(result)
    }

    static func config(schema: String, table: String = "events", _ extra: JSONObject = [:]) -> JSONObject {
        var config: JSONObject = [
            "http_path": .string("/sql/1.0/warehouses/\(DatabricksTestServers.warehouse)"),
            "catalog": .string(DatabricksTestServers.catalog),
            "schema": .string(schema), "table_name": .string(table),
        ]
        for entry in extra.entries { config[entry.key] = entry.value }
        return config
    }

    static func export(
        _ server: TestServer, _ world: Fixtures.World, config: JSONObject, integration: Int64, model: String = "events"
    ) async throws -> String {
        let result = try await server.request(
            "POST", world.base + "/", key: world.member.key,
            json: .object([
                "name": "lakehouse", "model": .string(model), "interval": "hour",
                "destination": .object(["type": "Databricks", "integration_id": .int(integration), "config": .object(config)]),
            ]))
        #expect(result.status == 201, "\(result.text)")
        return result["id"]?.stringValue ?? ""
    }

    static func engine(_ server: TestServer) throws -> ExportEngine {
        var configuration = EngineConfiguration.forTests
        configuration.endpoints.databricks = try DatabricksTestServers.shared.get().contract
        return ExportEngine(
            database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
            logger: TestBackend.logger, clock: { .now() })
    }

    static func backfillHour(_ server: TestServer, _ world: Fixtures.World, _ id: String) async throws {
        let result = try await server.request(
            "POST", world.base + "/\(id)/backfills/", key: world.member.key, json: S3DestinationTests.hour)
        #expect(result.status == 201, "\(result.text)")
    }

    @Test(
        "Events through an integration: a token, Parquet into a stage volume by the Files API, COPY INTO a stage table, one MERGE; exactly once; the stage is dropped",
        arguments: TestBackend.available, [true, false])
    func events(backend: TestBackend, variant: Bool) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let schema = try DatabricksTestServers.makeSchema()
            let integration = try await Self.integration(server, world)
            let id = try await Self.export(
                server, world, config: Self.config(schema: schema, ["use_variant_type": .bool(variant)]), integration: integration)
            let before = try DatabricksTestServers.log().count
            let events = try await Fixtures.seedHour(server, team: world.team, count: 500)
            for _ in 0..<2 {
                try await Self.backfillHour(server, world, id)
                try await Self.engine(server).step()
            }
            let runs = try await S3DestinationTests.runs(server, world, id)
            #expect(runs.count == 2 && runs.allSatisfy { $0["status"] == "Completed" }, "\(runs)")
            let rows = try DatabricksTestServers.query(
                "SELECT uuid, event, CAST(properties AS VARCHAR), typeof(properties), typeof(\"timestamp\") FROM events", schema: schema)
            #expect(rows.count == events.count)
            #expect(Set(rows.compactMap { $0[0] }) == Set(events.map(\.uuid)))
            #expect(rows.first?[3] == (variant ? "JSON" : "VARCHAR"))
            #expect(rows.first?[4] == "TIMESTAMP WITH TIME ZONE")
            let byUUID = Dictionary(uniqueKeysWithValues: events.map { ($0.uuid, $0) })
            for row in rows.prefix(10) {
                let event = try #require(byUUID[row[0] ?? ""])
                #expect(row[1] == event.event)
                #expect(
                    S3DestinationTests.sortedKeys(try JSONParser.parse(Array((row[2] ?? "").utf8)))
                        == S3DestinationTests.sortedKeys(try JSONParser.parse(Array(event.properties.utf8))))
            }
            // What went over the wire: a token, the files, the statements; nothing is left staged.
            let log = Array(try DatabricksTestServers.log().dropFirst(before))
            // A token was issued (tokens are kept per service principal, so perhaps for an earlier test;
            // the server answers 401 to any request without a token it issued).
            #expect(
                try DatabricksTestServers.log().contains { ($0["path"] as? String) == "/oidc/v1/token" && ($0["status"] as? Int) == 200 })
            let uploads = log.filter {
                ($0["method"] as? String) == "PUT"
                    && (($0["path"] as? String) ?? "").hasPrefix("/api/2.0/fs/files/Volumes/main/\(schema)/hedgerow_stage_")
            }
            #expect(uploads.count == 2 && uploads.allSatisfy { ($0["status"] as? Int) == 204 }, "\(uploads)")
            let statements = log.filter { ($0["schema"] as? String) == schema }.compactMap { $0["statement"] as? String }
            #expect(
                statements.contains {
                    $0.hasPrefix("CREATE TABLE IF NOT EXISTS `events` (") && $0.hasSuffix("USING DELTA COMMENT 'PostHog generated table'")
                })
            #expect(
                statements.contains {
                    $0.hasPrefix("COPY INTO `hedgerow_stage_") && $0.hasSuffix("FILEFORMAT = PARQUET")
                        && $0.contains("FROM '/Volumes/main/\(schema)/hedgerow_stage_")
                })
            #expect(statements.contains { $0.hasPrefix("MERGE WITH SCHEMA EVOLUTION INTO `events` AS target") })
            #expect(statements.contains { $0.contains("PARSE_JSON(`properties`)") } == variant)
            let left = try DatabricksTestServers.volumes()
            #expect(
                !left.volumes.contains { $0.hasPrefix("main/\(schema)/") } && !left.files.contains { $0.hasPrefix("main/\(schema)/") },
                "\(left)")
            #expect(
                try DatabricksTestServers.query(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main__\(schema)'", schema: schema
                ).first?.first == "1")
        }
    }

    @Test(
        "Persons and sessions are merged on their key: the newest version kept, an older one never overwrites",
        arguments: TestBackend.available)
    func mergeModels(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await ModelExportTests.seedPersons(server, team: world.team)
            let schema = try DatabricksTestServers.makeSchema()
            let integration = try await Self.integration(server, world)
            let id = try await Self.export(
                server, world, config: Self.config(schema: schema, table: "persons"), integration: integration, model: "persons")
            func run(_ start: String, _ end: String) async throws {
                #expect(try await ModelExportTests.backfill(server, world, id, start, end).status == 201)
                try await Self.engine(server).step()
                #expect(try await ModelExportTests.lastRun(server, world, id)?["status"] == "Completed")
            }
            func rows() throws -> [[String?]] {
                try DatabricksTestServers.query(
                    "SELECT distinct_id, person_id, person_version, person_distinct_id_version, CAST(properties AS VARCHAR) FROM persons ORDER BY distinct_id",
                    schema: schema)
            }
            try await run("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z")
            #expect(try rows().map { $0[1] } == [ModelExportTests.a, ModelExportTests.a, ModelExportTests.b])
            try await ModelExportTests.changePersons(server, team: world.team)
            try await run("2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z")
            var delivered = try rows()
            #expect(delivered.count == 3 && delivered.allSatisfy { $0[1] == ModelExportTests.a && $0[2] == "2" }, "\(delivered)")
            #expect(delivered.map { $0[3] } == ["0", "0", "1"])
            _ = try DatabricksTestServers.query(
                "UPDATE persons SET person_version = 99, properties = '{\"plan\":\"newer\"}' WHERE distinct_id = 'd1'", schema: schema)
            try await run("2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z")
            delivered = try rows()
            #expect(delivered.count == 3 && delivered[0][2] == "99" && delivered[0][4] == "{\"plan\":\"newer\"}", "\(delivered)")

            // Sessions: a later end_timestamp replaces the row; urls arrive as ARRAY<STRING>.
            let sessions = try await Self.export(
                server, world, config: Self.config(schema: schema, table: "sessions"), integration: integration, model: "sessions")
            try await ModelExportTests.pageviews(
                server, world, session: RedshiftDestinationTests.session,
                [("2024-01-01T10:05:00Z", "https://a.example/x"), ("2024-01-01T10:20:00Z", "https://a.example/y")])
            for more in [[], [("2024-01-01T10:40:00Z", "https://a.example/z")]] {
                if !more.isEmpty { try await ModelExportTests.pageviews(server, world, session: RedshiftDestinationTests.session, more) }
                #expect(
                    try await ModelExportTests.backfill(server, world, sessions, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status
                        == 201)
                try await Self.engine(server).step()
                #expect(try await ModelExportTests.lastRun(server, world, sessions)?["status"] == "Completed")
            }
            let stored = try DatabricksTestServers.query(
                "SELECT session_id, CAST(end_timestamp AS VARCHAR), len(urls), typeof(urls) FROM sessions", schema: schema)
            #expect(stored.count == 1)
            #expect(stored.first?[1]?.hasPrefix("2024-01-01 10:40:00") == true, "\(stored)")
            #expect(stored.first?[2] == "3" && stored.first?[3] == "VARCHAR[]", "\(stored)")
        }
    }

    @Test(
        "A refused secret, a missing schema and an unknown warehouse fail the run at once, classified as PostHog's",
        arguments: TestBackend.available)
    func errors(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let schema = try DatabricksTestServers.makeSchema()
            _ = try await Fixtures.seedHour(server, team: world.team, count: 5)
            let good = try await Self.integration(server, world)
            let cases: [(Int64, JSONObject, String)] = [
                (try await Self.integration(server, world, secret: "wrong"), Self.config(schema: schema), "DatabricksAuthenticationError"),
                (good, Self.config(schema: "absent_schema"), "DatabricksStatementError"),
                (good, Self.config(schema: schema, ["http_path": "/sql/1.0/warehouses/nope"]), "DatabricksStatementError"),
            ]
            for (integration, config, kind) in cases {
                let id = try await Self.export(server, world, config: config, integration: integration)
                try await Self.backfillHour(server, world, id)
                try await Self.engine(server).step()
                let run = try #require(try await S3DestinationTests.runs(server, world, id).first)
                #expect(run["status"] == "Failed", "\(run)")
                #expect(run["latest_error"]?.stringValue?.hasPrefix(kind) == true, "\(run)")
            }
        }
    }

    @Test(
        "A token the workspace revokes fails the attempt as retryable and is forgotten: the next attempt gets a new one",
        arguments: TestBackend.available)
    func revokedToken(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let schema = try DatabricksTestServers.makeSchema()
            // A principal of its own, so that revoking its tokens leaves the other tests' alone.
            let principal = "sp-" + schema
            try DatabricksTestServers.addPrincipal(id: principal, secret: "secret-" + schema)
            let integration = try await Self.integration(server, world, id: principal, secret: "secret-" + schema)
            let id = try await Self.export(server, world, config: Self.config(schema: schema), integration: integration)
            _ = try await Fixtures.seedHour(server, team: world.team, count: 20)
            // A first run caches a token; then the workspace revokes it.
            try await Self.backfillHour(server, world, id)
            try await Self.engine(server).step()
            #expect(try await S3DestinationTests.runs(server, world, id).first?["status"] == "Completed")
            try DatabricksTestServers.revokeTokens(of: principal)
            try await Self.backfillHour(server, world, id)
            try await Self.engine(server).step()
            func newest() async throws -> JSONValue? {
                try await server.request("GET", world.base + "/\(id)/runs/?ordering=-created_at", key: world.member.key)["results"]?
                    .arrayValue?.first
            }
            // The attempt with the revoked token fails as retryable; the next one (due a second later,
            // perhaps already taken by the same step on a slow machine) gets a new token.
            if try await newest()?["status"] == "FailedRetryable" {
                try await server.database.transaction {
                    try await $0.execute(
                        "UPDATE batch_export_runs SET next_attempt_at = 0 WHERE batch_export_id = $1 AND status = 'FailedRetryable'",
                        [.text(id)])
                }
                try await Self.engine(server).step()
            }
            let logs = try await server.request(
                "GET", world.base + "/\(id)/logs/?search=DatabricksTokenRejected", key: world.member.key)
            #expect(logs["results"]?.arrayValue?.isEmpty == false, "\(logs.text)")
            #expect(try await newest()?["status"] == "Completed")
            #expect(try DatabricksTestServers.query("SELECT count(*) FROM events", schema: schema).first?.first == "20")
        }
    }

    @Test(
        "On brickhouse (real Delta tables): statements with named parameters, NULLs, results as text, a failed statement's error"
    )
    func brickhouse() async throws {
        let servers = try DatabricksTestServers.shared.get()
        // The process's shared client (never shut down, so a failing expectation cannot leak it).
        let http = S3Client.sharedHTTPClient
        let client = DatabricksClient(
            baseURL: servers.brickhouse, clientID: "", clientSecret: "", warehouseID: servers.brickhouseWarehouse, http: http)
        let token = "brickhouse-local"
        let suffix = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8).lowercased()
        let final = "events_\(suffix)"
        let stage = "stage_\(suffix)"
        func sql(_ text: String, _ parameters: [DatabricksClient.Parameter] = []) async throws -> [[String?]] {
            try await client.statement(text, token: token, catalog: "main", schema: "default", parameters: parameters)
        }
        for table in [final, stage] {
            _ = try await sql("CREATE TABLE `\(table)` (`uuid` STRING, `event` STRING, `team_id` BIGINT) USING DELTA")
        }
        _ = try await sql(
            "INSERT INTO `\(final)` VALUES (:uuid, :event, 1)", [.init(name: "uuid", value: "u1"), .init(name: "event", value: "kept")])
        for (uuid, event) in [("u1", "duplicate"), ("u2", "second"), ("u3", nil as String?)] {
            _ = try await sql(
                "INSERT INTO `\(stage)` VALUES (:uuid, :event, 1)", [.init(name: "uuid", value: uuid), .init(name: "event", value: event)])
        }
        // brickhouse's MERGE takes one UPDATE and one INSERT clause on a single key, which neither
        // of the export's merges is: they run on the contract server's DuckDB instead.
        _ = try await sql("INSERT INTO `\(final)` SELECT * FROM `\(stage)` WHERE `uuid` <> :skip", [.init(name: "skip", value: "u1")])
        let rows = try await sql("SELECT `uuid`, `event`, `team_id` FROM `\(final)` ORDER BY `uuid`")
        #expect(rows == [["u1", "kept", "1"], ["u2", "second", "1"], ["u3", nil, "1"]])
        do {
            _ = try await sql("SELECT * FROM `absent_\(suffix)`")
            Issue.record("a missing table should fail the statement")
        } catch let error as DestinationError {
            #expect(error.kind == .databricksStatementError && !error.retryable, "\(error)")
        }
        for table in [final, stage] { _ = try await sql("DROP TABLE IF EXISTS `\(table)`") }
    }

    @Test("The merge statements: events insert new uuids; mutable models update only newer rows; without schema evolution, named columns")
    func mergeStatements() {
        #expect(
            DatabricksDestination.mergeStatement(final: "`e`", stage: "`s`", columns: ["uuid", "event"], rule: nil, schemaEvolution: true)
                == "MERGE WITH SCHEMA EVOLUTION INTO `e` AS target USING `s` AS source ON target.`uuid` = source.`uuid` WHEN NOT MATCHED THEN INSERT *"
        )
        #expect(
            DatabricksDestination.mergeStatement(
                final: "`p`", stage: "`s`", columns: ["team_id", "distinct_id", "person_version"],
                rule: (["team_id", "distinct_id"], ["person_version"]), schemaEvolution: false)
                == "MERGE INTO `p` AS target USING `s` AS source ON target.`team_id` = source.`team_id` AND target.`distinct_id` = source.`distinct_id` WHEN MATCHED AND (target.`person_version` < source.`person_version`) THEN UPDATE SET `team_id` = source.`team_id`, `distinct_id` = source.`distinct_id`, `person_version` = source.`person_version` WHEN NOT MATCHED THEN INSERT (`team_id`, `distinct_id`, `person_version`) VALUES (source.`team_id`, source.`distinct_id`, source.`person_version`)"
        )
        #expect(DestinationSettings.Databricks.warehouseID(httpPath: "/sql/1.0/warehouses/abc123") == "abc123")
        #expect(DestinationSettings.Databricks.warehouseID(httpPath: "sql/protocolv1/o/123/0123-456789-abc") == nil)
    }

    @Test(
        "The API: inline credentials or an integration, a SQL warehouse's http_path; the destination test gets a token and runs a statement",
        arguments: TestBackend.available)
    func validationAndTest(backend: TestBackend) async throws {
        try await TestServer.run(
            backend, configure: { $0.engine.endpoints.databricks = try? DatabricksTestServers.shared.get().contract }
        ) { server in
            let world = try await Fixtures.world(server)
            func create(_ destination: JSONObject) async throws -> TestResult {
                try await server.request(
                    "POST", world.base + "/", key: world.member.key,
                    json: .object(["name": "d", "interval": "hour", "destination": .object(destination)]))
            }
            try await create(["type": "Databricks", "config": .object(Self.config(schema: "x"))]).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail:
                    "Configuration missing required field: 'server_hostname' (or give the id of a 'databricks' integration as 'integration_id')",
                attr: "destination")
            try await create([
                "type": "Databricks", "config": .object(Self.config(schema: "x", ["http_path": "/sql/protocolv1/o/1/0123-abc"])),
                "integration_id": .int(try await Self.integration(server, world)),
            ]).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "http_path must name a SQL warehouse (/sql/1.0/warehouses/<id>): Databricks exports run on SQL warehouses",
                attr: "destination")
            var inline = Self.config(schema: try DatabricksTestServers.makeSchema())
            inline["server_hostname"] = "dbc-inline.cloud.databricks.com"
            inline["client_id"] = .string(DatabricksTestServers.clientID)
            inline["client_secret"] = .string(DatabricksTestServers.clientSecret)
            let created = try await create(["type": "Databricks", "config": .object(inline)])
            #expect(created.status == 201, "\(created.text)")
            #expect(!created.text.contains(DatabricksTestServers.clientSecret))
            for (secret, status) in [(DatabricksTestServers.clientSecret, "Passed"), ("wrong", "Failed")] {
                var config = inline
                config["client_secret"] = .string(secret)
                for step in 0..<2 {
                    let result = try await server.request(
                        "POST", world.base + "/run_test_step_new/", key: world.member.key,
                        json: .object([
                            "step": .int(Int64(step)), "destination": .object(["type": "Databricks", "config": .object(config)]),
                        ]))
                    #expect(result["result"]?["status"] == .string(status), "\(step): \(result.text)")
                }
            }
        }
    }
}
