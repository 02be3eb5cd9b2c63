import HedgerowCore
import HedgerowFormats

/// The projection stage for files (docs/engine.md §3): an event as the row of S3 and other object-store
/// files, `uuid, event, distinct_id, person_id, properties, person_properties, elements_chain,
/// timestamp, created_at, _inserted_at`.
package enum EventProjection {
    package static let fileColumns: [FileColumn] = [
        FileColumn("uuid", .string), FileColumn("event", .string), FileColumn("distinct_id", .string), FileColumn("person_id", .string),
        FileColumn("properties", .json), FileColumn("person_properties", .json), FileColumn("elements_chain", .string),
        FileColumn("timestamp", .timestamp), FileColumn("created_at", .timestamp), FileColumn("_inserted_at", .timestamp),
    ]

    static func fileRow(_ event: Event) -> [FileValue] {
        var values = FileValues()
        withUnsafePointer(to: event) { writeFileRow($0, into: &values) }
        return values.values
    }

    /// The cells of `fileRow`, straight into an encoder's buffers. The event is read through a
    /// pointer: a copy of it would retain and release each of its strings.
    static func writeFileRow<Cells: FileCells>(_ event: UnsafePointer<Event>, into cells: inout Cells) {
        cells.string(event.pointee.uuid)
        cells.string(event.pointee.event)
        cells.string(event.pointee.distinctID)
        cells.string(event.pointee.personID)
        cells.json(event.pointee.properties)
        cells.json(event.pointee.personProperties)
        cells.string(event.pointee.elementsChain)
        cells.timestamp(event.pointee.timestamp)
        cells.timestamp(event.pointee.createdAt)
        cells.timestamp(event.pointee.insertedAt)
    }

    /// The event at `index` of a page as its file row.
    package struct PageRow: FileRow {
        let page: [Event]
        let index: Int

        package init(page: [Event], index: Int) {
            self.page = page
            self.index = index
        }

        package func write<Cells: FileCells>(into cells: inout Cells) {
            page.withUnsafeBufferPointer { events in EventProjection.writeFileRow(events.baseAddress! + index, into: &cells) }
        }
    }

    /// The events columns of the warehouses (PostHog's BigQuery schema; the JSON columns are
    /// text in stage tables): `uuid, event, properties, elements, set, set_once, distinct_id,
    /// team_id, ip, site_url, timestamp`. `elements` is the chain as a JSON string, `site_url`
    /// empty, as PostHog writes them.
    package static let warehouseColumns: [FileColumn] = [
        FileColumn("uuid", .string), FileColumn("event", .string), FileColumn("properties", .json), FileColumn("elements", .string),
        FileColumn("set", .json), FileColumn("set_once", .json), FileColumn("distinct_id", .string), FileColumn("team_id", .int64),
        FileColumn("ip", .string), FileColumn("site_url", .string), FileColumn("timestamp", .timestamp),
    ]

    static func warehouseRow(_ event: Event) throws(DestinationError) -> [FileValue] {
        let members = try PropertyMembers(event)
        func text(_ value: String?) -> FileValue { value.map(FileValue.string) ?? .null }
        return [
            .string(event.uuid), .string(event.event), .json(event.properties),
            text(event.elementsChain.map { JSONWriter.string(.string($0)) }), members.set.map(FileValue.json) ?? .null,
            members.setOnce.map(FileValue.json) ?? .null, .string(event.distinctID), .int(event.teamID), text(members.ip), .string(""),
            .timestamp(event.timestamp),
        ]
    }

    /// The members of an event's properties the warehouse columns need (`$set`, `$set_once`,
    /// `$ip`), cut out of the stored text without parsing all of it.
    package struct PropertyMembers {
        static let keys = JSONTopLevel.Keys(["$set", "$set_once", "$ip"])
        /// The members' raw text in the order of `keys`, when the scanner could follow the object.
        private let raw: [String?]?
        private let parsed: JSONObject?

        package init(_ event: Event) throws(DestinationError) {
            raw = JSONTopLevel.rawValues(in: event.properties, keys: Self.keys)
            parsed = raw == nil ? try EventProjection.storedProperties(of: event) : nil
        }

        /// A member's JSON text; nil when absent or null.
        private func json(_ position: Int) -> String? {
            if let raw {
                guard let text = raw[position], text != "null" else { return nil }
                return text
            }
            guard let value = parsed?[Self.keys.names[position]], !value.isNull else { return nil }
            return JSONWriter.string(value)
        }

        package var set: String? { json(0) }
        package var setOnce: String? { json(1) }
        /// `$ip` when it is a string (its text, unquoted).
        package var ip: String? { json(2).flatMap(Self.jsonString) }

        /// The text of a JSON string token (`"1.2.3.4"` → `1.2.3.4`); nil for any other value.
        static func jsonString(_ token: String) -> String? {
            guard token.hasPrefix("\"") else { return nil }
            if !token.utf8.contains(UInt8(ascii: "\\")) { return String(token.dropFirst().dropLast()) }
            return (try? JSONParser.parse(Array(token.utf8)))?.stringValue
        }
    }

    /// The stored properties of an event as an object. Capture stores only objects, so anything
    /// else is a damaged row: the run fails naming it, rather than exporting the event with `{}`.
    static func storedProperties(of event: Event) throws(DestinationError) -> JSONObject {
        guard let parsed = try? JSONParser.parse(event.properties), let object = parsed.objectValue else {
            throw DestinationError(
                kind: .invalidStoredEvent, message: "the stored properties of event \(event.uuid) are not a JSON object", retryable: false)
        }
        return object
    }
}
