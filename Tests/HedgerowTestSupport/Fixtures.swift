import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowRuntime
import HedgerowStore
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// Fixtures more than one test target uses.
package enum Fixtures {
    /// A run as the run-outcome tests read it from the database.
    package struct StoredRun {
        package var status: String
        package var attempt: Int64
        package var leaseOwner: String?
        package var latestError: String?
        package var records: Int64?
    }

    /// The console password the console tests give their users.
    package static let consolePassword = "correct horse battery"

    /// A NoOp batch export, hourly, as a create body.
    package static let noopExport: JSONValue = .object([
        "name": "nightly", "destination": .object(["type": "NoOp", "config": .object([:])]), "interval": "hour",
    ])

    /// An owner with an organization: its default environment's id and project token.
    package static func environment(_ server: TestServer) async throws -> (id: Int64, token: String, owner: TestUser) {
        let owner = try await server.createUser("owner@example.com")
        _ = try await server.createOrganization("Acme", owner: owner)
        let me = try await server.request("GET", "/api/users/@me/", key: owner.key)
        guard case .int(let id)? = me["team"]?["id"], case .string(let token)? = me["team"]?["api_token"] else {
            throw TestSetupError(description: "no environment")
        }
        return (id, token, owner)
    }

    /// Every stored event of an environment, in ingestion order.
    package static func stored(_ server: TestServer, team: Int64) async throws -> [Event] {
        var all: [Event] = []
        let query = EventQuery(
            teamID: team, field: .insertedAt, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max))
        for try await batch in SQLEventStore(database: server.database).batches(query, batchSize: 1000) { all += batch }
        return all
    }

    /// `count` events spread over 2024-01-01 10:00–11:00 UTC (and one on each side), with the
    /// awkward values files must carry: nulls, nested JSON, unicode, escapes. Returns those inside
    /// the hour.
    @discardableResult
    package static func seedHour(_ server: TestServer, team: Int64, count: Int, padding: Int = 0) async throws -> [Event] {
        let base = ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp.microseconds
        let filler = String(repeating: "x", count: padding)
        let events = (-1...count).map { index in
            let at = Timestamp(microseconds: base + Int64(index) * (3_600_000_000 / Int64(max(count, 1))) + (index == count ? 1 : 0))
            return Event(
                uuid: Identifiers.uuidV7(at: at), teamID: team, event: index % 2 == 0 ? "$pageview" : "signed up \"é\"",
                distinctID: "user-\(index)", properties: #"{"n":\#(index),"nested":{"a":[1,null,"ü"]},"pad":"\#(filler)"}"#,
                personID: index % 3 == 0 ? nil : "person-\(index)", personProperties: index % 3 == 0 ? nil : #"{"plan":"pro"}"#,
                elementsChain: index % 4 == 0 ? "a:href=\"/x\"" : nil, timestamp: at, createdAt: at, insertedAt: at)
        }
        _ = try await SQLEventStore(database: server.database).append(events)
        return events.filter { $0.timestamp.microseconds >= base && $0.timestamp.microseconds < base + 3_600_000_000 }
    }

    /// A capture v1 request (`/i/v1/analytics/events`) with a project token and an optional body encoding.
    package static func postCaptureV1(
        _ server: TestServer, token: String?, body: [UInt8], encoding: String? = nil
    ) async throws -> TestResult {
        var headers = [("Content-Type", "application/json"), ("PostHog-Sdk-Info", "posthog-test/1.2.3")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        if let encoding { headers.append(("Content-Encoding", encoding)) }
        return try await server.request("POST", "/i/v1/analytics/events", body: body, headers: headers)
    }

    package struct World {
        package let owner: TestUser
        package let member: TestUser
        package let org: String
        package let team: Int64
        package var base: String { "/api/environments/\(team)/batch_exports" }

        package init(owner: TestUser, member: TestUser, org: String, team: Int64) {
            self.owner = owner
            self.member = member
            self.org = org
            self.team = team
        }
    }

    package static func world(_ server: TestServer) async throws -> World {
        let owner = try await server.createUser("owner@example.com")
        let member = try await server.createUser("member@example.com")
        let org = try await server.createOrganization("Acme", owner: owner)
        try await server.addMember(member, to: org, level: .member)
        let me = try await server.request("GET", "/api/users/@me/", key: owner.key)
        guard case .int(let team)? = me["team"]?["id"] else { throw TestSetupError(description: "no team") }
        return World(owner: owner, member: member, org: org, team: team)
    }

    package static func createExport(_ server: TestServer, _ world: World, _ body: JSONValue = noopExport) async throws -> String {
        let result = try await server.request("POST", world.base + "/", key: world.member.key, json: body)
        #expect(result.status == 201, "\(result.text)")
        return result["id"]?.stringValue ?? ""
    }

    package static func patched(_ body: JSONValue, _ changes: [(String, JSONValue)]) -> JSONValue {
        var object = body.objectValue!
        for (key, value) in changes { object[key] = value }
        return .object(object)
    }

    /// Events at known times for an environment.
    package static func seedEvents(_ server: TestServer, team: Int64, times: [String]) async throws {
        let events = times.enumerated().map { index, time -> Event in
            let at = ISO8601.parse(time)!.timestamp
            return Event(
                uuid: Identifiers.uuidV7(at: at), teamID: team, event: "e\(index)", distinctID: "u", properties: "{}", personID: nil,
                personProperties: nil, elementsChain: nil, timestamp: at, createdAt: at, insertedAt: at)
        }
        _ = try await SQLEventStore(database: server.database).append(events)
    }

    package static func engine(_ server: TestServer, at time: String? = nil) -> ExportEngine {
        var logger = Logger(label: "engine-test")
        logger.logLevel = .critical
        let clock = time.map { ISO8601.parse($0)!.timestamp }
        return ExportEngine(database: server.database, logger: logger, clock: { clock ?? .now() })
    }

    /// An engine that may deliver to plain-http receivers (the tests' own).
    package static func httpEngine(
        _ server: TestServer, at time: Timestamp? = nil, configure: (inout EngineConfiguration) -> Void = { _ in }
    ) throws -> ExportEngine {
        var configuration = EngineConfiguration.forTests
        configuration.allowInsecureHTTP = true
        configure(&configuration)
        return ExportEngine(
            database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
            logger: TestBackend.logger, clock: { time ?? .now() })
    }

    package static let hour: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"])

    package static func seedHTTP(_ server: TestServer, team: Int64, count: Int) async throws {
        let base = ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp.microseconds
        _ = try await SQLEventStore(database: server.database).append(
            (0..<count).map { index in
                let at = Timestamp(microseconds: base + Int64(index) * 100_000)
                return Event(
                    uuid: Identifiers.uuidV7(at: at), teamID: team, event: "e", distinctID: "u\(index)", properties: #"{"n":\#(index)}"#,
                    personID: nil, personProperties: nil, elementsChain: nil, timestamp: at, createdAt: at, insertedAt: at)
            })
    }

    /// An HTTP export (created through the service, which may allow http:// for the test receiver).
    package static func httpExport(_ server: TestServer, _ world: Self.World, port: Int) async throws -> String {
        let service = BatchExportService(
            database: server.database, secrets: try SecretBox.load(server.configuration), deliverable: Destinations.deliverable,
            allowInsecureHTTP: true, outbound: .loopbackAllowed)
        let detail = try await service.create(
            .environment(String(world.team)),
            body: .object([
                "name": "forward", "interval": "hour",
                "destination": .object([
                    "type": "HTTP", "config": .object(["url": .string("http://127.0.0.1:\(port)/batch/"), "token": "phc_receiver"]),
                ]),
            ]), principal: try await server.principal(world.member))
        return detail.export.id
    }

    package static func withReceiver(_ body: @Sendable (BatchReceiver, Int) async throws -> Void) async throws {
        let receiver = BatchReceiver()
        let router = Router()
        router.post("/batch/") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 100 << 20)
            let status = await receiver.next((try? JSONParser.parse(Array(bytes.readableBytesView))) ?? .null)
            // A redirect points back here: a client that followed it would POST again.
            var headers = HTTPFields()
            if (300..<400).contains(status) { headers[.location] = "/batch/" }
            return Response(status: .init(code: status), headers: headers)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            do {
                try await body(receiver, try #require(client.port))
            } catch {
                await receiver.release()
                throw error
            }
            await receiver.release()
        }
    }

    package static func backfillRuns(_ server: TestServer, _ world: Self.World, _ id: String) async throws {
        let created = try await server.request(
            "POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour)
        #expect(created.status == 201, "\(created.text)")
    }

    package static func logLines(_ server: TestServer, export: String) async throws -> [String] {
        try await server.database.read { connection in
            try await connection.query(
                "SELECT message FROM batch_export_logs WHERE batch_export_id = $1 ORDER BY timestamp, id", [.text(export)]
            ).compactMap { $0.string("message") }
        }
    }

    package static func runs(_ server: TestServer, export: String) async throws -> [StoredRun] {
        try await server.database.read { connection in
            try await connection.query(
                "SELECT status, attempt, lease_owner, latest_error, records_completed FROM batch_export_runs WHERE batch_export_id = $1 ORDER BY created_at",
                [.text(export)]
            ).map { row in
                StoredRun(
                    status: row.string("status") ?? "", attempt: row.int("attempt") ?? -1, leaseOwner: row.string("lease_owner"),
                    latestError: row.string("latest_error"), records: row.int("records_completed"))
            }
        }
    }

    /// One event at 10:15 on 2024-01-01 whose property `word` is `word` (what backtracking filters are tried on).
    package static func storeWord(_ word: String, _ server: TestServer, team: Int64) async throws {
        let at = ISO8601.parse("2024-01-01T10:15:00Z")!.timestamp
        _ = try await SQLEventStore(database: server.database).append([
            Event(
                uuid: Identifiers.uuidV7(at: at), teamID: team, event: "e", distinctID: "u",
                properties: JSONWriter.string(.object(["word": .string(word)])), personID: nil, personProperties: nil,
                elementsChain: nil, timestamp: at, createdAt: at, insertedAt: at)
        ])
    }

    package static func integrationID(_ result: TestResult) -> Int64 {
        if case .int(let id)? = result["id"] { return id }
        return 0
    }

    package static func azureIntegration(_ key: String = "c2VjcmV0a2V5") -> JSONValue {
        .object([
            "kind": "azure-blob",
            "config": .object([
                "connection_string": .string(
                    "DefaultEndpointsProtocol=https;AccountName=acmestore;AccountKey=\(key);EndpointSuffix=core.windows.net")
            ]),
        ])
    }

    package static let databricksIntegration: JSONValue = .object([
        "kind": "databricks",
        "config": .object(["server_hostname": "dbc-1234.cloud.databricks.com", "client_id": "sp-id", "client_secret": "sp-secret-42"]),
    ])
}

/// A receiver for HTTP exports: records each POST and answers with the statuses it is given, then
/// 200. `holdNext()` makes the next POST wait until `release()` (a destination step that stalls).
package actor BatchReceiver {
    package var bodies: [JSONValue] = []
    package var statuses: [Int] = []
    private var holding = false
    private var held: [CheckedContinuation<Void, Never>] = []
    private var released = false
    private var delay: Duration?

    package func next(_ body: JSONValue) async -> Int {
        bodies.append(body)
        if let delay {
            // A slow receiver: each POST is answered after `delay`, or at once after `release()`.
            let deadline = ContinuousClock.now + delay
            while !released, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        }
        if holding, !released {
            holding = false
            await withCheckedContinuation { held.append($0) }
        }
        return statuses.isEmpty ? 200 : statuses.removeFirst()
    }
    package func answer(_ statuses: [Int]) { self.statuses = statuses }
    package func holdNext() { holding = true }
    /// Answers every POST after `delay` (until `release()`).
    package func answerEach(after delay: Duration) { self.delay = delay }
    /// Whether a POST is waiting.
    package var isHolding: Bool { !held.isEmpty }
    package func release() {
        released = true
        for continuation in held { continuation.resume() }
        held.removeAll()
    }
}

extension TestServer {
    /// The principal a user's key authenticates as.
    package func principal(_ user: TestUser) async throws -> Principal {
        try await AuthenticationService(database: database).authenticate(value: user.key, source: .header)
    }
}
