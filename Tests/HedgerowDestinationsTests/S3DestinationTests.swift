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

/// S3 exports delivered by the engine to a real S3-compatible server (moto), read back and checked
/// with the formats' reference tools (docs/engine.md §3, §4, §7).
@Suite("S3 destination")
struct S3DestinationTests {
    static let credentials = S3Credentials(accessKeyID: "AKIAHEDGEROWTEST0001", secretAccessKey: "moto-does-not-check")
    static let hour: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"])
    static let stem = "2024-01-01T10:00:00+00:00-2024-01-01T11:00:00+00:00"

    /// A bucket of its own on `url` (the shared moto by default).
    static func bucket(_ label: String, url: String? = nil) async throws -> S3Client {
        let endpoint = try #require(S3Endpoint.parse(try url ?? S3TestServer.shared.get(), virtualHosted: false))
        let client = S3Client(endpoint: endpoint, region: "us-east-1", bucket: S3TestServer.bucketName(label), credentials: credentials)
        try await client.createBucket()
        return client
    }

    static func config(_ client: S3Client, url: String? = nil, _ extra: JSONObject = [:]) throws -> JSONObject {
        var config: JSONObject = [
            "bucket_name": .string(client.bucket), "region": "us-east-1", "prefix": "exports",
            "endpoint_url": .string(try url ?? S3TestServer.shared.get()),
            "aws_access_key_id": .string(credentials.accessKeyID), "aws_secret_access_key": .string(credentials.secretAccessKey),
        ]
        for entry in extra.entries { config[entry.key] = entry.value }
        return config
    }

    static func export(
        _ server: TestServer, _ world: Fixtures.World, config: JSONObject, type: String = "S3"
    ) async throws -> String {
        let result = try await server.request(
            "POST", world.base + "/", key: world.member.key,
            json: .object(["name": "lake", "interval": "hour", "destination": .object(["type": .string(type), "config": .object(config)])]))
        #expect(result.status == 201, "\(result.text)")
        #expect(result["destination"]?["config"]?["aws_secret_access_key"] == nil)
        return result["id"]?.stringValue ?? ""
    }

    static func engine(_ server: TestServer, at time: Timestamp? = nil, partSize: Int? = nil) throws -> ExportEngine {
        var configuration = EngineConfiguration.forTests
        if let partSize { configuration.s3 = S3Destination.Options(partSize: partSize) }
        return ExportEngine(
            database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
            logger: TestBackend.logger, clock: { time ?? .now() })
    }

    static func runs(_ server: TestServer, _ world: Fixtures.World, _ id: String) async throws -> [JSONValue] {
        let runs = try await server.request("GET", world.base + "/\(id)/runs/", key: world.member.key)
        return (runs["results"]?.arrayValue ?? []).sorted {
            ($0["data_interval_end"]?.stringValue ?? "") < ($1["data_interval_end"]?.stringValue ?? "")
        }
    }

    /// Decompresses with the format's own command-line tool, after `-t` accepts the file.
    static func decompressed(_ bytes: [UInt8], _ compression: Compression?) throws -> [UInt8] {
        guard let compression else { return bytes }
        let tool = ["gzip": "gzip", "brotli": "brotli", "zstd": "zstd", "lz4": "lz4"][compression.rawValue]!
        let file = try ReferenceTools.temporaryFile(bytes, suffix: "." + compression.fileExtension)
        defer { try? FileManager.default.removeItem(at: file) }
        let tested = try ReferenceTools.run(tool, ["-t", file.path])
        #expect(tested.status == 0, "\(tool) -t: \(tested.stderr)")
        return Array(try ReferenceTools.run(tool, ["-dc", file.path]).stdout)
    }

    /// The rows of a data file as JSON objects: JSONLines parsed, Parquet read by pyarrow.
    static func rows(_ bytes: [UInt8], format: FileFormat, compression: Compression?) throws -> [JSONValue] {
        switch format {
        case .jsonLines:
            return try String(decoding: try decompressed(bytes, compression), as: UTF8.self).split(separator: "\n")
                .map { try JSONParser.parse(Array($0.utf8)) }
        case .parquet:
            let file = try ReferenceTools.temporaryFile(bytes, suffix: ".parquet")
            defer { try? FileManager.default.removeItem(at: file) }
            let output = try ReferenceTools.python(
                """
                import sys, json, pyarrow.parquet as pq
                table = pq.read_table(sys.argv[1])
                types = {f.name: str(f.type) for f in table.schema}
                assert types["timestamp"] == "timestamp[us, tz=UTC]", types
                assert types["properties"] == "string", types
                rows = table.to_pylist()
                for row in rows:
                    for key in ("timestamp", "created_at", "_inserted_at"):
                        row[key] = row[key].isoformat()
                print(json.dumps(rows))
                """, arguments: [file.path])
            return try JSONParser.parse(Array(output)).arrayValue ?? []
        }
    }

    static func check(_ rows: [JSONValue], against events: [Event], parquet: Bool) throws {
        #expect(rows.count == events.count)
        #expect(Set(rows.compactMap { $0["uuid"]?.stringValue }) == Set(events.map(\.uuid)))
        let byUUID = Dictionary(uniqueKeysWithValues: events.map { ($0.uuid, $0) })
        for row in rows.prefix(50) {
            let event = try #require(byUUID[row["uuid"]?.stringValue ?? ""])
            #expect(row.objectValue?.keys == EventProjection.fileColumns.map(\.name))
            #expect(row["event"] == .string(event.event))
            #expect(row["distinct_id"] == .string(event.distinctID))
            #expect(row["person_id"] == (event.personID.map(JSONValue.string) ?? .null))
            #expect(row["elements_chain"] == (event.elementsChain.map(JSONValue.string) ?? .null))
            let properties = parquet ? try JSONParser.parse(Array((row["properties"]?.stringValue ?? "").utf8)) : row["properties"]
            // (PostgreSQL's jsonb keeps keys in an order of its own: compare with keys sorted.)
            #expect(properties.map(Self.sortedKeys) == Self.sortedKeys(try JSONParser.parse(Array(event.properties.utf8))))
            let person: JSONValue? =
                parquet
                ? try row["person_properties"]?.stringValue.map { try JSONParser.parse(Array($0.utf8)) } ?? .null : row["person_properties"]
            let expectedPerson = try event.personProperties.map { try JSONParser.parse(Array($0.utf8)) } ?? .null
            #expect(person.map(Self.sortedKeys) == Self.sortedKeys(expectedPerson))
            #expect(row["timestamp"] == .string(event.timestamp.iso8601WithOffset))
            #expect(row["_inserted_at"] == .string(event.insertedAt.iso8601WithOffset))
        }
    }

    static func sortedKeys(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object): .object(JSONObject(object.entries.sorted { $0.key < $1.key }.map { ($0.key, sortedKeys($0.value)) }))
        case .array(let elements): .array(elements.map(sortedKeys))
        default: value
        }
    }

    /// The manifest of the hour: every listed file exists with the size and SHA-256 it claims.
    static func manifest(_ client: S3Client, prefix: String = "exports/", stem: String = Self.stem) async throws -> JSONValue {
        let manifest = try JSONParser.parse(try await client.getObject(prefix + stem + "_manifest.json"))
        for detail in manifest["files_detail"]?.arrayValue ?? [] {
            let body = try await client.getObject(detail["key"]?.stringValue ?? "")
            #expect(detail["bytes"] == .int(Int64(body.count)))
            #expect(detail["sha256"] == .string(SigV4Signer.sha256Hex(body)))
        }
        return manifest
    }

    /// The scheduled run of 10:00–11:00 (by ingestion time), as the scheduler makes it.
    static func scheduleRun(_ server: TestServer, exportID: String) async throws {
        try await server.database.transaction { connection in
            var run = BatchExportRun(
                id: Identifiers.uuidV7(), batchExportID: exportID, backfillID: nil,
                dataIntervalStart: ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp,
                dataIntervalEnd: ISO8601.parse("2024-01-01T11:00:00Z")!.timestamp, createdAt: .now())
            run.nextAttemptAt = Timestamp(microseconds: 0)
            _ = try await BatchExportStore().insertRun(run, on: connection)
        }
    }

    static let matrix: [(FileFormat, Compression?)] = [
        (.jsonLines, nil), (.jsonLines, .gzip), (.jsonLines, .brotli), (.parquet, nil), (.parquet, .zstd), (.parquet, .lz4),
        (.parquet, .snappy), (.parquet, .gzip), (.parquet, .brotli),
    ]

    @Test(
        "Every format and compression the API accepts is delivered under PostHog's file names, with the manifest last",
        arguments: TestBackend.available, matrix)
    func formatMatrix(backend: TestBackend, case: (FileFormat, Compression?)) async throws {
        let (format, compression) = `case`
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let client = try await Self.bucket("matrix")
            var extra: JSONObject = ["file_format": .string(format.rawValue)]
            if let compression { extra["compression"] = .string(compression.rawValue) }
            let id = try await Self.export(server, world, config: try Self.config(client, extra), type: "S3Compatible")
            let events = try await Fixtures.seedHour(server, team: world.team, count: 300)
            #expect(
                try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour).status == 201)
            try await Self.engine(server).step()
            let run = try #require(try await Self.runs(server, world, id).first)
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["records_completed"] == .int(Int64(events.count)))
            var name = Self.stem + "." + format.fileExtension
            if format == .jsonLines, let compression { name += "." + compression.fileExtension }
            let listed = try await client.listObjects(prefix: "").map(\.key).sorted()
            #expect(listed == ["exports/" + name, "exports/" + Self.stem + "_manifest.json"])
            let body = try await client.getObject("exports/" + name)
            #expect(run["bytes_exported"] == .int(Int64(body.count)))
            try Self.check(try Self.rows(body, format: format, compression: compression), against: events, parquet: format == .parquet)
            let manifest = try await Self.manifest(client)
            #expect(manifest["files"] == .array([.string("exports/" + name)]))
            #expect(manifest["records"] == .int(Int64(events.count)))
            #expect(manifest["bytes"] == .int(Int64(body.count)))
            #expect(manifest["data_interval_start"] == "2024-01-01T10:00:00+00:00")
            #expect(manifest["data_interval_end"] == "2024-01-01T11:00:00+00:00")
            #expect(manifest["run_id"] == run["id"])
        }
    }

    @Test(
        "Large files go up in multipart parts, split at max_file_size_mb; a retry rewrites the same keys and removes leftovers",
        arguments: TestBackend.available)
    func multipartSplitAndRetry(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let client = try await Self.bucket("split")
            let id = try await Self.export(server, world, config: try Self.config(client, ["max_file_size_mb": 6]))
            let events = try await Fixtures.seedHour(server, team: world.team, count: 16_000, padding: 800)
            #expect(
                try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour).status == 201)
            try await Self.engine(server, partSize: 5 * 1024 * 1024).step()
            let run = try #require(try await Self.runs(server, world, id).first)
            #expect(run["status"] == "Completed", "\(run)")
            let manifest = try await Self.manifest(client)
            let files = manifest["files"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(files.count >= 3)
            #expect(files == (0..<files.count).map { "exports/\(Self.stem)-\($0).jsonl" })
            var rows: [JSONValue] = []
            for (index, file) in files.enumerated() {
                let body = try await client.getObject(file)
                // A file ends at the first row that crosses 6 MiB.
                if index < files.count - 1 { #expect(body.count >= 6 * 1024 * 1024 && body.count < 6 * 1024 * 1024 + 4096) }
                rows += try Self.rows(body, format: .jsonLines, compression: nil)
            }
            try Self.check(rows, against: events, parquet: false)
            let before = try await client.listObjects(prefix: "").map(\.key).sorted()

            // A later attempt of the same run (as after a crash) writes the same keys; a stale
            // extra file from an earlier split is removed.
            try await client.putObject("exports/\(Self.stem)-7.jsonl", body: Array("stale".utf8))
            try await server.database.transaction {
                try await $0.execute(
                    "UPDATE batch_export_runs SET status = 'FailedRetryable', next_attempt_at = 0, finished_at = NULL WHERE batch_export_id = $1",
                    [.text(id)])
            }
            try await Self.engine(server, partSize: 5 * 1024 * 1024).step()
            #expect(try await client.listObjects(prefix: "").map(\.key).sorted() == before)
            #expect(try await Self.runs(server, world, id).first?["status"] == "Completed")
        }
    }

    @Test(
        "A run with no events writes an empty manifest; prefixes render their placeholders (docs/engine.md §4)",
        arguments: TestBackend.available)
    func emptyRunAndPrefixTemplates(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let client = try await Self.bucket("empty")
            let id = try await Self.export(
                server, world, config: try Self.config(client, ["prefix": "{table}/{year}/{month}/{day}/{hour}{minute}{second}"]))
            try await Self.scheduleRun(server, exportID: id)
            try await Self.engine(server).step()
            let manifest = try await Self.manifest(client, prefix: "events/2024/01/01/110000/")
            #expect(manifest["files"] == .array([]))
            #expect(manifest["records"] == 0)
            #expect(try await client.listObjects(prefix: "").count == 1)
        }
    }

    @Test(
        "Objects are written with the server-side encryption the configuration asks for: multipart data files and the manifest",
        arguments: TestBackend.available,
        [["encryption": "AES256"], ["encryption": "aws:kms", "kms_key_id": "hedgerow-test-key"]] as [JSONObject])
    func serverSideEncryption(backend: TestBackend, encryption: JSONObject) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let client = try await Self.bucket("sse")
            let id = try await Self.export(server, world, config: try Self.config(client, encryption))
            // About 6 MB of JSONLines: a multipart upload of two 5 MB parts.
            try await Fixtures.seedHour(server, team: world.team, count: 20, padding: 300_000)
            try await Self.scheduleRun(server, exportID: id)
            try await Self.engine(server, partSize: 5 * 1024 * 1024).step()
            let keys = try await client.listObjects(prefix: "").map(\.key).sorted()
            #expect(keys == ["exports/" + Self.stem + ".jsonl", "exports/" + Self.stem + "_manifest.json"])
            for key in keys {
                let headers = try await client.send("HEAD", key: key).headers
                // A multipart object's ETag ends in the number of its parts.
                #expect(headers.first(name: "ETag")?.hasSuffix("-2\"") == key.hasSuffix(".jsonl"), "\(key)")
                #expect(headers.first(name: "x-amz-server-side-encryption") == encryption["encryption"]?.stringValue, "\(key)")
                #expect(
                    headers.first(name: "x-amz-server-side-encryption-aws-kms-key-id") == encryption["kms_key_id"]?.stringValue, "\(key)")
            }
        }
    }

    @Test(
        "include_events and exclude_events choose the events a run delivers",
        arguments: TestBackend.available, [["include_events": ["$pageview"]], ["exclude_events": ["$pageview", "absent"]]] as [JSONObject])
    func eventNameFilters(backend: TestBackend, filter: JSONObject) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let client = try await Self.bucket("filtered")
            let id = try await Self.export(server, world, config: try Self.config(client, filter))
            let events = try await Fixtures.seedHour(server, team: world.team, count: 40)
            try await Self.scheduleRun(server, exportID: id)
            try await Self.engine(server).step()
            let wanted = events.filter { (filter["include_events"] != nil) == ($0.event == "$pageview") }
            #expect(!wanted.isEmpty && wanted.count < events.count)
            let run = try #require(try await Self.runs(server, world, id).first)
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["records_completed"] == .int(Int64(wanted.count)))
            let body = try await client.getObject("exports/" + Self.stem + ".jsonl")
            try Self.check(try Self.rows(body, format: .jsonLines, compression: nil), against: wanted, parquet: false)
            #expect(try await Self.manifest(client)["records"] == .int(Int64(wanted.count)))
        }
    }

    @Test func prefixTemplates() {
        let start = ISO8601.parse("2024-03-05T06:00:00Z")!.timestamp
        let end = ISO8601.parse("2024-03-05T07:08:09Z")!.timestamp
        #expect(
            S3Destination.renderPrefix("a/{year}-{month}-{day}/{hour}:{minute}:{second}/{table}", start: start, end: end) == (
                "a/2024-03-05/07:08:09/events", true
            ))
        #expect(
            S3Destination.renderPrefix("{data_interval_start}/{data_interval_end}", start: start, end: end)
                == ("2024-03-05T06:00:00+00:00/2024-03-05T07:08:09+00:00", true))
        #expect(S3Destination.renderPrefix("x/{unknown}/{year}", start: start, end: end) == ("x/{unknown}/{year}", false))
        #expect(S3Destination.renderPrefix("x/{year", start: start, end: end) == ("x/{year", false))
        #expect(S3Destination.renderPrefix("plain", start: start, end: end) == ("plain", true))
    }

    @Test("A prefix that does not render is used verbatim and logs a WARNING on the run", arguments: TestBackend.available)
    func unrenderedPrefixWarns(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let client = try await Self.bucket("verbatim")
            let id = try await Self.export(server, world, config: try Self.config(client, ["prefix": "raw/{nope}"]))
            try await Fixtures.seedHour(server, team: world.team, count: 3)
            _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour)
            try await Self.engine(server).step()
            #expect(try await client.listObjects(prefix: "raw/{nope}/").count == 2)
            let logs = try await server.request("GET", world.base + "/\(id)/logs/", key: world.member.key)
            let warnings = (logs["results"]?.arrayValue ?? []).filter { $0["level"] == "WARNING" }
            #expect(warnings.contains { $0["message"]?.stringValue?.contains("raw/{nope}") == true }, "\(logs)")
        }
    }

    @Test(
        "A backfill over an interval a scheduled run delivered writes beside it, under names of its own", arguments: TestBackend.available)
    func backfillBesideScheduledRun(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let client = try await Self.bucket("beside")
            let id = try await Self.export(server, world, config: try Self.config(client))
            try await Fixtures.seedHour(server, team: world.team, count: 10)
            try await Self.scheduleRun(server, exportID: id)
            try await Self.engine(server).step()
            let scheduled = try await client.getObject("exports/\(Self.stem).jsonl")
            let backfill = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour)
            let short = String((backfill["backfill_id"]?.stringValue ?? "").prefix(8))
            try await Self.engine(server).step()
            let keys = try await client.listObjects(prefix: "").map(\.key).sorted()
            #expect(
                keys.sorted()
                    == [
                        "exports/\(Self.stem)-backfill-\(short).jsonl", "exports/\(Self.stem)-backfill-\(short)_manifest.json",
                        "exports/\(Self.stem).jsonl", "exports/\(Self.stem)_manifest.json",
                    ].sorted(), "\(backfill)")
            #expect(try await client.getObject("exports/\(Self.stem).jsonl") == scheduled)
        }
    }

    @Test("A missing bucket fails the run at once, naming S3's error code", arguments: TestBackend.available)
    func missingBucketFails(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let client = try await Self.bucket("gone")
            var config = try Self.config(client)
            config["bucket_name"] = .string(S3TestServer.bucketName("never-made"))
            let id = try await Self.export(server, world, config: config)
            try await Fixtures.seedHour(server, team: world.team, count: 5)
            _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour)
            try await Self.engine(server).step()
            let run = try #require(try await Self.runs(server, world, id).first)
            #expect(run["status"] == "Failed")
            #expect(run["latest_error"]?.stringValue?.hasPrefix("NoSuchBucket: ") == true, "\(run)")
        }
    }

    @Test(
        "Wrong credentials fail the run with S3's error code; a server that is down gives FailedRetryable, then Completed when it is back",
        arguments: TestBackend.available)
    func credentialsAndOutage(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            // A server that checks signatures, with one IAM user (three unauthenticated calls make it).
            let strict = try S3TestServer.start(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "3"])
            defer { strict.stop() }
            let (keyID, _) = try S3TestServer.makeIAMUser(on: strict.url)
            let id = try await Self.export(
                server, world,
                config: [
                    "bucket_name": "any", "region": "us-east-1", "prefix": "p", "endpoint_url": .string(strict.url),
                    "aws_access_key_id": .string(keyID), "aws_secret_access_key": "wrong-secret",
                ])
            try await Fixtures.seedHour(server, team: world.team, count: 5)
            _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour)
            try await Self.engine(server).step()
            let refused = try #require(try await Self.runs(server, world, id).first)
            #expect(refused["status"] == "Failed")
            #expect(refused["latest_error"]?.stringValue?.hasPrefix("SignatureDoesNotMatch: ") == true, "\(refused)")

            // Down: nothing listens on the port yet.
            let port = S3TestServer.freePort()
            let url = "http://127.0.0.1:\(port)"
            let down = S3Client(
                endpoint: try #require(S3Endpoint.parse(url, virtualHosted: false)), region: "us-east-1",
                bucket: S3TestServer.bucketName("outage"), credentials: Self.credentials)
            let outage = try await Self.export(server, world, config: try Self.config(down, url: url))
            _ = try await server.request("POST", world.base + "/\(outage)/backfills/", key: world.member.key, json: Self.hour)
            // A clock standing still: the step cannot outlast the 1 s backoff and take the retry itself.
            try await Self.engine(server, at: .now()).step()
            let waiting = try #require(try await Self.runs(server, world, outage).first)
            #expect(waiting["status"] == "FailedRetryable")
            #expect(waiting["latest_error"]?.stringValue?.hasPrefix("ConnectionError: ") == true, "\(waiting)")
            // Back: the next attempt, once due, completes.
            let back = try await S3TestServer.restart(port: port)
            defer { back.stop() }
            try await down.createBucket()
            try await Self.engine(server, at: Timestamp(microseconds: Timestamp.now().microseconds + 3_600_000_000)).step()
            let done = try #require(try await Self.runs(server, world, outage).first)
            #expect(done["status"] == "Completed", "\(done)")
            // (The later clock also scheduled today's runs; the backfill's hour is what matters here.)
            let written = try await down.listObjects(prefix: "exports/2024").map(\.key).sorted()
            #expect(written == ["exports/\(Self.stem).jsonl", "exports/\(Self.stem)_manifest.json"])
        }
    }
}
