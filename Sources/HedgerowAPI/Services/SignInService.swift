import Foundation
import HedgerowCore
import HedgerowStore

/// Console sign-in: email and password in, a session token (the cookie's value, stored only as a
/// hash) and its CSRF token out. Failed attempts are counted per client address and per email, and
/// past the limit further attempts are refused before the password is checked.
package struct SignInService: Sendable {
    let database: any Database
    let failures: WindowLimiter?
    let clock: @Sendable () -> Timestamp
    let sessions = LoginSessionStore()
    let users = UserStore()

    /// Sessions last two weeks, as Django's default `SESSION_COOKIE_AGE`.
    package static let sessionLifetimeSeconds = 14 * 86_400
    /// The cookie that carries the session, and the header unsafe API requests of a session repeat
    /// its CSRF token in (Django's names).
    package static let cookieName = "hedgerow_session"
    static let csrfHeader = "X-CSRFToken"
    /// The shortest password a console user may set (Django's `MinimumLengthValidator`).
    static let minimumPasswordLength = 8

    package init(database: any Database, failures: WindowLimiter?, clock: @escaping @Sendable () -> Timestamp = { .now() }) {
        self.database = database
        self.failures = failures
        self.clock = clock
    }

    package struct Session: Sendable {
        package var token: String
        package var csrfToken: String
        package var user: User
    }

    static let invalidCredentials = APIError(
        status: 400, type: "validation_error", code: "invalid_credentials", detail: "Invalid email or password.")

    /// Signs in, or throws 400 (wrong email or password) or 429 (too many failures). The attempt is
    /// counted against the client address and the email before the password is hashed (so that a
    /// hundred concurrent guesses hash at most the limit's worth), and given back when it succeeds.
    package func signIn(email: String, password: String, client: String) async throws -> Session {
        let email = email.trimmingCharacters(in: .whitespaces).lowercased()
        let keys = ["address:" + client, "email:" + email]
        if let failures, let wait = failures.hit(all: keys) { throw APIError.throttled(waitSeconds: wait) }
        guard !email.isEmpty, !password.isEmpty,
            let user = try await AccountService(database: database).verifyPassword(email: email, password: password)
        else { throw Self.invalidCredentials }
        for key in keys { failures?.forget(key) }
        return try await start(for: user)
    }

    /// A random token for cookies and forms (256 bits, base62).
    package static func randomToken() -> String { PersonalAPIKeyCodec.randomBase62(bytes: 32, length: 43) }

    /// A new session for a user who proved who they are (a password, or accepting an invite).
    package func start(for user: User) async throws -> Session {
        let token = Self.randomToken()
        let csrf = Self.randomToken()
        let now = clock()
        try await database.transaction { connection in
            try await sessions.deleteExpired(at: now, on: connection)
            try await sessions.insert(
                tokenHash: Self.hash(token), userID: user.id, csrfToken: csrf, createdAt: now,
                expiresAt: Timestamp(microseconds: now.microseconds + Int64(Self.sessionLifetimeSeconds) * 1_000_000), on: connection)
        }
        return Session(token: token, csrfToken: csrf, user: user)
    }

    /// The signed-in session of a cookie value, nil when it is unknown, expired or its user inactive.
    package func session(token: String) async throws -> Session? {
        guard !token.isEmpty, token.count <= 128 else { return nil }
        let now = clock()
        let hash = Self.hash(token)
        let found = try await database.read { connection in try await sessions.find(tokenHash: hash, at: now, on: connection) }
        guard let row = found else { return nil }
        return Session(token: token, csrfToken: row.csrfToken, user: row.user)
    }

    package func signOut(token: String) async throws {
        try await database.transaction { connection in try await sessions.delete(tokenHash: Self.hash(token), on: connection) }
    }

    /// Sets a user's password (`hedgerow users set-password`) and ends their sessions.
    package func setPassword(email: String, password: String) async throws -> User {
        guard password.count >= Self.minimumPasswordLength else {
            throw AccountService.Failure(description: "A password needs at least \(Self.minimumPasswordLength) characters")
        }
        let hash = PasswordHasher.hash(password)
        return try await database.transaction { connection in
            guard let user = try await users.find(email: email.trimmingCharacters(in: .whitespaces).lowercased(), on: connection) else {
                throw AccountService.Failure(description: "No user with email \(email)")
            }
            try await users.setPasswordHash(hash, userID: user.id, on: connection)
            try await sessions.deleteAll(userID: user.id, on: connection)
            return user
        }
    }

    static func hash(_ token: String) -> String { PersonalAPIKeyCodec.hash(token) }

    /// The value of cookie `name` in a request's `Cookie` headers.
    package static func cookie(_ name: String, in headers: [(name: String, value: String)]) -> String? {
        for header in headers where header.name.lowercased() == "cookie" {
            for part in header.value.split(separator: ";") {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == name {
                    return pair[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}
