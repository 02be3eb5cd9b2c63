import HedgerowCore

/// `/api/organizations/{organization_id}/invites/` (list, create, bulk, delete), scope
/// `organization_member`, as PostHog's.
struct InviteController: Sendable {
    let service: InviteService

    func addRoutes(to routes: inout Routes) {
        let read = RequiredScope.scope("organization_member", .read)
        let write = RequiredScope.scope("organization_member", .write)
        let base = "/api/organizations/:organization_id/invites/"
        routes.add("GET", base, scope: read, doc: .list("PaginatedOrganizationInviteList", "The organization's invites, newest first.")) {
            request in
            let pagination = LimitOffsetPagination(query: request.query)
            let (count, page) = try await service.list(
                organizationID: request.parameters["organization_id"] ?? "", principal: try request.requirePrincipal(),
                limit: pagination.sqlLimit, offset: pagination.sqlOffset)
            return .ok(pagination.page(count: count, results: page.map { InviteWire.render($0) }, request: request))
        }
        routes.add(
            "POST", base, scope: write,
            doc: .create("OrganizationInvite", "Invite an email address; the invite's link is /signup/{id} (shown in the console).")
        ) { request in
            let (organizationID, principal) = (request.parameters["organization_id"] ?? "", try request.requirePrincipal())
            try await service.checkCanInvite(organizationID: organizationID, principal: principal)
            let input = try InviteService.Input.parse(try request.body())
            let created = try await service.create(
                organizationID: organizationID, inputs: [input], principal: principal, linkBase: request.baseURL)
            return .created(InviteWire.render(created[0]))
        }
        var bulkDoc = OperationDoc.action(
            "Create up to 20 invites at once.", request: "OrganizationInvite", requestRequired: true, status: 201,
            response: "OrganizationInvite")
        bulkDoc.requestIsArray = true
        bulkDoc.responseIsArray = true
        routes.add("POST", base + "bulk/", scope: write, doc: bulkDoc) { request in
            let (organizationID, principal) = (request.parameters["organization_id"] ?? "", try request.requirePrincipal())
            try await service.checkCanInvite(organizationID: organizationID, principal: principal)
            guard case .array(let items) = try request.body() else {
                throw APIError.invalidInput("This endpoint needs an array of data for bulk invite creation.")
            }
            guard items.count <= 20 else {
                throw APIError.validation("max_length", "A maximum of 20 invites can be sent in a single request.", attr: nil)
            }
            let inputs = try items.map { item throws(APIError) in try InviteService.Input.parse(item) }
            let created = try await service.create(
                organizationID: organizationID, inputs: inputs, principal: principal, linkBase: request.baseURL)
            return .created(.array(created.map { InviteWire.render($0) }))
        }
        routes.add("DELETE", base + ":id/", scope: write, doc: .destroy("Delete an invite.", id: Schema.uuid)) { request in
            try await service.delete(
                organizationID: request.parameters["organization_id"] ?? "", inviteID: request.parameters["id"] ?? "",
                principal: try request.requirePrincipal())
            return .noContent
        }
    }
}
