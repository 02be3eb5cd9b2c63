import HedgerowCore
import HedgerowFormats

/// The parsers of outside input, each fed arbitrary bytes and then driving the code that consumes
/// what it parsed (issue #31; docs/security.md lists them). A target returns normally for any input:
/// a refusal is an error it catches; a trap, an overflow or (under AddressSanitizer) a bad access
/// is the finding.
enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "json": json, "capture": capture, "capture-v1": captureV1, "timestamp": timestamp, "query": query,
        "multipart": multipart, "export-config": exportConfig, "filters": filters, "arrow": arrow, "gzip": gzip,
        "forwarded-for": forwardedFor,
    ]

    static let received = Timestamp(microseconds: 1_733_000_000_000_000)

    /// The JSON parser and writer: what parses writes and parses back to the same value.
    static func json(_ bytes: [UInt8]) {
        guard let value = try? JSONParser.parse(bytes) else { return }
        let written = JSONWriter.bytes(value)
        guard let again = try? JSONParser.parse(written) else { fatalError("written JSON does not parse: \(written)") }
        if JSONWriter.bytes(again) != written { fatalError("JSON does not round-trip") }
    }

    /// Capture v0 bodies (an event, a batch, a list), then each event into its JSONLines and Parquet rows.
    static func capture(_ bytes: [UInt8]) {
        guard let body = try? JSONParser.parse(bytes) else { return }
        guard let parsed = try? CaptureParser.parse(body, queryToken: "phc_query", receivedAt: received) else { return }
        export(parsed.events)
    }

    /// Capture v1 batches.
    static func captureV1(_ bytes: [UInt8]) {
        guard let body = try? JSONParser.parse(bytes) else { return }
        guard let parsed = try? CaptureV1Parser.parse(body, token: "phc_x", sdkInfo: "posthog-test/1.0", receivedAt: received)
        else { return }
        export(parsed.accepted?.events ?? [])
    }

    /// ISO 8601 text and any 64-bit value as a timestamp, written back in every form.
    static func timestamp(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let parsed = ISO8601.parse(text) {
            let written = parsed.timestamp.iso8601WithOffset
            guard ISO8601.parse(written)?.timestamp == parsed.timestamp else { fatalError("\(written) does not read back") }
        }
        if bytes.count >= 8 {
            let raw = bytes.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
            let stamp = Timestamp(microseconds: raw)
            _ = stamp.iso8601
            _ = stamp.iso8601WithOffset
            _ = stamp.date
            _ = Timestamp(stamp.date)
        }
    }

    /// Query strings and `application/x-www-form-urlencoded` bodies (the API's and the console's forms).
    static func query(_ bytes: [UInt8]) {
        let query = QueryString(parsing: String(decoding: bytes, as: UTF8.self))
        for item in query.items { _ = query.values(item.key) }
    }

    /// `multipart/form-data` bodies; the first line of the input is the boundary.
    static func multipart(_ bytes: [UInt8]) {
        guard let newline = bytes.firstIndex(of: 0x0A) else { return }
        let boundary = String(decoding: bytes[..<newline], as: UTF8.self)
        _ = MultipartForm.boundary(in: "multipart/form-data; boundary=" + boundary)
        _ = try? MultipartForm.parse(Array(bytes[(newline + 1)...]), boundary: boundary)
    }

    /// A batch export body: its fields, then its destination's configuration for every type, as
    /// created and as a PATCH over a stored configuration.
    static func exportConfig(_ bytes: [UInt8]) {
        guard let body = try? JSONParser.parse(bytes) else { return }
        _ = try? BatchExportInput.parse(body, full: true, deliverable: Set(DestinationType.allCases))
        _ = try? BatchExportInput.parse(body, full: false, deliverable: Set(DestinationType.allCases))
        let config = body["destination"]?["config"] ?? body
        for type in DestinationType.allCases {
            for model in ExportModel.allCases {
                guard let valid = try? DestinationConfig.validate(type: type, config: config, model: model) else { continue }
                _ = try? DestinationConfig.validate(type: type, config: config, model: model, existing: valid)
                _ = DestinationConfig.redacted(valid, type: type)
                _ = DestinationConfig.hosts(in: valid, type: type)
            }
        }
    }

    /// Property filters (a list, and one alone).
    static func filters(_ bytes: [UInt8]) {
        guard let value = try? JSONParser.parse(bytes) else { return }
        _ = try? PropertyFilter.parseList(value)
        _ = try? PropertyFilter.parse(value)
    }

    /// `X-Forwarded-For` behind trusted proxies: the first line is a CIDR list (as
    /// `HEDGEROW_TRUSTED_PROXIES` and the destination allow and deny lists take), the second the
    /// TCP peer, the rest the headers.
    static func forwardedFor(_ bytes: [UInt8]) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 2 else { return }
        let networks = (try? IPNetwork.parseList(lines[0]).get()) ?? []
        let peer = lines[1]
        if let address = IPAddress(peer) { _ = networks.map { $0.contains(address) } }
        let resolved = ClientAddress(trustedProxies: networks).resolve(peer: peer, forwardedFor: Array(lines.dropFirst(2)))
        guard resolved == peer || IPAddress(resolved ?? "") != nil else { fatalError("resolved to a non-address: \(resolved ?? "nil")") }
    }

    /// Arrow IPC streams (Snowflake's answers).
    static func arrow(_ bytes: [UInt8]) {
        _ = try? ArrowIPCReader.read(bytes)
    }

    /// gzip members (capture's compressed bodies), with the capture limit.
    static func gzip(_ bytes: [UInt8]) {
        guard let inflated = try? Gzip.decompress(bytes, limit: 1 << 20) else { return }
        capture(inflated)
    }

    /// Events into the rows of a JSONLines and a Parquet file (the columns of `EventProjection`).
    static func export(_ events: [Event]) {
        guard !events.isEmpty else { return }
        for format in FileFormat.allCases {
            guard case .success(let encoder) = format.encoder(columns: columns, compression: nil) else { continue }
            for event in events { encoder.append(EventRow(event: event)) }
            encoder.endBatch()
            encoder.finish()
            _ = encoder.takeOutput()
        }
    }

    static let columns: [FileColumn] = [
        FileColumn("uuid", .string), FileColumn("event", .string), FileColumn("distinct_id", .string), FileColumn("person_id", .string),
        FileColumn("properties", .json), FileColumn("person_properties", .json), FileColumn("elements_chain", .string),
        FileColumn("timestamp", .timestamp), FileColumn("created_at", .timestamp), FileColumn("_inserted_at", .timestamp),
    ]

    struct EventRow: FileRow {
        let event: Event
        func write<Cells: FileCells>(into cells: inout Cells) {
            cells.string(event.uuid)
            cells.string(event.event)
            cells.string(event.distinctID)
            if let person = event.personID { cells.string(person) } else { cells.null() }
            cells.json(event.properties)
            if let properties = event.personProperties { cells.json(properties) } else { cells.null() }
            if let chain = event.elementsChain { cells.string(chain) } else { cells.null() }
            cells.timestamp(event.timestamp)
            cells.timestamp(event.createdAt)
            cells.timestamp(event.insertedAt)
        }
    }
}
