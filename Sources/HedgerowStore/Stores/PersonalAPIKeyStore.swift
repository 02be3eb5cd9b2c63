import Foundation
import HedgerowCore

/// Personal API keys, stored by hash.
package struct PersonalAPIKeyStore: Sendable {
    package init() {}

    static let columns =
        "id, user_id, label, secure_value, mask_value, scopes, scoped_teams, scoped_organizations, created_at, last_used_at, last_rolled_at"

    static func decode(_ row: SQLRow) throws -> PersonalAPIKey {
        let scopes = try StringList.decode(try row.decodeString("scopes")).compactMap(Scope.init)
        let scopedTeams = try row.string("scoped_teams").map { try StringList.decode($0).compactMap { Int64($0) } }
        let scopedOrganizations = try row.string("scoped_organizations").map(StringList.decode)
        return PersonalAPIKey(
            id: try row.decodeString("id"), userID: try row.decodeInt("user_id"), label: try row.decodeString("label"),
            secureValue: try row.decodeString("secure_value"), maskValue: try row.decodeString("mask_value"),
            scopes: scopes, scopedTeams: scopedTeams, scopedOrganizations: scopedOrganizations,
            createdAt: try row.decodeTimestamp("created_at"), lastUsedAt: row.timestamp("last_used_at"),
            lastRolledAt: row.timestamp("last_rolled_at"))
    }

    package func insert(_ key: PersonalAPIKey, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            INSERT INTO personal_api_keys (id, user_id, label, secure_value, mask_value, scopes, scoped_teams,
                scoped_organizations, created_at, last_used_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            [
                .text(key.id), .int(key.userID), .text(key.label), .text(key.secureValue), .text(key.maskValue),
                .text(StringList.encode(key.scopes.map(\.description))),
                SQLValue(key.scopedTeams.map { StringList.encode($0.map(String.init)) }),
                SQLValue(key.scopedOrganizations.map(StringList.encode)),
                SQLValue(key.createdAt), SQLValue(key.lastUsedAt),
            ])
    }

    /// The key and user columns of `findActive`, user columns prefixed with `user_`.
    static let keyAndUserColumns: String = {
        let keyColumns = columns.split(separator: ",").map { "k." + $0.trimmingCharacters(in: .whitespaces) }
        let userColumns = UserStore.columns.split(separator: ",").map {
            let name = $0.trimmingCharacters(in: .whitespaces)
            return "u.\(name) AS user_\(name)"
        }
        return (keyColumns + userColumns).joined(separator: ", ")
    }()

    /// The key with this hash together with its user, when the user is active.
    package func findActive(secureValue: String, on connection: any SQLConnection) async throws -> (PersonalAPIKey, User)? {
        try await findActiveWithGeneration(secureValue: secureValue, on: connection).map { ($0.key, $0.user) }
    }

    /// `findActive` with the credentials generation the same statement saw (one snapshot: the key
    /// and user are what they were at that generation).
    package func findActiveWithGeneration(
        secureValue: String, on connection: any SQLConnection
    ) async throws -> (key: PersonalAPIKey, user: User, generation: Int64)? {
        guard
            let row = try await connection.first(
                """
                SELECT \(Self.keyAndUserColumns), (SELECT value FROM credentials_generation WHERE id = 1) AS generation
                FROM personal_api_keys k
                JOIN users u ON u.id = k.user_id WHERE k.secure_value = $1 AND u.is_active = $2
                """, [.text(secureValue), .bool(true)])
        else { return nil }
        let userRow = SQLRow(
            columns: row.columns.map { $0.hasPrefix("user_") ? String($0.dropFirst(5)) : "_" + $0 }, values: row.values)
        return (try Self.decode(row), try UserStore.decode(userRow), row.int("generation") ?? 0)
    }

    package func list(userID: Int64, on connection: any SQLConnection) async throws -> [PersonalAPIKey] {
        try await connection.query(
            "SELECT \(Self.columns) FROM personal_api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC", [.int(userID)]
        ).map(Self.decode)
    }

    package func find(id: String, userID: Int64, on connection: any SQLConnection) async throws -> PersonalAPIKey? {
        try await connection.first(
            "SELECT \(Self.columns) FROM personal_api_keys WHERE id = $1 AND user_id = $2", [.text(id), .int(userID)]
        ).map(Self.decode)
    }

    /// Writes label, scopes, limits, value hash and roll time.
    package func update(_ key: PersonalAPIKey, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            UPDATE personal_api_keys SET label = $2, scopes = $3, scoped_teams = $4, scoped_organizations = $5,
                secure_value = $6, mask_value = $7, last_rolled_at = $8
            WHERE id = $1
            """,
            [
                .text(key.id), .text(key.label), .text(StringList.encode(key.scopes.map(\.description))),
                SQLValue(key.scopedTeams.map { StringList.encode($0.map(String.init)) }),
                SQLValue(key.scopedOrganizations.map(StringList.encode)), .text(key.secureValue), .text(key.maskValue),
                SQLValue(key.lastRolledAt),
            ])
        try await CredentialsGeneration.advance(on: connection)
    }

    package func delete(id: String, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM personal_api_keys WHERE id = $1", [.text(id)])
        try await CredentialsGeneration.advance(on: connection)
    }

    package func touch(id: String, at time: Timestamp, on connection: any SQLConnection) async throws {
        try await connection.execute("UPDATE personal_api_keys SET last_used_at = $2 WHERE id = $1", [.text(id), SQLValue(time)])
    }

    package func count(userID: Int64, on connection: any SQLConnection) async throws -> Int {
        Int(try await connection.first("SELECT COUNT(*) AS n FROM personal_api_keys WHERE user_id = $1", [.int(userID)])?.int("n") ?? 0)
    }
}

/// Lists of strings stored as JSON arrays in a TEXT column.
enum StringList {
    static func encode(_ strings: [String]) -> String {
        JSONWriter.string(.array(strings.map(JSONValue.string)))
    }

    static func decode(_ text: String) throws -> [String] {
        guard case .array(let elements) = try JSONParser.parse(text) else { return [] }
        return elements.compactMap { element in
            switch element {
            case .string(let string): string
            case .int(let integer): String(integer)
            default: nil
            }
        }
    }
}
