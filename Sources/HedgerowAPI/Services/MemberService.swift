import HedgerowCore
import HedgerowStore

/// Organization members (docs/api.md, Members and users), with PostHog's rules: nobody changes their own level, only
/// an owner passes on ownership (and becomes an admin), admins edit only members at or below their
/// own level, anyone may leave, and the last owner can neither leave nor be removed.
package struct MemberService: Sendable {
    let database: any Database
    let access = AccessService()
    let organizations = OrganizationStore()
    let teams = TeamStore()
    let users = UserStore()

    package init(database: any Database) { self.database = database }

    package func list(
        organizationID: String, principal: Principal, limit: Int, offset: Int
    ) async throws
        -> (count: Int, page: [OrganizationStore.Member])
    {
        try await database.read { connection in
            let organization = try await access.organization(organizationID, principal: principal, on: connection)
            return try await organizations.memberPage(
                organizationID: organization.organization.id, limit: limit, offset: offset, on: connection)
        }
    }

    /// 404 when the member does not exist; 403 when the caller may not edit them.
    package func checkCanEdit(organizationID: String, userUUID: String, principal: Principal) async throws {
        try await database.read { connection in
            _ = try await editable(organizationID: organizationID, userUUID: userUUID, principal: principal, on: connection)
        }
    }

    package func update(
        organizationID: String, userUUID: String, level: MembershipLevel?, principal: Principal
    ) async throws
        -> OrganizationStore.Member
    {
        try await database.transaction { connection in
            let (organization, requester, target) = try await editable(
                organizationID: organizationID, userUUID: userUUID, principal: principal, on: connection)
            guard let level else { return target }
            if target.user.id == principal.user.id {
                throw APIError.permissionDenied("You can't change your own access level.")
            }
            let now = Timestamp.now()
            if level == .owner {
                guard requester == .owner else {
                    throw APIError.permissionDenied("You can only pass on organization ownership if you're its owner.")
                }
                // Ownership is passed on: the previous owner becomes an admin.
                try await organizations.setMembershipLevel(
                    organizationID: organization.id, userID: principal.user.id, level: .admin, at: now, on: connection)
            } else if level > requester {
                throw APIError.permissionDenied("You can only change access level of others to lower or equal to your current one.")
            }
            try await organizations.setMembershipLevel(
                organizationID: organization.id, userID: target.user.id, level: level, at: now, on: connection)
            var updated = target
            updated.membership.level = level
            updated.membership.updatedAt = now
            return updated
        }
    }

    /// Removes a member, or lets the caller leave.
    package func remove(organizationID: String, userUUID: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let (organization, _, target) = try await editable(
                organizationID: organizationID, userUUID: userUUID, principal: principal, on: connection)
            if target.membership.level == .owner, try await organizations.ownerCount(organizationID: organization.id, on: connection) <= 1 {
                throw APIError.invalidInput(
                    "The last owner cannot leave or be removed. Pass on ownership to another member first.")
            }
            try await organizations.deleteMembership(organizationID: organization.id, userID: target.user.id, on: connection)
            if target.user.currentOrganizationID == organization.id {
                let next = try await organizations.organizationIDs(ofUser: target.user.id, on: connection).first
                let environment = try await next.asyncMap { try await teams.firstEnvironment(organizationID: $0, on: connection) }
                try await users.setCurrent(userID: target.user.id, organizationID: next, teamID: environment??.id, on: connection)
            }
        }
    }

    /// The member `userUUID` when the caller may edit or remove them: themselves, or — as an admin
    /// or owner — anyone at or below their own level.
    func editable(
        organizationID: String, userUUID: String, principal: Principal, on connection: any SQLConnection
    ) async throws
        -> (Organization, MembershipLevel, OrganizationStore.Member)
    {
        let organization = try await access.organization(organizationID, principal: principal, on: connection)
        let uuid: String
        if userUUID == "@me" {
            uuid = principal.user.uuid
        } else {
            guard let canonical = Identifiers.canonicalUUID(userUUID) else { throw APIError.notFound() }
            uuid = canonical
        }
        guard let target = try await organizations.member(organizationID: organization.organization.id, userUUID: uuid, on: connection)
        else { throw APIError.notFound() }
        if target.user.id != principal.user.id {
            guard organization.level >= .admin else {
                throw APIError.permissionDenied("You can only edit others if you are an admin.")
            }
            guard target.membership.level <= organization.level else {
                throw APIError.permissionDenied("You can only edit others with level lower or equal to you.")
            }
        }
        return (organization.organization, organization.level, target)
    }
}
