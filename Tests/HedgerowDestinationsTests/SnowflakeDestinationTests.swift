import Crypto
import CryptoExtras
import Foundation
import HTTPTypes
import HedgerowAPI
import HedgerowCore
import HedgerowExport
import HedgerowRuntime
import HedgerowS3
import HedgerowStore
import HedgerowTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HedgerowDestinations

/// Snowflake exports against fakesnow (`scripts/snowflake-test-server`): the REST protocol, PUT
/// through the stage's presigned URL, COPY INTO, MERGE; rows read back with the official connector.
@Suite("Snowflake destination", .enabled(if: SnowflakeEmulator.url != nil))
struct SnowflakeDestinationTests {
    static func serve(_ backend: TestBackend, _ body: @Sendable (TestServer) async throws -> Void) async throws {
        try await TestServer.run(backend, configure: { $0.engine.endpoints.snowflake = SnowflakeEmulator.url }, body)
    }

    static func engine(_ server: TestServer, url: String? = SnowflakeEmulator.url, at time: Timestamp? = nil) throws -> ExportEngine {
        var configuration = EngineConfiguration.forTests
        configuration.endpoints.snowflake = url
        return ExportEngine(
            database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
            logger: TestBackend.logger, clock: { time ?? .now() })
    }

    @Test(
        "Config: PostHog's fields and messages for both authentication types; the secrets are never shown", arguments: TestBackend.available
    )
    func configuration(backend: TestBackend) async throws {
        try await Self.serve(backend) { server in
            let world = try await Fixtures.world(server)
            func create(_ config: JSONObject) async throws -> TestResult {
                try await server.request(
                    "POST", world.base + "/", key: world.member.key,
                    json: ["name": "sf", "interval": "hour", "destination": ["type": "Snowflake", "config": .object(config)]])
            }
            var config = SnowflakeEmulator.config(database: "D")
            config["password"] = nil
            var refused = try await create(config)
            #expect(
                refused.status == 400 && refused["detail"] == "Password is required if authentication type is password", "\(refused.text)")
            config["authentication_type"] = "keypair"
            refused = try await create(config)
            #expect(refused["detail"] == "Private key is required if authentication type is key pair", "\(refused.text)")
            config["authentication_type"] = "oauth"
            refused = try await create(config)
            #expect(refused["detail"]?.stringValue?.hasPrefix("Authentication type 'oauth' is not supported") == true)
            config = SnowflakeEmulator.config(database: "D")
            config["warehouse"] = nil
            refused = try await create(config)
            #expect(refused["detail"] == "Configuration missing required field: 'warehouse'")
            let made = try await create(SnowflakeEmulator.config(database: "D"))
            #expect(made.status == 201, "\(made.text)")
            let shown = try await server.request("GET", world.base + "/\(made["id"]?.stringValue ?? "")/", key: world.member.key)
            let visible = try #require(shown["destination"]?["config"]?.objectValue)
            #expect(visible["account"] == "tests" && visible["table_name"] == "EVENTS")
            #expect(visible["user"] == nil && visible["password"] == nil)
            #expect(!shown.text.contains("secret-password"))
        }
    }

    @Test(
        "Events: a two-hour backfill is PUT, COPY'd and merged once with PostHog's columns; again it adds nothing",
        arguments: TestBackend.available)
    func events(backend: TestBackend) async throws {
        try await Self.serve(backend) { server in
            let world = try await Fixtures.world(server)
            let seeded = try await Fixtures.seedHour(server, team: world.team, count: 40)
            let database = try SnowflakeEmulator.makeDatabase()
            let id = try await ModelExportTests.create(
                server, world, model: "events", type: "Snowflake", config: SnowflakeEmulator.config(database: database))
            for _ in 0..<2 {
                let started = try await ModelExportTests.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T12:00:00Z")
                #expect(started.status == 201, "\(started.text)")
                try await Self.engine(server).step()
                let runs = try await S3DestinationTests.runs(server, world, id)
                #expect(runs.allSatisfy { $0["status"] == "Completed" }, "\(runs)")
                let counts = try SnowflakeEmulator.rows(
                    "SELECT COUNT(*) AS n, COUNT(DISTINCT \"uuid\") AS d FROM \(database).PUBLIC.EVENTS")
                #expect(
                    counts.first?["N"] == .int(Int64(seeded.count + 1)) && counts.first?["D"] == .int(Int64(seeded.count + 1)), "\(counts)")
            }
            let first = try #require(seeded.first)
            let row = try #require(
                try SnowflakeEmulator.rows(
                    "SELECT \"uuid\", \"event\", \"distinct_id\", \"team_id\", \"properties\":nested:a[2]::STRING AS u, \"elements\", \"site_url\", \"snowflake_ingested_timestamp\" IS NOT NULL AS ingested FROM \(database).PUBLIC.EVENTS WHERE \"uuid\" = '\(first.uuid)'"
                ).first)
            #expect(row["event"] == .string(first.event) && row["distinct_id"] == .string(first.distinctID))
            #expect(row["team_id"] == .int(world.team) && row["site_url"] == "" && row["INGESTED"] == true, "\(row)")
            #expect(row["U"] == "ü", "\(row)")
            let columns = try SnowflakeEmulator.official(
                "cursor.execute('SELECT * FROM \(database).PUBLIC.EVENTS LIMIT 0'); out([d[0] for d in cursor.description])")
            #expect(
                columns == [
                    "uuid", "event", "properties", "elements", "people_set", "people_set_once", "distinct_id", "team_id", "ip", "site_url",
                    "timestamp", "snowflake_ingested_timestamp",
                ])
        }
    }

    @Test(
        "Persons: merged on (team_id, distinct_id) to the newest version; an older version never overwrites a newer row",
        arguments: TestBackend.available)
    func persons(backend: TestBackend) async throws {
        try await Self.serve(backend) { server in
            let world = try await Fixtures.world(server)
            try await ModelExportTests.seedPersons(server, team: world.team)
            let database = try SnowflakeEmulator.makeDatabase()
            let table = "\(database).PUBLIC.PERSONS"
            let id = try await ModelExportTests.create(
                server, world, model: "persons", type: "Snowflake", config: SnowflakeEmulator.config(database: database, table: "PERSONS"))
            func rows() throws -> [JSONValue] {
                try SnowflakeEmulator.rows(
                    "SELECT \"distinct_id\", \"person_id\", \"person_version\", \"person_distinct_id_version\", \"properties\":plan::STRING AS plan FROM \(table) ORDER BY 1"
                )
            }
            #expect(try await ModelExportTests.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await Self.engine(server).step()
            var delivered = try rows()
            #expect(
                delivered.map { $0["person_id"] } == [
                    .string(ModelExportTests.a), .string(ModelExportTests.a), .string(ModelExportTests.b),
                ])
            #expect(delivered.first?["PLAN"] == "free", "\(delivered)")
            try await ModelExportTests.changePersons(server, team: world.team)
            #expect(try await ModelExportTests.backfill(server, world, id, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
            try await Self.engine(server).step()
            delivered = try rows()
            #expect(delivered.count == 3)
            #expect(delivered.allSatisfy { $0["person_id"] == .string(ModelExportTests.a) && $0["person_version"] == 2 }, "\(delivered)")
            #expect(delivered.map { $0["person_distinct_id_version"] } == [0, 0, 1])
            _ = try SnowflakeEmulator.official(
                "cursor.execute(\"UPDATE \(table) SET \\\"person_version\\\" = 99 WHERE \\\"distinct_id\\\" = 'd1'\"); out(True)")
            #expect(try await ModelExportTests.backfill(server, world, id, "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z").status == 201)
            try await Self.engine(server).step()
            delivered = try rows()
            #expect(delivered.count == 3 && delivered[0]["person_version"] == 99)
        }
    }

    @Test("Sessions: merged on (team_id, session_id); urls an ARRAY", arguments: TestBackend.available)
    func sessions(backend: TestBackend) async throws {
        try await Self.serve(backend) { server in
            let world = try await Fixtures.world(server)
            let session = "0190a3b2-1111-7000-8000-000000000002"
            let recent = Timestamp(microseconds: Timestamp.now().microseconds / 3_600_000_000 * 3_600_000_000 - 3_600_000_000)
            func at(_ minutes: Int64) -> String { Timestamp(microseconds: recent.microseconds + minutes * 60_000_000).iso8601WithOffset }
            try await ModelExportTests.pageviews(
                server, world, session: session, [(at(1), "https://example.com/a"), (at(2), "https://example.com/b")])
            let database = try SnowflakeEmulator.makeDatabase()
            let id = try await ModelExportTests.create(
                server, world, model: "sessions", type: "Snowflake", config: SnowflakeEmulator.config(database: database, table: "SESSIONS")
            )
            let end = Timestamp(microseconds: recent.microseconds + 3_600_000_000).iso8601WithOffset
            #expect(try await ModelExportTests.backfill(server, world, id, recent.iso8601WithOffset, end).status == 201)
            try await Self.engine(server).step()
            let delivered = try SnowflakeEmulator.rows(
                "SELECT \"session_id\", ARRAY_SIZE(\"urls\") AS n, \"urls\"[1]::STRING AS second, \"pageview_count\", \"entry_pathname\" FROM \(database).PUBLIC.SESSIONS"
            )
            #expect(delivered.count == 1)
            #expect(delivered.first?["N"] == 2 && delivered.first?["SECOND"] == "https://example.com/b", "\(delivered)")
            #expect(delivered.first?["pageview_count"] == 2 && delivered.first?["entry_pathname"] == "/a")
        }
    }

    @Test("An S3 stage: the file goes to the stage's bucket and path with the PUT's temporary credentials, in parts when large")
    func s3Stage() async throws {
        let bucket = try await S3DestinationTests.bucket("snowflake-stage")
        let url = try S3TestServer.shared.get()
        let bytes = (0..<(17 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let file = try ReferenceTools.temporaryFile(bytes, suffix: ".parquet")
        defer { try? FileManager.default.removeItem(at: file) }
        let stageInfo: JSONValue = [
            "locationType": "S3", "location": .string(bucket.bucket + "/stages/abc"), "region": "us-east-1", "endPoint": .string(url),
            "creds": [
                "AWS_KEY_ID": .string(S3DestinationTests.credentials.accessKeyID),
                "AWS_SECRET_KEY": .string(S3DestinationTests.credentials.secretAccessKey), "AWS_TOKEN": "session-token",
            ],
        ]
        try await StageUpload(connector: OutboundConnector(policy: .loopbackAllowed)).upload(
            path: file.path, size: bytes.count, name: "stage_1-0.parquet", stageInfo: stageInfo)
        let objects = try await bucket.listObjects(prefix: "")
        #expect(objects.map(\.key) == ["stages/abc/stage_1-0.parquet"])
        #expect(objects.first?.size == Int64(bytes.count))
        await #expect(throws: DestinationError.self) {
            try await StageUpload(connector: OutboundConnector(policy: .loopbackAllowed)).upload(
                path: file.path, size: bytes.count, name: "x", stageInfo: ["locationType": "LOCAL_FS"])
        }
    }

    /// What the Azure contract server received.
    actor BlobReceiver {
        var puts: [(path: String, query: String, blobType: String?, version: String?, bytes: Int, sha256: String)] = []
        func record(_ path: String, _ query: String, _ blobType: String?, _ version: String?, _ bytes: Int, _ sha256: String) {
            puts.append((path, query, blobType, version, bytes, sha256))
        }
    }

    @Test("An Azure stage: Put Blob of the whole file to <account>/<container>/<path><file> with the stage's SAS token (a contract server)")
    func azureStage() async throws {
        let receiver = BlobReceiver()
        let router = Router()
        router.put("**") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 64 << 20)
            await receiver.record(
                request.uri.path, request.uri.query ?? "", request.headers[HTTPField.Name("x-ms-blob-type")!],
                request.headers[HTTPField.Name("x-ms-version")!], body.readableBytes,
                SHA256.hash(data: Data(body.readableBytesView)).map { String(format: "%02x", $0) }.joined())
            return Response(status: .created)
        }
        let bytes = (0..<(3 * 1024 * 1024 + 7)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let file = try ReferenceTools.temporaryFile(bytes, suffix: ".parquet")
        defer { try? FileManager.default.removeItem(at: file) }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let stageInfo: JSONValue = [
                "locationType": "AZURE", "location": "stagecontainer/tables/123/", "storageAccount": "sfaccount",
                "endPoint": .string("http://127.0.0.1:\(port)"), "creds": ["AZURE_SAS_TOKEN": "?sv=2020-10-02&sig=abc%2Bdef"],
            ]
            try await StageUpload(connector: OutboundConnector(policy: .loopbackAllowed)).upload(
                path: file.path, size: bytes.count, name: "stage_1-0.parquet", stageInfo: stageInfo)
        }
        let puts = await receiver.puts
        #expect(puts.count == 1)
        #expect(puts.first?.path == "/sfaccount/stagecontainer/tables/123/stage_1-0.parquet")
        #expect(puts.first?.query == "sv=2020-10-02&sig=abc%2Bdef")
        #expect(puts.first?.blobType == "BlockBlob" && puts.first?.version == "2020-10-02")
        #expect(puts.first?.bytes == bytes.count)
        #expect(puts.first?.sha256 == SHA256.hash(data: Data(bytes)).map { String(format: "%02x", $0) }.joined())
    }

    actor Polls {
        var count = 0
        var tokens: [String] = []
        var ended: [String] = []
        func end(_ query: String) { ended.append(query) }
        func next(_ token: String?) -> Int {
            count += 1
            tokens.append(token ?? "")
            return count
        }
    }

    @Test("A statement still running (333333) is polled at its result URL, with the session token, until it answers")
    func polling() async throws {
        let polls = Polls()
        let router = Router()
        @Sendable func json(_ text: String) -> Response {
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("/session/v1/login-request") { _, _ in json(#"{"success": true, "data": {"token": "tok-1"}}"#) }
        router.post("/queries/v1/query-request") { _, _ in
            json(#"{"success": false, "code": "333333", "message": "running", "data": {"getResultUrl": "/queries/q-1/result"}}"#)
        }
        router.get("/queries/q-1/result") { request, _ in
            let count = await polls.next(request.headers[.authorization])
            return count < 3
                ? json(#"{"success": false, "code": "333333", "data": {"getResultUrl": "/queries/q-1/result"}}"#)
                : json(
                    #"{"success": true, "data": {"rowtype": [{"name": "N"}], "queryResultFormat": "json", "rowset": [["42"]], "queryId": "q-1"}}"#
                )
        }
        router.post("/session") { request, _ in
            await polls.end(request.uri.query ?? "")
            return json(#"{"success": true, "data": null}"#)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let result = try await OutboundConnector(policy: .loopbackAllowed).withHTTPClient(host: "127.0.0.1") { http in
                let snowflake = SnowflakeClient(baseURL: "http://127.0.0.1:\(port)", http: http)
                let session = try await snowflake.login(
                    account: "a", user: "u", credentials: .password("p"), database: nil, schema: nil, warehouse: "w", role: nil)
                let result = try await snowflake.query("SELECT 42 AS N", session: session)
                await snowflake.close(session)
                return result
            }
            #expect(result == SnowflakeClient.Result(columns: ["N"], rows: [["42"]], queryID: "q-1"))
        }
        #expect(await polls.count == 3)
        #expect(await polls.ended == ["delete=true"])
        #expect(await polls.tokens == Array(repeating: #"Snowflake Token="tok-1""#, count: 3))
    }

    @Test("Positional bindings reach the statement typed (TEXT, FIXED, BOOLEAN, NULL); the answer is read from Arrow")
    func bindings() async throws {
        let url = try #require(SnowflakeEmulator.url)
        let result = try await OutboundConnector(policy: .loopbackAllowed).withHTTPClient(host: "127.0.0.1") { http in
            let snowflake = SnowflakeClient(baseURL: url, http: http)
            let session = try await snowflake.login(
                account: "a", user: "u", credentials: .password("p"), database: nil, schema: nil, warehouse: "w", role: nil)
            let result = try await snowflake.query(
                "SELECT ? AS t, ? + 1 AS n, ? AS b, ? IS NULL AS missing",
                bindings: [.text("it's \"quoted\""), .integer(41), .boolean(true), .text(nil)],
                session: session)
            await snowflake.close(session)
            return result
        }
        #expect(result.rows == [["it's \"quoted\"", "42", "true", "true"]], "\(result)")
    }

    @Test("Errors are classified as PostHog's: credentials, missing objects and SQL fail at once; a suspended warehouse, 5xx and 429 retry")
    func classification() {
        #expect(
            SnowflakeClient.error(code: "390100", message: "Incorrect username or password was specified.", status: 200).retryable == false)
        #expect(SnowflakeClient.error(code: "390100", message: "", status: 200).kind == .snowflakeAuthenticationError)
        #expect(SnowflakeClient.error(code: "002003", message: "Object does not exist", status: 200).retryable == false)
        #expect(SnowflakeClient.error(code: "001003", message: "SQL compilation error", status: 200).retryable == false)
        #expect(SnowflakeClient.error(code: "000606", message: "No active warehouse", status: 200).retryable)
        #expect(SnowflakeClient.error(code: "000608", message: "Warehouse suspended", status: 200).kind == .snowflakeWarehouseSuspended)
        #expect(SnowflakeClient.error(code: "", message: "", status: 503).retryable)
        #expect(SnowflakeClient.error(code: "", message: "", status: 429).retryable)
        #expect(SnowflakeClient.error(code: "390104", message: "", status: 401).retryable == false)
    }

    @Test("Key-pair authentication: the JWT names ACCOUNT.USER and the key's SHA-256 fingerprint (as openssl computes it), signed RS256")
    func keyPairToken() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let pem = try ReferenceTools.temporaryFile(Array(key.pkcs8PEMRepresentation.utf8), suffix: ".pem")
        defer { try? FileManager.default.removeItem(at: pem) }
        let der = try ReferenceTools.run("openssl", ["pkey", "-in", pem.path, "-pubout", "-outform", "DER"])
        let fingerprint =
            "SHA256:"
            + Data(try ReferenceTools.run("openssl", ["dgst", "-sha256", "-binary"], input: der.stdout).stdout).base64EncodedString()
        let token = try SnowflakeClient.keyPairToken(account: "xy12345.us-east-1", user: "loader", key: key)
        let parts = token.split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        let claims = try #require(BigQueryEmulator.decode(parts[1]))
        #expect(claims["iss"] == .string("XY12345.LOADER." + fingerprint))
        #expect(claims["sub"] == "XY12345.LOADER")
        #expect(BigQueryEmulator.decode(parts[0])?["alg"] == "RS256")
        let signature = try #require(BigQueryEmulator.bytes(parts[2]))
        #expect(
            key.publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: Data((parts[0] + "." + parts[1]).utf8),
                padding: .insecurePKCS1v1_5))
    }

    @Test("Encrypted PKCS#8 keys as openssl writes them (PBES2, PBKDF2, AES-CBC) open with their passphrase; a wrong one is a clear error")
    func encryptedKeys() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let plain = try ReferenceTools.temporaryFile(Array(key.pkcs8PEMRepresentation.utf8), suffix: ".pem")
        defer { try? FileManager.default.removeItem(at: plain) }
        for (cipher, prf) in [("aes-256-cbc", "hmacWithSHA256"), ("aes-128-cbc", "hmacWithSHA1"), ("aes-192-cbc", "hmacWithSHA512")] {
            let encrypted = try ReferenceTools.run(
                "openssl", ["pkcs8", "-topk8", "-in", plain.path, "-v2", cipher, "-v2prf", prf, "-passout", "pass:s3cret"])
            let pem = String(decoding: encrypted.stdout, as: UTF8.self)
            #expect(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "\(encrypted.stderr)")
            guard case .keyPair(let opened) = try SnowflakeCredentials.keyPair(pem: pem, passphrase: "s3cret") else {
                Issue.record("not a key pair")
                continue
            }
            #expect(opened.publicKey.derRepresentation == key.publicKey.derRepresentation, "\(cipher) \(prf)")
            #expect(throws: DestinationError.self) { try SnowflakeCredentials.keyPair(pem: pem, passphrase: "wrong") }
            #expect(throws: DestinationError.self) { try SnowflakeCredentials.keyPair(pem: pem, passphrase: nil) }
        }
        #expect(throws: DestinationError.self) {
            try SnowflakeCredentials.keyPair(
                pem: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----", passphrase: "p")
        }
    }

    @Test(
        "A missing database fails the run at once; nothing listening is FailedRetryable, then Completed; the test steps report each cause",
        arguments: TestBackend.available)
    func failures(backend: TestBackend) async throws {
        try await Self.serve(backend) { server in
            let world = try await Fixtures.world(server)
            try await Fixtures.seedHour(server, team: world.team, count: 5)
            let absent = "MISSING_" + UUID().uuidString.prefix(8).uppercased()
            let missing = try await ModelExportTests.create(
                server, world, model: "events", type: "Snowflake", config: SnowflakeEmulator.config(database: absent))
            #expect(
                try await ModelExportTests.backfill(server, world, missing, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await Self.engine(server).step()
            let failed = try #require(try await ModelExportTests.lastRun(server, world, missing))
            #expect(failed["status"] == "Failed", "\(failed)")
            #expect(failed["latest_error"]?.stringValue?.contains(absent) == true, "\(failed)")

            let database = try SnowflakeEmulator.makeDatabase()
            let id = try await ModelExportTests.create(
                server, world, model: "events", type: "Snowflake", config: SnowflakeEmulator.config(database: database))
            #expect(try await ModelExportTests.backfill(server, world, id, "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z").status == 201)
            try await Self.engine(server, url: "http://127.0.0.1:\(S3TestServer.freePort())").step()
            let retrying = try #require(try await ModelExportTests.lastRun(server, world, id))
            #expect(retrying["status"] == "FailedRetryable", "\(retrying)")
            try await Self.engine(server, at: Timestamp(microseconds: Timestamp.now().microseconds + 3_600_000_000)).step()
            #expect(try await ModelExportTests.lastRun(server, world, id)?["status"] == "Completed")
            #expect(try SnowflakeEmulator.rows("SELECT COUNT(*) AS n FROM \(database).PUBLIC.EVENTS").first?["N"] == 5)

            func step(_ index: Int, _ config: JSONObject) async throws -> JSONValue? {
                try await DestinationTestTests.run(
                    server, world, step: index, destination: ["type": "Snowflake", "config": .object(config)])["result"]
            }
            for index in 0..<3 {
                #expect(
                    try await step(index, SnowflakeEmulator.config(database: database, table: "NEW_TABLE"))?["status"] == "Passed",
                    "step \(index)")
            }
            let bad = try await step(1, SnowflakeEmulator.config(database: absent))
            #expect(bad?["status"] == "Failed" && bad?["message"]?.stringValue?.contains(absent) == true, "\(bad ?? nil)")
        }
    }
}
