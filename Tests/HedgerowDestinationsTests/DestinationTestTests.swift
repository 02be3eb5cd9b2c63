import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowExport
import HedgerowRuntime
import HedgerowS3
import HedgerowTestSupport
import Testing

/// PostHog's destination test steps (issue #12): the steps of each destination, and each step run
/// for real against moto, PostgreSQL and an HTTP receiver.
@Suite("Destination test steps")
struct DestinationTestTests {
    static func run(
        _ server: TestServer, _ world: Fixtures.World, step: Int, destination: JSONValue, export: String? = nil
    ) async throws -> TestResult {
        let path = export.map { world.base + "/\($0)/run_test_step/" } ?? world.base + "/run_test_step_new/"
        return try await server.request(
            "POST", path, key: world.member.key,
            json: .object(["step": .int(Int64(step)), "name": "t", "interval": "hour", "destination": destination]))
    }

    @Test("GET test/ lists a destination's steps; no or an unknown destination is a 4xx", arguments: TestBackend.available)
    func listSteps(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            for base in [world.base, "/api/projects/\(world.team)/batch_exports", "/api/organizations/\(world.org)/batch_exports"] {
                let steps = try await server.request("GET", base + "/test/?destination=Postgres", key: world.member.key)
                #expect(steps.status == 200, "\(base): \(steps.text)")
                let list = try #require(steps["steps"]?.arrayValue)
                #expect(list.map { $0["name"] } == ["Connect to PostgreSQL", "Check the schema", "Check the table"])
                #expect(list.allSatisfy { $0.objectValue?.keys == ["name", "description", "result"] && $0["result"] == .null })
            }
            #expect(
                try await server.request("GET", world.base + "/test/?destination=S3", key: world.member.key)["steps"]?.arrayValue?.count
                    == 2)
            #expect(try await server.request("GET", world.base + "/test/", key: world.member.key).status == 400)
            let redshift = try await server.request("GET", world.base + "/test/?destination=Redshift", key: world.member.key)
            #expect(redshift["steps"]?.arrayValue?.map { $0["name"] } == ["Connect to Redshift", "Check the schema", "Check the table"])
            #expect(
                try await server.request("GET", world.base + "/test/?destination=Databricks", key: world.member.key)["steps"]?.arrayValue?
                    .count == 2)
            #expect(try await server.request("GET", world.base + "/test/?destination=Nope", key: world.member.key).status == 404)
        }
    }

    @Test(
        "S3 steps: the bucket is checked and a probe written and removed; failures are reported per step", arguments: TestBackend.available)
    func s3Steps(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let bucket = try await S3DestinationTests.bucket("steps")
            let config = try S3DestinationTests.config(bucket)
            let destination: JSONValue = .object(["type": "S3", "config": .object(config)])
            for step in [0, 1] {
                let result = try await Self.run(server, world, step: step, destination: destination)
                #expect(result["result"] == .object(["status": "Passed", "message": nil]), "step \(step): \(result.text)")
            }
            #expect(try await bucket.listObjects(prefix: "").isEmpty)
            var missing = config
            missing["bucket_name"] = "hedgerow-no-such-bucket"
            let failed = try await Self.run(server, world, step: 0, destination: .object(["type": "S3", "config": .object(missing)]))
            #expect(failed["result"]?["status"] == "Failed" && failed["name"] == "Check S3 bucket", "\(failed.text)")
            #expect(failed["result"]?["message"]?.stringValue?.contains("hedgerow-no-such-bucket") == true)
            #expect(!failed.text.contains(S3DestinationTests.credentials.secretAccessKey))
            // A saved export's own (secret) configuration is used by {id}/run_test_step/.
            let id = try await S3DestinationTests.export(server, world, config: config)
            let saved = try await Self.run(server, world, step: 1, destination: .object(["config": .object([:])]), export: id)
            #expect(saved["result"]?["status"] == "Passed", "\(saved.text)")
            let outOfRange = try await Self.run(server, world, step: 5, destination: destination)
            #expect(outOfRange.status == 400 && outOfRange["attr"] == "step")
        }
    }

    @Test("PostgreSQL steps: connection, schema and table, each failing on its own cause", arguments: TestBackend.available)
    func postgresSteps(backend: TestBackend) async throws {
        guard TestBackend.postgresURL != nil else { return }
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let (config, _) = try await PostgresDestinationTests.destination()
            let destination: JSONValue = .object(["type": "Postgres", "config": .object(config)])
            for step in [0, 1, 2] {
                let result = try await Self.run(server, world, step: step, destination: destination)
                #expect(result["result"]?["status"] == "Passed", "step \(step): \(result.text)")
            }
            var noSchema = config
            noSchema["schema"] = "hedgerow_missing_schema"
            let schema = try await Self.run(
                server, world, step: 1, destination: .object(["type": "Postgres", "config": .object(noSchema)]))
            #expect(schema["result"] == .object(["status": "Failed", "message": "Schema 'hedgerow_missing_schema' does not exist."]))
            var wrongDatabase = config
            wrongDatabase["database"] = "hedgerow_no_such_database"
            let connect = try await Self.run(
                server, world, step: 0, destination: .object(["type": "Postgres", "config": .object(wrongDatabase)]))
            #expect(connect["result"]?["status"] == "Failed" && connect["name"] == "Connect to PostgreSQL", "\(connect.text)")
        }
    }

    @Test("HTTP and NoOp steps; a denied address is refused before anything is contacted", arguments: TestBackend.available)
    func httpSteps(backend: TestBackend) async throws {
        try await Fixtures.withReceiver { receiver, port in
            try await TestServer.run(
                backend,
                configure: {
                    $0.engine.allowInsecureHTTP = true; $0.engine.outbound = .loopbackAllowed
                }
            ) {
                server in
                let world = try await Fixtures.world(server)
                let reached = try await Self.run(
                    server, world, step: 0,
                    destination: .object([
                        "type": "HTTP", "config": .object(["url": .string("http://127.0.0.1:\(port)/batch/"), "token": "t"]),
                    ]))
                #expect(reached["result"]?["status"] == "Passed", "\(reached.text)")
                #expect(await receiver.bodies.isEmpty)
                let noop = try await Self.run(server, world, step: 0, destination: .object(["type": "NoOp", "config": .object([:])]))
                #expect(noop["result"]?["status"] == "Passed")
            }
        }
        try await TestServer.run(backend, configure: { $0.engine.outbound = OutboundPolicy() }) { server in
            let world = try await Fixtures.world(server)
            let refused = try await Self.run(
                server, world, step: 0,
                destination: .object([
                    "type": "S3",
                    "config": .object(["bucket_name": "b", "region": "us-east-1", "prefix": "p", "endpoint_url": "http://169.254.169.254"]),
                ]))
            #expect(refused.status == 400 && refused["attr"] == "destination", "\(refused.text)")
        }
    }
}
