import HedgerowCore

/// `/api/users/@me/`.
struct UserController: Sendable {
    let service: UserService
    let instanceTag: String

    func addRoutes(to routes: inout Routes) {
        routes.add(
            "GET", "/api/users/", scope: .scope("user", .read), doc: .list("PaginatedUserList", "The users the caller may see: itself."),
            handler: list)
        routes.add("GET", "/api/users/@me/", scope: .scope("user", .read), doc: .retrieve("User", "The caller."), handler: me)
        routes.add(
            "PATCH", "/api/users/@me/", scope: .scope("user", .write),
            doc: .partialUpdate("User", "Change the caller's name, email or current organization and project."), handler: update)
    }

    @Sendable func me(_ request: APIRequest) async throws -> APIResponse {
        .ok(TeamWire.me(try await service.me(principal: try request.requirePrincipal()), instanceTag: instanceTag))
    }

    /// PostHog lists only the caller to users who are not staff (Hedgerow has no staff).
    @Sendable func list(_ request: APIRequest) async throws -> APIResponse {
        let pagination = LimitOffsetPagination(query: request.query)
        let me = TeamWire.me(try await service.me(principal: try request.requirePrincipal()), instanceTag: instanceTag)
        let results = pagination.sqlOffset == 0 && pagination.sqlLimit > 0 ? [me] : []
        return .ok(pagination.page(count: 1, results: results, request: request))
    }

    @Sendable func update(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let input = try UserInput.parse(try request.body())
        return .ok(TeamWire.me(try await service.update(input: input, principal: principal), instanceTag: instanceTag))
    }
}
