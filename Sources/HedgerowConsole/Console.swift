import Foundation
import HedgerowAPI
import HedgerowCore
import Mustache

/// The Hedgerow console: server-rendered pages for organizations, members, invites, personal API
/// keys and batch exports, on the same services as the API (a signed-in session is a `Principal`
/// with all of its user's rights). Every action is a form post that works without JavaScript;
/// every post carries the session's CSRF token; access rules are the services' own.
package struct Console: RouteModule {
    package init() {}

    package func addRoutes(to routes: inout Routes, services: APIServices) {
        let pages = ConsolePages(services: services, library: ConsoleTemplates.library())
        routes.add("GET", "/static/console.css", scope: nil) { _ in
            ConsoleResponse.asset(ConsoleAssets.css, type: "text/css; charset=utf-8")
        }
        routes.add("GET", "/static/console.js", scope: nil) { _ in
            ConsoleResponse.asset(ConsoleAssets.javascript, type: "text/javascript; charset=utf-8")
        }
        routes.add("GET", "/", scope: nil, handler: pages.signedIn(pages.home))
        routes.add("GET", "/login", scope: nil, handler: pages.loginPage)
        routes.add("POST", "/login", scope: nil, handler: pages.login)
        routes.add("POST", "/logout", scope: nil, handler: pages.signedIn(pages.logout))
        routes.add("GET", "/signup/:invite_id", scope: nil, handler: pages.signupPage)
        routes.add("POST", "/signup/:invite_id", scope: nil, handler: pages.signup)

        routes.add("POST", "/organization/switch", scope: nil, handler: pages.signedIn(pages.switchOrganization))
        routes.add("POST", "/environment/switch", scope: nil, handler: pages.signedIn(pages.switchEnvironment))
        routes.add("GET", "/organization", scope: nil, handler: pages.signedIn(pages.organizationPage))
        routes.add("POST", "/organization/rename", scope: nil, handler: pages.signedIn(pages.renameOrganization))
        routes.add("POST", "/organization/projects", scope: nil, handler: pages.signedIn(pages.createProject))
        routes.add("POST", "/project/:project_id/rename", scope: nil, handler: pages.signedIn(pages.renameProject))
        routes.add("POST", "/project/:project_id/environments", scope: nil, handler: pages.signedIn(pages.createEnvironment))

        routes.add("GET", "/organization/members", scope: nil, handler: pages.signedIn(pages.membersPage))
        routes.add("POST", "/organization/members/:user_uuid/level", scope: nil, handler: pages.signedIn(pages.changeLevel))
        routes.add("POST", "/organization/members/:user_uuid/remove", scope: nil, handler: pages.signedIn(pages.removeMember))
        routes.add("POST", "/organization/invites", scope: nil, handler: pages.signedIn(pages.createInvite))
        routes.add("POST", "/organization/invites/:id/delete", scope: nil, handler: pages.signedIn(pages.deleteInvite))

        routes.add("GET", "/me/keys", scope: nil, handler: pages.signedIn(pages.keysPage))
        routes.add("POST", "/me/keys", scope: nil, handler: pages.signedIn(pages.createKey))
        routes.add("POST", "/me/keys/:id/label", scope: nil, handler: pages.signedIn(pages.relabelKey))
        routes.add("POST", "/me/keys/:id/roll", scope: nil, handler: pages.signedIn(pages.rollKey))
        routes.add("POST", "/me/keys/:id/delete", scope: nil, handler: pages.signedIn(pages.deleteKey))

        let exports = "/project/:team_id/batch_exports"
        let export = exports + "/:id"
        routes.add("GET", exports, scope: nil, handler: pages.signedIn(pages.exportsPage))
        routes.add("GET", exports + "/new", scope: nil, handler: pages.signedIn(pages.newExportPage))
        routes.add("POST", exports + "/new", scope: nil, handler: pages.signedIn(pages.saveExport))
        routes.add("GET", export, scope: nil, handler: pages.signedIn(pages.exportPage))
        routes.add("GET", export + "/runs", scope: nil, handler: pages.signedIn(pages.runsFragment))
        routes.add("GET", export + "/edit", scope: nil, handler: pages.signedIn(pages.editExportPage))
        routes.add("POST", export + "/edit", scope: nil, handler: pages.signedIn(pages.saveExport))
        routes.add("POST", export + "/pause", scope: nil, handler: pages.signedIn(pages.pauseExport))
        routes.add("POST", export + "/unpause", scope: nil, handler: pages.signedIn(pages.unpauseExport))
        routes.add("POST", export + "/delete", scope: nil, handler: pages.signedIn(pages.deleteExport))
        routes.add("GET", export + "/backfill", scope: nil, handler: pages.signedIn(pages.backfillPage))
        routes.add("POST", export + "/backfill", scope: nil, handler: pages.signedIn(pages.backfill))
        routes.add("POST", export + "/backfills/:backfill_id/cancel", scope: nil, handler: pages.signedIn(pages.cancelBackfill))
        routes.add("POST", export + "/runs/:run_id/retry", scope: nil, handler: pages.signedIn(pages.retryRun))
        routes.add("POST", export + "/runs/:run_id/cancel", scope: nil, handler: pages.signedIn(pages.cancelRun))
        routes.add("GET", export + "/logs", scope: nil, handler: pages.signedIn(pages.logsPage))
    }
}

/// One signed-in request: the session, its principal, and the form it posted.
struct ConsoleRequest: Sendable {
    let request: APIRequest
    let session: SignInService.Session
    let form: Form

    var principal: Principal { .session(session.user) }
    func parameter(_ name: String) -> String { request.parameters[name] ?? "" }
}

/// The page handlers (split by area in `ConsolePages+*.swift`), and what they share: the session
/// check, CSRF, the layout's data, rendering and error pages.
struct ConsolePages: Sendable {
    let services: APIServices
    let library: MustacheLibrary

    typealias Page = @Sendable (ConsoleRequest) async throws -> APIResponse

    /// Requires a session (else to the sign-in page), and on posts the session's CSRF token; an
    /// `APIError` the services throw becomes an error page with its status.
    func signedIn(_ page: @escaping Page) -> Routes.Handler {
        { request in
            let token = SignInService.cookie(SignInService.cookieName, in: request.headers) ?? ""
            guard let session = try await services.signIn.session(token: token) else {
                if request.method == "GET" {
                    return ConsoleResponse.redirect("/login?next=" + (request.path).queryEscaped)
                }
                return errorPage(APIError.notAuthenticated, session: nil)
            }
            let form = Form(request)
            if request.method == "POST" {
                guard let sent = form["csrf_token"], ConstantTime.equal(Array(sent.utf8), Array(session.csrfToken.utf8)) else {
                    return errorPage(Self.csrfRefused, session: session)
                }
                if let refusal = crossOrigin(request) { return errorPage(refusal, session: session) }
            }
            let console = ConsoleRequest(request: request, session: session, form: form)
            do {
                return try await page(console)
            } catch let error as APIError {
                return errorPage(error, session: session, context: try? await layout(console, title: "Error"))
            }
        }
    }

    static let csrfRefused = APIError.permissionDenied("CSRF Failed: CSRF token missing or incorrect.")

    /// A post whose `Origin` names another site is refused, whatever it carries (a second line
    /// behind the token: browsers send `Origin` on every cross-site post).
    func crossOrigin(_ request: APIRequest) -> APIError? {
        guard let origin = request.header("Origin"), origin != "null" else { return nil }
        // The site as the request names it (the configured site URL, else its Host), by host and port.
        func site(_ url: String) -> String? {
            URLComponents(string: url).flatMap { parts in parts.host.map { $0.lowercased() + (parts.port.map { ":\($0)" } ?? "") } }
        }
        if let expected = site(request.baseURL), site(origin) == expected { return nil }
        return APIError.permissionDenied("CSRF Failed: Origin checking failed - \(origin) does not match any trusted origins.")
    }

    // MARK: Rendering

    func render(_ template: String, _ context: [String: Any], status: Int = 200, cookies: [String] = []) -> APIResponse {
        let text = library.render(context, withTemplate: template) ?? ""
        return ConsoleResponse.html(text, status: status, cookies: cookies)
    }

    func errorPage(_ error: APIError, session: SignInService.Session?, context: [String: Any]? = nil) -> APIResponse {
        var context = context ?? ["title": "Error"]
        context["title"] = "Error"
        context["heading"] =
            switch error.status {
            case 401: "Please sign in"
            case 403: "Not allowed"
            case 404: "Not found"
            case 429: "Too many attempts"
            default: "Something is not right"
            }
        context["detail"] = error.detail
        if session == nil { context["me"] = nil }
        var response = render("error", context, status: error.status)
        response.headers += error.headers
        return response
    }

    /// The layout's data: who is signed in, their organizations, the current organization's
    /// projects and environments (`known` when the page has them already), the CSRF token.
    func layout(
        _ request: ConsoleRequest, title: String, projects known: [(Project, [Environment])]? = nil
    ) async throws -> [String: Any] {
        let me = try await services.users.me(principal: request.principal)
        var environments: [[String: Any]] = []
        if let organization = me.organization {
            var projects = known ?? []
            if known == nil {
                projects = try await services.projects.projectsWithEnvironments(
                    organizationID: organization.organization.id, principal: request.principal)
            }
            for (project, list) in projects {
                for environment in list {
                    environments.append([
                        "id": environment.id, "current": environment.id == me.team?.id,
                        "label": environment.id == project.id ? project.name : "\(project.name) · \(environment.name)",
                    ])
                }
            }
        }
        let organizations: [[String: Any]] = me.organizations.map { organization, _ in
            ["id": organization.id, "name": organization.name, "current": organization.id == me.organization?.organization.id]
        }
        var meContext: [String: Any] = [
            "email": me.user.email, "csrf": request.session.csrfToken, "organizations": organizations,
            "environments": environments, "has_environments": !environments.isEmpty,
        ]
        if let team = me.team { meContext["team"] = ["id": team.id, "name": team.name] }
        var context: [String: Any] = ["title": title, "me": meContext, "csrf": request.session.csrfToken]
        if let flash = request.request.query["flash"] { context["flash"] = flash }
        if let organization = me.organization {
            context["organization_id"] = organization.organization.id
            context["organization_name"] = organization.organization.name
        }
        return context
    }

    /// The current organization's id, or 404 when the user belongs to none.
    func currentOrganization(_ request: ConsoleRequest) throws(APIError) -> String {
        guard let id = request.session.user.currentOrganizationID else { throw APIError.notFound("You belong to no organization yet.") }
        return id
    }

    /// Turns a form's field into JSON the services parse (numbers stay numbers).
    static func number(_ text: String?) -> JSONValue? {
        guard let text else { return nil }
        if let value = Int64(text) { return .int(value) }
        return .string(text)
    }

    /// A value for a template, or a null that sections treat as false (an empty string would be true).
    static func maybe(_ value: Any?) -> Any { value ?? NSNull() }

    static func date(_ timestamp: Timestamp?) -> String {
        guard let timestamp else { return "—" }
        let text = timestamp.iso8601
        return String(text.prefix(19)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }
}
