import Synchronization

/// Counts of served requests, by method, route pattern and status, with their total latency —
/// for `/metrics`. Route patterns (not paths) keep the number of series bounded. A lock, not an
/// actor: every request records here, and a hop to an actor's executor per request cost more than
/// the counting.
final class RequestMetrics: Sendable {
    struct Key: Hashable, Comparable {
        var method: String
        var route: String
        var status: Int

        static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.route, lhs.method, lhs.status) < (rhs.route, rhs.method, rhs.status)
        }
    }

    private struct Counters {
        var counts: [Key: (count: Int, seconds: Double)] = [:]
        var limited: [String: Int] = [:]
    }

    private let counters = Mutex(Counters())

    init() {}

    func record(method: String, route: String, status: Int, seconds: Double) {
        let key = Key(method: method, route: route, status: status)
        counters.withLock { counters in
            let current = counters.counts[key] ?? (0, 0)
            counters.counts[key] = (current.count + 1, current.seconds + seconds)
        }
    }

    /// A request refused by a rate limit (`api_key`, `authentication_failures`, `capture_token`).
    func recordLimited(_ reason: String) { counters.withLock { $0.limited[reason, default: 0] += 1 } }

    /// Prometheus text exposition of the counters.
    func exposition() -> String {
        let (counts, limited) = counters.withLock { ($0.counts, $0.limited) }
        var lines = [
            "# HELP hedgerow_rate_limited_total Requests refused with 429, by the limit that refused them.",
            "# TYPE hedgerow_rate_limited_total counter",
        ]
        for reason in ["api_key", "authentication_failures", "capture_token"] {
            lines.append("hedgerow_rate_limited_total{limit=\"\(reason)\"} \(limited[reason] ?? 0)")
        }
        lines += [
            "# HELP hedgerow_http_requests_total HTTP requests served, by method, route and status.",
            "# TYPE hedgerow_http_requests_total counter",
        ]
        let sorted = counts.keys.sorted()
        for key in sorted {
            lines.append(
                "hedgerow_http_requests_total{method=\"\(key.method)\",route=\"\(key.route)\",status=\"\(key.status)\"} \(counts[key]!.count)"
            )
        }
        lines += [
            "# HELP hedgerow_http_request_duration_seconds_sum Total time spent serving requests.",
            "# TYPE hedgerow_http_request_duration_seconds_sum counter",
        ]
        for key in sorted {
            lines.append(
                "hedgerow_http_request_duration_seconds_sum{method=\"\(key.method)\",route=\"\(key.route)\",status=\"\(key.status)\"} \(counts[key]!.seconds)"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
