import Foundation
import HedgerowAPI
import HedgerowCore

/// A submitted HTML form (`application/x-www-form-urlencoded`), keeping repeated fields.
struct Form: Sendable {
    let fields: QueryString

    init(_ request: APIRequest) {
        let isForm = request.mediaType == "application/x-www-form-urlencoded"
        fields = QueryString(parsing: isForm ? String(decoding: request.rawBody, as: UTF8.self) : nil)
    }

    init(fields: QueryString) { self.fields = fields }

    /// The first value of `name`, trimmed; nil when missing or blank.
    subscript(name: String) -> String? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    /// The value as sent (passwords are not trimmed).
    func raw(_ name: String) -> String { fields[name] ?? "" }

    func all(_ name: String) -> [String] { fields.values(name).filter { !$0.isEmpty } }
}

/// The console's answers: HTML pages, redirects, with the headers every page carries.
enum ConsoleResponse {
    /// No framing, no sniffing, scripts and styles from this server only, forms posted here only.
    static let securityHeaders: [(String, String)] = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
    ]

    static func html(_ text: String, status: Int = 200, cookies: [String] = []) -> APIResponse {
        APIResponse(status: status, json: nil, headers: securityHeaders + cookies.map { ("Set-Cookie", $0) }, text: text)
    }

    /// 303: after a form post the browser loads `location` with GET.
    static func redirect(_ location: String, cookies: [String] = []) -> APIResponse {
        APIResponse(
            status: 303, json: nil, headers: [("Location", location), ("Cache-Control", "no-store")] + cookies.map { ("Set-Cookie", $0) },
            text: "")
    }

    static func asset(_ text: String, type: String) -> APIResponse {
        APIResponse(
            status: 200, json: nil,
            headers: [("Content-Type", type), ("Cache-Control", "public, max-age=3600"), ("X-Content-Type-Options", "nosniff")], text: text)
    }
}

/// Cookies: the session (`HttpOnly`, `SameSite=Lax`, `Secure` behind TLS) and the pre-session
/// CSRF cookie that the sign-in and invite forms repeat (double submit).
enum ConsoleCookies {
    static let preSessionCSRF = "hedgerow_csrf"

    /// Whether the browser reached us over TLS: the configured site URL says so, or the proxy in front does.
    static func isSecure(_ request: APIRequest, siteURL: String?) -> Bool {
        siteURL?.lowercased().hasPrefix("https://") == true || request.header("X-Forwarded-Proto")?.lowercased() == "https"
    }

    static func cookie(_ name: String, _ value: String, maxAge: Int, secure: Bool) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    static func session(_ token: String, secure: Bool) -> String {
        cookie(SignInService.cookieName, token, maxAge: SignInService.sessionLifetimeSeconds, secure: secure)
    }

    static func clear(_ name: String, secure: Bool) -> String { cookie(name, "", maxAge: 0, secure: secure) }

    /// The session's CSRF token where scripts may read it (Django's `csrftoken`, which PostHog's
    /// web client repeats in `X-CSRFToken`); it is no secret from the page, only from other sites.
    static let csrfTokenCookie = "csrftoken"

    static func csrfToken(_ value: String, maxAge: Int, secure: Bool) -> String {
        "\(csrfTokenCookie)=\(value); Path=/; Max-Age=\(maxAge); SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// The cookies a new session sets.
    static func signedIn(_ session: SignInService.Session, secure: Bool) -> [String] {
        [
            ConsoleCookies.session(session.token, secure: secure),
            csrfToken(session.csrfToken, maxAge: SignInService.sessionLifetimeSeconds, secure: secure),
            clear(preSessionCSRF, secure: secure),
        ]
    }

    /// The cookies sign-out clears.
    static func signedOut(secure: Bool) -> [String] {
        [clear(SignInService.cookieName, secure: secure), csrfToken("", maxAge: 0, secure: secure)]
    }
}

/// Percent-encoding for values placed in a URL's query.
extension String {
    var queryEscaped: String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}
