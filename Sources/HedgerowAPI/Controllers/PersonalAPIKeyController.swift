import HedgerowCore

/// `/api/personal_api_keys/`: the caller's own keys.
struct PersonalAPIKeyController: Sendable {
    let service: PersonalAPIKeyService

    func addRoutes(to routes: inout Routes) {
        let read = RequiredScope.scope("personal_api_key", .read)
        let write = RequiredScope.scope("personal_api_key", .write)
        let model = "PersonalAPIKey"
        var listDoc = OperationDoc.list(model, "The caller's personal API keys (a plain list, as PostHog answers).", query: [])
        listDoc.responseIsArray = true
        routes.add("GET", "/api/personal_api_keys/", scope: read, doc: listDoc, handler: list)
        routes.add(
            "POST", "/api/personal_api_keys/", scope: write,
            doc: .create(model, "Create a key (the value is shown once); for signed-in sessions, refused to personal API keys."),
            handler: create)
        routes.add("GET", "/api/personal_api_keys/:id/", scope: read, doc: .retrieve(model, "One of the caller's keys."), handler: retrieve)
        routes.add(
            "PATCH", "/api/personal_api_keys/:id/", scope: write, doc: .partialUpdate(model, "Change a key's label or limits."),
            handler: update)
        routes.add(
            "PUT", "/api/personal_api_keys/:id/", scope: write, doc: .update(model, "Replace a key's label and limits."), handler: update)
        routes.add("DELETE", "/api/personal_api_keys/:id/", scope: write, doc: .destroy("Delete a key."), handler: delete)
        routes.add(
            "POST", "/api/personal_api_keys/:id/roll/", scope: write,
            doc: .action("Give a key a new value (shown once); for signed-in sessions, refused to personal API keys.", response: model),
            handler: roll)
    }

    @Sendable func list(_ request: APIRequest) async throws -> APIResponse {
        .ok(.array(try await service.list(principal: try request.requirePrincipal()).map { TeamWire.personalAPIKey($0) }))
    }

    @Sendable func create(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        guard principal.isSession else { throw PersonalAPIKeyService.keyCannotMint }
        let input = try PersonalAPIKeyInput.parse(try request.body(), requireAll: true)
        let (key, value) = try await service.create(input: input, principal: principal)
        return .created(TeamWire.personalAPIKey(key, value: value))
    }

    @Sendable func retrieve(_ request: APIRequest) async throws -> APIResponse {
        .ok(
            TeamWire.personalAPIKey(
                try await service.retrieve(id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())))
    }

    @Sendable func update(_ request: APIRequest) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let id = request.parameters["id"] ?? ""
        _ = try await service.retrieve(id: id, principal: principal)
        let input = try PersonalAPIKeyInput.parse(try request.body(), requireAll: request.method == "PUT")
        return .ok(TeamWire.personalAPIKey(try await service.update(id: id, input: input, principal: principal)))
    }

    @Sendable func delete(_ request: APIRequest) async throws -> APIResponse {
        try await service.delete(id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())
        return .noContent
    }

    @Sendable func roll(_ request: APIRequest) async throws -> APIResponse {
        let (key, value) = try await service.roll(id: request.parameters["id"] ?? "", principal: try request.requirePrincipal())
        return .ok(TeamWire.personalAPIKey(key, value: value))
    }
}
