import HedgerowCore
import HedgerowStore

/// Personal API keys over HTTP (docs/api.md, Personal API keys). A request authenticated with a personal API key may
/// read its user's keys, relabel, narrow and delete them, but not create, roll or widen keys: new
/// key values come from a signed-in console session (the console, or this API with its cookie)
/// or the CLI (`hedgerow keys create`).
package struct PersonalAPIKeyService: Sendable {
    let database: any Database
    let keys = PersonalAPIKeyStore()
    let organizations = OrganizationStore()
    let teams = TeamStore()

    package init(database: any Database) { self.database = database }

    static let keyCannotMint = APIError.permissionDenied(
        "Personal API keys cannot be created or rolled with a personal API key. Sign in to the console, or use `hedgerow keys create`.")
    static let keyCannotWiden = APIError.permissionDenied(
        "A personal API key cannot widen the scopes or limits of a personal API key. Use `hedgerow keys create` instead.")

    package func list(principal: Principal) async throws -> [PersonalAPIKey] {
        try await database.read { connection in try await keys.list(userID: principal.user.id, on: connection) }
    }

    package func retrieve(id: String, principal: Principal) async throws -> PersonalAPIKey {
        try await database.read { connection in try await find(id, principal: principal, on: connection) }
    }

    /// Creates a key for a signed-in session (PostHog's rule: a personal API key cannot mint
    /// keys); returns it with its value, shown this once.
    package func create(input: PersonalAPIKeyInput, principal: Principal) async throws -> (PersonalAPIKey, String) {
        guard principal.isSession else { throw Self.keyCannotMint }
        guard let label = input.label else { throw APIError.required("label") }
        guard let scopes = input.scopes else { throw APIError.required("scopes") }
        return try await database.transaction { connection in
            let value = try await AccountService(database: database).createKey(
                for: principal.user, label: label, scopes: scopes, scopedOrganizations: input.scopedOrganizations ?? nil,
                scopedTeams: input.scopedTeams ?? nil, on: connection)
            guard let key = try await keys.findActive(secureValue: PersonalAPIKeyCodec.hash(value), on: connection)?.0 else {
                throw APIError.serverError
            }
            try await checkLimits(key, userID: principal.user.id, on: connection)
            return (key, value)
        }
    }

    /// Gives a key a new value (the old one stops working at once); for signed-in sessions only.
    package func roll(id: String, principal: Principal) async throws -> (PersonalAPIKey, String) {
        _ = try await retrieve(id: id, principal: principal)
        guard principal.isSession else { throw Self.keyCannotMint }
        return try await database.transaction { connection in
            var key = try await find(id, principal: principal, on: connection)
            let value = PersonalAPIKeyCodec.generate()
            key.secureValue = PersonalAPIKeyCodec.hash(value)
            key.maskValue = PersonalAPIKeyCodec.mask(value)
            key.lastRolledAt = .now()
            try await keys.update(key, on: connection)
            return (key, value)
        }
    }

    package func update(id: String, input: PersonalAPIKeyInput, principal: Principal) async throws -> PersonalAPIKey {
        try await database.transaction { connection in
            var key = try await find(id, principal: principal, on: connection)
            let before = key
            if let label = input.label { key.label = label }
            if let scopes = input.scopes { key.scopes = scopes }
            if let scopedTeams = input.scopedTeams { key.scopedTeams = scopedTeams }
            if let scopedOrganizations = input.scopedOrganizations { key.scopedOrganizations = scopedOrganizations }
            try await checkLimits(key, userID: principal.user.id, on: connection)
            guard !Self.widens(from: before, to: key) else { throw Self.keyCannotWiden }
            try await keys.update(key, on: connection)
            return key
        }
    }

    package func delete(id: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let key = try await find(id, principal: principal, on: connection)
            try await keys.delete(id: key.id, on: connection)
        }
    }

    func find(_ id: String, principal: Principal, on connection: any SQLConnection) async throws -> PersonalAPIKey {
        guard let canonical = Identifiers.canonicalUUID(id),
            let key = try await keys.find(id: canonical, userID: principal.user.id, on: connection)
        else { throw APIError.notFound() }
        return key
    }

    /// A key may only be limited to organizations and environments its user belongs to.
    func checkLimits(_ key: PersonalAPIKey, userID: Int64, on connection: any SQLConnection) async throws {
        for organizationID in key.scopedOrganizations ?? [] {
            guard try await organizations.membershipLevel(organizationID: organizationID, userID: userID, on: connection) != nil else {
                throw APIError.invalidInput(
                    "You must be a member of all organizations that you are scoping the key to.", attr: "scoped_organizations")
            }
        }
        for teamID in key.scopedTeams ?? [] {
            guard let environment = try await teams.environment(id: teamID, on: connection),
                try await organizations.membershipLevel(organizationID: environment.organizationID, userID: userID, on: connection)
                    != nil
            else {
                throw APIError.invalidInput("You must be a member of all projects that you are scoping the key to.", attr: "scoped_teams")
            }
        }
    }

    /// Whether `after` grants anything `before` did not: a scope `before` lacks, or a looser
    /// organization or environment limit.
    static func widens(from before: PersonalAPIKey, to after: PersonalAPIKey) -> Bool {
        if before.scopes.isEmpty {
            // Legacy keys have every scope already.
        } else if after.scopes.isEmpty {
            return true
        } else {
            for scope in after.scopes {
                let granted =
                    scope.object.map { before.scopes.grants(object: $0, access: scope.access) } ?? before.scopes.contains(.all)
                if !granted { return true }
            }
        }
        if let limit = before.scopedTeams {
            guard let new = after.scopedTeams, Set(new).isSubset(of: limit) else { return true }
        }
        if let limit = before.scopedOrganizations {
            guard let new = after.scopedOrganizations, Set(new).isSubset(of: limit) else { return true }
        }
        return false
    }
}
