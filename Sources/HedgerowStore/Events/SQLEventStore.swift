import HedgerowCore
import NIOCore

/// The event store on the SQL layer: SQLite (embedded default, JSON as text and the
/// `hedgerow_*` functions) and PostgreSQL (JSONB and its operators), one code path with the dialect
/// deciding only how a JSON property is read and how filters are spelt.
package struct SQLEventStore: EventStore {
    let database: any Database
    /// Each read's statement time limit (`HEDGEROW_EVENT_QUERY_TIMEOUT_SECONDS`): property filters
    /// run users' regular expressions on every row, so no read may run unbounded.
    let statementTimeout: Duration

    package init(database: any Database, statementTimeout: Duration = .seconds(60)) {
        self.database = database
        self.statementTimeout = statementTimeout
    }

    /// The select list of every event read; `decode` reads it by position.
    static let columns = """
        team_id, uuid, event, distinct_id, CAST(properties AS TEXT) AS properties, person_id,
        CAST(person_properties AS TEXT) AS person_properties, elements_chain, timestamp, created_at, inserted_at
        """

    /// Rows per multi-row INSERT on PostgreSQL (11 parameters a row, below the 65 535 limit).
    static let postgresRowsPerInsert = 1000

    package func append(_ events: [Event]) async throws -> Int {
        guard !events.isEmpty else { return 0 }
        return try await database.transaction { connection in try await append(events, on: connection) }
    }

    /// Appends inside a transaction the caller holds.
    package func append(_ events: [Event], on connection: any SQLConnection) async throws -> Int {
        try await appendReturningUUIDs(events, on: connection).count
    }

    /// Appends inside a transaction the caller holds (capture writes persons in the same one);
    /// returns the uuids that were new.
    package func appendReturningUUIDs(_ events: [Event], on connection: any SQLConnection) async throws -> Set<String> {
        var inserted = Set<String>()
        guard !events.isEmpty else { return inserted }
        switch connection.dialect {
        case .sqlite:
            for event in events {
                for row in try await connection.query(Self.sqliteInsertSQL, Self.binds(event)) {
                    inserted.insert(try row.decodeString("uuid"))
                }
            }
        case .postgres:
            if let copying = connection as? any SQLCopyConnection, let copied = try await Self.copy(events, on: copying) {
                return copied
            }
            var start = events.startIndex
            while start < events.endIndex {
                let chunk = events[start..<min(start + Self.postgresRowsPerInsert, events.endIndex)]
                for row in try await connection.query(Self.insertSQL(rows: chunk.count, dialect: .postgres), chunk.flatMap(Self.binds)) {
                    inserted.insert(try row.decodeString("uuid"))
                }
                start += chunk.count
            }
        }
        return inserted
    }

    /// The columns of `events` every append writes, in `binds`' order.
    static let appendColumns = [
        "team_id", "uuid", "event", "distinct_id", "properties", "person_id", "person_properties", "elements_chain", "timestamp",
        "created_at", "inserted_at",
    ]

    /// A batch of new events in one `COPY` (PostgreSQL's bulk load, several times cheaper for the
    /// server than INSERT statements). COPY has no `ON CONFLICT`, so a batch with a uuid already
    /// stored is refused whole: the savepoint undoes it and nil sends the batch down the INSERT path,
    /// which skips the stored ones (as does a batch that names a uuid twice, not tried here). A value
    /// the server refuses goes the same way, and fails there as it always did.
    static func copy(_ events: [Event], on connection: any SQLCopyConnection) async throws -> Set<String>? {
        var uuids = Set<String>(minimumCapacity: events.count)
        var size = 0
        for event in events {
            guard uuids.insert(event.uuid).inserted else { return nil }
            size += event.properties.utf8.count + (event.personProperties?.utf8.count ?? 0) + (event.elementsChain?.utf8.count ?? 0) + 160
        }
        var rows = ByteBuffer()
        rows.reserveCapacity(size)
        for event in events { writeCopyRow(event, into: &rows) }
        try await connection.execute("SAVEPOINT hedgerow_events_copy")
        do {
            try await connection.copy(into: "events", columns: appendColumns, rows: rows)
        } catch is SQLCopyRefused {
            try await connection.execute("ROLLBACK TO SAVEPOINT hedgerow_events_copy")
            try await connection.execute("RELEASE SAVEPOINT hedgerow_events_copy")
            return nil
        }
        try await connection.execute("RELEASE SAVEPOINT hedgerow_events_copy")
        return uuids
    }

    /// One row of the append's COPY, in `appendColumns`' order.
    static func writeCopyRow(_ event: Event, into rows: inout ByteBuffer) {
        func text(_ value: String?) {
            PostgresCopyText.writeSeparator(into: &rows)
            PostgresCopyText.writeCell(value, into: &rows)
        }
        func time(_ value: Timestamp) {
            PostgresCopyText.writeSeparator(into: &rows)
            PostgresCopyText.writeCell(value.microseconds, into: &rows)
        }
        PostgresCopyText.writeCell(event.teamID, into: &rows)
        text(event.uuid)
        text(event.event)
        text(event.distinctID)
        text(event.properties)
        text(event.personID)
        text(event.personProperties)
        text(event.elementsChain)
        time(event.timestamp)
        time(event.createdAt)
        time(event.insertedAt)
        PostgresCopyText.writeRowEnd(into: &rows)
    }

    /// SQLite's one-row insert, built once (capture runs it for every event).
    static let sqliteInsertSQL = insertSQL(rows: 1, dialect: .sqlite)

    static func insertSQL(rows: Int, dialect: SQLDialect) -> String {
        let json = dialect == .postgres ? "::jsonb" : ""
        let values = (0..<rows).map { row in
            let base = row * 11
            return "($\(base + 1), $\(base + 2), $\(base + 3), $\(base + 4), $\(base + 5)\(json), $\(base + 6), $\(base + 7)\(json), "
                + "$\(base + 8), $\(base + 9), $\(base + 10), $\(base + 11))"
        }
        return """
            INSERT INTO events (team_id, uuid, event, distinct_id, properties, person_id, person_properties, elements_chain,
                timestamp, created_at, inserted_at)
            VALUES \(values.joined(separator: ", "))
            ON CONFLICT (team_id, uuid) DO NOTHING RETURNING uuid
            """
    }

    static func binds(_ event: Event) -> [SQLValue] {
        [
            .int(event.teamID), .text(event.uuid), .text(event.event), .text(event.distinctID), .text(event.properties),
            SQLValue(event.personID), SQLValue(event.personProperties), SQLValue(event.elementsChain), SQLValue(event.timestamp),
            SQLValue(event.createdAt), SQLValue(event.insertedAt),
        ]
    }

    package func batches(_ query: EventQuery, batchSize: Int) -> EventBatches {
        batches(query, batchSize: batchSize, pageBytes: EventBatches.defaultPageBytes)
    }

    /// The query's events in pages of at most `batchSize` events and about `pageBytes` (the first
    /// page sized from a sample of 100 events' average size).
    package func batches(_ query: EventQuery, batchSize: Int, pageBytes: Int) -> EventBatches {
        let database = self.database
        let field = query.field.rawValue
        let firstEventBytes: @Sendable () async throws -> Int? = { [statementTimeout] in
            try await database.read(timeout: statementTimeout) { connection in
                let where_ = EventWhere(query: query, dialect: connection.dialect)
                func length(_ column: String) -> String {
                    connection.dialect == .postgres
                        ? "COALESCE(OCTET_LENGTH(\(column)::text), 0)" : "COALESCE(LENGTH(CAST(\(column) AS BLOB)), 0)"
                }
                let sample =
                    "SELECT \(length("properties")) + \(length("person_properties")) + \(length("elements_chain")) AS bytes"
                    + " FROM events WHERE \(where_.sql) ORDER BY \(field), uuid LIMIT 100"
                let average = try await connection.first(
                    "SELECT CAST(AVG(bytes) AS BIGINT) AS average FROM (\(sample)) sample", where_.binds)
                return average?.int("average").map { Int(min($0, Int64(Int32.max))) + 160 }
            }
        }
        return EventBatches(field: query.field, batchSize: batchSize, pageBytes: pageBytes, firstEventBytes: firstEventBytes) {
            [statementTimeout] cursor, limit in
            try await database.read(timeout: statementTimeout) { connection in
                let where_ = EventWhere(query: query, dialect: connection.dialect, after: cursor)
                let sql = "SELECT \(Self.columns) FROM events WHERE \(where_.sql) ORDER BY \(field), uuid LIMIT \(max(1, limit))"
                return try await connection.query(sql, where_.binds, decoding: Self.decode)
            }
        }
    }

    package func count(_ query: EventQuery) async throws -> Int {
        try await database.read(timeout: statementTimeout) { connection in
            let where_ = EventWhere(query: query, dialect: connection.dialect)
            return Int(try await connection.first("SELECT COUNT(*) AS n FROM events WHERE \(where_.sql)", where_.binds)?.int("n") ?? 0)
        }
    }

    package func earliest(_ query: EventQuery) async throws -> Timestamp? {
        try await database.read(timeout: statementTimeout) { connection in
            let where_ = EventWhere(query: query, dialect: connection.dialect)
            return try await connection.first(
                "SELECT MIN(\(query.field.rawValue)) AS earliest FROM events WHERE \(where_.sql)", where_.binds
            )?.timestamp("earliest")
        }
    }

    /// Reads a row of `columns` by position (in their order): capture and every export decode
    /// rows here, and a name lookup per cell was a tenth of an export's CPU.
    static func decode(_ row: SQLColumns) throws -> Event {
        Event(
            uuid: try row.decodeString(at: 1), teamID: try row.decodeInt(at: 0), event: try row.decodeString(at: 2),
            distinctID: try row.decodeString(at: 3), properties: try row.decodeString(at: 4), personID: row.string(at: 5),
            personProperties: row.string(at: 6), elementsChain: row.string(at: 7),
            timestamp: Timestamp(microseconds: try row.decodeInt(at: 8)), createdAt: Timestamp(microseconds: try row.decodeInt(at: 9)),
            insertedAt: Timestamp(microseconds: try row.decodeInt(at: 10)))
    }
}

/// The WHERE clause of an event query, with its bound values.
struct EventWhere {
    let dialect: SQLDialect
    var conditions: [String] = []
    var binds: [SQLValue] = []

    var sql: String { conditions.joined(separator: " AND ") }

    mutating func bind(_ value: SQLValue) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    /// `after`: the last `(time, uuid)` of the previous page, where the index range must begin. Each
    /// planner needs it spelt its own way, or it rescans the window from its start for every page
    /// (measured with scripts/bench-capture): SQLite takes a plain lower bound on the time instead of
    /// the window's start; PostgreSQL a row-value comparison beside the window's start.
    init(query: EventQuery, dialect: SQLDialect, after cursor: (Timestamp, String)? = nil) {
        self.dialect = dialect
        let field = query.field.rawValue
        conditions.append("team_id = \(bind(.int(query.teamID)))")
        if let (time, uuid) = cursor {
            let t = bind(SQLValue(time))
            let u = bind(.text(uuid))
            switch dialect {
            case .sqlite: conditions.append("\(field) >= \(t) AND (\(field) > \(t) OR uuid > \(u))")
            case .postgres:
                conditions.append("\(field) >= \(bind(SQLValue(query.start)))")
                conditions.append("(\(field), uuid) > (\(t), \(u))")
            }
        } else {
            conditions.append("\(field) >= \(bind(SQLValue(query.start)))")
        }
        conditions.append("\(field) < \(bind(SQLValue(query.end)))")
        if !query.includeEvents.isEmpty {
            conditions.append("event IN (\(query.includeEvents.map { bind(.text($0)) }.joined(separator: ", ")))")
        }
        if !query.excludeEvents.isEmpty {
            conditions.append("event NOT IN (\(query.excludeEvents.map { bind(.text($0)) }.joined(separator: ", ")))")
        }
        for filter in query.filters { conditions.append(condition(filter)) }
    }

    /// The property's value as text: strings as they are, numbers as written, booleans
    /// `true`/`false`, objects and arrays as JSON; NULL when missing or JSON null.
    mutating func text(_ filter: PropertyFilter) -> String {
        let column = filter.kind == .person ? "person_properties" : "properties"
        switch dialect {
        case .sqlite:
            let path = bind(.text("$.\"\(filter.key)\""))
            return "(CASE json_type(\(column), \(path)) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL "
                + "ELSE CAST(json_extract(\(column), \(path)) AS TEXT) END)"
        case .postgres:
            return "(\(column) ->> \(bind(.text(filter.key))))"
        }
    }

    mutating func condition(_ filter: PropertyFilter) -> String {
        let value = text(filter)
        func anyOf(_ each: (inout EventWhere, String) -> String) -> String {
            var parts: [String] = []
            for candidate in filter.values { parts.append(each(&self, bind(.text(candidate)))) }
            return "(" + parts.joined(separator: " OR ") + ")"
        }
        switch filter.op {
        case .exact:
            return "\(value) IN (\(filter.values.map { bind(.text($0)) }.joined(separator: ", ")))"
        case .isNot:
            return "(\(value) IS NULL OR \(value) NOT IN (\(filter.values.map { bind(.text($0)) }.joined(separator: ", "))))"
        case .icontains:
            return anyOf { $0.icontains(value, $1) }
        case .notIcontains:
            return "(\(value) IS NULL OR NOT \(anyOf { $0.icontains(value, $1) }))"
        case .regex:
            return anyOf { $0.regex(value, $1) }
        case .notRegex:
            return "(\(value) IS NULL OR NOT \(anyOf { $0.regex(value, $1) }))"
        case .gt, .gte, .lt, .lte:
            let symbol = [PropertyFilter.Operator.gt: ">", .gte: ">=", .lt: "<", .lte: "<="][filter.op]!
            return "\(number(value)) \(symbol) \(bind(.double(filter.number ?? 0)))"
        case .isSet:
            return "\(value) IS NOT NULL"
        case .isNotSet:
            return "\(value) IS NULL"
        }
    }

    func icontains(_ value: String, _ needle: String) -> String {
        dialect == .sqlite ? "hedgerow_icontains(\(value), \(needle)) = 1" : "strpos(lower(\(value)), lower(\(needle))) > 0"
    }

    func regex(_ value: String, _ pattern: String) -> String {
        dialect == .sqlite ? "hedgerow_regexp(\(pattern), \(value)) = 1" : "\(value) ~ \(pattern)"
    }

    /// The property as a number, NULL when it is not one.
    func number(_ value: String) -> String {
        switch dialect {
        case .sqlite: return "hedgerow_float(\(value))"
        case .postgres:
            return "(CASE WHEN \(value) ~ '^\\s*[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?\\s*$' "
                + "THEN CAST(\(value) AS DOUBLE PRECISION) END)"
        }
    }
}
