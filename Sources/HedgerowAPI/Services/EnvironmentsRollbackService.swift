import HedgerowCore
import HedgerowStore

/// `POST /api/organizations/{id}/environments_rollback/` (docs/api.md, environments_rollback): folds environments back
/// into one per project, once per organization, in one transaction.
struct EnvironmentsRollbackService: Sendable {
    let database: any Database
    let organizations = OrganizationStore()
    let teams = TeamStore()

    init(database: any Database) { self.database = database }

    /// 404 / 403 before the body is looked at.
    func checkAllowed(organizationID: String, principal: Principal) async throws {
        try await database.read { connection in
            _ = try await adminOrganization(organizationID, principal: principal, on: connection)
        }
    }

    func rollback(organizationID: String, body: JSONValue, principal: Principal) async throws {
        try await database.transaction { connection in
            var organization = try await adminOrganization(organizationID, principal: principal, on: connection)
            guard organization.environmentsRollbackRequestedAt == nil else {
                throw APIError.invalidInput("Environments rollback has already been requested for this organization.")
            }
            let pairs = try RollbackInput.parse(body)
            let ids = Set(pairs.flatMap { [$0.source, $0.target] })
            let found = try await teams.environments(ids: Array(ids), on: connection).filter { $0.organizationID == organization.id }
            let byID = Dictionary(uniqueKeysWithValues: found.map { ($0.id, $0) })
            let missing = ids.subtracting(byID.keys).sorted()
            guard missing.isEmpty else {
                throw APIError.invalidInput("Environments not found: {" + missing.map(String.init).joined(separator: ", ") + "}")
            }
            for pair in pairs where pair.source != pair.target {
                let (source, target) = (byID[pair.source]!, byID[pair.target]!)
                guard source.projectID == target.projectID else {
                    throw APIError.invalidInput("Cannot migrate between different projects: \(source.id) -> \(target.id)")
                }
            }
            // Final names are computed before anything moves.
            var projectNames: [Int64: String] = [:]
            for projectID in Set(found.map(\.projectID)) {
                projectNames[projectID] = try await teams.project(id: projectID, on: connection)?.name
            }
            var finalNames: [Int64: String] = [:]
            for environment in found {
                let projectName = projectNames[environment.projectID] ?? environment.name
                finalNames[environment.id] =
                    environment.name == projectName ? environment.name : "\(projectName) (\(environment.name))"
            }
            let now = Timestamp.now()
            var current = byID
            for pair in pairs where pair.source != pair.target {
                try await EnvironmentResources.move(from: pair.source, to: pair.target, on: connection)
                guard var source = current[pair.source], source.id != source.projectID else { continue }
                let projectName = projectNames[source.projectID] ?? source.name
                try await teams.insertProject(
                    Project(
                        id: source.id, organizationID: organization.id, name: "\(projectName) - \(source.name)", createdAt: now,
                        updatedAt: now), on: connection)
                source.projectID = source.id
                source.updatedAt = now
                try await teams.updateEnvironment(source, on: connection)
                current[source.id] = source
            }
            for (id, name) in finalNames {
                guard var environment = current[id] else { continue }
                environment.name = name
                environment.updatedAt = now
                try await teams.updateEnvironment(environment, on: connection)
                if var project = try await teams.project(id: environment.projectID, on: connection) {
                    project.name = name
                    project.updatedAt = now
                    try await teams.updateProject(project, on: connection)
                }
            }
            organization.environmentsRollbackRequestedAt = now
            try await organizations.update(organization, on: connection)
        }
    }

    func adminOrganization(_ id: String, principal: Principal, on connection: any SQLConnection) async throws -> Organization {
        let resolved = try OrganizationService.resolve(id: id, principal: principal)
        guard let (organization, level) = try await organizations.find(id: resolved, memberUserID: principal.user.id, on: connection)
        else { throw APIError.notFound() }
        try OrganizationService.checkKeyPolicy(organization, level: level, principal: principal)
        guard level >= .admin else { throw APIError.permissionDenied("Your organization access level is insufficient.") }
        return organization
    }
}
