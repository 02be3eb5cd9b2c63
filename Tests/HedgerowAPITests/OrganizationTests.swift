import HedgerowAPI
import HedgerowCore
import HedgerowStore
import HedgerowTestSupport
import Testing

@Suite("Organizations (docs/api.md, Organizations)")
struct OrganizationTests {
    static let fieldOrder = [
        "id", "name", "slug", "logo_media_id", "created_at", "updated_at", "membership_level", "plugins_access_level",
        "teams", "projects", "available_product_features", "is_member_join_email_enabled", "metadata", "customer_id",
        "enforce_2fa", "members_can_invite", "members_can_use_personal_api_keys", "allow_publicly_shared_resources",
        "member_count", "is_ai_data_processing_approved", "default_experiment_stats_method", "default_role_id",
    ]

    @Test("Create: 201, PostHog's fields in order, a default project and environment, caller is owner", arguments: TestBackend.available)
    func createReturnsFullRepresentation(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let result = try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": "Acme Inc"]))
            #expect(result.status == 201)
            let body = try #require(result.json.objectValue)
            #expect(body.keys == Self.fieldOrder)
            #expect(body["name"] == "Acme Inc")
            #expect(body["slug"] == "acme-inc")
            #expect(body["membership_level"] == 15)
            #expect(body["plugins_access_level"] == 9)
            #expect(body["member_count"] == 1)
            #expect(body["metadata"] == .object(["instance_tag": "none"]))
            #expect(body["default_experiment_stats_method"] == "bayesian")
            #expect(body["is_member_join_email_enabled"] == true)
            #expect(body["enforce_2fa"] == .null)
            #expect(body["customer_id"] == .null)
            #expect(body["available_product_features"] == [])
            let id = try #require(body["id"]?.stringValue)
            #expect(Identifiers.canonicalUUID(id) == id)
            let created = try #require(body["created_at"]?.stringValue)
            #expect(created.hasSuffix("Z"))
            let projects = try #require(body["projects"]?.arrayValue)
            #expect(projects.count == 1)
            #expect(projects[0].objectValue?.keys == ["id", "organization_id", "name"])
            #expect(projects[0]["name"] == "Default project")
            let teams = try #require(body["teams"]?.arrayValue)
            #expect(teams.count == 1)
            #expect(
                teams[0].objectValue?.keys == [
                    "id", "uuid", "organization", "project_id", "api_token", "name", "completed_snippet_onboarding",
                    "has_completed_onboarding_for", "ingested_event", "is_demo", "timezone", "access_control",
                ])
            #expect(teams[0]["id"] == projects[0]["id"])
            #expect(teams[0]["project_id"] == projects[0]["id"])
            #expect(teams[0]["name"] == "Default project")
            #expect(teams[0]["api_token"]?.stringValue?.hasPrefix("phc_") == true)
            #expect(teams[0]["organization"] == .string(id))
        }
    }

    @Test("Create switches the caller's current organization (seen through @current)", arguments: TestBackend.available)
    func createSwitchesCurrentOrganization(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            #expect(try await server.request("GET", "/api/organizations/@current/", key: alice.key).status == 404)
            let first = try await server.createOrganization("First", owner: alice)
            #expect(try await server.request("GET", "/api/organizations/@current/", key: alice.key)["id"] == .string(first))
            let second = try await server.createOrganization("Second", owner: alice)
            #expect(try await server.request("GET", "/api/organizations/@current", key: alice.key)["id"] == .string(second))
        }
    }

    @Test("List shows only the caller's organizations, oldest first, with their level", arguments: TestBackend.available)
    func listShowsOnlyMemberships(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let bob = try await server.createUser("bob@example.com")
            let a1 = try await server.createOrganization("A1", owner: alice)
            let b1 = try await server.createOrganization("B1", owner: bob)
            let a2 = try await server.createOrganization("A2", owner: alice)
            try await server.addMember(alice, to: b1, level: .member)
            let list = try await server.request("GET", "/api/organizations/", key: alice.key)
            #expect(list.json.objectValue?.keys == ["count", "next", "previous", "results"])
            #expect(list["count"] == 3)
            let results = try #require(list["results"]?.arrayValue)
            #expect(results.map { $0["id"] } == [.string(a1), .string(b1), .string(a2)])
            #expect(results.map { $0["membership_level"] } == [15, 1, 15])
            let bobs = try await server.request("GET", "/api/organizations/", key: bob.key)
            #expect(bobs["count"] == 1)
            #expect(bobs["results"]?.arrayValue?.first?["member_count"] == 2)
        }
    }

    @Test("An organization the caller does not belong to is 404 on every route", arguments: TestBackend.available)
    func nonMemberGets404(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let eve = try await server.createUser("eve@example.com")
            let org = try await server.createOrganization("Private", owner: alice)
            for method in ["GET", "PATCH", "PUT", "DELETE"] {
                let result = try await server.request(method, "/api/organizations/\(org)/", key: eve.key, json: .object(["name": "x"]))
                result.expectError(404, type: "invalid_request", code: "not_found", detail: "Not found.")
            }
            #expect(try await server.request("GET", "/api/organizations/\(org)/", key: alice.key)["name"] == "Private")
        }
    }

    @Test("Malformed and unknown UUIDs are 404, never 500", arguments: TestBackend.available)
    func malformedIDsAre404(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            for id in ["not-a-uuid", "123", "497f6eca-6276-4993-bfeb-53cbbbba6f08", "%00", "'%20OR%201=1", "@other"] {
                let result = try await server.request("GET", "/api/organizations/\(id)/", key: alice.key)
                result.expectError(404, type: "invalid_request", code: "not_found", detail: "Not found.")
            }
        }
    }

    @Test("Upper-case UUIDs name the same organization", arguments: TestBackend.available)
    func upperCaseUUIDs(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Acme", owner: alice)
            #expect(try await server.request("GET", "/api/organizations/\(org.uppercased())/", key: alice.key)["id"] == .string(org))
        }
    }

    @Test("PATCH and PUT need admin; members get PostHog's 403", arguments: TestBackend.available)
    func updateNeedsAdmin(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let owner = try await server.createUser("owner@example.com")
            let member = try await server.createUser("member@example.com")
            let admin = try await server.createUser("admin@example.com")
            let org = try await server.createOrganization("Acme", owner: owner)
            try await server.addMember(member, to: org, level: .member)
            try await server.addMember(admin, to: org, level: .admin)
            for method in ["PATCH", "PUT"] {
                let refused = try await server.request(method, "/api/organizations/\(org)/", key: member.key, json: .object(["name": "M"]))
                refused.expectError(
                    403, type: "authentication_error", code: "permission_denied",
                    detail: "Your organization access level is insufficient.")
            }
            // Permission is checked before the body: an invalid body from a member is still 403.
            let invalid = try await server.request("PATCH", "/api/organizations/\(org)/", key: member.key, json: .object(["name": ""]))
            #expect(invalid.status == 403)
            let patched = try await server.request(
                "PATCH", "/api/organizations/\(org)/", key: admin.key, json: .object(["name": "Renamed"]))
            #expect(patched.status == 200)
            #expect(patched["name"] == "Renamed")
            #expect(patched["slug"] == "acme")
            #expect(patched["membership_level"] == 8)
            let put = try await server.request("PUT", "/api/organizations/\(org)/", key: owner.key, json: .object(["name": "Put"]))
            #expect(put["name"] == "Put")
            let after = try await server.request("GET", "/api/organizations/\(org)/", key: member.key)
            #expect(after["name"] == "Put")
            #expect(after["member_count"] == 3)
        }
    }

    @Test("PUT requires name; PATCH does not", arguments: TestBackend.available)
    func putRequiresName(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Acme", owner: alice)
            let put = try await server.request(
                "PUT", "/api/organizations/\(org)/", key: alice.key, json: .object(["members_can_invite": false]))
            put.expectError(400, type: "validation_error", code: "required", detail: "This field is required.", attr: "name")
            let patch = try await server.request(
                "PATCH", "/api/organizations/\(org)/", key: alice.key, json: .object(["members_can_invite": false]))
            #expect(patch.status == 200)
            #expect(patch["members_can_invite"] == false)
            #expect(patch["name"] == "Acme")
        }
    }

    @Test("Read-only and unknown fields are ignored", arguments: TestBackend.available)
    func readOnlyFieldsIgnored(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Acme", owner: alice)
            let before = try await server.request("GET", "/api/organizations/\(org)/", key: alice.key)
            let result = try await server.request(
                "PATCH", "/api/organizations/\(org)/", key: alice.key,
                json: .object([
                    "id": "497f6eca-6276-4993-bfeb-53cbbbba6f08", "slug": "hacked", "membership_level": 1, "member_count": 99,
                    "plugins_access_level": 0, "created_at": "2000-01-01T00:00:00Z", "customer_id": "cus_1",
                    "metadata": .object(["instance_tag": "x"]), "teams": [], "no_such_field": .object(["deep": [1, 2]]),
                ]))
            #expect(result.status == 200)
            for key in [
                "id", "slug", "membership_level", "member_count", "plugins_access_level", "created_at", "customer_id", "metadata", "teams",
            ] {
                #expect(result[key] == before[key], "\(key) changed")
            }
        }
    }

    @Test("Settable fields round-trip with DRF's coercions", arguments: TestBackend.available)
    func settableFields(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Acme", owner: alice)
            let result = try await server.request(
                "PATCH", "/api/organizations/\(org)/", key: alice.key,
                json: .object([
                    "is_member_join_email_enabled": "false", "enforce_2fa": "1", "members_can_invite": 0,
                    "allow_publicly_shared_resources": "off", "is_ai_data_processing_approved": true,
                    "default_experiment_stats_method": "frequentist", "logo_media_id": nil, "default_role_id": nil,
                ]))
            #expect(result.status == 200, "\(result.text)")
            #expect(result["is_member_join_email_enabled"] == false)
            #expect(result["enforce_2fa"] == true)
            #expect(result["members_can_invite"] == false)
            #expect(result["allow_publicly_shared_resources"] == false)
            #expect(result["is_ai_data_processing_approved"] == true)
            #expect(result["default_experiment_stats_method"] == "frequentist")
            let reread = try await server.request("GET", "/api/organizations/\(org)/", key: alice.key)
            #expect(reread.json == result.json)
            let cleared = try await server.request(
                "PATCH", "/api/organizations/\(org)/", key: alice.key,
                json: .object(["enforce_2fa": nil, "default_experiment_stats_method": "", "is_ai_data_processing_approved": nil]))
            #expect(cleared["enforce_2fa"] == .null)
            #expect(cleared["default_experiment_stats_method"] == "")
            #expect(cleared["is_ai_data_processing_approved"] == .null)
        }
    }

    @Test("DELETE: owners only, 204 with an empty body, then 404", arguments: TestBackend.available)
    func deleteNeedsOwner(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let owner = try await server.createUser("owner@example.com")
            let member = try await server.createUser("member@example.com")
            let admin = try await server.createUser("admin@example.com")
            let org = try await server.createOrganization("Doomed", owner: owner)
            try await server.addMember(member, to: org, level: .member)
            try await server.addMember(admin, to: org, level: .admin)
            try await server.request("DELETE", "/api/organizations/\(org)/", key: member.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "You do not have admin access to this resource.")
            try await server.request("DELETE", "/api/organizations/\(org)/", key: admin.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "Your organization access level is insufficient.")
            let deleted = try await server.request("DELETE", "/api/organizations/\(org)/", key: owner.key)
            #expect(deleted.status == 204)
            #expect(deleted.bytes.isEmpty)
            #expect(try await server.request("GET", "/api/organizations/\(org)/", key: owner.key).status == 404)
            #expect(try await server.request("DELETE", "/api/organizations/\(org)/", key: owner.key).status == 404)
        }
    }

    @Test(
        "DELETE removes everything in the organization, keeps users, and moves their current organization", arguments: TestBackend.available
    )
    func deleteCascadesAndMovesCurrent(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let owner = try await server.createUser("owner@example.com")
            let keep = try await server.createOrganization("Keep", owner: owner)
            let doomed = try await server.createOrganization("Doomed", owner: owner)
            #expect(try await server.request("GET", "/api/organizations/@current/", key: owner.key)["id"] == .string(doomed))
            #expect(try await server.request("DELETE", "/api/organizations/\(doomed)/", key: owner.key).status == 204)
            let current = try await server.request("GET", "/api/organizations/@current/", key: owner.key)
            #expect(current["id"] == .string(keep))
            let counts = try await server.database.read { connection in
                (
                    try await connection.first("SELECT COUNT(*) AS n FROM projects WHERE organization_id = $1", [.text(doomed)])?.int("n"),
                    try await connection.first("SELECT COUNT(*) AS n FROM teams WHERE organization_id = $1", [.text(doomed)])?.int("n"),
                    try await connection.first(
                        "SELECT COUNT(*) AS n FROM organization_memberships WHERE organization_id = $1", [.text(doomed)])?.int("n"),
                    try await connection.first("SELECT COUNT(*) AS n FROM users", [])?.int("n")
                )
            }
            #expect(counts.0 == 0)
            #expect(counts.1 == 0)
            #expect(counts.2 == 0)
            #expect(counts.3 == 1)
            #expect(try await server.request("DELETE", "/api/organizations/\(keep)/", key: owner.key).status == 204)
            #expect(try await server.request("GET", "/api/organizations/@current/", key: owner.key).status == 404)
        }
    }

    @Test(
        "Slug clashes get the first 43 characters, a dash and four random letters; slugs are lower-case", arguments: TestBackend.available)
    func slugClashes(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let first = try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": "Big Corp"]))
            #expect(first["slug"] == "big-corp")
            let second = try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": "BIG corp"]))
            let slug = try #require(second["slug"]?.stringValue)
            #expect(slug.hasPrefix("big-corp-"))
            #expect(slug.count == "big-corp-".count + 4)
            #expect(slug == slug.lowercased())
            let long = String(repeating: "Long Name ", count: 6)
            let l1 = try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": .string(long)]))
            #expect(l1["slug"]?.stringValue?.count == 48)
            let l2 = try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": .string(long)]))
            let clashed = try #require(l2["slug"]?.stringValue)
            #expect(clashed.count == 48)
            #expect(clashed.hasPrefix(String(l1["slug"]!.stringValue!.prefix(43)) + "-"))
        }
    }

    @Test(
        "A retrieved organization asked for again shows every change committed since, whoever wrote it (SQL straight to the database included), and each key's access",
        arguments: TestBackend.available)
    func retrieveShowsEveryCommittedChange(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let bob = try await server.createUser("bob@example.com")
            let id = try await server.createOrganization("Acme", owner: alice)
            let other = try await server.createOrganization("Other", owner: alice)
            let path = "/api/organizations/\(id)/"
            func retrieve(_ key: String = alice.key) async throws -> TestResult { try await server.request("GET", path, key: key) }
            func write(_ sql: String, _ binds: [SQLValue] = []) async throws {
                try await server.database.transaction { connection in try await connection.execute(sql, binds) }
            }
            let first = try await retrieve()
            #expect(first.status == 200)
            #expect(try await retrieve().json == first.json)

            try await write("UPDATE organizations SET name = 'Renamed' WHERE id = $1", [.text(id)])
            #expect(try await retrieve()["name"] == "Renamed")
            try await write("UPDATE projects SET name = 'Project renamed' WHERE organization_id = $1", [.text(id)])
            #expect(try await retrieve()["projects"]?.arrayValue?.first?["name"] == "Project renamed")
            try await write("UPDATE teams SET timezone = 'Europe/Paris' WHERE organization_id = $1", [.text(id)])
            #expect(try await retrieve()["teams"]?.arrayValue?.first?["timezone"] == "Europe/Paris")
            try await server.addMember(bob, to: id, level: .member)
            #expect(try await retrieve()["member_count"] == 2)
            try await write("UPDATE users SET is_active = FALSE WHERE id = $1", [.int(bob.user.id)])
            #expect(try await retrieve()["member_count"] == 1)
            try await write(
                "UPDATE organization_memberships SET level = 8 WHERE organization_id = $1 AND user_id = $2",
                [.text(id), .int(alice.user.id)])
            #expect(try await retrieve()["membership_level"] == 8)
            let environment = try await server.request(
                "POST", "/api/projects/\(first["projects"]?.arrayValue?.first?["id"]?.description ?? "")/environments/", key: alice.key,
                json: ["name": "Staging"])
            #expect(environment.status == 201, "\(environment.text)")
            #expect(try await retrieve()["teams"]?.arrayValue?.count == 2)
            try await write(
                "DELETE FROM organization_memberships WHERE organization_id = $1 AND user_id = $2", [.text(id), .int(bob.user.id)])
            try await write("UPDATE users SET is_active = TRUE WHERE id = $1", [.int(bob.user.id)])
            #expect(try await retrieve()["member_count"] == 1)

            // The same user's other keys: one limited to another organization gets 404 for this one.
            let limited = try await server.createKey(for: alice, scopes: ["organization:read"], scopedOrganizations: [other])
            #expect(try await retrieve(limited).status == 404)
            #expect(try await retrieve().status == 200)
            // A policy change for members' keys applies to a member (level 1) at once.
            try await write(
                "UPDATE organization_memberships SET level = 1 WHERE organization_id = $1 AND user_id = $2",
                [.text(id), .int(alice.user.id)])
            try await write("UPDATE organizations SET members_can_use_personal_api_keys = FALSE WHERE id = $1", [.text(id)])
            #expect(try await retrieve().status == 403)
            // Removed from it: 404.
            try await write(
                "DELETE FROM organization_memberships WHERE organization_id = $1 AND user_id = $2", [.text(id), .int(alice.user.id)])
            #expect(try await retrieve().status == 404)
        }
    }

    @Test("On SQLite a retrieved organization is served from memory while the details generation stays, and read again once it moves")
    func retrieveIsServedFromMemoryWhileTheGenerationStays() async throws {
        try await TestServer.run(.sqlite) { server in
            let alice = try await server.createUser("alice@example.com")
            let id = try await server.createOrganization("Acme", owner: alice)
            let path = "/api/organizations/\(id)/"
            #expect(try await server.request("GET", path, key: alice.key)["name"] == "Acme")
            // Without its trigger, a rename leaves the counter where it was: the kept answer is served...
            try await server.database.transaction { connection in
                try await connection.execute("DROP TRIGGER details_generation_organizations_update")
                try await connection.execute("UPDATE organizations SET name = 'Renamed' WHERE id = $1", [.text(id)])
            }
            #expect(try await server.request("GET", path, key: alice.key)["name"] == "Acme")
            // ...until the counter moves.
            try await server.database.transaction { connection in
                try await connection.execute("UPDATE details_generation SET value = value + 1")
            }
            #expect(try await server.request("GET", path, key: alice.key)["name"] == "Renamed")
        }
    }
}
