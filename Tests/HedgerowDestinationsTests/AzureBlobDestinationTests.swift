import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowFormats
import HedgerowRuntime
import HedgerowS3
import HedgerowStore
import HedgerowTestSupport
import NIOHTTP1
import Testing

/// Azure Blob exports, delivered by the engine to the Blob REST contract server (every request's
/// Shared Key signature or SAS token checked with the azure-storage-blob SDK's code), read back
/// with the SDK and checked with the formats' reference tools, as the S3 tests do.
@Suite("Azure Blob destination")
struct AzureBlobDestinationTests {
    static let stem = S3DestinationTests.stem

    /// An azure-blob integration holding `connectionString` (the contract server's by default); its id.
    static func integration(_ server: TestServer, _ world: Fixtures.World, connectionString: String? = nil) async throws -> Int64 {
        let result = try await server.request(
            "POST", "/api/environments/\(world.team)/integrations/", key: world.member.key,
            json: .object([
                "kind": "azure-blob",
                "config": .object(["connection_string": .string(try connectionString ?? AzureBlobTestServer.shared.get())]),
            ]))
        #expect(result.status == 201, "\(result.text)")
        return Fixtures.integrationID(result)
    }

    static func export(
        _ server: TestServer, _ world: Fixtures.World, config: JSONObject, integration: Int64?
    ) async throws -> String {
        var destination: JSONObject = ["type": "AzureBlob", "config": .object(config)]
        if let integration { destination["integration_id"] = .int(integration) }
        let result = try await server.request(
            "POST", world.base + "/", key: world.member.key,
            json: .object(["name": "blobs", "interval": "hour", "destination": .object(destination)]))
        #expect(result.status == 201, "\(result.text)")
        #expect(!result.text.contains(AzureBlobTestServer.key))
        return result["id"]?.stringValue ?? ""
    }

    static func engine(_ server: TestServer, blockSize: Int? = nil) throws -> ExportEngine {
        var configuration = EngineConfiguration.forTests
        if let blockSize { configuration.azureBlob = AzureBlobDestination.Options(blockSize: blockSize) }
        return ExportEngine(
            database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
            logger: TestBackend.logger, clock: { .now() })
    }

    static func backfillHour(_ server: TestServer, _ world: Fixtures.World, _ id: String) async throws {
        let result = try await server.request(
            "POST", world.base + "/\(id)/backfills/", key: world.member.key, json: S3DestinationTests.hour)
        #expect(result.status == 201, "\(result.text)")
    }

    @Test("Shared Key signatures are the azure-storage-blob SDK's for the same request")
    func signatures() throws {
        let signer = try #require(AzureSharedKeySigner(accountName: AzureBlobTestServer.account, accountKey: AzureBlobTestServer.key))
        let date = "Tue, 01 Dec 2026 10:00:00 GMT"
        let cases: [(String, String, [(String, String)], [(String, String)])] = [
            (
                "PUT", "/hedgerowdev/box/exports/2024-01-01T10%3A00%3A00%2B00%3A00.jsonl", [],
                [
                    ("x-ms-blob-type", "BlockBlob"), ("Content-Type", "application/jsonl"), ("x-ms-date", date),
                    ("x-ms-version", "2023-11-03"), ("Content-Length", "42"),
                ]
            ),
            (
                "PUT", "/hedgerowdev/box/a/b%20c.parquet", [("comp", "block"), ("blockid", "aGVkZ2Vyb3ctMDAwMDAx")],
                [("x-ms-date", date), ("x-ms-version", "2023-11-03"), ("Content-Length", "8388608")]
            ),
            (
                "GET", "/hedgerowdev/box", [("restype", "container"), ("comp", "list"), ("prefix", "exports/2024")],
                [("x-ms-date", date), ("x-ms-version", "2023-11-03")]
            ),
            ("DELETE", "/hedgerowdev/box/%C3%BCber", [], [("x-ms-date", date), ("x-ms-version", "2023-11-03"), ("Content-Length", "0")]),
        ]
        for (method, path, query, headers) in cases {
            let ours = signer.authorization(method: method, path: path, query: query, headers: headers)
            let url =
                "http://127.0.0.1:10000" + path
                + (query.isEmpty ? "" : "?" + query.map { "\($0.0)=\(SigV4Signer.encode($0.1))" }.joined(separator: "&"))
            let sdk = try AzureBlobTestServer.sdkAuthorization(method: method, url: url, headers: headers)
            #expect(ours == sdk, "\(method) \(path)")
        }
    }

    static let matrix: [(FileFormat, Compression?)] = [(.jsonLines, nil), (.jsonLines, .gzip), (.parquet, .zstd), (.parquet, .snappy)]

    @Test(
        "Through an azure-blob integration, every format is delivered under S3's file names with the manifest last",
        arguments: TestBackend.available, matrix)
    func formats(backend: TestBackend, case: (FileFormat, Compression?)) async throws {
        let (format, compression) = `case`
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let container = try AzureBlobTestServer.makeContainer("formats")
            let integration = try await Self.integration(server, world)
            var config: JSONObject = ["container_name": .string(container), "prefix": "exports", "file_format": .string(format.rawValue)]
            if let compression { config["compression"] = .string(compression.rawValue) }
            let id = try await Self.export(server, world, config: config, integration: integration)
            let detail = try await server.request("GET", world.base + "/\(id)/", key: world.member.key)
            #expect(detail["destination"]?["integration"] == .int(integration))
            let events = try await Fixtures.seedHour(server, team: world.team, count: 300)
            try await Self.backfillHour(server, world, id)
            try await Self.engine(server).step()
            let run = try #require(try await S3DestinationTests.runs(server, world, id).first)
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["records_completed"] == .int(Int64(events.count)))
            var name = "exports/" + Self.stem + "." + format.fileExtension
            if format == .jsonLines, let compression { name += "." + compression.fileExtension }
            let blobs = try AzureBlobTestServer.blobs(container)
            #expect(blobs.keys.sorted() == [name, "exports/" + Self.stem + "_manifest.json"])
            let body = try #require(blobs[name])
            #expect(body.contentType == (format == .parquet ? "application/vnd.apache.parquet" : "application/jsonl"))
            #expect(run["bytes_exported"] == .int(Int64(body.bytes.count)))
            try S3DestinationTests.check(
                try S3DestinationTests.rows(body.bytes, format: format, compression: compression), against: events,
                parquet: format == .parquet)
            let manifest = try JSONParser.parse(try #require(blobs["exports/" + Self.stem + "_manifest.json"]).bytes)
            #expect(manifest["files"] == .array([.string(name)]))
            #expect(manifest["records"] == .int(Int64(events.count)))
            #expect(manifest["files_detail"]?.arrayValue?.first?["sha256"] == .string(SigV4Signer.sha256Hex(body.bytes)))
        }
    }

    @Test(
        "Large files go up as blocks committed with Put Block List, split at max_file_size_mb; a retry rewrites the same names and removes leftovers; busy answers are retried",
        arguments: TestBackend.available)
    func blocksSplitAndRetry(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let container = try AzureBlobTestServer.makeContainer("blocks")
            let integration = try await Self.integration(server, world)
            let id = try await Self.export(
                server, world, config: ["container_name": .string(container), "prefix": "exports", "max_file_size_mb": 2],
                integration: integration)
            let events = try await Fixtures.seedHour(server, team: world.team, count: 6_000, padding: 800)
            try await Self.backfillHour(server, world, id)
            // Two writes answer 503 ServerBusy: the client tries them again.
            try AzureBlobTestServer.failNextPuts(2)
            try await Self.engine(server, blockSize: 512 * 1024).step()
            let run = try #require(try await S3DestinationTests.runs(server, world, id).first)
            #expect(run["status"] == "Completed", "\(run)")
            var blobs = try AzureBlobTestServer.blobs(container)
            let manifest = try JSONParser.parse(try #require(blobs["exports/" + Self.stem + "_manifest.json"]).bytes)
            let files = manifest["files"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(files.count >= 3)
            #expect(files == (0..<files.count).map { "exports/\(Self.stem)-\($0).jsonl" })
            var rows: [JSONValue] = []
            for (index, file) in files.enumerated() {
                let body = try #require(blobs[file]).bytes
                if index < files.count - 1 { #expect(body.count >= 2 * 1024 * 1024 && body.count < 2 * 1024 * 1024 + 4096) }
                rows += try S3DestinationTests.rows(body, format: .jsonLines, compression: nil)
            }
            try S3DestinationTests.check(rows, against: events, parquet: false)

            // A later attempt (as after a crash) writes the same names; a stale file of an earlier split goes.
            try AzureBlobTestServer.upload(container, "exports/\(Self.stem)-9.jsonl", Array("stale".utf8))
            try await server.database.transaction {
                try await $0.execute(
                    "UPDATE batch_export_runs SET status = 'FailedRetryable', next_attempt_at = 0, finished_at = NULL WHERE batch_export_id = $1",
                    [.text(id)])
            }
            try await Self.engine(server, blockSize: 512 * 1024).step()
            let again = try AzureBlobTestServer.blobs(container)
            #expect(again.keys.sorted() == blobs.keys.sorted())
            blobs = again
            #expect(blobs["exports/\(Self.stem)-9.jsonl"] == nil)
        }
    }

    @Test("The persons model goes to Azure Blob as files named after {table}, as to S3", arguments: TestBackend.available)
    func persons(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            try await ModelExportTests.seedPersons(server, team: world.team)
            let container = try AzureBlobTestServer.makeContainer("persons")
            let integration = try await Self.integration(server, world)
            let destination: JSONObject = [
                "type": "AzureBlob", "integration_id": .int(integration),
                "config": .object(["container_name": .string(container), "prefix": "{table}", "file_format": "Parquet"]),
            ]
            let created = try await server.request(
                "POST", world.base + "/", key: world.member.key,
                json: .object(["name": "people", "model": "persons", "interval": "hour", "destination": .object(destination)]))
            #expect(created.status == 201, "\(created.text)")
            let id = created["id"]?.stringValue ?? ""
            #expect(try await ModelExportTests.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await Self.engine(server).step()
            #expect(try await ModelExportTests.lastRun(server, world, id)?["status"] == "Completed")
            let blobs = try AzureBlobTestServer.blobs(container)
            #expect(blobs.keys.sorted() == ["persons/" + Self.stem + ".parquet", "persons/" + Self.stem + "_manifest.json"])
            let file = try ReferenceTools.temporaryFile(try #require(blobs["persons/" + Self.stem + ".parquet"]).bytes, suffix: ".parquet")
            defer { try? FileManager.default.removeItem(at: file) }
            let read = try ReferenceTools.python(
                "import sys, json, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(json.dumps(sorted(t.column('distinct_id').to_pylist())))",
                arguments: [file.path])
            #expect(try JSONParser.parse(Array(read)) == ["d1", "d2", "d3"])
        }
    }

    @Test("A SAS token in an inline connection string authenticates; PATCH keeps it; it is never shown", arguments: TestBackend.available)
    func sasToken(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let container = try AzureBlobTestServer.makeContainer("sas")
            let token = try AzureBlobTestServer.sasToken(container: container, permissions: "rwdl")
            let connection =
                "AccountName=\(AzureBlobTestServer.account);SharedAccessSignature=\(token);BlobEndpoint=\(try AzureBlobTestServer.endpoint())"
            let id = try await Self.export(
                server, world, config: ["container_name": .string(container), "connection_string": .string(connection)], integration: nil)
            let patched = try await server.request(
                "PATCH", world.base + "/\(id)/", key: world.member.key,
                json: .object(["destination": .object(["type": "AzureBlob", "config": .object(["prefix": "{table}/{year}"])])]))
            #expect(patched.status == 200, "\(patched.text)")
            #expect(!patched.text.contains("sig="))
            let events = try await Fixtures.seedHour(server, team: world.team, count: 50)
            try await Self.backfillHour(server, world, id)
            try await Self.engine(server).step()
            let run = try #require(try await S3DestinationTests.runs(server, world, id).first)
            #expect(run["status"] == "Completed", "\(run)")
            let blobs = try AzureBlobTestServer.blobs(container)
            #expect(blobs.keys.sorted() == ["events/2024/" + Self.stem + ".jsonl", "events/2024/" + Self.stem + "_manifest.json"])
            try S3DestinationTests.check(
                try S3DestinationTests.rows(
                    try #require(blobs["events/2024/" + Self.stem + ".jsonl"]).bytes, format: .jsonLines, compression: nil),
                against: events, parquet: false)
        }
    }

    @Test(
        "A missing container, a wrong key and an expired SAS token fail the run at once with PostHog's error classes",
        arguments: TestBackend.available)
    func errors(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let container = try AzureBlobTestServer.makeContainer("errors")
            let endpoint = try AzureBlobTestServer.endpoint()
            let expired = try AzureBlobTestServer.sasToken(permissions: "rwdl", hours: -1)
            let cases: [(String, String, String)] = [
                (try AzureBlobTestServer.shared.get(), "absent-container", "ResourceNotFoundError"),
                (
                    "AccountName=\(AzureBlobTestServer.account);AccountKey=d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktMTI=;BlobEndpoint=\(endpoint)",
                    container, "ClientAuthenticationError"
                ),
                (
                    "AccountName=\(AzureBlobTestServer.account);SharedAccessSignature=\(expired);BlobEndpoint=\(endpoint)", container,
                    "ClientAuthenticationError"
                ),
            ]
            _ = try await Fixtures.seedHour(server, team: world.team, count: 5)
            for (connection, target, kind) in cases {
                let integration = try await Self.integration(server, world, connectionString: connection)
                let id = try await Self.export(server, world, config: ["container_name": .string(target)], integration: integration)
                try await Self.backfillHour(server, world, id)
                try await Self.engine(server).step()
                let run = try #require(try await S3DestinationTests.runs(server, world, id).first)
                #expect(run["status"] == "Failed", "\(run)")
                #expect(run["latest_error"]?.stringValue?.hasPrefix(kind) == true, "\(run)")
            }
        }
    }

    @Test(
        "The API: an integration or a connection string is required, the integration must be the environment's and of the right kind, and an integration in use cannot be deleted",
        arguments: TestBackend.available)
    func validation(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            func create(_ destination: JSONObject) async throws -> TestResult {
                try await server.request(
                    "POST", world.base + "/", key: world.member.key,
                    json: .object(["name": "blobs", "interval": "hour", "destination": .object(destination)]))
            }
            try await create(["type": "AzureBlob", "config": .object(["container_name": "c"])]).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail:
                    "Configuration missing required field: 'connection_string' (or give the id of a 'azure-blob' integration as 'integration_id')",
                attr: "destination")
            try await create(["type": "AzureBlob", "config": .object(["container_name": "c", "connection_string": "nonsense"])])
                .expectError(
                    400, type: "validation_error", code: "invalid_input",
                    detail: "The connection string must name an AccountName with an AccountKey or a SharedAccessSignature",
                    attr: "destination")
            try await create(["type": "AzureBlob", "integration_id": 4242, "config": .object(["container_name": "c"])]).expectError(
                400, type: "validation_error", code: "invalid", detail: "Invalid pk \"4242\" - object does not exist.",
                attr: "integration_id")
            let databricks = try await server.request(
                "POST", "/api/environments/\(world.team)/integrations/", key: world.member.key, json: Fixtures.databricksIntegration)
            try await create([
                "type": "AzureBlob", "integration_id": .int(Fixtures.integrationID(databricks)), "config": .object(["container_name": "c"]),
            ])
            .expectError(
                400, type: "validation_error", code: "invalid_input",
                detail:
                    "Integration \(Fixtures.integrationID(databricks)) is a 'databricks' integration, which AzureBlob batch exports cannot use.",
                attr: "integration_id")
            // Another environment's integration does not exist here.
            let other = try await server.request(
                "POST", "/api/projects/\(world.team)/environments/", key: world.owner.key, json: .object(["name": "Staging"]))
            let otherTeam: Int64 = if case .int(let id)? = other["id"] { id } else { 0 }
            let foreign = try await server.request(
                "POST", "/api/environments/\(otherTeam)/integrations/", key: world.owner.key, json: Fixtures.azureIntegration())
            #expect(foreign.status == 201, "\(foreign.text)")
            try await create([
                "type": "AzureBlob", "integration_id": .int(Fixtures.integrationID(foreign)), "config": .object(["container_name": "c"]),
            ])
            .expectError(
                400, type: "validation_error", code: "invalid",
                detail: "Invalid pk \"\(Fixtures.integrationID(foreign))\" - object does not exist.", attr: "integration_id")

            let integration = try await Self.integration(server, world)
            let id = try await Self.export(server, world, config: ["container_name": "c"], integration: integration)
            let path = "/api/environments/\(world.team)/integrations/\(integration)/"
            let refused = try await server.request("DELETE", path, key: world.member.key)
            #expect(refused.status == 400, "\(refused.text)")
            #expect(refused["detail"]?.stringValue?.contains(id) == true)
            #expect(try await server.request("DELETE", world.base + "/\(id)/", key: world.member.key).status == 204)
            #expect(try await server.request("DELETE", path, key: world.member.key).status == 204)
        }
    }

    @Test("The destination test checks the container and writes a probe blob", arguments: TestBackend.available)
    func destinationTest(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let container = try AzureBlobTestServer.makeContainer("probe")
            let integration = try await Self.integration(server, world)
            for (target, status) in [(container, "Passed"), ("absent-container", "Failed")] {
                for step in 0..<2 {
                    let result = try await server.request(
                        "POST", world.base + "/run_test_step_new/", key: world.member.key,
                        json: .object([
                            "step": .int(Int64(step)),
                            "destination": .object([
                                "type": "AzureBlob", "integration_id": .int(integration),
                                "config": .object(["container_name": .string(target)]),
                            ]),
                        ]))
                    #expect(result.status == 200, "\(result.text)")
                    #expect(result["result"]?["status"] == .string(status), "\(step) \(target): \(result.text)")
                }
            }
            #expect(try AzureBlobTestServer.blobs(container).isEmpty)
        }
    }
}
