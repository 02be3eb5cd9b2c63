import HedgerowCore

/// Which events a run reads (ENGINE.md §2): one environment, a half-open window on ingestion time
/// (scheduled runs) or event time (backfills), event-name allow and deny lists, property filters.
public struct EventQuery: Sendable, Equatable {
    public enum TimeField: String, Sendable {
        case insertedAt = "inserted_at"
        case timestamp
    }

    public var teamID: Int64
    public var field: TimeField
    /// Inclusive.
    public var start: Timestamp
    /// Exclusive.
    public var end: Timestamp
    public var includeEvents: [String]
    public var excludeEvents: [String]
    public var filters: [PropertyFilter]

    public init(
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
public protocol EventStore: Sendable {
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

/// An async sequence of event batches, fetched one keyset page at a time as it is iterated. The
/// next page is read while the caller works on the current one (a destination encoding or sending
/// it), so reading and writing overlap on two cores; memory holds two batches at most.
public struct EventBatches: AsyncSequence, Sendable {
    public typealias Element = [Event]
    let fetch: @Sendable (_ after: (Timestamp, String)?) async throws -> [Event]
    let field: EventQuery.TimeField
    let batchSize: Int

    /// `fetch(after)` returns the page that follows the cursor (the last `(time, uuid)` of the page
    /// before; nil for the first); a page shorter than `batchSize` is the last.
    public init(
        field: EventQuery.TimeField, batchSize: Int, fetch: @escaping @Sendable (_ after: (Timestamp, String)?) async throws -> [Event]
    ) {
        self.fetch = fetch
        self.field = field
        self.batchSize = batchSize
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: EventBatches
        var started = false
        /// The page being read ahead; nil once the last one has been handed out.
        var pending: Task<[Event], any Error>?

        public mutating func next() async throws -> [Event]? {
            if !started {
                started = true
                let fetch = sequence.fetch
                pending = Task { try await fetch(nil) }
            }
            guard let current = pending else { return nil }
            pending = nil
            let batch = try await withTaskCancellationHandler {
                try await current.value
            } onCancel: {
                current.cancel()
            }
            guard let last = batch.last else { return nil }
            if batch.count >= sequence.batchSize {
                let fetch = sequence.fetch
                let cursor = (sequence.field == .insertedAt ? last.insertedAt : last.timestamp, last.uuid)
                pending = Task { try await fetch(cursor) }
            }
            return batch
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }

    /// The same batches, telling `observe` of a failed fetch before it is thrown (the engine learns
    /// of a time-out whatever a destination wraps the error in).
    public func observingFailures(_ observe: @escaping @Sendable (any Error) -> Void) -> EventBatches {
        let fetch = self.fetch
        return EventBatches(field: field, batchSize: batchSize) { cursor in
            do {
                return try await fetch(cursor)
            } catch {
                observe(error)
                throw error
            }
        }
    }
}
