import AsyncHTTPClient
import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowStore
import NIOCore

/// Delivers a run to a Databricks Delta table (reference §3.7), exactly once:
/// 1. `CREATE VOLUME IF NOT EXISTS` a stage volume and `CREATE TABLE IF NOT EXISTS` the final table
///    (`USING DELTA`, PostHog's columns, VARIANT JSON columns unless `use_variant_type` is false);
/// 2. the run's rows as Parquet (zstd, at most 100 MB a file), written to a local 0600 file and
///    streamed into the volume through the Files API;
/// 3. `COPY INTO` a stage table from the volume (`PARSE_JSON` for VARIANT columns);
/// 4. one `MERGE` into the final table: events insert only uuids it lacks; persons and sessions
///    replace a row only with a newer version (`WITH SCHEMA EVOLUTION` when
///    `use_automatic_schema_evolution`, so new columns reach an existing table);
/// 5. the stage table and volume are dropped (an attempt also drops what earlier ones left).
/// A retried attempt merges the same rows again, which changes nothing.
package struct DatabricksDestination: Destination {
    let connector: OutboundConnector
    /// `HEDGEROW_DATABRICKS_URL`: the workspace's address instead of `https://<server_hostname>`.
    let baseURL: String?
    /// PostHog's largest stage file.
    static let bytesPerFile = 100 * 1024 * 1024

    package init(connector: OutboundConnector, baseURL: String? = nil) {
        self.connector = connector
        self.baseURL = baseURL
    }

    /// The configuration's workspace, service principal, warehouse and table.
    typealias Settings = DestinationSettings.Databricks

    /// A Databricks identifier, in backticks.
    static func quote(_ name: String) -> String { "`" + name.replacingOccurrences(of: "`", with: "``") + "`" }

    /// Databricks' type for a warehouse column.
    static func type(of column: FileColumn, variant: Bool) -> String {
        if WarehouseRows.listColumns.contains(column.name) { return "ARRAY<STRING>" }
        switch column.kind {
        case .json: return variant ? "VARIANT" : "STRING"
        case .string: return "STRING"
        case .timestamp: return "TIMESTAMP"
        case .int64: return "BIGINT"
        case .boolean: return "BOOLEAN"
        case .double: return "DOUBLE"
        }
    }

    /// The attempt's stage volume and table (`hedgerow_stage_<run>_<attempt>`).
    static func stageName(runID: String, attempt: Int64) -> String {
        "hedgerow_stage_" + runID.replacingOccurrences(of: "-", with: "").suffix(16).lowercased() + "_\(attempt)"
    }

    func client(_ settings: Settings, http: HTTPClient) -> DatabricksClient {
        DatabricksClient(
            baseURL: baseURL ?? "https://" + settings.host, clientID: settings.clientID, clientSecret: settings.clientSecret,
            warehouseID: settings.warehouseID, http: http)
    }

    func connectionHost(_ settings: Settings) -> String {
        baseURL.flatMap { URLComponents(string: $0)?.host } ?? settings.host
    }

    package func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let settings = try Settings.read(context.export.destinationConfig)
        return try await connector.withHTTPClient(host: connectionHost(settings), readTimeout: .seconds(600)) { http in
            let client = client(settings, http: http)
            let token = try await DatabricksTokenCache.shared.token(for: client)
            do {
                return try await deliver(
                    records, context: context, settings: settings, client: client, token: token, afterBatch: afterBatch)
            } catch let error as DestinationError where error.kind == .databricksTokenRejected {
                await DatabricksTokenCache.shared.forget(client)
                throw error
            }
        }
    }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, settings: Settings, client: DatabricksClient, token: String,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        func sql(_ text: String, _ parameters: [DatabricksClient.Parameter] = []) async throws {
            try await client.statement(text, token: token, catalog: settings.catalog, schema: settings.schema, parameters: parameters)
        }
        /// Drops an attempt's stage table and volume (its files go with the volume).
        func drop(_ name: String) async throws {
            try await sql("DROP TABLE IF EXISTS \(Self.quote(name))")
            try await sql("DROP VOLUME IF EXISTS \(Self.quote(name))")
        }
        let rows = WarehouseRows(records)
        let columns = rows.columns
        let final = Self.quote(settings.table)
        let stage = Self.stageName(runID: context.run.id, attempt: context.run.attempt)
        // What earlier attempts of the run left behind.
        if context.run.attempt > 1 {
            for attempt in 1..<context.run.attempt {
                try await drop(Self.stageName(runID: context.run.id, attempt: attempt))
            }
        }
        let definition = columns.map { "\(Self.quote($0.name)) \(Self.type(of: $0, variant: settings.variant))" }.joined(separator: ", ")
        try await sql("CREATE TABLE IF NOT EXISTS \(final) (\(definition)) USING DELTA COMMENT 'PostHog generated table'")
        try await sql("CREATE VOLUME IF NOT EXISTS \(Self.quote(stage)) COMMENT 'Hedgerow stage of one run attempt'")
        let volume = "/Volumes/\(settings.catalog)/\(settings.schema)/\(stage)"
        var result = DeliveryResult(records: 0, bytes: 0)
        do {
            var files = StageFiles(
                columns: columns, stage: stage, directory: FileManager.default.temporaryDirectory.path, connector: connector)
            defer { files.removeLocal() }
            var written = 0
            func upload() async throws {
                guard let local = try files.finishLocal() else { return }
                defer { try? FileManager.default.removeItem(atPath: local.path) }
                try await client.upload(localPath: local.path, size: local.size, to: "\(volume)/\(written).parquet", token: token)
                written += 1
                result.bytes += Int64(local.size)
            }
            while let batch = try await rows.next() {
                for index in 0..<batch.count {
                    try files.append(try batch.row(index))
                    result.records += 1
                    if files.currentSize >= Self.bytesPerFile { try await upload() }
                }
                files.endBatch()
                try await afterBatch(result)
            }
            try await upload()
            if result.records > 0 {
                try await sql("CREATE TABLE \(Self.quote(stage)) (\(definition)) USING DELTA")
                try await sql(Self.copyStatement(stage: stage, volume: volume, columns: columns, variant: settings.variant))
                try await sql(
                    Self.mergeStatement(
                        final: final, stage: Self.quote(stage), columns: columns.map(\.name),
                        rule: WarehouseRows.mergeRule(model: records.model), schemaEvolution: settings.schemaEvolution))
            }
        } catch {
            try? await drop(stage)
            throw error
        }
        try await drop(stage)
        return result
    }

    /// `COPY INTO` the stage from the volume's Parquet files: JSON text parsed into VARIANT, JSON
    /// arrays into `ARRAY<STRING>`.
    static func copyStatement(stage: String, volume: String, columns: [FileColumn], variant: Bool) -> String {
        let select = columns.map { column -> String in
            let name = quote(column.name)
            if WarehouseRows.listColumns.contains(column.name) { return "from_json(\(name), 'ARRAY<STRING>') AS \(name)" }
            if column.kind == .json, variant { return "PARSE_JSON(\(name)) AS \(name)" }
            return name
        }
        return "COPY INTO \(quote(stage)) FROM (SELECT \(select.joined(separator: ", ")) FROM '\(volume)/') FILEFORMAT = PARQUET"
    }

    /// The merge of the stage into the final table.
    static func mergeStatement(
        final: String, stage: String, columns: [String], rule: (key: [String], versions: [String])?, schemaEvolution: Bool
    ) -> String {
        let head = "MERGE \(schemaEvolution ? "WITH SCHEMA EVOLUTION " : "")INTO \(final) AS target USING \(stage) AS source"
        let list = columns.map(quote).joined(separator: ", ")
        let insert =
            schemaEvolution
            ? "INSERT *" : "INSERT (\(list)) VALUES (\(columns.map { "source." + quote($0) }.joined(separator: ", ")))"
        guard let rule else {
            return "\(head) ON target.`uuid` = source.`uuid` WHEN NOT MATCHED THEN \(insert)"
        }
        let on = rule.key.map { "target.\(quote($0)) = source.\(quote($0))" }.joined(separator: " AND ")
        let newer = rule.versions.map { "target.\(quote($0)) < source.\(quote($0))" }.joined(separator: " OR ")
        let update =
            schemaEvolution
            ? "UPDATE SET *" : "UPDATE SET " + columns.map { "\(quote($0)) = source.\(quote($0))" }.joined(separator: ", ")
        return "\(head) ON \(on) WHEN MATCHED AND (\(newer)) THEN \(update) WHEN NOT MATCHED THEN \(insert)"
    }
}

extension DatabricksDestination {
    /// The destination test's steps: 0 gets a token for the service principal, 1 runs a statement
    /// on the warehouse in the catalog and schema.
    func check(step: Int, config: JSONObject) async throws -> DestinationTest.Result {
        let settings = try Settings.read(config)
        return try await connector.withHTTPClient(host: connectionHost(settings)) { http in
            let client = client(settings, http: http)
            do {
                let token = try await client.requestToken().value
                if step == 1 {
                    try await client.statement("SELECT 1", token: token, catalog: settings.catalog, schema: settings.schema)
                }
                return .passed
            } catch let error as DestinationError {
                return .failed("\(error.kind): \(error.message)")
            }
        }
    }
}
