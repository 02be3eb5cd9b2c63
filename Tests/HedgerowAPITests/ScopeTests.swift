import HedgerowAPI
import HedgerowCore
import HedgerowTestSupport
import Testing

@Suite("Scopes (docs/api.md, Personal API keys)")
struct ScopeTests {
    @Test("A read scope reads but does not write", arguments: TestBackend.available)
    func readScopeCannotWrite(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Acme", owner: alice)
            let reader = try await server.createKey(for: alice, scopes: ["organization:read"])
            #expect(try await server.request("GET", "/api/organizations/", key: reader).status == 200)
            #expect(try await server.request("GET", "/api/organizations/\(org)/", key: reader).status == 200)
            for (method, path) in [
                ("POST", "/api/organizations/"), ("PATCH", "/api/organizations/\(org)/"),
                ("PUT", "/api/organizations/\(org)/"), ("DELETE", "/api/organizations/\(org)/"),
            ] {
                let result = try await server.request(method, path, key: reader, json: .object(["name": "x"]))
                result.expectError(
                    403, type: "authentication_error", code: "permission_denied",
                    detail: "API key missing required scope 'organization:write'")
            }
        }
    }

    @Test("A key without the object's scope is refused with the scope it lacks", arguments: TestBackend.available)
    func otherObjectScopeIsRefused(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com", scopes: ["batch_export:write"])
            let result = try await server.request("GET", "/api/organizations/", key: alice.key)
            result.expectError(
                403, type: "authentication_error", code: "permission_denied",
                detail: "API key missing required scope 'organization:read'")
        }
    }

    @Test("write implies read; `*` and the legacy empty list grant everything", arguments: TestBackend.available)
    func writeImpliesReadAndWildcards(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com", scopes: ["organization:write"])
            #expect(try await server.request("GET", "/api/organizations/", key: alice.key).status == 200)
            let created = try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": "W"]))
            #expect(created.status == 201)
            let legacy = try await server.createKey(for: alice, scopes: [])
            #expect(try await server.request("POST", "/api/organizations/", key: legacy, json: .object(["name": "L"])).status == 201)
            let star = try await server.createKey(for: alice, scopes: ["*"])
            #expect(try await server.request("POST", "/api/organizations/", key: star, json: .object(["name": "S"])).status == 201)
        }
    }

    @Test("Unknown scope strings are refused at key creation", arguments: TestBackend.available)
    func invalidScopeAtCreation(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            await #expect(throws: APIError.invalidInput("Invalid scope: organization:admin", attr: "scopes")) {
                _ = try await server.createKey(for: alice, scopes: ["organization:read", "organization:admin"])
            }
        }
    }

    @Test("scoped_organizations filters lists and hides other organizations (404)", arguments: TestBackend.available)
    func scopedOrganizations(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let first = try await server.createOrganization("First", owner: alice)
            let second = try await server.createOrganization("Second", owner: alice)
            let scoped = try await server.createKey(for: alice, scopes: ["*"], scopedOrganizations: [first])
            let list = try await server.request("GET", "/api/organizations/", key: scoped)
            #expect(list["count"] == 1)
            #expect(list["results"]?.arrayValue?.first?["id"] == .string(first))
            #expect(try await server.request("GET", "/api/organizations/\(first)/", key: scoped).status == 200)
            let hidden = try await server.request("GET", "/api/organizations/\(second)/", key: scoped)
            hidden.expectError(404, type: "invalid_request", code: "not_found", detail: "Not found.")
            #expect(
                try await server.request("PATCH", "/api/organizations/\(second)/", key: scoped, json: .object(["name": "n"])).status == 404)
        }
    }

    @Test("scoped_teams keys are refused on every organization route", arguments: TestBackend.available)
    func scopedTeamsRefusedOnOrganizationRoutes(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Acme", owner: alice)
            let scoped = try await server.createKey(for: alice, scopes: ["*"], scopedTeams: [1])
            for (method, path) in [
                ("GET", "/api/organizations/"), ("GET", "/api/organizations/\(org)/"),
                ("POST", "/api/organizations/"), ("DELETE", "/api/organizations/\(org)/"),
            ] {
                let result = try await server.request(method, path, key: scoped, json: .object(["name": "x"]))
                result.expectError(
                    403, type: "authentication_error", code: "permission_denied",
                    detail: "API keys with scoped projects are only supported on project-based endpoints.")
            }
        }
    }

    @Test("members_can_use_personal_api_keys=false refuses keys of members below admin", arguments: TestBackend.available)
    func organizationCanForbidMemberKeys(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let owner = try await server.createUser("owner@example.com")
            let member = try await server.createUser("member@example.com")
            let admin = try await server.createUser("admin@example.com")
            let org = try await server.createOrganization("Strict Co", owner: owner)
            try await server.addMember(member, to: org, level: .member)
            try await server.addMember(admin, to: org, level: .admin)
            #expect(try await server.request("GET", "/api/organizations/\(org)/", key: member.key).status == 200)
            let patched = try await server.request(
                "PATCH", "/api/organizations/\(org)/", key: owner.key,
                json: .object(["members_can_use_personal_api_keys": false]))
            #expect(patched["members_can_use_personal_api_keys"] == false)
            let refused = try await server.request("GET", "/api/organizations/\(org)/", key: member.key)
            refused.expectError(
                403, type: "authentication_error", code: "permission_denied",
                detail:
                    "Organization 'Strict Co' does not allow using personal API keys. Contact an admin to enable personal API keys for this organization."
            )
            #expect(try await server.request("GET", "/api/organizations/\(org)/", key: admin.key).status == 200)
        }
    }
}
