import HedgerowCore
import HedgerowStore

/// Event capture (API.md §5): resolves the project token and stores the request's events in one
/// transaction. A 200 is sent only after the commit: nothing accepted is lost.
public struct CaptureService: Sendable {
    let database: any Database
    let events: any EventStore
    let teams = TeamStore()

    public init(database: any Database, events: any EventStore) {
        self.database = database
        self.events = events
    }

    /// Stores the events; returns how many were new (retries of stored uuids are skipped).
    public func capture(_ payload: CaptureParser.Result) async throws -> Int {
        guard
            let environment = try await database.read({ connection in
                try await teams.environment(apiToken: payload.token, on: connection)
            })
        else { throw CaptureParser.invalidToken }
        let stored = payload.events.map { event in
            var event = event
            event.teamID = environment.id
            return event
        }
        let inserted = try await events.append(stored)
        if !environment.ingestedEvent {
            try await database.transaction { connection in try await teams.markIngested(id: environment.id, on: connection) }
        }
        return inserted
    }
}
