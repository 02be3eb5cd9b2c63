import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import HummingbirdTesting
import Testing

@testable import HedgerowAPI
@testable import HedgerowExport

/// The reproductions of issue #31, each as a request an attacker (or a careless client) would send.
@Suite("Robustness and security, part two")
struct AttackTests {
    // MARK: §1, §2: capture's clocks

    @Test(
        "An offset of Int64.min, by every capture route and any token, is answered and the server lives on",
        arguments: TestBackend.available)
    func extremeOffset(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            for api in ["x", token] {
                let event: JSONValue = .object([
                    "api_key": .string(api), "event": "e", "distinct_id": "d", "offset": .int(Int64.min),
                ])
                let answer = try await server.request("POST", "/e/", json: event)
                #expect(answer.status == (api == token ? 200 : 401), "\(answer.text)")
                let data = Data(JSONWriter.bytes(event)).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                #expect(try await server.request("GET", "/e/?data=\(data)").status == (api == token ? 200 : 401))
            }
            let v1: JSONValue = .object([
                "created_at": "2024-05-01T10:00:00Z",
                "batch": [
                    .object([
                        "event": "e", "uuid": "0190a000-0000-7000-8000-0000000000aa", "distinct_id": "d",
                        "timestamp": "2024-05-01T10:00:00Z", "offset": .int(Int64.min),
                    ])
                ],
            ])
            #expect(try await Fixtures.postCaptureV1(server, token: token, body: JSONWriter.bytes(v1)).status == 200)
            let stored = try await Fixtures.stored(server, team: team)
            #expect(stored.count == 3)
            #expect(stored.allSatisfy { Timestamp(exactly: $0.timestamp.microseconds) != nil })
        }
    }

    @Test("A timestamp of year 0 with sent_at in 9999 is stored at the time it arrived, and exports", arguments: TestBackend.available)
    func poisonedTimestamp(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            let before = Timestamp.now()
            let answer = try await server.request(
                "POST", "/e/",
                json: .object([
                    "api_key": .string(token), "event": "e", "distinct_id": "d", "timestamp": "0000-01-01T00:00:00Z",
                    "sent_at": "9999-12-31T23:59:59Z",
                ]))
            #expect(answer.status == 200, "\(answer.text)")
            let event = try #require(try await Fixtures.stored(server, team: team).first)
            #expect(event.timestamp >= before && event.timestamp <= .now())
            var line: [UInt8] = []
            event.timestamp.writeISO8601WithOffset(into: &line)
            #expect(line.count == 32 || line.count == 25)
        }
    }

    // MARK: §3: sizes

    @Test("An S3 or Azure Blob export with max_file_size_mb of Int64.max is refused when saved", arguments: TestBackend.available)
    func hugeFileSize(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let configs: [(String, JSONObject)] = [
                ("S3", ["bucket_name": "b", "region": "us-east-1", "prefix": "p", "max_file_size_mb": .int(Int64.max)]),
                (
                    "AzureBlob",
                    [
                        "container_name": "c", "max_file_size_mb": .int(Int64.max),
                        "connection_string": "AccountName=a;AccountKey=a2V5;BlobEndpoint=https://a.blob.core.windows.net",
                    ]
                ),
            ]
            for (type, config) in configs {
                try await server.request(
                    "POST", world.base + "/", key: world.member.key,
                    json: .object([
                        "name": "files", "interval": "hour", "destination": .object(["type": .string(type), "config": .object(config)]),
                    ])
                ).expectError(
                    400, type: "validation_error", code: "invalid_input",
                    detail: "Configuration field 'max_file_size_mb' must be between 1 and 5242880.", attr: "destination")
            }
        }
    }

    // MARK: §4: sign-in

    @Test(
        "100 concurrent bad sign-ins for one email: only the limit's worth are hashed, the rest refused first",
        arguments: TestBackend.available)
    func signInCountedBeforeHashing(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            _ = try await server.createUser("owner@example.com", password: Fixtures.consolePassword)
            let service = SignInService(database: server.database, failures: WindowLimiter(limit: 5, clock: { 1_000_000 }))
            let statuses = await withTaskGroup(of: Int.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        do {
                            _ = try await service.signIn(
                                email: "owner@example.com", password: "guess \(index)", client: "203.0.113.\(index)")
                            return 200
                        } catch let error as APIError {
                            return error.status
                        } catch {
                            return 500
                        }
                    }
                }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 400 }.count == 5, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 95)
            // A successful sign-in gives its counted attempt back.
            let other = SignInService(database: server.database, failures: WindowLimiter(limit: 1, clock: { 1_000_000 }))
            for _ in 0..<3 { _ = try await other.signIn(email: "owner@example.com", password: Fixtures.consolePassword, client: "a") }
        }
    }

    @Test("An unknown email is checked against a hash of the current cost")
    func unknownEmailCostsTheSame() async throws {
        let parts = PasswordHasher.dummy.split(separator: "$", omittingEmptySubsequences: false)
        #expect(parts.count == 4 && parts[1] == "\(PasswordHasher.iterations)")
        #expect(try await PasswordHasher.verifyOffPool("", against: PasswordHasher.dummy) == false)
        #expect(try await PasswordHasher.verifyOffPool("anything", against: PasswordHasher.dummy) == false)
    }

    @Test("A hash not made (the sign-in's task cancelled) is an error, never the unusable hash stored in its place")
    func cancelledHashIsNoHash() async {
        let outcome = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await PasswordHasher.hashOffPool("correct horse battery")
        }.result
        #expect(throws: CancellationError.self) { try outcome.get() }
    }

    // MARK: §5: user regular expressions

    @Test("A backfill whose filter backtracks is counted outside the write transaction: capture is not held up")
    func slowCountDoesNotHoldWrites() async throws {
        // SQLite evaluates patterns with ICU, which backtracks; PostgreSQL's engine does not.
        // A 15 s limit: the capture must finish inside it, and the parallel suite on two cores has held a request up for 9 s.
        try await TestServer.run(.sqlite, configure: { $0.engine.eventQueryTimeout = .seconds(15) }) { server in
            let world = try await Fixtures.world(server)
            let team = try await server.request("GET", "/api/environments/\(world.team)/", key: world.owner.key)
            let token = try #require(team["api_token"]?.stringValue)
            let id = try await Fixtures.createExport(
                server, world,
                Fixtures.patched(
                    Fixtures.noopExport,
                    [("filters", [.object(["key": "word", "type": "event", "operator": "regex", "value": "(.*a){12}$"])])]))
            try await Fixtures.storeWord(String(repeating: "a", count: 28) + "!", server, team: world.team)
            let order = Order()
            async let backfill: TestResult = {
                let answer = try await server.request(
                    "POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Fixtures.hour)
                await order.note("backfill")
                return answer
            }()
            try await Task.sleep(for: .milliseconds(300))
            let captured = try await server.request(
                "POST", "/e/", json: .object(["api_key": .string(token), "event": "during", "distinct_id": "d"]))
            await order.note("capture")
            #expect(captured.status == 200)
            let answer = try await backfill
            #expect(answer.status == 400 && answer["detail"]?.stringValue?.contains("took longer than 15 s") == true, "\(answer.text)")
            #expect(await order.names == ["capture", "backfill"], "\(answer.text)")
        }
    }

    actor Order {
        var names: [String] = []
        func note(_ name: String) { names.append(name) }
    }

    // MARK: §10: files and scopes

    @Test("The data directory is 0700, the database and its WAL 0600; commits are synchronous=FULL unless traded back")
    func filesArePrivate() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-perm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + "/data"
        let path = directory + "/hedgerow.sqlite"
        func mode(_ file: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }
        for (setting, expected) in [(SQLiteDatabase.Synchronous.full, 2), (.normal, 1)] {
            let database = try await DatabaseFactory.open(.sqlite(path: path), logger: TestBackend.logger, sqliteSynchronous: setting)
            try await Migrator(database: database).migrate()
            let level = try await database.read { try await $0.first("PRAGMA synchronous", []) }
            #expect(level?.int("synchronous") == Int64(expected))
            #expect(try mode(directory) == 0o700)
            #expect(try mode(path) == 0o600)
            #expect(try mode(path + "-wal") == 0o600)
            await database.shutdown()
        }
        // A data directory an earlier release left 0755 is tightened when its key is read.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        _ = try SecretBox.load(secretKey: nil, dataDirectory: directory)
        #expect(try mode(directory) == 0o700)
        #expect(try mode(directory + "/secret-key") == 0o600)
        let reopened = try await DatabaseFactory.open(.sqlite(path: path), logger: TestBackend.logger)
        #expect(try mode(path) == 0o600)
        await reopened.shutdown()
        #expect(try HedgerowConfiguration.fromEnvironment([:]).sqliteSynchronous == .full)
        #expect(try HedgerowConfiguration.fromEnvironment(["HEDGEROW_SQLITE_SYNCHRONOUS": "NORMAL"]).sqliteSynchronous == .normal)
        #expect(throws: HedgerowConfiguration.Invalid.self) {
            try HedgerowConfiguration.fromEnvironment(["HEDGEROW_SQLITE_SYNCHRONOUS": "off"])
        }
    }

    @Test("A key scoped to one environment lists only that environment of its project", arguments: TestBackend.available)
    func scopedKeySeesOnlyItsEnvironments(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let project = try await server.request("GET", "/api/environments/\(world.team)/", key: world.owner.key)
            guard case .int(let projectID)? = project["project_id"] else {
                Issue.record("no project_id: \(project.text)")
                return
            }
            let staging = try await server.request(
                "POST", "/api/projects/\(projectID)/environments/", key: world.owner.key, json: .object(["name": "Staging"]))
            #expect(staging.status == 201, "\(staging.text)")
            let stagingToken = try #require(staging["api_token"]?.stringValue)
            let scoped = try await server.createKey(for: world.owner, scopes: ["project:read"], scopedTeams: [world.team])
            let listed = try await server.request("GET", "/api/projects/\(projectID)/environments/", key: scoped)
            #expect(listed.status == 200, "\(listed.text)")
            #expect(listed["count"] == .int(1))
            #expect(!listed.text.contains(stagingToken))
            let all = try await server.request("GET", "/api/projects/\(projectID)/environments/", key: world.owner.key)
            #expect(all["count"] == .int(2))
        }
    }

    // MARK: §11: clients behind a proxy

    @Test func clientAddressThroughTrustedProxies() {
        let direct = ClientAddress()
        #expect(direct.resolve(peer: "10.0.0.1", forwardedFor: ["1.2.3.4"]) == "10.0.0.1")
        let proxied = ClientAddress(trustedProxies: [IPNetwork("10.0.0.0/8")!])
        #expect(proxied.resolve(peer: "10.0.0.1", forwardedFor: ["1.2.3.4"]) == "1.2.3.4")
        // The right-most untrusted hop: a client's own X-Forwarded-For claims are skipped.
        #expect(proxied.resolve(peer: "10.0.0.1", forwardedFor: ["6.6.6.6, 1.2.3.4", "10.0.0.2"]) == "1.2.3.4")
        #expect(proxied.resolve(peer: "10.0.0.1", forwardedFor: []) == "10.0.0.1")
        #expect(proxied.resolve(peer: "10.0.0.1", forwardedFor: ["not-an-address"]) == "10.0.0.1")
        #expect(proxied.resolve(peer: "192.0.2.7", forwardedFor: ["1.2.3.4"]) == "192.0.2.7")
        #expect(proxied.resolve(peer: "10.0.0.1", forwardedFor: ["10.0.0.3"]) == "10.0.0.3")
    }

    @Test("Behind a trusted proxy, failed authentications are counted per forwarded client")
    func proxiedClientsCountedApart() async throws {
        try await TestServer.run(
            .sqlite, live: true,
            configure: {
                $0.rateLimit.enabled = true
                $0.rateLimit.authenticationFailuresPerMinute = 1
                $0.limiterClock = { 1_800_000_000 }
                $0.trustedProxies = [IPNetwork("127.0.0.0/8")!]
            }
        ) { (server: TestServer) async throws in
            func attempt(from client: String) async throws -> Int {
                try await server.request("GET", "/api/organizations/", key: "phx_wrong", headers: [("X-Forwarded-For", client)]).status
            }
            #expect(try await attempt(from: "203.0.113.5") == 401)
            #expect(try await attempt(from: "203.0.113.5") == 429)
            #expect(try await attempt(from: "203.0.113.6") == 401)
        }
    }

    // MARK: A run that kills its process

    static func abandon(_ server: TestServer, export: String, abandoned: Int64, lease: Timestamp?) async throws {
        try await server.database.transaction { connection in
            try await connection.execute(
                """
                UPDATE batch_export_runs SET status = 'Running', attempt = attempt + 1, lease_owner = $2, lease_expires_at = $3,
                  abandoned_attempts = $4 WHERE batch_export_id = $1
                """, [.text(export), lease == nil ? .null : .text("dead-worker"), SQLValue(lease), .int(abandoned)])
        }
    }

    /// A NoOp export with one stored event and a backfill of its hour (one run).
    static func backfilledNoOp(_ server: TestServer) async throws -> (world: Fixtures.World, id: String) {
        let world = try await Fixtures.world(server)
        let id = try await Fixtures.createExport(server, world)
        try await Fixtures.seedHTTP(server, team: world.team, count: 1)
        try await Fixtures.backfillRuns(server, world, id)
        return (world, id)
    }

    @Test(
        "A run whose attempts died with their process twice is failed and counted, not tried a third time", arguments: TestBackend.available
    )
    func poisonedRunFailsAfterTwoDeaths(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (_, id) = try await Self.backfilledNoOp(server)
            let now = Timestamp.now()
            let expired = Timestamp(microseconds: now.microseconds - 1_000_000)
            // The first death: the run is claimed again (and completes on NoOp), its death counted.
            try await Self.abandon(server, export: id, abandoned: 0, lease: expired)
            try await Fixtures.httpEngine(server, at: now).step()
            var run = try #require(try await Fixtures.runs(server, export: id).first)
            #expect(run.status == "Completed", "\(run)")
            let counted = try await server.database.read {
                try await $0.first("SELECT abandoned_attempts FROM batch_export_runs WHERE batch_export_id = $1", [.text(id)])
            }
            #expect(counted?.int("abandoned_attempts") == 1)
            // A second death: failed with a clear error, never claimed.
            try await Self.abandon(server, export: id, abandoned: 1, lease: expired)
            try await Fixtures.httpEngine(server, at: now).step()
            run = try #require(try await Fixtures.runs(server, export: id).first)
            #expect(run.status == "Failed", "\(run)")
            #expect(run.leaseOwner == nil)
            #expect(
                run.latestError?.hasPrefix("ProcessDied: the process running this run stopped without finishing it in 2 attempts") == true)
            let lines = try await Fixtures.logLines(server, export: id)
            #expect(lines.contains { $0.hasPrefix("Run failed: ProcessDied") })
        }
    }

    @Test("A run released by a shutdown is not counted as a death", arguments: TestBackend.available)
    func releasedRunsAreNotDeaths(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (_, id) = try await Self.backfilledNoOp(server)
            try await Self.abandon(server, export: id, abandoned: 1, lease: nil)
            try await Fixtures.httpEngine(server).step()
            #expect(try await Fixtures.runs(server, export: id).first?.status == "Completed")
        }
    }
}
