import Foundation

/// A person of an environment (PostHog's person model): properties that events' `$set`,
/// `$set_once` and `$unset` shape, and a `version` that grows with every change, so that a
/// destination merging persons keeps the newest. Distinct ids point at persons
/// (`PersonDistinctID`); a merge moves the distinct ids of one person to another.
package struct Person: Sendable, Equatable {
    package var uuid: String
    package var teamID: Int64
    package var properties: JSONObject
    package var createdAt: Timestamp
    package var isIdentified: Bool
    /// Deleted through the API: kept so that the persons export can say so (`is_deleted`).
    package var isDeleted: Bool
    package var version: Int64
    /// The capture (or API) time of the latest version.
    package var updatedAt: Timestamp

    package init(
        uuid: String, teamID: Int64, properties: JSONObject = JSONObject(), createdAt: Timestamp, isIdentified: Bool = false,
        isDeleted: Bool = false, version: Int64 = 0, updatedAt: Timestamp
    ) {
        self.uuid = uuid
        self.teamID = teamID
        self.properties = properties
        self.createdAt = createdAt
        self.isIdentified = isIdentified
        self.isDeleted = isDeleted
        self.version = version
        self.updatedAt = updatedAt
    }

    /// Applies an event's `$set_once` (keys not yet set), then `$set` (overwrites), then `$unset`;
    /// returns whether anything changed.
    package mutating func apply(_ update: PersonUpdate) -> Bool {
        var changed = false
        for entry in (update.setOnce ?? JSONObject()).entries where properties[entry.key] == nil {
            properties[entry.key] = entry.value
            changed = true
        }
        for entry in (update.set ?? JSONObject()).entries where properties[entry.key] != entry.value {
            properties[entry.key] = entry.value
            changed = true
        }
        for key in update.unset where properties[key] != nil {
            properties[key] = nil
            changed = true
        }
        return changed
    }

    /// Takes in `other` (a merge into this person): this person's properties win over the other's,
    /// the earlier creation time is kept, and the result is identified.
    package mutating func absorb(_ other: Person) {
        var merged = other.properties
        for entry in properties.entries { merged[entry.key] = entry.value }
        properties = merged
        createdAt = min(createdAt, other.createdAt)
        isIdentified = true
    }

    /// PostHog's person name: the first of `email`, `name`, `username` that is a non-empty string,
    /// else the first distinct id.
    package func displayName(distinctIDs: [String]) -> String {
        for key in ["email", "name", "username"] {
            if case .string(let value)? = properties[key], !value.isEmpty { return value }
        }
        return distinctIDs.first ?? uuid
    }
}

/// Which person a distinct id belongs to; `version` grows each time the id moves to another person.
package struct PersonDistinctID: Sendable, Equatable {
    package var teamID: Int64
    package var distinctID: String
    package var personUUID: String
    package var version: Int64
    package var updatedAt: Timestamp

    package init(teamID: Int64, distinctID: String, personUUID: String, version: Int64 = 0, updatedAt: Timestamp) {
        self.teamID = teamID
        self.distinctID = distinctID
        self.personUUID = personUUID
        self.version = version
        self.updatedAt = updatedAt
    }
}

/// What one event does to its person (PostHog's ingestion): property updates, and for `$identify`,
/// `$create_alias` and `$merge_dangerously` a merge of another distinct id into the event's.
package struct PersonUpdate: Sendable, Equatable {
    package struct Merge: Sendable, Equatable {
        /// The distinct id whose person is merged into the event's distinct id's person
        /// (`$anon_distinct_id` of `$identify`, `alias` of the other two).
        package var other: String
        /// `$merge_dangerously`: merges even when the other person is identified already.
        package var dangerous: Bool
        package init(other: String, dangerous: Bool) {
            self.other = other
            self.dangerous = dangerous
        }
    }

    package var set: JSONObject?
    package var setOnce: JSONObject?
    package var unset: [String]
    /// False when the event asked for no person profile (`$process_person_profile: false`).
    package var processPerson: Bool
    package var merge: Merge?

    package init(
        set: JSONObject? = nil, setOnce: JSONObject? = nil, unset: [String] = [], processPerson: Bool = true, merge: Merge? = nil
    ) {
        self.set = set
        self.setOnce = setOnce
        self.unset = unset
        self.processPerson = processPerson
        self.merge = merge
    }

    /// The update an event asks for, from its name and (normalised) properties.
    package init(event: String, properties: JSONObject) {
        var unset: [String] = []
        switch properties["$unset"] {
        case .array(let keys)?: unset = keys.compactMap(\.stringValue)
        case .object(let keys)?: unset = keys.entries.map(\.key)
        default: break
        }
        var merge: Merge?
        switch event {
        case "$identify":
            if let anonymous = Self.distinctID(properties["$anon_distinct_id"]) { merge = Merge(other: anonymous, dangerous: false) }
        case "$create_alias", "$merge_dangerously":
            if let alias = Self.distinctID(properties["alias"]) {
                merge = Merge(other: alias, dangerous: event == "$merge_dangerously")
            }
        default: break
        }
        self.init(
            set: properties["$set"]?.objectValue, setOnce: properties["$set_once"]?.objectValue, unset: unset,
            processPerson: properties["$process_person_profile"] != .bool(false), merge: merge)
    }

    /// A distinct id given as a property (a string, or a number written as text).
    static func distinctID(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)? where !text.isEmpty: text
        case .int(let number)?: String(number)
        default: nil
        }
    }

    /// Whether `distinctID` may take part in a merge. Like PostHog, ids that clients send by
    /// mistake for every user (`anonymous`, `null`, `0`, ...) never merge persons: one such event
    /// would otherwise join every user into one person.
    package static func canMerge(_ distinctID: String) -> Bool {
        let trimmed = distinctID.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return false }
        if ["anonymous", "guest", "distinctid", "distinct_id", "id", "not_authenticated", "email", "undefined", "true", "false"]
            .contains(trimmed.lowercased())
        {
            return false
        }
        return !["[object Object]", "NaN", "None", "none", "null", "0"].contains(trimmed)
    }
}
