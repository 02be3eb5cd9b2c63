import Foundation

/// Every change of a run's state (docs/engine.md §5), in one place: the engine and the API apply a
/// `RunTransition` to a run and store the result; nothing else sets `status`.
///
///     Starting ─claim→ Running ─complete→ Completed
///     FailedRetryable ─claim→ Running ─retry→ FailedRetryable (next attempt after a backoff)
///                              Running ─fail→ Failed
///                              Running ─release→ Running, unleased (shutdown: claimed again later)
///     Starting / Running / FailedRetryable ─cancel→ Cancelled
package enum RunTransition: Sendable, Equatable {
    case claim(at: Timestamp)
    case complete(records: Int64, bytes: Int64, cursor: String?, at: Timestamp)
    case retry(error: String, nextAttemptAt: Timestamp, at: Timestamp)
    case fail(error: String, at: Timestamp)
    case release(at: Timestamp)
    case cancel(at: Timestamp)

    /// A transition the run's state does not allow.
    package struct Refused: Error, Sendable, Equatable, CustomStringConvertible {
        package let from: RunStatus
        package let transition: String
        package var description: String { "a \(from.rawValue) run cannot \(transition)" }
        package init(from: RunStatus, transition: String) {
            self.from = from
            self.transition = transition
        }
    }

    package var name: String {
        switch self {
        case .claim: "be claimed"
        case .complete: "complete"
        case .retry: "be retried"
        case .fail: "fail"
        case .release: "be released"
        case .cancel: "be cancelled"
        }
    }

    /// The states a run is unfinished in: those `claim` and `cancel` start from.
    package static let unfinished: [RunStatus] = [.starting, .running, .failedRetryable]

    /// The states this transition may start from.
    var allowedFrom: Set<RunStatus> {
        switch self {
        case .claim, .cancel: Set(Self.unfinished)
        case .complete, .retry, .fail, .release: [.running]
        }
    }

    /// The run after the transition, or `Refused`.
    package func apply(to run: BatchExportRun) throws(Refused) -> BatchExportRun {
        guard allowedFrom.contains(run.status) else { throw Refused(from: run.status, transition: name) }
        var run = run
        switch self {
        case .claim(let now):
            run.status = .running
            run.attempt += 1
            if run.firstAttemptAt == nil { run.firstAttemptAt = now }
            run.lastUpdatedAt = now
        case .complete(let records, let bytes, let cursor, let now):
            run.status = .completed
            run.recordsCompleted = records
            run.recordsTotalCount = records
            run.bytesExported = bytes
            run.cursor = cursor ?? run.cursor
            run.latestError = nil
            run.finishedAt = now
            run.nextAttemptAt = nil
            run.lastUpdatedAt = now
        case .retry(let error, let next, let now):
            run.status = .failedRetryable
            run.latestError = error
            run.nextAttemptAt = next
            run.lastUpdatedAt = now
        case .fail(let error, let now):
            run.status = .failed
            run.latestError = error
            run.finishedAt = now
            run.nextAttemptAt = nil
            run.lastUpdatedAt = now
        case .release(let now):
            run.nextAttemptAt = now
            run.lastUpdatedAt = now
        case .cancel(let now):
            run.status = .cancelled
            run.finishedAt = now
            run.nextAttemptAt = nil
            run.lastUpdatedAt = now
        }
        return run
    }
}

/// When a failed attempt is tried again (docs/engine.md §5): after 1 s, doubling to at most an hour,
/// and never once the run has been retried for longer than `maximumRetryMicroseconds` since its
/// first attempt (`HEDGEROW_RUN_MAX_RETRY_HOURS`): then it fails for good, and counts for auto-pause.
package struct RetryPolicy: Sendable, Equatable {
    var firstDelayMicroseconds: Int64 = 1_000_000
    var maximumDelayMicroseconds: Int64 = 3_600_000_000
    var maximumRetryMicroseconds: Int64 = 24 * 3_600_000_000

    package init(maximumRetryHours: Double = 24) {
        maximumRetryMicroseconds = Int64(maximumRetryHours * 3_600_000_000)
    }

    /// The transition after attempt `run.attempt` failed with `error`.
    package func transition(after run: BatchExportRun, error: String, retryable: Bool, at now: Timestamp) -> RunTransition {
        guard retryable else { return .fail(error: error, at: now) }
        let shift = Int64(max(0, min(run.attempt - 1, 40)))
        let delay = shift >= 32 ? maximumDelayMicroseconds : min(firstDelayMicroseconds << shift, maximumDelayMicroseconds)
        let next = Timestamp(microseconds: now.microseconds + delay)
        let firstAttempt = run.firstAttemptAt ?? run.createdAt
        if next.microseconds - firstAttempt.microseconds > maximumRetryMicroseconds {
            let hours = Double(maximumRetryMicroseconds) / 3_600_000_000
            return .fail(
                error: "\(error) (gave up: retried for more than \(hours.formatted(maximumFractionDigits: 2)) hours)", at: now)
        }
        return .retry(error: error, nextAttemptAt: next, at: now)
    }
}

extension Double {
    /// `24`, `1.5`: no trailing zeros.
    func formatted(maximumFractionDigits: Int) -> String {
        var text = String(format: "%.\(maximumFractionDigits)f", self)
        while text.contains("."), text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
