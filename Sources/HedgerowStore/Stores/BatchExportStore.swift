import Foundation
import HedgerowCore

/// Batch exports, their runs, backfills and logs. Secrets arrive sealed: the store never sees them
/// in the clear.
package struct BatchExportStore: Sendable {
    package init() {}

    /// `b = $2, c = $3, ...` for a column list whose first column (the id) is `$1`.
    static func assignments(_ columns: String) -> String {
        columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.enumerated().dropFirst()
            .map { "\($0.element) = $\($0.offset + 1)" }.joined(separator: ", ")
    }

    /// A batch export row: the export without secrets, and its sealed secrets.
    package struct Row: Sendable {
        package var export: BatchExport
        package var sealedSecrets: String?
    }

    static let columns = """
        id, team_id, name, model, destination_type, destination_config, destination_secrets, interval, paused, deleted, created_at,
        last_updated_at, last_paused_at, start_at, end_at, hogql_query, filters, timezone, offset_day, offset_hour, scheduled_through
        """

    static func decode(_ row: SQLRow) throws -> Row {
        guard let type = DestinationType(rawValue: try row.decodeString("destination_type")),
            let interval = Interval(rawValue: try row.decodeString("interval")),
            let model = ExportModel(rawValue: try row.decodeString("model"))
        else { throw SQLDecodingError(column: "destination_type/interval/model", expected: "known values") }
        var export = BatchExport(
            id: try row.decodeString("id"), teamID: try row.decodeInt("team_id"), name: try row.decodeString("name"),
            model: model, destinationType: type,
            destinationConfig: (try JSONParser.parse(try row.decodeString("destination_config"))).objectValue ?? JSONObject(),
            interval: interval, paused: try row.decodeBool("paused"), createdAt: try row.decodeTimestamp("created_at"),
            timezone: try row.decodeString("timezone"))
        export.deleted = try row.decodeBool("deleted")
        export.lastUpdatedAt = try row.decodeTimestamp("last_updated_at")
        export.lastPausedAt = row.timestamp("last_paused_at")
        export.startAt = row.timestamp("start_at")
        export.endAt = row.timestamp("end_at")
        export.hogqlQuery = row.string("hogql_query")
        export.filters = try row.string("filters").map { try JSONParser.parse($0) }
        export.offsetDay = row.int("offset_day").map(Int.init)
        export.offsetHour = row.int("offset_hour").map(Int.init)
        export.scheduledThrough = row.timestamp("scheduled_through")
        return Row(export: export, sealedSecrets: row.string("destination_secrets"))
    }

    static func binds(_ export: BatchExport, publicConfig: JSONObject, sealedSecrets: String?) -> [SQLValue] {
        [
            .text(export.id), .int(export.teamID), .text(export.name), .text(export.model.rawValue), .text(export.destinationType.rawValue),
            .text(JSONWriter.string(.object(publicConfig))), SQLValue(sealedSecrets), .text(export.interval.rawValue),
            .bool(export.paused), .bool(export.deleted), SQLValue(export.createdAt), SQLValue(export.lastUpdatedAt),
            SQLValue(export.lastPausedAt), SQLValue(export.startAt), SQLValue(export.endAt), SQLValue(export.hogqlQuery),
            SQLValue(export.filters.map(JSONWriter.string)), .text(export.timezone), SQLValue(export.offsetDay),
            SQLValue(export.offsetHour),
            SQLValue(export.scheduledThrough),
        ]
    }

    package func insert(
        _ export: BatchExport, publicConfig: JSONObject, sealedSecrets: String?, on connection: any SQLConnection
    ) async throws {
        try await connection.execute(
            "INSERT INTO batch_exports (\(Self.columns)) VALUES (\((1...21).map { "$\($0)" }.joined(separator: ", ")))",
            Self.binds(export, publicConfig: publicConfig, sealedSecrets: sealedSecrets))
    }

    package func update(
        _ export: BatchExport, publicConfig: JSONObject, sealedSecrets: String?, on connection: any SQLConnection
    ) async throws {
        try await connection.execute(
            // A changed export is looked at again by the scheduler at its next poll.
            "UPDATE batch_exports SET \(Self.assignments(Self.columns)), next_schedule_at = NULL WHERE id = $1",
            Self.binds(export, publicConfig: publicConfig, sealedSecrets: sealedSecrets))
    }

    package func find(id: String, on connection: any SQLConnection) async throws -> Row? {
        try await connection.first("SELECT \(Self.columns) FROM batch_exports WHERE id = $1 AND deleted = $2", [.text(id), .bool(false)])
            .map(Self.decode)
    }

    /// Live exports of the given environments, newest first.
    package func page(teamIDs: [Int64], limit: Int, offset: Int, on connection: any SQLConnection) async throws -> (count: Int, page: [Row])
    {
        if teamIDs.isEmpty { return (0, []) }
        let list = teamIDs.indices.map { "$\($0 + 2)" }.joined(separator: ", ")
        let binds: [SQLValue] = [.bool(false)] + teamIDs.map(SQLValue.int)
        let count =
            try await connection.first(
                "SELECT COUNT(*) AS n FROM batch_exports WHERE deleted = $1 AND team_id IN (\(list))", binds)?.int("n") ?? 0
        let rows = try await connection.query(
            "SELECT \(Self.columns) FROM batch_exports WHERE deleted = $1 AND team_id IN (\(list)) ORDER BY created_at DESC, id DESC LIMIT \(limit) OFFSET \(offset)",
            binds)
        return (Int(count), try rows.map(Self.decode))
    }

    /// The live, unpaused exports the scheduler must look at by `now`: those it has not looked at
    /// since they were created or changed, and those whose next run is due (`next_schedule_at`, an
    /// index), so a poll reads the exports that have work, not every export. Also the ids of those
    /// whose stored row no longer decodes (a model, type or interval this release does not know)
    /// with why: one such row must not stop the schedule of every other export.
    package func active(
        dueBy now: Timestamp, on connection: any SQLConnection
    ) async throws -> (rows: [Row], unreadable: [(id: String, error: String)]) {
        var rows: [Row] = []
        var unreadable: [(id: String, error: String)] = []
        for row in try await connection.query(
            """
            SELECT \(Self.columns) FROM batch_exports
            WHERE deleted = $1 AND paused = $1 AND (next_schedule_at IS NULL OR next_schedule_at <= $2) ORDER BY id
            """, [.bool(false), SQLValue(now)])
        {
            do {
                rows.append(try Self.decode(row))
            } catch {
                unreadable.append((row.string("id") ?? "?", "\(error)"))
            }
        }
        return (rows, unreadable)
    }

    /// When the scheduler next needs to look at an export, unless the export changed since the
    /// scheduler read it (`lastUpdatedAt`): then it is looked at again at the next poll.
    package func setNextSchedule(
        id: String, at time: Timestamp, ifUnchangedSince lastUpdatedAt: Timestamp, on connection: any SQLConnection
    ) async throws {
        try await connection.execute(
            "UPDATE batch_exports SET next_schedule_at = $2 WHERE id = $1 AND last_updated_at = $3",
            [.text(id), SQLValue(time), SQLValue(lastUpdatedAt)])
    }

    package func setScheduledThrough(id: String, tick: Timestamp, on connection: any SQLConnection) async throws {
        try await connection.execute("UPDATE batch_exports SET scheduled_through = $2 WHERE id = $1", [.text(id), SQLValue(tick)])
    }

    // MARK: Runs

    static let runColumns = """
        id, batch_export_id, backfill_id, status, records_completed, records_total_count, bytes_exported, latest_error,
        data_interval_start, data_interval_end, cursor, created_at, finished_at, last_updated_at, attempt, next_attempt_at,
        first_attempt_at
        """

    static let runColumnCount = 17

    static func decodeRun(_ row: SQLRow) throws -> BatchExportRun {
        guard let status = RunStatus(rawValue: try row.decodeString("status")) else {
            throw SQLDecodingError(column: "status", expected: "a run status")
        }
        var run = BatchExportRun(
            id: try row.decodeString("id"), batchExportID: try row.decodeString("batch_export_id"), backfillID: row.string("backfill_id"),
            dataIntervalStart: row.timestamp("data_interval_start"), dataIntervalEnd: try row.decodeTimestamp("data_interval_end"),
            createdAt: try row.decodeTimestamp("created_at"))
        run.status = status
        run.recordsCompleted = row.int("records_completed")
        run.recordsTotalCount = row.int("records_total_count")
        run.bytesExported = row.int("bytes_exported")
        run.latestError = row.string("latest_error")
        run.cursor = row.string("cursor")
        run.finishedAt = row.timestamp("finished_at")
        run.lastUpdatedAt = try row.decodeTimestamp("last_updated_at")
        run.attempt = try row.decodeInt("attempt")
        run.nextAttemptAt = row.timestamp("next_attempt_at")
        run.firstAttemptAt = row.timestamp("first_attempt_at")
        return run
    }

    static func runBinds(_ run: BatchExportRun) -> [SQLValue] {
        [
            .text(run.id), .text(run.batchExportID), SQLValue(run.backfillID), .text(run.status.rawValue), SQLValue(run.recordsCompleted),
            SQLValue(run.recordsTotalCount), SQLValue(run.bytesExported), SQLValue(run.latestError), SQLValue(run.dataIntervalStart),
            SQLValue(run.dataIntervalEnd), SQLValue(run.cursor), SQLValue(run.createdAt), SQLValue(run.finishedAt),
            SQLValue(run.lastUpdatedAt), .int(run.attempt), SQLValue(run.nextAttemptAt), SQLValue(run.firstAttemptAt),
        ]
    }

    /// Inserts a run; a scheduled run for a tick that already has one is skipped (returns false).
    @discardableResult
    package func insertRun(_ run: BatchExportRun, on connection: any SQLConnection) async throws -> Bool {
        let rows = try await connection.query(
            "INSERT INTO batch_export_runs (\(Self.runColumns)) VALUES (\((1...Self.runColumnCount).map { "$\($0)" }.joined(separator: ", "))) ON CONFLICT DO NOTHING RETURNING id",
            Self.runBinds(run))
        return !rows.isEmpty
    }

    /// Inserts many runs (a backfill's), several hundred to a statement: one statement a run made a
    /// 100 000-run backfill hold the write lock for seconds.
    package func insertRuns(_ runs: [BatchExportRun], on connection: any SQLConnection) async throws {
        let rowsPerStatement = 500
        for start in stride(from: 0, to: runs.count, by: rowsPerStatement) {
            let chunk = runs[start..<min(start + rowsPerStatement, runs.count)]
            let rows = chunk.indices.map { row in
                let first = (row - start) * Self.runColumnCount
                return "(" + (1...Self.runColumnCount).map { "$\(first + $0)" }.joined(separator: ", ") + ")"
            }
            try await connection.execute(
                "INSERT INTO batch_export_runs (\(Self.runColumns)) VALUES \(rows.joined(separator: ", ")) ON CONFLICT DO NOTHING",
                chunk.flatMap(Self.runBinds))
        }
    }

    package func updateRun(_ run: BatchExportRun, on connection: any SQLConnection) async throws {
        try await connection.execute("UPDATE batch_export_runs SET \(Self.assignments(Self.runColumns)) WHERE id = $1", Self.runBinds(run))
    }

    package func run(id: String, batchExportID: String, on connection: any SQLConnection) async throws -> BatchExportRun? {
        try await connection.first(
            "SELECT \(Self.runColumns) FROM batch_export_runs WHERE id = $1 AND batch_export_id = $2", [.text(id), .text(batchExportID)]
        ).map(Self.decodeRun)
    }

    /// Whether a scheduled (non-backfill) run of the export has completed the interval ending at `end`.
    package func hasCompletedScheduledRun(
        batchExportID: String, endingAt end: Timestamp, on connection: any SQLConnection
    ) async throws -> Bool {
        try await connection.first(
            """
            SELECT 1 AS found FROM batch_export_runs WHERE batch_export_id = $1 AND data_interval_end = $2 AND backfill_id IS NULL
              AND status = 'Completed'
            """, [.text(batchExportID), SQLValue(end)]) != nil
    }

    /// Runs of an export, filtered and ordered as the runs list asks.
    package func runs(
        batchExportID: String, statuses: [RunStatus], after: Timestamp?, before: Timestamp?, ordering: String, descending: Bool,
        limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws -> [BatchExportRun] {
        var conditions = ["batch_export_id = $1"]
        var binds: [SQLValue] = [.text(batchExportID)]
        if !statuses.isEmpty {
            conditions.append(
                "status IN ("
                    + statuses.map { status in
                        binds.append(.text(status.rawValue))
                        return "$\(binds.count)"
                    }.joined(separator: ", ") + ")")
        }
        if let after {
            binds.append(SQLValue(after))
            conditions.append("created_at >= $\(binds.count)")
        }
        if let before {
            binds.append(SQLValue(before))
            conditions.append("created_at < $\(binds.count)")
        }
        let column = ordering == "data_interval_start" ? "data_interval_start" : "created_at"
        let direction = descending ? "DESC" : "ASC"
        return try await connection.query(
            "SELECT \(Self.runColumns) FROM batch_export_runs WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(column) \(direction), id \(direction) LIMIT \(limit) OFFSET \(offset)",
            binds
        ).map(Self.decodeRun)
    }

    /// The newest runs of several exports at once (`latest_runs`).
    package func latestRuns(
        batchExportIDs: [String], perExport: Int, on connection: any SQLConnection
    ) async throws -> [String: [BatchExportRun]] {
        var result: [String: [BatchExportRun]] = [:]
        for id in batchExportIDs {
            result[id] = try await connection.query(
                "SELECT \(Self.runColumns) FROM batch_export_runs WHERE batch_export_id = $1 ORDER BY created_at DESC, id DESC LIMIT \(perExport)",
                [.text(id)]
            ).map(Self.decodeRun)
        }
        return result
    }

    // MARK: Backfills

    static let backfillColumns = """
        id, batch_export_id, start_at, end_at, adjusted_start_at, status, created_at, finished_at, last_updated_at,
        total_records_count, total_runs
        """

    static func decodeBackfill(_ row: SQLRow) throws -> BatchExportBackfill {
        guard let status = RunStatus(rawValue: try row.decodeString("status")) else {
            throw SQLDecodingError(column: "status", expected: "a status")
        }
        var backfill = BatchExportBackfill(
            id: try row.decodeString("id"), batchExportID: try row.decodeString("batch_export_id"), startAt: row.timestamp("start_at"),
            endAt: row.timestamp("end_at"), createdAt: try row.decodeTimestamp("created_at"))
        backfill.adjustedStartAt = row.timestamp("adjusted_start_at")
        backfill.status = status
        backfill.finishedAt = row.timestamp("finished_at")
        backfill.lastUpdatedAt = try row.decodeTimestamp("last_updated_at")
        backfill.totalRecordsCount = row.int("total_records_count")
        backfill.totalRuns = row.int("total_runs")
        backfill.finishedRuns = row.int("finished_runs") ?? 0
        return backfill
    }

    static func backfillBinds(_ backfill: BatchExportBackfill) -> [SQLValue] {
        [
            .text(backfill.id), .text(backfill.batchExportID), SQLValue(backfill.startAt), SQLValue(backfill.endAt),
            SQLValue(backfill.adjustedStartAt), .text(backfill.status.rawValue), SQLValue(backfill.createdAt),
            SQLValue(backfill.finishedAt),
            SQLValue(backfill.lastUpdatedAt), SQLValue(backfill.totalRecordsCount), SQLValue(backfill.totalRuns),
        ]
    }

    static let finishedRunsColumn = """
        (SELECT COUNT(*) FROM batch_export_runs r WHERE r.backfill_id = b.id AND r.status IN ('Completed', 'Failed')) AS finished_runs
        """

    package func insertBackfill(_ backfill: BatchExportBackfill, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "INSERT INTO batch_export_backfills (\(Self.backfillColumns)) VALUES (\((1...11).map { "$\($0)" }.joined(separator: ", ")))",
            Self.backfillBinds(backfill))
    }

    package func updateBackfill(_ backfill: BatchExportBackfill, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "UPDATE batch_export_backfills SET \(Self.assignments(Self.backfillColumns)) WHERE id = $1", Self.backfillBinds(backfill))
    }

    package func backfill(id: String, batchExportID: String, on connection: any SQLConnection) async throws -> BatchExportBackfill? {
        try await connection.first(
            "SELECT \(Self.backfillColumns.split(separator: ",").map { "b." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")), \(Self.finishedRunsColumn) FROM batch_export_backfills b WHERE b.id = $1 AND b.batch_export_id = $2",
            [.text(id), .text(batchExportID)]
        ).map(Self.decodeBackfill)
    }

    package func backfills(
        batchExportID: String, limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws -> [BatchExportBackfill] {
        try await connection.query(
            "SELECT \(Self.backfillColumns.split(separator: ",").map { "b." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")), \(Self.finishedRunsColumn) FROM batch_export_backfills b WHERE b.batch_export_id = $1 ORDER BY b.created_at DESC, b.id DESC LIMIT \(limit) OFFSET \(offset)",
            [.text(batchExportID)]
        ).map(Self.decodeBackfill)
    }

    // MARK: Logs

    /// Writes a line to an export's log.
    package func log(
        batchExportID: String, runID: String?, level: LogLevel, message: String, at time: Timestamp, on connection: any SQLConnection
    ) async throws {
        try await insertLog(
            BatchExportLog(
                id: Identifiers.uuidV7(at: time), batchExportID: batchExportID, runID: runID, level: level, message: message,
                timestamp: time),
            on: connection)
    }

    /// Cancels unfinished work: one backfill's runs; or an export's open backfills with their runs,
    /// and, with `includeScheduled`, its scheduled runs too.
    package func cancelUnfinished(
        batchExportID: String, backfillID: String? = nil, includeScheduled: Bool, at now: Timestamp, on connection: any SQLConnection
    ) async throws {
        // `RunTransition.cancel` for many runs at once: the same states, the same fields.
        let open = "status IN (\(RunTransition.unfinished.map { "'\($0.rawValue)'" }.joined(separator: ", ")))"
        let cancel = "UPDATE batch_export_runs SET status = 'Cancelled', finished_at = $2, last_updated_at = $2, next_attempt_at = NULL"
        if let backfillID {
            try await connection.execute("\(cancel) WHERE backfill_id = $1 AND \(open)", [.text(backfillID), SQLValue(now)])
            return
        }
        if includeScheduled {
            try await connection.execute("\(cancel) WHERE batch_export_id = $1 AND \(open)", [.text(batchExportID), SQLValue(now)])
        } else {
            try await connection.execute(
                "\(cancel) WHERE backfill_id IN (SELECT id FROM batch_export_backfills WHERE batch_export_id = $1 AND status IN ('Starting', 'Running')) AND \(open)",
                [.text(batchExportID), SQLValue(now)])
        }
        try await connection.execute(
            "UPDATE batch_export_backfills SET status = 'Cancelled', finished_at = $2, last_updated_at = $2 WHERE batch_export_id = $1 AND status IN ('Starting', 'Running')",
            [.text(batchExportID), SQLValue(now)])
    }

    func insertLog(_ log: BatchExportLog, on connection: any SQLConnection) async throws {
        try await connection.execute(
            "INSERT INTO batch_export_logs (id, batch_export_id, run_id, level, message, timestamp) VALUES ($1, $2, $3, $4, $5, $6)",
            [
                .text(log.id), .text(log.batchExportID), SQLValue(log.runID), .text(log.level.rawValue), .text(log.message),
                SQLValue(log.timestamp),
            ])
    }

    package func logs(
        batchExportID: String, runID: String?, level: LogLevel?, search: String?, after: Timestamp?, before: Timestamp?, limit: Int,
        on connection: any SQLConnection
    ) async throws -> [BatchExportLog] {
        var conditions = ["batch_export_id = $1"]
        var binds: [SQLValue] = [.text(batchExportID)]
        func add(_ condition: (String) -> String, _ value: SQLValue) {
            binds.append(value)
            conditions.append(condition("$\(binds.count)"))
        }
        if let runID { add({ "run_id = \($0)" }, .text(runID)) }
        if let level { add({ "level = \($0)" }, .text(level.rawValue)) }
        if let search {
            let escaped = search.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            add({ "lower(message) LIKE '%' || \($0) || '%' ESCAPE '\\'" }, .text(escaped))
        }
        if let after { add({ "timestamp > \($0)" }, SQLValue(after)) }
        if let before { add({ "timestamp < \($0)" }, SQLValue(before)) }
        return try await connection.query(
            "SELECT id, batch_export_id, run_id, level, message, timestamp FROM batch_export_logs WHERE \(conditions.joined(separator: " AND ")) ORDER BY timestamp DESC, id DESC LIMIT \(limit)",
            binds
        ).map { row in
            guard let level = LogLevel(rawValue: try row.decodeString("level")) else {
                throw SQLDecodingError(column: "level", expected: "a log level")
            }
            return BatchExportLog(
                id: try row.decodeString("id"), batchExportID: try row.decodeString("batch_export_id"), runID: row.string("run_id"),
                level: level, message: try row.decodeString("message"),
                timestamp: try row.decodeTimestamp("timestamp"))
        }
    }
}
