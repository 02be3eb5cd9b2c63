import HedgerowCore
import HedgerowTestSupport
import Testing

@Suite("Projects and environments (docs/api.md)")
struct ProjectTests {
    /// Owner, admin and member of one organization, and an outsider.
    struct World {
        let owner: TestUser
        let admin: TestUser
        let member: TestUser
        let outsider: TestUser
        let org: String
        let mainProject: Int64
    }

    static func world(_ server: TestServer) async throws -> World {
        let owner = try await server.createUser("owner@example.com")
        let admin = try await server.createUser("admin@example.com")
        let member = try await server.createUser("member@example.com")
        let outsider = try await server.createUser("outsider@example.com")
        let org = try await server.createOrganization("Acme", owner: owner)
        try await server.addMember(admin, to: org, level: .admin)
        try await server.addMember(member, to: org, level: .member)
        _ = try await server.createOrganization("Elsewhere", owner: outsider)
        let projects = try await server.request("GET", "/api/organizations/\(org)/projects/", key: owner.key)
        guard case .int(let id)? = projects["results"]?.arrayValue?.first?["id"] else { throw TestSetupError(description: "no project") }
        return World(owner: owner, admin: admin, member: member, outsider: outsider, org: org, mainProject: id)
    }

    @Test("Admins create projects with a main environment of the same id and name; members may not", arguments: TestBackend.available)
    func createProject(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            try await server.request(
                "POST", "/api/organizations/\(world.org)/projects/", key: world.member.key, json: .object(["name": "No"])
            )
            .expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "Your organization access level is insufficient.")
            let created = try await server.request(
                "POST", "/api/organizations/\(world.org)/projects/", key: world.admin.key, json: .object(["name": "Mobile"]))
            #expect(created.status == 201)
            TopLevelProjectTests.expectProjectDetail(created, level: .admin)
            #expect(created["organization"] == .string(world.org))
            let id = try #require(created["id"])
            let environments = try await server.request("GET", "/api/projects/\(id)/environments/", key: world.member.key)
            #expect(environments["count"] == 1)
            let main = try #require(environments["results"]?.arrayValue?.first)
            #expect(main["id"] == id)
            #expect(main["project_id"] == id)
            #expect(main["name"] == "Mobile")
            // Lists of environments carry PostHog's `TeamBasic` fields.
            #expect(main.objectValue?.keys == TopLevelProjectTests.basicFields)
            let organization = try await server.request("GET", "/api/organizations/\(world.org)/", key: world.member.key)
            #expect(organization["projects"]?.arrayValue?.count == 2)
            #expect(organization["teams"]?.arrayValue?.count == 2)
            try await server.request("POST", "/api/organizations/\(world.org)/projects/", key: world.admin.key, json: .object([:]))
                .expectError(400, type: "validation_error", code: "required", detail: "This field is required.", attr: "name")
        }
    }

    @Test("Members read and rename projects; admins delete them with their environments", arguments: TestBackend.available)
    func readRenameDelete(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let path = "/api/organizations/\(world.org)/projects/\(world.mainProject)/"
            #expect(try await server.request("GET", path, key: world.member.key)["name"] == "Default project")
            let renamed = try await server.request("PATCH", path, key: world.member.key, json: .object(["name": "Web"]))
            #expect(renamed["name"] == "Web")
            let extra = try await server.request(
                "POST", "/api/projects/\(world.mainProject)/environments/", key: world.admin.key, json: .object(["name": "Staging"]))
            #expect(extra.status == 201)
            try await server.request("DELETE", path, key: world.member.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "Your organization access level is insufficient.")
            #expect(try await server.request("DELETE", path, key: world.admin.key).status == 204)
            #expect(try await server.request("GET", path, key: world.admin.key).status == 404)
            #expect(try await server.request("GET", "/api/environments/\(extra["id"]!)/", key: world.admin.key).status == 404)
            let organization = try await server.request("GET", "/api/organizations/\(world.org)/", key: world.owner.key)
            #expect(organization["teams"] == [])
            #expect(organization["projects"] == [])
        }
    }

    @Test(
        "Unknown organization is 404, another organization's is 403, another organization's project is 404",
        arguments: TestBackend.available)
    func crossOrganization(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            try await server.request("GET", "/api/organizations/\(world.org)/projects/", key: world.outsider.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "You do not have permission to perform this action.")
            try await server.request("GET", "/api/organizations/497f6eca-6276-4993-bfeb-53cbbbba6f08/projects/", key: world.owner.key)
                .expectError(404, type: "invalid_request", code: "not_found", detail: "Organization not found.")
            try await server.request("GET", "/api/organizations/nope/projects/", key: world.owner.key)
                .expectError(404, type: "invalid_request", code: "not_found", detail: "Organization not found.")
            let outsiderOrgs = try await server.request("GET", "/api/organizations/", key: world.outsider.key)
            let outsiderOrg = try #require(outsiderOrgs["results"]?.arrayValue?.first?["id"]?.stringValue)
            let outsiderProjects = try await server.request("GET", "/api/organizations/\(outsiderOrg)/projects/", key: world.outsider.key)
            let foreignProject = try #require(outsiderProjects["results"]?.arrayValue?.first?["id"])
            // Another organization's project through my organization's route: 404, nothing leaks.
            let viaMine = try await server.request(
                "GET", "/api/organizations/\(world.org)/projects/\(foreignProject)/", key: world.owner.key)
            viaMine.expectError(404, type: "invalid_request", code: "not_found", detail: "Not found.")
            try await server.request("GET", "/api/environments/\(foreignProject)/", key: world.owner.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "You do not have permission to perform this action.")
            try await server.request("GET", "/api/projects/\(foreignProject)/environments/", key: world.owner.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "You do not have permission to perform this action.")
            for id in ["999999", "abc", "-1", "1.5"] {
                #expect(try await server.request("GET", "/api/environments/\(id)/", key: world.owner.key).status == 404)
            }
            #expect(try await server.request("GET", "/api/organizations/@current/projects/", key: world.member.key).status == 200)
        }
    }

    @Test("Environments: create with a time zone, rename, reset the token, delete; the main one stays", arguments: TestBackend.available)
    func environmentLifecycle(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let base = "/api/projects/\(world.mainProject)/environments/"
            try await server.request("POST", base, key: world.admin.key, json: .object(["name": "Bad", "timezone": "Mars/Olympus"]))
                .expectError(
                    400, type: "validation_error", code: "invalid_choice", detail: "\"Mars/Olympus\" is not a valid choice.",
                    attr: "timezone")
            try await server.request("POST", base, key: world.member.key, json: .object(["name": "No"])).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "Your organization access level is insufficient.")
            let created = try await server.request(
                "POST", base, key: world.admin.key, json: .object(["name": "Staging", "timezone": "Europe/Berlin"]))
            #expect(created.status == 201)
            #expect(created["timezone"] == "Europe/Berlin")
            #expect(created["project_id"] == .int(world.mainProject))
            let id = try #require(created["id"])
            #expect(id != .int(world.mainProject))
            let token = try #require(created["api_token"]?.stringValue)
            #expect(token.hasPrefix("phc_"))
            // A retrieved environment is PostHog's `Team` serializer, in its order, the caller's level in it.
            let environment = try await server.request("GET", "/api/environments/\(id)/", key: world.member.key)
            let keys = environment.json.objectValue?.keys ?? []
            #expect(
                Array(keys.prefix(8)) == [
                    "id", "uuid", "name", "access_control", "organization", "project_id", "api_token", "secret_api_token",
                ])
            #expect(keys.count == 77 && Set(keys).count == 77 && keys.last == "managed_viewsets")
            #expect(environment["effective_membership_level"] == 1 && environment["user_access_level"] == "member")
            #expect(environment["session_recording_retention_period"] == "30d" && environment["live_events_token"] == .null)
            // Settings Hedgerow has no feature behind: PostHog's value is accepted back, another is refused.
            let unchanged = try await server.request(
                "PATCH", "/api/environments/\(id)/", key: world.member.key,
                json: .object(["name": "QA", "anonymize_ips": false, "app_urls": [], "session_recording_opt_in": false]))
            #expect(unchanged.status == 200, "\(unchanged.text)")
            try await server.request(
                "PATCH", "/api/environments/\(id)/", key: world.member.key, json: .object(["name": "No", "anonymize_ips": true])
            ).expectError(
                400, type: "validation_error", code: "invalid",
                detail: "Hedgerow does not support changing this setting; it is always false.", attr: "anonymize_ips")
            try await server.request(
                "PATCH", "/api/environments/\(id)/", key: world.member.key, json: .object(["access_control": true])
            ).expectError(
                400, type: "validation_error", code: "invalid",
                detail: "Hedgerow does not support changing this setting; it is always false.", attr: "access_control")
            // The settings Hedgerow keeps are written (from a form body, as DRF reads it).
            let demo = try await server.request(
                "PATCH", "/api/environments/\(id)/", key: world.member.key, body: Array("is_demo=true&completed_snippet_onboarding=1".utf8),
                headers: [("Content-Type", "application/x-www-form-urlencoded")])
            #expect(demo["is_demo"] == true && demo["completed_snippet_onboarding"] == true, "\(demo.text)")
            let patched = try await server.request("GET", "/api/environments/\(id)/", key: world.member.key)
            #expect(patched["name"] == "QA" && patched["is_demo"] == true && patched["completed_snippet_onboarding"] == true)
            #expect(patched["timezone"] == "Europe/Berlin")
            let reset = try await server.request("POST", "/api/environments/\(id)/reset_token/", key: world.member.key)
            #expect(reset.status == 200)
            #expect(reset["api_token"] != .string(token))
            #expect(reset["api_token"]?.stringValue?.hasPrefix("phc_") == true)
            #expect(try await server.request("GET", base, key: world.member.key)["count"] == 2)
            try await server.request("DELETE", "/api/environments/\(world.mainProject)/", key: world.admin.key).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "The main environment of a project cannot be deleted. Delete the project instead.")
            try await server.request("DELETE", "/api/environments/\(id)/", key: world.member.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "Your organization access level is insufficient.")
            #expect(try await server.request("DELETE", "/api/environments/\(id)/", key: world.admin.key).status == 204)
            #expect(try await server.request("GET", base, key: world.member.key)["count"] == 1)
        }
    }

    @Test("scoped_teams and scoped_organizations limit project routes with PostHog's messages", arguments: TestBackend.available)
    func keyLimits(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let staging = try await server.request(
                "POST", "/api/projects/\(world.mainProject)/environments/", key: world.admin.key, json: .object(["name": "Staging"]))
            guard case .int(let stagingID)? = staging["id"] else { Issue.record("no environment"); return }
            let teamKey = try await server.createKey(for: world.owner, scopes: ["project:read"], scopedTeams: [world.mainProject])
            #expect(try await server.request("GET", "/api/environments/\(world.mainProject)/", key: teamKey).status == 200)
            #expect(try await server.request("GET", "/api/projects/\(world.mainProject)/environments/", key: teamKey).status == 200)
            try await server.request("GET", "/api/environments/\(stagingID)/", key: teamKey).expectError(
                403, type: "authentication_error", code: "permission_denied",
                detail: "API key does not have access to the requested project: ID \(stagingID).")
            try await server.request("GET", "/api/organizations/\(world.org)/projects/", key: teamKey).expectError(
                403, type: "authentication_error", code: "permission_denied",
                detail: "API keys with scoped projects are only supported on project-based endpoints.")
            let ownerOther = try await server.createOrganization("Other", owner: world.owner)
            let orgKey = try await server.createKey(for: world.owner, scopes: ["project:read"], scopedOrganizations: [ownerOther])
            try await server.request("GET", "/api/organizations/\(world.org)/projects/", key: orgKey).expectError(
                403, type: "authentication_error", code: "permission_denied",
                detail: "API key does not have access to the requested organization: ID \(world.org).")
            try await server.request("GET", "/api/environments/\(world.mainProject)/", key: orgKey).expectError(
                403, type: "authentication_error", code: "permission_denied",
                detail: "API key does not have access to the requested organization: ID \(world.org).")
            let readOnly = try await server.createKey(for: world.owner, scopes: ["project:read"])
            try await server.request("PATCH", "/api/environments/\(world.mainProject)/", key: readOnly, json: .object(["name": "x"]))
                .expectError(
                    403, type: "authentication_error", code: "permission_denied", detail: "API key missing required scope 'project:write'")
        }
    }

    @Test("Deleting the current environment moves users to another one", arguments: TestBackend.available)
    func deletingCurrentEnvironment(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let staging = try await server.request(
                "POST", "/api/projects/\(world.mainProject)/environments/", key: world.admin.key, json: .object(["name": "Staging"]))
            let stagingID = try #require(staging["id"])
            let switched = try await server.request(
                "PATCH", "/api/users/@me/", key: world.member.key, json: .object(["set_current_team": stagingID]))
            #expect(switched["team"]?["id"] == stagingID)
            #expect(try await server.request("DELETE", "/api/environments/\(stagingID)/", key: world.admin.key).status == 204)
            let me = try await server.request("GET", "/api/users/@me/", key: world.member.key)
            #expect(me["team"]?["id"] == .int(world.mainProject))
        }
    }
}
