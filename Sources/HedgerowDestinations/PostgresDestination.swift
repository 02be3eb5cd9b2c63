import Foundation
import HedgerowCore
import HedgerowStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// Delivers a run to a PostgreSQL table (docs/engine.md §3, §7) in **one transaction**: the rows are
/// streamed with `COPY` into a staging table, inserted into the target skipping uuids it already
/// holds, and a row for the run is written to `hedgerow_export_ledger`. A retry of a run whose
/// ledger row exists completes without writing, so a run is delivered exactly once.
package struct PostgresDestination: Destination {
    let logger: Logger
    let connector: OutboundConnector

    package init(logger: Logger, connector: OutboundConnector) {
        self.logger = logger
        self.connector = connector
    }

    /// The columns of docs/engine.md §3 and their types.
    static let columns: [(name: String, type: String)] = [
        ("uuid", "VARCHAR(200)"), ("event", "VARCHAR(200)"), ("properties", "JSONB"), ("elements", "JSONB"), ("set", "JSONB"),
        ("set_once", "JSONB"), ("distinct_id", "VARCHAR(200)"), ("team_id", "INTEGER"), ("ip", "VARCHAR(200)"),
        ("site_url", "VARCHAR(200)"), ("timestamp", "TIMESTAMPTZ"),
    ]

    /// The configuration's connection, schema and table.
    typealias Settings = DestinationSettings.Postgres

    /// A PostgreSQL identifier, quoted (names come from the export's configuration).
    static func quote(_ identifier: String) -> String { "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    package func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let settings = try Settings.read(context.export.destinationConfig)
        let connection = try await connect(settings)
        do {
            let result = try await connection.untilClosed(throwing: Self.connectionClosed) {
                try await deliver(records, context: context, settings: settings, connection: connection, afterBatch: afterBatch)
            }
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            if error is DestinationError || error is CancellationError { throw error }
            throw Self.classify(error)
        }
    }

    /// Connects to the checked address of `host` over TLS, always: the certificate is verified
    /// against `host` (verify-full) unless the export says `has_self_signed_cert`; a server without
    /// TLS is refused, never used in plaintext.
    func connect(_ settings: Settings) async throws -> PostgresConnection {
        let address = try await connector.address(for: settings.host)
        var tls = TLSConfiguration.makeClientConfiguration()
        if settings.selfSignedCertificate { tls.certificateVerification = .none }
        var configuration = PostgresConnection.Configuration(
            host: address.description, port: settings.port, username: settings.user, password: settings.password,
            database: settings.database, tls: .require(try NIOSSLContext(configuration: tls)))
        if IPAddress(settings.host) == nil { configuration.options.tlsServerName = settings.host }
        do {
            return try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: Int.random(in: 1...Int.max),
                logger: logger)
        } catch {
            throw Self.classify(error)
        }
    }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, settings: Settings, connection: PostgresConnection,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let schema = Self.quote(settings.schema)
        let ledger = "\(schema).hedgerow_export_ledger"
        try await run(connection, "BEGIN")
        do {
            // Runs into one schema take turns: its ledger and tables are created once, and each run's
            // transaction sees the uuids the previous one stored.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(settings.schema)))", logger: logger)
            // COPY names its table unqualified: the destination schema is searched first (the
            // temporary staging table, in pg_temp, still comes before it).
            try await run(connection, "SET LOCAL search_path TO \(schema)")
            let schemaExists = try await connection.query(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = \(settings.schema)", logger: logger
            ).collect()
            guard !schemaExists.isEmpty else {
                throw DestinationError(kind: .schemaNotFound, message: "schema \(settings.schema) does not exist", retryable: false)
            }
            try await run(
                connection,
                "CREATE TABLE IF NOT EXISTS \(ledger) (run_id TEXT PRIMARY KEY, batch_export_id TEXT NOT NULL, data_interval_start TIMESTAMPTZ, data_interval_end TIMESTAMPTZ NOT NULL, records BIGINT NOT NULL, delivered_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            let runID = context.run.id
            let delivered = try await connection.query("SELECT records FROM \(unescaped: ledger) WHERE run_id = \(runID)", logger: logger)
                .collect()
            if let row = delivered.first {
                try await run(connection, "COMMIT")
                return DeliveryResult(records: try row.decode(Int64.self), bytes: 0)
            }
            let result: DeliveryResult
            switch records {
            case .events(let batches):
                result = try await deliverEvents(batches, settings: settings, connection: connection, afterBatch: afterBatch)
            case .persons(let batches):
                result = try await merge(
                    batches, model: .persons, row: ModelProjection.personRow, settings: settings, connection: connection,
                    afterBatch: afterBatch)
            case .sessions(let batches):
                result = try await merge(
                    batches, model: .sessions, row: ModelProjection.sessionRow, settings: settings, connection: connection,
                    afterBatch: afterBatch)
            }
            let start = context.run.dataIntervalStart.map { Date(timeIntervalSince1970: Double($0.microseconds) / 1e6) }
            let end = Date(timeIntervalSince1970: Double(context.run.dataIntervalEnd.microseconds) / 1e6)
            try await connection.query(
                "INSERT INTO \(unescaped: ledger) (run_id, batch_export_id, data_interval_start, data_interval_end, records) VALUES (\(runID), \(context.export.id), \(start), \(end), \(result.records))",
                logger: logger)
            try await run(connection, "COMMIT")
            return result
        } catch {
            try? await run(connection, "ROLLBACK")
            throw error
        }
    }

    /// The events model: COPY into the table (or through a staging table that skips uuids the table
    /// holds), inside the run's transaction.
    func deliverEvents(
        _ batches: EventBatches, settings: Settings, connection: PostgresConnection,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let schema = Self.quote(settings.schema)
        let table = "\(schema).\(Self.quote(settings.table))"
        // Each column with its type (a domain's base type), which says how binary COPY writes it.
        func columnTypes() async throws -> [String: String] {
            var types: [String: String] = [:]
            for row in try await connection.query(
                "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = \(settings.schema) AND table_name = \(settings.table)",
                logger: logger
            ).collect() {
                let (name, type) = try row.decode((String, String).self)
                types[name] = type
            }
            return types
        }
        var types = try await columnTypes()
        let created = types.isEmpty
        if created {
            let definition = Self.columns.map { "\(Self.quote($0.name)) \($0.type)" }.joined(separator: ", ")
            try await run(connection, "CREATE TABLE IF NOT EXISTS \(table) (\(definition))")
            try await run(connection, "CREATE UNIQUE INDEX IF NOT EXISTS \(Self.quote(settings.table + "_uuid")) ON \(table) (uuid)")
            types = try await columnTypes()
        }
        let names = Self.columns.map(\.name).filter { types[$0] != nil }
        let binary = Self.binaryColumns(names.map { CopyCell(rawValue: $0) }, types: names.map { types[$0] ?? "" })
        let missing = Self.columns.map(\.name).filter { types[$0] == nil }
        guard names.contains("uuid") else {
            throw DestinationError(kind: .incompatibleSchema, message: "table \(settings.table) has no uuid column", retryable: false)
        }
        let quoted = names.map(Self.quote).joined(separator: ", ")
        var result = DeliveryResult(records: 0, bytes: 0)
        // Fast path: with a unique index on uuid, COPY straight into the table under a savepoint.
        // A uuid the table already holds (an overlapping backfill) makes it fail; then the run is
        // read again and goes through a staging table that skips those uuids.
        let uniqueIndex = try await !connection.query(
            """
            SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = to_regclass(\(table)) AND i.indisunique AND i.indnatts = 1 AND a.attname = 'uuid'
            """, logger: logger
        ).collect().isEmpty
        var copiedDirectly = false
        if uniqueIndex {
            try await run(connection, "SAVEPOINT hedgerow_direct")
            do {
                result = try await copy(
                    batches, into: settings.table, columns: names, binary: binary, connection: connection, afterBatch: afterBatch)
                try await run(connection, "RELEASE SAVEPOINT hedgerow_direct")
                copiedDirectly = true
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                try await run(connection, "ROLLBACK TO SAVEPOINT hedgerow_direct")
            }
        }
        if !copiedDirectly {
            try await run(
                connection, "CREATE TEMPORARY TABLE hedgerow_stage ON COMMIT DROP AS SELECT \(quoted) FROM \(table) WITH NO DATA")
            result = try await copy(
                batches, into: "hedgerow_stage", columns: names, binary: binary, connection: connection, afterBatch: afterBatch)
            // Skip uuids the table holds already: exactly once across overlapping runs.
            try await run(
                connection,
                "INSERT INTO \(table) (\(quoted)) SELECT \(names.map { "s." + Self.quote($0) }.joined(separator: ", ")) FROM hedgerow_stage s WHERE NOT EXISTS (SELECT 1 FROM \(table) t WHERE t.uuid = s.uuid)"
            )
        }
        if !missing.isEmpty, !created {
            logger.warning("Destination table lacks columns; they were not written", metadata: ["columns": "\(missing)"])
        }
        return result
    }

    /// Streams the run's events into `table` with `COPY ... FROM STDIN`: in the binary format when
    /// `binary` gives every column's binary type, in the text format otherwise.
    func copy(
        _ batches: EventBatches, into table: String, columns: [String], binary: [PostgresCopyBinary.ColumnType?]?,
        connection: PostgresConnection, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        var result = DeliveryResult(records: 0, bytes: 0)
        let cells = columns.map { CopyCell(rawValue: $0) }
        guard let binary else {
            // copyFrom quotes the column names itself (they come from our fixed list).
            try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
                var scratch: [UInt8] = []
                result = try await Self.copyRows(batches, to: writer, afterBatch: afterBatch) { event, buffer in
                    try Self.writeCopyRow(event, cells: cells, scratch: &scratch, into: &buffer)
                }
            }
            return result
        }
        try await connection.copyFrom(table: Self.binaryCopyTarget(table, columns: columns), columns: [], logger: logger) { writer in
            var edge = ByteBuffer()
            PostgresCopyBinary.writeHeader(into: &edge)
            try await writer.write(edge)
            result = try await Self.copyRows(batches, to: writer, afterBatch: afterBatch) { event, buffer in
                try Self.writeCopyBinaryRow(event, cells: cells, types: binary, into: &buffer)
            }
            edge.clear()
            PostgresCopyBinary.writeTrailer(into: &edge)
            try await writer.write(edge)
        }
        return result
    }

    /// The `table` argument that makes PostgresNIO's `copyFrom` (1.x, text format only) run
    /// `COPY "table" ("c", ...) FROM STDIN WITH (FORMAT binary)`: copyFrom writes `COPY "<table>"`
    /// followed, on the same line, by its own column list and `FORMAT text` options, which the
    /// trailing `--` turns into a comment. The table name stays inside its quotes (Settings refuses
    /// a name with a quote), and the tests load rows this way, so a copyFrom that built its
    /// statement differently would fail them, not load text as binary.
    static func binaryCopyTarget(_ table: String, columns: [String]) -> String {
        "\(table)\" (\(columns.map(quote).joined(separator: ", "))) FROM STDIN WITH (FORMAT binary) --"
    }

    /// Writes the rows of `batches` (each with `row`) into a COPY in pieces of about
    /// `copyChunkBytes`, cut between rows: each write waits until the connection takes more, so a
    /// batch's COPY text is never held whole (nor again in TLS's output). `afterBatch` hears the
    /// running totals after each batch.
    static func copyRows<Batches: AsyncSequence>(
        _ batches: Batches, to writer: PostgresCopyFromWriter, afterBatch: @Sendable (DeliveryResult) async throws -> Void,
        row: (Batches.Element.Element, inout ByteBuffer) throws -> Void
    ) async throws -> DeliveryResult where Batches.Element: Collection {
        var result = DeliveryResult(records: 0, bytes: 0)
        var buffer = ByteBuffer()
        func send() async throws {
            result.bytes += Int64(buffer.readableBytes)
            try await writer.write(buffer)
            buffer = ByteBuffer()
            buffer.reserveCapacity(copyChunkBytes + 4096)
        }
        for try await batch in batches {
            for record in batch {
                try row(record, &buffer)
                if buffer.readableBytes >= copyChunkBytes { try await send() }
            }
            if buffer.readableBytes > 0 { try await send() }
            result.records += Int64(batch.count)
            try await afterBatch(result)
        }
        return result
    }

    /// The size of the pieces a run's COPY text is sent in.
    package static let copyChunkBytes = 256 * 1024

    /// The error a delivery ends with when the destination closes the connection under it.
    static let connectionClosed: @Sendable () -> any Error = {
        DestinationError(kind: .connectionError, message: "the destination closed the connection", retryable: true)
    }

    func run(_ connection: PostgresConnection, _ sql: String) async throws {
        try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    }

    /// The cells of an events row, by destination column name (nil: a column Hedgerow leaves NULL).
    enum CopyCell: String {
        case uuid, event, properties, elements, set, distinctID = "distinct_id", teamID = "team_id", ip, timestamp
        case setOnce = "set_once"

        /// The cell's text, for every cell but `teamID` and `timestamp` (nil for those), which each
        /// format writes its own way; nil is NULL.
        func text(_ event: Event, _ members: EventProjection.PropertyMembers) -> String? {
            switch self {
            case .uuid: event.uuid
            case .event: event.event
            case .properties: event.properties
            case .elements: event.elementsChain.map { JSONWriter.string(.string($0)) }
            case .set: members.set
            case .setOnce: members.setOnce
            case .distinctID: event.distinctID
            case .ip: members.ip
            case .teamID, .timestamp: nil
            }
        }
    }

    /// One row of `COPY ... FROM STDIN` (text format): tab-separated, `\N` for NULL. `scratch` is
    /// reused from row to row for the timestamp's text.
    static func writeCopyRow(
        _ event: Event, cells: [CopyCell?], scratch: inout [UInt8], into buffer: inout ByteBuffer
    ) throws(DestinationError) {
        let members = try EventProjection.PropertyMembers(event)
        for (index, cell) in cells.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
            switch cell {
            case .teamID: PostgresCopyText.writeCell(event.teamID, into: &buffer)
            case .timestamp:
                scratch.removeAll(keepingCapacity: true)
                event.timestamp.writeISO8601WithOffset(into: &scratch)
                buffer.writeBytes(scratch)
            case let cell?: PostgresCopyText.writeCell(cell.text(event, members), into: &buffer)
            case nil: PostgresCopyText.writeCell(nil as String?, into: &buffer)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    /// The binary COPY type of each column (nil for a column Hedgerow leaves NULL), or nil when a
    /// column's type is not one a cell of its kind can be written as in binary: the run then goes in
    /// the text format, whose input functions convert text to any type as before.
    static func binaryColumns(_ cells: [CopyCell?], types: [String]) -> [PostgresCopyBinary.ColumnType?]? {
        var columns: [PostgresCopyBinary.ColumnType?] = []
        for (cell, name) in zip(cells, types) {
            guard let cell else {
                columns.append(nil)
                continue
            }
            guard let type = PostgresCopyBinary.ColumnType(rawValue: name) else { return nil }
            let fits: Bool
            switch cell {
            case .uuid, .event, .distinctID, .ip: fits = type.takesText && type != .json && type != .jsonb
            case .properties, .elements, .set, .setOnce: fits = type.takesText
            case .teamID: fits = type == .int2 || type == .int4 || type == .int8
            case .timestamp: fits = type == .timestamp || type == .timestamptz
            }
            guard fits else { return nil }
            columns.append(type)
        }
        return columns
    }

    /// One row of binary COPY, each cell in its column's binary type (`binaryColumns`). A team id
    /// or timestamp that its column cannot hold fails the run as the server's own check would.
    static func writeCopyBinaryRow(
        _ event: Event, cells: [CopyCell?], types: [PostgresCopyBinary.ColumnType?], into buffer: inout ByteBuffer
    ) throws(DestinationError) {
        let members = try EventProjection.PropertyMembers(event)
        PostgresCopyBinary.writeFieldCount(cells.count, into: &buffer)
        for (cell, type) in zip(cells, types) {
            guard let cell, let type else {
                PostgresCopyBinary.writeNull(into: &buffer)
                continue
            }
            switch cell {
            case .teamID:
                guard PostgresCopyBinary.writeInteger(event.teamID, as: type, into: &buffer) else {
                    throw DestinationError(
                        kind: .incompatibleSchema,
                        message: "team_id \(event.teamID) is out of range for the column's type \(type.rawValue)",
                        retryable: false)
                }
            case .timestamp:
                guard PostgresCopyBinary.writeTimestamp(microseconds: event.timestamp.microseconds, into: &buffer) else {
                    throw DestinationError(
                        kind: .incompatibleSchema, message: "timestamp \(event.timestamp.microseconds) µs is out of range",
                        retryable: false)
                }
            default: PostgresCopyBinary.writeText(cell.text(event, members), as: type, into: &buffer)
            }
        }
    }

    /// docs/engine.md §5: bad credentials, missing database or schema, permissions and incompatible tables
    /// fail at once; connection problems, deadlocks and serialization failures are retried.
    static func classify(_ error: any Error) -> DestinationError {
        // A certificate the client does not trust is not going to change on its own.
        let text = String(reflecting: error)
        if text.localizedCaseInsensitiveContains("CERTIFICATE_VERIFY_FAILED")
            || text.localizedCaseInsensitiveContains("certificate verify failed")
        {
            return DestinationError(
                kind: .tlsCertificateError,
                message: "the server's TLS certificate is not trusted (set has_self_signed_cert for a self-signed one)", retryable: false)
        }
        if let error = error as? PSQLError, error.code == .sslUnsupported {
            return DestinationError(
                kind: .tlsUnavailable, message: "the server does not offer TLS; PostgreSQL destinations connect over TLS only",
                retryable: false)
        }
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? String(describing: error.code)
            switch state {
            case "28P01", "28000": return DestinationError(kind: .invalidCredentials, message: message, retryable: false)
            case "3D000": return DestinationError(kind: .databaseNotFound, message: message, retryable: false)
            case "3F000": return DestinationError(kind: .schemaNotFound, message: message, retryable: false)
            case "42501": return DestinationError(kind: .permissionDenied, message: message, retryable: false)
            case "40001", "40P01": return DestinationError(kind: .transactionConflict, message: message, retryable: true)
            case _ where state.hasPrefix("42") || state.hasPrefix("22") || state.hasPrefix("23"):
                return DestinationError(kind: .incompatibleSchema, message: message, retryable: false)
            case "": return DestinationError(kind: .connectionError, message: message, retryable: true)
            default: return DestinationError(kind: .postgresError, message: "\(state): \(message)", retryable: true)
            }
        }
        return DestinationError(kind: .connectionError, message: String(describing: error), retryable: true)
    }
}
