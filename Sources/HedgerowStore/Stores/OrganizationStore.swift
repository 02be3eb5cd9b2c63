import Foundation
import HedgerowCore

/// Organizations and their memberships.
package struct OrganizationStore: Sendable {
    package init() {}

    static let columns = """
        o.id, o.name, o.slug, o.logo_media_id, o.created_at, o.updated_at, o.is_member_join_email_enabled,
        o.enforce_2fa, o.members_can_invite, o.members_can_use_personal_api_keys, o.allow_publicly_shared_resources,
        o.is_ai_data_processing_approved, o.default_experiment_stats_method, o.default_role_id,
        o.environments_rollback_requested_at
        """

    static func decode(_ row: SQLRow) throws -> Organization {
        var organization = Organization(
            id: try row.decodeString("id"), name: try row.decodeString("name"), slug: try row.decodeString("slug"),
            createdAt: try row.decodeTimestamp("created_at"))
        organization.logoMediaID = row.string("logo_media_id")
        organization.updatedAt = try row.decodeTimestamp("updated_at")
        organization.isMemberJoinEmailEnabled = try row.decodeBool("is_member_join_email_enabled")
        organization.enforce2FA = row.bool("enforce_2fa")
        organization.membersCanInvite = try row.decodeBool("members_can_invite")
        organization.membersCanUsePersonalAPIKeys = try row.decodeBool("members_can_use_personal_api_keys")
        organization.allowPubliclySharedResources = try row.decodeBool("allow_publicly_shared_resources")
        organization.isAIDataProcessingApproved = row.bool("is_ai_data_processing_approved")
        organization.defaultExperimentStatsMethod = row.string("default_experiment_stats_method")
        organization.defaultRoleID = row.string("default_role_id")
        organization.environmentsRollbackRequestedAt = row.timestamp("environments_rollback_requested_at")
        return organization
    }

    // MARK: Details (one query: organization, level, member count, projects, environments)

    static func detailsColumns(_ dialect: SQLDialect) -> String {
        let projects = dialect.jsonArray(
            columns: ["id", "name", "created_at", "updated_at"], from: "projects", where: "a.organization_id = o.id", orderBy: "a.id")
        let environments = dialect.jsonArray(
            columns: [
                "id", "uuid", "project_id", "name", "api_token", "timezone", "ingested_event", "completed_snippet_onboarding",
                "is_demo", "created_at", "updated_at",
            ], from: "teams", where: "a.organization_id = o.id", orderBy: "a.id")
        return """
            \(columns), m.level AS membership_level,
            (SELECT COUNT(*) FROM organization_memberships mc JOIN users uc ON uc.id = mc.user_id
                WHERE mc.organization_id = o.id AND uc.is_active = TRUE) AS member_count,
            \(projects) AS projects_json, \(environments) AS environments_json
            """
    }

    static let sqliteDetailsColumns = detailsColumns(.sqlite)
    static let postgresDetailsColumns = detailsColumns(.postgres)

    static func detailsColumns(for connection: any SQLConnection) -> String {
        connection.dialect == .sqlite ? sqliteDetailsColumns : postgresDetailsColumns
    }

    /// The organization `$1` as user `$2`, a member, sees it; on SQLite with the details generation
    /// read by the same statement. Built once: the SQL is a kilobyte, and a request reads it.
    static let sqliteOneDetails =
        "SELECT \(sqliteDetailsColumns), \(DetailsGeneration.column) \(oneMembersDetails)"
    static let postgresOneDetails = "SELECT \(postgresDetailsColumns) \(oneMembersDetails)"
    static let oneMembersDetails =
        "FROM organizations o JOIN organization_memberships m ON m.organization_id = o.id AND m.user_id = $2 WHERE o.id = $1"

    /// An organization as a member sees it, or nil when `memberUserID` is not a member.
    package func findDetails(id: String, memberUserID: Int64, on connection: any SQLConnection) async throws -> OrganizationDetails? {
        try await findDetailsWithGeneration(id: id, memberUserID: memberUserID, on: connection)?.details
    }

    /// `findDetails`, with the details generation the same statement read (nil on PostgreSQL).
    package func findDetailsWithGeneration(
        id: String, memberUserID: Int64, on connection: any SQLConnection
    ) async throws -> (details: OrganizationDetails, generation: Int64?)? {
        let sqlite = connection.dialect == .sqlite
        guard
            let row = try await connection.first(
                sqlite ? Self.sqliteOneDetails : Self.postgresOneDetails, [.text(id), .int(memberUserID)])
        else { return nil }
        return (try Self.decodeDetails(row), sqlite ? try row.decodeInt("details_generation") : nil)
    }

    /// A page of the organizations a user belongs to, oldest first, optionally limited to `ids`.
    package func listDetailsForMember(
        userID: Int64, restrictedTo ids: [String]?, limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws -> (count: Int, page: [OrganizationDetails]) {
        var filter = ""
        var binds: [SQLValue] = [.int(userID)]
        if let ids {
            if ids.isEmpty { return (0, []) }
            filter = " AND o.id IN (" + ids.indices.map { "$\($0 + 2)" }.joined(separator: ", ") + ")"
            binds += ids.map(SQLValue.text)
        }
        let from = "FROM organizations o JOIN organization_memberships m ON m.organization_id = o.id AND m.user_id = $1"
        let count = try await connection.first("SELECT COUNT(*) AS n \(from)\(filter)", binds)?.int("n") ?? 0
        if count == 0 || offset >= count { return (Int(count), []) }
        let rows = try await connection.query(
            "SELECT \(Self.detailsColumns(for: connection)) \(from)\(filter) ORDER BY o.created_at, o.id LIMIT \(limit) OFFSET \(offset)",
            binds)
        return (Int(count), try rows.map(Self.decodeDetails))
    }

    static func decodeDetails(_ row: SQLRow) throws -> OrganizationDetails {
        let organization = try decode(row)
        let projects = try jsonRows(row, "projects_json").map { object in
            Project(
                id: try object.int("id"), organizationID: organization.id, name: try object.string("name"),
                createdAt: Timestamp(microseconds: try object.int("created_at")),
                updatedAt: Timestamp(microseconds: try object.int("updated_at")))
        }
        let environments = try jsonRows(row, "environments_json").map { object in
            Environment(
                id: try object.int("id"), uuid: try object.string("uuid"), organizationID: organization.id,
                projectID: try object.int("project_id"), name: try object.string("name"), apiToken: try object.string("api_token"),
                timezone: try object.string("timezone"), ingestedEvent: try object.bool("ingested_event"),
                completedSnippetOnboarding: try object.bool("completed_snippet_onboarding"), isDemo: try object.bool("is_demo"),
                createdAt: Timestamp(microseconds: try object.int("created_at")),
                updatedAt: Timestamp(microseconds: try object.int("updated_at")))
        }
        return OrganizationDetails(
            organization: organization, membershipLevel: try level(row), projects: projects, environments: environments,
            memberCount: Int(try row.decodeInt("member_count")))
    }

    static func jsonRows(_ row: SQLRow, _ column: String) throws -> [JSONRow] {
        guard case .array(let elements) = try JSONParser.parse(try row.decodeString(column)) else {
            throw SQLDecodingError(column: column, expected: "a JSON array")
        }
        return try elements.map { element in
            guard case .object(let object) = element else { throw SQLDecodingError(column: column, expected: "JSON objects") }
            return JSONRow(column: column, object: object)
        }
    }

    package func insert(_ organization: Organization, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            INSERT INTO organizations (id, name, slug, logo_media_id, created_at, updated_at, is_member_join_email_enabled,
                enforce_2fa, members_can_invite, members_can_use_personal_api_keys, allow_publicly_shared_resources,
                is_ai_data_processing_approved, default_experiment_stats_method, default_role_id,
                environments_rollback_requested_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            """, Self.binds(organization))
    }

    package func update(_ organization: Organization, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            UPDATE organizations SET name = $2, slug = $3, logo_media_id = $4, created_at = $5, updated_at = $6,
                is_member_join_email_enabled = $7, enforce_2fa = $8, members_can_invite = $9,
                members_can_use_personal_api_keys = $10, allow_publicly_shared_resources = $11,
                is_ai_data_processing_approved = $12, default_experiment_stats_method = $13, default_role_id = $14,
                environments_rollback_requested_at = $15
            WHERE id = $1
            """, Self.binds(organization))
    }

    static func binds(_ organization: Organization) -> [SQLValue] {
        [
            .text(organization.id), .text(organization.name), .text(organization.slug), SQLValue(organization.logoMediaID),
            SQLValue(organization.createdAt), SQLValue(organization.updatedAt), .bool(organization.isMemberJoinEmailEnabled),
            SQLValue(organization.enforce2FA), .bool(organization.membersCanInvite),
            .bool(organization.membersCanUsePersonalAPIKeys), .bool(organization.allowPubliclySharedResources),
            SQLValue(organization.isAIDataProcessingApproved), SQLValue(organization.defaultExperimentStatsMethod),
            SQLValue(organization.defaultRoleID), SQLValue(organization.environmentsRollbackRequestedAt),
        ]
    }

    package func delete(id: String, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM organizations WHERE id = $1", [.text(id)])
        // Members whose current organization it was lose it (ON DELETE SET NULL): their rows changed.
        try await CredentialsGeneration.advance(on: connection)
    }

    package func slugExists(_ slug: String, on connection: any SQLConnection) async throws -> Bool {
        try await connection.first("SELECT 1 AS x FROM organizations WHERE slug = $1", [.text(slug)]) != nil
    }

    /// An organization with the given user's membership level in it, or nil when the user is not a member.
    package func find(id: String, memberUserID: Int64, on connection: any SQLConnection) async throws -> (Organization, MembershipLevel)? {
        guard
            let row = try await connection.first(
                """
                SELECT \(Self.columns), m.level AS membership_level FROM organizations o
                JOIN organization_memberships m ON m.organization_id = o.id AND m.user_id = $2
                WHERE o.id = $1
                """, [.text(id), .int(memberUserID)])
        else { return nil }
        return (try Self.decode(row), try Self.level(row))
    }

    static func level(_ row: SQLRow) throws -> MembershipLevel {
        guard let level = MembershipLevel(rawValue: Int(try row.decodeInt("membership_level"))) else {
            throw SQLDecodingError(column: "membership_level", expected: "1, 8 or 15")
        }
        return level
    }

    // MARK: Memberships

    package func insertMembership(_ membership: Membership, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            INSERT INTO organization_memberships (id, organization_id, user_id, level, joined_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            """,
            [
                .text(membership.id), .text(membership.organizationID), .int(membership.userID),
                .int(Int64(membership.level.rawValue)), SQLValue(membership.joinedAt), SQLValue(membership.updatedAt),
            ])
    }

    package func membershipLevel(organizationID: String, userID: Int64, on connection: any SQLConnection) async throws -> MembershipLevel? {
        try await connection.first(
            "SELECT level FROM organization_memberships WHERE organization_id = $1 AND user_id = $2",
            [.text(organizationID), .int(userID)]
        ).flatMap { $0.int("level") }.flatMap { MembershipLevel(rawValue: Int($0)) }
    }

    package func setMembershipLevel(
        organizationID: String, userID: Int64, level: MembershipLevel, at time: Timestamp, on connection: any SQLConnection
    ) async throws {
        try await connection.execute(
            "UPDATE organization_memberships SET level = $3, updated_at = $4 WHERE organization_id = $1 AND user_id = $2",
            [.text(organizationID), .int(userID), .int(Int64(level.rawValue)), SQLValue(time)])
    }

    /// The ids of the organizations a user belongs to, oldest membership first.
    package func organizationIDs(ofUser userID: Int64, on connection: any SQLConnection) async throws -> [String] {
        try await connection.query(
            "SELECT organization_id FROM organization_memberships WHERE user_id = $1 ORDER BY joined_at, id", [.int(userID)]
        ).map { try $0.decodeString("organization_id") }
    }

    /// A membership with its user.
    package struct Member: Sendable {
        package var membership: Membership
        package var user: User
    }

    static let memberColumns =
        "m.id AS membership_id, m.organization_id, m.user_id, m.level, m.joined_at, m.updated_at, "
        + UserStore.columns.split(separator: ",").map { "u." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")

    static func decodeMember(_ row: SQLRow) throws -> Member {
        guard let level = MembershipLevel(rawValue: Int(try row.decodeInt("level"))) else {
            throw SQLDecodingError(column: "level", expected: "1, 8 or 15")
        }
        let membership = Membership(
            id: try row.decodeString("membership_id"), organizationID: try row.decodeString("organization_id"),
            userID: try row.decodeInt("user_id"), level: level, joinedAt: try row.decodeTimestamp("joined_at"),
            updatedAt: try row.decodeTimestamp("updated_at"))
        return Member(membership: membership, user: try UserStore.decode(row))
    }

    /// Members of an organization: by level, then newest first (PostHog's order).
    package func memberPage(
        organizationID: String, limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws
        -> (count: Int, page: [Member])
    {
        let count =
            try await connection.first(
                "SELECT COUNT(*) AS n FROM organization_memberships WHERE organization_id = $1", [.text(organizationID)])?.int("n") ?? 0
        let rows = try await connection.query(
            """
            SELECT \(Self.memberColumns) FROM organization_memberships m JOIN users u ON u.id = m.user_id
            WHERE m.organization_id = $1 ORDER BY m.level, m.joined_at DESC, m.id DESC LIMIT \(limit) OFFSET \(offset)
            """, [.text(organizationID)])
        return (Int(count), try rows.map(Self.decodeMember))
    }

    package func member(organizationID: String, userUUID: String, on connection: any SQLConnection) async throws -> Member? {
        try await connection.first(
            """
            SELECT \(Self.memberColumns) FROM organization_memberships m JOIN users u ON u.id = m.user_id
            WHERE m.organization_id = $1 AND u.uuid = $2
            """, [.text(organizationID), .text(userUUID)]
        ).map(Self.decodeMember)
    }

    package func deleteMembership(organizationID: String, userID: Int64, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "DELETE FROM organization_memberships WHERE organization_id = $1 AND user_id = $2", [.text(organizationID), .int(userID)])
    }

    package func ownerCount(organizationID: String, on connection: any SQLConnection) async throws -> Int {
        Int(
            try await connection.first(
                "SELECT COUNT(*) AS n FROM organization_memberships WHERE organization_id = $1 AND level = $2",
                [.text(organizationID), .int(Int64(MembershipLevel.owner.rawValue))])?.int("n") ?? 0)
    }

    /// The organizations a user belongs to with their level, oldest membership first.
    package func memberships(ofUser userID: Int64, on connection: any SQLConnection) async throws -> [(Organization, MembershipLevel)] {
        try await connection.query(
            """
            SELECT \(Self.columns), m.level AS membership_level FROM organizations o
            JOIN organization_memberships m ON m.organization_id = o.id AND m.user_id = $1 ORDER BY m.joined_at, m.id
            """, [.int(userID)]
        ).map { (try Self.decode($0), try Self.level($0)) }
    }

    package func findByID(_ id: String, on connection: any SQLConnection) async throws -> Organization? {
        try await connection.first("SELECT \(Self.columns) FROM organizations o WHERE o.id = $1", [.text(id)]).map(Self.decode)
    }
}
