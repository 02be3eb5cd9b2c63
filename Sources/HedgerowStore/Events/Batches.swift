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
/// it), so reading and writing overlap on two cores; memory holds two batches at most.
package struct EventBatches: AsyncSequence, Sendable {
    package typealias Element = [Event]
    let fetch: @Sendable (_ after: (Timestamp, String)?) async throws -> [Event]
    let field: EventQuery.TimeField
    let batchSize: Int

    /// `fetch(after)` returns the page that follows the cursor (the last `(time, uuid)` of the page
    /// before; nil for the first); a page shorter than `batchSize` is the last.
    package init(
        field: EventQuery.TimeField, batchSize: Int, fetch: @escaping @Sendable (_ after: (Timestamp, String)?) async throws -> [Event]
    ) {
        self.fetch = fetch
        self.field = field
        self.batchSize = batchSize
    }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: EventBatches
        var started = false
        /// The page being read ahead; nil once the last one has been handed out.
        var pending: Task<[Event], any Error>?

        package mutating func next() async throws -> [Event]? {
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

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }

    /// The same batches, telling `observe` of a failed fetch before it is thrown (the engine learns
    /// of a time-out whatever a destination wraps the error in).
    package func observingFailures(_ observe: @escaping @Sendable (any Error) -> Void) -> EventBatches {
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
