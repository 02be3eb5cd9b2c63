import HedgerowCore

/// Which events a run reads (docs/engine.md §2): one environment, a half-open window on ingestion time
/// (scheduled runs) or event time (backfills), event-name allow and deny lists, property filters.
package struct EventQuery: Sendable, Equatable {
    package enum TimeField: String, Sendable {
        case insertedAt = "inserted_at"
        case timestamp
    }

    package var teamID: Int64
    package var field: TimeField
    /// Inclusive.
    package var start: Timestamp
    /// Exclusive.
    package var end: Timestamp
    package var includeEvents: [String]
    package var excludeEvents: [String]
    package var filters: [PropertyFilter]

    package init(
        teamID: Int64, field: TimeField, start: Timestamp, end: Timestamp, includeEvents: [String] = [],
        excludeEvents: [String] = [], filters: [PropertyFilter] = []
    ) {
        self.teamID = teamID
        self.field = field
        self.start = start
        self.end = end
        self.includeEvents = includeEvents
        self.excludeEvents = excludeEvents
        self.filters = filters
    }
}

/// The event store behind capture and the exports: appends batches, streams windows in order.
package protocol EventStore: Sendable {
    /// Stores events in one transaction (all or nothing); events whose `(team, uuid)` is already
    /// stored are skipped. Returns how many were new.
    func append(_ events: [Event]) async throws -> Int
    /// The events of a query in `(time field, uuid)` order, `batchSize` at a time; memory holds one
    /// batch, whatever the size of the window.
    func batches(_ query: EventQuery, batchSize: Int) -> EventBatches
    /// How many events match (for backfill estimates).
    func count(_ query: EventQuery) async throws -> Int
    /// The earliest value of the query's time field among matching events.
    func earliest(_ query: EventQuery) async throws -> Timestamp?
}
