import HedgerowCore

/// Which rows of a mutable model (persons, sessions) a run reads: one environment and a half-open
/// window. Scheduled runs select on the time rows last changed (capture time); backfills on the
/// same for persons, and on the session's end for sessions (PostHog's backfill query).
package struct ModelQuery: Sendable, Equatable {
    package var teamID: Int64
    package var start: Timestamp
    package var end: Timestamp
    package var isBackfill: Bool

    package init(teamID: Int64, start: Timestamp, end: Timestamp, isBackfill: Bool) {
        self.teamID = teamID
        self.start = start
        self.end = end
        self.isBackfill = isBackfill
    }
}

/// One row of the persons export (PostHog's persons model): a distinct id with its person's
/// latest state.
package struct PersonRecord: Sendable, Equatable {
    package var teamID: Int64
    package var distinctID: String
    package var personID: String
    /// JSON object text.
    package var properties: String
    package var distinctIDVersion: Int64
    package var personVersion: Int64
    package var createdAt: Timestamp
    /// When the row last changed: the later of its mapping's and its person's latest version.
    package var insertedAt: Timestamp
    package var isDeleted: Bool
}

/// Reads the persons and sessions exports.
package struct ModelRecordStore: Sendable {
    let database: any Database
    let statementTimeout: Duration

    package init(database: any Database, statementTimeout: Duration = .seconds(60)) {
        self.database = database
        self.statementTimeout = statementTimeout
    }

    /// Every distinct id whose row changed in the window (its mapping or its person: the later of
    /// the two, `row_updated_at`), once, by `(row time, distinct id)`: one index range.
    package func persons(_ query: ModelQuery, batchSize: Int) -> RecordBatches<PersonRecord> {
        let database = self.database
        let timeout = statementTimeout
        let limit = max(1, batchSize)
        return RecordBatches { (cursor: (Timestamp, String)?) in
            try await database.read(timeout: timeout) { connection in
                var binds: [SQLValue] = [.int(query.teamID), SQLValue(query.start), SQLValue(query.end)]
                if let (time, id) = cursor { binds += [SQLValue(time), .text(id)] }
                let condition =
                    "d.team_id = $1 AND "
                    + Self.window("d.row_updated_at", "d.distinct_id", resuming: cursor != nil, dialect: connection.dialect)
                let rows = try await connection.query(
                    """
                    SELECT d.distinct_id, d.person_uuid, d.version AS distinct_id_version, d.row_updated_at,
                        p.properties, p.version AS person_version, p.created_at, p.is_deleted
                    FROM person_distinct_ids d JOIN persons p ON p.team_id = d.team_id AND p.uuid = d.person_uuid
                    WHERE \(condition) ORDER BY d.row_updated_at, d.distinct_id LIMIT \(limit)
                    """, binds)
                var records: [PersonRecord] = []
                records.reserveCapacity(rows.count)
                for row in rows {
                    records.append(
                        PersonRecord(
                            teamID: query.teamID, distinctID: try row.decodeString("distinct_id"),
                            personID: try row.decodeString("person_uuid"), properties: try row.decodeString("properties"),
                            distinctIDVersion: try row.decodeInt("distinct_id_version"), personVersion: try row.decodeInt("person_version"),
                            createdAt: try row.decodeTimestamp("created_at"), insertedAt: try row.decodeTimestamp("row_updated_at"),
                            isDeleted: try row.decodeBool("is_deleted")))
                }
                guard rows.count == limit, let last = records.last else { return (records, nil) }
                return (records, (last.insertedAt, last.distinctID))
            }
        }
    }

    /// The earliest change time and the number of rows of a persons window (backfill estimates).
    package func personsEstimate(_ query: ModelQuery) async throws -> (earliest: Timestamp?, count: Int) {
        try await database.read(timeout: statementTimeout) { connection in
            let row = try await connection.first(
                "SELECT MIN(row_updated_at) AS earliest, COUNT(*) AS n FROM person_distinct_ids WHERE team_id = $1 AND row_updated_at >= $2 AND row_updated_at < $3",
                [.int(query.teamID), SQLValue(query.start), SQLValue(query.end)])
            return (row?.timestamp("earliest"), Int(row?.int("n") ?? 0))
        }
    }

    /// The sessions of a window: those that changed in it (scheduled runs), or that ended in it
    /// (backfills), by `(time, session id)`.
    package func sessions(_ query: ModelQuery, batchSize: Int) -> RecordBatches<Session> {
        let database = self.database
        let timeout = statementTimeout
        let limit = max(1, batchSize)
        let field = query.isBackfill ? "end_timestamp" : "updated_at"
        return RecordBatches { (cursor: (Int64, String)?) in
            try await database.read(timeout: timeout) { connection in
                var binds: [SQLValue] = [.int(query.teamID), SQLValue(query.start), SQLValue(query.end)]
                if let (time, id) = cursor { binds += [.int(time), .text(id)] }
                let condition =
                    "team_id = $1 AND " + Self.window(field, "session_id", resuming: cursor != nil, dialect: connection.dialect)
                let rows = try await connection.query(
                    "SELECT state FROM sessions WHERE \(condition) ORDER BY \(field), session_id LIMIT \(limit)", binds)
                let sessions = try rows.map(SessionStore.decode)
                guard rows.count == limit, let last = sessions.last else { return (sessions, nil) }
                return (sessions, (query.isBackfill ? last.end : last.updatedAt, last.sessionID))
            }
        }
    }

    /// `$2 <= time < $3`, and after a page `(time, id) > ($4, $5)`, spelt so that each planner starts
    /// its index range at the cursor (as `EventWhere` does): SQLite needs the cursor's time as the
    /// plain lower bound, or every page scans the window from its start again.
    static func window(_ time: String, _ id: String, resuming: Bool, dialect: SQLDialect) -> String {
        guard resuming else { return "\(time) >= $2 AND \(time) < $3" }
        switch dialect {
        case .sqlite: return "\(time) >= $4 AND (\(time) > $4 OR \(id) > $5) AND \(time) < $3"
        case .postgres: return "\(time) >= $2 AND (\(time), \(id)) > ($4, $5) AND \(time) < $3"
        }
    }

    /// The earliest time and the number of sessions of a window (backfill estimates).
    package func sessionsEstimate(_ query: ModelQuery) async throws -> (earliest: Timestamp?, count: Int) {
        try await database.read(timeout: statementTimeout) { connection in
            let field = query.isBackfill ? "end_timestamp" : "updated_at"
            let row = try await connection.first(
                "SELECT MIN(\(field)) AS earliest, COUNT(*) AS n FROM sessions WHERE team_id = $1 AND \(field) >= $2 AND \(field) < $3",
                [.int(query.teamID), SQLValue(query.start), SQLValue(query.end)])
            return (row?.timestamp("earliest"), Int(row?.int("n") ?? 0))
        }
    }
}
