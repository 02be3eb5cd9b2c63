import HedgerowCore
import HedgerowStore

/// Event capture (docs/api.md, Capturing events): resolves the project token and stores the request's events, with
/// the person and session work they cause, in one transaction. A 200 is sent only after the
/// commit: nothing accepted is lost, and a retried request changes nothing twice.
package struct CaptureService: Sendable {
    let database: any Database
    let events: SQLEventStore
    let teams = TeamStore()
    let persons = PersonStore()
    let sessions = SessionStore()
    /// Runs of a capture transaction that met another about the same persons.
    static let attempts = 8

    package init(database: any Database, events: SQLEventStore) {
        self.database = database
        self.events = events
    }

    /// Whether a project token names an environment (a v1 request whose every event was dropped
    /// still has its token checked).
    package func isKnownToken(_ token: String) async throws -> Bool {
        try await database.read { connection in try await teams.environment(apiToken: token, on: connection) } != nil
    }

    /// Stores the events; returns how many were new (retries of stored uuids are skipped).
    package func capture(_ payload: CaptureParser.Result) async throws -> Int {
        guard
            let environment = try await database.read({ connection in
                try await teams.environment(apiToken: payload.token, on: connection)
            })
        else { throw CaptureParser.invalidToken }
        var attempt = 1
        let inserted: Int
        while true {
            do {
                inserted = try await database.transaction { connection in
                    try await store(payload, teamID: environment.id, on: connection)
                }
                break
            } catch  where attempt < Self.attempts && (error is PersonProcessor.Conflict || database.isTransientConflict(error)) {
                // Two requests about the same persons met (a deadlock, or a merge in between): the
                // transaction was rolled back whole, and runs again on what is now committed.
                attempt += 1
            }
        }
        if !environment.ingestedEvent {
            try await database.transaction { connection in try await teams.markIngested(id: environment.id, on: connection) }
        }
        return inserted
    }

    /// Stores the request's new events with their person and session work; returns how many. An
    /// event whose uuid is stored already (a retried request), or repeated in the request, is left
    /// out with everything it would do: the work is done under a savepoint for the first of each
    /// uuid, and when the insert finds some stored already, it is rolled back and done again for
    /// the others. A retry costs the work twice; a new request (the usual case) asks nothing first.
    func store(_ payload: CaptureParser.Result, teamID: Int64, on connection: any SQLConnection) async throws -> Int {
        var seen = Set<String>()
        var candidates = payload.events.indices.filter { seen.insert(payload.events[$0].uuid).inserted }
        while !candidates.isEmpty {
            try await connection.execute("SAVEPOINT hedgerow_capture")
            let stamped = try await process(payload, fresh: candidates, teamID: teamID, on: connection)
            let inserted = try await events.appendReturningUUIDs(stamped, on: connection)
            if inserted.count == stamped.count {
                try await connection.execute("RELEASE SAVEPOINT hedgerow_capture")
                return inserted.count
            }
            try await connection.execute("ROLLBACK TO SAVEPOINT hedgerow_capture")
            candidates = candidates.filter { inserted.contains(payload.events[$0].uuid) }
        }
        return 0
    }

    /// Events `fresh` (indices into the request), each stamped with its environment and its person
    /// as it is after the event (PostHog's person-on-events); persons and sessions saved.
    func process(
        _ payload: CaptureParser.Result, fresh: [Int], teamID: Int64, on connection: any SQLConnection
    ) async throws -> [Event] {
        // What this request may change: the distinct ids of events with person processing
        // (personless events only read) and the sessions. What it changes is locked in one sorted
        // pass before its persons are read.
        var changing = Set<String>()
        var wanted = Set<String>()
        var sessionKeys = Set<String>()
        for index in fresh {
            let update = payload.personUpdates[index]
            let id = payload.events[index].distinctID
            wanted.insert(id)
            if update.processPerson {
                changing.insert(id)
                if let other = update.merge?.other { changing.insert(other) }
            }
            if let session = payload.sessions[index]?.sessionID { sessionKeys.insert("s:" + session) }
        }
        wanted.formUnion(changing)
        // Most requests change no person (a known user's events, a `$set` of the values it holds):
        // on PostgreSQL they are stamped from one unlocked read and take no person lock, so requests
        // about the same users do not wait for each other. Nothing is written from that read; the
        // request is as if it ran before any other that commits meanwhile. When it would change a
        // person, the work is done again from a locked read.
        if connection.dialect == .postgres, !changing.isEmpty {
            var reader = PersonProcessor(teamID: teamID, store: persons, connection: connection, locking: false)
            try await reader.preload(wanted)
            let stamped = try await stamp(payload, fresh: fresh, teamID: teamID, with: &reader)
            if !reader.hasChanges {
                try await persons.lock(teamID: teamID, keys: sessionKeys, on: connection)
                try await updateSessions(payload, fresh: fresh, teamID: teamID, on: connection)
                return stamped
            }
        }
        try await persons.lock(teamID: teamID, keys: sessionKeys.union(changing.map { "d:" + $0 }), on: connection)
        var processor = PersonProcessor(teamID: teamID, store: persons, connection: connection, locking: !changing.isEmpty)
        try await processor.preload(wanted)
        let stamped = try await stamp(payload, fresh: fresh, teamID: teamID, with: &processor)
        try await processor.flush()
        try await updateSessions(payload, fresh: fresh, teamID: teamID, on: connection)
        return stamped
    }

    /// The events `fresh`, each stamped with its environment and its person after the event, as
    /// `processor` applies their person updates.
    func stamp(
        _ payload: CaptureParser.Result, fresh: [Int], teamID: Int64, with processor: inout PersonProcessor
    ) async throws -> [Event] {
        var stamped: [Event] = []
        stamped.reserveCapacity(fresh.count)
        for index in fresh {
            var event = payload.events[index]
            event.teamID = teamID
            let update = payload.personUpdates[index]
            if update.processPerson {
                let person = try await processor.process(event, update)
                event.personID = person.uuid
                event.personProperties = processor.propertiesText(of: person)
            } else {
                (event.personID, event.personProperties) = try await processor.personless(event)
            }
            stamped.append(event)
        }
        return stamped
    }

    /// Adds the events that carry a `$session_id` to their sessions (read once, written once).
    func updateSessions(_ payload: CaptureParser.Result, fresh: [Int], teamID: Int64, on connection: any SQLConnection) async throws {
        let touched = fresh.filter { payload.sessions[$0] != nil }
        let ids = Set(touched.compactMap { payload.sessions[$0]?.sessionID })
        guard !ids.isEmpty else { return }
        var known = try await sessions.find(teamID: teamID, sessionIDs: Array(ids), on: connection)
        for index in touched {
            guard let facts = payload.sessions[index] else { continue }
            let event = payload.events[index]
            var session =
                known[facts.sessionID]
                ?? Session(
                    teamID: teamID, sessionID: facts.sessionID, distinctID: event.distinctID, at: event.timestamp,
                    insertedAt: event.insertedAt)
            session.add(facts, distinctID: event.distinctID, at: event.timestamp, insertedAt: event.insertedAt)
            known[facts.sessionID] = session
        }
        try await sessions.save(ids.sorted().compactMap { known[$0] }, on: connection)
    }
}
