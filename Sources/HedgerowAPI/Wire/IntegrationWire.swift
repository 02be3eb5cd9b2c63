import HedgerowCore

/// PostHog's integration representation: `id`, `kind`, `config` (without secrets), `created_at`,
/// `created_by`, `errors`, `display_name`.
enum IntegrationWire {
    static func render(_ detail: IntegrationDetail) -> JSONValue {
        let integration = detail.integration
        return .object([
            "id": .int(integration.id),
            "kind": .string(integration.kind.rawValue),
            "config": .object(integration.config),
            "created_at": .string(integration.createdAt.iso8601),
            "created_by": detail.createdBy.map(TeamWire.basicUser) ?? .null,
            "errors": .string(integration.errors),
            "display_name": .string(integration.displayName),
        ])
    }
}
