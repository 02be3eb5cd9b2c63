import HedgerowCore
import HedgerowStore

/// The rules of organizations (docs/api.md, Organizations): who may read, change and delete them, and what creating
/// and deleting one does. Every write is one transaction.
package struct OrganizationService: Sendable {
    let database: any Database
    let organizations = OrganizationStore()
    let teams = TeamStore()
    let users = UserStore()

    package init(database: any Database) { self.database = database }

    // MARK: Reading

    package func list(
        principal: Principal, limit: Int, offset: Int
    ) async throws -> (count: Int, page: [OrganizationDetails]) {
        try await database.read { connection in
            try await organizations.listDetailsForMember(
                userID: principal.user.id, restrictedTo: principal.scopedOrganizations, limit: limit, offset: offset,
                on: connection)
        }
    }

    /// The organization `id` (`@current` allowed) as the principal may see it.
    package func retrieve(id: String, principal: Principal) async throws -> OrganizationDetails {
        try await retrieveWithGeneration(id: id, principal: principal).details
    }

    /// `retrieve`, with the details generation read in the same statement (nil where the database
    /// keeps none): a cache may serve these details while `detailsGeneration()` still answers it.
    func retrieveWithGeneration(id: String, principal: Principal) async throws -> (details: OrganizationDetails, generation: Int64?) {
        try await database.read { connection in
            let resolved = try Self.resolve(id: id, principal: principal)
            guard
                let found = try await organizations.findDetailsWithGeneration(id: resolved, memberUserID: principal.user.id, on: connection)
            else { throw APIError.notFound() }
            try Self.checkKeyPolicy(found.details.organization, level: found.details.membershipLevel, principal: principal)
            return found
        }
    }

    /// The committed details generation now, or nil where the database keeps none.
    func detailsGeneration() async throws -> Int64? {
        try await database.read { connection in try await DetailsGeneration.current(on: connection) }
    }

    /// Whether details kept from an earlier `retrieveWithGeneration(id:principal:)` by the same user
    /// answer this request too: the id must resolve to them for this caller now (a key limited to
    /// other organizations gets 404), and the organization's key policy is applied again.
    func keptDetailsAnswer(_ details: OrganizationDetails, id: String, principal: Principal) throws(APIError) -> Bool {
        guard try Self.resolve(id: id, principal: principal) == details.organization.id else { return false }
        try Self.checkKeyPolicy(details.organization, level: details.membershipLevel, principal: principal)
        return true
    }

    // MARK: Writing

    package func create(input: OrganizationInput, principal: Principal) async throws -> OrganizationDetails {
        try await database.transaction { connection in
            try await createOrganization(input: input, ownerID: principal.user.id, on: connection)
        }
    }

    /// Creates an organization with its default project and environment, makes `ownerID` its owner
    /// and switches that user to it.
    func createOrganization(
        input: OrganizationInput, ownerID: Int64, on connection: any SQLConnection
    ) async throws
        -> OrganizationDetails
    {
        guard let name = input.name else { throw APIError.required("name") }
        let now = Timestamp.now()
        let slug = try await uniqueSlug(for: name, on: connection)
        var organization = Organization(id: Identifiers.uuidV7(at: now), name: name, slug: slug, createdAt: now)
        input.apply(to: &organization)
        try await organizations.insert(organization, on: connection)
        let environment = try await createDefaultProject(in: organization.id, at: now, on: connection)
        try await organizations.insertMembership(
            Membership(
                id: Identifiers.uuidV7(at: now), organizationID: organization.id, userID: ownerID, level: .owner,
                joinedAt: now, updatedAt: now), on: connection)
        try await users.setCurrent(userID: ownerID, organizationID: organization.id, teamID: environment.id, on: connection)
        return try await details(organizationID: organization.id, userID: ownerID, on: connection)
    }

    /// 404 when the caller cannot see the organization, 403 when they may not change it.
    package func checkCanUpdate(id: String, principal: Principal) async throws {
        let (_, level) = try await database.read { connection in
            try await visibleOrganization(id: id, principal: principal, on: connection)
        }
        try Self.checkCanUpdate(level: level)
    }

    static func checkCanUpdate(level: MembershipLevel) throws(APIError) {
        guard level >= .admin else { throw APIError.permissionDenied("Your organization access level is insufficient.") }
    }

    package func update(id: String, input: OrganizationInput, principal: Principal) async throws -> OrganizationDetails {
        try await database.transaction { connection in
            var (organization, level) = try await visibleOrganization(id: id, principal: principal, on: connection)
            try Self.checkCanUpdate(level: level)
            input.apply(to: &organization)
            organization.updatedAt = Timestamp.now()
            try await organizations.update(organization, on: connection)
            return try await details(organizationID: organization.id, userID: principal.user.id, on: connection)
        }
    }

    /// Deletes the organization and everything in it; users stay, and those for whom it was current
    /// move to another organization of theirs.
    package func delete(id: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let (organization, level) = try await visibleOrganization(id: id, principal: principal, on: connection)
            switch level {
            case .member: throw APIError.permissionDenied("You do not have admin access to this resource.")
            case .admin: throw APIError.permissionDenied("Your organization access level is insufficient.")
            case .owner: break
            }
            let affected = try await users.usersWithCurrentOrganization(organization.id, on: connection)
            try await organizations.delete(id: organization.id, on: connection)
            for user in affected {
                let next = try await organizations.organizationIDs(ofUser: user.id, on: connection).first
                let environment = try await next.asyncMap { try await teams.firstEnvironment(organizationID: $0, on: connection) }
                try await users.setCurrent(userID: user.id, organizationID: next, teamID: environment??.id, on: connection)
            }
        }
    }

    // MARK: Helpers

    /// Resolves `@current`, refuses malformed ids and organizations the caller (or their key) cannot
    /// see with 404, and enforces `members_can_use_personal_api_keys`.
    func visibleOrganization(
        id: String, principal: Principal, on connection: any SQLConnection
    ) async throws -> (Organization, MembershipLevel) {
        let resolved = try Self.resolve(id: id, principal: principal)
        guard let (organization, level) = try await organizations.find(id: resolved, memberUserID: principal.user.id, on: connection)
        else { throw APIError.notFound() }
        try Self.checkKeyPolicy(organization, level: level, principal: principal)
        return (organization, level)
    }

    /// The canonical id for `id` (`@current` resolved), or 404 when it is malformed or outside the
    /// key's `scoped_organizations`.
    static func resolve(id: String, principal: Principal) throws(APIError) -> String {
        let resolved: String
        if id == "@current" {
            guard let current = principal.user.currentOrganizationID else { throw APIError.notFound() }
            resolved = current
        } else {
            guard let canonical = Identifiers.canonicalUUID(id) else { throw APIError.notFound() }
            resolved = canonical
        }
        if let scoped = principal.scopedOrganizations, !scoped.contains(resolved) { throw APIError.notFound() }
        return resolved
    }

    /// docs/api.md, Personal API keys: an organization may forbid personal API keys to members below admin.
    static func checkKeyPolicy(_ organization: Organization, level: MembershipLevel, principal: Principal) throws(APIError) {
        if !principal.isSession, !organization.membersCanUsePersonalAPIKeys, level < .admin {
            throw APIError.permissionDenied(
                "Organization '\(organization.name)' does not allow using personal API keys. Contact an admin to enable personal API keys for this organization."
            )
        }
    }

    /// The organization as `userID` sees it (after a write, in the same transaction).
    func details(organizationID: String, userID: Int64, on connection: any SQLConnection) async throws -> OrganizationDetails {
        guard let details = try await organizations.findDetails(id: organizationID, memberUserID: userID, on: connection)
        else { throw APIError.notFound() }
        return details
    }

    func uniqueSlug(for name: String, on connection: any SQLConnection) async throws -> String {
        let base = Slug.forOrganization(named: name)
        if try await !organizations.slugExists(base, on: connection) { return base }
        for _ in 0..<10 {
            let candidate = Slug.withRandomSuffix(base)
            if try await !organizations.slugExists(candidate, on: connection) { return candidate }
        }
        throw APIError.invalidInput("Could not find a unique slug for this organization name; try another name.", attr: "name")
    }

    /// A project named "Default project" with its main environment (same id, same name).
    func createDefaultProject(
        in organizationID: String, at now: Timestamp, on connection: any SQLConnection
    ) async throws
        -> Environment
    {
        let id = try await Sequences.next("team", on: connection)
        let name = "Default project"
        try await teams.insertProject(
            Project(id: id, organizationID: organizationID, name: name, createdAt: now, updatedAt: now), on: connection)
        let environment = Environment(
            id: id, uuid: Identifiers.uuidV7(at: now), organizationID: organizationID, projectID: id, name: name,
            apiToken: PersonalAPIKeyCodec.generateProjectToken(), timezone: "UTC", ingestedEvent: false,
            completedSnippetOnboarding: false, isDemo: false, createdAt: now, updatedAt: now)
        try await teams.insertEnvironment(environment, on: connection)
        return environment
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let value): try await transform(value)
        case .none: nil
        }
    }
}
