import Foundation
import HTTPTypes
import HedgerowAPI
import HedgerowCore
import Testing

/// A browser's part of a console conversation, over the test client: it keeps cookies, reads the
/// CSRF token from the pages, and posts forms.
package struct ConsoleClient: Sendable {
    package let server: TestServer
    package var cookies: [String: String] = [:]
    package var csrf = ""

    package init(_ server: TestServer) { self.server = server }

    package var cookieHeader: String { cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ") }

    package mutating func remember(_ result: TestResult) {
        for value in result.headers[values: .setCookie] {
            let pair = value.split(separator: ";", maxSplits: 1)[0].split(separator: "=", maxSplits: 1)
            guard pair.count >= 1 else { continue }
            let name = String(pair[0])
            let content = pair.count == 2 ? String(pair[1]) : ""
            if content.isEmpty || value.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = content }
        }
        if let token = Self.csrfToken(in: result.text) { csrf = token }
    }

    package static func csrfToken(in html: String) -> String? {
        guard let range = html.range(of: #"name="csrf_token" value=""#) else { return nil }
        let rest = html[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    package mutating func get(_ path: String, headers: [(String, String)] = []) async throws -> TestResult {
        let result = try await server.request("GET", path, headers: [("Cookie", cookieHeader)] + headers)
        remember(result)
        return result
    }

    /// Posts a form; `csrf: false` leaves the token out.
    package mutating func post(
        _ path: String, _ fields: [(String, String)] = [], csrf withToken: Bool = true, headers: [(String, String)] = []
    ) async throws -> TestResult {
        let all = (withToken ? [("csrf_token", csrf)] : []) + fields
        let body = QueryString(items: all.map { (key: $0.0, value: $0.1) }).encoded
        let result = try await server.request(
            "POST", path, body: Array(body.utf8),
            headers: [("Cookie", cookieHeader), ("Content-Type", "application/x-www-form-urlencoded")] + headers)
        remember(result)
        return result
    }

    /// Signs in through the form; returns the answer to the form's post.
    @discardableResult
    package mutating func signIn(_ email: String, _ password: String, next: String = "/") async throws -> TestResult {
        _ = try await get("/login")
        return try await post("/login", [("email", email), ("password", password), ("next", next)])
    }
}

extension TestServer {
    /// A user with a console password (and a key, as `createUser` makes them).
    package func createUser(_ email: String, password: String) async throws -> TestUser {
        let user = try await createUser(email)
        _ = try await SignInService(database: database, failures: nil).setPassword(email: email, password: password)
        return user
    }
}

extension TestResult {
    /// The page's text with Mustache's HTML escapes undone, to compare with messages.
    package var html: String {
        text.replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
