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

@Suite("HTTP destination (docs/engine.md §3, §7)")
struct HTTPDestinationTests {

    @Test("Events go out in PostHog's /batch/ shape, 5000 to a POST", arguments: TestBackend.available)
    func payload(backend: TestBackend) async throws {
        try await Fixtures.withReceiver { receiver, port in
            try await TestServer.run(backend) { server in
                let world = try await Fixtures.world(server)
                let id = try await Fixtures.httpExport(server, world, port: port)
                try await Fixtures.seedHTTP(server, team: world.team, count: 12_000)
                #expect(
                    try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Fixtures.hour).status
                        == 201
                )
                try await Fixtures.httpEngine(server).step()
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
        try await Fixtures.withReceiver { receiver, port in
            try await TestServer.run(backend) { server in
                let world = try await Fixtures.world(server)
                let id = try await Fixtures.httpExport(server, world, port: port)
                try await Fixtures.seedHTTP(server, team: world.team, count: 12_000)
                await receiver.answer([200, 503])
                _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Fixtures.hour)
                // The engine's clock stands still for this step: on a loaded machine the step could
                // otherwise outlast the 1 s backoff and take the retry itself.
                try await Fixtures.httpEngine(server, at: .now()).step()
                var run = try #require(
                    try await server.request("GET", world.base + "/\(id)/runs/", key: world.member.key)["results"]?.arrayValue?.first)
                #expect(run["status"] == "FailedRetryable")
                #expect(run["latest_error"] == "RetryableHTTPError: the endpoint answered 503")
                #expect(run["cursor"]?.stringValue?.contains("|") == true)
                // The next attempt, once due, sends only what was not acknowledged.
                try await Fixtures.httpEngine(server, at: Timestamp(microseconds: Timestamp.now().microseconds + 10_000_000)).step()
                run = try #require(
                    try await server.request("GET", world.base + "/\(id)/runs/", key: world.member.key)["results"]?.arrayValue?.first)
                #expect(run["status"] == "Completed")
                let bodies = await receiver.bodies
                #expect(bodies.map { $0["batch"]?.arrayValue?.count } == [5000, 5000, 5000, 2000])
                let acknowledged = bodies.enumerated().filter { $0.offset != 1 }.flatMap { $0.element["batch"]?.arrayValue ?? [] }
                #expect(Set(acknowledged.compactMap { $0["uuid"]?.stringValue }).count == 12_000)

                await receiver.answer([400])
                _ = try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: Fixtures.hour)
                try await Fixtures.httpEngine(server).step()
                let failed = try await server.request("GET", world.base + "/\(id)/runs/?status=Failed", key: world.member.key)
                #expect(failed["results"]?.arrayValue?.first?["latest_error"] == "HTTPError: the endpoint answered 400")
            }
        }
    }

    @Test("The API takes https:// URLs, and http:// only when insecure destinations are allowed", arguments: TestBackend.available)
    func urlScheme(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
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
