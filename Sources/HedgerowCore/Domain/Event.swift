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
