import HedgerowCore

/// Integrations (credentials an environment's destinations refer to). Their secrets arrive
/// sealed: the store never sees them in the clear.
package struct IntegrationStore: Sendable {
    package init() {}

    package struct Row: Sendable {
        package var integration: Integration
        package var sealedSecrets: String?
    }

    static let columns = "id, team_id, kind, config, sensitive_config, errors, created_at, created_by_id"

    static func decode(_ row: SQLRow) throws -> Row {
        guard let kind = IntegrationKind(rawValue: try row.decodeString("kind")) else {
            throw SQLDecodingError(column: "integrations.kind", expected: "a known kind")
        }
        let integration = Integration(
            id: try row.decodeInt("id"), teamID: try row.decodeInt("team_id"), kind: kind,
            config: (try JSONParser.parse(try row.decodeString("config"))).objectValue ?? JSONObject(),
            errors: row.string("errors") ?? "", createdAt: try row.decodeTimestamp("created_at"), createdByID: row.int("created_by_id"))
        return Row(integration: integration, sealedSecrets: row.string("sensitive_config"))
    }

    /// Stores a new integration with the next id of the `integration` sequence; returns it.
    package func insert(
        teamID: Int64, kind: IntegrationKind, config: JSONObject, sealedSecrets: String?, createdAt: Timestamp, createdByID: Int64?,
        on connection: any SQLConnection
    ) async throws -> Integration {
        let id = try await Sequences.next("integration", on: connection)
        try await connection.execute(
            "INSERT INTO integrations (\(Self.columns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                .int(id), .int(teamID), .text(kind.rawValue), .text(JSONWriter.string(.object(config))), SQLValue(sealedSecrets),
                .text(""), SQLValue(createdAt), SQLValue(createdByID),
            ])
        return Integration(id: id, teamID: teamID, kind: kind, config: config, createdAt: createdAt, createdByID: createdByID)
    }

    package func find(id: Int64, teamID: Int64, on connection: any SQLConnection) async throws -> Row? {
        try await connection.first(
            "SELECT \(Self.columns) FROM integrations WHERE id = $1 AND team_id = $2", [.int(id), .int(teamID)]
        ).map(Self.decode)
    }

    /// One page of an environment's integrations, newest first, and how many there are.
    package func page(
        teamID: Int64, kind: IntegrationKind?, limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws -> (count: Int, page: [Integration]) {
        var filter = "team_id = $1"
        var binds: [SQLValue] = [.int(teamID)]
        if let kind {
            filter += " AND kind = $2"
            binds.append(.text(kind.rawValue))
        }
        let count = try await connection.first("SELECT COUNT(*) AS n FROM integrations WHERE \(filter)", binds)?.decodeInt("n") ?? 0
        let rows = try await connection.query(
            "SELECT \(Self.columns) FROM integrations WHERE \(filter) ORDER BY id DESC LIMIT \(limit) OFFSET \(offset)", binds)
        return (Int(count), try rows.map { try Self.decode($0).integration })
    }

    package func delete(id: Int64, teamID: Int64, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM integrations WHERE id = $1 AND team_id = $2", [.int(id), .int(teamID)])
    }
}
