import Crypto
import HedgerowCore
import HedgerowFormats
import HedgerowS3
import HedgerowStore

/// Delivers a run to S3 or an S3-compatible store (ENGINE.md §4, §7): JSONLines or Parquet files
/// named after the run's interval, streamed as multipart uploads (small files as one PutObject),
/// split at `max_file_size_mb`, then a manifest written last. Keys depend only on the interval, so
/// a retry overwrites what an earlier attempt wrote; uploads in progress are aborted on failure or
/// cancel, and data files an earlier attempt left beyond the new set are deleted.
public struct S3Destination: Destination {
    public struct Options: Sendable {
        /// Bytes per multipart part (S3's minimum is 5 MiB).
        public var partSize = 50 * 1024 * 1024
        /// Parts uploaded at once.
        public var uploadsInFlight = 4
        public init(partSize: Int = 50 * 1024 * 1024, uploadsInFlight: Int = 4) {
            self.partSize = max(partSize, 5 * 1024 * 1024)
            self.uploadsInFlight = max(uploadsInFlight, 1)
        }
    }

    let options: Options
    let connector: OutboundConnector

    public init(options: Options = Options(), connector: OutboundConnector) {
        self.options = options
        self.connector = connector
    }

    struct Settings {
        var client: S3Client
        var prefix: String
        var format: FileFormat
        var compression: Compression?
        var maximumFileBytes: Int?
        /// Server-side encryption, for every object the run writes (data files and manifest).
        var encryptionHeaders: [(String, String)]
        var objectHeaders: [(String, String)] {
            encryptionHeaders + [("Content-Type", format == .parquet ? "application/vnd.apache.parquet" : "application/jsonl")]
        }
        var manifestHeaders: [(String, String)] { encryptionHeaders + [("Content-Type", "application/json")] }

        init(_ config: JSONObject) throws(DestinationError) {
            func text(_ key: String) -> String? {
                guard case .string(let value)? = config[key], !value.isEmpty else { return nil }
                return value
            }
            func invalid(_ message: String) -> DestinationError {
                DestinationError(kind: "InvalidConfiguration", message: message, retryable: false)
            }
            guard let bucket = text("bucket_name") else { throw invalid("'bucket_name' is missing") }
            let region = text("region") ?? "us-east-1"
            let virtual = config["use_virtual_style_addressing"] == .bool(true)
            let endpoint: S3Endpoint
            if let url = text("endpoint_url") {
                guard let parsed = S3Endpoint.parse(url, virtualHosted: virtual) else {
                    throw invalid("'endpoint_url' must be an http:// or https:// URL without a path")
                }
                endpoint = parsed
            } else {
                endpoint = .aws(region: region, virtualHosted: virtual)
            }
            var credentials: S3Credentials?
            if let key = text("aws_access_key_id"), let secret = text("aws_secret_access_key") {
                credentials = S3Credentials(accessKeyID: key, secretAccessKey: secret)
            }
            client = S3Client(endpoint: endpoint, region: region, bucket: bucket, credentials: credentials)
            prefix = text("prefix") ?? ""
            guard let format = FileFormat(rawValue: text("file_format") ?? "JSONLines") else {
                throw invalid("file format \(text("file_format") ?? "") is not supported")
            }
            self.format = format
            if let name = text("compression") {
                guard let compression = Compression(rawValue: name) else { throw invalid("compression \(name) is not supported") }
                self.compression = compression
            }
            if case .int(let megabytes)? = config["max_file_size_mb"], megabytes > 0 {
                maximumFileBytes = Int(megabytes) * 1024 * 1024
            }
            encryptionHeaders = []
            if let encryption = text("encryption") {
                encryptionHeaders.append(("x-amz-server-side-encryption", encryption))
                if encryption == "aws:kms", let key = text("kms_key_id") {
                    encryptionHeaders.append(("x-amz-server-side-encryption-aws-kms-key-id", key))
                }
            }
        }
    }

    /// ENGINE.md §4's prefix templates, from the interval end (`{table}`: the model's name); a prefix with a placeholder it does
    /// not know (or unbalanced braces) is used verbatim, and `rendered` is false.
    public static func renderPrefix(
        _ template: String, start: Timestamp, end: Timestamp, table: String = "events"
    ) -> (prefix: String, rendered: Bool) {
        let parts = end.iso8601WithOffset
        let values: [String: String] = [
            "year": String(parts.prefix(4)), "month": String(parts.dropFirst(5).prefix(2)), "day": String(parts.dropFirst(8).prefix(2)),
            "hour": String(parts.dropFirst(11).prefix(2)), "minute": String(parts.dropFirst(14).prefix(2)),
            "second": String(parts.dropFirst(17).prefix(2)), "table": table, "data_interval_start": start.iso8601WithOffset,
            "data_interval_end": end.iso8601WithOffset,
        ]
        var output = ""
        var rest = template[...]
        while let open = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) {
            guard rest[open] == "{", let close = rest[open...].firstIndex(of: "}") else { return (template, false) }
            guard let value = values[String(rest[rest.index(after: open)..<close])] else { return (template, false) }
            output += rest[..<open] + value
            rest = rest[rest.index(after: close)...]
        }
        return (output + rest, true)
    }

    /// `<start>-<end>`, plus `-backfill-<8 chars of the backfill id>` for a backfill run over an
    /// interval a scheduled run already delivered (ENGINE.md §4, no silent loss).
    public static func baseName(context: DeliveryContext) -> String {
        var base = context.dataIntervalStart.iso8601WithOffset + "-" + context.run.dataIntervalEnd.iso8601WithOffset
        if let backfill = context.run.backfillID, context.overlapsCompletedScheduledRun {
            base += "-backfill-" + backfill.prefix(8)
        }
        return base
    }

    static func join(_ prefix: String, _ name: String) -> String {
        var prefix = prefix
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// One data file's key: `-<n>` only when files are split, the codec's extension on JSONLines only.
    static func dataKey(prefix: String, base: String, index: Int?, format: FileFormat, compression: Compression?) -> String {
        var name = base + (index.map { "-\($0)" } ?? "") + "." + format.fileExtension
        if format == .jsonLines, let compression { name += "." + compression.fileExtension }
        return join(prefix, name)
    }

    struct FileRecord {
        var key: String
        var records: Int
        var bytes: Int
        var sha256: String
    }

    public func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        var settings = try Settings(context.export.destinationConfig)
        return try await connector.withHTTPClient(host: settings.client.connectionHost) { http in
            settings.client = settings.client.using(http)
            return try await deliver(records, context: context, settings: settings, afterBatch: afterBatch)
        }
    }

    func deliver(
        _ records: RunRecords, context: DeliveryContext, settings: Settings,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let rows = FileRows(records)
        let (prefix, rendered) = Self.renderPrefix(
            settings.prefix, start: context.dataIntervalStart, end: context.run.dataIntervalEnd, table: records.model)
        if !rendered {
            try await context.log("WARNING", "The prefix '\(settings.prefix)' could not be rendered; it is used as it is.")
        }
        let base = Self.baseName(context: context)
        let split = settings.maximumFileBytes != nil
        let client = settings.client
        var files: [FileRecord] = []
        var result = DeliveryResult(records: 0, bytes: 0)
        var upload = ObjectUpload(client: client, headers: settings.objectHeaders, options: options)
        do {
            try await withThrowingTaskGroup(of: UploadedPart.self) { parts in
                var encoder: (any FileEncoder)?
                func key() -> String {
                    Self.dataKey(
                        prefix: prefix, base: base, index: split ? files.count : nil, format: settings.format,
                        compression: settings.compression)
                }
                func finishFile() async throws {
                    guard let current = encoder else { return }
                    current.finish()
                    upload.append(current.takeOutput())
                    let name = key()
                    let (bytes, sha256) = try await upload.finish(key: name, parts: &parts)
                    files.append(FileRecord(key: name, records: current.records, bytes: bytes, sha256: sha256))
                    result.bytes += Int64(bytes)
                    encoder = nil
                }
                while let batch = try await rows.next() {
                    for row in batch {
                        let current: any FileEncoder
                        if let encoder {
                            current = encoder
                        } else {
                            switch settings.format.encoder(columns: rows.columns, compression: settings.compression) {
                            case .success(let made): current = made
                            case .failure(let error):
                                throw DestinationError(kind: "InvalidConfiguration", message: error.description, retryable: false)
                            }
                            encoder = current
                        }
                        current.append(row)
                        result.records += 1
                        if let limit = settings.maximumFileBytes, current.approximateSize >= limit { try await finishFile() }
                    }
                    if let current = encoder {
                        current.endBatch()
                        upload.append(current.takeOutput())
                        try await upload.sendFullParts(key: key(), parts: &parts)
                    }
                    try await afterBatch(result)
                }
                try await finishFile()
            }
            if context.run.attempt > 1 {
                try await removeLeftovers(client: client, prefix: prefix, base: base, keep: Set(files.map(\.key)))
            }
            try await writeManifest(
                client: client, prefix: prefix, base: base, files: files, result: result, context: context,
                headers: settings.manifestHeaders)
        } catch {
            // The task group has cancelled and awaited the parts on their way; drop the upload.
            await upload.abort()
            if let s3 = error as? S3Error { throw DestinationError(kind: s3.code, message: s3.message, retryable: s3.retryable) }
            throw error
        }
        return result
    }

    /// What earlier attempts of this interval left: data files this attempt did not write (a
    /// different split), so that a reader never finds more files than the manifest lists, and
    /// multipart uploads they began and never completed or aborted (a worker killed mid-upload), whose
    /// stored parts would otherwise be kept, and billed, by S3 until a lifecycle rule removed them.
    func removeLeftovers(client: S3Client, prefix: String, base: String, keep: Set<String>) async throws(S3Error) {
        let stem = Self.join(prefix, base)
        for object in try await client.listObjects(prefix: stem) where !keep.contains(object.key) && Self.isDataKey(object.key, stem: stem)
        {
            try await client.deleteObject(object.key)
        }
        for upload in try await client.listMultipartUploads(prefix: stem) where Self.isDataKey(upload.key, stem: stem) {
            try await client.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
        }
    }

    /// Whether `key` is a data file of the interval `stem` names (`<stem>[-<n>].<jsonl|parquet>…`),
    /// not its manifest nor a backfill's file beside it (`<stem>-backfill-…`).
    static func isDataKey(_ key: String, stem: String) -> Bool {
        guard key.hasPrefix(stem) else { return false }
        var rest = key.dropFirst(stem.count)
        if rest.hasPrefix("-") {
            rest = rest.dropFirst().drop(while: \.isNumber)
        }
        return rest.hasPrefix(".jsonl") || rest.hasPrefix(".parquet")
    }

    func writeManifest(
        client: S3Client, prefix: String, base: String, files: [FileRecord], result: DeliveryResult, context: DeliveryContext,
        headers: [(String, String)]
    ) async throws(S3Error) {
        let manifest: JSONValue = .object([
            "files": .array(files.map { .string($0.key) }),
            "records": .int(result.records),
            "bytes": .int(result.bytes),
            "files_detail": .array(
                files.map {
                    .object([
                        "key": .string($0.key), "records": .int(Int64($0.records)), "bytes": .int(Int64($0.bytes)),
                        "sha256": .string($0.sha256),
                    ])
                }),
            "data_interval_start": .string(context.dataIntervalStart.iso8601WithOffset),
            "data_interval_end": .string(context.run.dataIntervalEnd.iso8601WithOffset),
            "run_id": .string(context.run.id),
        ])
        try await client.putObject(
            Self.join(prefix, base + "_manifest.json"), body: JSONWriter.bytes(manifest), headers: headers)
    }
}

/// A part uploaded: its number and ETag.
struct UploadedPart: Sendable {
    var number: Int
    var etag: String
}

/// One object on its way up: bytes gather until a part is full, full parts go up as a multipart
/// upload with a few in flight (child tasks of the run's task group); a file that never fills a
/// part is sent as one PutObject.
struct ObjectUpload {
    let client: S3Client
    let headers: [(String, String)]
    let options: S3Destination.Options
    private var buffer: [UInt8] = []
    private var hasher = SHA256()
    private var total = 0
    private var uploadID: String?
    private var uploadKey: String?
    private var etags: [Int: String] = [:]
    private var started = 0

    init(client: S3Client, headers: [(String, String)], options: S3Destination.Options) {
        self.client = client
        self.headers = headers
        self.options = options
    }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        hasher.update(data: bytes)
        total += bytes.count
        buffer.append(contentsOf: bytes)
    }

    /// Sends every full part buffered, keeping at most `uploadsInFlight` parts on the way.
    mutating func sendFullParts(key: String, parts: inout ThrowingTaskGroup<UploadedPart, any Error>) async throws {
        while buffer.count >= options.partSize {
            let part = Array(buffer[0..<options.partSize])
            buffer.removeFirst(options.partSize)
            try await send(part, key: key, parts: &parts)
        }
    }

    private mutating func send(_ part: [UInt8], key: String, parts: inout ThrowingTaskGroup<UploadedPart, any Error>) async throws {
        if uploadID == nil {
            uploadID = try await client.createMultipartUpload(key, headers: headers)
            uploadKey = key
        }
        guard let uploadID else { return }
        started += 1
        let number = started
        let client = self.client
        parts.addTask {
            UploadedPart(number: number, etag: try await client.uploadPart(key, uploadID: uploadID, partNumber: number, body: part))
        }
        while started - etags.count >= options.uploadsInFlight, let done = try await parts.next() {
            etags[done.number] = done.etag
        }
    }

    /// Uploads what is left and completes the object; its size and SHA-256. Ready for the next file.
    mutating func finish(key: String, parts: inout ThrowingTaskGroup<UploadedPart, any Error>) async throws -> (Int, String) {
        if let uploadID {
            if !buffer.isEmpty { try await send(buffer, key: key, parts: &parts) }
            while let done = try await parts.next() { etags[done.number] = done.etag }
            try await client.completeMultipartUpload(key, uploadID: uploadID, etags: (1...started).compactMap { etags[$0] })
        } else {
            try await client.putObject(key, body: buffer, headers: headers)
        }
        let digest = SigV4Signer.hex(hasher.finalize())
        let size = total
        self = ObjectUpload(client: client, headers: headers, options: options)
        return (size, digest)
    }

    /// Aborts the multipart upload in progress (its parts are deleted by S3).
    mutating func abort() async {
        if let uploadID, let uploadKey { try? await client.abortMultipartUpload(uploadKey, uploadID: uploadID) }
        uploadID = nil
    }
}
