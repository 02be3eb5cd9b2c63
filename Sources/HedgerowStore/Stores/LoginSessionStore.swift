import HedgerowCore

/// Console sign-in sessions. Only a hash of the session cookie's value is stored, as for keys.
package struct LoginSessionStore: Sendable {
    package init() {}

    package struct Row: Sendable {
        package var user: User
        package var csrfToken: String
        package var expiresAt: Timestamp
    }

    package func insert(
        tokenHash: String, userID: Int64, csrfToken: String, createdAt: Timestamp, expiresAt: Timestamp,
        on connection: any SQLConnection
    ) async throws {
        try await connection.execute(
            "INSERT INTO login_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            [.text(tokenHash), .int(userID), .text(csrfToken), SQLValue(createdAt), SQLValue(expiresAt)])
    }

    /// The session's active user and CSRF token, when it exists and has not expired.
    package func find(tokenHash: String, at now: Timestamp, on connection: any SQLConnection) async throws -> Row? {
        guard
            let row = try await connection.first(
                """
                SELECT s.csrf_token, s.expires_at, \(UserStore.columns(qualifiedBy: "u"))
                FROM login_sessions s JOIN users u ON u.id = s.user_id
                WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.is_active
                """, [.text(tokenHash), SQLValue(now)])
        else { return nil }
        return Row(
            user: try UserStore.decode(row), csrfToken: try row.decodeString("csrf_token"), expiresAt: try row.decodeTimestamp("expires_at")
        )
    }

    package func delete(tokenHash: String, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM login_sessions WHERE token_hash = $1", [.text(tokenHash)])
    }

    /// Ends every session of a user (a new password signs them out everywhere).
    package func deleteAll(userID: Int64, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM login_sessions WHERE user_id = $1", [.int(userID)])
    }

    package func deleteExpired(at now: Timestamp, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM login_sessions WHERE expires_at <= $1", [SQLValue(now)])
    }
}
