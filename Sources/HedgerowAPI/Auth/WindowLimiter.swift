import HedgerowCore
import Synchronization

/// Counts events per key in a sliding window, approximated from two fixed windows (the current
/// one and the one before, weighted by how much of it still overlaps): O(1) time and memory per
/// key, whatever the limit. Used before authentication, where keys are client addresses and
/// project tokens an attacker chooses, so idle keys are dropped as the table grows. A lock, not an
/// actor: it is consulted on every request that carries credentials, and a lookup is far cheaper
/// than a hop to an actor's executor.
package final class WindowLimiter: Sendable {
    struct Entry {
        var windowStart: Double
        var current: Int
        var previous: Int
    }

    struct Table {
        var entries: [String: Entry] = [:]
        var insertsSincePrune = 0
    }

    package let limit: Int
    package let seconds: Double
    private let clock: @Sendable () -> Double
    private let table = Mutex(Table())

    package init(limit: Int, perSeconds seconds: Double = 60, clock: @escaping @Sendable () -> Double) {
        self.limit = limit
        self.seconds = seconds
        self.clock = clock
    }

    /// The seconds until `key` may go on (nil when it may now), without counting anything.
    package func wait(for key: String) -> Int? {
        let now = clock()
        return table.withLock { table in
            guard var entry = table.entries[key] else { return nil }
            roll(&entry, to: now)
            table.entries[key] = entry
            return wait(entry, now: now)
        }
    }

    /// Counts one event for `key`.
    package func record(_ key: String) {
        let now = clock()
        table.withLock { table in
            var entry = table.entries[key] ?? newEntry(now, in: &table)
            roll(&entry, to: now)
            entry.current += 1
            table.entries[key] = entry
        }
    }

    /// Counts one event for `key` if it is within the limit; else the seconds to wait.
    package func hit(_ key: String) -> Int? {
        let now = clock()
        return table.withLock { table in
            var entry = table.entries[key] ?? newEntry(now, in: &table)
            roll(&entry, to: now)
            if let wait = wait(entry, now: now) {
                table.entries[key] = entry
                return wait
            }
            entry.current += 1
            table.entries[key] = entry
            return nil
        }
    }

    /// Counts one event for every key if each is within the limit (all or none, under one lock);
    /// else the longest wait among them.
    package func hit(all keys: [String]) -> Int? {
        let now = clock()
        return table.withLock { table in
            var entries: [Entry] = []
            var longest: Int?
            for key in keys {
                var entry = table.entries[key] ?? newEntry(now, in: &table)
                roll(&entry, to: now)
                if let wait = wait(entry, now: now) { longest = max(longest ?? 0, wait) }
                entries.append(entry)
            }
            for (key, var entry) in zip(keys, entries) {
                if longest == nil { entry.current += 1 }
                table.entries[key] = entry
            }
            return longest
        }
    }

    /// Takes back one event counted for `key` in the current window (an attempt counted before it
    /// was known to succeed).
    package func forget(_ key: String) {
        table.withLock { table in
            guard var entry = table.entries[key], entry.current > 0 else { return }
            entry.current -= 1
            table.entries[key] = entry
        }
    }

    private func newEntry(_ now: Double, in table: inout Table) -> Entry {
        table.insertsSincePrune += 1
        if table.insertsSincePrune >= 4096 {
            table.insertsSincePrune = 0
            let window = seconds
            table.entries = table.entries.filter { now - $0.value.windowStart < 2 * window }
        }
        return Entry(windowStart: (now / seconds).rounded(.down) * seconds, current: 0, previous: 0)
    }

    private func roll(_ entry: inout Entry, to now: Double) {
        let start = (now / seconds).rounded(.down) * seconds
        guard start > entry.windowStart else { return }
        entry.previous = start - entry.windowStart >= 2 * seconds ? 0 : entry.current
        entry.current = 0
        entry.windowStart = start
    }

    private func wait(_ entry: Entry, now: Double) -> Int? {
        let elapsed = (now - entry.windowStart) / seconds
        let estimate = Double(entry.previous) * (1 - elapsed) + Double(entry.current)
        guard estimate >= Double(limit) else { return nil }
        return max(1, Int((entry.windowStart + seconds - now).rounded(.up)))
    }
}
