import HedgerowCore

// What a run reads, one keyset page at a time: the events of a window, and the rows of the other
// models. The engine hands these to a destination, which projects them (`RunInput/` of
// HedgerowDestinations).

/// Batches of export rows of any model, fetched one keyset page at a time as they are iterated:
/// memory holds one batch whatever the size of the run.
package struct RecordBatches<Row: Sendable>: AsyncSequence, Sendable {
    package typealias Element = [Row]
    let start: @Sendable () -> AsyncIterator

    /// `fetch(after)` returns a page and the cursor of the next one (nil: the last page). The next
    /// page is read while the caller works on the current one (a destination writing it), so
    /// reading and writing overlap; memory holds two pages at most.
    package init<Cursor: Sendable>(fetch: @escaping @Sendable (_ after: Cursor?) async throws -> (rows: [Row], next: Cursor?)) {
        start = {
            var pending: Task<(rows: [Row], next: Cursor?), any Error>? = Task { try await fetch(nil) }
            return AsyncIterator {
                while let current = pending {
                    let (rows, next) = try await withTaskCancellationHandler {
                        try await current.value
                    } onCancel: {
                        current.cancel()
                    }
                    pending = next.map { cursor in Task { try await fetch(cursor) } }
                    if !rows.isEmpty { return rows }
                }
                return nil
            }
        }
    }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let step: () async throws -> [Row]?
        package mutating func next() async throws -> [Row]? { try await step() }
    }

    package func makeAsyncIterator() -> AsyncIterator { start() }
}

/// An async sequence of event batches, fetched one keyset page at a time as it is iterated. The
/// next page is read while the caller works on the current one (a destination encoding or sending
/// it), so reading and writing overlap on two cores; memory holds two batches at most. A page holds
/// at most `batchSize` events and about `pageBytes` of them (docs/engine.md §3): its row count
/// follows the size of the events read so far (the first page's, a sample's), so a tenant's wide
/// events make shorter pages, not a batch of gigabytes.
package struct EventBatches: AsyncSequence, Sendable {
    package typealias Element = [Event]
    /// Bytes a page holds, about, by default.
    package static let defaultPageBytes = 32 << 20

    let fetch: @Sendable (_ after: (Timestamp, String)?, _ limit: Int) async throws -> [Event]
    /// The first page's size in bytes of one event, about (a sample's average); nil when unknown.
    let firstEventBytes: @Sendable () async throws -> Int?
    let field: EventQuery.TimeField
    let batchSize: Int
    let pageBytes: Int

    /// `fetch(after, limit)` returns up to `limit` events that follow the cursor (the last
    /// `(time, uuid)` of the page before; nil for the first); a page shorter than its limit is the last.
    package init(
        field: EventQuery.TimeField, batchSize: Int, pageBytes: Int = EventBatches.defaultPageBytes,
        firstEventBytes: @escaping @Sendable () async throws -> Int? = { nil },
        fetch: @escaping @Sendable (_ after: (Timestamp, String)?, _ limit: Int) async throws -> [Event]
    ) {
        self.fetch = fetch
        self.firstEventBytes = firstEventBytes
        self.field = field
        self.batchSize = Swift.max(1, batchSize)
        self.pageBytes = Swift.max(1, pageBytes)
    }

    /// Pages of `batchSize` events whatever their size: `fetch(after)` returns the page after the cursor.
    package init(
        field: EventQuery.TimeField, batchSize: Int, fetch: @escaping @Sendable (_ after: (Timestamp, String)?) async throws -> [Event]
    ) {
        self.init(field: field, batchSize: batchSize, pageBytes: .max) { after, _ in try await fetch(after) }
    }

    /// Rows of a page whose events are about `eventBytes` each.
    func limit(eventBytes: Int?) -> Int {
        guard let eventBytes, eventBytes > 0 else { return batchSize }
        return Swift.min(batchSize, Swift.max(1, pageBytes / eventBytes))
    }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: EventBatches
        var started = false
        /// The page being read ahead, and its limit; nil once the last one has been handed out.
        var pending: (task: Task<[Event], any Error>, limit: Int)?

        package mutating func next() async throws -> [Event]? {
            if !started {
                started = true
                let (fetch, limit) = (sequence.fetch, sequence.limit(eventBytes: try await sequence.firstEventBytes()))
                pending = (Task { try await fetch(nil, limit) }, limit)
            }
            guard let (current, limit) = pending else { return nil }
            pending = nil
            let batch = try await withTaskCancellationHandler {
                try await current.value
            } onCancel: {
                current.cancel()
            }
            guard let last = batch.last else { return nil }
            if batch.count >= limit {
                let fetch = sequence.fetch
                let cursor = (sequence.field == .insertedAt ? last.insertedAt : last.timestamp, last.uuid)
                let bytes = batch.reduce(0) { $0 + $1.approximateBytes }
                let next = sequence.limit(eventBytes: bytes / batch.count)
                pending = (Task { try await fetch(cursor, next) }, next)
            }
            return batch
        }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }

    /// The same batches, telling `observe` of a failed fetch before it is thrown (the engine learns
    /// of a time-out whatever a destination wraps the error in).
    package func observingFailures(_ observe: @escaping @Sendable (any Error) -> Void) -> EventBatches {
        let (fetch, firstEventBytes) = (self.fetch, self.firstEventBytes)
        return EventBatches(
            field: field, batchSize: batchSize, pageBytes: pageBytes,
            firstEventBytes: {
                do {
                    return try await firstEventBytes()
                } catch {
                    observe(error)
                    throw error
                }
            }
        ) { cursor, limit in
            do {
                return try await fetch(cursor, limit)
            } catch {
                observe(error)
                throw error
            }
        }
    }

}
