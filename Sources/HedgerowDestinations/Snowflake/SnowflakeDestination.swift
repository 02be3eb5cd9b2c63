import AsyncHTTPClient
import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowS3
import HedgerowStore
import HedgerowTransport
import NIOCore
import NIOHTTP1

/// Delivers a run to a Snowflake table (PostHog's `snowflake_batch_export`, reference §3.6): the
/// rows are written as Parquet (zstd) files of at most 100 MB, `PUT` into the internal stage of a
/// temporary stage table of this attempt (the upload goes where the PUT's `stageInfo` says: a
/// presigned URL, or S3 with temporary credentials), `COPY INTO` the stage table with
/// `PURGE = TRUE` (every file must be `LOADED`), then one `MERGE` moves them into the final table.
///
/// Exactly once, as BigQuery: events are inserted only for uuids the table does not hold in the
/// rows' timestamp range (a retried or overlapping run adds nothing), persons and sessions replace a
/// row only with a newer version; the statement is atomic, and the temporary stage table ends with
/// the session, so a killed attempt leaves nothing behind.
struct SnowflakeDestination: Destination {
    static let maximumFileBytes = 100 * 1024 * 1024
    static let ingestedColumn = "snowflake_ingested_timestamp"

    let connector: OutboundConnector
    /// `HEDGEROW_SNOWFLAKE_URL`: where every account's API is (tests, private deployments).
    let baseURL: String?

    init(connector: OutboundConnector, baseURL: String? = nil) {
        self.connector = connector
        var url = baseURL
        while url?.hasSuffix("/") == true { url?.removeLast() }
        self.baseURL = url
    }

    struct Settings {
        var account: String
        var user: String
        var credentials: SnowflakeCredentials
        var database: String
        var schema: String
        var warehouse: String
        var table: String
        var role: String?

        init(_ config: JSONObject) throws(DestinationError) {
            let settings = try DestinationSettings.Snowflake.read(config)
            account = settings.account
            user = settings.user
            database = settings.database
            schema = settings.schema
            warehouse = settings.warehouse
            table = settings.table
            role = settings.role
            switch settings.authentication {
            case .password(let password): credentials = .password(password)
            case .keyPair(let pem, let passphrase): credentials = try SnowflakeCredentials.keyPair(pem: pem, passphrase: passphrase)
            }
        }
    }

    /// Snowflake's quoted identifier (case kept, `"` doubled).
    static func quote(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    func url(for account: String) -> String { baseURL ?? "https://\(account).snowflakecomputing.com" }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let settings = try Settings(context.export.destinationConfig)
        return try await withSession(settings) { client, session in
            try await deliver(records, context: context, settings: settings, client: client, session: session, afterBatch: afterBatch)
        }
    }

    /// Signs in (through the outbound policy), runs `body`, and ends the session whatever happens.
    func withSession<T: Sendable>(
        _ settings: Settings, _ body: (SnowflakeClient, SnowflakeClient.Session) async throws -> T
    ) async throws -> T {
        let base = url(for: settings.account)
        guard let host = URLComponents(string: base)?.host, !host.isEmpty else {
            throw DestinationError(kind: .invalidConfiguration, message: "the Snowflake URL has no host", retryable: false)
        }
        do {
            return try await connector.withHTTPClient(host: host, readTimeout: .seconds(600)) { http in
                let client = SnowflakeClient(baseURL: base, http: http)
                // The database and schema are chosen with USE, not at login: a missing one then fails
                // here, saying which.
                let session = try await client.login(
                    account: settings.account, user: settings.user, credentials: settings.credentials, database: nil, schema: nil,
                    warehouse: settings.warehouse, role: settings.role)
                do {
                    _ = try await client.query("USE DATABASE \(Self.quote(settings.database))", session: session)
                    _ = try await client.query("USE SCHEMA \(Self.quote(settings.schema))", session: session)
                    let result = try await body(client, session)
                    await client.close(session)
                    return result
                } catch {
                    await client.close(session)
                    throw error
                }
            }
        } catch let refused as OutboundConnector.Refused {
            throw refused.destinationError
        }
    }

    /// One of the destination test's steps: the login, the database and schema, the table.
    func check(step: Int, config: JSONObject) async throws -> DestinationTest.Result {
        let settings = try Settings(config)
        if step == 0 {
            let base = url(for: settings.account)
            guard let host = URLComponents(string: base)?.host else { return .failed("The Snowflake URL has no host.") }
            return try await connector.withHTTPClient(host: host, readTimeout: .seconds(60)) { http in
                let client = SnowflakeClient(baseURL: base, http: http)
                let session = try await client.login(
                    account: settings.account, user: settings.user, credentials: settings.credentials, database: nil, schema: nil,
                    warehouse: settings.warehouse, role: settings.role)
                await client.close(session)
                return .passed
            }
        }
        return try await withSession(settings) { client, session in
            if step == 1 { return .passed }
            if (try? await client.query("SELECT * FROM \(Self.quote(settings.table)) LIMIT 0", session: session)) != nil { return .passed }
            let probe = "HEDGEROW_PROBE_\(Int.random(in: 0..<1_000_000))"
            _ = try await client.query("CREATE TEMPORARY TABLE \(probe) (\"uuid\" STRING)", session: session)
            _ = try await client.query("DROP TABLE IF EXISTS \(probe)", session: session)
            return .passed
        }
    }

    /// The model's columns as Snowflake takes them: PostHog's event column names (`people_set`,
    /// `people_set_once`, `elements` a VARIANT), the models' columns without `_inserted_at`.
    static func columns(_ rows: WarehouseRows) -> [FileColumn] {
        rows.columns.map { column in
            switch column.name {
            case "set": FileColumn("people_set", .json)
            case "set_once": FileColumn("people_set_once", .json)
            case "elements": FileColumn("elements", .json)
            default: column
            }
        }
    }

    static func type(of column: FileColumn) -> String {
        if WarehouseRows.listColumns.contains(column.name) { return "ARRAY" }
        switch column.kind {
        case .string: return "STRING"
        case .json: return "VARIANT"
        case .timestamp: return "TIMESTAMP"
        case .int64: return "INTEGER"
        case .boolean: return "BOOLEAN"
        case .double: return "FLOAT"
        }
    }

    /// The temporary stage table of one attempt (a plain upper-case name: its table stage is
    /// `@%NAME` without quotes).
    static func stageName(runID: String, attempt: Int64) -> String {
        "STAGE_" + runID.replacingOccurrences(of: "-", with: "").uppercased() + "_\(attempt)"
    }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, settings: Settings, client: SnowflakeClient, session: SnowflakeClient.Session,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let rows = WarehouseRows(records)
        let columns = Self.columns(rows)
        let rule = WarehouseRows.mergeRule(model: records.model)
        var result = DeliveryResult(records: 0, bytes: 0)
        guard var batch = try await rows.next() else { return result }
        let final = Self.quote(settings.table)
        let definition = (columns + [FileColumn(Self.ingestedColumn, .timestamp)]).map { "\(Self.quote($0.name)) \(Self.type(of: $0))" }
        _ = try await client.query(
            "CREATE TABLE IF NOT EXISTS \(final) (\(definition.joined(separator: ", "))) COMMENT = 'PostHog generated table'",
            session: session)
        let existing = Set(try await client.query("SELECT * FROM \(final) LIMIT 0", session: session).columns)
        if let rule, let missing = (rule.key + rule.versions).first(where: { !existing.contains($0) }) {
            throw DestinationError(
                kind: .incompatibleSchema, message: "the table \(settings.table) has no column '\(missing)', which the merge needs",
                retryable: false)
        }
        let stage = Self.stageName(runID: context.run.id, attempt: context.run.attempt)
        _ = try await client.query(
            "CREATE TEMPORARY TABLE IF NOT EXISTS \(stage) (\(columns.map { "\(Self.quote($0.name)) \(Self.type(of: $0))" }.joined(separator: ", ")))",
            session: session)
        var files = StageFiles(columns: columns, stage: stage, directory: FileManager.default.temporaryDirectory.path, connector: connector)
        defer { files.removeLocal() }
        var bounds: (Int64, Int64)?
        let timestampIndex = columns.firstIndex { $0.name == "timestamp" }
        while true {
            for index in 0..<batch.count {
                let row = try batch.row(index)
                try files.append(row)
                if let timestampIndex, case .timestamp(let time) = row[timestampIndex] {
                    bounds = (
                        min(bounds?.0 ?? time.microseconds, time.microseconds), max(bounds?.1 ?? time.microseconds, time.microseconds)
                    )
                }
                if files.currentSize >= Self.maximumFileBytes {
                    result.bytes += Int64(try await files.put(client: client, session: session))
                }
            }
            files.endBatch()
            result.records += Int64(batch.count)
            try await afterBatch(result)
            guard let next = try await rows.next() else { break }
            batch = next
        }
        result.bytes += Int64(try await files.put(client: client, session: session))
        // Load the staged files into the stage table; each must be LOADED.
        let selects = columns.map { column in
            column.kind == .json ? "PARSE_JSON($1:\(Self.quote(column.name)))" : "$1:\(Self.quote(column.name))"
        }
        let copied = try await client.query(
            "COPY INTO \(stage) (\(columns.map { Self.quote($0.name) }.joined(separator: ", "))) FROM (SELECT \(selects.joined(separator: ", ")) FROM @%\(stage)/\(files.prefix)) FILE_FORMAT = (TYPE = 'PARQUET') PURGE = TRUE",
            session: session)
        let status = copied.columns.firstIndex(of: "status")
        let loaded = status.map { index in copied.rows.filter { $0[index] == "LOADED" }.count } ?? 0
        guard loaded == files.count, copied.rows.count == files.count else {
            throw DestinationError(
                kind: .snowflakeCopyError,
                message:
                    "COPY INTO loaded \(loaded) of \(files.count) files: \(copied.rows.map { $0.compactMap { $0 }.joined(separator: " ") })",
                retryable: true)
        }
        let statement = Self.mergeStatement(
            columns: columns.filter { existing.contains($0.name) }, rule: rule, final: final, stage: stage,
            ingested: existing.contains(Self.ingestedColumn), bounds: timestampIndex != nil && existing.contains("timestamp") ? bounds : nil
        )
        let merged = try await client.query(statement, session: session)
        _ = try? await client.query("DROP TABLE IF EXISTS \(stage)", session: session)
        try await context.log(
            .info,
            "Loaded \(result.records) rows in \(files.count) file(s); \(merged.rows.first?.compactMap { $0 }.joined(separator: ", ") ?? "0") rows inserted, updated in \(settings.table)."
        )
        return result
    }

    static func mergeStatement(
        columns: [FileColumn], rule: (key: [String], versions: [String])?, final: String, stage: String, ingested: Bool,
        bounds: (Int64, Int64)?
    ) -> String {
        let names = columns.map { quote($0.name) } + (ingested ? [quote(ingestedColumn)] : [])
        let values = columns.map { "stage.\(quote($0.name))" } + (ingested ? ["CURRENT_TIMESTAMP()"] : [])
        let insert = "WHEN NOT MATCHED THEN INSERT (\(names.joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))"
        guard let rule else {
            var on = "final.\"uuid\" = stage.\"uuid\""
            if let (low, high) = bounds {
                func literal(_ micros: Int64) -> String {
                    let text = Timestamp(microseconds: micros).iso8601WithOffset
                    return "'\(text.prefix(10)) \(text.dropFirst(11).prefix(while: { $0 != "+" && $0 != "Z" }))'::TIMESTAMP"
                }
                on += " AND final.\"timestamp\" BETWEEN \(literal(low)) AND \(literal(high))"
            }
            return """
                MERGE INTO \(final) AS final
                USING (SELECT * FROM \(stage) QUALIFY ROW_NUMBER() OVER (PARTITION BY "uuid" ORDER BY "uuid") = 1) AS stage
                ON \(on)
                \(insert)
                """
        }
        let on = rule.key.map { "final.\(quote($0)) = stage.\(quote($0))" }.joined(separator: " AND ")
        let newer = rule.versions.map { "final.\(quote($0)) < stage.\(quote($0))" }.joined(separator: " OR ")
        let updates =
            columns.filter { !rule.key.contains($0.name) }.map { "\(quote($0.name)) = stage.\(quote($0.name))" }
            + (ingested ? ["\(quote(ingestedColumn)) = CURRENT_TIMESTAMP()"] : [])
        return """
            MERGE INTO \(final) AS final
            USING (
              SELECT * FROM \(stage)
              QUALIFY ROW_NUMBER() OVER (PARTITION BY \(rule.key.map(quote).joined(separator: ", ")) ORDER BY \(rule.versions.map { quote($0) + " DESC" }.joined(separator: ", "))) = 1
            ) AS stage
            ON \(on)
            WHEN MATCHED AND (\(newer)) THEN UPDATE SET \(updates.joined(separator: ", "))
            \(insert)
            """
    }
}

extension StageFiles {
    /// Ends the current file and puts it into the Snowflake stage table's stage, uploading it where
    /// the PUT's `stageInfo` points; its size (0 when there was none).
    mutating func put(client: SnowflakeClient, session: SnowflakeClient.Session) async throws -> Int {
        let name = fileName
        guard let local = try finishLocal() else { return 0 }
        defer { try? FileManager.default.removeItem(atPath: local.path) }
        let answer = try await client.put(
            "PUT 'file:///hedgerow/\(name)' @%\(stage)/\(prefix) AUTO_COMPRESS = FALSE OVERWRITE = TRUE", session: session)
        try await StageUpload(connector: connector).upload(
            path: local.path, size: local.size, name: name, stageInfo: answer["stageInfo"] ?? .null)
        return local.size
    }
}

/// An upload to the storage behind a Snowflake stage, as the PUT's `stageInfo` describes it.
struct StageUpload {
    let connector: OutboundConnector

    func upload(path: String, size: Int, name: String, stageInfo: JSONValue) async throws {
        switch stageInfo["locationType"]?.stringValue ?? "" {
        case "GCS":
            guard let url = stageInfo["presignedUrl"]?.stringValue, !url.isEmpty else {
                throw DestinationError(kind: .snowflakeStageError, message: "a GCS stage came without a presigned URL", retryable: false)
            }
            try await put(path: path, size: size, to: url, headers: [("Content-Type", "application/octet-stream")])
        case "AZURE":
            // Put Blob with the stage's SAS token: `https://<account>.<endPoint>/<container>/<path><file>?<sas>`.
            let location = stageInfo["location"]?.stringValue ?? ""
            let account = stageInfo["storageAccount"]?.stringValue ?? ""
            let endpoint = stageInfo["endPoint"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? "blob.core.windows.net"
            var sas = stageInfo["creds"]?["AZURE_SAS_TOKEN"]?.stringValue ?? ""
            if sas.hasPrefix("?") { sas.removeFirst() }
            guard !location.isEmpty, !account.isEmpty, !sas.isEmpty else {
                throw DestinationError(
                    kind: .snowflakeStageError, message: "an Azure stage came without its account, location or SAS token", retryable: false
                )
            }
            // An endpoint given as a URL addresses the account by path (as Azure's emulators do).
            let base = endpoint.contains("://") ? endpoint + "/" + account : "https://" + account + "." + endpoint
            let blob = location.hasSuffix("/") || location.isEmpty ? location + name : location + "/" + name
            let encoded = blob.split(separator: "/", omittingEmptySubsequences: false).map { SnowflakeClient.escape(String($0)) }.joined(
                separator: "/")
            try await put(
                path: path, size: size, to: base + "/" + encoded + "?" + sas,
                headers: [("x-ms-blob-type", "BlockBlob"), ("x-ms-version", "2020-10-02"), ("Content-Type", "application/octet-stream")])
        case "S3":
            try await uploadS3(path: path, size: size, name: name, stageInfo: stageInfo)
        case let other:
            throw DestinationError(
                kind: .snowflakeStageError,
                message: "stages on \(other.isEmpty ? "unknown storage" : other) are not supported by this server",
                retryable: false)
        }
    }

    /// One PUT of the whole file, streamed from disk (a presigned URL or a SAS-signed blob URL).
    func put(path: String, size: Int, to url: String, headers: [(String, String)]) async throws {
        guard let host = URLComponents(string: url)?.host, !host.isEmpty else {
            throw DestinationError(kind: .snowflakeStageError, message: "the stage's upload URL has no host", retryable: false)
        }
        try await connector.withHTTPClient(host: host, readTimeout: .seconds(600)) { http in
            var request = HTTPClientRequest(url: url)
            request.method = .PUT
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.body = .stream(Self.chunks(of: path), length: .known(Int64(size)))
            _ = try await RESTTransport(http: http).send(
                request, timeout: .seconds(600), limit: 1 << 20,
                unreachable: { DestinationError(kind: .connectionError, message: "uploading to the stage: \($0)", retryable: true) },
                classify: { answer in
                    answer.isSuccess
                        ? nil
                        : DestinationError(
                            kind: .snowflakeStageError, message: "the stage's storage answered \(answer.status) to the upload",
                            retryable: answer.status == 429 || answer.status >= 500)
                })
        }
    }

    /// S3 stages: the bucket and path of `location`, the PUT's temporary credentials.
    func uploadS3(path: String, size: Int, name: String, stageInfo: JSONValue) async throws {
        let location = stageInfo["location"]?.stringValue ?? ""
        let bucket = String(location.prefix(while: { $0 != "/" }))
        var keyPrefix = String(location.dropFirst(bucket.count + 1))
        if !keyPrefix.isEmpty, !keyPrefix.hasSuffix("/") { keyPrefix += "/" }
        let creds = stageInfo["creds"]
        guard !bucket.isEmpty, let key = creds?["AWS_KEY_ID"]?.stringValue, let secret = creds?["AWS_SECRET_KEY"]?.stringValue else {
            throw DestinationError(
                kind: .snowflakeStageError, message: "an S3 stage came without its bucket or credentials", retryable: false)
        }
        let region = stageInfo["region"]?.stringValue ?? "us-east-1"
        let endpoint: S3Endpoint
        if let custom = stageInfo["endPoint"]?.stringValue, !custom.isEmpty,
            let parsed = S3Endpoint.parse(custom.contains("://") ? custom : "https://" + custom, virtualHosted: false)
        {
            endpoint = parsed
        } else {
            endpoint = .aws(region: region, virtualHosted: true)
        }
        var client = S3Client(
            endpoint: endpoint, region: region, bucket: bucket,
            credentials: S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: creds?["AWS_TOKEN"]?.stringValue))
        let objectKey = keyPrefix + name
        try await connector.withHTTPClient(host: client.connectionHost, readTimeout: .seconds(600)) { http in
            client = client.using(http)
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw DestinationError(kind: .localFileError, message: "the staged file vanished", retryable: true)
            }
            defer { try? handle.close() }
            do {
                let part = 16 * 1024 * 1024
                if size <= part {
                    try await client.putObject(objectKey, body: Array(handle.readDataToEndOfFile()))
                    return
                }
                let upload = try await client.createMultipartUpload(objectKey)
                var etags: [String] = []
                var number = 1
                while case let data = handle.readData(ofLength: part), !data.isEmpty {
                    etags.append(try await client.uploadPart(objectKey, uploadID: upload, partNumber: number, body: Array(data)))
                    number += 1
                }
                try await client.completeMultipartUpload(objectKey, uploadID: upload, etags: etags)
            } catch let error as S3Error {
                throw DestinationError(kind: .remote(error.code), message: error.message, retryable: error.retryable)
            }
        }
    }

    /// A file's bytes a MiB at a time, read as the upload asks for them (the whole file is never
    /// in memory).
    static func chunks(of path: String) -> AsyncThrowingStream<ByteBuffer, any Error> {
        let reader = ChunkReader(path: path)
        return AsyncThrowingStream { try reader.next() }
    }
}

/// Reads a file a MiB at a time, for one upload's body.
final class ChunkReader: @unchecked Sendable {
    // Safe: an upload's body is read by one task at a time, in order.
    private let handle: FileHandle?
    init(path: String) { handle = FileHandle(forReadingAtPath: path) }
    deinit { try? handle?.close() }

    func next() throws -> ByteBuffer? {
        guard let handle else { throw DestinationError(kind: .localFileError, message: "the staged file vanished", retryable: true) }
        let data = handle.readData(ofLength: 1 << 20)
        return data.isEmpty ? nil : ByteBuffer(bytes: data)
    }
}
