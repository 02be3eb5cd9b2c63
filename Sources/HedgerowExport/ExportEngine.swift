import AsyncHTTPClient
import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowStore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// The engine's settings.
package struct EngineConfiguration: Sendable {
    /// Runs executed at once by this process.
    package var concurrency = 2
    /// How often the scheduler and workers look for work.
    package var pollInterval: Duration = .seconds(1)
    /// How long a claimed run is held without a heartbeat before another worker may take it over.
    package var leaseMicroseconds: Int64 = 60_000_000
    /// Whether this process schedules (a `hedgerow worker` only executes).
    package var schedules = true
    /// Events read per batch.
    package var batchSize = 10_000
    /// Called (POST, JSON) when an export is paused for failing (`HEDGEROW_ALERT_WEBHOOK_URL`).
    package var alertWebhookURL: String?
    /// Whether HTTP destinations may use plain `http://` (`HEDGEROW_ALLOW_INSECURE_HTTP_DESTINATIONS=1`).
    package var allowInsecureHTTP = false
    /// Multipart part size and parts in flight of S3 uploads (`HEDGEROW_S3_PART_SIZE_MB`,
    /// `HEDGEROW_S3_UPLOADS_IN_FLIGHT`).
    package var s3 = S3Destination.Options()
    /// Azure Blob block size and blocks in flight.
    package var azureBlob = AzureBlobDestination.Options()
    /// Where the warehouses' APIs are (`HEDGEROW_BIGQUERY_URL`).
    package var endpoints = Destinations.Endpoints()
    /// Runs of one backfill executed at once, oldest first (`HEDGEROW_BACKFILL_CONCURRENCY`, docs/engine.md §6).
    package var backfillConcurrency = 1
    /// Backoff of failed attempts and how long a run is retried (`HEDGEROW_RUN_MAX_RETRY_HOURS`).
    package var retry = RetryPolicy()
    /// How long a shutdown waits for running runs to reach a batch boundary
    /// (`HEDGEROW_SHUTDOWN_GRACE_SECONDS`); then they are stopped where they are.
    package var shutdownGrace: Duration = .seconds(30)
    /// How often a running attempt renews its lease besides between batches (default: a third of it).
    package var heartbeatInterval: Duration?
    /// Which addresses destinations and the alert webhook may connect to
    /// (`HEDGEROW_DESTINATION_ALLOW_NETWORKS`, `HEDGEROW_DESTINATION_DENY_NETWORKS`).
    package var outbound = OutboundPolicy()
    /// Each event read's statement time limit (`HEDGEROW_EVENT_QUERY_TIMEOUT_SECONDS`); a run
    /// whose read hits it fails (a property filter's regular expression too slow for the data).
    package var eventQueryTimeout: Duration = .seconds(60)
    /// Events older than this many days that every export has read are deleted
    /// (`HEDGEROW_EVENT_RETENTION_DAYS`; nil keeps every event).
    package var eventRetentionDays: Int?
    /// How often the retention sweep runs (in the scheduling process).
    package var retentionInterval: Duration = .seconds(60)
    package init() {}
}

/// The export engine (docs/engine.md §1, §5, §6): creates due runs idempotently, claims runs with a
/// lease, streams each run's events to its destination, records the outcome, and completes
/// backfills. A lifecycle service in `hedgerow serve` (and `hedgerow worker`); tests drive `step`.
///
/// Every attempt ends in a recorded outcome (`RunTransition`), written only while this worker still
/// holds the run's lease: a worker that lost it (paused past its lease, another worker took over)
/// stops and changes nothing. The lease is renewed between batches and on a timer during long steps.
package struct ExportEngine: Service {
    let database: any Database
    let secrets: SecretBox?
    let configuration: EngineConfiguration
    let clock: @Sendable () -> Timestamp
    let logger: Logger
    let owner: String
    let exports = BatchExportStore()
    let events: SQLEventStore
    /// The persons and sessions models.
    let models: ModelRecordStore
    let stopping = StopSignal()
    /// Scheduling latency, for `/metrics`.
    let metrics: EngineMetrics

    /// `secrets` opens destination secrets (nil when no export needs them, as in some tests).
    package init(
        database: any Database, secrets: SecretBox? = nil, configuration: EngineConfiguration = EngineConfiguration(), logger: Logger,
        metrics: EngineMetrics = EngineMetrics(), clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.metrics = metrics
        self.database = database
        self.secrets = secrets
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.owner = Identifiers.uuidV7()
        self.events = SQLEventStore(database: database, statementTimeout: configuration.eventQueryTimeout)
        self.models = ModelRecordStore(database: database, statementTimeout: configuration.eventQueryTimeout)
    }

    /// Runs until the service group shuts down (docs/engine.md §6): the scheduler and the worker
    /// slots are two loops that never wait on each other. The scheduler creates due runs every poll
    /// interval whatever is in flight; the workers keep `concurrency` slots busy, claiming again as
    /// soon as a run ends (and every poll interval). A failed round is logged and retried. On
    /// graceful shutdown (SIGTERM) nothing more is claimed; running runs stop at their next batch
    /// boundary, or when `shutdownGrace` has passed, and release their leases for another worker.
    package func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                if configuration.schedules { group.addTask { await scheduleLoop() } }
                if configuration.schedules, configuration.eventRetentionDays != nil { group.addTask { await retentionLoop() } }
                group.addTask { await workLoop() }
            }
        } onGracefulShutdown: {
            stopping.stop()
        }
    }

    /// Stops claiming; running runs stop at their next batch boundary (what SIGTERM does).
    package func shutDown() { stopping.stop() }

    /// One round, for tests: schedule what is due, then execute claimable runs, a slot-full at a
    /// time, until none is left.
    package func step() async throws {
        if configuration.schedules, !stopping.isStopped { try await scheduleDueRuns() }
        while !stopping.isStopped {
            let claimed = try await claim(limit: configuration.concurrency)
            if claimed.isEmpty { return }
            await withTaskGroup(of: Void.self) { group in
                for run in claimed { group.addTask { await execute(run) } }
            }
        }
    }

    /// Creates due runs every poll interval until the engine stops.
    func scheduleLoop() async {
        while !Task.isCancelled, !stopping.isStopped {
            do {
                try await scheduleDueRuns()
            } catch is CancellationError {
                return
            } catch {
                logger.error("Scheduling failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await stopping.sleep(for: configuration.pollInterval)
        }
    }

    /// Deletes expired events every `retentionInterval` until the engine stops.
    func retentionLoop() async {
        while !Task.isCancelled, !stopping.isStopped {
            do {
                _ = try await sweepExpiredEvents()
            } catch is CancellationError {
                return
            } catch {
                logger.error("Deleting expired events failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await stopping.sleep(for: configuration.retentionInterval)
        }
    }

    /// One retention sweep (docs/engine.md §8): deletes the events every export has read that are
    /// older than the retention horizon, in small transactions, then gives the space back. Returns
    /// how many were deleted.
    func sweepExpiredEvents() async throws -> Int {
        guard let days = configuration.eventRetentionDays else { return 0 }
        let horizon = Timestamp(microseconds: clock().microseconds - Int64(days) * 86_400_000_000)
        let deleted = try await EventRetention(database: database).sweep(horizon: horizon) { stopping.isStopped }
        if deleted > 0 {
            metrics.observeEventsDeleted(deleted)
            logger.info("Deleted expired events", metadata: ["events": "\(deleted)", "horizon": "\(horizon.iso8601)"])
            try await database.releaseFreeSpace()
        }
        return deleted
    }

    /// Keeps `concurrency` slots busy until the engine stops: claims as many runs as slots are free
    /// whenever a run ends or a poll interval has passed, then waits for running runs to stop.
    func workLoop() async {
        enum Event: Sendable {
            case ended(backfill: Bool)
            case polled
        }
        await withTaskGroup(of: Event.self) { group in
            var running = 0
            var backfills = 0
            var polling = false
            while !Task.isCancelled, !stopping.isStopped {
                let free = configuration.concurrency - running
                if free > 0 {
                    do {
                        for run in try await claim(limit: free, backfillsRunning: backfills) {
                            running += 1
                            if run.backfillID != nil { backfills += 1 }
                            group.addTask {
                                await execute(run)
                                return .ended(backfill: run.backfillID != nil)
                            }
                        }
                    } catch is CancellationError {
                        break
                    } catch {
                        logger.error("Claiming runs failed", metadata: ["error": "\(String(reflecting: error))"])
                    }
                }
                if !polling {
                    polling = true
                    group.addTask {
                        try? await stopping.sleep(for: configuration.pollInterval)
                        return .polled
                    }
                }
                switch await group.next() {
                case .ended(let backfill)?:
                    running -= 1
                    if backfill { backfills -= 1 }
                case .polled?: polling = false
                case nil: return
                }
            }
        }
    }

    // MARK: Scheduling

    /// Creates the runs of every tick that is due and has none yet, oldest first; ticks missed
    /// while the server was down are caught up (docs/engine.md §1). Only exports with a run due (or
    /// changed since they were last looked at) are read: each records when its next run is due.
    func scheduleDueRuns() async throws {
        let now = clock()
        let (active, unreadable) = try await database.read { try await exports.active(dueBy: now, on: $0) }
        for (id, error) in unreadable {
            logger.error(
                "Batch export not scheduled: its stored row is unreadable", metadata: ["batch_export": "\(id)", "error": "\(error)"])
        }
        for row in active {
            let export = row.export
            let schedule: Schedule
            do {
                schedule = try export.schedule()
            } catch {
                // Never in UTC instead: the export waits until its zone is known again.
                logger.error("Batch export not scheduled", metadata: ["batch_export": "\(export.id)", "error": "\(error.message)"])
                continue
            }
            let settle = export.interval.settleMicroseconds
            let last = export.scheduledThrough ?? schedule.tick(atOrBefore: export.createdAt)
            var horizon = Timestamp(microseconds: now.microseconds - settle)
            if let endAt = export.endAt, endAt < horizon { horizon = endAt }
            let due = schedule.ticks(after: last, upTo: horizon, limit: Self.ticksPerRound)
            // When the next tick's run becomes due; never again past `end_at`; at the next poll
            // when this round stopped at its limit.
            let through = due.last ?? last
            let nextTick = schedule.tick(after: through)
            let nextLook =
                due.count == Self.ticksPerRound
                ? now
                : export.endAt.map { nextTick > $0 } == true
                    ? Timestamp(microseconds: Int64.max) : Timestamp(microseconds: nextTick.microseconds + settle)
            guard let lastDue = due.last else {
                try await database.transaction { connection in
                    try await exports.setNextSchedule(id: export.id, at: nextLook, ifUnchangedSince: export.lastUpdatedAt, on: connection)
                }
                continue
            }
            let created = try await database.transaction { connection in
                var created: [Timestamp] = []
                for tick in due {
                    let interval = schedule.dataInterval(endingAt: tick)
                    if let startAt = export.startAt, interval.start < startAt { continue }
                    var run = BatchExportRun(
                        id: Identifiers.uuidV7(at: now), batchExportID: export.id, backfillID: nil, dataIntervalStart: interval.start,
                        dataIntervalEnd: tick, createdAt: now)
                    run.nextAttemptAt = now
                    if try await exports.insertRun(run, on: connection) {
                        created.append(tick)
                        try await log(
                            export.id, run: run.id, .info, "Run scheduled for \(interval.start.iso8601) – \(tick.iso8601).", on: connection
                        )
                    }
                }
                try await exports.setScheduledThrough(id: export.id, tick: lastDue, on: connection)
                try await exports.setNextSchedule(id: export.id, at: nextLook, ifUnchangedSince: export.lastUpdatedAt, on: connection)
                return created
            }
            // Counted once committed: a rolled-back round created nothing.
            for tick in created { metrics.observeCreated(afterDue: Double(now.microseconds - tick.microseconds - settle) / 1e6) }
        }
    }

    /// Ticks one export gets runs for in one round (the rest of a long catch-up in the next rounds).
    static let ticksPerRound = 1000

    // MARK: Claiming

    /// Takes up to `limit` runs that are due and not held by a live lease (docs/engine.md §6):
    /// scheduled runs first, round-robin across teams and exports; then backfill runs, round-robin
    /// too, runs of one backfill `backfillConcurrency` at a time. Backfill runs never hold the last
    /// of this process's slots (`backfillsRunning` of them are running already): one slot is always
    /// left for a scheduled run that becomes due. With a single slot, a backfill run takes it only
    /// when no scheduled run is waiting.
    func claim(limit: Int, backfillsRunning: Int = 0) async throws -> [BatchExportRun] {
        let now = clock()
        let slots = configuration.concurrency
        let (claimed, alerts) = try await database.transaction { connection in
            var claimed: [BatchExportRun] = []
            var alerts: [JSONValue] = []
            let scheduled = try await exports.claimableScheduledRuns(now: now, limit: limit, on: connection)
            let backfillSlots =
                slots > 1 ? min(limit - scheduled.count, slots - 1 - backfillsRunning) : (scheduled.isEmpty ? limit : 0)
            let backfills = try await exports.claimableBackfillRuns(
                now: now, limit: backfillSlots, backfillConcurrency: configuration.backfillConcurrency, on: connection)
            for candidate in scheduled + backfills {
                if candidate.status == .running,
                    let abandoned = try await exports.countAbandonedAttempt(runID: candidate.id, at: now, on: connection),
                    abandoned >= Self.abandonedAttemptLimit
                {
                    if let alert = try await failAbandoned(candidate, attempts: abandoned, at: now, on: connection) { alerts.append(alert) }
                    continue
                }
                let run = try RunTransition.claim(at: now).apply(to: candidate)
                try await exports.claim(
                    run, owner: owner, leaseUntil: Timestamp(microseconds: now.microseconds + configuration.leaseMicroseconds),
                    on: connection)
                claimed.append(run)
            }
            return (claimed, alerts)
        }
        // Counted once the claims are committed: a rolled-back claim started nothing.
        for run in claimed where run.attempt == 1 {
            metrics.observeStarted(
                afterCreated: Double(now.microseconds - run.createdAt.microseconds) / 1e6, backfill: run.backfillID != nil)
        }
        for alert in alerts { await send(alert) }
        return claimed
    }

    /// Attempts of one run that may end with their process dying before the run is failed instead
    /// of tried again: a run whose data kills the process must not kill it at every restart.
    static let abandonedAttemptLimit: Int64 = 2

    /// Fails a run whose attempts kept ending with the process dying (it is not retried: retrying
    /// would take the process down again), and counts it for auto-pause. Returns the alert to send.
    func failAbandoned(
        _ run: BatchExportRun, attempts: Int64, at now: Timestamp, on connection: any SQLConnection
    ) async throws -> JSONValue? {
        let error =
            "ProcessDied: the process running this run stopped without finishing it in \(attempts) attempts (the last began"
            + " \(run.lastUpdatedAt.iso8601)); it is not tried again, so that it cannot stop the server again."
            + " See the server's log for the crash, then retry the run."
        let failed = try RunTransition.fail(error: error, at: now).apply(to: run)
        try await exports.updateRun(failed, on: connection)
        try await exports.releaseLease(runID: run.id, on: connection)
        try await log(run.batchExportID, run: run.id, .error, "Run failed: \(error)", on: connection)
        logger.error("A run's attempts kept ending with the process dying; it is failed", metadata: ["run": "\(run.id)"])
        guard let export = try await exports.find(id: run.batchExportID, on: connection)?.export else { return nil }
        if let backfillID = run.backfillID { try await finishBackfillIfDone(backfillID, export: export, at: now, on: connection) }
        return try await pauseIfFailing(export, at: now, on: connection)
    }

    // MARK: Executing

    /// Why an attempt stopped before its destination finished. Set by the heartbeat before it
    /// throws, so the engine knows the reason whatever error the destination wraps it in.
    enum Interruption: Error, Equatable {
        case cancelled
        case leaseLost
        case shuttingDown
    }

    /// How an attempt ended.
    enum Outcome {
        case delivered(DeliveryResult)
        case failed(DestinationError)
        case interrupted(Interruption)
    }

    /// One attempt of a claimed run, to a recorded outcome. Nothing escapes: an error while
    /// recording is logged, and the run's lease then expires so that it is tried again.
    func execute(_ run: BatchExportRun) async {
        let outcome = await attempt(run)
        do {
            try await record(outcome, of: run)
        } catch {
            logger.error(
                "The outcome of a run could not be recorded; it is tried again when its lease expires",
                metadata: ["run": "\(run.id)", "error": "\(String(reflecting: error))"])
        }
    }

    func attempt(_ run: BatchExportRun) async -> Outcome {
        let interruption = InterruptionBox()
        let readFailure = ErrorBox()
        do {
            guard let row = try await database.read({ try await exports.find(id: run.batchExportID, on: $0) }) else {
                throw DestinationError(kind: .exportNotFound, message: "the batch export no longer exists", retryable: false)
            }
            var opened = row.export
            if let sealed = row.sealedSecrets {
                guard let secrets else {
                    throw DestinationError(kind: .secretsUnreadable, message: "this process has no secret key", retryable: true)
                }
                let secret: JSONObject
                do {
                    secret = try secrets.open(sealed)
                } catch {
                    throw DestinationError(kind: .secretsUnreadable, message: String(describing: error), retryable: true)
                }
                opened.destinationConfig = DestinationConfig.deepMerge(opened.destinationConfig, secret)
            }
            if !DestinationConfig.integrationReferences(in: opened.destinationConfig, type: opened.destinationType).isEmpty {
                let unresolved = opened
                opened.destinationConfig = try await database.read { [secrets] connection in
                    try await IntegrationCredentials.resolve(
                        unresolved.destinationConfig, type: unresolved.destinationType, teamID: unresolved.teamID, secrets: secrets,
                        on: connection)
                }
            }
            let export = opened
            try await database.transaction {
                try await log(export.id, run: run.id, .info, "Run started (attempt \(run.attempt)).", on: $0)
            }
            let destination = Destinations.make(
                export.destinationType, logger: logger, connector: OutboundConnector(policy: configuration.outbound),
                allowInsecureHTTP: configuration.allowInsecureHTTP, s3: configuration.s3, azureBlob: configuration.azureBlob,
                endpoints: configuration.endpoints)
            let runID = run.id
            let overlaps =
                run.backfillID == nil
                ? false
                : try await database.read {
                    try await exports.hasCompletedScheduledRun(batchExportID: export.id, endingAt: run.dataIntervalEnd, on: $0)
                }
            let context = try DeliveryContext(export: export, run: run, overlapsCompletedScheduledRun: overlaps) { level, message in
                try await database.transaction { try await log(export.id, run: runID, level, message, on: $0) }
            }
            let query = EventQuery(
                teamID: export.teamID, field: run.backfillID == nil ? .insertedAt : .timestamp, start: context.dataIntervalStart,
                end: run.dataIntervalEnd, includeEvents: export.includeEvents, excludeEvents: export.excludeEvents,
                filters: try export.propertyFilters())
            let records: RunRecords
            let window = ModelQuery(
                teamID: export.teamID, start: context.dataIntervalStart, end: run.dataIntervalEnd, isBackfill: run.backfillID != nil)
            switch export.model {
            case .persons: records = .persons(models.persons(window, batchSize: configuration.batchSize))
            case .sessions: records = .sessions(models.sessions(window, batchSize: configuration.batchSize))
            case .events:
                records = .events(events.batches(query, batchSize: configuration.batchSize).observingFailures { readFailure.set($0) })
            }
            let result = try await whileLeased(runID, interruption: interruption) {
                try await destination.deliver(records, context: context) { progress in
                    try await heartbeat(runID, cursor: progress.cursor, atBatchBoundary: true, interruption: interruption)
                }
            }
            return .delivered(result)
        } catch {
            if let reason = interruption.value { return .interrupted(reason) }
            if let timeout = readFailure.value as? StatementTimeout {
                return .failed(
                    DestinationError(
                        kind: .eventQueryTimeout,
                        message:
                            "reading the run's events took longer than \(timeout.seconds) s (HEDGEROW_EVENT_QUERY_TIMEOUT_SECONDS); a property filter, such as a regular expression, is too slow for this data",
                        retryable: false))
            }
            if let classified = error as? DestinationError { return .failed(classified) }
            if let refused = error as? OutboundConnector.Refused { return .failed(refused.destinationError) }
            if let stored = error as? StoredExportError {
                return .failed(DestinationError(kind: .invalidBatchExport, message: stored.message, retryable: false))
            }
            if error is CancellationError { return .interrupted(.shuttingDown) }
            return .failed(DestinationError(kind: .internalError, message: String(describing: error), retryable: true))
        }
    }

    /// Runs `body` while a timer renews the lease (every third of it), and while a shutdown waits
    /// at most `shutdownGrace` for `body` to reach a batch boundary.
    func whileLeased<T: Sendable>(
        _ runID: String, interruption: InterruptionBox, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                let interval = configuration.heartbeatInterval ?? .microseconds(max(configuration.leaseMicroseconds / 3, 1000))
                while true {
                    try await Task.sleep(for: interval)
                    try await heartbeat(runID, cursor: nil, atBatchBoundary: false, interruption: interruption)
                }
            }
            group.addTask {
                try await stopping.wait()
                try await Task.sleep(for: configuration.shutdownGrace)
                interruption.set(.shuttingDown)
                throw Interruption.shuttingDown
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }

    /// Renews the lease. Throws (and notes why) when another worker holds the run now, when it was
    /// cancelled, or, at a batch boundary, when the engine is shutting down.
    func heartbeat(_ runID: String, cursor: String?, atBatchBoundary: Bool, interruption: InterruptionBox) async throws {
        let now = clock()
        let check = try await database.transaction { connection in
            try await exports.renewLease(
                runID: runID, owner: owner, until: Timestamp(microseconds: now.microseconds + configuration.leaseMicroseconds),
                cursor: cursor, at: now, on: connection)
        }
        let reason: Interruption?
        switch check {
        case .lost: reason = .leaseLost
        case .held(.cancelled): reason = .cancelled
        case .held: reason = atBatchBoundary && stopping.isStopped ? .shuttingDown : nil
        }
        if let reason {
            interruption.set(reason)
            throw reason
        }
    }

    /// Writes the attempt's outcome through the run's state machine, only while this worker holds
    /// the lease; completes the backfill and pauses a failing export as docs/engine.md §5–6 say.
    func record(_ outcome: Outcome, of run: BatchExportRun) async throws {
        if case .interrupted(.leaseLost) = outcome {
            logger.warning("Run lost its lease to another worker; this attempt stops and records nothing", metadata: ["run": "\(run.id)"])
            return
        }
        let now = clock()
        let alert = try await database.transaction { connection -> JSONValue? in
            guard let current = try await exports.leasedRun(id: run.id, owner: owner, on: connection) else {
                logger.warning("Run lost its lease to another worker; its outcome is not recorded", metadata: ["run": "\(run.id)"])
                return nil
            }
            if current.status == .cancelled {
                // Cancelled meanwhile: it stays cancelled; the lease is released.
                _ = try await exports.finish(current, owner: owner, on: connection)
                try await log(run.batchExportID, run: run.id, .info, "Run stopped: it was cancelled.", on: connection)
                return nil
            }
            var base = run
            // Keep the resume point the heartbeats recorded.
            base.cursor = current.cursor ?? run.cursor
            let transition: RunTransition
            switch outcome {
            case .delivered(let result):
                transition = .complete(records: result.records, bytes: result.bytes, cursor: result.cursor, at: now)
            case .failed(let error):
                transition = configuration.retry.transition(after: base, error: error.description, retryable: error.retryable, at: now)
            case .interrupted:
                transition = .release(at: now)
            }
            let next = try transition.apply(to: base)
            guard try await exports.finish(next, owner: owner, on: connection) else { return nil }
            switch transition {
            case .complete(let records, let bytes, _, _):
                try await log(
                    run.batchExportID, run: run.id, .info, "Run completed: \(records) record(s), \(bytes) byte(s).", on: connection)
            case .retry(let error, let nextAttempt, _):
                try await log(
                    run.batchExportID, run: run.id, .warning, "Run failed, will retry at \(nextAttempt.iso8601): \(error)", on: connection)
            case .fail(let error, _):
                try await log(run.batchExportID, run: run.id, .error, "Run failed: \(error)", on: connection)
            default:
                try await log(
                    run.batchExportID, run: run.id, .info, "Run stopped for a shutdown; it continues on the next claim.", on: connection)
            }
            guard let export = try await exports.find(id: run.batchExportID, on: connection)?.export else { return nil }
            if let backfillID = run.backfillID { try await finishBackfillIfDone(backfillID, export: export, at: now, on: connection) }
            return next.status == .failed ? try await pauseIfFailing(export, at: now, on: connection) : nil
        }
        if let alert { await send(alert) }
    }

    /// docs/engine.md §5: when 3 of the last N runs failed for good (N = 12 for 5/15-minute exports, 24
    /// hourly, 7 daily, 4 weekly), the export is paused, its backfills cancelled, an ERROR logged,
    /// and the alert hook called — at most once a day per export. Returns the alert to send.
    func pauseIfFailing(_ export: BatchExport, at now: Timestamp, on connection: any SQLConnection) async throws -> JSONValue? {
        let window: Int
        switch export.interval {
        case .every5Minutes, .every15Minutes: window = 12
        case .hour: window = 24
        case .day: window = 7
        case .week: window = 4
        }
        let recent = try await exports.recentOutcomes(batchExportID: export.id, limit: window, on: connection)
        let failures = recent.filter { $0.status == .failed }
        guard failures.count >= 3, let lastAlert = try await exports.pauseForFailures(batchExportID: export.id, at: now, on: connection)
        else { return nil }
        try await exports.cancelUnfinished(batchExportID: export.id, includeScheduled: false, at: now, on: connection)
        let reason = "\(failures.count) of the last \(recent.count) runs failed; last error: \(failures.first?.latestError ?? "unknown")"
        try await log(export.id, run: nil, .error, "Batch export paused: \(reason)", on: connection)
        guard configuration.alertWebhookURL != nil, now.microseconds - lastAlert >= 86_400_000_000 else { return nil }
        try await exports.markAlerted(batchExportID: export.id, at: now, on: connection)
        return .object([
            "event": "batch_export_paused", "batch_export_id": .string(export.id), "name": .string(export.name),
            "team_id": .int(export.teamID), "destination": .string(export.destinationType.rawValue), "reason": .string(reason),
            "paused_at": .string(now.iso8601),
        ])
    }

    /// POSTs an alert to the webhook, through the outbound policy and following no redirect; a
    /// failure is logged, never retried into a loop.
    func send(_ alert: JSONValue) async {
        guard let url = configuration.alertWebhookURL, let host = URLComponents(string: url)?.host else { return }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(alert)))
        do {
            let status = try await OutboundConnector(policy: configuration.outbound).withHTTPClient(host: host, readTimeout: .seconds(10)) {
                client in
                let response = try await client.execute(request, timeout: .seconds(10))
                _ = try? await response.body.collect(upTo: 1 << 16)
                return response.status.code
            }
            if status >= 300 { logger.warning("Alert webhook answered \(status)") }
        } catch {
            logger.warning("Alert webhook failed", metadata: ["error": "\(error)"])
        }
    }

    /// A backfill is done when every run has finished: Completed, with the records actually
    /// delivered; a backfill without an end unpauses its export (docs/engine.md §6).
    func finishBackfillIfDone(_ backfillID: String, export: BatchExport, at now: Timestamp, on connection: any SQLConnection) async throws {
        guard var backfill = try await exports.backfill(id: backfillID, batchExportID: export.id, on: connection),
            backfill.status == .running || backfill.status == .starting
        else { return }
        let progress = try await exports.progress(backfillID: backfillID, on: connection)
        guard progress.unfinished == 0 else { return }
        backfill.totalRecordsCount = progress.records
        backfill.status = progress.failed > 0 ? .failed : .completed
        backfill.finishedAt = now
        backfill.lastUpdatedAt = now
        try await exports.updateBackfill(backfill, on: connection)
        if backfill.endAt == nil, backfill.status == .completed {
            // Caught up to the last tick before the backfill began: the schedule takes over from there.
            try await exports.resumeSchedule(batchExportID: export.id, through: progress.lastIntervalEnd, at: now, on: connection)
            try await log(export.id, run: nil, .info, "Backfill \(backfillID) caught up; the export is unpaused.", on: connection)
        }
        try await log(
            export.id, run: nil, .info,
            "Backfill \(backfillID) \(backfill.status == .completed ? "completed" : "finished with failed runs"): \(backfill.totalRecordsCount ?? 0) record(s).",
            on: connection)
    }

    func log(_ exportID: String, run: String?, _ level: LogLevel, _ message: String, on connection: any SQLConnection) async throws {
        try await exports.log(batchExportID: exportID, runID: run, level: level, message: message, at: clock(), on: connection)
        logger.info("\(message)", metadata: ["batch_export": "\(exportID)", "run": "\(run ?? "-")"])
    }
}
