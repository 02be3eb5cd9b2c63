import HedgerowCore

/// Organization invites, with the user who made each.
package struct InviteStore: Sendable {
    package init() {}

    static let select = """
        SELECT i.id, i.organization_id, i.target_email, i.first_name, i.level, i.message, i.emailing_attempt_made,
            i.created_at, i.updated_at, u.id AS creator_id, u.uuid AS creator_uuid, u.email AS creator_email,
            u.first_name AS creator_first_name, u.last_name AS creator_last_name, u.is_active AS creator_is_active,
            u.created_at AS creator_created_at
        FROM organization_invites i LEFT JOIN users u ON u.id = i.created_by_id
        """

    static func decode(_ row: SQLRow) throws -> OrganizationInvite {
        var creator: User?
        if let id = row.int("creator_id") {
            creator = User(
                id: id, uuid: try row.decodeString("creator_uuid"), email: try row.decodeString("creator_email"),
                firstName: try row.decodeString("creator_first_name"), lastName: try row.decodeString("creator_last_name"),
                isActive: try row.decodeBool("creator_is_active"), currentOrganizationID: nil, currentTeamID: nil,
                createdAt: try row.decodeTimestamp("creator_created_at"))
        }
        return OrganizationInvite(
            id: try row.decodeString("id"), organizationID: try row.decodeString("organization_id"),
            targetEmail: try row.decodeString("target_email"), firstName: try row.decodeString("first_name"),
            level: MembershipLevel(rawValue: Int(try row.decodeInt("level"))) ?? .member, message: row.string("message"),
            emailingAttemptMade: try row.decodeBool("emailing_attempt_made"), createdBy: creator,
            createdAt: try row.decodeTimestamp("created_at"), updatedAt: try row.decodeTimestamp("updated_at"))
    }

    package func insert(_ invite: OrganizationInvite, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            INSERT INTO organization_invites (id, organization_id, target_email, first_name, level, message,
                emailing_attempt_made, created_by_id, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            [
                .text(invite.id), .text(invite.organizationID), .text(invite.targetEmail), .text(invite.firstName),
                .int(Int64(invite.level.rawValue)), SQLValue(invite.message), .bool(invite.emailingAttemptMade),
                SQLValue(invite.createdBy?.id), SQLValue(invite.createdAt), SQLValue(invite.updatedAt),
            ])
    }

    package func find(id: String, on connection: any SQLConnection) async throws -> OrganizationInvite? {
        try await connection.first(Self.select + " WHERE i.id = $1", [.text(id)]).map(Self.decode)
    }

    /// One page of an organization's invites, newest first, and how many there are.
    package func page(
        organizationID: String, limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws -> (count: Int, page: [OrganizationInvite]) {
        let count =
            try await connection.first(
                "SELECT COUNT(*) AS n FROM organization_invites WHERE organization_id = $1", [.text(organizationID)]
            )?.decodeInt("n") ?? 0
        let rows = try await connection.query(
            Self.select + " WHERE i.organization_id = $1 ORDER BY i.created_at DESC, i.id DESC LIMIT \(limit) OFFSET \(offset)",
            [.text(organizationID)])
        return (Int(count), try rows.map(Self.decode))
    }

    package func delete(id: String, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM organization_invites WHERE id = $1", [.text(id)])
    }

    /// Removes an organization's earlier invites for the same address (a new invite replaces them).
    package func deleteInvites(organizationID: String, targetEmail: String, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "DELETE FROM organization_invites WHERE organization_id = $1 AND LOWER(target_email) = LOWER($2)",
            [.text(organizationID), .text(targetEmail)])
    }
}
