/// Whether an export's schedule is behind (docs/engine.md §9), as the console shows it: a scheduled
/// run that has waited for a worker past its grace, or a tick whose run should exist and does not
/// (no scheduler running, or one that fell behind).
package enum Lateness {
    /// How long past due a run may wait before it counts as late: a few poll intervals and a claim.
    package static let graceMicroseconds: Int64 = 60_000_000

    /// Why `export` is late at `now`, from its latest runs (newest first, as the API lists them); nil when it is not.
    package static func reason(_ export: BatchExport, latestRuns: [BatchExportRun], now: Timestamp) -> String? {
        guard !export.paused, let schedule = try? export.schedule() else { return nil }
        let waiting = latestRuns.filter {
            $0.backfillID == nil && $0.status == .starting && now.microseconds - $0.createdAt.microseconds > graceMicroseconds
        }
        if let oldest = waiting.min(by: { $0.createdAt < $1.createdAt }) {
            let minutes = (now.microseconds - oldest.createdAt.microseconds) / 60_000_000
            return "The run ending \(oldest.dataIntervalEnd.iso8601) has waited \(max(minutes, 1)) min for a worker."
        }
        let settle = export.interval.settleMicroseconds
        let expected = schedule.tick(atOrBefore: Timestamp(microseconds: now.microseconds - settle - graceMicroseconds))
        let through = export.scheduledThrough ?? schedule.tick(atOrBefore: export.createdAt)
        guard expected > through, export.endAt.map({ expected <= $0 }) ?? true, export.startAt.map({ $0 < expected }) ?? true else {
            return nil
        }
        return "No run was created for the tick at \(expected.iso8601), due \(settle / 1_000_000) s after it: is a scheduler running?"
    }
}
