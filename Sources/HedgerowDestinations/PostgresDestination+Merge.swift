import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowStore
import NIOCore
import PostgresNIO

/// The mutable models (persons, sessions) into PostgreSQL: staged and merged in the run's
/// transaction, on the model's primary key, a row replaced only by a newer version.
extension PostgresDestination {
    enum MergedModel {
        case persons, sessions

        /// The model's file columns without `_inserted_at` (files only, as PostHog's warehouses).
        var fileColumns: [FileColumn] { self == .persons ? ModelProjection.personColumns : ModelProjection.sessionColumns }
        var columns: [FileColumn] { fileColumns.filter { $0.name != "_inserted_at" } }
        var rule: (key: [String], versions: [String]) { WarehouseRows.mergeRule(model: self == .persons ? .persons : .sessions)! }
        var key: [String] { rule.key }
        /// The columns the newer-version test reads.
        var versionColumns: [String] { rule.versions }
        /// A staged row replaces the stored one only when it is newer.
        var newer: String {
            switch self {
            case .persons:
                "EXCLUDED.person_version > final.person_version OR EXCLUDED.person_distinct_id_version > final.person_distinct_id_version"
            case .sessions: "EXCLUDED.end_timestamp > final.end_timestamp"
            }
        }
    }

    /// PostgreSQL column types of the file kinds (PostHog's mapping from Arrow types).
    static func postgresType(_ column: FileColumn) -> String {
        if column.name == "urls" { return "TEXT[]" }
        switch column.kind {
        case .string: return "TEXT"
        case .json: return "JSONB"
        case .timestamp: return "TIMESTAMPTZ"
        case .int64: return "BIGINT"
        case .boolean: return "BOOLEAN"
        case .double: return "DOUBLE PRECISION"
        }
    }

    func merge<Row: Sendable>(
        _ batches: RecordBatches<Row>, model: MergedModel, row: @escaping @Sendable (Row) -> [FileValue], settings: Settings,
        connection: PostgresConnection, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let table = "\(Self.quote(settings.schema)).\(Self.quote(settings.table))"
        var existing = try await connection.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = \(settings.schema) AND table_name = \(settings.table)",
            logger: logger
        ).collect().map { try $0.decode(String.self) }
        if existing.isEmpty {
            let definition = model.columns.map { "\(Self.quote($0.name)) \(Self.postgresType($0))" }.joined(separator: ", ")
            try await run(
                connection,
                "CREATE TABLE IF NOT EXISTS \(table) (\(definition), PRIMARY KEY (\(model.key.map(Self.quote).joined(separator: ", "))))")
            existing = model.columns.map(\.name)
        } else {
            let primaryKey = try await connection.query(
                """
                SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                WHERE i.indrelid = to_regclass(\(table)) AND i.indisprimary
                """, logger: logger
            ).collect().map { try $0.decode(String.self) }
            guard Set(primaryKey) == Set(model.key) else {
                let key = model.key.joined(separator: ", ")
                throw DestinationError(
                    kind: .missingPrimaryKey,
                    message:
                        "table \(settings.table) has no primary key on (\(key)), which merging rows needs; add one with ALTER TABLE ... ADD PRIMARY KEY (\(key))",
                    retryable: false)
            }
        }
        let columns = model.columns.filter { existing.contains($0.name) }
        let names = columns.map(\.name)
        for required in model.key + model.versionColumns where !names.contains(required) {
            throw DestinationError(
                kind: .incompatibleSchema, message: "table \(settings.table) has no \(required) column, which merging rows needs",
                retryable: false)
        }
        let quoted = names.map(Self.quote).joined(separator: ", ")
        // Into an empty table (a first load) the rows go straight in: a run holds each key once, so
        // there is nothing to merge. Otherwise through a stage table.
        let empty = try await connection.query("SELECT 1 FROM \(unescaped: table) LIMIT 1", logger: logger).collect().isEmpty
        if !empty {
            try await run(connection, "CREATE TEMPORARY TABLE hedgerow_stage ON COMMIT DROP AS SELECT \(quoted) FROM \(table) WITH NO DATA")
        }
        let indices = names.map { name in model.fileColumns.firstIndex { $0.name == name }! }
        let kinds = columns.map { Self.postgresType($0) }
        var result = DeliveryResult(records: 0, bytes: 0)
        // COPY names its table unqualified: the destination schema is first on the search path.
        try await connection.copyFrom(table: empty ? settings.table : "hedgerow_stage", columns: names, logger: logger) { writer in
            result = try await Self.copyRows(batches, to: writer, afterBatch: afterBatch) { record, buffer in
                let values = row(record)
                Self.writeCopyRow(indices.map { values[$0] }, types: kinds, into: &buffer)
            }
        }
        if empty { return result }
        let updates = names.filter { !model.key.contains($0) }.map { "\(Self.quote($0)) = EXCLUDED.\(Self.quote($0))" }
        try await run(
            connection,
            """
            INSERT INTO \(table) AS final (\(quoted)) SELECT \(quoted) FROM hedgerow_stage
            ON CONFLICT (\(model.key.map(Self.quote).joined(separator: ", "))) DO UPDATE SET \(updates.joined(separator: ", "))
            WHERE \(model.newer)
            """)
        return result
    }

    /// One COPY text row of file values.
    static func writeCopyRow(_ values: [FileValue], types: [String], into buffer: inout ByteBuffer) {
        for (index, value) in values.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
            switch value {
            case .null: buffer.writeString("\\N")
            case .string(let text): PostgresCopyText.writeEscaped(text, into: &buffer)
            case .json(let text):
                if types[index] == "TEXT[]" {
                    guard let literal = arrayLiteral(text) else {
                        buffer.writeString("\\N")
                        continue
                    }
                    PostgresCopyText.writeEscaped(literal, into: &buffer)
                } else {
                    PostgresCopyText.writeEscaped(text, into: &buffer)
                }
            case .timestamp(let time):
                var text: [UInt8] = []
                time.writeISO8601WithOffset(into: &text)
                buffer.writeBytes(text)
            case .int(let number): buffer.writeString(String(number))
            case .bool(let flag): buffer.writeString(flag ? "t" : "f")
            case .double(let number): buffer.writeString(number.isFinite ? String(number) : "\\N")
            }
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    /// A JSON array of strings as a PostgreSQL array literal (`{"a","b"}`); nil when it is not one.
    static func arrayLiteral(_ json: String) -> String? {
        guard case .array(let items)? = try? JSONParser.parse(Array(json.utf8)) else { return nil }
        var literal = "{"
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else { return nil }
            if index > 0 { literal += "," }
            literal += "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return literal + "}"
    }
}
