import Foundation
import HedgerowCore
import HedgerowTestSupport
import Testing

@testable import HedgerowAPI

/// A key's `scoped_teams` bound every batch-export route (issue #11 §3): an environment the key
/// does not cover is a 403 naming it, on project, environment and organization routes alike.
@Suite("Batch exports and scoped_teams")
struct BatchExportScopeTests {
    @Test(
        "A key scoped to the main environment reaches none of the project's other environments' exports", arguments: TestBackend.available)
    func scopedTeamsBoundEveryRoute(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let project = world.team
            let staging = try await server.request(
                "POST", "/api/projects/\(project)/environments/", key: world.owner.key, json: .object(["name": "Staging"]))
            let stagingID = try #require(staging.intID)
            // One export in each environment, made with a full key.
            let mainExport = try await Fixtures.createExport(server, world)
            let created = try await server.request(
                "POST", "/api/environments/\(stagingID)/batch_exports/", key: world.owner.key, json: Fixtures.noopExport)
            let stagingExport = try #require(created["id"]?.stringValue)
            let denied = "API key does not have access to the requested project: ID \(stagingID)."
            for scopes in [["batch_export:write"], []] {
                let key = try await server.createKey(for: world.owner, scopes: scopes, scopedTeams: [project])
                // Project routes: the list holds only the main environment's export; the other is a 403.
                let list = try await server.request("GET", "/api/projects/\(project)/batch_exports/", key: key)
                #expect(list["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [mainExport], "\(scopes): \(list.text)")
                for suffix in ["/", "/runs/", "/backfills/", "/logs/"] {
                    try await server.request("GET", "/api/projects/\(project)/batch_exports/\(stagingExport)\(suffix)", key: key)
                        .expectError(403, type: "authentication_error", code: "permission_denied", detail: denied)
                }
                for (method, suffix) in [("PATCH", "/"), ("POST", "/pause/"), ("DELETE", "/")] {
                    try await server.request(
                        method, "/api/projects/\(project)/batch_exports/\(stagingExport)\(suffix)", key: key, json: .object(["name": "x"])
                    ).expectError(403, type: "authentication_error", code: "permission_denied", detail: denied)
                }
                #expect(try await server.request("GET", "/api/projects/\(project)/batch_exports/\(mainExport)/", key: key).status == 200)
                // Environment routes.
                try await server.request("GET", "/api/environments/\(stagingID)/batch_exports/", key: key).expectError(
                    403, type: "authentication_error", code: "permission_denied", detail: denied)
                // Organization routes: a scoped key is refused outright (PostHog's rule); a legacy
                // key without scopes sees only what its scoped_teams cover.
                let orgList = try await server.request("GET", "/api/organizations/\(world.org)/batch_exports/", key: key)
                if scopes.isEmpty {
                    #expect(orgList["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [mainExport], "\(orgList.text)")
                    try await server.request("GET", "/api/organizations/\(world.org)/batch_exports/\(stagingExport)/", key: key)
                        .expectError(403, type: "authentication_error", code: "permission_denied", detail: denied)
                    try await server.request(
                        "POST", "/api/organizations/\(world.org)/batch_exports/", key: key,
                        json: Fixtures.patched(Fixtures.noopExport, [("team_id", .int(stagingID))])
                    ).expectError(403, type: "authentication_error", code: "permission_denied", detail: denied)
                } else {
                    orgList.expectError(
                        403, type: "authentication_error", code: "permission_denied",
                        detail: "API keys with scoped projects are only supported on project-based endpoints.")
                }
            }
            // Nothing was changed through the refused routes.
            let after = try await server.request(
                "GET", "/api/environments/\(stagingID)/batch_exports/\(stagingExport)/", key: world.owner.key)
            #expect(after["name"] == "nightly" && after["paused"] == false)
        }
    }
}
