import HedgerowCore

/// Projects and environments (PostHog's "teams").
package struct TeamStore: Sendable {
    package init() {}

    static let environmentColumns = """
        id, uuid, organization_id, project_id, name, api_token, timezone, ingested_event, completed_snippet_onboarding,
        is_demo, created_at, updated_at
        """

    static func decodeEnvironment(_ row: SQLRow) throws -> Environment {
        Environment(
            id: try row.decodeInt("id"), uuid: try row.decodeString("uuid"),
            organizationID: try row.decodeString("organization_id"), projectID: try row.decodeInt("project_id"),
            name: try row.decodeString("name"), apiToken: try row.decodeString("api_token"),
            timezone: try row.decodeString("timezone"), ingestedEvent: try row.decodeBool("ingested_event"),
            completedSnippetOnboarding: try row.decodeBool("completed_snippet_onboarding"),
            isDemo: try row.decodeBool("is_demo"), createdAt: try row.decodeTimestamp("created_at"),
            updatedAt: try row.decodeTimestamp("updated_at"))
    }

    static func decodeProject(_ row: SQLRow) throws -> Project {
        Project(
            id: try row.decodeInt("id"), organizationID: try row.decodeString("organization_id"),
            name: try row.decodeString("name"), createdAt: try row.decodeTimestamp("created_at"),
            updatedAt: try row.decodeTimestamp("updated_at"))
    }

    package func insertProject(_ project: Project, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "INSERT INTO projects (id, organization_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
            [
                .int(project.id), .text(project.organizationID), .text(project.name), SQLValue(project.createdAt),
                SQLValue(project.updatedAt),
            ])
    }

    package func insertEnvironment(_ environment: Environment, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            INSERT INTO teams (id, uuid, organization_id, project_id, name, api_token, timezone, ingested_event,
                completed_snippet_onboarding, is_demo, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            """,
            [
                .int(environment.id), .text(environment.uuid), .text(environment.organizationID), .int(environment.projectID),
                .text(environment.name), .text(environment.apiToken), .text(environment.timezone),
                .bool(environment.ingestedEvent), .bool(environment.completedSnippetOnboarding), .bool(environment.isDemo),
                SQLValue(environment.createdAt), SQLValue(environment.updatedAt),
            ])
    }

    package func environments(organizationID: String, on connection: any SQLConnection) async throws -> [Environment] {
        try await connection.query(
            "SELECT \(Self.environmentColumns) FROM teams WHERE organization_id = $1 ORDER BY id", [.text(organizationID)]
        ).map(Self.decodeEnvironment)
    }

    package func environment(id: Int64, on connection: any SQLConnection) async throws -> Environment? {
        try await connection.first("SELECT \(Self.environmentColumns) FROM teams WHERE id = $1", [.int(id)])
            .map(Self.decodeEnvironment)
    }

    /// The first environment of an organization (its oldest), if any.
    package func firstEnvironment(organizationID: String, on connection: any SQLConnection) async throws -> Environment? {
        try await connection.first(
            "SELECT \(Self.environmentColumns) FROM teams WHERE organization_id = $1 ORDER BY id LIMIT 1", [.text(organizationID)]
        ).map(Self.decodeEnvironment)
    }

    // MARK: Projects

    static let projectColumns = "id, organization_id, name, created_at, updated_at"

    package func project(id: Int64, on connection: any SQLConnection) async throws -> Project? {
        try await connection.first("SELECT \(Self.projectColumns) FROM projects WHERE id = $1", [.int(id)]).map(Self.decodeProject)
    }

    package func projectPage(
        organizationID: String, limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws
        -> (count: Int, page: [Project])
    {
        let count =
            try await connection.first(
                "SELECT COUNT(*) AS n FROM projects WHERE organization_id = $1", [.text(organizationID)])?.int("n") ?? 0
        let rows = try await connection.query(
            "SELECT \(Self.projectColumns) FROM projects WHERE organization_id = $1 ORDER BY id LIMIT \(limit) OFFSET \(offset)",
            [.text(organizationID)])
        return (Int(count), try rows.map(Self.decodeProject))
    }

    package func updateProject(_ project: Project, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "UPDATE projects SET name = $2, updated_at = $3 WHERE id = $1",
            [.int(project.id), .text(project.name), SQLValue(project.updatedAt)])
    }

    /// Deletes a project; its environments (and what they hold) go with it.
    package func deleteProject(id: Int64, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM projects WHERE id = $1", [.int(id)])
    }

    // MARK: Environments

    /// A page of a project's environments; with `within`, only those of these ids (a key scoped to teams).
    package func environmentPage(
        projectID: Int64, within ids: [Int64]? = nil, limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws
        -> (count: Int, page: [Environment])
    {
        var condition = "project_id = $1"
        var binds: [SQLValue] = [.int(projectID)]
        if let ids {
            guard !ids.isEmpty else { return (0, []) }
            condition += " AND id IN (" + ids.indices.map { "$\($0 + 2)" }.joined(separator: ", ") + ")"
            binds += ids.map(SQLValue.int)
        }
        let count = try await connection.first("SELECT COUNT(*) AS n FROM teams WHERE \(condition)", binds)?.int("n") ?? 0
        let rows = try await connection.query(
            "SELECT \(Self.environmentColumns) FROM teams WHERE \(condition) ORDER BY id LIMIT \(limit) OFFSET \(offset)", binds)
        return (Int(count), try rows.map(Self.decodeEnvironment))
    }

    package func environments(ids: [Int64], on connection: any SQLConnection) async throws -> [Environment] {
        if ids.isEmpty { return [] }
        let placeholders = ids.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
        return try await connection.query(
            "SELECT \(Self.environmentColumns) FROM teams WHERE id IN (\(placeholders)) ORDER BY id", ids.map(SQLValue.int)
        ).map(Self.decodeEnvironment)
    }

    /// Writes name, timezone, token and project of an environment.
    package func updateEnvironment(_ environment: Environment, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            UPDATE teams SET name = $2, timezone = $3, api_token = $4, project_id = $5, updated_at = $6,
              completed_snippet_onboarding = $7, is_demo = $8 WHERE id = $1
            """,
            [
                .int(environment.id), .text(environment.name), .text(environment.timezone), .text(environment.apiToken),
                .int(environment.projectID), SQLValue(environment.updatedAt), .bool(environment.completedSnippetOnboarding),
                .bool(environment.isDemo),
            ])
    }

    package func deleteEnvironment(id: Int64, on connection: any SQLConnection) async throws {
        try await connection.execute("DELETE FROM teams WHERE id = $1", [.int(id)])
    }

    /// The environment whose project API token (`phc_...`) this is.
    package func environment(apiToken: String, on connection: any SQLConnection) async throws -> Environment? {
        try await connection.first("SELECT \(Self.environmentColumns) FROM teams WHERE api_token = $1", [.text(apiToken)])
            .map(Self.decodeEnvironment)
    }

    /// Marks that the environment has received events (shown as `ingested_event`).
    package func markIngested(id: Int64, on connection: any SQLConnection) async throws {
        try await connection.execute("UPDATE teams SET ingested_event = $2 WHERE id = $1", [.int(id), .bool(true)])
    }
}
