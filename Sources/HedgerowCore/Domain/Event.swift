/// A captured event as the event store keeps it. JSON columns are kept as JSON text, so streaming
/// them to a destination never parses them.
package struct Event: Sendable, Equatable {
    package var uuid: String
    package var teamID: Int64
    package var event: String
    package var distinctID: String
    /// A JSON object.
    package var properties: String
    package var personID: String?
    /// A JSON object, or nil.
    package var personProperties: String?
    package var elementsChain: String?
    package var timestamp: Timestamp
    package var createdAt: Timestamp
    package var insertedAt: Timestamp

    /// The event's size in memory and in a file, about: its strings' bytes and a little for the rest.
    package var approximateBytes: Int {
        64 + uuid.utf8.count + event.utf8.count + distinctID.utf8.count + properties.utf8.count + (personID?.utf8.count ?? 0)
            + (personProperties?.utf8.count ?? 0) + (elementsChain?.utf8.count ?? 0)
    }

    package init(
        uuid: String, teamID: Int64, event: String, distinctID: String, properties: String, personID: String?,
        personProperties: String?, elementsChain: String?, timestamp: Timestamp, createdAt: Timestamp, insertedAt: Timestamp
    ) {
        self.uuid = uuid
        self.teamID = teamID
        self.event = event
        self.distinctID = distinctID
        self.properties = properties
        self.personID = personID
        self.personProperties = personProperties
        self.elementsChain = elementsChain
        self.timestamp = timestamp
        self.createdAt = createdAt
        self.insertedAt = insertedAt
    }
}
