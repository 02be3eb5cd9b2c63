import HedgerowAPI
import HedgerowCore

/// Personal API keys: the signed-in user's own, created and rolled here (the value is shown once).
extension ConsolePages {
    func keysContext(_ request: ConsoleRequest) async throws -> [String: Any] {
        var context = try await layout(request, title: "Personal API keys")
        let keys = try await services.keys.list(principal: request.principal)
        context["keys"] = keys.map { key -> [String: Any] in
            var limits: [String] = []
            if let organizations = key.scopedOrganizations { limits.append("organizations " + organizations.joined(separator: ", ")) }
            if let teams = key.scopedTeams { limits.append("projects " + teams.map(String.init).joined(separator: ", ")) }
            return [
                "id": key.id, "label": key.label, "mask_value": key.maskValue,
                "scopes": key.scopes.isEmpty ? "all (legacy key)" : key.scopes.map(\.description).joined(separator: ", "),
                "limits": limits.isEmpty ? "—" : limits.joined(separator: "; "), "created_at": Self.date(key.createdAt),
                "last_used_at": Self.date(key.lastUsedAt),
            ]
        }
        context["scope_objects"] = Scope.objects.sorted().map { ["name": $0] }
        return context
    }

    @Sendable func keysPage(_ request: ConsoleRequest) async throws -> APIResponse {
        render("keys", try await keysContext(request))
    }

    /// The key form as the API's body: the label, the ticked scopes, and the chosen limits.
    static func keyBody(_ form: Form) -> JSONObject {
        var body: JSONObject = ["label": .string(form.raw("label")), "scopes": .array(form.all("scope").map(JSONValue.string))]
        let organizations = form.all("scoped_organizations")
        if !organizations.isEmpty { body["scoped_organizations"] = .array(organizations.map(JSONValue.string)) }
        let teams = form.all("scoped_teams")
        if !teams.isEmpty { body["scoped_teams"] = .array(teams.map { Self.number($0) ?? .null }) }
        return body
    }

    func showKey(_ request: ConsoleRequest, key: PersonalAPIKey, value: String) async throws -> APIResponse {
        var context = try await layout(request, title: "New key value")
        context["label"] = key.label
        context["value"] = value
        context["base_url"] = request.request.baseURL
        return render("key_created", context)
    }

    @Sendable func createKey(_ request: ConsoleRequest) async throws -> APIResponse {
        do {
            let input = try PersonalAPIKeyInput.parse(.object(Self.keyBody(request.form)), requireAll: true)
            let (key, value) = try await services.keys.create(input: input, principal: request.principal)
            return try await showKey(request, key: key, value: value)
        } catch let error as APIError where error.status == 400 {
            var context = try await keysContext(request)
            context["error"] = error.detail
            context["label"] = request.form["label"] ?? ""
            return render("keys", context, status: 400)
        }
    }

    @Sendable func rollKey(_ request: ConsoleRequest) async throws -> APIResponse {
        let (key, value) = try await services.keys.roll(id: request.parameter("id"), principal: request.principal)
        return try await showKey(request, key: key, value: value)
    }

    @Sendable func relabelKey(_ request: ConsoleRequest) async throws -> APIResponse {
        do {
            let input = try PersonalAPIKeyInput.parse(.object(["label": .string(request.form.raw("label"))]), requireAll: false)
            _ = try await services.keys.update(id: request.parameter("id"), input: input, principal: request.principal)
            return ConsoleResponse.redirect("/me/keys?flash=" + "Label saved.".queryEscaped)
        } catch let error as APIError where error.status == 400 {
            var context = try await keysContext(request)
            context["error"] = error.detail
            return render("keys", context, status: 400)
        }
    }

    @Sendable func deleteKey(_ request: ConsoleRequest) async throws -> APIResponse {
        try await services.keys.delete(id: request.parameter("id"), principal: request.principal)
        return ConsoleResponse.redirect("/me/keys?flash=" + "Key deleted.".queryEscaped)
    }
}
