import HedgerowCore
import HedgerowTestSupport
import Testing

@Suite("Users (docs/api.md, Members and users)")
struct UserTests {
    @Test("@me shows the caller, their current organization and environment, and all their organizations", arguments: TestBackend.available)
    func me(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let empty = try await server.request("GET", "/api/users/@me/", key: alice.key)
            #expect(empty["organization"] == .null)
            #expect(empty["team"] == .null)
            #expect(empty["organizations"] == [])
            let first = try await server.createOrganization("First", owner: alice)
            let second = try await server.createOrganization("Second", owner: alice)
            let me = try await server.request("GET", "/api/users/@me/", key: alice.key)
            #expect(me["email"] == "alice@example.com")
            #expect(me["uuid"] == .string(alice.user.uuid))
            #expect(me["organization"]?["id"] == .string(second))
            #expect(me["organization"]?["name"] == "Second")
            #expect(me["team"]?["organization"] == .string(second))
            #expect(me["organizations"]?.arrayValue?.map { $0["id"] } == [.string(first), .string(second)])
            #expect(me["organizations"]?.arrayValue?.first?["membership_level"] == 15)
        }
    }

    @Test("PATCH @me changes names and the current organization or environment, within the caller's own", arguments: TestBackend.available)
    func patchMe(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let bob = try await server.createUser("bob@example.com")
            let first = try await server.createOrganization("First", owner: alice)
            _ = try await server.createOrganization("Second", owner: alice)
            let bobs = try await server.createOrganization("Bob's", owner: bob)
            let renamed = try await server.request(
                "PATCH", "/api/users/@me/", key: alice.key, json: .object(["first_name": "Alicia", "last_name": "Liddell"]))
            #expect(renamed["first_name"] == "Alicia")
            #expect(renamed["last_name"] == "Liddell")
            let switched = try await server.request(
                "PATCH", "/api/users/@me/", key: alice.key, json: .object(["set_current_organization": .string(first)]))
            #expect(switched["organization"]?["id"] == .string(first))
            #expect(switched["team"]?["organization"] == .string(first))
            try await server.request("PATCH", "/api/users/@me/", key: alice.key, json: .object(["set_current_organization": .string(bobs)]))
                .expectError(
                    400, type: "validation_error", code: "does_not_exist", detail: "Object with id=\(bobs) does not exist.",
                    attr: "set_current_organization")
            let bobTeam = try await server.request("GET", "/api/users/@me/", key: bob.key)["team"]?["id"] ?? .null
            try await server.request("PATCH", "/api/users/@me/", key: alice.key, json: .object(["set_current_team": bobTeam]))
                .expectError(
                    400, type: "validation_error", code: "does_not_exist", detail: "Object with id=\(bobTeam) does not exist.",
                    attr: "set_current_team")
            try await server.request("PATCH", "/api/users/@me/", key: alice.key, json: .object(["first_name": ""]))
                .expectError(400, type: "validation_error", code: "blank", detail: "This field may not be blank.", attr: "first_name")
            let readOnly = try await server.createKey(for: alice, scopes: ["user:read"])
            #expect(try await server.request("GET", "/api/users/@me/", key: readOnly).status == 200)
            #expect(try await server.request("PATCH", "/api/users/@me/", key: readOnly, json: .object(["first_name": "x"])).status == 403)
        }
    }
}
