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
public struct EngineConfiguration: Sendable {
    /// Runs executed at once by this process.
    public var concurrency = 2
    /// How often the scheduler and workers look for work.
    public var pollInterval: Duration = .seconds(1)
    /// How long after a tick its run becomes due: 30 s for 5/15-minute exports, 60 s otherwise.
    public var shortSettle: Int64 = 30_000_000
    public var longSettle: Int64 = 60_000_000
    /// How long a claimed run is held without a heartbeat before another worker may take it over.
    public var leaseMicroseconds: Int64 = 60_000_000
    /// Whether this process schedules (a `hedgerow worker` only executes).
    public var schedules = true
    /// Events read per batch.
    public var batchSize = 10_000
    /// Called (POST, JSON) when an export is paused for failing (`HEDGEROW_ALERT_WEBHOOK_URL`).
    public var alertWebhookURL: String?
    /// Whether HTTP destinations may use plain `http://` (`HEDGEROW_ALLOW_INSECURE_HTTP_DESTINATIONS=1`).
    public var allowInsecureHTTP = false
    /// Multipart part size and parts in flight of S3 uploads (`HEDGEROW_S3_PART_SIZE_MB`,
    /// `HEDGEROW_S3_UPLOADS_IN_FLIGHT`).
    public var s3 = S3Destination.Options()
    /// Runs of one backfill executed at once, oldest first (`HEDGEROW_BACKFILL_CONCURRENCY`, ENGINE.md §6).
    public var backfillConcurrency = 1
    public init() {}
}

/// The export engine (ENGINE.md §1, §5, §6): creates due runs idempotently, claims runs with a
/// lease, streams each run's events to its destination, records the outcome, and completes
/// backfills. A lifecycle service in `hedgerow serve` (and `hedgerow worker`); tests drive `step`.
public struct ExportEngine: Service {
    let database: any Database
    let secrets: SecretBox?
    let configuration: EngineConfiguration
    let clock: @Sendable () -> Timestamp
    let logger: Logger
    let owner: String
    let exports = BatchExportStore()
    let events: SQLEventStore

    /// `secrets` opens destination secrets (nil when no export needs them, as in some tests).
    public init(
        database: any Database, secrets: SecretBox? = nil, configuration: EngineConfiguration = EngineConfiguration(), logger: Logger,
        clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.database = database
        self.secrets = secrets
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.owner = Identifiers.uuidV7()
        self.events = SQLEventStore(database: database)
    }

    /// Polls until the service group shuts down; a failed round is logged and retried.
    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await step()
            } catch is CancellationError {
                return
            } catch {
                logger.error("Export engine step failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: configuration.pollInterval)
        }
    }

    /// One round: schedule what is due, then execute claimable runs until none is left.
    public func step() async throws {
        if configuration.schedules { try await scheduleDueRuns() }
        while true {
            let claimed = try await claim(limit: configuration.concurrency)
            if claimed.isEmpty { return }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for run in claimed { group.addTask { try await execute(run) } }
                try await group.waitForAll()
            }
        }
    }

    // MARK: Scheduling

    /// Creates the runs of every tick that is due and has none yet, oldest first; ticks missed
    /// while the server was down are caught up (ENGINE.md §1).
    public func scheduleDueRuns() async throws {
        let now = clock()
        let active = try await database.read { try await exports.active(on: $0) }
        for row in active {
            let export = row.export
            let schedule = export.schedule
            let settle =
                export.interval == .every5Minutes || export.interval == .every15Minutes
                ? configuration.shortSettle : configuration.longSettle
            let last = export.scheduledThrough ?? schedule.tick(atOrBefore: export.createdAt)
            var horizon = Timestamp(microseconds: now.microseconds - settle)
            if let endAt = export.endAt, endAt < horizon { horizon = endAt }
            let due = schedule.ticks(after: last, upTo: horizon, limit: 1000)
            guard !due.isEmpty else { continue }
            try await database.transaction { connection in
                for tick in due {
                    let interval = schedule.dataInterval(endingAt: tick)
                    if let startAt = export.startAt, interval.start < startAt { continue }
                    var run = BatchExportRun(
                        id: Identifiers.uuidV7(at: now), batchExportID: export.id, backfillID: nil, dataIntervalStart: interval.start,
                        dataIntervalEnd: tick, createdAt: now)
                    run.nextAttemptAt = now
                    if try await exports.insertRun(run, on: connection) {
                        try await log(
                            export.id, run: run.id, "INFO", "Run scheduled for \(interval.start.iso8601) – \(tick.iso8601).", on: connection
                        )
                    }
                }
                try await exports.setScheduledThrough(id: export.id, tick: due.last!, on: connection)
            }
        }
    }

    // MARK: Claiming

    /// Takes up to `limit` runs that are due and not held by a live lease. Runs of one backfill go
    /// oldest first, `backfillConcurrency` at a time: a run waits while that many earlier runs of
    /// its backfill are unfinished.
    func claim(limit: Int) async throws -> [BatchExportRun] {
        let now = clock()
        return try await database.transaction { connection in
            let lock = connection.dialect == .postgres ? " FOR UPDATE OF r SKIP LOCKED" : ""
            let rows = try await connection.query(
                """
                SELECT r.id, r.batch_export_id FROM batch_export_runs r JOIN batch_exports e ON e.id = r.batch_export_id
                WHERE r.status IN ('Starting', 'Running', 'FailedRetryable') AND e.deleted = $1
                  AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= $2)
                  AND (r.lease_expires_at IS NULL OR r.lease_expires_at < $2)
                  AND (r.backfill_id IS NULL OR (
                      SELECT COUNT(*) FROM batch_export_runs p WHERE p.backfill_id = r.backfill_id AND p.data_interval_end < r.data_interval_end
                        AND p.status IN ('Starting', 'Running', 'FailedRetryable')) < $3)
                ORDER BY r.data_interval_end, r.created_at LIMIT \(limit)\(lock)
                """, [.bool(false), SQLValue(now), .int(Int64(max(configuration.backfillConcurrency, 1)))])
            var claimed: [BatchExportRun] = []
            for row in rows {
                let id = try row.decodeString("id")
                guard var run = try await exports.run(id: id, batchExportID: try row.decodeString("batch_export_id"), on: connection) else {
                    continue
                }
                run.status = .running
                run.attempt += 1
                run.lastUpdatedAt = now
                try await exports.updateRun(run, on: connection)
                try await connection.execute(
                    "UPDATE batch_export_runs SET lease_owner = $2, lease_expires_at = $3 WHERE id = $1",
                    [.text(id), .text(owner), .int(now.microseconds + configuration.leaseMicroseconds)])
                if let backfillID = run.backfillID {
                    try await connection.execute(
                        "UPDATE batch_export_backfills SET status = 'Running', last_updated_at = $2 WHERE id = $1 AND status = 'Starting'",
                        [.text(backfillID), SQLValue(now)])
                }
                claimed.append(run)
            }
            return claimed
        }
    }

    // MARK: Executing

    struct Cancelled: Error {}

    func execute(_ run: BatchExportRun) async throws {
        guard let row = try await database.read({ try await exports.find(id: run.batchExportID, on: $0) }) else { return }
        var opened = row.export
        if let sealed = row.sealedSecrets, let secrets {
            for entry in try secrets.open(sealed).entries { opened.destinationConfig[entry.key] = entry.value }
        }
        let export = opened
        try await database.transaction { try await log(export.id, run: run.id, "INFO", "Run started (attempt \(run.attempt)).", on: $0) }
        let outcome: Result<DeliveryResult, any Error>
        if let destination = Destinations.make(
            export.destinationType, logger: logger, allowInsecureHTTP: configuration.allowInsecureHTTP, s3: configuration.s3)
        {
            let runID = run.id
            let overlaps =
                run.backfillID == nil
                ? false
                : try await database.read {
                    try await exports.hasCompletedScheduledRun(batchExportID: export.id, endingAt: run.dataIntervalEnd, on: $0)
                }
            let context = DeliveryContext(export: export, run: run, overlapsCompletedScheduledRun: overlaps) { level, message in
                try? await database.transaction { try await log(export.id, run: runID, level, message, on: $0) }
            }
            let query = EventQuery(
                teamID: export.teamID, field: run.backfillID == nil ? .insertedAt : .timestamp, start: context.dataIntervalStart,
                end: run.dataIntervalEnd, includeEvents: export.includeEvents, excludeEvents: export.excludeEvents,
                filters: export.propertyFilters)
            do {
                let result = try await destination.deliver(events.batches(query, batchSize: configuration.batchSize), context: context) {
                    progress in try await heartbeat(runID, cursor: progress.cursor)
                }
                outcome = .success(result)
            } catch {
                outcome = .failure(error)
            }
        } else {
            outcome = .failure(
                DestinationError(
                    kind: "UnsupportedDestination", message: "\(export.destinationType.rawValue) is not delivered by this server",
                    retryable: false))
        }
        let now = clock()
        let alert = try await database.transaction { connection -> JSONValue? in
            var run = run
            let current = try await exports.run(id: run.id, batchExportID: run.batchExportID, on: connection)
            // A run cancelled meanwhile stays cancelled.
            if current?.status == .cancelled {
                try await log(export.id, run: run.id, "INFO", "Run stopped: it was cancelled.", on: connection)
                return nil
            }
            // Keep the resume point the heartbeats recorded.
            run.cursor = current?.cursor ?? run.cursor
            switch outcome {
            case .success(let result):
                run.status = .completed
                run.recordsCompleted = result.records
                run.recordsTotalCount = result.records
                run.bytesExported = result.bytes
                run.cursor = result.cursor ?? run.cursor
                run.latestError = nil
                run.finishedAt = now
                run.nextAttemptAt = nil
                try await log(
                    export.id, run: run.id, "INFO", "Run completed: \(result.records) record(s), \(result.bytes) byte(s).", on: connection)
            case .failure(let error):
                let classified =
                    (error as? DestinationError)
                    ?? DestinationError(kind: "InternalError", message: String(describing: error), retryable: true)
                run.latestError = classified.description
                if classified.retryable {
                    let delay = min(Int64(1_000_000) << min(run.attempt - 1, 12), 3_600_000_000)
                    run.status = .failedRetryable
                    run.nextAttemptAt = Timestamp(microseconds: now.microseconds + delay)
                    try await log(
                        export.id, run: run.id, "WARNING",
                        "Run failed, will retry at \(run.nextAttemptAt!.iso8601): \(classified.description)",
                        on: connection)
                } else {
                    run.status = .failed
                    run.finishedAt = now
                    run.nextAttemptAt = nil
                    try await log(export.id, run: run.id, "ERROR", "Run failed: \(classified.description)", on: connection)
                }
            }
            run.lastUpdatedAt = now
            try await exports.updateRun(run, on: connection)
            try await connection.execute(
                "UPDATE batch_export_runs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1", [.text(run.id)])
            if let backfillID = run.backfillID { try await finishBackfillIfDone(backfillID, export: export, at: now, on: connection) }
            return run.status == .failed ? try await pauseIfFailing(export, at: now, on: connection) : nil
        }
        if let alert { await send(alert) }
    }

    /// ENGINE.md §5: when 3 of the last N runs failed for good (N = 12 for 5/15-minute exports, 24
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
        let recent = try await connection.query(
            "SELECT status, latest_error FROM batch_export_runs WHERE batch_export_id = $1 AND status IN ('Completed', 'Failed') ORDER BY created_at DESC, id DESC LIMIT \(window)",
            [.text(export.id)])
        let failures = recent.filter { $0.string("status") == RunStatus.failed.rawValue }
        guard failures.count >= 3,
            let row = try await connection.first("SELECT paused, last_alerted_at FROM batch_exports WHERE id = $1", [.text(export.id)]),
            row.bool("paused") == false
        else { return nil }
        try await connection.execute(
            "UPDATE batch_exports SET paused = $2, last_paused_at = $3, last_updated_at = $3 WHERE id = $1",
            [.text(export.id), .bool(true), SQLValue(now)])
        try await exports.cancelUnfinished(batchExportID: export.id, includeScheduled: false, at: now, on: connection)
        let reason =
            "\(failures.count) of the last \(recent.count) runs failed; last error: \(failures.first?.string("latest_error") ?? "unknown")"
        try await log(export.id, run: nil, "ERROR", "Batch export paused: \(reason)", on: connection)
        let lastAlert = row.int("last_alerted_at") ?? 0
        guard configuration.alertWebhookURL != nil, now.microseconds - lastAlert >= 86_400_000_000 else { return nil }
        try await connection.execute("UPDATE batch_exports SET last_alerted_at = $2 WHERE id = $1", [.text(export.id), SQLValue(now)])
        return .object([
            "event": "batch_export_paused", "batch_export_id": .string(export.id), "name": .string(export.name),
            "team_id": .int(export.teamID), "destination": .string(export.destinationType.rawValue), "reason": .string(reason),
            "paused_at": .string(now.iso8601),
        ])
    }

    /// POSTs an alert to the webhook; a failure is logged, never retried into a loop.
    func send(_ alert: JSONValue) async {
        guard let url = configuration.alertWebhookURL else { return }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(alert)))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            if response.status.code >= 300 { logger.warning("Alert webhook answered \(response.status.code)") }
        } catch {
            logger.warning("Alert webhook failed", metadata: ["error": "\(error)"])
        }
    }

    /// Renews the lease between batches; throws when the run was cancelled, so the destination stops.
    func heartbeat(_ runID: String, cursor: String? = nil) async throws {
        let now = clock()
        let status = try await database.transaction { connection in
            try await connection.execute(
                "UPDATE batch_export_runs SET lease_expires_at = $2, last_updated_at = $3 WHERE id = $1 AND lease_owner = $4",
                [.text(runID), .int(now.microseconds + configuration.leaseMicroseconds), SQLValue(now), .text(owner)])
            if let cursor {
                try await connection.execute("UPDATE batch_export_runs SET cursor = $2 WHERE id = $1", [.text(runID), .text(cursor)])
            }
            return try await connection.first("SELECT status FROM batch_export_runs WHERE id = $1", [.text(runID)])?.string("status")
        }
        if status == RunStatus.cancelled.rawValue { throw Cancelled() }
    }

    /// A backfill is done when every run has finished: Completed, with the records actually
    /// delivered; a backfill without an end unpauses its export (ENGINE.md §6).
    func finishBackfillIfDone(_ backfillID: String, export: BatchExport, at now: Timestamp, on connection: any SQLConnection) async throws {
        guard var backfill = try await exports.backfill(id: backfillID, batchExportID: export.id, on: connection),
            backfill.status == .running || backfill.status == .starting
        else { return }
        let open =
            try await connection.first(
                "SELECT COUNT(*) AS n FROM batch_export_runs WHERE backfill_id = $1 AND status IN ('Starting', 'Running', 'FailedRetryable')",
                [.text(backfillID)])?.int("n") ?? 0
        guard open == 0 else { return }
        let failed =
            try await connection.first(
                "SELECT COUNT(*) AS n FROM batch_export_runs WHERE backfill_id = $1 AND status = 'Failed'", [.text(backfillID)])?.int("n")
            ?? 0
        backfill.totalRecordsCount =
            try await connection.first(
                "SELECT COALESCE(SUM(records_completed), 0) AS n FROM batch_export_runs WHERE backfill_id = $1", [.text(backfillID)])?.int(
                "n") ?? 0
        backfill.status = failed > 0 ? .failed : .completed
        backfill.finishedAt = now
        backfill.lastUpdatedAt = now
        try await exports.updateBackfill(backfill, on: connection)
        if backfill.endAt == nil, backfill.status == .completed {
            // Caught up to the last tick before the backfill began: the schedule takes over from there.
            let last = try await connection.first(
                "SELECT MAX(data_interval_end) AS last FROM batch_export_runs WHERE backfill_id = $1", [.text(backfillID)])?.int("last")
            try await connection.execute(
                "UPDATE batch_exports SET paused = $2, last_updated_at = $3, scheduled_through = COALESCE($4, scheduled_through) WHERE id = $1",
                [.text(export.id), .bool(false), SQLValue(now), SQLValue(last)])
            try await log(export.id, run: nil, "INFO", "Backfill \(backfillID) caught up; the export is unpaused.", on: connection)
        }
        try await log(
            export.id, run: nil, "INFO",
            "Backfill \(backfillID) \(backfill.status == .completed ? "completed" : "finished with failed runs"): \(backfill.totalRecordsCount ?? 0) record(s).",
            on: connection)
    }

    func log(_ exportID: String, run: String?, _ level: String, _ message: String, on connection: any SQLConnection) async throws {
        try await exports.log(batchExportID: exportID, runID: run, level: level, message: message, at: clock(), on: connection)
        logger.info("\(message)", metadata: ["batch_export": "\(exportID)", "run": "\(run ?? "-")"])
    }
}
