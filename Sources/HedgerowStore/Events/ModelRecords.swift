import HedgerowCore

/// Batches of export rows of any model, fetched one keyset page at a time as they are iterated:
/// memory holds one batch whatever the size of the run.
public struct RecordBatches<Row: Sendable>: AsyncSequence, Sendable {
    public typealias Element = [Row]
    let start: @Sendable () -> AsyncIterator

    /// `fetch(after)` returns a page and the cursor of the next one (nil: the last page).
    public init<Cursor: Sendable>(fetch: @escaping @Sendable (_ after: Cursor?) async throws -> (rows: [Row], next: Cursor?)) {
        start = {
            var cursor: Cursor? = nil
            var finished = false
            return AsyncIterator {
                while !finished {
                    let (rows, next) = try await fetch(cursor)
                    cursor = next
                    finished = next == nil
                    if !rows.isEmpty { return rows }
                }
                return nil
            }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let step: () async throws -> [Row]?
        public mutating func next() async throws -> [Row]? { try await step() }
    }

    public func makeAsyncIterator() -> AsyncIterator { start() }
}

/// Which rows of a mutable model (persons, sessions) a run reads: one environment and a half-open
/// window. Scheduled runs select on the time rows changed (capture time); backfills on the same
/// for persons and on the session's end for sessions (PostHog's backfill queries).
public struct ModelQuery: Sendable, Equatable {
    public var teamID: Int64
    public var start: Timestamp
    public var end: Timestamp
    public var isBackfill: Bool

    public init(teamID: Int64, start: Timestamp, end: Timestamp, isBackfill: Bool) {
        self.teamID = teamID
        self.start = start
        self.end = end
        self.isBackfill = isBackfill
    }
}

/// One row of the persons export (PostHog's persons model): a distinct id with its person's
/// latest state.
public struct PersonRecord: Sendable, Equatable {
    public var teamID: Int64
    public var distinctID: String
    public var personID: String
    /// JSON object text.
    public var properties: String
    public var distinctIDVersion: Int64
    public var personVersion: Int64
    public var createdAt: Timestamp
    /// When the row's newest part (the mapping or the person) changed within the window.
    public var insertedAt: Timestamp
    public var isDeleted: Bool
}

/// Reads the persons and sessions exports.
public struct ModelRecordStore: Sendable {
    let database: any Database
    let statementTimeout: Duration

    public init(database: any Database, statementTimeout: Duration = .seconds(60)) {
        self.database = database
        self.statementTimeout = statementTimeout
    }

    static let personSelect = """
        SELECT d.distinct_id, d.person_uuid, d.version AS distinct_id_version, d.updated_at AS distinct_id_updated_at,
            p.properties, p.version AS person_version, p.updated_at AS person_updated_at, p.created_at, p.is_deleted
        FROM person_distinct_ids d JOIN persons p ON p.team_id = d.team_id AND p.uuid = d.person_uuid
        """

    enum PersonCursor: Sendable {
        /// Mappings that changed in the window, by `(mapping time, distinct id)`.
        case mappings(Timestamp, String)
        /// Then the other distinct ids of persons that changed in it, by `(person time, uuid, distinct id)`.
        case persons(Timestamp, String, String)
        case personsFromStart
    }

    /// Every distinct id whose mapping or person changed in the window, once: first the mappings
    /// that changed (each an index range), then the distinct ids of persons that changed whose
    /// mapping did not.
    public func persons(_ query: ModelQuery, batchSize: Int) -> RecordBatches<PersonRecord> {
        let database = self.database
        let timeout = statementTimeout
        let limit = max(1, batchSize)
        return RecordBatches { (cursor: PersonCursor?) in
            try await database.read(timeout: timeout) { connection in
                var binds: [SQLValue] = [.int(query.teamID), SQLValue(query.start), SQLValue(query.end)]
                let sql: String
                var inMappings = true
                switch cursor {
                case nil, .mappings:
                    var condition = "d.team_id = $1 AND d.updated_at >= $2 AND d.updated_at < $3"
                    if case .mappings(let time, let id)? = cursor {
                        binds += [SQLValue(time), .text(id)]
                        condition += " AND d.updated_at >= $4 AND (d.updated_at > $4 OR d.distinct_id > $5)"
                    }
                    sql = "\(Self.personSelect) WHERE \(condition) ORDER BY d.updated_at, d.distinct_id LIMIT \(limit)"
                case .persons, .personsFromStart:
                    inMappings = false
                    var condition =
                        "p.team_id = $1 AND p.updated_at >= $2 AND p.updated_at < $3 AND NOT (d.updated_at >= $2 AND d.updated_at < $3)"
                    if case .persons(let time, let uuid, let id)? = cursor {
                        binds += [SQLValue(time), .text(uuid), .text(id)]
                        condition +=
                            " AND p.updated_at >= $4 AND (p.updated_at > $4 OR p.uuid > $5 OR (p.uuid = $5 AND d.distinct_id > $6))"
                    }
                    sql = "\(Self.personSelect) WHERE \(condition) ORDER BY p.updated_at, p.uuid, d.distinct_id LIMIT \(limit)"
                }
                let rows = try await connection.query(sql, binds)
                var records: [PersonRecord] = []
                records.reserveCapacity(rows.count)
                var last: (Timestamp, Timestamp)?
                for row in rows {
                    let mappingTime = try row.decodeTimestamp("distinct_id_updated_at")
                    let personTime = try row.decodeTimestamp("person_updated_at")
                    last = (mappingTime, personTime)
                    let personInWindow = personTime >= query.start && personTime < query.end
                    records.append(
                        PersonRecord(
                            teamID: query.teamID, distinctID: try row.decodeString("distinct_id"),
                            personID: try row.decodeString("person_uuid"), properties: try row.decodeString("properties"),
                            distinctIDVersion: try row.decodeInt("distinct_id_version"), personVersion: try row.decodeInt("person_version"),
                            createdAt: try row.decodeTimestamp("created_at"),
                            insertedAt: inMappings ? (personInWindow ? max(mappingTime, personTime) : mappingTime) : personTime,
                            isDeleted: try row.decodeBool("is_deleted")))
                }
                let next: PersonCursor?
                if rows.count < limit {
                    next = inMappings ? .personsFromStart : nil
                } else if let final = records.last, let last {
                    next = inMappings ? .mappings(last.0, final.distinctID) : .persons(last.1, final.personID, final.distinctID)
                } else {
                    next = nil
                }
                return (records, next)
            }
        }
    }

    /// The earliest change time and the number of rows of a persons window (backfill estimates).
    public func personsEstimate(_ query: ModelQuery) async throws -> (earliest: Timestamp?, count: Int) {
        try await database.read(timeout: statementTimeout) { connection in
            let binds: [SQLValue] = [.int(query.teamID), SQLValue(query.start), SQLValue(query.end)]
            let mappings = try await connection.first(
                "SELECT MIN(updated_at) AS earliest, COUNT(*) AS n FROM person_distinct_ids WHERE team_id = $1 AND updated_at >= $2 AND updated_at < $3",
                binds)
            let persons = try await connection.first(
                """
                SELECT MIN(p.updated_at) AS earliest, COUNT(*) AS n
                FROM persons p JOIN person_distinct_ids d ON d.team_id = p.team_id AND d.person_uuid = p.uuid
                WHERE p.team_id = $1 AND p.updated_at >= $2 AND p.updated_at < $3 AND NOT (d.updated_at >= $2 AND d.updated_at < $3)
                """, binds)
            let earliest = [mappings?.timestamp("earliest"), persons?.timestamp("earliest")].compactMap { $0 }.min()
            return (earliest, Int((mappings?.int("n") ?? 0) + (persons?.int("n") ?? 0)))
        }
    }

    /// The sessions of a window: those that changed in it (scheduled runs), or that ended in it
    /// (backfills), by `(time, session id)`.
    public func sessions(_ query: ModelQuery, batchSize: Int) -> RecordBatches<Session> {
        let database = self.database
        let timeout = statementTimeout
        let limit = max(1, batchSize)
        let field = query.isBackfill ? "end_timestamp" : "updated_at"
        return RecordBatches { (cursor: (Int64, String)?) in
            try await database.read(timeout: timeout) { connection in
                var binds: [SQLValue] = [.int(query.teamID), SQLValue(query.start), SQLValue(query.end)]
                var condition = "team_id = $1 AND \(field) >= $2 AND \(field) < $3"
                if let (time, id) = cursor {
                    binds += [.int(time), .text(id)]
                    condition += " AND \(field) >= $4 AND (\(field) > $4 OR session_id > $5)"
                }
                let rows = try await connection.query(
                    "SELECT state FROM sessions WHERE \(condition) ORDER BY \(field), session_id LIMIT \(limit)", binds)
                let sessions = try rows.map(SessionStore.decode)
                guard rows.count == limit, let last = sessions.last else { return (sessions, nil) }
                return (sessions, (query.isBackfill ? last.end : last.updatedAt, last.sessionID))
            }
        }
    }

    /// The earliest time and the number of sessions of a window (backfill estimates).
    public func sessionsEstimate(_ query: ModelQuery) async throws -> (earliest: Timestamp?, count: Int) {
        try await database.read(timeout: statementTimeout) { connection in
            let field = query.isBackfill ? "end_timestamp" : "updated_at"
            let row = try await connection.first(
                "SELECT MIN(\(field)) AS earliest, COUNT(*) AS n FROM sessions WHERE team_id = $1 AND \(field) >= $2 AND \(field) < $3",
                [.int(query.teamID), SQLValue(query.start), SQLValue(query.end)])
            return (row?.timestamp("earliest"), Int(row?.int("n") ?? 0))
        }
    }
}
