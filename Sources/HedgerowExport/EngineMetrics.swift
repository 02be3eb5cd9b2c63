import Synchronization

/// This process's scheduling latency (docs/engine.md §9), as Prometheus histograms: how long after
/// a run became due it was created (the scheduler's delay), and how long after it was created its
/// first attempt started (the wait for a slot), scheduled runs and backfill runs apart.
package final class EngineMetrics: Sendable {
    /// Upper bounds of the buckets, in seconds.
    static let bounds: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]

    struct Histogram {
        var counts = [Int](repeating: 0, count: EngineMetrics.bounds.count + 1)
        var sum = 0.0

        mutating func observe(_ seconds: Double) {
            let value = max(seconds, 0)
            counts[EngineMetrics.bounds.firstIndex { value <= $0 } ?? EngineMetrics.bounds.count] += 1
            sum += value
        }
    }

    private struct State {
        var created = Histogram()
        var started: [String: Histogram] = ["scheduled": Histogram(), "backfill": Histogram()]
        var eventsDeleted = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// A scheduled run was created `seconds` after it became due.
    func observeCreated(afterDue seconds: Double) { state.withLock { $0.created.observe(seconds) } }

    /// A run's first attempt started `seconds` after the run was created.
    func observeStarted(afterCreated seconds: Double, backfill: Bool) {
        state.withLock { $0.started[backfill ? "backfill" : "scheduled", default: Histogram()].observe(seconds) }
    }

    /// Expired events were deleted.
    func observeEventsDeleted(_ count: Int) { state.withLock { $0.eventsDeleted += count } }

    /// Prometheus text exposition of both histograms and the retention counter.
    package func exposition() -> String {
        let current = state.withLock { $0 }
        var lines = [
            "# HELP hedgerow_batch_export_run_created_delay_seconds Time from a scheduled run's tick becoming due (tick plus settle) to its creation, in this process.",
            "# TYPE hedgerow_batch_export_run_created_delay_seconds histogram",
        ]
        lines += Self.series("hedgerow_batch_export_run_created_delay_seconds", labels: "", current.created)
        lines += [
            "# HELP hedgerow_batch_export_run_start_delay_seconds Time from a run's creation to the start of its first attempt, in this process.",
            "# TYPE hedgerow_batch_export_run_start_delay_seconds histogram",
        ]
        for kind in ["scheduled", "backfill"] {
            lines += Self.series(
                "hedgerow_batch_export_run_start_delay_seconds", labels: "kind=\"\(kind)\"", current.started[kind] ?? Histogram())
        }
        lines += [
            "# HELP hedgerow_events_deleted_total Events deleted by retention (HEDGEROW_EVENT_RETENTION_DAYS) in this process.",
            "# TYPE hedgerow_events_deleted_total counter",
            "hedgerow_events_deleted_total \(current.eventsDeleted)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    static func series(_ name: String, labels: String, _ histogram: Histogram) -> [String] {
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative = 0
        var lines: [String] = []
        for (index, bound) in bounds.enumerated() {
            cumulative += histogram.counts[index]
            lines.append("\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)")
        }
        cumulative += histogram.counts[bounds.count]
        lines.append("\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)")
        let suffix = labels.isEmpty ? "" : "{\(labels)}"
        lines.append("\(name)_sum\(suffix) \(histogram.sum)")
        lines.append("\(name)_count\(suffix) \(cumulative)")
        return lines
    }
}
