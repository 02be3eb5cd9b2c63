import HedgerowCore

/// Per-key request limits (docs/api.md, Conventions): a burst window of a minute and a sustained window of an
/// hour, each a sliding log of request times, as DRF's throttles keep them.
package actor RateLimiter {
    package struct Window: Sendable {
        package var limit: Int
        package var seconds: Double
    }

    private let windows: [Window]
    private var history: [String: [[Double]]] = [:]
    private let clock: @Sendable () -> Double

    package init(burstPerMinute: Int, sustainedPerHour: Int, clock: @escaping @Sendable () -> Double) {
        self.windows = [Window(limit: burstPerMinute, seconds: 60), Window(limit: sustainedPerHour, seconds: 3600)]
        self.clock = clock
    }

    /// Records a request for `key`, or throws 429 with the seconds until one is allowed again.
    package func check(key: String) throws(APIError) {
        let now = clock()
        var logs = history[key] ?? Array(repeating: [], count: windows.count)
        var wait = 0.0
        for (index, window) in windows.enumerated() {
            let cutoff = now - window.seconds
            if let firstKept = logs[index].firstIndex(where: { $0 > cutoff }) {
                if firstKept > 0 { logs[index].removeFirst(firstKept) }
            } else {
                logs[index].removeAll()
            }
            if logs[index].count >= window.limit {
                let oldest = logs[index][logs[index].count - window.limit]
                wait = max(wait, oldest + window.seconds - now)
            }
        }
        if wait > 0 {
            history[key] = logs
            throw APIError.throttled(waitSeconds: max(1, Int(wait.rounded(.up))))
        }
        for index in windows.indices { logs[index].append(now) }
        history[key] = logs
    }
}
