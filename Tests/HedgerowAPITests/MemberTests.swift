import HedgerowCore
import HedgerowTestSupport
import Testing

@Suite("Members (docs/api.md, Members and users)")
struct MemberTests {
    struct World {
        let owner: TestUser
        let admin: TestUser
        let member: TestUser
        let org: String
    }

    static func world(_ server: TestServer) async throws -> World {
        let owner = try await server.createUser("owner@example.com")
        let admin = try await server.createUser("admin@example.com")
        let member = try await server.createUser("member@example.com")
        let org = try await server.createOrganization("Acme", owner: owner)
        try await server.addMember(admin, to: org, level: .admin)
        try await server.addMember(member, to: org, level: .member)
        return World(owner: owner, admin: admin, member: member, org: org)
    }

    static func path(_ world: World, _ user: TestUser) -> String {
        "/api/organizations/\(world.org)/members/\(user.user.uuid)/"
    }

    @Test("The list shows every member with their user, by level", arguments: TestBackend.available)
    func listMembers(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let list = try await server.request("GET", "/api/organizations/\(world.org)/members/", key: world.member.key)
            #expect(list["count"] == 3)
            let results = try #require(list["results"]?.arrayValue)
            #expect(results.map { $0["level"] } == [1, 8, 15])
            #expect(
                results[0].objectValue?.keys == [
                    "id", "user", "level", "joined_at", "updated_at", "is_2fa_enabled", "has_social_auth", "last_login",
                ])
            #expect(
                results[0]["user"]?.objectValue?.keys == [
                    "id", "uuid", "distinct_id", "first_name", "last_name", "email", "is_email_verified", "hedgehog_config",
                    "role_at_organization",
                ])
            #expect(results[0]["user"]?["email"] == "member@example.com")
            #expect(results[2]["user"]?["uuid"] == .string(world.owner.user.uuid))
            let outsider = try await server.createUser("out@example.com")
            #expect(try await server.request("GET", "/api/organizations/\(world.org)/members/", key: outsider.key).status == 403)
        }
    }

    @Test("Level changes follow PostHog's rules and messages", arguments: TestBackend.available)
    func levelRules(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let denied = { (result: TestResult, detail: String) in
                result.expectError(403, type: "authentication_error", code: "permission_denied", detail: detail)
            }
            denied(
                try await server.request("PATCH", Self.path(world, world.admin), key: world.member.key, json: .object(["level": 1])),
                "You can only edit others if you are an admin.")
            denied(
                try await server.request("PATCH", Self.path(world, world.owner), key: world.admin.key, json: .object(["level": 1])),
                "You can only edit others with level lower or equal to you.")
            denied(
                try await server.request("PATCH", Self.path(world, world.admin), key: world.admin.key, json: .object(["level": 1])),
                "You can't change your own access level.")
            denied(
                try await server.request("PATCH", Self.path(world, world.member), key: world.admin.key, json: .object(["level": 15])),
                "You can only pass on organization ownership if you're its owner.")
            try await server.request("PATCH", Self.path(world, world.member), key: world.admin.key, json: .object(["level": 3]))
                .expectError(400, type: "validation_error", code: "invalid_choice", detail: "\"3\" is not a valid choice.", attr: "level")
            let promoted = try await server.request(
                "PATCH", Self.path(world, world.member), key: world.admin.key, json: .object(["level": "8"]))
            #expect(promoted.status == 200)
            #expect(promoted["level"] == 8)
            let demoted = try await server.request(
                "PATCH", Self.path(world, world.member), key: world.admin.key, json: .object(["level": 1]))
            #expect(demoted["level"] == 1)
        }
    }

    @Test("Passing on ownership makes the previous owner an admin", arguments: TestBackend.available)
    func passOnOwnership(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let result = try await server.request(
                "PATCH", Self.path(world, world.admin), key: world.owner.key, json: .object(["level": 15]))
            #expect(result["level"] == 15)
            let organization = try await server.request("GET", "/api/organizations/\(world.org)/", key: world.owner.key)
            #expect(organization["membership_level"] == 8)
            // The old owner cannot delete the organization any more.
            #expect(try await server.request("DELETE", "/api/organizations/\(world.org)/", key: world.owner.key).status == 403)
        }
    }

    @Test("Removing members, leaving, and the last owner", arguments: TestBackend.available)
    func removeAndLeave(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            try await server.request("DELETE", Self.path(world, world.admin), key: world.member.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "You can only edit others if you are an admin.")
            try await server.request("DELETE", Self.path(world, world.owner), key: world.owner.key).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "The last owner cannot leave or be removed. Pass on ownership to another member first.")
            // A member leaves: their current organization moves away from it.
            let elsewhere = try await server.createOrganization("Mine", owner: world.member)
            _ = try await server.request(
                "PATCH", "/api/users/@me/", key: world.member.key, json: .object(["set_current_organization": .string(world.org)]))
            #expect(try await server.request("DELETE", Self.path(world, world.member), key: world.member.key).status == 204)
            let me = try await server.request("GET", "/api/users/@me/", key: world.member.key)
            #expect(me["organization"]?["id"] == .string(elsewhere))
            #expect(try await server.request("GET", "/api/organizations/\(world.org)/", key: world.member.key).status == 404)
            // An admin removes nobody above them, but removes members.
            let other = try await server.createUser("other@example.com")
            try await server.addMember(other, to: world.org, level: .member)
            #expect(try await server.request("DELETE", Self.path(world, other), key: world.admin.key).status == 204)
            let organization = try await server.request("GET", "/api/organizations/\(world.org)/", key: world.owner.key)
            #expect(organization["member_count"] == 2)
            #expect(
                try await server.request("DELETE", "/api/organizations/\(world.org)/members/not-a-uuid/", key: world.owner.key).status
                    == 404)
            #expect(try await server.request("DELETE", Self.path(world, other), key: world.owner.key).status == 404)
        }
    }
}
