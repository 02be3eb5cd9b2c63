import HedgerowCore
import HedgerowStore

/// Projects and their environments (docs/api.md, Projects and environments): members read and edit, admins create and delete;
/// a project's main environment has the project's id and cannot be deleted on its own.
package struct ProjectService: Sendable {
    let database: any Database
    let access = AccessService()
    let teams = TeamStore()
    let users = UserStore()

    package init(database: any Database) { self.database = database }

    static func requireAdmin(_ level: MembershipLevel) throws(APIError) {
        guard level >= .admin else { throw APIError.permissionDenied("Your organization access level is insufficient.") }
    }

    // MARK: Projects (under an organization)

    /// The organization's projects with their main environments (PostHog lists projects by their
    /// basic fields, which are the main environment's).
    package func listProjects(
        organizationID: String, principal: Principal, limit: Int, offset: Int
    ) async throws
        -> (count: Int, page: [(Project, Environment)])
    {
        try await database.read { connection in
            let organization = try await access.organization(organizationID, principal: principal, on: connection)
            let (count, projects) = try await teams.projectPage(
                organizationID: organization.organization.id, limit: limit, offset: offset, on: connection)
            return (count, try await withMainEnvironments(projects, on: connection))
        }
    }

    /// Every project of an organization with all its environments (main first), in two statements:
    /// the console's switcher and organization page.
    package func projectsWithEnvironments(organizationID: String, principal: Principal) async throws -> [(Project, [Environment])] {
        try await database.read { connection in
            let organization = try await access.organization(organizationID, principal: principal, on: connection)
            let projects = try await teams.projectPage(
                organizationID: organization.organization.id, limit: Int(Int32.max), offset: 0, on: connection
            ).page
            let environments = Dictionary(
                grouping: try await teams.environments(organizationID: organization.organization.id, on: connection), by: \.projectID)
            return projects.map { ($0, environments[$0.id] ?? []) }
        }
    }

    package func createProject(
        organizationID: String, input: ProjectInput, principal: Principal
    ) async throws -> (Project, EnvironmentAccess) {
        try await database.transaction { connection in
            let organization = try await access.organization(organizationID, principal: principal, on: connection)
            try Self.requireAdmin(organization.level)
            guard let name = input.name else { throw APIError.required("name") }
            let now = Timestamp.now()
            let id = try await Sequences.next("team", on: connection)
            let project = Project(id: id, organizationID: organization.organization.id, name: name, createdAt: now, updatedAt: now)
            try await teams.insertProject(project, on: connection)
            let main = Self.newEnvironment(id: id, project: project, name: name, input: input, at: now)
            try await teams.insertEnvironment(main, on: connection)
            return (project, EnvironmentAccess(environment: main, organization: organization.organization, level: organization.level))
        }
    }

    func retrieveProject(
        organizationID: String, projectID: String, principal: Principal
    ) async throws -> (Project, EnvironmentAccess) {
        try await database.read { connection in
            try await project(organizationID: organizationID, projectID: projectID, principal: principal, on: connection)
        }
    }

    package func updateProject(
        organizationID: String, projectID: String, input: ProjectInput, principal: Principal
    ) async throws
        -> (Project, EnvironmentAccess)
    {
        try await database.transaction { connection in
            let (project, main) = try await project(
                organizationID: organizationID, projectID: projectID, principal: principal, on: connection)
            return try await update(project, main: main, input: input, on: connection)
        }
    }

    /// Deletes the project, its environments and everything in them.
    package func deleteProject(organizationID: String, projectID: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let (project, main) = try await project(
                organizationID: organizationID, projectID: projectID, principal: principal, on: connection)
            try Self.requireAdmin(main.level)
            let page = try await teams.environmentPage(projectID: project.id, limit: Int(Int32.max), offset: 0, on: connection)
            try await teams.deleteProject(id: project.id, on: connection)
            try await reassignCurrentTeam(from: page.page.map(\.id), organizationID: project.organizationID, on: connection)
        }
    }

    func project(
        organizationID: String, projectID: String, principal: Principal, on connection: any SQLConnection
    ) async throws
        -> (Project, EnvironmentAccess)
    {
        let organization = try await access.organization(organizationID, principal: principal, on: connection)
        guard let id = Int64(projectID), let project = try await teams.project(id: id, on: connection),
            project.organizationID == organization.organization.id,
            let main = try await teams.environment(id: project.id, on: connection)
        else { throw APIError.notFound() }
        return (project, EnvironmentAccess(environment: main, organization: organization.organization, level: organization.level))
    }

    /// Renames a project; a time zone goes to its main environment (PostHog's passthrough field).
    func update(
        _ project: Project, main: EnvironmentAccess, input: ProjectInput, on connection: any SQLConnection
    ) async throws -> (Project, EnvironmentAccess) {
        var (project, main) = (project, main)
        let now = Timestamp.now()
        if let name = input.name { project.name = name }
        project.updatedAt = now
        try await teams.updateProject(project, on: connection)
        if input.apply(to: &main.environment) {
            main.environment.updatedAt = now
            try await teams.updateEnvironment(main.environment, on: connection)
        }
        return (project, main)
    }

    func withMainEnvironments(_ projects: [Project], on connection: any SQLConnection) async throws -> [(Project, Environment)] {
        var page: [(Project, Environment)] = []
        for project in projects {
            guard let main = try await teams.environment(id: project.id, on: connection) else { continue }
            page.append((project, main))
        }
        return page
    }

    // MARK: Projects at the top level (`/api/projects/`, PostHog's current-organization routes)

    /// The projects of the caller's current organization that the key may see, with their main
    /// environments (empty when the caller has no current organization).
    func currentOrganizationProjects(
        principal: Principal, limit: Int, offset: Int
    ) async throws -> (count: Int, page: [(Project, Environment)]) {
        try await database.read { connection in
            guard let organizationID = principal.user.currentOrganizationID else { return (0, []) }
            let organization = try await access.organization(organizationID, principal: principal, on: connection)
            var projects = try await teams.projectPage(
                organizationID: organization.organization.id, limit: Int(Int32.max), offset: 0, on: connection
            ).page
            if let scoped = principal.scopedTeams { projects = projects.filter { scoped.contains($0.id) } }
            return (
                projects.count,
                try await withMainEnvironments(Array(projects.dropFirst(offset).prefix(limit)), on: connection)
            )
        }
    }

    /// A project by id (or `@current`) with its main environment, through the project access rules.
    package func project(id: String, principal: Principal) async throws -> (Project, EnvironmentAccess) {
        try await database.read { connection in
            try await access.project(id, principal: principal, on: connection)
        }
    }

    package func updateProject(id: String, input: ProjectInput, principal: Principal) async throws -> (Project, EnvironmentAccess) {
        try await database.transaction { connection in
            let (project, main) = try await access.project(id, principal: principal, on: connection)
            return try await update(project, main: main, input: input, on: connection)
        }
    }

    package func deleteProject(id: String, principal: Principal) async throws {
        let (project, _) = try await self.project(id: id, principal: principal)
        try await deleteProject(organizationID: project.organizationID, projectID: String(project.id), principal: principal)
    }

    /// An environment of a project (`/api/projects/{id}/environments/{environment_id}/`).
    package func environment(
        _ environmentID: String, ofProject projectID: String, principal: Principal
    ) async throws -> EnvironmentAccess {
        try await database.read { connection in
            let (project, _) = try await access.project(projectID, principal: principal, on: connection)
            let environment = try await access.environment(environmentID, principal: principal, on: connection)
            guard environment.environment.projectID == project.id else { throw APIError.notFound() }
            return environment
        }
    }

    // MARK: Environments

    func listEnvironments(
        projectID: String, principal: Principal, limit: Int, offset: Int
    ) async throws
        -> (count: Int, page: [Environment])
    {
        try await database.read { connection in
            let (project, _) = try await access.project(projectID, principal: principal, on: connection)
            // A key scoped to teams lists only those (their tokens are not the key's to see).
            return try await teams.environmentPage(
                projectID: project.id, within: principal.scopedTeams, limit: limit, offset: offset, on: connection)
        }
    }

    package func createEnvironment(projectID: String, input: ProjectInput, principal: Principal) async throws -> EnvironmentAccess {
        try await database.transaction { connection in
            let (project, main) = try await access.project(projectID, principal: principal, on: connection)
            try Self.requireAdmin(main.level)
            guard let name = input.name else { throw APIError.required("name") }
            let now = Timestamp.now()
            let environment = Self.newEnvironment(
                id: try await Sequences.next("team", on: connection), project: project, name: name, input: input, at: now)
            try await teams.insertEnvironment(environment, on: connection)
            return EnvironmentAccess(environment: environment, organization: main.organization, level: main.level)
        }
    }

    package func retrieveEnvironment(id: String, principal: Principal) async throws -> EnvironmentAccess {
        try await database.read { connection in
            try await access.environment(id, principal: principal, on: connection)
        }
    }

    package func updateEnvironment(id: String, input: ProjectInput, principal: Principal) async throws -> EnvironmentAccess {
        try await database.transaction { connection in
            var target = try await access.environment(id, principal: principal, on: connection)
            if let name = input.name { target.environment.name = name }
            input.apply(to: &target.environment)
            target.environment.updatedAt = Timestamp.now()
            try await teams.updateEnvironment(target.environment, on: connection)
            return target
        }
    }

    package func deleteEnvironment(id: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let target = try await access.environment(id, principal: principal, on: connection)
            try Self.requireAdmin(target.level)
            guard target.environment.id != target.environment.projectID else {
                throw APIError.invalidInput("The main environment of a project cannot be deleted. Delete the project instead.")
            }
            try await teams.deleteEnvironment(id: target.environment.id, on: connection)
            try await reassignCurrentTeam(from: [target.environment.id], organizationID: target.organization.id, on: connection)
        }
    }

    /// A new `phc_` project API token; the old one stops working at once.
    func resetToken(id: String, principal: Principal) async throws -> EnvironmentAccess {
        try await database.transaction { connection in
            var target = try await access.environment(id, principal: principal, on: connection)
            target.environment.apiToken = PersonalAPIKeyCodec.generateProjectToken()
            target.environment.updatedAt = Timestamp.now()
            try await teams.updateEnvironment(target.environment, on: connection)
            return target
        }
    }

    // MARK: Helpers

    static func newEnvironment(id: Int64, project: Project, name: String, input: ProjectInput, at now: Timestamp) -> Environment {
        var environment = Environment(
            id: id, uuid: Identifiers.uuidV7(at: now), organizationID: project.organizationID, projectID: project.id, name: name,
            apiToken: PersonalAPIKeyCodec.generateProjectToken(), timezone: "UTC", ingestedEvent: false,
            completedSnippetOnboarding: false, isDemo: false, createdAt: now, updatedAt: now)
        input.apply(to: &environment)
        return environment
    }

    /// Users whose current environment was deleted get the organization's first environment.
    func reassignCurrentTeam(from deleted: [Int64], organizationID: String, on connection: any SQLConnection) async throws {
        let replacement = try await teams.firstEnvironment(organizationID: organizationID, on: connection)
        for id in deleted {
            for user in try await users.usersWithCurrentTeam(id, on: connection) {
                try await users.setCurrent(
                    userID: user.id, organizationID: user.currentOrganizationID,
                    teamID: user.currentOrganizationID == organizationID ? replacement?.id : nil, on: connection)
            }
        }
    }
}
