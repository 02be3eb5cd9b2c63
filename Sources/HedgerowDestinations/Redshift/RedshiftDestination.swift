import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowS3
import HedgerowStore
import Logging
import NIOCore
import PostgresNIO

/// Delivers a run to Amazon Redshift over the PostgreSQL protocol (reference §3.4), in **one
/// transaction** with a row for the run in `hedgerow_export_ledger`, so a run is delivered exactly
/// once (PostHog commits each INSERT chunk on its own). Redshift has no `COPY FROM STDIN`, no
/// unique constraints, no `ON CONFLICT` and no advisory locks, so every statement is one both
/// Redshift and PostgreSQL run:
/// - the rows go into a temporary stage table (`CREATE TEMPORARY TABLE … (LIKE final)`), by
///   multi-row `INSERT`s with bound values (`mode` INSERT), or by `COPY … FROM 's3://…' MANIFEST
///   FORMAT AS PARQUET` from Parquet files written to the user's bucket (`mode` COPY, Redshift only);
/// - events move on with `INSERT … SELECT … WHERE NOT EXISTS` (a uuid is stored once); persons and
///   sessions are merged on their key, a staged row replacing the stored one only when newer
///   (`DELETE … USING`, twice, then `INSERT … SELECT`);
/// - runs into one schema take turns through `LOCK` on the ledger.
/// JSON columns are `VARCHAR(65535)` (Redshift's `TEXT` is 256 bytes) or `SUPER` filled with
/// `JSON_PARSE` (`properties_data_type`).
package struct RedshiftDestination: Destination {
    let postgres: PostgresDestination
    let connector: OutboundConnector
    let s3: S3Destination.Options

    package init(logger: Logger, connector: OutboundConnector, s3: S3Destination.Options = S3Destination.Options()) {
        self.postgres = PostgresDestination(logger: logger, connector: connector)
        self.connector = connector
        self.s3 = s3
    }

    var logger: Logger { postgres.logger }

    /// Bound values per INSERT statement (the protocol counts them in 16 bits), and the bytes of
    /// values per statement (PostHog's 8 MB).
    static let parametersPerStatement = 30_000
    static let bytesPerStatement = 8 * 1024 * 1024
    /// PostHog's largest COPY file.
    static let bytesPerFile = 100 * 1024 * 1024

    /// The configuration's connection, properties type and COPY inputs.
    typealias Settings = DestinationSettings.Redshift
    typealias CopyInputs = DestinationSettings.CopyInputs
}

extension DestinationSettings.CopyInputs {
    /// The credentials clause of `COPY` (PostHog's forms: an IAM role, the cluster's default role, keys).
    var credentialsClause: String {
        switch authorization {
        case .role("default"): "IAM_ROLE default"
        case .role(let arn): "IAM_ROLE '\(RedshiftDestination.escapeLiteral(arn))'"
        case .keys(let keys):
            "ACCESS_KEY_ID '\(RedshiftDestination.escapeLiteral(keys.accessKeyID))' SECRET_ACCESS_KEY '\(RedshiftDestination.escapeLiteral(keys.secretAccessKey))'"
        }
    }
}

extension RedshiftDestination {
    /// A string literal's body with quotes doubled (and backslashes doubled: Redshift reads them
    /// as escapes).
    static func escapeLiteral(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''")
    }

    static func quote(_ identifier: String) -> String { PostgresDestination.quote(identifier) }

    /// Redshift's type for a warehouse column.
    static func type(of column: FileColumn, superJSON: Bool) -> String {
        if column.name == "uuid" || column.name == "event" || column.name == "distinct_id" || column.name == "ip"
            || column.name == "site_url"
        {
            if column.kind == .string { return "VARCHAR(200)" }
        }
        if WarehouseRows.listColumns.contains(column.name) { return "SUPER" }
        switch column.kind {
        case .json: return superJSON ? "SUPER" : "VARCHAR(65535)"
        case .string: return "VARCHAR(65535)"
        case .timestamp: return "TIMESTAMPTZ"
        case .int64: return column.name == "team_id" ? "INTEGER" : "BIGINT"
        case .boolean: return "BOOLEAN"
        case .double: return "DOUBLE PRECISION"
        }
    }

    static func isSuper(_ column: FileColumn, superJSON: Bool) -> Bool { type(of: column, superJSON: superJSON) == "SUPER" }

    package func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let settings = try Settings.read(context.export.destinationConfig)
        guard let copy = settings.copy else {
            return try await deliver(records, context: context, settings: settings, s3: nil, afterBatch: afterBatch)
        }
        let client = try Self.s3Client(copy)
        return try await connector.withHTTPClient(host: client.connectionHost) { http in
            try await deliver(records, context: context, settings: settings, s3: client.using(http), afterBatch: afterBatch)
        }
    }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, settings: Settings, s3: S3Client?,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let connection = try await postgres.connect(settings.connection)
        do {
            let result = try await connection.untilClosed(throwing: PostgresDestination.connectionClosed) {
                try await deliver(records, context: context, settings: settings, connection: connection, s3: s3, afterBatch: afterBatch)
            }
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            if error is DestinationError || error is CancellationError { throw error }
            throw Self.classify(error)
        }
    }

    /// PostHog's Redshift error classes: besides PostgreSQL's, an unsupported feature (`0A000`)
    /// and an unknown function (`42883`: SUPER's `JSON_PARSE` on a server without it) fail at once.
    static func classify(_ error: any Error) -> DestinationError {
        if let error = error as? PSQLError, error.serverInfo?[.sqlState] == "0A000" {
            return DestinationError(
                kind: .featureNotSupported, message: error.serverInfo?[.message] ?? "feature not supported", retryable: false)
        }
        return PostgresDestination.classify(error)
    }

    func run(_ connection: PostgresConnection, _ sql: String) async throws {
        try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    }

    /// Runs a `COPY … FROM 's3://…'`; its error names the manifest it read. The statement carries
    /// the COPY credentials, so the driver's own logging of it is kept below debug.
    func runCopy(_ connection: PostgresConnection, _ sql: String) async throws {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .info)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: quiet)
        } catch {
            let classified = Self.classify(error)
            let source = sql.split(separator: "'").dropFirst().first.map(String.init) ?? "S3"
            throw DestinationError(
                kind: classified.kind, message: "COPY from '\(source)' failed: \(classified.message)", retryable: classified.retryable)
        }
    }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, settings: Settings, connection: PostgresConnection, s3 s3Client: S3Client?,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let names = settings.connection
        let schema = Self.quote(names.schema)
        let ledger = "\(schema).hedgerow_export_ledger"
        var bindings = PostgresBindings()
        bindings.append(names.schema)
        let schemaExists = try await connection.query(
            PostgresQuery(unsafeSQL: "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", binds: bindings), logger: logger
        ).collect()
        guard !schemaExists.isEmpty else {
            throw DestinationError(kind: .invalidSchemaName, message: "schema \(names.schema) does not exist", retryable: false)
        }
        // The destination schema first: unqualified names (and, on a PostgreSQL standing in for
        // Redshift, its SUPER domain and JSON_PARSE function) resolve there.
        try await run(connection, "SET search_path TO \(schema), public")
        // Made outside the run's transaction (two runs may race to make it; the loser finds it).
        do {
            try await run(
                connection,
                "CREATE TABLE IF NOT EXISTS \(ledger) (run_id VARCHAR(64) NOT NULL PRIMARY KEY, batch_export_id VARCHAR(64) NOT NULL, data_interval_start TIMESTAMPTZ, data_interval_end TIMESTAMPTZ NOT NULL, records BIGINT NOT NULL, delivered_at TIMESTAMPTZ NOT NULL)"
            )
        } catch let error as PSQLError where ["42P07", "23505"].contains(error.serverInfo?[.sqlState] ?? "") {}
        try await run(connection, "BEGIN")
        var uploaded: [String] = []
        do {
            try await run(connection, "LOCK \(ledger)")
            var runBinding = PostgresBindings()
            runBinding.append(context.run.id)
            let delivered = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT records FROM \(ledger) WHERE run_id = $1", binds: runBinding), logger: logger
            ).collect()
            if let row = delivered.first {
                try await run(connection, "COMMIT")
                return DeliveryResult(records: try row.decode(Int64.self), bytes: 0)
            }
            let rows = WarehouseRows(records)
            let rule = WarehouseRows.mergeRule(model: records.model)
            let table = try await prepareTable(rows.columns, settings: settings, rule: rule, connection: connection)
            let stage = Self.quote(
                "hedgerow_stage_" + context.run.id.replacingOccurrences(of: "-", with: "").prefix(16) + "_\(context.run.attempt)")
            let result: DeliveryResult
            if let copy = settings.copy, let client = s3Client {
                let jsonAsBytes = table.columns.filter { Self.isSuper($0, superJSON: settings.superJSON) }.map(\.name)
                let definition = table.columns.map { column in
                    "\(Self.quote(column.name)) "
                        + (jsonAsBytes.contains(column.name)
                            ? "VARBYTE(16777216)" : Self.type(of: column, superJSON: settings.superJSON))
                }
                try await run(connection, "CREATE TEMPORARY TABLE \(stage) (\(definition.joined(separator: ", ")))")
                let staged = try await stageFiles(
                    rows, columns: table.columns, context: context, copy: copy, client: client, uploaded: &uploaded, afterBatch: afterBatch)
                result = staged.result
                if result.records > 0 {
                    try await runCopy(
                        connection,
                        Self.copyStatement(
                            stage: stage, columns: table.columns.map(\.name), bucket: copy.bucket, manifest: staged.manifest, copy: copy))
                }
                try await moveStage(stage, into: table, rule: rule, settings: settings, parse: jsonAsBytes, connection: connection)
            } else {
                try await run(connection, "CREATE TEMPORARY TABLE \(stage) (LIKE \(table.name))")
                result = try await insert(
                    rows, into: stage, columns: table.columns, settings: settings, connection: connection, afterBatch: afterBatch)
                try await moveStage(stage, into: table, rule: rule, settings: settings, parse: [], connection: connection)
            }
            try await run(connection, "DROP TABLE \(stage)")
            var ledgerRow = PostgresBindings()
            ledgerRow.append(context.run.id)
            ledgerRow.append(context.export.id)
            ledgerRow.append(context.dataIntervalStart.iso8601WithOffset)
            ledgerRow.append(context.run.dataIntervalEnd.iso8601WithOffset)
            ledgerRow.append(result.records)
            ledgerRow.append(Timestamp.now().iso8601WithOffset)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "INSERT INTO \(ledger) (run_id, batch_export_id, data_interval_start, data_interval_end, records, delivered_at) VALUES ($1, $2, CAST($3 AS TIMESTAMPTZ), CAST($4 AS TIMESTAMPTZ), $5, CAST($6 AS TIMESTAMPTZ))",
                    binds: ledgerRow), logger: logger)
            try await run(connection, "COMMIT")
            if let s3Client { await Self.remove(uploaded, client: s3Client) }
            return result
        } catch {
            try? await run(connection, "ROLLBACK")
            if let s3Client { await Self.remove(uploaded, client: s3Client) }
            throw error
        }
    }

    struct Table {
        var name: String
        /// The run's columns the table has, in the run's order.
        var columns: [FileColumn]
    }

    /// The final table: created with the model's columns (persons and sessions with their key as
    /// primary key, which Redshift keeps as information), or the run's columns it has.
    func prepareTable(
        _ all: [FileColumn], settings: Settings, rule: (key: [String], versions: [String])?, connection: PostgresConnection
    ) async throws -> Table {
        let names = settings.connection
        let table = "\(Self.quote(names.schema)).\(Self.quote(names.table))"
        var bindings = PostgresBindings()
        bindings.append(names.schema)
        bindings.append(names.table)
        let existing = try await connection.query(
            PostgresQuery(
                unsafeSQL: "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2", binds: bindings
            ),
            logger: logger
        ).collect().map { try $0.decode(String.self) }
        if existing.isEmpty {
            var definition = all.map { "\(Self.quote($0.name)) \(Self.type(of: $0, superJSON: settings.superJSON))" }
            if let key = rule?.key { definition.append("PRIMARY KEY (\(key.map(Self.quote).joined(separator: ", ")))") }
            try await run(connection, "CREATE TABLE IF NOT EXISTS \(table) (\(definition.joined(separator: ", ")))")
            return Table(name: table, columns: all)
        }
        let columns = all.filter { existing.contains($0.name) }
        let needed = rule.map { $0.key + $0.versions } ?? ["uuid"]
        for name in needed where !columns.contains(where: { $0.name == name }) {
            throw DestinationError(
                kind: .undefinedColumn, message: "table \(names.table) has no \(name) column, which delivering rows needs",
                retryable: false)
        }
        return Table(name: table, columns: columns)
    }

    /// INSERT mode: multi-row INSERTs of bound values into the stage table.
    func insert(
        _ rows: WarehouseRows, into stage: String, columns: [FileColumn], settings: Settings, connection: PostgresConnection,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let indices = columns.map { column in rows.columns.firstIndex { $0.name == column.name }! }
        let head = "INSERT INTO \(stage) (\(columns.map { Self.quote($0.name) }.joined(separator: ", "))) VALUES "
        let rowsPerStatement = max(1, Self.parametersPerStatement / max(columns.count, 1))
        var result = DeliveryResult(records: 0, bytes: 0)
        var sql = head
        var bindings = PostgresBindings()
        var pending = 0
        var bytes = 0
        func flush() async throws {
            guard pending > 0 else { return }
            try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            sql = head
            bindings = PostgresBindings()
            pending = 0
            bytes = 0
        }
        while let batch = try await rows.next() {
            for row in 0..<batch.count {
                let values = try batch.row(row)
                if pending > 0 { sql += ", " }
                sql += "("
                for (position, index) in indices.enumerated() {
                    if position > 0 { sql += ", " }
                    let placeholder = "$\(bindings.count + 1)"
                    let column = columns[position]
                    let size = Self.bind(values[index], into: &bindings)
                    bytes += size
                    result.bytes += Int64(size)
                    if Self.isSuper(column, superJSON: settings.superJSON) {
                        sql += "JSON_PARSE(\(placeholder))"
                    } else if column.kind == .timestamp {
                        sql += "CAST(\(placeholder) AS TIMESTAMPTZ)"
                    } else {
                        sql += placeholder
                    }
                }
                sql += ")"
                pending += 1
                result.records += 1
                if pending >= rowsPerStatement || bytes >= Self.bytesPerStatement { try await flush() }
            }
            try await flush()
            try await afterBatch(result)
        }
        try await flush()
        return result
    }

    /// Binds one value; the bytes it adds.
    static func bind(_ value: FileValue, into bindings: inout PostgresBindings) -> Int {
        switch value {
        case .null:
            bindings.appendNull()
            return 0
        case .string(let text), .json(let text):
            bindings.append(text)
            return text.utf8.count
        case .timestamp(let time):
            bindings.append(time.iso8601WithOffset)
            return 32
        case .int(let number):
            bindings.append(number)
            return 8
        case .bool(let flag):
            bindings.append(flag)
            return 1
        case .double(let number):
            if number.isFinite { bindings.append(number) } else { bindings.appendNull() }
            return 8
        }
    }

    /// Moves the stage's rows into the final table: events whose uuid it lacks; persons and
    /// sessions merged on their key, a row replaced only by a newer one. `parse`: stage columns
    /// holding JSON as bytes (COPY mode with SUPER), parsed on the way.
    func moveStage(
        _ stage: String, into table: Table, rule: (key: [String], versions: [String])?, settings: Settings, parse: [String],
        connection: PostgresConnection
    ) async throws {
        let names = table.columns.map(\.name)
        let target = names.map(Self.quote).joined(separator: ", ")
        let source = names.map { name in
            parse.contains(name) ? "JSON_PARSE(s.\(Self.quote(name)))" : "s.\(Self.quote(name))"
        }.joined(separator: ", ")
        guard let rule else {
            try await run(
                connection,
                "INSERT INTO \(table.name) (\(target)) SELECT \(source) FROM \(stage) s WHERE NOT EXISTS (SELECT 1 FROM \(table.name) f WHERE f.uuid = s.uuid)"
            )
            return
        }
        let matches = rule.key.map { "\(stage).\(Self.quote($0)) = \(table.name).\(Self.quote($0))" }.joined(separator: " AND ")
        let newer = rule.versions.map { "\(stage).\(Self.quote($0)) > \(table.name).\(Self.quote($0))" }.joined(separator: " OR ")
        // A staged row that is not newer than the stored one is dropped; the stored rows the rest
        // replace go; then the rest go in.
        try await run(connection, "DELETE FROM \(stage) USING \(table.name) WHERE \(matches) AND NOT (\(newer))")
        try await run(connection, "DELETE FROM \(table.name) USING \(stage) WHERE \(matches)")
        try await run(connection, "INSERT INTO \(table.name) (\(target)) SELECT \(source) FROM \(stage) s")
    }
}
