import HedgerowCore

/// PostHog's person representation: `id` (the uuid), `name`, `distinct_ids`, `properties`,
/// `created_at`, `uuid`.
enum PersonWire {
    static func render(_ detail: PersonDetail) -> JSONValue {
        let person = detail.person
        return .object([
            "id": .string(person.uuid),
            "name": .string(person.displayName(distinctIDs: detail.distinctIDs)),
            "distinct_ids": .array(detail.distinctIDs.map(JSONValue.string)),
            "properties": .object(person.properties),
            "created_at": .string(person.createdAt.iso8601),
            "uuid": .string(person.uuid),
        ])
    }
}
