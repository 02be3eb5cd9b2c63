import HedgerowCore
import HedgerowTestSupport
import Testing

@Suite("environments_rollback (docs/api.md, environments_rollback)")
struct EnvironmentsRollbackTests {
    /// An organization with project P (main environment "P", plus "Staging") and project Q (main "Q").
    struct World {
        let owner: TestUser
        let org: String
        let p: Int64
        let staging: Int64
        let q: Int64
    }

    static func world(_ server: TestServer) async throws -> World {
        let owner = try await server.createUser("owner@example.com", scopes: [])
        let org = try await server.createOrganization("Acme", owner: owner)
        let projects = try await server.request("GET", "/api/organizations/\(org)/projects/", key: owner.key)
        guard case .int(let p)? = projects["results"]?.arrayValue?.first?["id"] else { throw TestSetupError(description: "no project") }
        _ = try await server.request("PATCH", "/api/organizations/\(org)/projects/\(p)/", key: owner.key, json: .object(["name": "Web"]))
        _ = try await server.request("PATCH", "/api/environments/\(p)/", key: owner.key, json: .object(["name": "Production"]))
        let staging = try await server.request(
            "POST", "/api/projects/\(p)/environments/", key: owner.key, json: .object(["name": "Staging"]))
        let q = try await server.request("POST", "/api/organizations/\(org)/projects/", key: owner.key, json: .object(["name": "Mobile"]))
        guard case .int(let stagingID)? = staging["id"], case .int(let qID)? = q["id"] else { throw TestSetupError(description: "setup") }
        return World(owner: owner, org: org, p: p, staging: stagingID, q: qID)
    }

    static func rollback(_ server: TestServer, _ world: World, _ body: JSONValue, key: String? = nil) async throws -> TestResult {
        try await server.request("POST", "/api/organizations/\(world.org)/environments_rollback/", key: key ?? world.owner.key, json: body)
    }

    @Test("Validation runs in PostHog's order with its messages, and changes nothing", arguments: TestBackend.available)
    func validation(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let invalid = "Environment mappings must map environment ids to environment ids"
            let cases: [(JSONValue, String)] = [
                (.object([:]), "Environment mappings are required"),
                ([1, 2], invalid),
                ("x", invalid),
                (.object(["abc": 1]), invalid),
                (.object(["\(world.p)": "two"]), invalid),
                (.object(["\(world.p)": 1.5]), invalid),
                (.object(["\(world.p)": true]), invalid),
                (.object(["\(world.p)": nil]), invalid),
                (.object(["999999": .int(world.p), "888888": 888888]), "Environments not found: {888888, 999999}"),
                (.object(["\(world.staging)": .int(world.q)]), "Cannot migrate between different projects: \(world.staging) -> \(world.q)"),
            ]
            for (body, detail) in cases {
                try await Self.rollback(server, world, body).expectError(
                    400, type: "validation_error", code: "invalid_input", detail: detail)
            }
            let before = try await server.request("GET", "/api/organizations/\(world.org)/", key: world.owner.key)
            // A valid request still works: the failures above changed nothing, the one-shot flag included.
            let ok = try await Self.rollback(server, world, .object(["\(world.staging)": .string("\(world.p)")]))
            #expect(ok.status == 202)
            #expect(before["teams"]?.arrayValue?.count == 3)
        }
    }

    @Test("Success: 202, staging split into its own project, names as PostHog computes them, once only", arguments: TestBackend.available)
    func success(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let result = try await Self.rollback(
                server, world, .object(["\(world.staging)": .int(world.p), "\(world.p)": .int(world.p), "\(world.q)": .int(world.q)]))
            #expect(result.status == 202)
            #expect(result.json == .object(["success": true, "message": "Migration started"]))
            let organization = try await server.request("GET", "/api/organizations/\(world.org)/", key: world.owner.key)
            let projects = try #require(organization["projects"]?.arrayValue)
            let teams = try #require(organization["teams"]?.arrayValue)
            func project(_ id: Int64) -> JSONValue? { projects.first { $0["id"] == .int(id) } }
            func team(_ id: Int64) -> JSONValue? { teams.first { $0["id"] == .int(id) } }
            #expect(projects.count == 3)
            #expect(project(world.p)?["name"] == "Web (Production)")
            #expect(team(world.p)?["name"] == "Web (Production)")
            #expect(project(world.staging)?["name"] == "Web (Staging)")
            #expect(team(world.staging)?["name"] == "Web (Staging)")
            #expect(team(world.staging)?["project_id"] == .int(world.staging))
            #expect(project(world.q)?["name"] == "Mobile")
            #expect(team(world.q)?["name"] == "Mobile")
            try await Self.rollback(server, world, .object(["\(world.q)": .int(world.q)])).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "Environments rollback has already been requested for this organization.")
            // The one-shot check comes first, before any look at the body.
            try await Self.rollback(server, world, .object([:])).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "Environments rollback has already been requested for this organization.")
        }
    }

    @Test("Admins only; scoped keys refused; non-members get 404", arguments: TestBackend.available)
    func permissions(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let member = try await server.createUser("member@example.com", scopes: [])
            try await server.addMember(member, to: world.org, level: .member)
            let body: JSONValue = .object(["\(world.q)": .int(world.q)])
            try await Self.rollback(server, world, body, key: member.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "Your organization access level is insufficient.")
            let scoped = try await server.createKey(for: world.owner, scopes: ["*"])
            try await Self.rollback(server, world, body, key: scoped).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "This action does not support Personal API Key access"
            )
            let outsider = try await server.createUser("out@example.com", scopes: [])
            try await Self.rollback(server, world, body, key: outsider.key).expectError(
                404, type: "invalid_request", code: "not_found", detail: "Not found.")
            // A member's invalid body is still a 403: permission comes before validation.
            #expect(try await Self.rollback(server, world, [1], key: member.key).status == 403)
            #expect(try await Self.rollback(server, world, body).status == 202)
        }
    }
}
