import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowStore

/// An integration as the API shows it: with the user who made it.
struct IntegrationDetail: Sendable {
    var integration: Integration
    var createdBy: User?
}

/// PostHog's integrations API for the kinds Hedgerow's destinations use: create (secrets sealed at
/// rest, never shown), list, retrieve, delete (refused while a batch export uses it).
struct IntegrationService: Sendable {
    let database: any Database
    let secrets: SecretBox
    let outbound: OutboundPolicy
    let access = AccessService()
    let integrations = IntegrationStore()
    let exports = BatchExportStore()
    let users = UserStore()
    let clock: @Sendable () -> Timestamp

    init(
        database: any Database, secrets: SecretBox, outbound: OutboundPolicy = OutboundPolicy(),
        clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.database = database
        self.secrets = secrets
        self.outbound = outbound
        self.clock = clock
    }

    func detail(_ integration: Integration, on connection: any SQLConnection) async throws -> IntegrationDetail {
        let user = try await integration.createdByID.asyncMap { try await users.find(id: $0, on: connection) }
        return IntegrationDetail(integration: integration, createdBy: user ?? nil)
    }

    func list(
        _ parent: EnvironmentParent, kind: String?, limit: Int, offset: Int, principal: Principal
    ) async throws -> (count: Int, page: [IntegrationDetail]) {
        try await database.read { connection in
            let team = try await access.environmentID(parent, principal: principal, on: connection)
            let filter: IntegrationKind?
            if let kind, !kind.isEmpty {
                guard let known = IntegrationKind(rawValue: kind) else { return (0, []) }
                filter = known
            } else {
                filter = nil
            }
            let (count, page) = try await integrations.page(teamID: team, kind: filter, limit: limit, offset: offset, on: connection)
            var details: [IntegrationDetail] = []
            for integration in page { details.append(try await detail(integration, on: connection)) }
            return (count, details)
        }
    }

    func retrieve(_ parent: EnvironmentParent, id: String, principal: Principal) async throws -> IntegrationDetail {
        try await database.read { connection in
            let team = try await access.environmentID(parent, principal: principal, on: connection)
            return try await detail(try await find(id, teamID: team, on: connection), on: connection)
        }
    }

    /// Checks the parent before the body is read (404/403 come before 400).
    func checkParent(_ parent: EnvironmentParent, principal: Principal) async throws {
        _ = try await database.read { try await access.environmentID(parent, principal: principal, on: $0) }
    }

    func create(_ parent: EnvironmentParent, body: JSONValue, principal: Principal) async throws -> IntegrationDetail {
        let input = try IntegrationInput.parse(body)
        for host in Self.hosts(input) {
            if let reason = outbound.refusal(forHost: host) {
                throw APIError.invalidInput("The integration's host is not allowed: \(reason)", attr: "config")
            }
        }
        let sealed = input.secrets.isEmpty ? nil : try secrets.seal(input.secrets)
        return try await database.transaction { connection in
            let team = try await access.environmentID(parent, principal: principal, on: connection)
            let integration = try await integrations.insert(
                teamID: team, kind: input.kind, config: input.config, sealedSecrets: sealed, createdAt: clock(),
                createdByID: principal.user.id, on: connection)
            return IntegrationDetail(integration: integration, createdBy: principal.user)
        }
    }

    /// Refused while a batch export of the environment refers to the integration.
    func delete(_ parent: EnvironmentParent, id: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let team = try await access.environmentID(parent, principal: principal, on: connection)
            let integration = try await find(id, teamID: team, on: connection)
            let (_, rows) = try await exports.page(teamIDs: [team], limit: Int(Int32.max), offset: 0, on: connection)
            for row in rows {
                let export = row.export
                let references = DestinationConfig.integrationReferences(in: export.destinationConfig, type: export.destinationType)
                if references.contains(where: { $0.id == integration.id }) {
                    throw APIError.invalidInput(
                        "This integration is used by the batch export '\(export.name)' (\(export.id)); change or delete that export first.")
                }
            }
            try await integrations.delete(id: integration.id, teamID: team, on: connection)
        }
    }

    func find(_ id: String, teamID: Int64, on connection: any SQLConnection) async throws -> Integration {
        guard let number = Int64(id), let row = try await integrations.find(id: number, teamID: teamID, on: connection) else {
            throw APIError.notFound()
        }
        return row.integration
    }

    /// The hosts an integration connects to, for the outbound policy's check of literal addresses.
    static func hosts(_ input: IntegrationInput) -> [String] {
        switch input.kind {
        case .databricks: [input.config["server_hostname"]?.stringValue].compactMap { $0 }
        case .azureBlob:
            [
                AzureConnectionString.parse(input.secrets["connection_string"]?.stringValue ?? "").flatMap {
                    URLComponents(string: $0.blobEndpoint)?.host
                }
            ].compactMap { $0 }
        case .awsS3: []
        }
    }
}
