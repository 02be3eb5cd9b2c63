import HedgerowAPI
import HedgerowCore
import HedgerowRuntime

/// Sign-in, sign-out, and accepting an invite. These forms come before a session exists, so their
/// CSRF token is a random cookie that the form repeats (double submit).
extension ConsolePages {
    var secure: @Sendable (APIRequest) -> Bool {
        { [siteURL = services.configuration.siteURL] request in ConsoleCookies.isSecure(request, siteURL: siteURL) }
    }

    /// The pre-session CSRF token of a request, or a new one and the cookie that sets it.
    func preSessionToken(_ request: APIRequest) -> (token: String, cookies: [String]) {
        if let existing = SignInService.cookie(ConsoleCookies.preSessionCSRF, in: request.headers), existing.count >= 32 {
            return (existing, [])
        }
        let token = SignInService.randomToken()
        return (token, [ConsoleCookies.cookie(ConsoleCookies.preSessionCSRF, token, maxAge: 7200, secure: secure(request))])
    }

    func checkPreSessionToken(_ request: APIRequest, form: Form) -> Bool {
        guard let cookie = SignInService.cookie(ConsoleCookies.preSessionCSRF, in: request.headers), let sent = form["csrf_token"] else {
            return false
        }
        return ConstantTime.equal(Array(cookie.utf8), Array(sent.utf8)) && crossOrigin(request) == nil
    }

    /// Only paths of this site are followed after sign-in: a `/` followed by printable ASCII with no
    /// `//` and no backslash. Browsers drop tabs and newlines inside a URL and read `\` as `/`, so
    /// `/\t/evil.example/` and `/\\evil.example` are other origins; anything else is percent-encoded
    /// by a real link and stays a path.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.contains("//"),
            next.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") })
        else { return "/" }
        return next
    }

    @Sendable func loginPage(_ request: APIRequest) async throws -> APIResponse {
        let (token, cookies) = preSessionToken(request)
        return render(
            "login", ["title": "Sign in", "form_csrf": token, "next": Self.safeNext(request.query["next"])], cookies: cookies)
    }

    @Sendable func login(_ request: APIRequest) async throws -> APIResponse {
        let form = Form(request)
        let (token, cookies) = preSessionToken(request)
        var context: [String: Any] = [
            "title": "Sign in", "form_csrf": token, "next": Self.safeNext(form["next"]), "email": form["email"] ?? "",
        ]
        guard checkPreSessionToken(request, form: form) else {
            context["error"] = "Your sign-in form expired (CSRF check failed). Please try again."
            return render("login", context, status: 403, cookies: cookies)
        }
        do {
            let session = try await services.signIn.signIn(
                email: form["email"] ?? "", password: form.raw("password"), client: request.clientAddress ?? "unknown")
            return ConsoleResponse.redirect(
                Self.safeNext(form["next"]),
                cookies: ConsoleCookies.signedIn(session, secure: secure(request)))
        } catch let error as APIError {
            context["error"] = error.detail
            var response = render("login", context, status: error.status, cookies: cookies)
            response.headers += error.headers
            return response
        }
    }

    @Sendable func logout(_ request: ConsoleRequest) async throws -> APIResponse {
        try await services.signIn.signOut(token: request.session.token)
        return ConsoleResponse.redirect("/login", cookies: ConsoleCookies.signedOut(secure: secure(request.request)))
    }

    @Sendable func home(_ request: ConsoleRequest) async throws -> APIResponse {
        let me = try await services.users.me(principal: request.principal)
        if let team = me.team { return ConsoleResponse.redirect("/project/\(team.id)/batch_exports") }
        return ConsoleResponse.redirect("/organization")
    }

    // MARK: Invites

    func signupContext(_ request: APIRequest, token: String) async throws -> [String: Any] {
        let (invite, organizationName) = try await services.invites.prevalidate(inviteID: request.parameters["invite_id"] ?? "")
        var context: [String: Any] = [
            "title": "Join \(organizationName)", "organization_name": organizationName, "invite_id": invite.id, "form_csrf": token,
            "invite": [
                "target_email": invite.targetEmail, "level_name": ConsolePages.levelName(invite.level),
                "message": Self.maybe(invite.message), "created_by": Self.maybe(invite.createdBy.map { ["email": $0.email] }),
            ],
        ]
        if let session = try await currentSession(request) { context["signed_in"] = session.user.email }
        return context
    }

    func currentSession(_ request: APIRequest) async throws -> SignInService.Session? {
        guard let token = SignInService.cookie(SignInService.cookieName, in: request.headers) else { return nil }
        return try await services.signIn.session(token: token)
    }

    @Sendable func signupPage(_ request: APIRequest) async throws -> APIResponse {
        let (token, cookies) = preSessionToken(request)
        do {
            return render("signup", try await signupContext(request, token: token), cookies: cookies)
        } catch let error as APIError {
            return errorPage(error, session: nil)
        }
    }

    @Sendable func signup(_ request: APIRequest) async throws -> APIResponse {
        let form = Form(request)
        let (token, cookies) = preSessionToken(request)
        var context: [String: Any]
        do {
            context = try await signupContext(request, token: token)
        } catch let error as APIError {
            return errorPage(error, session: nil)
        }
        context["first_name"] = form["first_name"] ?? ""
        guard checkPreSessionToken(request, form: form) else {
            context["error"] = "The form expired (CSRF check failed). Please try again."
            return render("signup", context, status: 403, cookies: cookies)
        }
        let inviteID = request.parameters["invite_id"] ?? ""
        do {
            let session: SignInService.Session
            if let current = try await currentSession(request) {
                _ = try await services.invites.accept(inviteID: inviteID, user: current.user)
                session = current
            } else {
                let user = try await services.invites.signUp(
                    inviteID: inviteID, firstName: form["first_name"] ?? "", password: form.raw("password"))
                session = try await services.signIn.start(for: user)
            }
            return ConsoleResponse.redirect(
                "/?flash=" + "Welcome to \(context["organization_name"] as? String ?? "the organization").".queryEscaped,
                cookies: ConsoleCookies.signedIn(session, secure: secure(request)))
        } catch let error as APIError {
            context["error"] = error.detail
            return render("signup", context, status: error.status, cookies: cookies)
        }
    }

    static func levelName(_ level: MembershipLevel) -> String {
        switch level {
        case .member: "member"
        case .admin: "admin"
        case .owner: "owner"
        }
    }
}
