import HedgerowCore

/// Counts events per key in a sliding window, approximated from two fixed windows (the current
/// one and the one before, weighted by how much of it still overlaps): O(1) time and memory per
/// key, whatever the limit. Used before authentication, where keys are client addresses and
/// project tokens an attacker chooses, so idle keys are dropped as the table grows.
public actor WindowLimiter {
    struct Entry {
        var windowStart: Double
        var current: Int
        var previous: Int
    }

    public let limit: Int
    public let seconds: Double
    private let clock: @Sendable () -> Double
    private var entries: [String: Entry] = [:]
    private var insertsSincePrune = 0

    public init(limit: Int, perSeconds seconds: Double = 60, clock: @escaping @Sendable () -> Double) {
        self.limit = limit
        self.seconds = seconds
        self.clock = clock
    }

    /// The seconds until `key` may go on (nil when it may now), without counting anything.
    public func wait(for key: String) -> Int? {
        let now = clock()
        guard var entry = entries[key] else { return nil }
        roll(&entry, to: now)
        entries[key] = entry
        return wait(entry, now: now)
    }

    /// Counts one event for `key`.
    public func record(_ key: String) {
        let now = clock()
        var entry = entries[key] ?? newEntry(now)
        roll(&entry, to: now)
        entry.current += 1
        entries[key] = entry
    }

    /// Counts one event for `key` if it is within the limit; else the seconds to wait.
    public func hit(_ key: String) -> Int? {
        let now = clock()
        var entry = entries[key] ?? newEntry(now)
        roll(&entry, to: now)
        if let wait = wait(entry, now: now) {
            entries[key] = entry
            return wait
        }
        entry.current += 1
        entries[key] = entry
        return nil
    }

    private func newEntry(_ now: Double) -> Entry {
        insertsSincePrune += 1
        if insertsSincePrune >= 4096 {
            insertsSincePrune = 0
            entries = entries.filter { now - $0.value.windowStart < 2 * seconds }
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
