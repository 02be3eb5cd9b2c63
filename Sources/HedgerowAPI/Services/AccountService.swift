import Foundation
import HedgerowCore
import HedgerowStore

/// Users, memberships and personal API keys as the CLI and first start create them.
package struct AccountService: Sendable {
    let database: any Database
    let users = UserStore()
    let organizations = OrganizationStore()
    let teams = TeamStore()
    let keys = PersonalAPIKeyStore()

    static let maximumKeysPerUser = 10
    package static let labelMaxLength = 40

    package init(database: any Database) { self.database = database }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package func createUser(email: String, password: String?, firstName: String = "", lastName: String = "") async throws -> User {
        let email = email.trimmingCharacters(in: .whitespaces).lowercased()
        guard Self.isPlausibleEmail(email) else { throw Failure(description: "'\(email)' is not a valid email address") }
        let passwordHash = password.map { PasswordHasher.hash($0) } ?? PasswordHasher.unusable
        return try await database.transaction { connection in
            try await createUser(
                email: email, passwordHash: passwordHash, firstName: firstName, lastName: lastName, on: connection)
        }
    }

    /// The active user with `email` whose password is `password`, else nil. A hash made with fewer
    /// iterations than today's (an older Django's, say) is replaced by a current one on success.
    package func verifyPassword(email: String, password: String) async throws -> User? {
        let email = email.trimmingCharacters(in: .whitespaces).lowercased()
        // Read, then hash on the hashing thread with no transaction open, then write only if the
        // stored hash needs upgrading. An unknown email (or a user without a usable password) is
        // hashed against a dummy of the current cost, so it answers in the time a known one does.
        let found: (User, String)? = try await database.read { connection in
            guard let user = try await users.find(email: email, on: connection), user.isActive,
                let stored = try await users.passwordHash(userID: user.id, on: connection)
            else { return nil }
            return (user, stored)
        }
        let stored = found.map { $0.1.hasPrefix("pbkdf2_sha256$") ? $0.1 : PasswordHasher.dummy } ?? PasswordHasher.dummy
        let matches = try await PasswordHasher.verifyOffPool(password, against: stored)
        guard let (user, _) = found, matches else { return nil }
        if PasswordHasher.needsUpgrade(stored) {
            let upgraded = try await PasswordHasher.hashOffPool(password)
            try await database.transaction { connection in
                try await users.setPasswordHash(upgraded, userID: user.id, on: connection)
            }
        }
        return user
    }

    func createUser(
        email: String, passwordHash: String, firstName: String, lastName: String, on connection: any SQLConnection
    ) async throws -> User {
        if try await users.find(email: email, on: connection) != nil {
            throw Failure(description: "A user with email \(email) already exists")
        }
        let now = Timestamp.now()
        let user = User(
            id: try await Sequences.next("user", on: connection), uuid: Identifiers.uuidV7(at: now), email: email,
            firstName: firstName, lastName: lastName, isActive: true, currentOrganizationID: nil, currentTeamID: nil,
            createdAt: now)
        try await users.insert(user, passwordHash: passwordHash, on: connection)
        return user
    }

    /// Creates a key for the user with `email`; returns the plain value, shown only this once.
    package func createKey(
        email: String, label: String, scopes: [String], scopedOrganizations: [String]?, scopedTeams: [Int64]?
    ) async throws -> String {
        let parsedScopes = try Scope.parseList(scopes)
        guard label.count <= Self.labelMaxLength else {
            throw Failure(description: "Label must have no more than \(Self.labelMaxLength) characters")
        }
        let organizationIDs = try scopedOrganizations.map { ids in
            try ids.map { id in
                guard let canonical = Identifiers.canonicalUUID(id) else { throw Failure(description: "'\(id)' is not a UUID") }
                return canonical
            }
        }
        return try await database.transaction { connection in
            guard let user = try await users.find(email: email.lowercased(), on: connection) else {
                throw Failure(description: "No user with email \(email)")
            }
            return try await createKey(
                for: user, label: label, scopes: parsedScopes, scopedOrganizations: organizationIDs,
                scopedTeams: scopedTeams, on: connection)
        }
    }

    func createKey(
        for user: User, label: String, scopes: [Scope], scopedOrganizations: [String]?, scopedTeams: [Int64]?,
        on connection: any SQLConnection
    ) async throws -> String {
        guard try await keys.count(userID: user.id, on: connection) < Self.maximumKeysPerUser else {
            throw APIError.invalidInput(
                "You can only have \(Self.maximumKeysPerUser) personal API keys. Remove an existing key before creating a new one.")
        }
        let value = PersonalAPIKeyCodec.generate()
        let now = Timestamp.now()
        let key = PersonalAPIKey(
            id: Identifiers.uuidV7(at: now), userID: user.id, label: label, secureValue: PersonalAPIKeyCodec.hash(value),
            maskValue: PersonalAPIKeyCodec.mask(value), scopes: scopes, scopedTeams: scopedTeams,
            scopedOrganizations: scopedOrganizations, createdAt: now, lastUsedAt: nil)
        try await keys.insert(key, on: connection)
        return value
    }

    /// Adds an existing user to an organization, or changes their level there.
    package func addMember(organizationID: String, email: String, level: MembershipLevel) async throws {
        guard let organizationID = Identifiers.canonicalUUID(organizationID) else {
            throw Failure(description: "'\(organizationID)' is not a UUID")
        }
        try await database.transaction { connection in
            guard let user = try await users.find(email: email.lowercased(), on: connection) else {
                throw Failure(description: "No user with email \(email)")
            }
            guard try await organizations.find(id: organizationID, memberUserID: user.id, on: connection) == nil else {
                let now = Timestamp.now()
                try await organizations.setMembershipLevel(
                    organizationID: organizationID, userID: user.id, level: level, at: now, on: connection)
                return
            }
            guard try await connection.first("SELECT id FROM organizations WHERE id = $1", [.text(organizationID)]) != nil else {
                throw Failure(description: "No organization with id \(organizationID)")
            }
            try await join(
                user, organizationID: organizationID, level: level, makeCurrent: user.currentOrganizationID == nil, on: connection)
        }
    }

    /// Makes `user` a member at `level` (CLI, accepted invites); with `makeCurrent`, the organization
    /// and its first environment become the user's current ones.
    func join(
        _ user: User, organizationID: String, level: MembershipLevel, makeCurrent: Bool, at now: Timestamp = .now(),
        on connection: any SQLConnection
    ) async throws {
        try await organizations.insertMembership(
            Membership(
                id: Identifiers.uuidV7(at: now), organizationID: organizationID, userID: user.id, level: level, joinedAt: now,
                updatedAt: now), on: connection)
        guard makeCurrent else { return }
        let environment = try await teams.firstEnvironment(organizationID: organizationID, on: connection)
        try await users.setCurrent(userID: user.id, organizationID: organizationID, teamID: environment?.id, on: connection)
    }

    static func isPlausibleEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && !email.contains(where: \.isWhitespace)
            && email.count <= 254
    }
}
