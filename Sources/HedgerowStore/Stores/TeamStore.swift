import HedgerowCore

/// Projects and environments (PostHog's "teams").
public struct TeamStore: Sendable {
    public init() {}

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

    public func insertProject(_ project: Project, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "INSERT INTO projects (id, organization_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
            [
                .int(project.id), .text(project.organizationID), .text(project.name), SQLValue(project.createdAt),
                SQLValue(project.updatedAt),
            ])
    }

    public func insertEnvironment(_ environment: Environment, on connection: any SQLConnection) async throws {
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

    public func projects(organizationID: String, on connection: any SQLConnection) async throws -> [Project] {
        try await connection.query(
            "SELECT id, organization_id, name, created_at, updated_at FROM projects WHERE organization_id = $1 ORDER BY id",
            [.text(organizationID)]
        ).map(Self.decodeProject)
    }

    public func environments(organizationID: String, on connection: any SQLConnection) async throws -> [Environment] {
        try await connection.query(
            "SELECT \(Self.environmentColumns) FROM teams WHERE organization_id = $1 ORDER BY id", [.text(organizationID)]
        ).map(Self.decodeEnvironment)
    }

    public func environment(id: Int64, on connection: any SQLConnection) async throws -> Environment? {
        try await connection.first("SELECT \(Self.environmentColumns) FROM teams WHERE id = $1", [.int(id)])
            .map(Self.decodeEnvironment)
    }

    /// The first environment of an organization (its oldest), if any.
    public func firstEnvironment(organizationID: String, on connection: any SQLConnection) async throws -> Environment? {
        try await connection.first(
            "SELECT \(Self.environmentColumns) FROM teams WHERE organization_id = $1 ORDER BY id LIMIT 1", [.text(organizationID)]
        ).map(Self.decodeEnvironment)
    }
}
