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

/// A person as the capture path keeps them: one per distinct id of an environment, with the
/// properties `$set` and `$set_once` gave them.
public struct Person: Sendable, Equatable {
    public var uuid: String
    public var teamID: Int64
    public var distinctID: String
    public var properties: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(uuid: String, teamID: Int64, distinctID: String, properties: JSONObject, createdAt: Timestamp, updatedAt: Timestamp) {
        self.uuid = uuid
        self.teamID = teamID
        self.distinctID = distinctID
        self.properties = properties
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Applies an event's `$set_once` (keys not yet set) then `$set` (overwrites); returns whether
    /// anything changed.
    public mutating func apply(_ update: PersonUpdate) -> Bool {
        var changed = false
        for entry in (update.setOnce ?? JSONObject()).entries where properties[entry.key] == nil {
            properties[entry.key] = entry.value
            changed = true
        }
        for entry in (update.set ?? JSONObject()).entries where properties[entry.key] != entry.value {
            properties[entry.key] = entry.value
            changed = true
        }
        return changed
    }
}

/// What one event does to its person.
public struct PersonUpdate: Sendable, Equatable {
    public var set: JSONObject?
    public var setOnce: JSONObject?
    /// False when the event asked for no person profile (`$process_person_profile: false`).
    public var processPerson: Bool

    public init(set: JSONObject? = nil, setOnce: JSONObject? = nil, processPerson: Bool = true) {
        self.set = set
        self.setOnce = setOnce
        self.processPerson = processPerson
    }
}
