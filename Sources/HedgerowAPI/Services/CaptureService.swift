import HedgerowCore
import HedgerowStore

/// Event capture (API.md §5): resolves the project token and stores the request's events in one
/// transaction. A 200 is sent only after the commit: nothing accepted is lost.
public struct CaptureService: Sendable {
    let database: any Database
    let events: SQLEventStore
    let teams = TeamStore()
    let persons = PersonStore()

    public init(database: any Database, events: SQLEventStore) {
        self.database = database
        self.events = events
    }

    /// Whether a project token names an environment (a v1 request whose every event was dropped
    /// still has its token checked).
    public func isKnownToken(_ token: String) async throws -> Bool {
        try await database.read { connection in try await teams.environment(apiToken: token, on: connection) } != nil
    }

    /// Stores the events; returns how many were new (retries of stored uuids are skipped).
    public func capture(_ payload: CaptureParser.Result) async throws -> Int {
        guard
            let environment = try await database.read({ connection in
                try await teams.environment(apiToken: payload.token, on: connection)
            })
        else { throw CaptureParser.invalidToken }
        let inserted = try await database.transaction { connection in
            let stored = try await withPersons(payload, teamID: environment.id, on: connection)
            return try await events.append(stored, on: connection)
        }
        if !environment.ingestedEvent {
            try await database.transaction { connection in try await teams.markIngested(id: environment.id, on: connection) }
        }
        return inserted
    }

    /// Stamps each event with its environment and its person (created on first sight) as the
    /// event's own `$set_once`/`$set` leave them, and saves the persons that changed.
    func withPersons(_ payload: CaptureParser.Result, teamID: Int64, on connection: any SQLConnection) async throws -> [Event] {
        let distinctIDs = Array(Set(zip(payload.events, payload.personUpdates).filter { $0.1.processPerson }.map { $0.0.distinctID }))
        var known = try await persons.find(teamID: teamID, distinctIDs: distinctIDs, on: connection)
        var changed = Set<String>()
        var stored: [Event] = []
        stored.reserveCapacity(payload.events.count)
        for (event, update) in zip(payload.events, payload.personUpdates) {
            var event = event
            event.teamID = teamID
            if update.processPerson {
                var person =
                    known[event.distinctID]
                    ?? Person(
                        uuid: Identifiers.uuidV7(at: event.insertedAt), teamID: teamID, distinctID: event.distinctID,
                        properties: JSONObject(), createdAt: event.insertedAt, updatedAt: event.insertedAt)
                if person.apply(update) || known[event.distinctID] == nil {
                    person.updatedAt = event.insertedAt
                    changed.insert(event.distinctID)
                }
                known[event.distinctID] = person
                event.personID = person.uuid
                event.personProperties = JSONWriter.string(.object(person.properties))
            }
            stored.append(event)
        }
        for distinctID in changed.sorted() {
            if let person = known[distinctID] { try await persons.upsert(person, on: connection) }
        }
        return stored
    }
}
