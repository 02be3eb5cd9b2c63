import HedgerowCore
import HedgerowStore

/// What a caller reaches through a nested route, and at which level.
struct OrganizationAccess: Sendable {
    var organization: Organization
    var level: MembershipLevel
}

/// An environment (or a project, through its main environment) and the caller's level in its
/// organization.
package struct EnvironmentAccess: Sendable {
    package var environment: Environment
    package var organization: Organization
    package var level: MembershipLevel
}

/// Resolves the parent of a nested route and applies the access rules of docs/api.md (Personal API keys, Batch exports):
/// unknown parent → 404, parent of another organization → 403, key limits (`scoped_organizations`,
/// `scoped_teams`) → 403 naming the id, `members_can_use_personal_api_keys` → 403.
struct AccessService: Sendable {
    let organizations = OrganizationStore()
    let teams = TeamStore()

    init() {}

    /// `/api/organizations/{organization_id}/...` (projects, members, batch exports).
    func organization(
        _ rawID: String, principal: Principal, on connection: any SQLConnection
    ) async throws
        -> OrganizationAccess
    {
        let id: String
        if rawID == "@current" {
            guard let current = principal.user.currentOrganizationID else { throw APIError.notFound("Organization not found.") }
            id = current
        } else {
            guard let canonical = Identifiers.canonicalUUID(rawID) else { throw APIError.notFound("Organization not found.") }
            id = canonical
        }
        guard let organization = try await organizations.findByID(id, on: connection) else {
            throw APIError.notFound("Organization not found.")
        }
        if let scoped = principal.scopedOrganizations, !scoped.contains(id) {
            throw APIError.permissionDenied("API key does not have access to the requested organization: ID \(id).")
        }
        guard let level = try await organizations.membershipLevel(organizationID: id, userID: principal.user.id, on: connection)
        else { throw APIError.permissionDenied() }
        try OrganizationService.checkKeyPolicy(organization, level: level, principal: principal)
        return OrganizationAccess(organization: organization, level: level)
    }

    /// `/api/environments/{id}/...` (`@current`: the caller's current environment).
    /// The environment an environment-scoped route names (persons, integrations): the
    /// environment itself, or a project's main environment.
    func environmentID(
        _ parent: EnvironmentParent, principal: Principal, on connection: any SQLConnection
    ) async throws -> Int64 {
        switch parent {
        case .project(let id): try await project(id, principal: principal, on: connection).1.environment.id
        case .environment(let id): try await environment(id, principal: principal, on: connection).environment.id
        }
    }

    func environment(
        _ rawID: String, principal: Principal, on connection: any SQLConnection
    ) async throws
        -> EnvironmentAccess
    {
        let resolved = rawID == "@current" ? principal.user.currentTeamID : Int64(rawID)
        guard let id = resolved, id > 0, let environment = try await teams.environment(id: id, on: connection) else {
            throw APIError.notFound()
        }
        return try await access(to: environment, teamID: environment.id, principal: principal, on: connection)
    }

    /// `/api/projects/{project_id}/...` (`@current`: the caller's current project): the project's
    /// main environment stands for it.
    func project(
        _ rawID: String, principal: Principal, on connection: any SQLConnection
    ) async throws
        -> (Project, EnvironmentAccess)
    {
        var resolved = Int64(rawID)
        if rawID == "@current", let team = principal.user.currentTeamID {
            // The caller's current environment stands for its project.
            resolved = try await teams.environment(id: team, on: connection)?.projectID
        }
        guard let id = resolved, id > 0, let project = try await teams.project(id: id, on: connection),
            let main = try await teams.environment(id: project.id, on: connection)
        else { throw APIError.notFound() }
        return (project, try await access(to: main, teamID: project.id, principal: principal, on: connection))
    }

    func access(
        to environment: Environment, teamID: Int64, principal: Principal, on connection: any SQLConnection
    ) async throws
        -> EnvironmentAccess
    {
        if let scopedTeams = principal.scopedTeams, !scopedTeams.contains(teamID) {
            throw APIError.permissionDenied("API key does not have access to the requested project: ID \(teamID).")
        }
        if let scoped = principal.scopedOrganizations, !scoped.contains(environment.organizationID) {
            throw APIError.permissionDenied(
                "API key does not have access to the requested organization: ID \(environment.organizationID).")
        }
        guard
            let organization = try await organizations.findByID(environment.organizationID, on: connection),
            let level = try await organizations.membershipLevel(
                organizationID: environment.organizationID, userID: principal.user.id, on: connection)
        else { throw APIError.permissionDenied() }
        try OrganizationService.checkKeyPolicy(organization, level: level, principal: principal)
        return EnvironmentAccess(environment: environment, organization: organization, level: level)
    }
}

/// Where an environment-scoped route points (`/api/environments/{id}/…` or `/api/projects/{id}/…`):
/// an environment, or a project (its main environment).
enum EnvironmentParent: Sendable {
    case project(String)
    case environment(String)
}
