import HedgerowCore

/// `/api/{environments,projects}/{project_id}/persons/` (PostHog's persons routes).
struct PersonController: Sendable {
    let service: PersonService

    func addRoutes(to routes: inout Routes) {
        let read = RequiredScope.scope("person", .read)
        let write = RequiredScope.scope("person", .write)
        let parents: [(String, @Sendable (APIRequest) -> EnvironmentParent)] = [
            ("/api/environments/:project_id/persons", { .environment($0.parameters["project_id"] ?? "") }),
            ("/api/projects/:project_id/persons", { .project($0.parameters["project_id"] ?? "") }),
        ]
        let distinctID = OperationDoc.Query(
            name: "distinct_id", schema: Schema.string, description: "Only the person this distinct id belongs to.")
        for (base, parent) in parents {
            routes.add(
                "GET", base + "/", scope: read, teamBased: true,
                doc: .list(
                    "PaginatedPersonList", "The environment's persons, newest first.", query: OperationDoc.limitOffset + [distinctID])
            ) { request in
                let pagination = LimitOffsetPagination(query: request.query)
                let (count, page) = try await service.list(
                    parent(request), distinctID: request.query["distinct_id"], limit: pagination.sqlLimit, offset: pagination.sqlOffset,
                    principal: try request.requirePrincipal())
                return .ok(pagination.page(count: count, results: page.map(PersonWire.render), request: request))
            }
            routes.add("GET", base + "/:id/", scope: read, teamBased: true, doc: .retrieve("Person", "A person, by uuid.")) { request in
                .ok(
                    PersonWire.render(
                        try await service.retrieve(
                            parent(request), id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())))
            }
            routes.add(
                "DELETE", base + "/:id/", scope: write, teamBased: true, doc: .destroy("Delete a person (its distinct ids go with it).")
            ) {
                request in
                try await service.delete(parent(request), id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())
                return .noContent
            }
        }
    }
}
