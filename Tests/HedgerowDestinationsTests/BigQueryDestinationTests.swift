import CryptoExtras
import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowExport
import HedgerowFormats
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HedgerowDestinations

/// BigQuery exports against bqemulator (`scripts/bigquery-test-server`), with a token endpoint of
/// the tests' own that checks each service-account JWT's RS256 signature before it issues a token;
/// rows are read back with Google's official Python client.
@Suite("BigQuery destination", .enabled(if: BigQueryEmulator.url != nil))
struct BigQueryDestinationTests {
    static let emulatorURL = BigQueryEmulator.url
    static let project = BigQueryEmulator.project
    /// The application as the tests' token endpoint needs it (plain http on loopback allowed),
    /// with its destination tests pointed at the emulator.
    static func serve(_ backend: TestBackend, _ body: @Sendable (TestServer) async throws -> Void) async throws {
        try await TestServer.run(
            backend,
            configure: {
                $0.engine.endpoints.bigQuery = emulatorURL
                $0.engine.allowInsecureHTTP = true
            }, body)
    }

    static func engine(_ server: TestServer, url: String? = emulatorURL, at time: Timestamp? = nil) throws -> ExportEngine {
        var configuration = EngineConfiguration.forTests
        configuration.allowInsecureHTTP = true
        configuration.endpoints.bigQuery = url
        return ExportEngine(
            database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
            logger: TestBackend.logger, clock: { time ?? .now() })
    }

    @Test("Config: PostHog's required fields and messages; the secrets are never shown", arguments: TestBackend.available)
    func configuration(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            var partial = BigQueryEmulator.config(dataset: "d", tokenURI: "https://oauth2.googleapis.com/token")
            partial["private_key"] = nil
            let refused = try await server.request(
                "POST", world.base + "/", key: world.member.key,
                json: ["name": "bq", "interval": "hour", "destination": ["type": "BigQuery", "config": .object(partial)]])
            #expect(refused.status == 400)
            #expect(refused["detail"] == "Configuration missing required field: 'private_key'")
            #expect(refused["attr"] == "destination")
            let plain = try await server.request(
                "POST", world.base + "/", key: world.member.key,
                json: [
                    "name": "bq", "interval": "hour",
                    "destination": [
                        "type": "BigQuery", "config": .object(BigQueryEmulator.config(dataset: "d", tokenURI: "http://example.com/token")),
                    ],
                ])
            #expect(
                plain.status == 400 && plain["detail"]?.stringValue?.hasPrefix("Invalid token_uri: plain http://") == true, "\(plain.text)")
            let id = try await ModelExportTests.create(
                server, world, model: "events", type: "BigQuery",
                config: BigQueryEmulator.config(dataset: "d", tokenURI: "https://oauth2.googleapis.com/token"))
            let shown = try await server.request("GET", world.base + "/\(id)/", key: world.member.key)
            let config = try #require(shown["destination"]?["config"]?.objectValue)
            #expect(config["dataset_id"] == "d" && config["table_id"] == "events" && config["use_json_type"] == false)
            for secret in ["private_key", "private_key_id", "client_email", "token_uri"] { #expect(config[secret] == nil) }
            #expect(!shown.text.contains("PRIVATE KEY"))
        }
    }

    @Test("Destination test steps: the token, the dataset, the table (or the right to create it), each failing on its own cause")
    func testSteps() async throws {
        try await BigQueryEmulator.withTokenEndpoint { tokens, tokenURI in
            try await Self.serve(.sqlite) { server in
                let world = try await Fixtures.world(server)
                let dataset = try BigQueryEmulator.makeDataset()
                func run(_ step: Int, _ config: JSONObject) async throws -> JSONValue? {
                    let result = try await DestinationTestTests.run(
                        server, world, step: step, destination: ["type": "BigQuery", "config": .object(config)])
                    #expect(result.status == 200, "\(result.text)")
                    return result["result"]
                }
                let good = BigQueryEmulator.config(dataset: dataset, tokenURI: tokenURI)
                for step in 0..<3 { #expect(try await run(step, good)?["status"] == "Passed", "step \(step)") }
                #expect(try BigQueryEmulator.tables(dataset).isEmpty)
                let wrongKey = try await run(
                    0,
                    BigQueryEmulator.config(
                        dataset: dataset, tokenURI: tokenURI,
                        privateKey: try _RSA.Signing.PrivateKey(keySize: .bits2048).pkcs8PEMRepresentation))
                #expect(
                    wrongKey?["status"] == "Failed" && wrongKey?["message"]?.stringValue?.contains("invalid_grant") == true,
                    "\(wrongKey ?? nil)")
                let missing = try await run(1, BigQueryEmulator.config(dataset: "no_such_dataset", tokenURI: tokenURI))
                #expect(missing?["message"]?.stringValue?.contains("no_such_dataset") == true, "\(missing ?? nil)")
                #expect(await tokens.refusals == ["bad signature"])
            }
        }
    }

    @Test(
        "Events: a two-hour backfill is delivered once into a DAY-partitioned table, again it adds nothing; the token is reused",
        arguments: TestBackend.available)
    func events(backend: TestBackend) async throws {
        try await BigQueryEmulator.withTokenEndpoint { tokens, tokenURI in
            try await Self.serve(backend) { server in
                let world = try await Fixtures.world(server)
                let seeded = try await Fixtures.seedHour(server, team: world.team, count: 40)
                let dataset = try BigQueryEmulator.makeDataset()
                var config = BigQueryEmulator.config(dataset: dataset, tokenURI: tokenURI)
                config["use_json_type"] = true
                let id = try await ModelExportTests.create(server, world, model: "events", type: "BigQuery", config: config)
                for _ in 0..<2 {
                    let started = try await ModelExportTests.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T12:00:00Z")
                    #expect(started.status == 201, "\(started.text)")
                    try await Self.engine(server).step()
                    let runs = try await S3DestinationTests.runs(server, world, id)
                    #expect(runs.allSatisfy { $0["status"] == "Completed" }, "\(runs)")
                    let delivered = try BigQueryEmulator.rows(dataset, "events", order: "uuid")
                    // The 40 events of 10:00–11:00 and the one just after 11:00, each once.
                    #expect(delivered.count == seeded.count + 1)
                    #expect(Set(delivered.compactMap { $0["uuid"]?.stringValue }).count == delivered.count)
                }
                let delivered = try BigQueryEmulator.rows(dataset, "events", order: "uuid")
                let first = try #require(seeded.first)
                let row = try #require(delivered.first { $0["uuid"] == .string(first.uuid) })
                #expect(row["event"] == .string(first.event) && row["distinct_id"] == .string(first.distinctID))
                #expect(row["team_id"] == .int(world.team) && row["site_url"] == "")
                #expect(row["properties"]?["nested"]?["a"] == [1, nil, "ü"], "\(row)")
                #expect(row["elements"] == .string(JSONWriter.string(.string(first.elementsChain ?? ""))))
                #expect(row["bq_ingested_timestamp"]?.stringValue != nil)
                let table = try BigQueryEmulator.official(
                    """
                    t = client.get_table("\(dataset).events")
                    out({"partition": t.time_partitioning.field, "type": t.time_partitioning.type_, "fields": {f.name: f.field_type for f in t.schema}})
                    """)
                #expect(table["partition"] == "timestamp" && table["type"] == "DAY")
                #expect(table["fields"]?["properties"] == "JSON" && table["fields"]?["timestamp"] == "TIMESTAMP")
                #expect(["INTEGER", "INT64"].contains(table["fields"]?["team_id"]?.stringValue ?? ""), "\(table)")
                #expect(table["fields"]?["set"] == "JSON")
                // No stage table is left behind.
                #expect(try BigQueryEmulator.tables(dataset) == ["events"])
                // Four runs, one token: it is cached until a minute before it expires.
                #expect(await tokens.issued == 1)
                #expect(await tokens.refusals.isEmpty)
            }
        }
    }

    @Test("A stage file of many upload chunks: each chunk spooled and sent whole, the last with the rest; every row loaded once")
    func chunkedUpload() async throws {
        let dataset = try BigQueryEmulator.makeDataset()
        let columns = [FileColumn("n", .int64), FileColumn("payload", .string)]
        let fields = [BigQueryClient.Field(name: "n", type: "INT64"), BigQueryClient.Field(name: "payload", type: "STRING")]
        // Random hex: zstd halves it at best, so 9000 rows make a file of several 256 KiB chunks.
        var generator = SystemRandomNumberGenerator()
        let payloads = (0..<9000).map { _ in
            (0..<24).map { _ in String(generator.next() as UInt64, radix: 16) }.joined()
        }
        let url = try #require(Self.emulatorURL)
        let uploaded = try await OutboundConnector(policy: .loopbackAllowed).withHTTPClient(host: "127.0.0.1") { http in
            let client = BigQueryClient(baseURL: url, project: Self.project, http: http) { "test-token" }
            try await client.createTable(dataset, "staged", fields: fields)
            var load = StageLoad(
                client: client, dataset: dataset, table: "staged", fields: fields, columns: columns, chunkBytes: 256 * 1024)
            for batch in 0..<3 {
                for index in batch * 3000..<(batch + 1) * 3000 { try await load.append([.int(Int64(index)), .string(payloads[index])]) }
                try await load.endBatch()
            }
            try await load.finish()
            return load.bytesSent
        }
        #expect(uploaded > 3 * 256 * 1024, "\(uploaded) bytes: the file must span several chunks")
        let rows = try BigQueryEmulator.rows(dataset, "staged", order: "n")
        #expect(rows.count == payloads.count)
        #expect(rows.enumerated().allSatisfy { index, row in row["n"] == .int(Int64(index)) && row["payload"] == .string(payloads[index]) })
    }

    @Test(
        "Persons: merged on (team_id, distinct_id) to the newest version; an older version never overwrites a newer row",
        arguments: TestBackend.available)
    func persons(backend: TestBackend) async throws {
        try await BigQueryEmulator.withTokenEndpoint { _, tokenURI in
            try await Self.serve(backend) { server in
                let world = try await Fixtures.world(server)
                try await ModelExportTests.seedPersons(server, team: world.team)
                let dataset = try BigQueryEmulator.makeDataset()
                let id = try await ModelExportTests.create(
                    server, world, model: "persons", type: "BigQuery",
                    config: BigQueryEmulator.config(dataset: dataset, table: "persons", tokenURI: tokenURI))
                #expect(
                    try await ModelExportTests.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
                try await Self.engine(server).step()
                var delivered = try BigQueryEmulator.rows(dataset, "persons", order: "distinct_id")
                #expect(
                    delivered.map { $0["person_id"] } == [
                        .string(ModelExportTests.a), .string(ModelExportTests.a), .string(ModelExportTests.b),
                    ])
                #expect(delivered.first?.objectValue?.keys.contains("_inserted_at") == false)
                #expect(try JSONParser.parse(delivered[0]["properties"]?.stringValue ?? "") == ["plan": "free"])
                try await ModelExportTests.changePersons(server, team: world.team)
                #expect(
                    try await ModelExportTests.backfill(server, world, id, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
                try await Self.engine(server).step()
                delivered = try BigQueryEmulator.rows(dataset, "persons", order: "distinct_id")
                #expect(delivered.count == 3)
                #expect(delivered.allSatisfy { $0["person_id"] == .string(ModelExportTests.a) && $0["person_version"] == 2 })
                #expect(delivered.map { $0["person_distinct_id_version"] } == [0, 0, 1])
                // A newer row in the warehouse is kept when an older version arrives.
                _ = try BigQueryEmulator.official(
                    "client.query(\"UPDATE `\(Self.project).\(dataset).persons` SET person_version = 99, properties = '{\\\"plan\\\":\\\"newer\\\"}' WHERE distinct_id = 'd1'\").result(); out(True)"
                )
                #expect(
                    try await ModelExportTests.backfill(server, world, id, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
                try await Self.engine(server).step()
                delivered = try BigQueryEmulator.rows(dataset, "persons", order: "distinct_id")
                #expect(delivered.count == 3)
                #expect(delivered[0]["person_version"] == 99)
                #expect(try BigQueryEmulator.tables(dataset) == ["persons"])
            }
        }
    }

    @Test(
        "Sessions: merged on (team_id, session_id), urls as a REPEATED STRING, replaced only by a later end",
        arguments: TestBackend.available)
    func sessions(backend: TestBackend) async throws {
        try await BigQueryEmulator.withTokenEndpoint { _, tokenURI in
            try await Self.serve(backend) { server in
                let world = try await Fixtures.world(server)
                let session = "0190a3b2-1111-7000-8000-000000000001"
                let recent = Timestamp(microseconds: Timestamp.now().microseconds / 3_600_000_000 * 3_600_000_000 - 3_600_000_000)
                func at(_ minutes: Int64) -> String {
                    Timestamp(microseconds: recent.microseconds + minutes * 60_000_000).iso8601WithOffset
                }
                try await ModelExportTests.pageviews(
                    server, world, session: session, [(at(1), "https://example.com/a"), (at(2), "https://example.com/b")])
                let dataset = try BigQueryEmulator.makeDataset()
                let id = try await ModelExportTests.create(
                    server, world, model: "sessions", type: "BigQuery",
                    config: BigQueryEmulator.config(dataset: dataset, table: "sessions", tokenURI: tokenURI))
                let end = Timestamp(microseconds: recent.microseconds + 3_600_000_000).iso8601WithOffset
                #expect(try await ModelExportTests.backfill(server, world, id, recent.iso8601WithOffset, end).status == 201)
                try await Self.engine(server).step()
                let delivered = try BigQueryEmulator.rows(dataset, "sessions", order: "session_id")
                #expect(delivered.count == 1)
                #expect(delivered.first?["urls"] == ["https://example.com/a", "https://example.com/b"], "\(delivered)")
                #expect(delivered.first?["pageview_count"] == 2 && delivered.first?["entry_pathname"] == "/a")
                let fields = try BigQueryEmulator.official(
                    "out({f.name: [f.field_type, f.mode] for f in client.get_table(\"\(dataset).sessions\").schema})")
                #expect(fields["urls"] == ["STRING", "REPEATED"])
            }
        }
    }

    @Test(
        "A key the token endpoint refuses fails the run at once, saying why; the emulator unreachable is FailedRetryable, then Completed",
        arguments: TestBackend.available)
    func failures(backend: TestBackend) async throws {
        try await BigQueryEmulator.withTokenEndpoint { tokens, tokenURI in
            try await Self.serve(backend) { server in
                let world = try await Fixtures.world(server)
                try await Fixtures.seedHour(server, team: world.team, count: 5)
                let dataset = try BigQueryEmulator.makeDataset()
                let wrongKey = try _RSA.Signing.PrivateKey(keySize: .bits2048).pkcs8PEMRepresentation
                let wrong = try await ModelExportTests.create(
                    server, world, model: "events", type: "BigQuery",
                    config: BigQueryEmulator.config(dataset: dataset, tokenURI: tokenURI, privateKey: wrongKey))
                #expect(
                    try await ModelExportTests.backfill(server, world, wrong, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
                try await Self.engine(server).step()
                let failed = try #require(try await ModelExportTests.lastRun(server, world, wrong))
                #expect(failed["status"] == "Failed", "\(failed)")
                #expect(failed["latest_error"]?.stringValue?.contains("RefreshError") == true, "\(failed)")
                #expect(failed["latest_error"]?.stringValue?.contains("invalid_grant") == true)
                #expect(await tokens.refusals == ["bad signature"])

                // Nothing listens where the engine is pointed: retried later, delivered once it answers.
                let id = try await ModelExportTests.create(
                    server, world, model: "events", type: "BigQuery",
                    config: BigQueryEmulator.config(dataset: dataset, table: "retried", tokenURI: tokenURI))
                #expect(
                    try await ModelExportTests.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
                try await Self.engine(server, url: "http://127.0.0.1:\(S3TestServer.freePort())").step()
                let retrying = try #require(try await ModelExportTests.lastRun(server, world, id))
                #expect(retrying["status"] == "FailedRetryable", "\(retrying)")
                #expect(retrying["latest_error"]?.stringValue?.contains("ConnectionError") == true, "\(retrying)")
                try await Self.engine(server, at: Timestamp(microseconds: Timestamp.now().microseconds + 3_600_000_000)).step()
                let completed = try #require(try await ModelExportTests.lastRun(server, world, id))
                #expect(completed["status"] == "Completed", "\(completed)")
                #expect(try BigQueryEmulator.rows(dataset, "retried", order: "uuid").count == 5)
            }
        }
    }
}
