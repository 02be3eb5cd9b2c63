import Foundation
import HedgerowCore
import HedgerowTestSupport
import Testing

/// PostHog's top-level routes that real clients call first (issue #12): `/api/projects/`,
/// `@current` for projects, environments, organizations and users, percent-encoded paths.
@Suite("Top-level project and user routes")
struct TopLevelProjectTests {
    static let basicFields = [
        "id", "uuid", "organization", "project_id", "api_token", "name", "completed_snippet_onboarding", "has_completed_onboarding_for",
        "ingested_event", "is_demo", "timezone", "access_control",
    ]
    /// The fields PostHog's `ProjectBackwardCompat` schema requires, and how its key order starts.
    static let projectRequired = [
        "id", "organization", "created_at", "effective_membership_level", "has_group_types", "group_types", "live_events_token",
        "updated_at", "uuid", "api_token", "ingested_event", "person_on_events_querying_enabled", "default_modifiers",
        "product_intents", "secret_api_token", "secret_api_token_backup", "available_setup_task_ids",
    ]
    static let projectOrder = ["id", "organization", "name", "product_description", "created_at", "effective_membership_level"]

    /// A retrieved project has PostHog's full field set, real values where Hedgerow has them and
    /// PostHog's defaults (no secret token, no group types) where it has none.
    static func expectProjectDetail(_ project: TestResult, level: MembershipLevel) {
        let keys = project.json.objectValue?.keys ?? []
        #expect(Array(keys.prefix(projectOrder.count)) == projectOrder)
        #expect(Set(projectRequired).isSubset(of: Set(keys)), "\(keys)")
        #expect(keys.count == 63 && Set(keys).count == 63)
        #expect(project["effective_membership_level"] == .int(Int64(level.rawValue)))
        #expect(project["api_token"]?.stringValue?.hasPrefix("phc_") == true)
        #expect(project["secret_api_token"] == .null && project["group_types"] == [] && project["has_group_types"] == false)
        #expect(project["timezone"] != .null && project["anonymize_ips"] == false && project["data_attributes"] == ["data-attr"])
    }

    @Test("GET /api/projects/ lists the current organization's projects with PostHog's basic fields", arguments: TestBackend.available)
    func listProjects(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await ProjectTests.world(server)
            let created = try await server.request(
                "POST", "/api/organizations/\(world.org)/projects/", key: world.admin.key, json: .object(["name": "Mobile"]))
            let mobile = try #require(created.intID)
            let list = try await server.request("GET", "/api/projects/", key: world.owner.key)
            #expect(list.status == 200)
            #expect(list.json.objectValue?.keys == ["count", "next", "previous", "results"])
            #expect(list["count"] == 2)
            let first = try #require(list["results"]?.arrayValue?.first)
            #expect(first.objectValue?.keys == Self.basicFields)
            #expect(first["organization"] == .string(world.org))
            #expect(first["api_token"]?.stringValue?.hasPrefix("phc_") == true)
            #expect(first["access_control"] == false && first["has_completed_onboarding_for"] == .null)
            let paged = try await server.request("GET", "/api/projects/?limit=1&offset=1", key: world.owner.key)
            #expect(paged["results"]?.arrayValue?.count == 1 && paged["previous"] != .null)
            // A key scoped to one project sees that one.
            let scoped = try await server.createKey(for: world.owner, scopes: ["project:read"], scopedTeams: [mobile])
            let scopedList = try await server.request("GET", "/api/projects/", key: scoped)
            #expect(scopedList["count"] == 1 && scopedList["results"]?.arrayValue?.first?["id"] == .int(mobile))
            // Another organization's user sees their own projects only.
            let elsewhere = try await server.request("GET", "/api/projects/", key: world.outsider.key)
            #expect(elsewhere["count"] == 1 && elsewhere["results"]?.arrayValue?.first?["id"] != .int(world.mainProject))
        }
    }

    @Test("Projects by id and @current (also percent-encoded): retrieve, rename, delete", arguments: TestBackend.available)
    func projectByID(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await ProjectTests.world(server)
            for path in ["/api/projects/\(world.mainProject)/", "/api/projects/@current/", "/api/projects/%40current/"] {
                let project = try await server.request("GET", path, key: world.owner.key)
                #expect(project.status == 200, "\(path): \(project.text)")
                #expect(project["id"] == .int(world.mainProject))
                Self.expectProjectDetail(project, level: .owner)
            }
            try await server.request("GET", "/api/projects/\(world.mainProject)/", key: world.outsider.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "You do not have permission to perform this action.")
            let renamed = try await server.request(
                "PATCH", "/api/projects/\(world.mainProject)/", key: world.member.key,
                json: .object(["name": "Web", "timezone": "Europe/Berlin"]))
            #expect(renamed["name"] == "Web" && renamed["timezone"] == "Europe/Berlin", "\(renamed.text)")
            let created = try await server.request(
                "POST", "/api/organizations/\(world.org)/projects/", key: world.admin.key, json: .object(["name": "Doomed"]))
            let doomed = try #require(created.intID)
            try await server.request("DELETE", "/api/projects/\(doomed)/", key: world.member.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "Your organization access level is insufficient.")
            #expect(try await server.request("DELETE", "/api/projects/\(doomed)/", key: world.admin.key).status == 204)
            #expect(try await server.request("GET", "/api/projects/\(doomed)/", key: world.admin.key).status == 404)
        }
    }

    @Test("Environments: @current and by project; organizations and users: @current and %40me", arguments: TestBackend.available)
    func currentEnvironmentOrganizationAndUser(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await ProjectTests.world(server)
            let staging = try await server.request(
                "POST", "/api/projects/\(world.mainProject)/environments/", key: world.admin.key, json: .object(["name": "Staging"]))
            let stagingID = try #require(staging.intID)
            for path in ["/api/environments/@current/", "/api/environments/%40current/"] {
                let environment = try await server.request("GET", path, key: world.owner.key)
                #expect(environment["id"] == .int(world.mainProject), "\(path): \(environment.text)")
            }
            let nested = try await server.request(
                "GET", "/api/projects/\(world.mainProject)/environments/\(stagingID)/", key: world.owner.key)
            #expect(nested["id"] == .int(stagingID) && nested["name"] == "Staging")
            let other = try await server.request(
                "POST", "/api/organizations/\(world.org)/projects/", key: world.admin.key, json: .object(["name": "Other"]))
            let otherID = try #require(other.intID)
            #expect(
                try await server.request("GET", "/api/projects/\(otherID)/environments/\(stagingID)/", key: world.owner.key).status == 404)
            #expect(try await server.request("GET", "/api/organizations/%40current/", key: world.owner.key)["id"] == .string(world.org))
            #expect(try await server.request("GET", "/api/users/%40me/", key: world.owner.key)["email"] == "owner@example.com")
            let users = try await server.request("GET", "/api/users/", key: world.owner.key)
            #expect(users["count"] == 1 && users["results"]?.arrayValue?.first?["email"] == "owner@example.com", "\(users.text)")
            // A UUID written with %2D is the same UUID.
            let encoded = world.org.replacingOccurrences(of: "-", with: "%2D")
            #expect(try await server.request("GET", "/api/organizations/\(encoded)/", key: world.owner.key)["id"] == .string(world.org))
        }
    }

    @Test("Creating with the whole model, read-only fields included, ignores them", arguments: TestBackend.available)
    func wholeModelBodies(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let owner = try await server.createUser("owner@example.com")
            let body: JSONValue = .object([
                "id": "046b6c7f-0b8a-43b9-b35d-6489e6daee91", "name": "Generated", "slug": "ignored-slug", "logo_media_id": nil,
                "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z", "membership_level": 1,
                "plugins_access_level": 9, "teams": [], "projects": [], "available_product_features": [],
                "is_member_join_email_enabled": true, "metadata": .object([:]), "customer_id": "cus_1", "enforce_2fa": nil,
                "members_can_invite": true, "members_can_use_personal_api_keys": true, "allow_publicly_shared_resources": true,
                "member_count": 7, "is_ai_data_processing_approved": nil, "default_experiment_stats_method": "bayesian",
                "default_anonymize_ips": false, "default_role_id": nil,
            ])
            let created = try await server.request("POST", "/api/organizations/", key: owner.key, json: body)
            #expect(created.status == 201, "\(created.text)")
            #expect(created["name"] == "Generated" && created["id"] != "046b6c7f-0b8a-43b9-b35d-6489e6daee91")
            #expect(created["membership_level"] == 15 && created["member_count"] == 1 && created["slug"] == "generated")
            let id = try #require(created["id"]?.stringValue)
            let patched = try await server.request("PATCH", "/api/organizations/\(id)/", key: owner.key, json: body)
            #expect(patched.status == 200, "\(patched.text)")
            #expect(patched["id"] == .string(id) && patched["membership_level"] == 15)
        }
    }
}
