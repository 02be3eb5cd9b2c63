import AsyncHTTPClient
import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowS3
import HedgerowStore
import NIOCore

/// Delivers a run to a BigQuery table (PostHog's `bigquery_batch_export`, reference §3.5): the
/// rows go as Parquet (zstd) files of at most 100 MB, each streamed through a resumable upload
/// into a load job, into a stage table of this attempt; one statement then moves them to the
/// final table and the stage table is dropped.
///
/// Exactly once under retries: events are moved with a `MERGE` that inserts only uuids the
/// final table does not hold in the rows' timestamp range (PostHog's `INSERT … SELECT` adds
/// them again when a run is retried after its insert); persons and sessions with PostHog's
/// `MERGE`, de-duplicated by row number and guarded by their version columns. A statement is
/// atomic in BigQuery, so an attempt that dies before it leaves nothing in the final table, and
/// one that dies after it leaves nothing a retry would add twice.
struct BigQueryDestination: Destination {
    static let defaultURL = "https://bigquery.googleapis.com"
    /// PostHog's load file size.
    static let maximumFileBytes = 100 * 1024 * 1024
    /// Bytes sent per resumable-upload request (a multiple of 256 KiB, as BigQuery requires).
    static let uploadChunkBytes = 8 * 1024 * 1024
    static let ingestedColumn = "bq_ingested_timestamp"

    let connector: OutboundConnector
    let baseURL: String
    let allowInsecureHTTP: Bool

    /// `baseURL`: BigQuery's API root (`HEDGEROW_BIGQUERY_URL`; the same host serves uploads).
    init(connector: OutboundConnector, baseURL: String? = nil, allowInsecureHTTP: Bool = false) {
        self.connector = connector
        var url = baseURL ?? Self.defaultURL
        while url.hasSuffix("/") { url.removeLast() }
        self.baseURL = url
        self.allowInsecureHTTP = allowInsecureHTTP
    }

    /// The configuration's table and the service account it signs in with.
    struct Settings {
        var project: String
        var dataset: String
        var table: String
        var useJSONType: Bool
        var account: GoogleServiceAccount

        init(_ config: JSONObject) throws(DestinationError) {
            let settings = try DestinationSettings.BigQuery.read(config)
            project = settings.project
            dataset = settings.dataset
            table = settings.table
            useJSONType = settings.useJSONType
            account = try GoogleServiceAccount(
                clientEmail: settings.clientEmail, privateKeyID: settings.privateKeyID, privateKey: settings.privateKey,
                tokenURI: settings.tokenURI)
        }
    }

    /// The host and whether plain http is allowed, for each URL the run connects to.
    func host(of url: String, field: String, operatorSet: Bool) throws(DestinationError) -> String {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), let host = parts.host, !host.isEmpty,
            scheme == "https" || scheme == "http"
        else {
            throw DestinationError(kind: .invalidConfiguration, message: "'\(field)' is not an http(s) URL", retryable: false)
        }
        if scheme == "http", !operatorSet, !allowInsecureHTTP {
            throw DestinationError(
                kind: .invalidConfiguration,
                message: "'\(field)' is a plain http:// URL; use https:// (or set HEDGEROW_ALLOW_INSECURE_HTTP_DESTINATIONS=1)",
                retryable: false)
        }
        return host
    }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let settings = try Settings(context.export.destinationConfig)
        return try await withClient(settings) { client in
            try await deliver(records, context: context, settings: settings, client: client, afterBatch: afterBatch)
        }
    }

    /// Runs `body` with a client of the configured project: the token endpoint and the API are
    /// reached through the outbound policy, each on a connection pinned to its checked address.
    func withClient<T: Sendable>(_ settings: Settings, _ body: (BigQueryClient) async throws -> T) async throws -> T {
        let tokenHost = try host(of: settings.account.tokenURI, field: "token_uri", operatorSet: false)
        let apiHost = try host(of: baseURL, field: "HEDGEROW_BIGQUERY_URL", operatorSet: true)
        do {
            return try await connector.withHTTPClient(host: tokenHost, readTimeout: .seconds(30)) { tokenHTTP in
                try await connector.withHTTPClient(host: apiHost, readTimeout: .seconds(600)) { http in
                    let account = settings.account
                    let client = BigQueryClient(baseURL: baseURL, project: settings.project, http: http) {
                        try await GoogleTokenCache.shared.token(for: account, client: tokenHTTP)
                    }
                    return try await body(client)
                }
            }
        } catch let refused as OutboundConnector.Refused {
            throw refused.destinationError
        } catch let error as DestinationError {
            if error.kind == .unauthorized { await GoogleTokenCache.shared.forget(settings.account) }
            throw error
        }
    }

    /// One of the destination test's steps (`DestinationTest`): the token, the dataset, the table.
    func check(step: Int, config: JSONObject) async throws -> DestinationTest.Result {
        let settings = try Settings(config)
        if step == 0 {
            // A fresh token, not the cache's: the step checks the key as it is now.
            let tokenHost = try host(of: settings.account.tokenURI, field: "token_uri", operatorSet: false)
            _ = try await connector.withHTTPClient(host: tokenHost, readTimeout: .seconds(30)) {
                try await settings.account.requestToken(client: $0)
            }
            return .passed
        }
        return try await withClient(settings) { client in
            guard try await client.datasetExists(settings.dataset) else {
                return .failed(
                    "Dataset '\(settings.dataset)' does not exist in project '\(settings.project)', or the account may not read it.")
            }
            if step == 1 { return .passed }
            if try await client.tableFields(settings.dataset, settings.table) != nil { return .passed }
            let probe = "hedgerow_probe_\(Int.random(in: 0..<1_000_000))"
            try await client.createTable(settings.dataset, probe, fields: [BigQueryClient.Field(name: "uuid", type: "STRING")])
            try await client.deleteTable(settings.dataset, probe)
            return .passed
        }
    }

    /// The stage table of one attempt of a run: `stage_<table>_<run>_<attempt>` (PostHog names it
    /// by the interval end, team and attempt; the run id is unique and as stable).
    static func stageName(table: String, runID: String, attempt: Int64) -> String {
        "stage_" + table + "_" + runID.replacingOccurrences(of: "-", with: "") + "_\(attempt)"
    }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, settings: Settings, client: BigQueryClient,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let rows = WarehouseRows(records)
        let rule = WarehouseRows.mergeRule(model: records.model)
        var result = DeliveryResult(records: 0, bytes: 0)
        // PostHog's "no data" runs never touch the destination.
        guard var batch = try await rows.next() else { return result }
        guard try await client.datasetExists(settings.dataset) else {
            throw DestinationError(
                kind: .notFound, message: "dataset \(settings.project):\(settings.dataset) was not found", retryable: false)
        }
        let finalFields = try await finalTable(rows.columns, settings: settings, client: client, partitioned: rule == nil)
        // Stage tables of earlier attempts of this run (a worker killed before it dropped them).
        for attempt in 1..<max(context.run.attempt, 1) {
            try? await client.deleteTable(
                settings.dataset, Self.stageName(table: settings.table, runID: context.run.id, attempt: attempt))
        }
        let stage = Self.stageName(table: settings.table, runID: context.run.id, attempt: context.run.attempt)
        let stageFields = rows.columns.map { BigQueryClient.Field(name: $0.name, type: Self.type(of: $0, json: false)) }
        try await client.createTable(settings.dataset, stage, fields: stageFields)
        do {
            var load = StageLoad(client: client, dataset: settings.dataset, table: stage, fields: stageFields, columns: rows.columns)
            var bounds: (Int64, Int64)?
            let timestampIndex = rows.columns.firstIndex { $0.name == "timestamp" }
            while true {
                for index in 0..<batch.count {
                    let row = try batch.row(index)
                    try await load.append(row)
                    if let timestampIndex, case .timestamp(let time) = row[timestampIndex] {
                        let micros = time.microseconds
                        bounds = (min(bounds?.0 ?? micros, micros), max(bounds?.1 ?? micros, micros))
                    }
                }
                result.records += Int64(batch.count)
                try await load.endBatch()
                result.bytes = Int64(load.bytesSent)
                try await afterBatch(result)
                guard let next = try await rows.next() else { break }
                batch = next
            }
            try await load.finish()
            result.bytes = Int64(load.bytesSent)
            let statement = Self.moveStatement(
                columns: rows.columns, finalFields: finalFields, rule: rule, settings: settings, stage: stage, timestampBounds: bounds)
            let moved = try await client.query(statement)
            try await context.log(
                .info, "Loaded \(result.records) rows into the stage table; \(moved) rows were inserted or updated in \(settings.table).")
        } catch {
            try? await client.deleteTable(settings.dataset, stage)
            throw error
        }
        do {
            try await client.deleteTable(settings.dataset, stage)
        } catch {
            try? await context.log(.warning, "The stage table \(stage) could not be dropped: \(error)")
        }
        return result
    }

    /// The final table's fields, created (DAY-partitioned on `timestamp` for events) when missing.
    /// A table whose fields lack the model's merge key fails the run.
    func finalTable(
        _ columns: [FileColumn], settings: Settings, client: BigQueryClient, partitioned: Bool
    ) async throws -> [BigQueryClient.Field] {
        if let existing = try await client.tableFields(settings.dataset, settings.table) {
            let names = Set(existing.map(\.name))
            let wanted = Set(columns.map(\.name))
            guard !names.isDisjoint(with: wanted) else {
                throw DestinationError(
                    kind: .incompatibleSchema, message: "the table \(settings.table) has none of the columns this export writes",
                    retryable: false)
            }
            return existing
        }
        let fields =
            columns.map {
                BigQueryClient.Field(
                    name: $0.name, type: Self.type(of: $0, json: settings.useJSONType),
                    repeated: WarehouseRows.listColumns.contains($0.name))
            } + [BigQueryClient.Field(name: Self.ingestedColumn, type: "TIMESTAMP")]
        try await client.createTable(
            settings.dataset, settings.table, fields: fields,
            partitionedBy: partitioned && columns.contains { $0.name == "timestamp" } ? "timestamp" : nil)
        return try await client.tableFields(settings.dataset, settings.table) ?? fields
    }

    /// BigQuery types of the file kinds (PostHog's mapping; JSON columns are STRING unless
    /// `use_json_type`, and always STRING in stage tables).
    static func type(of column: FileColumn, json: Bool) -> String {
        switch column.kind {
        case .string: "STRING"
        case .json: WarehouseRows.listColumns.contains(column.name) || !json ? "STRING" : "JSON"
        case .timestamp: "TIMESTAMP"
        case .int64: "INT64"
        case .boolean: "BOOL"
        case .double: "FLOAT64"
        }
    }

    static func quote(_ name: String) -> String { "`" + name + "`" }

    /// The statement that moves the stage table's rows into the final table. Only the columns the
    /// final table has are written; JSON and list columns are converted from their stage text.
    static func moveStatement(
        columns: [FileColumn], finalFields: [BigQueryClient.Field], rule: (key: [String], versions: [String])?, settings: Settings,
        stage: String, timestampBounds: (Int64, Int64)?
    ) -> String {
        let byName = Dictionary(finalFields.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let written = columns.filter { byName[$0.name] != nil }
        func value(_ column: FileColumn) -> String {
            let source = "stage." + quote(column.name)
            guard let field = byName[column.name] else { return source }
            if field.repeated { return "ARRAY(SELECT JSON_VALUE(item) FROM UNNEST(JSON_QUERY_ARRAY(\(source))) AS item)" }
            if field.type == "JSON" { return "PARSE_JSON(\(source), wide_number_mode => 'round')" }
            return source
        }
        let ingested = byName[ingestedColumn] != nil
        let names = written.map { quote($0.name) } + (ingested ? [quote(ingestedColumn)] : [])
        let values = written.map(value) + (ingested ? ["CURRENT_TIMESTAMP()"] : [])
        let final = quote("\(settings.project).\(settings.dataset).\(settings.table)")
        let stageTable = quote("\(settings.project).\(settings.dataset).\(stage)")
        let insert = "WHEN NOT MATCHED BY TARGET THEN INSERT (\(names.joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))"
        guard let rule else {
            // Events: insert the uuids the final table does not hold; the timestamp range keeps the
            // look-up inside the partitions the rows fall in.
            var on = "final.`uuid` = stage.`uuid`"
            if let (low, high) = timestampBounds, byName["timestamp"] != nil {
                on +=
                    " AND final.`timestamp` BETWEEN TIMESTAMP '\(Timestamp(microseconds: low).iso8601WithOffset)'"
                    + " AND TIMESTAMP '\(Timestamp(microseconds: high).iso8601WithOffset)'"
            }
            return """
                MERGE \(final) AS final
                USING (SELECT * FROM \(stageTable) QUALIFY ROW_NUMBER() OVER (PARTITION BY `uuid`) = 1) AS stage
                ON \(on)
                \(insert)
                """
        }
        let on = rule.key.map { "final.\(quote($0)) = stage.\(quote($0))" }.joined(separator: " AND ")
        let newer = rule.versions.map { "final.\(quote($0)) < stage.\(quote($0))" }.joined(separator: " OR ")
        let order = rule.versions.map { quote($0) + " DESC" }.joined(separator: ", ")
        let updates =
            written.filter { !rule.key.contains($0.name) }.map { "\(quote($0.name)) = \(value($0))" }
            + (ingested ? ["\(quote(ingestedColumn)) = CURRENT_TIMESTAMP()"] : [])
        return """
            MERGE \(final) AS final
            USING (
              SELECT * FROM \(stageTable)
              QUALIFY ROW_NUMBER() OVER (PARTITION BY \(rule.key.map(quote).joined(separator: ", ")) ORDER BY \(order)) = 1
            ) AS stage
            ON \(on)
            WHEN MATCHED AND (\(newer)) THEN UPDATE SET \(updates.joined(separator: ", "))
            \(insert)
            """
    }
}

/// The stage table's files on their way up: rows are encoded as Parquet (zstd) and sent through
/// a resumable upload as they come, a chunk at a time, each chunk gathered in a temporary file
/// (`PartSpool`) and read back as it is sent; a file that reaches 100 MB is finished and its load
/// job awaited before the next begins, so memory stays at a row group whatever the chunk size.
struct StageLoad {
    let client: BigQueryClient
    let dataset: String
    let table: String
    let fields: [BigQueryClient.Field]
    let columns: [FileColumn]
    /// Bytes a request sends (a multiple of 256 KiB, as BigQuery requires).
    let chunkBytes: Int
    private var encoder: (any FileEncoder)?
    private var session: String?
    /// The chunk being gathered; a full one waits for the next byte, since the request that ends
    /// the file must carry data.
    private var spool: PartSpool?
    /// Bytes of the current file already sent.
    private var sent = 0
    private(set) var bytesSent = 0

    init(
        client: BigQueryClient, dataset: String, table: String, fields: [BigQueryClient.Field], columns: [FileColumn],
        chunkBytes: Int = BigQueryDestination.uploadChunkBytes
    ) {
        precondition(chunkBytes > 0 && chunkBytes % (256 * 1024) == 0, "a resumable upload's chunk is a multiple of 256 KiB")
        self.client = client
        self.dataset = dataset
        self.table = table
        self.fields = fields
        self.columns = columns
        self.chunkBytes = chunkBytes
    }

    mutating func append(_ row: [FileValue]) async throws {
        let current: any FileEncoder
        if let encoder {
            current = encoder
        } else {
            switch FileFormat.parquet.encoder(columns: columns, compression: .zstd) {
            case .success(let made): current = made
            case .failure(let error): throw DestinationError(kind: .encodingError, message: error.description, retryable: false)
            }
            encoder = current
        }
        current.append(row)
        if current.approximateSize >= BigQueryDestination.maximumFileBytes { try await finishFile() }
    }

    /// A batch ended: its row group is closed and every full chunk sent.
    mutating func endBatch() async throws {
        guard let encoder else { return }
        encoder.endBatch()
        try await gather(encoder.takeOutput())
    }

    /// Adds the file's next bytes to the chunk being gathered, sending a full chunk first.
    private mutating func gather(_ bytes: [UInt8]) async throws {
        let chunk = chunkBytes
        var rest = bytes[...]
        while !rest.isEmpty {
            var current = try spool ?? PartSpool()
            if current.count == chunk {
                _ = try await client.upload(.spooled(current.seal()), to: try await openSession(), offset: sent, total: nil)
                sent += chunk
                current = try PartSpool()
            }
            let room = chunk - current.count
            try current.append(rest.prefix(room))
            rest = rest.dropFirst(room)
            spool = current
        }
    }

    /// The current file's resumable upload, begun on its first request.
    private mutating func openSession() async throws -> String {
        if let session { return session }
        let started = try await client.startLoad(dataset: dataset, table: table, fields: fields)
        session = started
        return started
    }

    /// Ends the current file: its last bytes go up, and its load job is awaited.
    mutating func finishFile() async throws {
        guard let encoder else { return }
        encoder.finish()
        try await gather(encoder.takeOutput())
        self.encoder = nil
        let last = spool?.seal()
        spool = nil
        let total = sent + (last?.count ?? 0)
        let body = last.map(RequestBody.spooled) ?? .bytes([])
        guard let job = try await client.upload(body, to: try await openSession(), offset: sent, total: total) else {
            throw DestinationError(kind: .bigQueryError, message: "the upload was not complete after its last byte", retryable: true)
        }
        try await client.waitForJob(job)
        bytesSent += total
        sent = 0
        self.session = nil
    }

    mutating func finish() async throws { try await finishFile() }
}
