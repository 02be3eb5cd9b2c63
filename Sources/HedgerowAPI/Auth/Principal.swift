import HedgerowCore

/// The authenticated caller of a request: a user, and the personal API key they used, or none when
/// they are signed in to the console (a session acts with all of its user's rights, as PostHog's).
package struct Principal: Sendable {
    package var user: User
    /// The key of a request authenticated by a personal API key; nil for a signed-in session.
    package var key: PersonalAPIKey?

    package init(user: User, key: PersonalAPIKey?) {
        self.user = user
        self.key = key
    }

    /// A signed-in console session's principal.
    package static func session(_ user: User) -> Principal { Principal(user: user, key: nil) }

    /// Whether the caller is a signed-in session rather than a personal API key.
    var isSession: Bool { key == nil }

    /// Whether the key is limited to some environments.
    var hasScopedTeams: Bool { key?.scopedTeams != nil }

    /// The environments the key may see, nil when it is not limited.
    package var scopedTeams: [Int64]? { key?.scopedTeams }

    /// The organizations the key may see, nil when it is not limited.
    package var scopedOrganizations: [String]? { key?.scopedOrganizations }

    /// What the rate limiter counts requests by: the key, or the signed-in user.
    var rateLimitKey: String { key?.id ?? "user:\(user.id)" }

    /// Checks the action's required scope (docs/api.md, Personal API keys), in PostHog's order: sessions and legacy
    /// keys (no scopes) pass; an action without a scope refuses the key; a key with scoped projects
    /// is refused on routes that have no project; then the scope itself.
    package func check(_ required: RequiredScope, teamBasedRoute: Bool) throws(APIError) {
        guard let key, !key.scopes.isEmpty else { return }
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
