import Foundation
import HTTPTypes
import HedgerowAPI
import HedgerowConsole
import HedgerowCore
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Testing

@testable import HedgerowExport

/// The console over the test client (the browser tests drive the same pages in Chromium):
/// sign-in and its cookies, CSRF on every form, the throttle, the access rules through the pages,
/// and sessions on the API.
@Suite("Console")
struct ConsoleTests {
    static let password = Fixtures.consolePassword

    /// An owner (with the console password) of a new organization, and its environment.
    static func ownerAndTeam(_ server: TestServer) async throws -> (TestUser, Int64) {
        let owner = try await server.createUser("owner@example.com", password: Self.password)
        _ = try await server.createOrganization("Acme", owner: owner)
        guard case .int(let team)? = try await server.request("GET", "/api/users/@me/", key: owner.key)["team"]?["id"] else {
            throw TestSetupError(description: "no team")
        }
        return (owner, team)
    }

    static func run(
        _ backend: TestBackend, configure: @Sendable @escaping (inout HedgerowConfiguration) -> Void = { _ in },
        _ body: @Sendable (TestServer) async throws -> Void
    ) async throws {
        try await TestServer.run(backend, modules: [Console()], configure: configure, body)
    }

    @Test(
        "Sign-in sets an HttpOnly, SameSite=Lax session cookie (Secure behind TLS); a wrong password is refused on the form",
        arguments: TestBackend.available)
    func signIn(backend: TestBackend) async throws {
        try await Self.run(backend) { server in
            let owner = try await server.createUser("owner@example.com", password: Self.password)
            _ = try await server.createOrganization("Acme", owner: owner)
            var browser = ConsoleClient(server)
            let unauthenticated = try await browser.get("/organization")
            #expect(unauthenticated.status == 303)
            #expect(unauthenticated.header("Location") == "/login?next=/organization")

            let wrong = try await browser.signIn("owner@example.com", "wrong password")
            #expect(wrong.status == 400)
            #expect(wrong.text.contains("Invalid email or password."))
            #expect(browser.cookies[SignInService.cookieName] == nil)

            let signedIn = try await browser.signIn("owner@example.com", Self.password, next: "/organization")
            #expect(signedIn.status == 303)
            #expect(signedIn.header("Location") == "/organization")
            let cookie = try #require(signedIn.headers[values: .setCookie].first { $0.hasPrefix(SignInService.cookieName + "=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"))
            let page = try await browser.get("/organization")
            #expect(page.status == 200)
            #expect(page.text.contains("Organization: Acme"))
            #expect(page.header("X-Frame-Options") == "DENY")
            #expect(page.header("Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)
            // Only this site's paths are followed after sign-in.
            var other = ConsoleClient(server)
            #expect(try await other.signIn("owner@example.com", Self.password, next: "//evil.example/").header("Location") == "/")
            // Browsers drop tabs and newlines in a URL and read a backslash as a slash (issue #31 §8).
            for next in ["/\t/evil.example/", "/\\evil.example/", "/\r\n/evil.example", "/ /evil.example", "/a//b"] {
                var again = ConsoleClient(server)
                #expect(try await again.signIn("owner@example.com", Self.password, next: next).header("Location") == "/", "\(next)")
            }
            var fine = ConsoleClient(server)
            #expect(
                try await fine.signIn("owner@example.com", Self.password, next: "/project/1/batch_exports?x=%2F").header("Location")
                    == "/project/1/batch_exports?x=%2F")

            // Signing out ends the session on the server, not only in this browser.
            let stolen = browser.cookies
            _ = try await browser.post("/logout")
            var replay = ConsoleClient(server)
            replay.cookies = stolen
            #expect(try await replay.get("/organization").status == 303)
        }
        try await Self.run(backend, configure: { $0.siteURL = "https://hedgerow.example" }) { server in
            let owner = try await server.createUser("owner@example.com", password: Self.password)
            _ = try await server.createOrganization("Acme", owner: owner)
            var browser = ConsoleClient(server)
            let signedIn = try await browser.signIn("owner@example.com", Self.password)
            #expect(signedIn.headers[values: .setCookie].filter { $0.contains("Secure") }.count >= 2, "\(signedIn.headers)")
        }
    }

    @Test("Every form needs its CSRF token: without it (or from another origin) nothing changes", arguments: TestBackend.available)
    func csrf(backend: TestBackend) async throws {
        try await Self.run(backend) { server in
            let owner = try await server.createUser("owner@example.com", password: Self.password)
            let org = try await server.createOrganization("Acme", owner: owner)
            var browser = ConsoleClient(server)
            // The sign-in form itself: a post without the pre-session cookie's token is refused.
            let forged = try await browser.post("/login", [("email", "owner@example.com"), ("password", Self.password)], csrf: false)
            #expect(forged.status == 403)
            #expect(browser.cookies[SignInService.cookieName] == nil)

            try await browser.signIn("owner@example.com", Self.password)
            _ = try await browser.get("/organization")
            let missing = try await browser.post("/organization/rename", [("name", "Forged")], csrf: false)
            #expect(missing.status == 403)
            #expect(missing.text.contains("CSRF Failed"))
            let crossSite = try await browser.post(
                "/organization/rename", [("name", "Forged")], headers: [("Origin", "https://evil.example")])
            #expect(crossSite.status == 403)
            #expect(try await server.request("GET", "/api/organizations/\(org)/", key: owner.key)["name"] == "Acme")

            let renamed = try await browser.post("/organization/rename", [("name", "Acme Two")])
            #expect(renamed.status == 303)
            #expect(try await server.request("GET", "/api/organizations/\(org)/", key: owner.key)["name"] == "Acme Two")
        }
    }

    @Test("Failed sign-ins are throttled per address and per email, before the password is checked", arguments: TestBackend.available)
    func throttle(backend: TestBackend) async throws {
        try await Self.run(
            backend,
            configure: {
                $0.rateLimit.enabled = true
                $0.limiterClock = { 1_000_000 }  // a clock standing still: no window ends mid-test
            }
        ) { server in
            _ = try await server.createUser("owner@example.com", password: Self.password)
            var browser = ConsoleClient(server)
            for _ in 0..<5 { #expect(try await browser.signIn("owner@example.com", "nope").status == 400) }
            let limited = try await browser.signIn("owner@example.com", Self.password)
            #expect(limited.status == 429)
            #expect(limited.header("Retry-After") != nil)
            #expect(browser.cookies[SignInService.cookieName] == nil)
        }
    }

    @Test("No page or form reaches another organization's projects, exports or members", arguments: TestBackend.available)
    func crossOrganization(backend: TestBackend) async throws {
        try await Self.run(backend) { server in
            let alice = try await server.createUser("alice@example.com", password: Self.password)
            let bob = try await server.createUser("bob@example.com", password: Self.password)
            _ = try await server.createOrganization("Alice's", owner: alice)
            let bobOrg = try await server.createOrganization("Bob's", owner: bob)
            guard case .int(let bobTeam)? = try await server.request("GET", "/api/users/@me/", key: bob.key)["team"]?["id"] else {
                Issue.record("Bob has no current team")
                return
            }
            let export = try await server.request(
                "POST", "/api/environments/\(bobTeam)/batch_exports/", key: bob.key, json: Fixtures.noopExport)
            let exportID = try #require(export["id"]?.stringValue)

            var browser = ConsoleClient(server)
            try await browser.signIn("alice@example.com", Self.password)
            _ = try await browser.get("/organization")
            #expect(try await browser.get("/project/\(bobTeam)/batch_exports").status == 403)
            #expect(try await browser.get("/project/\(bobTeam)/batch_exports/\(exportID)").status == 403)
            #expect(try await browser.get("/project/\(bobTeam)/batch_exports/\(exportID)/logs").status == 403)
            #expect(try await browser.post("/project/\(bobTeam)/batch_exports/\(exportID)/pause").status == 403)
            #expect(
                try await server.request("GET", "/api/environments/\(bobTeam)/batch_exports/\(exportID)/", key: bob.key)["paused"] == false)
            #expect(try await browser.post("/project/\(bobTeam)/rename", [("name", "Taken")]).status == 403)
            #expect(try await browser.post("/project/\(bobTeam)/environments", [("name", "Mine")]).status == 403)
            let switched = try await browser.post("/organization/switch", [("organization", bobOrg)])
            #expect(switched.status == 400)
            #expect(try await server.request("GET", "/api/users/@me/", key: alice.key)["organization"]?["name"] == "Alice's")
            // Bob's members and invites are not Alice's to see.
            let bobMember = try #require(try await server.request("GET", "/api/users/@me/", key: bob.key)["uuid"]?.stringValue)
            let removal = try await browser.post("/organization/members/\(bobMember)/remove")
            #expect(removal.status == 404)
        }
    }

    @Test(
        "A signed-in session may create and roll personal API keys over the API, repeating its CSRF token", arguments: TestBackend.available
    )
    func sessionOnTheAPI(backend: TestBackend) async throws {
        try await Self.run(backend) { server in
            let owner = try await server.createUser("owner@example.com", password: Self.password)
            _ = try await server.createOrganization("Acme", owner: owner)
            var browser = ConsoleClient(server)
            try await browser.signIn("owner@example.com", Self.password)
            let csrf = try #require(browser.cookies["csrftoken"])
            let body = JSONWriter.bytes(.object(["label": "from a session", "scopes": ["organization:read"]]))
            let cookie = ("Cookie", browser.cookieHeader)
            let json = ("Content-Type", "application/json")
            let noToken = try await server.request("POST", "/api/personal_api_keys/", body: body, headers: [cookie, json])
            noToken.expectError(403, type: "authentication_error", code: "permission_denied", detail: "CSRF Failed: CSRF token missing.")
            let wrongToken = try await server.request(
                "POST", "/api/personal_api_keys/", body: body, headers: [cookie, json, ("X-CSRFToken", "not-it")])
            #expect(wrongToken.status == 403)
            let created = try await server.request(
                "POST", "/api/personal_api_keys/", body: body, headers: [cookie, json, ("X-CSRFToken", csrf)])
            #expect(created.status == 201, "\(created.text)")
            let value = try #require(created["value"]?.stringValue)
            #expect(try await server.request("GET", "/api/organizations/", key: value).status == 200)
            // Reading needs no token; the key minted cannot mint keys itself.
            #expect(try await server.request("GET", "/api/personal_api_keys/", headers: [cookie]).status == 200)
            let minted = try await server.request(
                "POST", "/api/personal_api_keys/", key: value, json: .object(["label": "x", "scopes": ["*"]]))
            #expect(minted.status == 403)
            let id = try #require(created["id"]?.stringValue)
            let rolled = try await server.request("POST", "/api/personal_api_keys/\(id)/roll/", headers: [cookie, ("X-CSRFToken", csrf)])
            #expect(rolled.status == 200)
            let newValue = try #require(rolled["value"]?.stringValue)
            #expect(try await server.request("GET", "/api/organizations/", key: value).status == 401)
            #expect(try await server.request("GET", "/api/organizations/", key: newValue).status == 200)
        }
    }

    @Test("The keys page shows a new key's value once; the key form's scopes and limits reach the key", arguments: TestBackend.available)
    func keysPage(backend: TestBackend) async throws {
        try await Self.run(backend) { server in
            let owner = try await server.createUser("owner@example.com", password: Self.password)
            let org = try await server.createOrganization("Acme", owner: owner)
            var browser = ConsoleClient(server)
            try await browser.signIn("owner@example.com", Self.password)
            _ = try await browser.get("/me/keys")
            let page = try await browser.post(
                "/me/keys", [("label", "deploys"), ("scope", "batch_export:read"), ("scoped_organizations", org)])
            #expect(page.status == 200)
            let value = try #require(page.text.firstMatch(of: /phx_[A-Za-z0-9]+/).map { String($0.output) })
            let list = try await server.request("GET", "/api/personal_api_keys/", key: owner.key)
            let key = try #require(list.json.arrayValue?.first { $0["label"] == "deploys" })
            #expect(key["scopes"] == ["batch_export:read"])
            #expect(key["scoped_organizations"] == .array([.string(org)]))
            #expect(try await server.request("GET", "/api/organizations/\(org)/batch_exports/", key: value).status == 200)
            #expect(try await server.request("GET", "/api/organizations/", key: value).status == 403)
            #expect(!(try await browser.get("/me/keys")).text.contains(value))
            let noScope = try await browser.post("/me/keys", [("label", "none")])
            #expect(noScope.status == 400)
            #expect(noScope.text.contains("At least one scope is required."))
        }
    }
}

extension ConsoleTests {
    @Test(
        "The organization and members pages change what the API shows, with the API's rules and messages", arguments: TestBackend.available)
    func organizationAndMembers(backend: TestBackend) async throws {
        try await Self.run(backend) { server in
            let owner = try await server.createUser("owner@example.com", password: Self.password)
            let member = try await server.createUser("member@example.com", password: Self.password)
            let org = try await server.createOrganization("Acme", owner: owner)
            try await server.addMember(member, to: org, level: .member)
            var browser = ConsoleClient(server)
            try await browser.signIn("owner@example.com", Self.password)
            _ = try await browser.get("/organization")
            #expect(try await browser.post("/organization/projects", [("name", "Shop")]).status == 303)
            let projects = try await server.request("GET", "/api/organizations/\(org)/projects/", key: owner.key)
            let shop = try #require(projects["results"]?.arrayValue?.first { $0["name"] == "Shop" })
            guard case .int(let shopID)? = shop["id"] else {
                Issue.record("no project id")
                return
            }
            #expect(try await browser.post("/project/\(shopID)/environments", [("name", "Staging")]).status == 303)
            #expect(try await browser.post("/project/\(shopID)/rename", [("name", "Shop EU")]).status == 303)
            let page = try await browser.get("/organization")
            #expect(page.text.contains("Shop EU") && page.text.contains("Staging") && page.text.contains("phc_"))
            let blank = try await browser.post("/organization/projects", [("name", "")])
            #expect(blank.status == 400)
            #expect(blank.text.contains("This field may not be blank."))
            // Switching the project changes the user's current team.
            #expect(
                try await browser.post("/environment/switch", [("team", String(shopID))]).header("Location")
                    == "/project/\(shopID)/batch_exports")
            #expect(try await server.request("GET", "/api/users/@me/", key: owner.key)["team"]?["id"] == .int(shopID))

            // Members: a level change and the rules' refusals, shown on the page.
            let memberUUID = member.user.uuid
            #expect(try await browser.post("/organization/members/\(memberUUID)/level", [("level", "8")]).status == 303)
            let members = try await server.request("GET", "/api/organizations/\(org)/members/", key: owner.key)
            #expect(members["results"]?.arrayValue?.first { $0["user"]?["uuid"] == .string(memberUUID) }?["level"] == 8)
            let own = try await browser.post("/organization/members/\(owner.user.uuid)/level", [("level", "1")])
            #expect(own.status == 403)
            #expect(own.html.contains("You can't change your own access level."))
            let lastOwner = try await browser.post("/organization/members/\(owner.user.uuid)/remove")
            #expect(lastOwner.status == 400)
            #expect(lastOwner.text.contains("The last owner cannot leave or be removed."))
            // Invites from the page, and the member's own view.
            #expect(try await browser.post("/organization/invites", [("target_email", "grace@example.com"), ("level", "1")]).status == 303)
            let invites = try await browser.get("/organization/members")
            #expect(invites.text.contains("/signup/") && invites.text.contains("grace@example.com"))
            let duplicate = try await browser.post("/organization/invites", [("target_email", "member@example.com")])
            #expect(duplicate.text.contains("A user with this email address already belongs to the organization."))
            #expect(try await browser.post("/organization/members/\(memberUUID)/remove").status == 303)
            #expect(try await server.request("GET", "/api/organizations/\(org)/members/", key: owner.key)["count"] == 1)
        }
    }

    @Test(
        "An export's actions from its page: estimate and start a backfill, pause, unpause, retry a run, logs filtered",
        arguments: TestBackend.available)
    func exportActions(backend: TestBackend) async throws {
        try await Self.run(backend) { server in
            let (owner, team) = try await Self.ownerAndTeam(server)
            let seeded = try await Fixtures.seedHour(server, team: team, count: 8)
            var browser = ConsoleClient(server)
            try await browser.signIn("owner@example.com", Self.password)
            _ = try await browser.get("/project/\(team)/batch_exports/new?type=NoOp")
            let saved = try await browser.post(
                "/project/\(team)/batch_exports/new", [("type", "NoOp"), ("name", "counts"), ("interval", "hour"), ("intent", "save")])
            #expect(saved.status == 303, "\(saved.text)")
            let location = try #require(saved.header("Location")?.split(separator: "?").first.map(String.init))
            _ = try await browser.get(location)
            let range = [("start_at", "2024-01-01T10:00"), ("end_at", "2024-01-01T11:00")]
            let estimate = try await browser.post(location + "/backfill", range + [("intent", "estimate")])
            #expect(estimate.text.contains("about <strong>\(seeded.count)</strong> records"), "\(estimate.text)")
            let future = try await browser.post(location + "/backfill", [("start_at", "2024-01-01T10:00"), ("end_at", "2999-01-01T00:00")])
            #expect(future.status == 400)
            #expect(future.text.contains("is in the future"))
            #expect(try await browser.post(location + "/backfill", range + [("intent", "start")]).status == 303)
            let id = String(location.split(separator: "/").last!)
            let api = "/api/environments/\(team)/batch_exports/\(id)"
            #expect(try await server.request("GET", api + "/backfills/", key: owner.key)["results"]?.arrayValue?.count == 1)
            let page = try await browser.get(location)
            #expect(page.text.contains("backfill-status"))
            let fragment = try await browser.get(location + "/runs")
            #expect(fragment.text.contains("runs-table") && !fragment.text.contains("<html"))
            let run = try #require(try await server.request("GET", api + "/runs/", key: owner.key)["results"]?.arrayValue?.first)
            let runID = try #require(run["id"]?.stringValue)
            #expect(try await browser.post(location + "/runs/\(runID)/cancel").status == 303)
            #expect(try await browser.post(location + "/runs/\(runID)/retry").status == 303)
            #expect(try await server.request("GET", api + "/runs/", key: owner.key)["results"]?.arrayValue?.count == 2)
            #expect(try await browser.post(location + "/pause").status == 303)
            #expect(try await server.request("GET", api + "/", key: owner.key)["paused"] == true)
            #expect(try await browser.post(location + "/unpause").status == 303)
            #expect(try await server.request("GET", api + "/", key: owner.key)["paused"] == false)
            let logs = try await browser.get(location + "/logs?level=info&search=cancelled")
            #expect(logs.text.contains("cancelled"))
            #expect(!logs.text.contains("Backfill") || logs.text.contains("cancelled"))
        }
    }

    @Test(
        "The exports page shows a late export: a tick with no run (no scheduler running), then a run waiting for a worker",
        arguments: TestBackend.available)
    func lateExports(backend: TestBackend) async throws {
        try await Self.run(backend) { server in
            let (owner, team) = try await Self.ownerAndTeam(server)
            let created = try await server.request(
                "POST", "/api/environments/\(team)/batch_exports/", key: owner.key,
                json: Fixtures.patched(Fixtures.noopExport, [("interval", "every 5 minutes")]))
            let id = try #require(created["id"]?.stringValue)
            var browser = ConsoleClient(server)
            try await browser.signIn("owner@example.com", Self.password)
            #expect(!(try await browser.get("/project/\(team)/batch_exports").text.contains("Late:")))
            // Created an hour ago, and no scheduler has run since.
            let hourAgo = Timestamp(microseconds: Timestamp.now().microseconds - 3_600_000_000)
            try await server.database.transaction { connection in
                try await connection.execute(
                    "UPDATE batch_exports SET created_at = $1, scheduled_through = NULL WHERE id = $2", [SQLValue(hourAgo), .text(id)])
            }
            let missing = try await browser.get("/project/\(team)/batch_exports").text
            #expect(missing.contains("Late:") && missing.contains("No run was created for the tick at"), "\(missing)")
            // The scheduler catches up: the runs exist, none late yet.
            try await ExportEngine(database: server.database, configuration: .forTests, logger: TestBackend.logger).scheduleDueRuns()
            #expect(!(try await browser.get("/project/\(team)/batch_exports").text.contains("Late:")))
            // Five minutes later no worker has taken them.
            try await server.database.transaction { connection in
                try await connection.execute(
                    "UPDATE batch_export_runs SET created_at = $1 WHERE batch_export_id = $2",
                    [SQLValue(Timestamp(microseconds: Timestamp.now().microseconds - 300_000_000)), .text(id)])
            }
            let waiting = try await browser.get("/project/\(team)/batch_exports").text
            #expect(waiting.contains("has waited 5 min for a worker"), "\(waiting)")
            // Paused exports are never late.
            _ = try await server.request("POST", "/api/environments/\(team)/batch_exports/\(id)/pause/", key: owner.key)
            #expect(!(try await browser.get("/project/\(team)/batch_exports").text.contains("Late:")))
        }
    }
}
