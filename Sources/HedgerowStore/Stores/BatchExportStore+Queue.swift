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

    /// The condition of a run that is due and not held by a live lease (`now` is the bind's text).
    static func due(now: String, alias: String = "r") -> String {
        "\(alias).status IN ('Starting', 'Running', 'FailedRetryable') AND (\(alias).next_attempt_at IS NULL OR \(alias).next_attempt_at <= \(now))"
            + " AND (\(alias).lease_expires_at IS NULL OR \(alias).lease_expires_at < \(now))"
    }

    /// Up to `limit` scheduled runs (not backfills) that are due and not held by a live lease, taken
    /// round-robin (docs/engine.md §6): the oldest due run of each export before the second of any,
    /// and across teams, a team's first before any team's second, oldest interval first within a
    /// round. The order is read without locks; the chosen rows are then locked in that order on
    /// PostgreSQL (`SKIP LOCKED`, up to `limit`), so two workers never take the same run and one
    /// that finds a row taken takes the next instead.
    package func claimableScheduledRuns(now: Timestamp, limit: Int, on connection: any SQLConnection) async throws -> [BatchExportRun] {
        guard limit > 0 else { return [] }
        let ranked = try await connection.query(
            """
            SELECT id FROM (
                SELECT id, data_interval_end, created_at, export_rank,
                    ROW_NUMBER() OVER (PARTITION BY team_id ORDER BY export_rank, data_interval_end, created_at) AS team_rank
                FROM (
                    SELECT r.id, r.data_interval_end, r.created_at, e.team_id,
                        ROW_NUMBER() OVER (PARTITION BY r.batch_export_id ORDER BY r.data_interval_end, r.created_at) AS export_rank
                    FROM batch_export_runs r JOIN batch_exports e ON e.id = r.batch_export_id
                    WHERE r.backfill_id IS NULL AND e.deleted = $1 AND \(Self.due(now: "$2"))
                ) per_export
            ) per_team
            ORDER BY team_rank, export_rank, data_interval_end, created_at LIMIT \(limit * 4 + 16)
            """, [.bool(false), SQLValue(now)]
        ).compactMap { $0.string("id") }
        return try await lockInOrder(ranked, now: now, limit: limit, on: connection)
    }

    /// Up to `limit` backfill runs that are due and not held by a live lease. Runs of one backfill go
    /// `backfillConcurrency` at a time: of each backfill with unfinished runs only the first of them
    /// (its frontier) are candidates, read through the partial index `batch_export_runs_unfinished`,
    /// so a poll costs the same for a backfill of ten runs and of a hundred thousand. Backfills are
    /// taken round-robin across teams, then across backfills, oldest interval first within a round.
    package func claimableBackfillRuns(
        now: Timestamp, limit: Int, backfillConcurrency: Int, on connection: any SQLConnection
    ) async throws -> [BatchExportRun] {
        guard limit > 0 else { return [] }
        let unfinished = "('Starting', 'Running', 'FailedRetryable')"
        let backfills = try await connection.query(
            """
            SELECT b.id, e.team_id FROM batch_export_backfills b JOIN batch_exports e ON e.id = b.batch_export_id
            WHERE e.deleted = $1 AND EXISTS (
                SELECT 1 FROM batch_export_runs p WHERE p.backfill_id = b.id AND p.status IN \(unfinished))
            ORDER BY b.created_at
            """, [.bool(false)])
        var candidates: [(team: Int64, backfill: Int, rank: Int, run: BatchExportRun)] = []
        for (index, backfill) in backfills.enumerated() {
            // The frontier is read first and locked after, so that a run another worker holds is
            // not replaced by the next one (which would put one more of the backfill's runs in flight).
            let frontier = try await connection.query(
                """
                SELECT \(Self.runColumns) FROM batch_export_runs WHERE backfill_id = $1 AND status IN \(unfinished)
                ORDER BY data_interval_end LIMIT \(max(backfillConcurrency, 1))
                """, [.text(backfill.string("id") ?? "")]
            ).map(Self.decodeRun)
            for (rank, run) in frontier.enumerated() {
                candidates.append((backfill.int("team_id") ?? 0, index, rank, run))
            }
        }
        // A team's n-th candidate goes before any team's (n+1)-th.
        var perTeam: [Int64: Int] = [:]
        let ordered = candidates.sorted { ($0.rank, $0.backfill) < ($1.rank, $1.backfill) }.map { candidate in
            defer { perTeam[candidate.team, default: 0] += 1 }
            return (teamRank: perTeam[candidate.team, default: 0], candidate.run)
        }
        let ids = ordered.enumerated().sorted {
            ($0.element.teamRank, $0.element.1.dataIntervalEnd, $0.offset) < ($1.element.teamRank, $1.element.1.dataIntervalEnd, $1.offset)
        }.map(\.element.1.id)
        return try await lockInOrder(ids, now: now, limit: limit, on: connection)
    }

    /// Of the runs `ids` (in order), the first `limit` that are still due and, on PostgreSQL, not
    /// locked by another transaction; locked until this transaction ends.
    func lockInOrder(_ ids: [String], now: Timestamp, limit: Int, on connection: any SQLConnection) async throws -> [BatchExportRun] {
        guard !ids.isEmpty, limit > 0 else { return [] }
        let columns = Self.runColumns.split(separator: ",").map { "r." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .joined(separator: ", ")
        let placeholders = ids.indices.map { "$\($0 + 2)" }
        let order = "CASE r.id " + placeholders.enumerated().map { "WHEN \($0.element) THEN \($0.offset)" }.joined(separator: " ") + " END"
        let lock = connection.dialect == .postgres ? " FOR UPDATE OF r SKIP LOCKED" : ""
        return try await connection.query(
            """
            SELECT \(columns) FROM batch_export_runs r WHERE r.id IN (\(placeholders.joined(separator: ", "))) AND \(Self.due(now: "$1"))
            ORDER BY \(order) LIMIT \(limit)\(lock)
            """, [SQLValue(now)] + ids.map(SQLValue.text)
        ).map(Self.decodeRun)
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
            "UPDATE batch_exports SET paused = $2, last_updated_at = $3, scheduled_through = COALESCE($4, scheduled_through), next_schedule_at = NULL WHERE id = $1",
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
