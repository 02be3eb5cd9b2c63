import HedgerowCore

/// Event retention (docs/engine.md §8): deletes events older than a horizon that no export will
/// read again, a team at a time, in small transactions that never hold the writer for long.
/// Persons and sessions are kept.
package struct EventRetention: Sendable {
    let database: any Database
    /// Events deleted per transaction.
    static let batch = 2_000

    package init(database: any Database) { self.database = database }

    /// What may go of one team's events: ingested before `inserted` and with an event time before `timestamp`.
    package struct Bound: Sendable, Equatable {
        package var teamID: Int64
        package var inserted: Timestamp
        package var timestamp: Timestamp
    }

    /// Deletes, team by team, the events older than `horizon` by ingestion time and by event time
    /// that every live events export of the team has read; stops between batches when `stop` says so.
    /// Returns how many were deleted.
    package func sweep(horizon: Timestamp, stop: @Sendable () -> Bool = { false }) async throws -> Int {
        let bounds = try await database.read { try await Self.bounds(horizon: horizon, on: $0) }
        var deleted = 0
        for bound in bounds {
            while !stop() {
                let count = try await database.transaction { connection in
                    try await connection.query(
                        """
                        DELETE FROM events WHERE team_id = $1 AND uuid IN (
                            SELECT uuid FROM events WHERE team_id = $1 AND inserted_at < $2 AND timestamp < $3
                            ORDER BY inserted_at LIMIT \(Self.batch))
                        RETURNING uuid
                        """, [.int(bound.teamID), SQLValue(bound.inserted), SQLValue(bound.timestamp)]
                    ).count
                }
                deleted += count
                if count < Self.batch { break }
            }
        }
        return deleted
    }

    /// Per team, what may go: before `horizon`, and behind every live events export. Scheduled runs
    /// read by ingestion time, so an export holds the events ingested since the start of its oldest
    /// unfinished scheduled run, or since the last tick it has runs for (its creation when it has
    /// none yet), paused or not; backfill runs read by event time, so an unfinished backfill holds
    /// the events since the start of its oldest unfinished run.
    static func bounds(horizon: Timestamp, on connection: any SQLConnection) async throws -> [Bound] {
        let unfinished = "('Starting', 'Running', 'FailedRetryable')"
        var bounds: [Bound] = []
        for team in try await connection.query("SELECT id FROM teams ORDER BY id", []).compactMap({ $0.int("id") }) {
            var inserted = horizon.microseconds
            var timestamp = horizon.microseconds
            for export in try await connection.query(
                "SELECT created_at, scheduled_through FROM batch_exports WHERE team_id = $1 AND deleted = $2 AND model = $3",
                [.int(team), .bool(false), .text(ExportModel.events.rawValue)])
            {
                inserted = min(inserted, export.int("scheduled_through") ?? export.int("created_at") ?? 0)
            }
            let runs = try await connection.first(
                """
                SELECT
                    MIN(CASE WHEN r.backfill_id IS NULL THEN COALESCE(r.data_interval_start, 0) END) AS scheduled,
                    MIN(CASE WHEN r.backfill_id IS NOT NULL THEN COALESCE(r.data_interval_start, 0) END) AS backfill
                FROM batch_export_runs r JOIN batch_exports e ON e.id = r.batch_export_id
                WHERE e.team_id = $1 AND e.deleted = $2 AND e.model = $3 AND r.status IN \(unfinished)
                """, [.int(team), .bool(false), .text(ExportModel.events.rawValue)])
            if let start = runs?.int("scheduled") { inserted = min(inserted, start) }
            if let start = runs?.int("backfill") { timestamp = min(timestamp, start) }
            bounds.append(Bound(teamID: team, inserted: Timestamp(microseconds: inserted), timestamp: Timestamp(microseconds: timestamp)))
        }
        return bounds
    }
}
