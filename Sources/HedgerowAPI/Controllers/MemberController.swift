import HedgerowCore

/// `/api/organizations/{organization_id}/members/`.
struct MemberController: Sendable {
    let service: MemberService

    func addRoutes(to routes: inout Routes) {
        let read = RequiredScope.scope("organization_member", .read)
        let write = RequiredScope.scope("organization_member", .write)
        let member = "/api/organizations/:organization_id/members/:user_uuid/"
        routes.add(
            "GET", "/api/organizations/:organization_id/members/", scope: read,
            doc: .list("PaginatedOrganizationMemberList", "The organization's members."), handler: list)
        routes.add(
            "PATCH", member, scope: write, doc: .partialUpdate("OrganizationMember", "Change a member's level."), handler: update)
        routes.add("PUT", member, scope: write, doc: .update("OrganizationMember", "Change a member's level."), handler: update)
        routes.add("DELETE", member, scope: write, doc: .destroy("Remove a member (or leave)."), handler: remove)
    }

    @Sendable func list(_ request: APIRequest) async throws -> APIResponse {
        let pagination = LimitOffsetPagination(query: request.query)
        let (count, page) = try await service.list(
            organizationID: request.parameters["organization_id"] ?? "", principal: try request.requirePrincipal(),
            limit: pagination.sqlLimit, offset: pagination.sqlOffset)
        return .ok(pagination.page(count: count, results: page.map(TeamWire.member), request: request))
    }

    @Sendable func update(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let organizationID = request.parameters["organization_id"] ?? ""
        let userUUID = request.parameters["user_uuid"] ?? ""
        try await service.checkCanEdit(organizationID: organizationID, userUUID: userUUID, principal: principal)
        let level = try MemberInput.parseLevel(try request.body())
        let member = try await service.update(organizationID: organizationID, userUUID: userUUID, level: level, principal: principal)
        return .ok(TeamWire.member(member))
    }

    @Sendable func remove(_ request: APIRequest) async throws -> APIResponse {
        try await service.remove(
            organizationID: request.parameters["organization_id"] ?? "", userUUID: request.parameters["user_uuid"] ?? "",
            principal: try request.requirePrincipal())
        return .noContent
    }
}
