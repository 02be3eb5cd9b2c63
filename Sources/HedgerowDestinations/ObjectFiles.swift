import Crypto
import HedgerowCore
import HedgerowFormats
import HedgerowS3
import HedgerowStore

/// What an object store offers a run's files (S3, Azure Blob): whole objects, objects uploaded in
/// parts and committed at once, listing and deleting. Errors are the store's own; `destinationError`
/// classifies them.
protocol ObjectStore: Sendable {
    func putObject(_ key: String, body: RequestBody, contentType: String) async throws
    /// Begins a part-by-part upload of `key`; its id.
    func beginUpload(_ key: String, contentType: String) async throws -> String
    /// Uploads part `number` (1, 2, …); the token `completeUpload` needs for it.
    func uploadPart(_ key: String, uploadID: String, number: Int, body: RequestBody) async throws -> String
    /// Makes the parts, in order, the object's content.
    func completeUpload(_ key: String, uploadID: String, parts: [String], contentType: String) async throws
    /// Drops an upload that will not complete.
    func abortUpload(_ key: String, uploadID: String) async
    func listKeys(prefix: String) async throws -> [String]
    func deleteObject(_ key: String) async throws
    /// Drops uploads that earlier attempts began under `prefix` and never completed, where the store
    /// keeps (and bills) them.
    func abortUnfinishedUploads(prefix: String, where matches: (String) -> Bool) async throws
    /// The error as a run's outcome (retryable or not).
    func destinationError(_ error: any Error) -> (any Error)
}

/// How a run's files are cut and sent.
struct ObjectFileSettings {
    var prefix: String
    var format: FileFormat
    var compression: Compression?
    var maximumFileBytes: Int?
    /// Bytes per part and parts in flight.
    var partSize: Int
    var uploadsInFlight: Int

    var contentType: String { format == .parquet ? "application/vnd.apache.parquet" : "application/jsonl" }

    /// A configuration's files, sent `partSize` bytes at a time, `uploadsInFlight` parts at once.
    init(_ files: DestinationSettings.Files, partSize: Int, uploadsInFlight: Int) {
        prefix = files.prefix
        format = files.format
        compression = files.compression
        maximumFileBytes = files.maximumFileMegabytes.map { Int($0) * 1024 * 1024 }
        self.partSize = partSize
        self.uploadsInFlight = max(uploadsInFlight, 1)
    }
}

/// A run's files in an object store (docs/engine.md §4, §7): JSONLines or Parquet files named after the
/// run's interval, streamed in parts (small files as one object), split at `max_file_size_mb`,
/// then a manifest written last. Keys depend only on the interval, so a retry overwrites what an
/// earlier attempt wrote; uploads in progress are dropped on failure or cancel, and data files an
/// earlier attempt left beyond the new set are deleted.
enum ObjectFiles {
    /// docs/engine.md §4's prefix templates, from the interval end (`{table}`: the model's name); a prefix with a placeholder it does
    /// not know (or unbalanced braces) is used verbatim, and `rendered` is false.
    static func renderPrefix(
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
    /// interval a scheduled run already delivered (docs/engine.md §4, no silent loss).
    static func baseName(context: DeliveryContext) -> String {
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

    struct FileRecord {
        var key: String
        var records: Int
        var bytes: Int
        var sha256: String
    }

    /// Writes the run's files and then its manifest.
    static func deliver(
        _ records: RunRecords, context: DeliveryContext, store: some ObjectStore, settings: ObjectFileSettings,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let rows = FileRows(records)
        let (prefix, rendered) = renderPrefix(
            settings.prefix, start: context.dataIntervalStart, end: context.run.dataIntervalEnd, table: records.model.rawValue)
        if !rendered {
            try await context.log(.warning, "The prefix '\(settings.prefix)' could not be rendered; it is used as it is.")
        }
        let base = baseName(context: context)
        let split = settings.maximumFileBytes != nil
        var files: [FileRecord] = []
        var result = DeliveryResult(records: 0, bytes: 0)
        do {
            try await writeFiles(
                columns: rows.columns, next: rows.next, store: store, settings: settings,
                key: {
                    dataKey(prefix: prefix, base: base, index: split ? $0 : nil, format: settings.format, compression: settings.compression)
                },
                files: &files, result: &result, afterBatch: afterBatch)
            if context.run.attempt > 1 {
                try await removeLeftovers(store: store, prefix: prefix, base: base, keep: Set(files.map(\.key)))
            }
            try await writeManifest(store: store, prefix: prefix, base: base, files: files, result: result, context: context)
        } catch {
            throw store.destinationError(error)
        }
        return result
    }

    /// Encodes rows into files of `settings.format`, each streamed up as it is written (parts with
    /// a few in flight) and ended at `settings.maximumFileBytes`; file `n` is named `key(n)`. `files`
    /// holds every file completed, also when this throws; an upload in progress is dropped then.
    static func writeFiles(
        columns: [FileColumn], next: () async throws -> RowBatch?, store: some ObjectStore, settings: ObjectFileSettings,
        key: (Int) -> String, files: inout [FileRecord], result: inout DeliveryResult,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws {
        var upload = ObjectUpload(store: store, settings: settings)
        do {
            try await withThrowingTaskGroup(of: UploadedPart.self) { parts in
                var encoder: (any FileEncoder)?
                func finishFile() async throws {
                    guard let current = encoder else { return }
                    current.finish()
                    try upload.append(current.takeOutput())
                    let name = key(files.count)
                    let (bytes, sha256) = try await upload.finish(key: name, parts: &parts)
                    files.append(FileRecord(key: name, records: current.records, bytes: bytes, sha256: sha256))
                    result.bytes += Int64(bytes)
                    encoder = nil
                }
                while let batch = try await next() {
                    for index in 0..<batch.count {
                        let current: any FileEncoder
                        if let encoder {
                            current = encoder
                        } else {
                            switch settings.format.encoder(columns: columns, compression: settings.compression) {
                            case .success(let made): current = made
                            case .failure(let error):
                                throw DestinationError(kind: .invalidConfiguration, message: error.description, retryable: false)
                            }
                            encoder = current
                        }
                        try batch.append(index, to: current)
                        result.records += 1
                        if let limit = settings.maximumFileBytes, current.approximateSize >= limit { try await finishFile() }
                    }
                    if let current = encoder {
                        current.endBatch()
                        try upload.append(current.takeOutput())
                        try await upload.sendFullParts(key: key(files.count), parts: &parts)
                    }
                    try await afterBatch(result)
                }
                try await finishFile()
            }
        } catch {
            // The task group has cancelled and awaited the parts on their way; drop the upload.
            await upload.abort()
            throw error
        }
    }

    /// What earlier attempts of this interval left: data files this attempt did not write (a
    /// different split), so that a reader never finds more files than the manifest lists, and
    /// uploads they began and never completed (a worker killed mid-upload), whose stored parts the
    /// store would otherwise keep, and bill, until a lifecycle rule removed them.
    static func removeLeftovers(store: some ObjectStore, prefix: String, base: String, keep: Set<String>) async throws {
        let stem = join(prefix, base)
        for key in try await store.listKeys(prefix: stem) where !keep.contains(key) && isDataKey(key, stem: stem) {
            try await store.deleteObject(key)
        }
        try await store.abortUnfinishedUploads(prefix: stem) { isDataKey($0, stem: stem) }
    }

    static func writeManifest(
        store: some ObjectStore, prefix: String, base: String, files: [FileRecord], result: DeliveryResult, context: DeliveryContext
    ) async throws {
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
        try await store.putObject(
            join(prefix, base + "_manifest.json"), body: .bytes(JSONWriter.bytes(manifest)), contentType: "application/json")
    }
}

/// A part uploaded: its number and the store's token for it.
struct UploadedPart: Sendable {
    var number: Int
    var token: String
}

/// One object on its way up: bytes gather in a part spooled to a temporary file (`PartSpool`)
/// until it is full, full parts go up with a few in flight (child tasks of the run's task group),
/// each read back from its file as it is sent; a file that never fills a part is sent whole, from
/// its file too. So the memory an upload holds does not grow with the part size, the number of
/// parts in flight or the file's size.
struct ObjectUpload<Store: ObjectStore> {
    let store: Store
    let settings: ObjectFileSettings
    private var spool: PartSpool?
    private var hasher = SHA256()
    private var total = 0
    private var uploadID: String?
    private var uploadKey: String?
    private var tokens: [Int: String] = [:]
    private var started = 0
    /// Sealed full parts waiting for `sendFullParts`.
    private var full: [SpooledPart] = []

    init(store: Store, settings: ObjectFileSettings) {
        self.store = store
        self.settings = settings
    }

    /// Appends to the part being gathered; a part that reaches `partSize` is sealed (exactly that
    /// size) and the rest starts the next one.
    mutating func append(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        hasher.update(data: bytes)
        total += bytes.count
        var rest = bytes[...]
        while !rest.isEmpty {
            var current = try spool ?? PartSpool()
            let room = settings.partSize - current.count
            try current.append(rest.prefix(room))
            rest = rest.dropFirst(room)
            if current.count >= settings.partSize {
                full.append(current.seal())
                spool = nil
            } else {
                spool = current
            }
        }
    }

    /// Sends every full part gathered, keeping at most `uploadsInFlight` parts on the way.
    mutating func sendFullParts(key: String, parts: inout ThrowingTaskGroup<UploadedPart, any Error>) async throws {
        while !full.isEmpty {
            let part = full.removeFirst()
            try await send(part, key: key, parts: &parts)
        }
    }

    private mutating func send(_ part: SpooledPart, key: String, parts: inout ThrowingTaskGroup<UploadedPart, any Error>) async throws {
        if uploadID == nil {
            uploadID = try await store.beginUpload(key, contentType: settings.contentType)
            uploadKey = key
        }
        guard let uploadID else { return }
        started += 1
        let number = started
        let store = self.store
        parts.addTask {
            UploadedPart(number: number, token: try await store.uploadPart(key, uploadID: uploadID, number: number, body: .spooled(part)))
        }
        while started - tokens.count >= settings.uploadsInFlight, let done = try await parts.next() {
            tokens[done.number] = done.token
        }
    }

    /// Uploads what is left and completes the object; its size and SHA-256. Ready for the next file.
    mutating func finish(key: String, parts: inout ThrowingTaskGroup<UploadedPart, any Error>) async throws -> (Int, String) {
        let last = spool?.seal()
        spool = nil
        if uploadID == nil, full.count + (last == nil ? 0 : 1) <= 1 {
            // One part at most (a file that ends exactly on a part boundary leaves nothing over):
            // sent whole; an empty file is an empty object.
            let whole = full.first ?? last
            full.removeAll()
            try await store.putObject(key, body: whole.map(RequestBody.spooled) ?? .bytes([]), contentType: settings.contentType)
        } else {
            try await sendFullParts(key: key, parts: &parts)
            if let last { try await send(last, key: key, parts: &parts) }
            while let done = try await parts.next() { tokens[done.number] = done.token }
            guard let uploadID else { throw CancellationError() }
            try await store.completeUpload(
                key, uploadID: uploadID, parts: (1...started).compactMap { tokens[$0] }, contentType: settings.contentType)
        }
        let digest = SigV4Signer.hex(hasher.finalize())
        let size = total
        self = ObjectUpload(store: store, settings: settings)
        return (size, digest)
    }

    /// Drops the upload in progress.
    mutating func abort() async {
        if let uploadID, let uploadKey { await store.abortUpload(uploadKey, uploadID: uploadID) }
        uploadID = nil
    }
}
