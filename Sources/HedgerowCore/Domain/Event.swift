/// A captured event as the event store keeps it. JSON columns are kept as JSON text, so streaming
/// them to a destination never parses them.
public struct Event: Sendable, Equatable {
    public var uuid: String
    public var teamID: Int64
    public var event: String
    public var distinctID: String
    /// A JSON object.
    public var properties: String
    public var personID: String?
    /// A JSON object, or nil.
    public var personProperties: String?
    public var elementsChain: String?
    public var timestamp: Timestamp
    public var createdAt: Timestamp
    public var insertedAt: Timestamp

    public init(
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
