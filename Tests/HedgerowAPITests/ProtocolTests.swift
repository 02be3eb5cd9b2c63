import HedgerowAPI
import HedgerowCore
import HedgerowRuntime
import HedgerowTestSupport
import Testing

@Suite("HTTP conventions (docs/api.md, Conventions)")
struct ProtocolTests {
    @Test("Trailing slash is optional", arguments: TestBackend.available)
    func trailingSlashOptional(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Acme", owner: alice)
            #expect(try await server.request("GET", "/api/organizations", key: alice.key).status == 200)
            #expect(try await server.request("GET", "/api/organizations/\(org)", key: alice.key).status == 200)
            #expect(try await server.request("POST", "/api/organizations", key: alice.key, json: .object(["name": "B"])).status == 201)
        }
    }

    @Test("An unsupported method is 405 with PostHog's message, after authentication", arguments: TestBackend.available)
    func methodNotAllowed(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            try await server.request("PUT", "/api/organizations/", key: alice.key).expectError(
                405, type: "invalid_request", code: "method_not_allowed", detail: "Method \"PUT\" not allowed.")
            try await server.request("DELETE", "/api/organizations/", key: alice.key).expectError(
                405, type: "invalid_request", code: "method_not_allowed", detail: "Method \"DELETE\" not allowed.")
            #expect(try await server.request("PUT", "/api/organizations/").status == 401)
        }
    }

    @Test("Unknown routes are 404 in PostHog's format", arguments: TestBackend.available)
    func unknownRoute(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            try await server.request("GET", "/api/nope/").expectError(404, type: "invalid_request", code: "not_found", detail: "Not found.")
        }
    }

    @Test("Malformed JSON is 400 parse_error and changes nothing", arguments: TestBackend.available)
    func malformedJSON(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            for body in ["{", "{\"name\": }", "[1,,2]", "\u{FEFF}{}", "{\"name\":\"a\"} trailing"] {
                let result = try await server.request(
                    "POST", "/api/organizations/", key: alice.key, body: Array(body.utf8), headers: [("Content-Type", "application/json")])
                #expect(result.status == 400, "\(body)")
                #expect(result["type"] == "invalid_request")
                #expect(result["code"] == "parse_error")
                #expect(result["detail"]?.stringValue?.hasPrefix("JSON parse error - ") == true)
                #expect(result["attr"] == .null)
            }
            let invalidUTF8 = try await server.request(
                "POST", "/api/organizations/", key: alice.key, body: [0x7B, 0x22, 0x6E, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D],
                headers: [("Content-Type", "application/json")])
            #expect(invalidUTF8["code"] == "parse_error")
            #expect(try await server.request("GET", "/api/organizations/", key: alice.key)["count"] == 0)
        }
    }

    @Test("An unsupported content type is 415", arguments: TestBackend.available)
    func unsupportedMediaType(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let result = try await server.request(
                "POST", "/api/organizations/", key: alice.key, body: Array("name=x".utf8), headers: [("Content-Type", "text/plain")])
            result.expectError(
                415, type: "invalid_request", code: "unsupported_media_type", detail: "Unsupported media type \"text/plain\" in request.")
        }
    }

    @Test("A body over the configured limit is 413", arguments: TestBackend.available)
    func bodyTooLarge(backend: TestBackend) async throws {
        try await TestServer.run(backend, configure: { $0.maximumAPIBodySize = 1024 }) { server in
            let alice = try await server.createUser("alice@example.com")
            let big = JSONValue.object(["name": .string(String(repeating: "x", count: 4096))])
            let result = try await server.request("POST", "/api/organizations/", key: alice.key, json: big)
            result.expectError(
                413, type: "invalid_request", code: "payload_too_large", detail: "Request body is larger than the limit of 1024 bytes.")
        }
    }

    @Test("Error bodies have exactly type, code, detail, attr in that order", arguments: TestBackend.available)
    func errorBodyShape(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let result = try await server.request("GET", "/api/organizations/")
            #expect(result.json.objectValue?.keys == ["type", "code", "detail", "attr"])
            #expect(result.header("Content-Type") == "application/json")
        }
    }
}
