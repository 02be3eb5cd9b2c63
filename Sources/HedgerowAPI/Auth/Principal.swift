import HedgerowCore

/// The authenticated caller of a request: a user, and the personal API key they used.
public struct Principal: Sendable {
    public var user: User
    public var key: PersonalAPIKey

    public init(user: User, key: PersonalAPIKey) {
        self.user = user
        self.key = key
    }

    /// Whether the key is limited to some environments.
    public var hasScopedTeams: Bool { key.scopedTeams != nil }

    /// The organizations the key may see, nil when it is not limited.
    public var scopedOrganizations: [String]? { key.scopedOrganizations }

    /// Checks the action's required scope (API.md §1.2), in PostHog's order: legacy keys (no scopes)
    /// pass; an action without a scope refuses the key; a key with scoped projects is refused on
    /// routes that have no project; then the scope itself.
    public func check(_ required: RequiredScope, teamBasedRoute: Bool) throws(APIError) {
        guard !key.scopes.isEmpty else { return }
        guard case .scope(let object, let access) = required else {
            throw APIError.permissionDenied("This action does not support Personal API Key access")
        }
        if hasScopedTeams, !teamBasedRoute {
            throw APIError.permissionDenied("API keys with scoped projects are only supported on project-based endpoints.")
        }
        guard key.scopes.grants(object: object, access: access) else {
            throw APIError.missingScope("\(object):\(access.rawValue)")
        }
    }
}
