import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowDestinations
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Logging
import Testing

@Suite("First start (issue: foundation)")
struct BootstrapTests {
    @Test(
        "An empty database gets an admin, the default organization and a * key; later starts create nothing",
        arguments: TestBackend.available)
    func bootstrapOnce(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let bootstrap = BootstrapService(database: server.database)
            let result = try #require(try await bootstrap.bootstrapIfEmpty(adminEmail: "root@example.com"))
            #expect(result.email == "root@example.com")
            #expect(PersonalAPIKeyCodec.looksValid(result.key))
            let list = try await server.request("GET", "/api/organizations/", key: result.key)
            #expect(list["count"] == 1)
            let org = try #require(list["results"]?.arrayValue?.first)
            #expect(org["name"] == "Default organization")
            #expect(org["id"] == .string(result.organizationID))
            #expect(org["membership_level"] == 15)
            #expect(org["teams"]?.arrayValue?.count == 1)
            // The key has every scope.
            #expect(try await server.request("POST", "/api/organizations/", key: result.key, json: .object(["name": "More"])).status == 201)
            #expect(try await bootstrap.bootstrapIfEmpty(adminEmail: "root@example.com") == nil)
        }
    }

    @Test func keyFileIsOwnerOnly() throws {
        let directory = NSTemporaryDirectory() + "hedgerow-keyfile-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try BootstrapService.writeKeyFile("phx_example", dataDirectory: directory)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "phx_example\n")
    }

    @Test func configurationReadsTheEnvironment() throws {
        let configuration = try HedgerowConfiguration.fromEnvironment([
            "HEDGEROW_DATA_DIR": "/var/lib/hedgerow", "HEDGEROW_SITE_URL": "https://x.example/", "HEDGEROW_LOG_LEVEL": "DEBUG",
            "HEDGEROW_ADMIN_EMAIL": "Ops@Example.com", "HEDGEROW_RATE_LIMIT_BURST": "10", "HEDGEROW_RATE_LIMIT_ENABLED": "false",
        ])
        #expect(configuration.database == .sqlite(path: "/var/lib/hedgerow/hedgerow.sqlite"))
        #expect(configuration.siteURL == "https://x.example")
        #expect(configuration.logLevel == .debug)
        #expect(configuration.adminEmail == "ops@example.com")
        #expect(configuration.rateLimit.burstPerMinute == 10)
        #expect(!configuration.rateLimit.enabled)
        let postgres = try HedgerowConfiguration.fromEnvironment([
            "HEDGEROW_DATABASE_URL": "postgres://u:p%40ss@db.local:6543/hedgerow?sslmode=require&pool_size=3"
        ])
        guard case .postgres(let location) = postgres.database else {
            Issue.record("expected PostgreSQL")
            return
        }
        #expect(location.host == "db.local")
        #expect(location.port == 6543)
        #expect(location.username == "u")
        #expect(location.password == "p@ss")
        #expect(location.database == "hedgerow")
        #expect(location.sslMode == .require)
        #expect(location.maximumConnections == 3)
        #expect(throws: (any Error).self) { try HedgerowConfiguration.fromEnvironment(["HEDGEROW_DATABASE_URL": "mysql://x"]) }
        #expect(throws: (any Error).self) { try HedgerowConfiguration.fromEnvironment(["HEDGEROW_LOG_LEVEL": "loud"]) }
        for (name, value) in [
            ("HEDGEROW_RATE_LIMIT_BURST", "0"), ("HEDGEROW_AUTH_FAILURE_LIMIT", "-1"), ("HEDGEROW_ENGINE_POLL_SECONDS", "0"),
            ("HEDGEROW_WORKER_CONCURRENCY", "65"), ("HEDGEROW_MAX_BODY_SIZE", "big"),
        ] {
            #expect(throws: (any Error).self, "\(name)=\(value)") { try HedgerowConfiguration.fromEnvironment([name: value]) }
        }
        // 0 turns a pre-authentication limit off.
        #expect(
            try HedgerowConfiguration.fromEnvironment(["HEDGEROW_AUTH_FAILURE_LIMIT": "0"]).rateLimit.authenticationFailuresPerMinute == 0)
    }
}

@Suite("Secret box (docs/engine.md §8)")
struct SecretBoxTests {
    @Test func keyFileIsMadeOnceOwnerOnlyAndOpensWhatItSealed() throws {
        let directory = NSTemporaryDirectory() + "hedgerow-secret-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = HedgerowConfiguration(dataDirectory: directory)
        let first = try SecretBox.load(configuration)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/secret-key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let sealed = try first.seal(["password": "hunter2"])
        #expect(!sealed.contains("hunter2"))
        #expect(try SecretBox.load(configuration).open(sealed) == ["password": "hunter2"])
        var other = configuration
        other.secretKey = "another key"
        #expect(throws: (any Error).self) { try SecretBox.load(other).open(sealed) }
        // The same secret gives the same key, whatever the data directory.
        var elsewhere = HedgerowConfiguration(dataDirectory: directory + "-x")
        elsewhere.secretKey = "another key"
        #expect(try SecretBox.load(elsewhere).open(try SecretBox.load(other).seal(["a": 1])) == ["a": 1])
    }
}
