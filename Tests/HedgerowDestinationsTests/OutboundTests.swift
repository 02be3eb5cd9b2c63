import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Testing

@testable import HedgerowAPI
@testable import HedgerowDestinations
@testable import HedgerowExport

/// Destinations may not be aimed at internal addresses (issue #11 §2): literal addresses are
/// refused when an export is saved, names when a run connects (after DNS), and nothing follows a
/// redirect.
@Suite("Outbound requests")
struct OutboundTests {
    /// A name (this machine's) that resolves to a loopback address, for the connect-time checks.
    static func loopbackName() async throws -> String {
        let name = ProcessInfo.processInfo.hostName
        let addresses = try await OutboundConnector.resolve(name)
        guard !addresses.isEmpty, addresses.allSatisfy({ IPNetwork("127.0.0.0/8")!.contains($0) || $0 == IPAddress("::1") }) else {
            throw TestSetupError(description: "\(name) resolves to \(addresses), not to loopback")
        }
        return name
    }

    @Test("Literal internal addresses are refused when saved, and accepted when allowed", arguments: TestBackend.available)
    func literalAddressesRefusedWhenSaved(backend: TestBackend) async throws {
        let cases: [(type: String, config: JSONObject, field: String, reason: String)] = [
            (
                "HTTP", ["url": "https://127.0.0.1/batch/", "token": "t"], "url",
                "127.0.0.1 is a loopback address; destinations may not connect to it unless HEDGEROW_DESTINATION_ALLOW_NETWORKS names it"
            ),
            (
                "S3", ["bucket_name": "b", "region": "us-east-1", "prefix": "p", "endpoint_url": "http://169.254.169.254"], "endpoint_url",
                "169.254.169.254 is a link-local address; destinations may not connect to it unless HEDGEROW_DESTINATION_ALLOW_NETWORKS names it"
            ),
            (
                "Postgres", ["host": "localhost", "user": "u", "password": "p", "database": "d"], "host",
                "localhost is loopback (127.0.0.1 is a loopback address; destinations may not connect to it unless HEDGEROW_DESTINATION_ALLOW_NETWORKS names it)"
            ),
            (
                "Postgres", ["host": "::ffff:127.0.0.1", "user": "u", "password": "p", "database": "d"], "host",
                "127.0.0.1 is a loopback address; destinations may not connect to it unless HEDGEROW_DESTINATION_ALLOW_NETWORKS names it"
            ),
        ]
        @Sendable func body(_ type: String, _ config: JSONObject) -> JSONValue {
            .object(["name": "x", "interval": "hour", "destination": .object(["type": .string(type), "config": .object(config)])])
        }
        try await TestServer.run(backend, configure: { $0.engine.outbound = OutboundPolicy() }) { server in
            let world = try await Fixtures.world(server)
            for testCase in cases {
                try await server.request("POST", world.base + "/", key: world.member.key, json: body(testCase.type, testCase.config))
                    .expectError(
                        400, type: "validation_error", code: "invalid_input",
                        detail: "The destination's '\(testCase.field)' is not allowed: \(testCase.reason)", attr: "destination")
            }
            let list = try await server.request("GET", world.base + "/", key: world.member.key)
            #expect(list["count"] == 0)
        }
        try await TestServer.run(
            backend,
            configure: {
                $0.engine.outbound = OutboundPolicy(allow: [IPNetwork("127.0.0.0/8")!, IPNetwork("169.254.169.254/32")!])
            }
        ) { server in
            let world = try await Fixtures.world(server)
            for testCase in cases {
                let created = try await server.request(
                    "POST", world.base + "/", key: world.member.key, json: body(testCase.type, testCase.config))
                #expect(created.status == 201, "\(testCase.type): \(created.text)")
            }
        }
        try await TestServer.run(backend, configure: { $0.engine.outbound = OutboundPolicy(deny: [IPNetwork("10.0.0.0/8")!]) }) {
            server in
            let world = try await Fixtures.world(server)
            try await server.request(
                "POST", world.base + "/", key: world.member.key,
                json: body("Postgres", ["host": "10.2.3.4", "user": "u", "password": "p", "database": "d"])
            ).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "The destination's 'host' is not allowed: 10.2.3.4 is in HEDGEROW_DESTINATION_DENY_NETWORKS", attr: "destination")
        }
    }

    @Test("A name that resolves to a denied address fails the run for good, without contacting it", arguments: TestBackend.available)
    func namesCheckedWhenConnecting(backend: TestBackend) async throws {
        let name = try await Self.loopbackName()
        try await Fixtures.withReceiver { receiver, port in
            try await TestServer.run(backend) { server in
                let world = try await Fixtures.world(server)
                try await Fixtures.seedHTTP(server, team: world.team, count: 5)
                // Saved through the service: the name is not an address, so saving accepts it.
                let service = BatchExportService(
                    database: server.database, secrets: try SecretBox.load(server.configuration), deliverable: Destinations.deliverable,
                    allowInsecureHTTP: true)
                let principal = try await server.principal(world.member)
                var ids: [String] = []
                for destination: JSONValue in [
                    .object(["type": "HTTP", "config": .object(["url": .string("http://\(name):\(port)/batch/"), "token": "t"])]),
                    .object([
                        "type": "S3",
                        "config": .object(
                            try S3DestinationTests.config(
                                try await S3DestinationTests.bucket("refused"),
                                url: try S3TestServer.shared.get().replacingOccurrences(of: "127.0.0.1", with: name))),
                    ]),
                    .object([
                        "type": "Postgres",
                        "config": .object([
                            "host": .string(name), "port": 5432, "user": "u", "password": "p", "database": "d",
                            "has_self_signed_cert": true,
                        ]),
                    ]),
                ] {
                    let detail = try await service.create(
                        .environment(String(world.team)), body: .object(["name": "n", "interval": "hour", "destination": destination]),
                        principal: principal)
                    ids.append(detail.export.id)
                    _ = try await server.request(
                        "POST", world.base + "/\(detail.export.id)/backfills/", key: world.member.key, json: Fixtures.hour)
                }
                var configuration = EngineConfiguration()
                configuration.allowInsecureHTTP = true
                try await ExportEngine(
                    database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
                    logger: TestBackend.logger
                ).step()
                for id in ids {
                    let run = try #require(try await Fixtures.runs(server, export: id).first)
                    #expect(run.status == "Failed")
                    #expect(
                        run.latestError?.hasPrefix("DestinationAddressRefused: connecting to \(name) is not allowed: it resolves to ")
                            == true,
                        "\(run)")
                }
                #expect(await receiver.bodies.isEmpty)
                // Allowed, the same name is reached at the address that was checked.
                let http = try #require(ids.first)
                _ = try await server.request(
                    "POST", world.base + "/\(http)/backfills/", key: world.member.key, json: Fixtures.hour)
                try await Fixtures.httpEngine(server).step()
                let runs = try await Fixtures.runs(server, export: http)
                #expect(runs.map(\.status) == ["Failed", "Completed"])
                #expect(await receiver.bodies.count == 1)
            }
        }
    }

    @Test("HTTP destinations follow no redirect", arguments: TestBackend.available)
    func noRedirects(backend: TestBackend) async throws {
        try await Fixtures.withReceiver { receiver, port in
            try await TestServer.run(backend) { server in
                let world = try await Fixtures.world(server)
                let id = try await Fixtures.httpExport(server, world, port: port)
                try await Fixtures.seedHTTP(server, team: world.team, count: 5)
                await receiver.answer([302])
                try await Fixtures.backfillRuns(server, world, id)
                try await Fixtures.httpEngine(server).step()
                let run = try #require(try await Fixtures.runs(server, export: id).first)
                #expect(run.status == "Failed")
                #expect(run.latestError == "HTTPError: the endpoint answered 302")
                #expect(await receiver.bodies.count == 1)
            }
        }
    }
}
