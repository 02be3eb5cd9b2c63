import HedgerowCore
import HedgerowFormats

/// The projection stage for files (ENGINE.md §3): an event as the row of S3 and other object-store
/// files, `uuid, event, distinct_id, person_id, properties, person_properties, elements_chain,
/// timestamp, created_at, _inserted_at`.
public enum EventProjection {
    public static let fileColumns: [FileColumn] = [
        FileColumn("uuid", .string), FileColumn("event", .string), FileColumn("distinct_id", .string), FileColumn("person_id", .string),
        FileColumn("properties", .json), FileColumn("person_properties", .json), FileColumn("elements_chain", .string),
        FileColumn("timestamp", .timestamp), FileColumn("created_at", .timestamp), FileColumn("_inserted_at", .timestamp),
    ]

    public static func fileRow(_ event: Event) -> [FileValue] {
        [
            .string(event.uuid), .string(event.event), .string(event.distinctID), event.personID.map(FileValue.string) ?? .null,
            .json(event.properties), event.personProperties.map(FileValue.json) ?? .null,
            event.elementsChain.map(FileValue.string) ?? .null,
            .timestamp(event.timestamp), .timestamp(event.createdAt), .timestamp(event.insertedAt),
        ]
    }

    /// The stored properties of an event as an object. Capture stores only objects, so anything
    /// else is a damaged row: the run fails naming it, rather than exporting the event with `{}`.
    public static func storedProperties(of event: Event) throws(DestinationError) -> JSONObject {
        guard let parsed = try? JSONParser.parse(event.properties), let object = parsed.objectValue else {
            throw DestinationError(
                kind: "InvalidStoredEvent", message: "the stored properties of event \(event.uuid) are not a JSON object", retryable: false)
        }
        return object
    }
}
