import Foundation
import HTTPTypes
import HedgerowAPI
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A receiver for HTTP exports: records each POST and answers with the statuses it is given, then
/// 200. `holdNext()` makes the next POST wait until `release()` (a destination step that stalls).
actor BatchReceiver {
    var bodies: [JSONValue] = []
    var statuses: [Int] = []
    private var holding = false
    private var held: [CheckedContinuation<Void, Never>] = []
    private var released = false

    func next(_ body: JSONValue) async -> Int {
        bodies.append(body)
        if holding, !released {
            holding = false
            await withCheckedContinuation { held.append($0) }
        }
        return statuses.isEmpty ? 200 : statuses.removeFirst()
    }
    func answer(_ statuses: [Int]) { self.statuses = statuses }
    func holdNext() { holding = true }
    /// Whether a POST is waiting.
    var isHolding: Bool { !held.isEmpty }
    func release() {
        released = true
        for continuation in held { continuation.resume() }
        held.removeAll()
    }
}

@Suite("HTTP destination (docs/engine.md §3, §7)")
struct HTTPDestinationTests {
    static func withReceiver(_ body: @Sendable (BatchReceiver, Int) async throws -> Void) async throws {
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

    static func engine(
        _ server: TestServer, at time: Timestamp? = nil, configure: (inout EngineConfiguration) -> Void = { _ in }
    ) throws -> ExportEngine {
        var configuration = EngineConfiguration.forTests
        configuration.allowInsecureHTTP = true
        configure(&configuration)
        return ExportEngine(
            database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
            logger: TestBackend.logger, clock: { time ?? .now() })
    }

    /// An HTTP export (created through the service, which may allow http:// for the test receiver).
    static func export(_ server: TestServer, _ world: BatchExportTests.World, port: Int) async throws -> String {
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

    static func seed(_ server: TestServer, team: Int64, count: Int) async throws {
        let base = ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp.microseconds
        _ = try await SQLEventStore(database: server.database).append(
            (0..<count).map { index in
                let at = Timestamp(microseconds: base + Int64(index) * 100_000)
                return Event(
                    uuid: Identifiers.uuidV7(at: at), teamID: team, event: "e", distinctID: "u\(index)", properties: #"{"n":\#(index)}"#,
                    personID: nil, personProperties: nil, elementsChain: nil, timestamp: at, createdAt: at, insertedAt: at)
            })
    }

    static let hour: JSONValue = .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"])

    @Test("Events go out in PostHog's /batch/ shape, 5000 to a POST", arguments: TestBackend.available)
    func payload(backend: TestBackend) async throws {
        try await Self.withReceiver { receiver, port in
            try await TestServer.run(backend) { server in
                let world = try await BatchExportTests.world(server)
                let id = try await Self.export(server, world, port: port)
                try await Self.seed(server, team: world.team, count: 12_000)
                #expect(
                    try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour).status == 201
                )
                try await Self.engine(server).step()
                let bodies = await receiver.bodies
                #expect(bodies.map { $0["batch"]?.arrayValue?.count } == [5000, 5000, 2000])
                let first = try #require(bodies.first)
                #expect(first["api_key"] == "phc_receiver")
                #expect(first["historical_migration"] == true)
                let item = try #require(first["batch"]?.arrayValue?.first)
                #expect(item.objectValue?.keys == ["uuid", "distinct_id", "timestamp", "event", "properties"])
                #expect(item["properties"] == .object(["n": 0]))
                #expect(item["timestamp"] == "2024-01-01T10:00:00Z")
                let uuids = Set(bodies.flatMap { $0["batch"]?.arrayValue ?? [] }.compactMap { $0["uuid"]?.stringValue })
                #expect(uuids.count == 12_000)
                let run = try await server.request("GET", world.base + "/\(id)/runs/", key: world.member.key)
                #expect(run["results"]?.arrayValue?.first?["status"] == "Completed")
                #expect(run["results"]?.arrayValue?.first?["records_completed"] == 12_000)
            }
        }
    }

    @Test("5xx and 429 are retried and resume after the last acknowledged POST; other 4xx fail the run", arguments: TestBackend.available)
    func retriesAndResume(backend: TestBackend) async throws {
        try await Self.withReceiver { receiver, port in
            try await TestServer.run(backend) { server in
                let world = try await BatchExportTests.world(server)
                let id = try await Self.export(server, world, port: port)
                try await Self.seed(server, team: world.team, count: 12_000)
                await receiver.answer([200, 503])
                _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour)
                // The engine's clock stands still for this step: on a loaded machine the step could
                // otherwise outlast the 1 s backoff and take the retry itself.
                try await Self.engine(server, at: .now()).step()
                var run = try #require(
                    try await server.request("GET", world.base + "/\(id)/runs/", key: world.member.key)["results"]?.arrayValue?.first)
                #expect(run["status"] == "FailedRetryable")
                #expect(run["latest_error"] == "RetryableHTTPError: the endpoint answered 503")
                #expect(run["cursor"]?.stringValue?.contains("|") == true)
                // The next attempt, once due, sends only what was not acknowledged.
                try await Self.engine(server, at: Timestamp(microseconds: Timestamp.now().microseconds + 10_000_000)).step()
                run = try #require(
                    try await server.request("GET", world.base + "/\(id)/runs/", key: world.member.key)["results"]?.arrayValue?.first)
                #expect(run["status"] == "Completed")
                let bodies = await receiver.bodies
                #expect(bodies.map { $0["batch"]?.arrayValue?.count } == [5000, 5000, 5000, 2000])
                let acknowledged = bodies.enumerated().filter { $0.offset != 1 }.flatMap { $0.element["batch"]?.arrayValue ?? [] }
                #expect(Set(acknowledged.compactMap { $0["uuid"]?.stringValue }).count == 12_000)

                await receiver.answer([400])
                _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Self.hour)
                try await Self.engine(server).step()
                let failed = try await server.request("GET", world.base + "/\(id)/runs/?status=Failed", key: world.member.key)
                #expect(failed["results"]?.arrayValue?.first?["latest_error"] == "HTTPError: the endpoint answered 400")
            }
        }
    }

    @Test("The API takes https:// URLs, and http:// only when insecure destinations are allowed", arguments: TestBackend.available)
    func urlScheme(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await BatchExportTests.world(server)
            func create(_ url: String) async throws -> TestResult {
                try await server.request(
                    "POST", world.base + "/", key: world.member.key,
                    json: .object([
                        "name": "h", "interval": "hour",
                        "destination": .object(["type": "HTTP", "config": .object(["url": .string(url), "token": "secret-token"])]),
                    ]))
            }
            try await create("http://example.test/batch/").expectError(
                400, type: "validation_error", code: "invalid_input",
                detail:
                    "Invalid HTTP destination URL: plain http:// URLs are refused; use https:// (or set HEDGEROW_ALLOW_INSECURE_HTTP_DESTINATIONS=1)",
                attr: "destination")
            try await create("ftp://example.test/").expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "Invalid HTTP destination URL: the URL must start with https://",
                attr: "destination")
            let created = try await create("https://example.test/batch/")
            #expect(created.status == 201)
            #expect(created["destination"]?["config"] == .object(["url": "https://example.test/batch/"]))
            #expect(!created.text.contains("secret-token"))
        }
    }
}
