import Crypto
import Foundation
import HedgerowCore
import HedgerowStore

/// Person processing for one capture request, inside its transaction (PostHog's ingestion rules):
/// each event finds or creates its person, merges another distinct id's person into it for
/// `$identify` / `$create_alias` / `$merge_dangerously`, applies `$set_once`, `$set` and `$unset`,
/// and is stamped with the person's id and properties as they then are. Reads are cached for the
/// request and every change is written once at the end.
struct PersonProcessor {
    let teamID: Int64
    let store: PersonStore
    let connection: any SQLConnection
    /// Distinct ids looked up: their mapping, or nil when they have none.
    private var mappings: [String: PersonDistinctID?] = [:]
    /// Persons read or made, by uuid.
    private var persons: [String: Person] = [:]
    private var changedMappings: Set<String> = []
    private var changedPersons: Set<String> = []
    private var mergedAway: Set<String> = []
    /// The properties of a person as JSON text, by uuid, for the version they were written at:
    /// events are stamped with it, and a person seldom changes within a request.
    private var propertiesTexts: [String: (version: Int64, text: String)] = [:]

    /// `locking`: the persons read are locked for the transaction (PostgreSQL), because this
    /// request may change them.
    let locking: Bool

    init(teamID: Int64, store: PersonStore, connection: any SQLConnection, locking: Bool) {
        self.teamID = teamID
        self.store = store
        self.connection = connection
        self.locking = locking
    }

    /// Whether processing changed a person or a mapping, or merged a person away (what `flush`
    /// would write).
    var hasChanges: Bool { !changedPersons.isEmpty || !changedMappings.isEmpty || !mergedAway.isEmpty }

    /// Another transaction merged away a person between this one reading a mapping and locking the
    /// person: the capture transaction is run again, and then reads the mapping as it now is.
    struct Conflict: Error {}

    /// Reads the mappings of `distinctIDs` and their persons in two statements.
    mutating func preload(_ distinctIDs: Set<String>) async throws {
        let wanted = distinctIDs.filter { mappings[$0] == nil }
        guard !wanted.isEmpty else { return }
        let found = try await store.distinctIDs(teamID: teamID, Array(wanted), on: connection)
        for id in wanted { mappings[id] = .some(found[id]) }
        let uuids = Set(found.values.map(\.personUUID)).filter { persons[$0] == nil }
        let read = try await store.persons(teamID: teamID, uuids: Array(uuids), forUpdate: locking, on: connection)
        if connection.dialect == .postgres, read.count < uuids.count { throw Conflict() }
        for (uuid, person) in read { persons[uuid] = person }
    }

    /// The person a distinct id belongs to, unless there is none or it was deleted.
    mutating func livePerson(_ distinctID: String) async throws -> Person? {
        if mappings[distinctID] == nil { try await preload([distinctID]) }
        guard let mapping = mappings[distinctID] ?? nil, let person = persons[mapping.personUUID], !person.isDeleted else { return nil }
        return person
    }

    /// Points a distinct id at a person: a new mapping at version 0, or a moved one a version up.
    mutating func assign(_ distinctID: String, to personUUID: String, at time: Timestamp) {
        if let existing = mappings[distinctID] ?? nil {
            guard existing.personUUID != personUUID else { return }
            var moved = existing
            moved.personUUID = personUUID
            moved.version += 1
            moved.updatedAt = time
            mappings[distinctID] = .some(moved)
        } else {
            mappings[distinctID] = .some(PersonDistinctID(teamID: teamID, distinctID: distinctID, personUUID: personUUID, updatedAt: time))
        }
        changedMappings.insert(distinctID)
    }

    mutating func newPerson(at event: Event, identified: Bool) -> Person {
        let person = Person(
            uuid: Identifiers.uuidV7(at: event.insertedAt), teamID: teamID, createdAt: event.timestamp, isIdentified: identified,
            updatedAt: event.insertedAt)
        persons[person.uuid] = person
        changedPersons.insert(person.uuid)
        return person
    }

    /// Processes one event; returns its person after the event.
    mutating func process(_ event: Event, _ update: PersonUpdate) async throws -> Person {
        var person: Person
        var changed = false
        if let merge = update.merge, merge.other != event.distinctID, PersonUpdate.canMerge(merge.other),
            PersonUpdate.canMerge(event.distinctID)
        {
            (person, changed) = try await self.merge(merge, into: event.distinctID, at: event)
        } else if let existing = try await livePerson(event.distinctID) {
            person = existing
        } else {
            person = newPerson(at: event, identified: false)
            assign(event.distinctID, to: person.uuid, at: event.insertedAt)
        }
        if person.apply(update) { changed = true }
        if changed {
            // One version per event that changed the person.
            person.version += 1
            person.updatedAt = event.insertedAt
            changedPersons.insert(person.uuid)
        }
        persons[person.uuid] = person
        return person
    }

    /// `other`'s person into `distinctID`'s; returns the resulting person and whether it changed.
    mutating func merge(_ merge: PersonUpdate.Merge, into distinctID: String, at event: Event) async throws -> (Person, Bool) {
        try await preload([distinctID, merge.other])
        let into = try await livePerson(distinctID)
        let other = try await livePerson(merge.other)
        switch (into, other) {
        case (nil, nil):
            let person = newPerson(at: event, identified: true)
            assign(distinctID, to: person.uuid, at: event.insertedAt)
            assign(merge.other, to: person.uuid, at: event.insertedAt)
            return (person, false)
        case (var person?, nil), (nil, var person?):
            assign(distinctID, to: person.uuid, at: event.insertedAt)
            assign(merge.other, to: person.uuid, at: event.insertedAt)
            let changed = !person.isIdentified
            person.isIdentified = true
            return (person, changed)
        case (var target?, let source?):
            if target.uuid == source.uuid {
                let changed = !target.isIdentified
                target.isIdentified = true
                return (target, changed)
            }
            // An identified person is never merged into another, unless the client says it must be.
            guard merge.dangerous || !source.isIdentified else { return (target, false) }
            target.absorb(source)
            for moved in try await distinctIDs(of: source.uuid) { assign(moved, to: target.uuid, at: event.insertedAt) }
            persons[source.uuid] = nil
            changedPersons.remove(source.uuid)
            mergedAway.insert(source.uuid)
            return (target, true)
        }
    }

    /// A person's distinct ids as this request now sees them.
    mutating func distinctIDs(of personUUID: String) async throws -> [String] {
        var result: [String] = []
        for mapping in try await store.distinctIDs(teamID: teamID, personUUID: personUUID, on: connection) {
            if mappings[mapping.distinctID] == nil { mappings[mapping.distinctID] = .some(mapping) }
        }
        for (id, mapping) in mappings where mapping?.personUUID == personUUID { result.append(id) }
        return result.sorted()
    }

    /// The id and properties a personless event (`$process_person_profile: false`) carries: its
    /// distinct id's person when there is one, unchanged; otherwise an id derived from the distinct
    /// id (the same every time, as PostHog's), and no properties.
    mutating func personless(_ event: Event) async throws -> (String, String?) {
        if let person = try await livePerson(event.distinctID) { return (person.uuid, propertiesText(of: person)) }
        return (Self.personlessUUID(teamID: teamID, distinctID: event.distinctID), nil)
    }

    /// `person`'s properties as JSON text, written once per version of the person.
    mutating func propertiesText(of person: Person) -> String {
        if let cached = propertiesTexts[person.uuid], cached.version == person.version { return cached.text }
        let text = JSONWriter.string(.object(person.properties))
        propertiesTexts[person.uuid] = (person.version, text)
        return text
    }

    /// A name-based UUID (version 5) of the environment and distinct id.
    static func personlessUUID(teamID: Int64, distinctID: String) -> String {
        var bytes = Array(Insecure.SHA1.hash(data: Array("hedgerow-personless:\(teamID):\(distinctID)".utf8)).prefix(16))
        bytes[6] = 0x50 | (bytes[6] & 0x0F)
        bytes[8] = 0x80 | (bytes[8] & 0x3F)
        return Identifiers.uuidString(bytes)
    }

    /// Writes every change: persons, then mappings, then the rows of persons merged away.
    func flush() async throws {
        try await store.save(changedPersons.sorted().compactMap { persons[$0] }, on: connection)
        try await store.save(changedMappings.sorted().compactMap { mappings[$0] ?? nil }, on: connection)
        try await store.remove(teamID: teamID, uuids: mergedAway.sorted(), on: connection)
    }
}
