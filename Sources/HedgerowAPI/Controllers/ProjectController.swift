import HedgerowCore

/// Projects under an organization, and environments under a project or on their own.
struct ProjectController: Sendable {
    let service: ProjectService

    func addRoutes(to routes: inout Routes) {
        let read = RequiredScope.scope("project", .read)
        let write = RequiredScope.scope("project", .write)
        let project = "ProjectBackwardCompat"
        let projects = "/api/organizations/:organization_id/projects/"
        let projectList = OperationDoc.list("PaginatedProjectBackwardCompatBasicList", "The organization's projects.")
        routes.add("GET", projects, scope: read, doc: projectList, handler: listProjects)
        routes.add(
            "POST", projects, scope: write, doc: .create(project, "Create a project with its main environment (admins)."),
            handler: createProject)
        routes.add(
            "GET", projects + ":id/", scope: read, doc: .retrieve(project, "A project of the organization."), handler: retrieveProject)
        routes.add(
            "PATCH", projects + ":id/", scope: write, doc: .partialUpdate(project, "Rename a project or change its time zone."),
            handler: updateProject)
        routes.add(
            "DELETE", projects + ":id/", scope: write, doc: .destroy("Delete a project and its environments (admins)."),
            handler: deleteProject)
        // PostHog's top-level project routes: the projects of the caller's current organization.
        routes.add(
            "GET", "/api/projects/", scope: read, teamBased: true,
            doc: .list("PaginatedProjectBackwardCompatBasicList", "The projects of the caller's current organization."),
            handler: listCurrentProjects)
        routes.add(
            "GET", "/api/projects/:id/", scope: read, teamBased: true, doc: .retrieve(project, "A project (or `@current`)."),
            handler: retrieveTopLevelProject)
        routes.add(
            "PATCH", "/api/projects/:id/", scope: write, teamBased: true,
            doc: .partialUpdate(project, "Rename a project or change its time zone."), handler: updateTopLevelProject)
        routes.add(
            "DELETE", "/api/projects/:id/", scope: write, teamBased: true, doc: .destroy("Delete a project (admins)."),
            handler: deleteTopLevelProject)
        let environments = "/api/projects/:project_id/environments/"
        routes.add(
            "GET", environments + ":id/", scope: read, teamBased: true, doc: .retrieve("Team", "An environment of the project."),
            handler: retrieveProjectEnvironment)
        routes.add(
            "GET", environments, scope: read, teamBased: true, doc: .list("PaginatedTeamBasicList", "The project's environments."),
            handler: listEnvironments)
        routes.add(
            "POST", environments, scope: write, teamBased: true, doc: .create("Team", "Add an environment to the project (admins)."),
            handler: createEnvironment)
        routes.add(
            "GET", "/api/environments/:id/", scope: read, teamBased: true, doc: .retrieve("Team", "An environment (or `@current`)."),
            handler: retrieveEnvironment)
        routes.add(
            "PATCH", "/api/environments/:id/", scope: write, teamBased: true,
            doc: .partialUpdate("Team", "Rename an environment or change its time zone."), handler: updateEnvironment)
        routes.add(
            "DELETE", "/api/environments/:id/", scope: write, teamBased: true,
            doc: .destroy("Delete an environment that is not its project's main one (admins)."), handler: deleteEnvironment)
        let reset = OperationDoc.action("Give the environment a new project API token.", response: "Team")
        routes.add("POST", "/api/environments/:id/reset_token/", scope: write, teamBased: true, doc: reset, handler: resetToken)
        routes.add("PATCH", "/api/environments/:id/reset_token/", scope: write, teamBased: true, doc: reset, handler: resetToken)
    }

    @Sendable func listProjects(_ request: APIRequest) async throws -> APIResponse {
        let pagination = LimitOffsetPagination(query: request.query)
        let (count, page) = try await service.listProjects(
            organizationID: request.parameters["organization_id"] ?? "", principal: try request.requirePrincipal(),
            limit: pagination.sqlLimit, offset: pagination.sqlOffset)
        return .ok(pagination.page(count: count, results: page.map { .object(TeamWire.projectBasic($0.0, main: $0.1)) }, request: request))
    }

    @Sendable func listCurrentProjects(_ request: APIRequest) async throws -> APIResponse {
        let pagination = LimitOffsetPagination(query: request.query)
        let (count, page) = try await service.currentOrganizationProjects(
            principal: try request.requirePrincipal(), limit: pagination.sqlLimit, offset: pagination.sqlOffset)
        return .ok(
            pagination.page(count: count, results: page.map { .object(TeamWire.projectBasic($0.0, main: $0.1)) }, request: request))
    }

    @Sendable func retrieveTopLevelProject(_ request: APIRequest) async throws -> APIResponse {
        let (project, main) = try await service.project(
            id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())
        return .ok(TeamWire.projectDetail(project, main: main))
    }

    @Sendable func updateTopLevelProject(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let id = request.parameters["id"] ?? ""
        _ = try await service.project(id: id, principal: principal)
        let input = try ProjectInput.parse(try request.body(), requireName: false)
        let (project, main) = try await service.updateProject(id: id, input: input, principal: principal)
        return .ok(TeamWire.projectDetail(project, main: main))
    }

    @Sendable func deleteTopLevelProject(_ request: APIRequest) async throws -> APIResponse {
        try await service.deleteProject(id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())
        return .noContent
    }

    @Sendable func retrieveProjectEnvironment(_ request: APIRequest) async throws -> APIResponse {
        .ok(
            TeamWire.environmentDetail(
                try await service.environment(
                    request.parameters["id"] ?? "", ofProject: request.parameters["project_id"] ?? "",
                    principal: try request.requirePrincipal())))
    }

    @Sendable func createProject(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let input = try ProjectInput.parse(try request.body(), requireName: true)
        let project = try await service.createProject(
            organizationID: request.parameters["organization_id"] ?? "", input: input, principal: principal)
        return .created(TeamWire.projectDetail(project.0, main: project.1))
    }

    @Sendable func retrieveProject(_ request: APIRequest) async throws -> APIResponse {
        let project = try await service.retrieveProject(
            organizationID: request.parameters["organization_id"] ?? "", projectID: request.parameters["id"] ?? "",
            principal: try request.requirePrincipal())
        return .ok(TeamWire.projectDetail(project.0, main: project.1))
    }

    @Sendable func updateProject(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let organizationID = request.parameters["organization_id"] ?? ""
        let projectID = request.parameters["id"] ?? ""
        _ = try await service.retrieveProject(organizationID: organizationID, projectID: projectID, principal: principal)
        let input = try ProjectInput.parse(try request.body(), requireName: false)
        let (project, main) = try await service.updateProject(
            organizationID: organizationID, projectID: projectID, input: input, principal: principal)
        return .ok(TeamWire.projectDetail(project, main: main))
    }

    @Sendable func deleteProject(_ request: APIRequest) async throws -> APIResponse {
        try await service.deleteProject(
            organizationID: request.parameters["organization_id"] ?? "", projectID: request.parameters["id"] ?? "",
            principal: try request.requirePrincipal())
        return .noContent
    }

    @Sendable func listEnvironments(_ request: APIRequest) async throws -> APIResponse {
        let pagination = LimitOffsetPagination(query: request.query)
        let (count, page) = try await service.listEnvironments(
            projectID: request.parameters["project_id"] ?? "", principal: try request.requirePrincipal(),
            limit: pagination.sqlLimit, offset: pagination.sqlOffset)
        return .ok(pagination.page(count: count, results: page.map(OrganizationWire.renderTeam), request: request))
    }

    @Sendable func createEnvironment(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let input = try ProjectInput.parse(try request.body(), requireName: true)
        let environment = try await service.createEnvironment(
            projectID: request.parameters["project_id"] ?? "", input: input, principal: principal)
        return .created(TeamWire.environmentDetail(environment))
    }

    @Sendable func retrieveEnvironment(_ request: APIRequest) async throws -> APIResponse {
        .ok(
            TeamWire.environmentDetail(
                try await service.retrieveEnvironment(id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())))
    }

    @Sendable func updateEnvironment(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let id = request.parameters["id"] ?? ""
        _ = try await service.retrieveEnvironment(id: id, principal: principal)
        let input = try ProjectInput.parse(try request.body(), requireName: false)
        return .ok(TeamWire.environmentDetail(try await service.updateEnvironment(id: id, input: input, principal: principal)))
    }

    @Sendable func deleteEnvironment(_ request: APIRequest) async throws -> APIResponse {
        try await service.deleteEnvironment(id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())
        return .noContent
    }

    @Sendable func resetToken(_ request: APIRequest) async throws -> APIResponse {
        .ok(
            TeamWire.environmentDetail(
                try await service.resetToken(id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())))
    }
}
