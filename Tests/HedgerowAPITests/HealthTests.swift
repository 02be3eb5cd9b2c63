import HedgerowCore
import HedgerowTestSupport
import Testing

@Suite("Health")
struct HealthTests {
    @Test("GET /_health answers 200 without credentials", arguments: TestBackend.available)
    func healthIsPublic(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let result = try await server.request("GET", "/_health")
            #expect(result.status == 200)
            #expect(result["status"] == "ok")
        }
    }

    @Test("GET /_readyz answers 200 when the database answers", arguments: TestBackend.available)
    func readyWhenDatabaseAnswers(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let result = try await server.request("GET", "/_readyz")
            #expect(result.status == 200)
        }
    }
}
