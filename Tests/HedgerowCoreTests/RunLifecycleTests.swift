import HedgerowCore
import Testing

@Suite("Run state machine and retry policy (docs/engine.md §5)")
struct RunLifecycleTests {
    static let t0 = Timestamp(microseconds: 1_700_000_000_000_000)
    static func at(_ seconds: Int64) -> Timestamp { Timestamp(microseconds: t0.microseconds + seconds * 1_000_000) }

    static func run(_ status: RunStatus) -> BatchExportRun {
        var run = BatchExportRun(
            id: "r", batchExportID: "e", backfillID: nil, dataIntervalStart: at(-3600), dataIntervalEnd: t0, createdAt: t0)
        run.status = status
        return run
    }

    @Test func claimStartsAnAttemptAndRemembersTheFirst() throws {
        let claimed = try RunTransition.claim(at: Self.at(5)).apply(to: Self.run(.starting))
        #expect(claimed.status == .running && claimed.attempt == 1 && claimed.firstAttemptAt == Self.at(5))
        var failed = try RunTransition.retry(error: "x", nextAttemptAt: Self.at(6), at: Self.at(5)).apply(to: claimed)
        failed = try RunTransition.claim(at: Self.at(9)).apply(to: failed)
        #expect(failed.attempt == 2 && failed.firstAttemptAt == Self.at(5))
    }

    @Test(arguments: [RunStatus.completed, .failed, .cancelled])
    func finishedRunsTakeNoTransition(_ status: RunStatus) {
        for transition: RunTransition in [
            .claim(at: Self.t0), .complete(records: 1, bytes: 1, cursor: nil, at: Self.t0), .fail(error: "x", at: Self.t0),
            .retry(error: "x", nextAttemptAt: Self.t0, at: Self.t0), .release(at: Self.t0), .cancel(at: Self.t0),
        ] {
            #expect(throws: RunTransition.Refused.self) { try transition.apply(to: Self.run(status)) }
        }
    }

    @Test func onlyARunningRunCompletesFailsOrIsReleased() throws {
        #expect(throws: RunTransition.Refused(from: .starting, transition: "complete")) {
            try RunTransition.complete(records: 1, bytes: 1, cursor: nil, at: Self.t0).apply(to: Self.run(.starting))
        }
        let done = try RunTransition.complete(records: 7, bytes: 70, cursor: "c", at: Self.at(1)).apply(to: Self.run(.running))
        #expect(done.status == .completed && done.recordsCompleted == 7 && done.finishedAt == Self.at(1) && done.nextAttemptAt == nil)
        let released = try RunTransition.release(at: Self.at(2)).apply(to: Self.run(.running))
        #expect(released.status == .running && released.nextAttemptAt == Self.at(2) && released.finishedAt == nil)
        let cancelled = try RunTransition.cancel(at: Self.at(3)).apply(to: Self.run(.failedRetryable))
        #expect(cancelled.status == .cancelled && cancelled.finishedAt == Self.at(3))
    }

    @Test func backoffDoublesToAnHourAndRetriesEndAfterTheWindow() throws {
        let policy = RetryPolicy(maximumRetryHours: 24)
        var run = try RunTransition.claim(at: Self.t0).apply(to: Self.run(.starting))
        #expect(
            policy.transition(after: run, error: "e", retryable: true, at: Self.t0)
                == .retry(error: "e", nextAttemptAt: Self.at(1), at: Self.t0))
        run.attempt = 4
        #expect(
            policy.transition(after: run, error: "e", retryable: true, at: Self.t0)
                == .retry(error: "e", nextAttemptAt: Self.at(8), at: Self.t0))
        run.attempt = 60
        #expect(
            policy.transition(after: run, error: "e", retryable: true, at: Self.at(3600))
                == .retry(error: "e", nextAttemptAt: Self.at(7200), at: Self.at(3600)))
        #expect(policy.transition(after: run, error: "e", retryable: false, at: Self.t0) == .fail(error: "e", at: Self.t0))
        let late = Self.at(24 * 3600 - 100)
        #expect(
            policy.transition(after: run, error: "e", retryable: true, at: late)
                == .fail(error: "e (gave up: retried for more than 24 hours)", at: late))
    }
}
