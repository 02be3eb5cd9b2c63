import HedgerowCore
import HedgerowDestinations
import HedgerowStore

/// Puts the credentials of the integrations a configuration refers to where its destination reads
/// them: `integration_id` becomes an `integration` object (the integration's config with its opened
/// secrets), and Redshift's `copy_inputs.authorization` / `bucket_credentials`, when they name an
/// aws-s3 integration, become its keys. Used by the engine before a run and by destination tests.
package enum IntegrationCredentials {
    /// The configuration with every reference resolved; a reference to an integration that is gone
    /// (or of another kind) is a non-retryable `IntegrationNotFound`.
    package static func resolve(
        _ config: JSONObject, type: DestinationType, teamID: Int64, secrets: SecretBox?, on connection: any SQLConnection
    ) async throws -> JSONObject {
        var resolved = config
        let store = IntegrationStore()
        func open(_ id: Int64, field: String) async throws -> JSONObject {
            guard let row = try await store.find(id: id, teamID: teamID, on: connection),
                row.integration.kind.destinations.contains(type)
            else {
                throw DestinationError(
                    kind: .integrationNotFound, message: "the integration \(id) named by '\(field)' does not exist", retryable: false)
            }
            var merged = row.integration.config
            if let sealed = row.sealedSecrets {
                guard let secrets else {
                    throw DestinationError(kind: .secretsUnreadable, message: "this process has no secret key", retryable: true)
                }
                do {
                    for entry in try secrets.open(sealed).entries { merged[entry.key] = entry.value }
                } catch {
                    throw DestinationError(kind: .secretsUnreadable, message: String(describing: error), retryable: true)
                }
            }
            return merged
        }
        for reference in DestinationConfig.integrationReferences(in: config, type: type) {
            let opened = try await open(reference.id, field: reference.field)
            switch reference.field {
            case "integration_id": resolved["integration"] = .object(opened)
            default:
                guard case .object(var inputs)? = resolved["copy_inputs"] else { continue }
                let key = String(reference.field.dropFirst("copy_inputs.".count))
                inputs[key] = .object(opened)
                resolved["copy_inputs"] = .object(inputs)
            }
        }
        return resolved
    }
}
