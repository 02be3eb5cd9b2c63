import Synchronization

/// Set once when the engine is asked to stop (graceful shutdown): no more claims, and running runs
/// stop at their next batch boundary.
final class StopSignal: Sendable {
    private let stopped = Atomic<Bool>(false)

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    func stop() { stopped.store(true, ordering: .releasing) }

    /// Returns once stopped; throws when the task is cancelled.
    func wait() async throws {
        while !isStopped { try await Task.sleep(for: .milliseconds(50)) }
    }

    /// Sleeps for `duration`, waking early once stopped; throws when the task is cancelled.
    func sleep(for duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while !isStopped, ContinuousClock.now < deadline {
            try await Task.sleep(for: min(.milliseconds(50), deadline - ContinuousClock.now))
        }
    }
}

/// The first reason an attempt was interrupted, noted before the heartbeat throws.
final class InterruptionBox: Sendable {
    private let reason = Mutex<ExportEngine.Interruption?>(nil)

    var value: ExportEngine.Interruption? { reason.withLock { $0 } }

    func set(_ value: ExportEngine.Interruption) {
        reason.withLock { current in if current == nil { current = value } }
    }
}

/// The first error a run's event reads failed with.
final class ErrorBox: Sendable {
    private let error = Mutex<(any Error)?>(nil)

    var value: (any Error)? { error.withLock { $0 } }

    func set(_ value: any Error) {
        error.withLock { current in if current == nil { current = value } }
    }
}
