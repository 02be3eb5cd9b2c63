import HedgerowCore

/// `/api/organizations/`: HTTP only — decode, call the service, encode PostHog's JSON.
struct OrganizationController: Sendable {
    let service: OrganizationService
    let rollback: EnvironmentsRollbackService
    let instanceTag: String
    /// Retrieved organizations as rendered, served while nothing they show has changed.
    let rendered = RenderedDetailsCache()

    func addRoutes(to routes: inout Routes) {
        let read = RequiredScope.scope("organization", .read)
        let write = RequiredScope.scope("organization", .write)
        let model = "Organization"
        routes.add(
            "GET", "/api/organizations/", scope: read, doc: .list("PaginatedOrganizationList", "The caller's organizations."),
            handler: list)
        routes.add(
            "POST", "/api/organizations/", scope: write, doc: .create(model, "Create an organization; the caller is its owner."),
            handler: create)
        routes.add(
            "GET", "/api/organizations/:id/", scope: read, doc: .retrieve(model, "An organization (or `@current`)."), handler: retrieve)
        routes.add(
            "PUT", "/api/organizations/:id/", scope: write, doc: .update(model, "Replace an organization's settings."), handler: replace)
        routes.add(
            "PATCH", "/api/organizations/:id/", scope: write, doc: .partialUpdate(model, "Change an organization's settings."),
            handler: partialUpdate)
        routes.add(
            "DELETE", "/api/organizations/:id/", scope: write, doc: .destroy("Delete an organization and everything in it."),
            handler: destroy)
        routes.add(
            "POST", "/api/organizations/:id/environments_rollback/", scope: .unsupported,
            doc: .action(
                "Move environments back into projects of their own.", request: "EnvironmentsRollbackRequest", requestRequired: true,
                status: 202, response: "EnvironmentsRollback"),
            handler: environmentsRollback)
    }

    @Sendable func list(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let pagination = LimitOffsetPagination(query: request.query)
        let (count, results) = try await service.list(
            principal: principal, limit: pagination.sqlLimit, offset: pagination.sqlOffset)
        let rendered = results.map { OrganizationWire.render($0, instanceTag: instanceTag) }
        return .ok(pagination.page(count: count, results: rendered, request: request))
    }

    @Sendable func create(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let input = try OrganizationInput.parse(try request.body(), requireName: true)
        let details = try await service.create(input: input, principal: principal)
        return .created(OrganizationWire.render(details, instanceTag: instanceTag))
    }

    /// Served from `rendered` when this caller's entry was read at the details generation that one
    /// statement reads now; else read, rendered and kept (where the database keeps a generation).
    @Sendable func retrieve(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let id = request.parameters["id"] ?? ""
        let key = RenderedDetailsCache.Key(id: id, userID: principal.user.id)
        if let kept = rendered.entry(key), try await service.detailsGeneration() == kept.generation,
            try service.keptDetailsAnswer(kept.details, id: id, principal: principal)
        {
            return .ok(encodedJSON: kept.bytes)
        }
        let (details, generation) = try await service.retrieveWithGeneration(id: id, principal: principal)
        let bytes = JSONWriter.bytes(OrganizationWire.render(details, instanceTag: instanceTag))
        if let generation { rendered.store(.init(details: details, generation: generation, bytes: bytes), for: key) }
        return .ok(encodedJSON: bytes)
    }

    @Sendable func replace(_ request: APIRequest) async throws -> APIResponse {
        try await update(request, requireName: true)
    }

    @Sendable func partialUpdate(_ request: APIRequest) async throws -> APIResponse {
        try await update(request, requireName: false)
    }

    func update(_ request: APIRequest, requireName: Bool) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let id = request.parameters["id"] ?? ""
        // DRF checks the object (404, then permissions) before validating the body.
        try await service.checkCanUpdate(id: id, principal: principal)
        let input = try OrganizationInput.parse(try request.body(), requireName: requireName)
        let details = try await service.update(id: id, input: input, principal: principal)
        return .ok(OrganizationWire.render(details, instanceTag: instanceTag))
    }

    @Sendable func destroy(_ request: APIRequest) async throws -> APIResponse {
        try await service.delete(id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())
        return .noContent
    }

    @Sendable func environmentsRollback(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let id = request.parameters["id"] ?? ""
        try await rollback.checkAllowed(organizationID: id, principal: principal)
        try await rollback.rollback(organizationID: id, body: try request.body(), principal: principal)
        return APIResponse(status: 202, json: .object(["success": true, "message": "Migration started"]))
    }
}
