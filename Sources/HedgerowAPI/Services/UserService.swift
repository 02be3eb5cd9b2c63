import HedgerowCore
import HedgerowStore

/// The caller as a user: `GET/PATCH /api/users/@me/`.
package struct UserService: Sendable {
    let database: any Database
    let users = UserStore()
    let organizations = OrganizationStore()
    let teams = TeamStore()

    package init(database: any Database) { self.database = database }

    package struct Me: Sendable {
        package var user: User
        package var organization: OrganizationDetails?
        package var team: Environment?
        package var organizations: [(Organization, MembershipLevel)]
    }

    package func me(principal: Principal) async throws -> Me {
        try await database.read { connection in try await me(userID: principal.user.id, on: connection) }
    }

    package func update(input: UserInput, principal: Principal) async throws -> Me {
        try await database.transaction { connection in
            guard var user = try await users.find(id: principal.user.id, on: connection) else { throw APIError.notFound() }
            if let firstName = input.firstName { user.firstName = firstName }
            if let lastName = input.lastName { user.lastName = lastName }
            if input.firstName != nil || input.lastName != nil {
                try await users.updateNames(userID: user.id, firstName: user.firstName, lastName: user.lastName, on: connection)
            }
            var organizationID = user.currentOrganizationID
            var teamID = user.currentTeamID
            if let requested = input.currentOrganization {
                guard try await organizations.membershipLevel(organizationID: requested, userID: user.id, on: connection) != nil else {
                    throw APIError.validation(
                        "does_not_exist", "Object with id=\(requested) does not exist.", attr: "set_current_organization")
                }
                organizationID = requested
                teamID = try await teams.firstEnvironment(organizationID: requested, on: connection)?.id
            }
            if let requested = input.currentTeam {
                guard let environment = try await teams.environment(id: requested, on: connection),
                    try await organizations.membershipLevel(
                        organizationID: environment.organizationID, userID: user.id, on: connection) != nil
                else {
                    throw APIError.validation("does_not_exist", "Object with id=\(requested) does not exist.", attr: "set_current_team")
                }
                organizationID = environment.organizationID
                teamID = environment.id
            }
            if organizationID != user.currentOrganizationID || teamID != user.currentTeamID {
                try await users.setCurrent(userID: user.id, organizationID: organizationID, teamID: teamID, on: connection)
            }
            return try await me(userID: user.id, on: connection)
        }
    }

    func me(userID: Int64, on connection: any SQLConnection) async throws -> Me {
        guard let user = try await users.find(id: userID, on: connection) else { throw APIError.notFound() }
        let organization = try await user.currentOrganizationID.asyncMap {
            try await organizations.findDetails(id: $0, memberUserID: user.id, on: connection)
        }
        let team = try await user.currentTeamID.asyncMap { try await teams.environment(id: $0, on: connection) }
        return Me(
            user: user, organization: organization ?? nil, team: team ?? nil,
            organizations: try await organizations.memberships(ofUser: user.id, on: connection))
    }
}
