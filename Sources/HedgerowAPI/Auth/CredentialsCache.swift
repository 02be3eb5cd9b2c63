import HedgerowCore
import HedgerowStore
import Synchronization

/// Personal API keys this process has authenticated, with their users, kept while the database's
/// credentials generation (`CredentialsGeneration`) stays where it was when they were read.
///
/// The generation is read again at most `recheckInterval` after the last read, and at once when
/// this process itself has moved it on; so a key revoked, rolled or narrowed by another process
/// stops working here within `recheckInterval` of that change's commit, and by this process with
/// its next request. Entries are keyed by the key's SHA-256 (never its value).
final class CredentialsCache: Sendable {
    struct Entry: Sendable {
        var key: PersonalAPIKey
        var user: User
        var generation: Int64
    }

    private struct State {
        /// The highest generation read from the database, and when the read that found it began.
        var known: Int64 = -1
        var checkedAt: ContinuousClock.Instant?
        /// Since when this process's own writes have been ahead of every committed generation read.
        var aheadSince: ContinuousClock.Instant?
        var entries: [String: Entry] = [:]
    }

    let recheckInterval: Duration
    /// The generations this process wrote to the database.
    let writes: CredentialsWrites
    /// How long this process's own uncommitted generation may stay ahead of the database before it
    /// is taken for a rolled-back write.
    static let rollbackAllowance: Duration = .seconds(5)
    static let capacity = 10_000
    private let state = Mutex(State())

    init(recheckInterval: Duration, writes: CredentialsWrites) {
        self.recheckInterval = recheckInterval
        self.writes = writes
    }

    /// The generation to serve entries at, or nil when it must be read from the database first.
    func freshGeneration(at now: ContinuousClock.Instant) -> Int64? {
        let written = writes.value
        return state.withLock { state in
            guard let checkedAt = state.checkedAt, now - checkedAt < recheckInterval, written <= state.known else { return nil }
            return state.known
        }
    }

    /// Records a committed generation read by a statement that began at `start`.
    func observe(_ generation: Int64, readAt start: ContinuousClock.Instant) {
        let written = writes.value
        var settle: Int64?
        state.withLock { state in
            if generation > state.known {
                state.known = generation
                state.entries.removeAll()
            }
            if state.checkedAt.map({ start > $0 }) ?? true { state.checkedAt = start }
            if written > state.known {
                if let since = state.aheadSince {
                    if start - since > Self.rollbackAllowance {
                        settle = state.known
                        state.aheadSince = nil
                    }
                } else {
                    state.aheadSince = start
                }
            } else {
                state.aheadSince = nil
            }
        }
        if let settle { writes.settle(committed: settle) }
    }

    /// The entry kept for a key, whatever generation it was read at (the caller compares).
    func entry(secureValue: String) -> Entry? {
        state.withLock { $0.entries[secureValue] }
    }

    /// Keeps an entry read at the generation it was read with, if that is still the current one.
    func store(_ entry: Entry, secureValue: String) {
        state.withLock { state in
            guard entry.generation == state.known else { return }
            if state.entries.count >= Self.capacity { state.entries.removeAll() }
            state.entries[secureValue] = entry
        }
    }
}
