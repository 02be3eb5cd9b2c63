import Foundation
import HedgerowCore

/// The run queue the export engine works from: claiming with a lease, heartbeats and fenced final
/// writes, backfill progress, and the auto-pause bookkeeping (docs/engine.md §5, §6). Every write that a
/// worker makes after claiming names the lease owner, so a worker that lost its lease changes nothing.
extension BatchExportStore {
    /// What a heartbeat found.
    package enum LeaseCheck: Sendable, Equatable {
        /// The caller still holds the lease; the run's current status (Cancelled when cancelled meanwhile).
        case held(RunStatus)
        /// Another worker holds it now, or it was released: the caller must stop and write nothing.
        case lost
    }

    /// Runs that are due and not held by a live lease, oldest interval first. Runs of one backfill go
    /// `backfillConcurrency` at a time: of each backfill with unfinished runs only the first of them
    /// (its frontier) are candidates, read through the partial index `batch_export_runs_unfinished`,
    /// so a poll costs the same for a backfill of ten runs and of a hundred thousand. On PostgreSQL the rows stay locked
    /// (`SKIP LOCKED`) until the transaction ends, so two workers never take the same run.
    package func claimableRuns(
        now: Timestamp, limit: Int, backfillConcurrency: Int, on connection: any SQLConnection
    ) async throws -> [BatchExportRun] {
        let lock = connection.dialect == .postgres ? " FOR UPDATE OF r SKIP LOCKED" : ""
        let columns = Self.runColumns.split(separator: ",").map { "r." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .joined(separator: ", ")
        let unfinished = "('Starting', 'Running', 'FailedRetryable')"
        func due(now: String) -> String {
            "r.status IN \(unfinished) AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= \(now)) AND (r.lease_expires_at IS NULL OR r.lease_expires_at < \(now))"
        }
        var candidates = try await connection.query(
            """
            SELECT \(columns) FROM batch_export_runs r JOIN batch_exports e ON e.id = r.batch_export_id
            WHERE r.backfill_id IS NULL AND e.deleted = $1 AND \(due(now: "$2"))
            ORDER BY r.data_interval_end, r.created_at LIMIT \(max(limit, 0))\(lock)
            """, [.bool(false), SQLValue(now)]
        ).map(Self.decodeRun)
        let backfills = try await connection.query(
            """
            SELECT b.id FROM batch_export_backfills b JOIN batch_exports e ON e.id = b.batch_export_id
            WHERE e.deleted = $1 AND EXISTS (
                SELECT 1 FROM batch_export_runs p WHERE p.backfill_id = b.id AND p.status IN \(unfinished))
            """, [.bool(false)])
        for backfill in backfills {
            // The frontier is read first and locked after, so that a run another worker holds is
            // not replaced by the next one (which would put one more of the backfill's runs in flight).
            let frontier = try await connection.query(
                """
                SELECT id FROM batch_export_runs WHERE backfill_id = $1 AND status IN \(unfinished)
                ORDER BY data_interval_end LIMIT \(max(backfillConcurrency, 1))
                """, [.text(backfill.string("id") ?? "")]
            ).compactMap { $0.string("id") }
            guard !frontier.isEmpty else { continue }
            let ids = frontier.indices.map { "$\($0 + 2)" }.joined(separator: ", ")
            candidates += try await connection.query(
                "SELECT \(columns) FROM batch_export_runs r WHERE r.id IN (\(ids)) AND \(due(now: "$1"))\(lock)",
                [SQLValue(now)] + frontier.map(SQLValue.text)
            ).map(Self.decodeRun)
        }
        candidates.sort { ($0.dataIntervalEnd, $0.createdAt) < ($1.dataIntervalEnd, $1.createdAt) }
        return Array(candidates.prefix(max(limit, 0)))
    }

    /// Stores a claimed run with its lease (the caller applied `RunTransition.claim`).
    package func claim(_ run: BatchExportRun, owner: String, leaseUntil: Timestamp, on connection: any SQLConnection) async throws {
        var binds = Self.runBinds(run)
        binds.append(.text(owner))
        binds.append(SQLValue(leaseUntil))
        let count = Self.runColumnCount
        try await connection.execute(
            "UPDATE batch_export_runs SET \(Self.assignments(Self.runColumns)), lease_owner = $\(count + 1), lease_expires_at = $\(count + 2) WHERE id = $1",
            binds)
        if let backfillID = run.backfillID {
            try await connection.execute(
                "UPDATE batch_export_backfills SET status = 'Running', last_updated_at = $2 WHERE id = $1 AND status = 'Starting'",
                [.text(backfillID), SQLValue(run.lastUpdatedAt)])
        }
    }

    /// Counts an attempt whose process died: a Running run whose lease expired while its owner held
    /// it (a worker that stops for a shutdown or an error releases its lease; only a dying or hung
    /// process lets it run out). Returns how many of the run's attempts ended so, or nil when the
    /// run was not abandoned (released, or never claimed).
    package func countAbandonedAttempt(runID: String, at now: Timestamp, on connection: any SQLConnection) async throws -> Int64? {
        try await connection.first(
            """
            UPDATE batch_export_runs SET abandoned_attempts = abandoned_attempts + 1
            WHERE id = $1 AND status = 'Running' AND lease_expires_at IS NOT NULL AND lease_expires_at < $2
            RETURNING abandoned_attempts
            """, [.text(runID), SQLValue(now)])?.int("abandoned_attempts")
    }

    /// Clears a run's lease whoever held it (a run failed by the engine without being claimed).
    package func releaseLease(runID: String, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "UPDATE batch_export_runs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1", [.text(runID)])
    }

    /// Renews `owner`'s lease (and records the resume point) only while `owner` holds it.
    package func renewLease(
        runID: String, owner: String, until: Timestamp, cursor: String?, at now: Timestamp, on connection: any SQLConnection
    ) async throws -> LeaseCheck {
        let row = try await connection.first(
            """
            UPDATE batch_export_runs SET lease_expires_at = $3, last_updated_at = $4, cursor = COALESCE($5, cursor)
            WHERE id = $1 AND lease_owner = $2 RETURNING status
            """, [.text(runID), .text(owner), SQLValue(until), SQLValue(now), SQLValue(cursor)])
        guard let row, let status = RunStatus(rawValue: row.string("status") ?? "") else { return .lost }
        return .held(status)
    }

    /// The run as stored, if `owner` still holds its lease.
    package func leasedRun(id: String, owner: String, on connection: any SQLConnection) async throws -> BatchExportRun? {
        try await connection.first(
            "SELECT \(Self.runColumns) FROM batch_export_runs WHERE id = $1 AND lease_owner = $2", [.text(id), .text(owner)]
        ).map(Self.decodeRun)
    }

    /// Writes a worker's final state of a run and releases the lease, only if `owner` still holds
    /// it. Returns false (and writes nothing) when the lease was lost.
    package func finish(_ run: BatchExportRun, owner: String, on connection: any SQLConnection) async throws -> Bool {
        var binds = Self.runBinds(run)
        binds.append(.text(owner))
        let rows = try await connection.query(
            """
            UPDATE batch_export_runs SET \(Self.assignments(Self.runColumns)), lease_owner = NULL, lease_expires_at = NULL
            WHERE id = $1 AND lease_owner = $\(Self.runColumnCount + 1) RETURNING id
            """, binds)
        return !rows.isEmpty
    }

    /// How far a backfill's runs have got.
    package struct BackfillProgress: Sendable, Equatable {
        package var unfinished: Int64
        package var failed: Int64
        package var records: Int64
        package var lastIntervalEnd: Timestamp?
    }

    package func progress(backfillID: String, on connection: any SQLConnection) async throws -> BackfillProgress {
        let row = try await connection.first(
            """
            SELECT SUM(CASE WHEN status IN ('Starting', 'Running', 'FailedRetryable') THEN 1 ELSE 0 END) AS unfinished,
                   SUM(CASE WHEN status = 'Failed' THEN 1 ELSE 0 END) AS failed,
                   COALESCE(SUM(records_completed), 0) AS records, MAX(data_interval_end) AS last_end
            FROM batch_export_runs WHERE backfill_id = $1
            """, [.text(backfillID)])
        return BackfillProgress(
            unfinished: row?.int("unfinished") ?? 0, failed: row?.int("failed") ?? 0, records: row?.int("records") ?? 0,
            lastIntervalEnd: row?.timestamp("last_end"))
    }

    /// The statuses and errors of an export's newest finished (Completed or Failed) runs.
    package func recentOutcomes(
        batchExportID: String, limit: Int, on connection: any SQLConnection
    ) async throws -> [(status: RunStatus, latestError: String?)] {
        try await connection.query(
            """
            SELECT status, latest_error FROM batch_export_runs WHERE batch_export_id = $1 AND status IN ('Completed', 'Failed')
            ORDER BY created_at DESC, id DESC LIMIT \(max(limit, 0))
            """, [.text(batchExportID)]
        ).compactMap { row in RunStatus(rawValue: row.string("status") ?? "").map { ($0, row.string("latest_error")) } }
    }

    /// Pauses an export that is not paused yet; returns when it was last alerted about (0 if never),
    /// or nil when it was already paused.
    package func pauseForFailures(batchExportID: String, at now: Timestamp, on connection: any SQLConnection) async throws -> Int64? {
        let row = try await connection.first(
            """
            UPDATE batch_exports SET paused = $2, last_paused_at = $3, last_updated_at = $3 WHERE id = $1 AND paused = $4
            RETURNING last_alerted_at
            """, [.text(batchExportID), .bool(true), SQLValue(now), .bool(false)])
        guard let row else { return nil }
        return row.int("last_alerted_at") ?? 0
    }

    package func markAlerted(batchExportID: String, at now: Timestamp, on connection: any SQLConnection) async throws {
        try await connection.execute("UPDATE batch_exports SET last_alerted_at = $2 WHERE id = $1", [.text(batchExportID), SQLValue(now)])
    }

    /// Unpauses an export whose open-ended backfill caught up; the schedule takes over after `through`.
    package func resumeSchedule(
        batchExportID: String, through: Timestamp?, at now: Timestamp, on connection: any SQLConnection
    ) async throws {
        try await connection.execute(
            "UPDATE batch_exports SET paused = $2, last_updated_at = $3, scheduled_through = COALESCE($4, scheduled_through) WHERE id = $1",
            [.text(batchExportID), .bool(false), SQLValue(now), SQLValue(through)])
    }

    /// Per-export figures for `/metrics`.
    package struct ExportFigures: Sendable, Equatable {
        package var batchExportID: String
        package var destinationType: String
        package var records: Int64
        package var bytes: Int64
        package var retries: Int64
        package var runMicroseconds: Int64
        package var completedRuns: Int64
        /// The end of the newest completed scheduled interval.
        package var newestCompletedEnd: Int64?
    }

    /// Runs by status, and the figures of every live export.
    package func metrics(on connection: any SQLConnection) async throws -> (runsByStatus: [(String, Int64)], exports: [ExportFigures]) {
        let statuses = try await connection.query(
            "SELECT status, COUNT(*) AS n FROM batch_export_runs GROUP BY status ORDER BY status", []
        ).map { ($0.string("status") ?? "", $0.int("n") ?? 0) }
        let exports = try await connection.query(
            """
            SELECT e.id, e.destination_type,
                COALESCE(SUM(CASE WHEN r.status = 'Completed' THEN r.records_completed ELSE 0 END), 0) AS records,
                COALESCE(SUM(CASE WHEN r.status = 'Completed' THEN r.bytes_exported ELSE 0 END), 0) AS bytes,
                COALESCE(SUM(CASE WHEN r.attempt > 1 THEN r.attempt - 1 ELSE 0 END), 0) AS retries,
                COALESCE(SUM(CASE WHEN r.status = 'Completed' THEN r.finished_at - r.created_at ELSE 0 END), 0) AS run_micros,
                COUNT(CASE WHEN r.status = 'Completed' THEN 1 END) AS completed,
                MAX(CASE WHEN r.status = 'Completed' AND r.backfill_id IS NULL THEN r.data_interval_end END) AS newest
            FROM batch_exports e LEFT JOIN batch_export_runs r ON r.batch_export_id = e.id
            WHERE e.deleted = $1 GROUP BY e.id, e.destination_type ORDER BY e.id
            """, [.bool(false)]
        ).map { row in
            ExportFigures(
                batchExportID: row.string("id") ?? "", destinationType: row.string("destination_type") ?? "",
                records: row.int("records") ?? 0,
                bytes: row.int("bytes") ?? 0, retries: row.int("retries") ?? 0, runMicroseconds: row.int("run_micros") ?? 0,
                completedRuns: row.int("completed") ?? 0, newestCompletedEnd: row.int("newest"))
        }
        return (statuses, exports)
    }
}
