import Foundation
import HedgerowCore
import HedgerowStore

/// First start on an empty database: an admin user, "Default organization" with its project and
/// environment, a `*` personal API key and a console password, whose values are returned once.
package struct BootstrapService: Sendable {
    let database: any Database

    package init(database: any Database) { self.database = database }

    package struct Result: Sendable {
        package let email: String
        package let organizationID: String
        package let key: String
        /// The admin's console password (random, 24 characters).
        package let password: String
    }

    /// Returns what was created, or nil when the database already has users.
    package func bootstrapIfEmpty(adminEmail: String) async throws -> Result? {
        let accounts = AccountService(database: database)
        let organizations = OrganizationService(database: database)
        // Every start asks; only the first pays for PBKDF2 (the transaction asks again, under its lock).
        guard try await database.read({ connection in try await UserStore().count(on: connection) }) == 0 else { return nil }
        let password = PersonalAPIKeyCodec.randomBase62(bytes: 18, length: 24)
        let passwordHash = PasswordHasher.hash(password)
        return try await database.transaction { connection -> Result? in
            guard try await UserStore().count(on: connection) == 0 else { return nil }
            let user = try await accounts.createUser(
                email: adminEmail, passwordHash: passwordHash, firstName: "Admin", lastName: "", on: connection)
            var input = OrganizationInput()
            input.name = "Default organization"
            let details = try await organizations.createOrganization(input: input, ownerID: user.id, on: connection)
            let key = try await accounts.createKey(
                for: user, label: "Initial key", scopes: [.all], scopedOrganizations: nil, scopedTeams: nil, on: connection)
            return Result(email: user.email, organizationID: details.organization.id, key: key, password: password)
        }
    }

    /// Writes the key to `<data dir>/initial-api-key`, readable by the owner only.
    package static func writeKeyFile(_ key: String, dataDirectory: String) throws -> String {
        try writeSecretFile(key, named: "initial-api-key", dataDirectory: dataDirectory)
    }

    /// Writes `value` to `<data dir>/<name>`, created readable by the owner only before it is written.
    package static func writeSecretFile(_ value: String, named name: String, dataDirectory: String) throws -> String {
        try PrivateFiles.directory(dataDirectory)
        let path = (dataDirectory as NSString).appendingPathComponent(name)
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try Data((value + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}
