import AsyncHTTPClient
import Foundation
import HedgerowCore
import HedgerowStore
import NIOCore
import NIOHTTP1

/// Delivers a run to an HTTP endpoint in PostHog's `/batch/` shape (docs/engine.md §3):
/// `{"api_key": token, "historical_migration": true, "batch": [...]}`, flushed every 5000 events or
/// 50 MB. At least once: the receiver de-duplicates by uuid; a retried run resumes after the last
/// acknowledged POST (its cursor).
package struct HTTPDestination: Destination {
    let allowInsecure: Bool
    let connector: OutboundConnector
    static let maximumEvents = 5_000
    static let maximumBytes = 50 * 1024 * 1024

    package init(allowInsecure: Bool, connector: OutboundConnector) {
        self.allowInsecure = allowInsecure
        self.connector = connector
    }

    /// `https://` always; `http://` only when insecure destinations are allowed.
    package static func check(url: String, allowInsecure: Bool) -> String? {
        if url.hasPrefix("https://") { return nil }
        if url.hasPrefix("http://") {
            return allowInsecure ? nil : "plain http:// URLs are refused; use https:// (or set HEDGEROW_ALLOW_INSECURE_HTTP_DESTINATIONS=1)"
        }
        return "the URL must start with https://"
    }

    package func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        guard case .events(let batches) = records else {
            throw DestinationError(
                kind: .unsupportedModel, message: "HTTP batch exports only support the events model", retryable: false)
        }
        let settings = try DestinationSettings.HTTP.read(context.export.destinationConfig)
        let (url, token) = (settings.url, settings.token)
        if let problem = Self.check(url: url, allowInsecure: allowInsecure) {
            throw DestinationError(kind: .invalidConfiguration, message: problem, retryable: false)
        }
        guard let host = URLComponents(string: url)?.host, !host.isEmpty else {
            throw DestinationError(kind: .invalidConfiguration, message: "the URL has no host", retryable: false)
        }
        return try await connector.withHTTPClient(host: host, readTimeout: .seconds(60)) { client in
            try await deliver(batches, context: context, url: url, token: token, client: client, afterBatch: afterBatch)
        }
    }

    func deliver(
        _ batches: EventBatches, context: DeliveryContext, url: String, token: String, client: HTTPClient,
        afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        // Resume after the last acknowledged event: "<microseconds>|<uuid>" of the run's ordering.
        let resumeAfter = context.run.cursor.flatMap(Self.parseCursor)
        let field: EventQuery.TimeField = context.run.backfillID == nil ? .insertedAt : .timestamp
        var result = DeliveryResult(records: 0, bytes: 0, cursor: context.run.cursor)
        var pending: [JSONValue] = []
        var pendingBytes = 0
        var last: (Int64, String)?

        func flush() async throws {
            guard !pending.isEmpty, let last else { return }
            let body = JSONWriter.bytes(
                .object(["api_key": .string(token), "historical_migration": true, "batch": .array(pending)]))
            try await post(body, to: url, client: client)
            result.records += Int64(pending.count)
            result.bytes += Int64(body.count)
            result.cursor = "\(last.0)|\(last.1)"
            pending.removeAll(keepingCapacity: true)
            pendingBytes = 0
            try await afterBatch(result)
        }

        for try await batch in batches {
            for event in batch {
                let key = (field == .insertedAt ? event.insertedAt.microseconds : event.timestamp.microseconds, event.uuid)
                if let resumeAfter, key <= resumeAfter { continue }
                let properties = JSONValue.object(try EventProjection.storedProperties(of: event))
                let item: JSONValue = .object([
                    "uuid": .string(event.uuid), "distinct_id": .string(event.distinctID), "timestamp": .string(event.timestamp.iso8601),
                    "event": .string(event.event), "properties": properties,
                ])
                let size = event.properties.utf8.count + 200
                if pending.count >= Self.maximumEvents || pendingBytes + size > Self.maximumBytes { try await flush() }
                pending.append(item)
                pendingBytes += size
                last = key
            }
            try await afterBatch(result)
        }
        try await flush()
        return result
    }

    static func parseCursor(_ text: String) -> (Int64, String)? {
        let parts = text.split(separator: "|", maxSplits: 1)
        guard parts.count == 2, let time = Int64(parts[0]) else { return nil }
        return (time, String(parts[1]))
    }

    /// One POST; 429 and 5xx are retryable, other non-2xx answers are not (a redirect among them:
    /// destinations follow none). Only the status goes into the error, never the answer's body.
    func post(_ body: [UInt8], to url: String, client: HTTPClient) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(body)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(60))
        } catch {
            throw DestinationError(kind: .connectionError, message: String(describing: error), retryable: true)
        }
        let code = Int(response.status.code)
        _ = try? await response.body.collect(upTo: 1 << 16)
        guard (200..<300).contains(code) else {
            let retryable = code == 429 || code >= 500
            throw DestinationError(
                kind: retryable ? .retryableHTTPError : .httpError, message: "the endpoint answered \(code)", retryable: retryable)
        }
    }
}
