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

/// Redshift exports, run on PostgreSQL 15 (Redshift speaks its protocol): the statements are ones
/// both run, in a schema where `SUPER` is a domain over jsonb and `JSON_PARSE` a function. Rows are
/// read back with psycopg. COPY from S3, which only Redshift runs, is covered by its statement and
/// by the files and manifest it names, read back from moto.
@Suite("Redshift destination", .enabled(if: TestBackend.postgresURL != nil))
struct RedshiftDestinationTests {
    /// A schema standing in for Redshift, and the export's config (INSERT mode unless `extra` says).
    static func destination(table: String = "events", _ extra: JSONObject = [:]) async throws -> (config: JSONObject, schema: String) {
        let name = "rs_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        var (config, schema) = try await PostgresDestinationTests.destination(schema: name, overrides: [("table_name", .string(table))])
        config["properties_data_type"] = "varchar"
        config["mode"] = "INSERT"
        for entry in extra.entries { config[entry.key] = entry.value }
        _ = try await TestBackend.postgresQuery("CREATE DOMAIN \(schema).super AS jsonb")
        _ = try await TestBackend.postgresQuery(
            "CREATE FUNCTION \(schema).json_parse(text) RETURNS \(schema).super LANGUAGE SQL IMMUTABLE AS $$ SELECT $1::jsonb $$")
        return (config, schema)
    }

    /// Rows read back with psycopg (the Python client PostHog's Redshift export is written against).
    static func psycopg(_ sql: String) throws -> [JSONValue] {
        let output = try ReferenceTools.python(
            """
            import sys, json, psycopg
            with psycopg.connect(sys.argv[1]) as connection:
                cursor = connection.execute(sys.argv[2])
                names = [column.name for column in cursor.description]
                print(json.dumps([dict(zip(names, row)) for row in cursor.fetchall()], default=str))
            """, arguments: [TestBackend.postgresURL ?? "", sql])
        return try JSONParser.parse(Array(output)).arrayValue ?? []
    }

    static func columnTypes(_ schema: String, _ table: String) async throws -> [String: String] {
        let rows = try await TestBackend.postgresQuery(
            "SELECT column_name, COALESCE(domain_name, data_type) AS type, character_maximum_length AS length FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
            [.text(schema), .text(table)])
        return Dictionary(
            uniqueKeysWithValues: rows.map {
                ($0.string("column_name") ?? "", ($0.string("type") ?? "") + ($0.int("length").map { "(\($0))" } ?? ""))
            })
    }

    static func export(
        _ server: TestServer, _ world: Fixtures.World, config: JSONObject, model: String = "events"
    ) async throws -> String {
        let result = try await server.request(
            "POST", world.base + "/", key: world.member.key,
            json: .object([
                "name": "redshift", "model": .string(model), "interval": "hour",
                "destination": .object(["type": "Redshift", "config": .object(config)]),
            ]))
        #expect(result.status == 201, "\(result.text)")
        #expect(result["destination"]?["config"]?["password"] == nil && result["destination"]?["config"]?["user"] == nil)
        return result["id"]?.stringValue ?? ""
    }

    @Test(
        "INSERT mode: events once, in VARCHAR(65535) or SUPER columns, with the run's ledger row; an overlapping backfill adds nothing",
        arguments: TestBackend.available, ["varchar", "super"])
    func insertEvents(backend: TestBackend, dataType: String) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let (config, schema) = try await Self.destination(["properties_data_type": .string(dataType)])
            let id = try await Self.export(server, world, config: config)
            // More rows than one statement's 30 000 bound values hold (11 columns: 2 727 rows).
            let events = try await Fixtures.seedHour(server, team: world.team, count: 6_000)
            for _ in 0..<2 {
                #expect(
                    try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: S3DestinationTests.hour)
                        .status == 201)
                try await PostgresDestinationTests.engine(server).step()
            }
            let runs = try await S3DestinationTests.runs(server, world, id)
            #expect(runs.count == 2 && runs.allSatisfy { $0["status"] == "Completed" }, "\(runs)")
            let types = try await Self.columnTypes(schema, "events")
            let json = dataType == "super" ? "super" : "character varying(65535)"
            #expect(types["properties"] == json && types["set"] == json && types["set_once"] == json, "\(types)")
            #expect(types["uuid"] == "character varying(200)" && types["team_id"] == "integer", "\(types)")
            #expect(types["timestamp"] == "timestamp with time zone")
            let rows = try Self.psycopg("SELECT uuid, event, properties::text AS properties, \"timestamp\" FROM \(schema).events")
            #expect(rows.count == events.count)
            #expect(Set(rows.compactMap { $0["uuid"]?.stringValue }) == Set(events.map(\.uuid)))
            let byUUID = Dictionary(uniqueKeysWithValues: events.map { ($0.uuid, $0) })
            for row in rows.prefix(20) {
                let event = try #require(byUUID[row["uuid"]?.stringValue ?? ""])
                #expect(row["event"] == .string(event.event))
                let stored = try JSONParser.parse(Array((row["properties"]?.stringValue ?? "").utf8))
                #expect(
                    S3DestinationTests.sortedKeys(stored)
                        == S3DestinationTests.sortedKeys(try JSONParser.parse(Array(event.properties.utf8))))
            }
            if dataType == "super" {
                // SUPER holds JSON, not text: its members can be read.
                let nested = try Self.psycopg("SELECT count(*) AS n FROM \(schema).events WHERE properties -> 'nested' ->> 'a' IS NOT NULL")
                #expect(nested.first?["n"] == .int(Int64(events.count)))
            }
            let ledger = try Self.psycopg("SELECT records FROM \(schema).hedgerow_export_ledger ORDER BY delivered_at")
            // Each run read every event of the hour; the second stored none again (the row count above).
            #expect(ledger.map { $0["records"] } == [.int(Int64(events.count)), .int(Int64(events.count))])
            _ = try await TestBackend.postgresQuery("DROP SCHEMA \(schema) CASCADE")
        }
    }

    @Test(
        "Persons and sessions are merged on their key: one row each, the newest version kept, an older one never overwrites",
        arguments: TestBackend.available)
    func mergeModels(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await ModelExportTests.seedPersons(server, team: world.team)
            let (config, schema) = try await Self.destination(table: "persons", ["properties_data_type": "super"])
            let id = try await Self.export(server, world, config: config, model: "persons")
            #expect(try await ModelExportTests.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            func rows() throws -> [JSONValue] {
                try Self.psycopg(
                    "SELECT distinct_id, person_id, person_version, person_distinct_id_version, properties::text AS properties FROM \(schema).persons ORDER BY distinct_id"
                )
            }
            #expect(
                try rows().map { $0["person_id"] } == [
                    .string(ModelExportTests.a), .string(ModelExportTests.a), .string(ModelExportTests.b),
                ])
            try await ModelExportTests.changePersons(server, team: world.team)
            #expect(try await ModelExportTests.backfill(server, world, id, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            var delivered = try rows()
            #expect(delivered.count == 3)
            #expect(delivered.allSatisfy { $0["person_id"] == .string(ModelExportTests.a) && $0["person_version"] == 2 }, "\(delivered)")
            #expect(delivered.map { $0["person_distinct_id_version"] } == [0, 0, 1])
            // A newer row in the destination is never replaced by an older version.
            _ = try await TestBackend.postgresQuery(
                "UPDATE \(schema).persons SET person_version = 99, properties = '{\"plan\":\"newer\"}' WHERE distinct_id = 'd1'")
            #expect(try await ModelExportTests.backfill(server, world, id, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            delivered = try rows()
            #expect(delivered.count == 3)
            #expect(delivered.first?["person_version"] == 99)
            #expect(try JSONParser.parse(Array((delivered.first?["properties"]?.stringValue ?? "").utf8)) == .object(["plan": "newer"]))
            let types = try await Self.columnTypes(schema, "persons")
            #expect(types["properties"] == "super" && types["distinct_id"] == "character varying(200)", "\(types)")

            // Sessions: a later end_timestamp replaces the row, nothing else does.
            let (sessionConfig, sessionSchema) = try await Self.destination(table: "sessions")
            let sessions = try await Self.export(server, world, config: sessionConfig, model: "sessions")
            try await ModelExportTests.pageviews(
                server, world, session: Self.session,
                [("2024-01-01T10:05:00Z", "https://a.example/x"), ("2024-01-01T10:20:00Z", "https://a.example/y")])
            #expect(
                try await ModelExportTests.backfill(server, world, sessions, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            try await ModelExportTests.pageviews(server, world, session: Self.session, [("2024-01-01T10:40:00Z", "https://a.example/z")])
            #expect(
                try await ModelExportTests.backfill(server, world, sessions, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await PostgresDestinationTests.engine(server).step()
            let stored = try Self.psycopg("SELECT session_id, end_timestamp, urls::text AS urls FROM \(sessionSchema).sessions")
            #expect(stored.count == 1)
            #expect(stored.first?["end_timestamp"]?.stringValue?.hasPrefix("2024-01-01 10:40:00") == true, "\(stored)")
            #expect(try JSONParser.parse(Array((stored.first?["urls"]?.stringValue ?? "").utf8)).arrayValue?.count == 3)
            #expect(try await Self.columnTypes(sessionSchema, "sessions")["urls"] == "super")
            _ = try await TestBackend.postgresQuery("DROP SCHEMA \(schema) CASCADE")
            _ = try await TestBackend.postgresQuery("DROP SCHEMA \(sessionSchema) CASCADE")
        }
    }

    static let session = "0190a3b2-cccc-7000-8000-0000000000a1"

    @Test("COPY's statement names the manifest with each of PostHog's authorization forms")
    func copyStatements() throws {
        let cases: [(JSONValue, String)] = [
            ("arn:aws:iam::123456789012:role/Loader", "IAM_ROLE 'arn:aws:iam::123456789012:role/Loader'"),
            ("default", "IAM_ROLE default"),
            (
                .object(["aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "se'cret"]),
                "ACCESS_KEY_ID 'AKIAEXAMPLE' SECRET_ACCESS_KEY 'se''cret'"
            ),
        ]
        for (authorization, clause) in cases {
            let inputs = try RedshiftDestination.CopyInputs([
                "s3_bucket": "lake", "region_name": "eu-west-1", "s3_key_prefix": "/exports/", "authorization": authorization,
            ])
            #expect(inputs.keyPrefix == "exports/")
            #expect(
                RedshiftDestination.copyStatement(
                    stage: "\"stage\"", columns: ["uuid", "timestamp"], bucket: "lake", manifest: "exports/a_manifest.json", copy: inputs)
                    == "COPY \"stage\" (\"uuid\", \"timestamp\") FROM 's3://lake/exports/a_manifest.json' \(clause) MANIFEST FORMAT AS PARQUET SERIALIZETOJSON"
            )
        }
    }

    @Test(
        "COPY mode writes Parquet and a Redshift manifest to the bucket (read back from moto), then removes them whatever COPY answers",
        arguments: TestBackend.available)
    func copyFiles(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let bucket = try await S3DestinationTests.bucket("redshift")
            let keys: JSONValue = .object([
                "aws_access_key_id": .string(S3DestinationTests.credentials.accessKeyID),
                "aws_secret_access_key": .string(S3DestinationTests.credentials.secretAccessKey),
            ])
            let inputs: JSONObject = [
                "s3_bucket": .string(bucket.bucket), "region_name": "us-east-1", "s3_key_prefix": "copy", "authorization": keys,
                "endpoint_url": .string(try S3TestServer.shared.get()),
            ]
            let events = try await Fixtures.seedHour(server, team: world.team, count: 400)
            // The files as COPY would read them: staged by the destination itself.
            let copy = try RedshiftDestination.CopyInputs(inputs)
            let export = BatchExport(
                id: Identifiers.uuidV7(), teamID: world.team, name: "r", model: .events, destinationType: .redshift,
                destinationConfig: [:], interval: .hour, paused: false, createdAt: .now(), timezone: "UTC")
            let run = BatchExportRun(
                id: Identifiers.uuidV7(), batchExportID: export.id, backfillID: nil,
                dataIntervalStart: ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp,
                dataIntervalEnd: ISO8601.parse("2024-01-01T11:00:00Z")!.timestamp, createdAt: .now())
            let context = try DeliveryContext(export: export, run: run)
            let query = EventQuery(teamID: world.team, field: .timestamp, start: run.dataIntervalStart!, end: run.dataIntervalEnd)
            let rows = WarehouseRows(.events(SQLEventStore(database: server.database).batches(query, batchSize: 150)))
            let destination = RedshiftDestination(logger: TestBackend.logger, connector: OutboundConnector(policy: .loopbackAllowed))
            var uploaded: [String] = []
            let (manifestKey, result) = try await destination.stageFiles(
                rows, columns: rows.columns, context: context, copy: copy, client: try RedshiftDestination.s3Client(copy),
                uploaded: &uploaded, afterBatch: { _ in })
            #expect(result.records == Int64(events.count))
            #expect(manifestKey == "copy/" + S3DestinationTests.stem + "_manifest.json")
            let manifest = try JSONParser.parse(try await bucket.getObject(manifestKey))
            let entries = manifest["entries"]?.arrayValue ?? []
            #expect(entries.count == 1)
            for entry in entries {
                let url = entry["url"]?.stringValue ?? ""
                #expect(url == "s3://\(bucket.bucket)/copy/\(S3DestinationTests.stem)-0.parquet")
                #expect(entry["mandatory"] == true)
                let body = try await bucket.getObject(String(url.dropFirst("s3://\(bucket.bucket)/".count)))
                #expect(entry["meta"]?["content_length"] == .int(Int64(body.count)))
                let file = try ReferenceTools.temporaryFile(body, suffix: ".parquet")
                defer { try? FileManager.default.removeItem(at: file) }
                let read = try ReferenceTools.python(
                    """
                    import sys, json, pyarrow.parquet as pq
                    table = pq.read_table(sys.argv[1])
                    print(json.dumps({"rows": table.num_rows, "columns": table.column_names, "codec": pq.ParquetFile(sys.argv[1]).metadata.row_group(0).column(0).compression}))
                    """, arguments: [file.path])
                let summary = try JSONParser.parse(Array(read))
                #expect(summary["rows"] == .int(Int64(events.count)))
                #expect(summary["columns"] == .array(EventProjection.warehouseColumns.map { .string($0.name) }))
                #expect(summary["codec"] == "ZSTD")
            }
            await RedshiftDestination.remove(uploaded, client: bucket)
            #expect(try await bucket.listObjects(prefix: "").isEmpty)

            // A whole COPY-mode run on PostgreSQL: COPY from S3 is Redshift's alone, so it fails there
            // (PostgreSQL reads 's3://…' as a file of its own); the run says so and the files are gone.
            let (config, schema) = try await Self.destination(["mode": "COPY", "copy_inputs": .object(inputs)])
            let id = try await Self.export(server, world, config: config)
            #expect(
                try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: S3DestinationTests.hour)
                    .status
                    == 201)
            try await PostgresDestinationTests.engine(server).step()
            let runs = try await S3DestinationTests.runs(server, world, id)
            #expect(runs.first?["latest_error"]?.stringValue?.contains("s3://\(bucket.bucket)/copy/") == true, "\(runs)")
            #expect(try await bucket.listObjects(prefix: "").isEmpty)
            // The run's transaction, table creation included, was rolled back.
            #expect(try Self.psycopg("SELECT to_regclass('\(schema).events')::text AS t").first?["t"] == .null)
            _ = try await TestBackend.postgresQuery("DROP SCHEMA \(schema) CASCADE")
        }
    }

    @Test(
        "The API checks Redshift's modes, data types and copy_inputs with clear messages; COPY keys are secrets",
        arguments: TestBackend.available)
    func validation(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let base: JSONObject = ["host": "db.example.com", "user": "u", "password": "p", "database": "dev"]
            func create(_ extra: JSONObject) async throws -> TestResult {
                var config = base
                for entry in extra.entries { config[entry.key] = entry.value }
                return try await server.request(
                    "POST", world.base + "/", key: world.member.key,
                    json: .object([
                        "name": "r", "interval": "hour", "destination": .object(["type": "Redshift", "config": .object(config)]),
                    ]))
            }
            let refusals: [(JSONObject, String)] = [
                (
                    ["properties_data_type": "json"],
                    "Properties data type 'json' is not supported. Supported types are ['varchar', 'super']"
                ),
                (["mode": "UNLOAD"], "Mode 'UNLOAD' is not supported. Supported modes are ['INSERT', 'COPY']"),
                (["mode": "COPY"], "'copy_inputs' are required when mode is 'COPY'"),
                (
                    ["mode": "COPY", "copy_inputs": .object(["s3_bucket": "b", "authorization": "default"])],
                    "'copy_inputs' missing required field: 'region_name'"
                ),
                (
                    ["mode": "COPY", "copy_inputs": .object(["s3_bucket": "b", "region_name": "r"])],
                    "'copy_inputs' missing required field: 'authorization'"
                ),
                (
                    ["mode": "COPY", "copy_inputs": .object(["s3_bucket": "b", "region_name": "r", "authorization": "root"])],
                    "'copy_inputs.authorization' must be an IAM role ARN, 'default', AWS keys or an integration id"
                ),
                (
                    [
                        "mode": "COPY",
                        "copy_inputs": .object(["s3_bucket": "b", "region_name": "r", "authorization": .object(["aws_access_key_id": "k"])]
                        ),
                    ],
                    "'copy_inputs.authorization' needs 'aws_access_key_id' and 'aws_secret_access_key'"
                ),
                (
                    ["mode": "COPY", "copy_inputs": .object(["s3_bucket": "b", "region_name": "r", "authorization": "default", "x": 1])],
                    "'copy_inputs' has unknown field/s: 'x'"
                ),
            ]
            for (extra, detail) in refusals {
                try await create(extra).expectError(
                    400, type: "validation_error", code: "invalid_input", detail: detail, attr: "destination")
            }
            let created = try await create([
                "mode": "COPY",
                "copy_inputs": .object([
                    "s3_bucket": "b", "region_name": "eu-west-1",
                    "authorization": .object(["aws_access_key_id": "AKIAVISIBLE", "aws_secret_access_key": "hidden-secret"]),
                ]),
            ])
            #expect(created.status == 201, "\(created.text)")
            #expect(created["destination"]?["config"]?["port"] == 5439)
            #expect(!created.text.contains("hidden-secret") && !created.text.contains("AKIAVISIBLE"))
            // PATCH keeps the sealed COPY keys.
            let id = created["id"]?.stringValue ?? ""
            let patched = try await server.request(
                "PATCH", world.base + "/\(id)/", key: world.member.key,
                json: .object(["destination": .object(["type": "Redshift", "config": .object(["table_name": "other"])])]))
            #expect(patched.status == 200, "\(patched.text)")
            let stored = try await server.database.read { try await BatchExportStore().find(id: id, on: $0) }
            let opened = try SecretBox.load(server.configuration).open(try #require(stored?.sealedSecrets))
            #expect(opened["copy_inputs"]?["authorization"]?["aws_secret_access_key"] == "hidden-secret")

            // An aws-s3 integration may stand for the COPY keys.
            let integration = try await server.request(
                "POST", "/api/environments/\(world.team)/integrations/", key: world.member.key,
                json: .object([
                    "kind": "aws-s3",
                    "config": .object(["aws_access_key_id": "AKIAINTEGRATION", "aws_secret_access_key": "integration-secret"]),
                ]))
            #expect(integration.status == 201, "\(integration.text)")
            let integrationID = Fixtures.integrationID(integration)
            let viaIntegration = try await create([
                "mode": "COPY",
                "copy_inputs": .object(["s3_bucket": "b", "region_name": "r", "authorization": .int(integrationID)]),
            ])
            #expect(viaIntegration.status == 201, "\(viaIntegration.text)")
            let resolved = try await server.database.read { connection in
                try await IntegrationCredentials.resolve(
                    ["copy_inputs": .object(["s3_bucket": "b", "authorization": .int(integrationID)])], type: .redshift, teamID: world.team,
                    secrets: try SecretBox.load(server.configuration), on: connection)
            }
            #expect(resolved["copy_inputs"]?["authorization"]?["aws_secret_access_key"] == "integration-secret")
            #expect(
                try RedshiftDestination.CopyInputs(resolved["copy_inputs"]?.objectValue ?? [:]).bucketCredentials?.accessKeyID
                    == "AKIAINTEGRATION")
            #expect(
                try await server.request("DELETE", "/api/environments/\(world.team)/integrations/\(integrationID)/", key: world.member.key)
                    .status == 400)
        }
    }
}
