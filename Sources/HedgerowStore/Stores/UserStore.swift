import HedgerowCore

/// Users.
package struct UserStore: Sendable {
    package init() {}

    static let columns =
        "id, uuid, email, first_name, last_name, is_active, current_organization_id, current_team_id, created_at"

    /// The columns with a table alias, for joins.
    static func columns(qualifiedBy alias: String) -> String {
        columns.split(separator: ",").map { alias + "." + $0.drop(while: { $0 == " " }) }.joined(separator: ", ")
    }

    static func decode(_ row: SQLRow) throws -> User {
        User(
            id: try row.decodeInt("id"), uuid: try row.decodeString("uuid"), email: try row.decodeString("email"),
            firstName: try row.decodeString("first_name"), lastName: try row.decodeString("last_name"),
            isActive: try row.decodeBool("is_active"), currentOrganizationID: row.string("current_organization_id"),
            currentTeamID: row.int("current_team_id"), createdAt: try row.decodeTimestamp("created_at"))
    }

    package func insert(_ user: User, passwordHash: String, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            INSERT INTO users (id, uuid, email, first_name, last_name, password_hash, is_active,
                current_organization_id, current_team_id, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            [
                .int(user.id), .text(user.uuid), .text(user.email), .text(user.firstName), .text(user.lastName),
                .text(passwordHash), .bool(user.isActive), SQLValue(user.currentOrganizationID),
                SQLValue(user.currentTeamID), SQLValue(user.createdAt),
            ])
    }

    /// The stored password hash of a user (Django's format, or `!` for none).
    package func passwordHash(userID: Int64, on connection: any SQLConnection) async throws -> String? {
        try await connection.first("SELECT password_hash FROM users WHERE id = $1", [.int(userID)])?.string("password_hash")
    }

    package func setPasswordHash(_ hash: String, userID: Int64, on connection: any SQLConnection) async throws {
        try await connection.execute("UPDATE users SET password_hash = $2 WHERE id = $1", [.int(userID), .text(hash)])
    }

    package func find(id: Int64, on connection: any SQLConnection) async throws -> User? {
        try await connection.first("SELECT \(Self.columns) FROM users WHERE id = $1", [.int(id)]).map(Self.decode)
    }

    package func find(email: String, on connection: any SQLConnection) async throws -> User? {
        try await connection.first("SELECT \(Self.columns) FROM users WHERE email = $1", [.text(email.lowercased())])
            .map(Self.decode)
    }

    package func count(on connection: any SQLConnection) async throws -> Int64 {
        try await connection.first("SELECT COUNT(*) AS n FROM users")?.int("n") ?? 0
    }

    package func setCurrent(userID: Int64, organizationID: String?, teamID: Int64?, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "UPDATE users SET current_organization_id = $1, current_team_id = $2 WHERE id = $3",
            [SQLValue(organizationID), SQLValue(teamID), .int(userID)])
        try await CredentialsGeneration.advance(on: connection)
    }

    /// Users whose current organization is `organizationID`.
    package func usersWithCurrentOrganization(_ organizationID: String, on connection: any SQLConnection) async throws -> [User] {
        try await connection.query(
            "SELECT \(Self.columns) FROM users WHERE current_organization_id = $1 ORDER BY id", [.text(organizationID)]
        ).map(Self.decode)
    }

    package func updateNames(userID: Int64, firstName: String, lastName: String, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "UPDATE users SET first_name = $2, last_name = $3 WHERE id = $1", [.int(userID), .text(firstName), .text(lastName)])
        try await CredentialsGeneration.advance(on: connection)
    }

    /// Users whose current environment is `teamID`.
    package func usersWithCurrentTeam(_ teamID: Int64, on connection: any SQLConnection) async throws -> [User] {
        try await connection.query("SELECT \(Self.columns) FROM users WHERE current_team_id = $1 ORDER BY id", [.int(teamID)])
            .map(Self.decode)
    }
}
