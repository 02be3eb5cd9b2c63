import HedgerowCore

/// `/api/{environments,projects}/{project_id}/integrations/` (PostHog's integrations routes, for
/// the kinds Hedgerow's destinations use).
struct IntegrationController: Sendable {
    let service: IntegrationService

    func addRoutes(to routes: inout Routes) {
        let read = RequiredScope.scope("integration", .read)
        let write = RequiredScope.scope("integration", .write)
        let parents: [(String, @Sendable (APIRequest) -> EnvironmentParent)] = [
            ("/api/environments/:project_id/integrations", { .environment($0.parameters["project_id"] ?? "") }),
            ("/api/projects/:project_id/integrations", { .project($0.parameters["project_id"] ?? "") }),
        ]
        let kind = OperationDoc.Query(
            name: "kind", schema: APIComponents.integrationKind, description: "Only integrations of this kind.")
        let id = Schema.integer
        for (base, parent) in parents {
            routes.add(
                "GET", base + "/", scope: read, teamBased: true,
                doc: .list(
                    "PaginatedIntegrationList", "The environment's integrations, newest first.", query: OperationDoc.limitOffset + [kind])
            ) { request in
                let pagination = LimitOffsetPagination(query: request.query)
                let (count, page) = try await service.list(
                    parent(request), kind: request.query["kind"], limit: pagination.sqlLimit, offset: pagination.sqlOffset,
                    principal: try request.requirePrincipal())
                return .ok(pagination.page(count: count, results: page.map(IntegrationWire.render), request: request))
            }
            routes.add(
                "POST", base + "/", scope: write, teamBased: true,
                doc: .create("Integration", "Create an integration; its secrets are stored encrypted and never shown.")
            ) { request in
                let principal = try request.requirePrincipal()
                try await service.checkParent(parent(request), principal: principal)
                return .created(
                    IntegrationWire.render(try await service.create(parent(request), body: try request.body(), principal: principal)))
            }
            routes.add("GET", base + "/:id/", scope: read, teamBased: true, doc: .retrieve("Integration", "An integration.", id: id)) {
                request in
                .ok(
                    IntegrationWire.render(
                        try await service.retrieve(
                            parent(request), id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())))
            }
            routes.add(
                "DELETE", base + "/:id/", scope: write, teamBased: true,
                doc: .destroy("Delete an integration (refused while a batch export uses it).", id: id)
            ) { request in
                try await service.delete(parent(request), id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())
                return .noContent
            }
        }
    }
}
