import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowIngest

/// The capture endpoints PostHog's SDKs call: JSON, gzip (`Content-Encoding: gzip` or
/// `?compression=gzip-js`), form bodies with base64 `data=`, and `GET /e/?data=`.
struct CaptureController: Sendable {
    let service: CaptureService
    let maximumBodySize: Int
    let clock: @Sendable () -> Timestamp
    /// Requests per project token (`HEDGEROW_CAPTURE_RATE_LIMIT`); nil for no limit.
    var tokenLimiter: WindowLimiter? = nil
    var metrics: RequestMetrics? = nil

    static let paths = ["/e/", "/capture/", "/track/", "/batch/", "/i/v0/e/"]

    func addRoutes(to routes: inout Routes) {
        for path in Self.paths {
            routes.add("POST", path, scope: nil, cors: true, handler: capture)
            routes.add("OPTIONS", path, scope: nil, cors: true, handler: preflight)
        }
        routes.add("POST", "/i/v1/analytics/events", scope: nil, cors: true, handler: captureV1)
        routes.add("OPTIONS", "/i/v1/analytics/events", scope: nil, cors: true, handler: preflight)
        routes.add("GET", "/e/", scope: nil, cors: true, handler: capture)
        routes.add("GET", "/capture/", scope: nil, cors: true, handler: capture)
    }

    @Sendable func preflight(_ request: APIRequest) async throws -> APIResponse {
        APIResponse(
            status: 200, json: nil,
            headers: [
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                ("Access-Control-Allow-Headers", request.header("Access-Control-Request-Headers") ?? "Content-Type, Content-Encoding"),
                ("Access-Control-Max-Age", "86400"),
            ])
    }

    @Sendable func capture(_ request: APIRequest) async throws -> APIResponse {
        let receivedAt = clock()
        let body = try decodeBody(request)
        let payload = try CaptureParser.parse(
            body, queryToken: request.query["token"] ?? request.query["api_key"], receivedAt: receivedAt)
        if let tokenLimiter, let wait = tokenLimiter.hit(payload.token) {
            metrics?.recordLimited("capture_token")
            throw APIError.throttled(waitSeconds: wait)
        }
        _ = try await service.capture(payload)
        return .ok(.object(["status": 1]))
    }

    /// Capture v1 (PostHog's capture service): Bearer project token, a gzip, deflate (zlib) or zstd
    /// body, and an answer of per-event verdicts — `ok` for every event stored (or already
    /// stored: retries are idempotent per uuid), `drop` with details for an invalid one.
    @Sendable func captureV1(_ request: APIRequest) async throws -> APIResponse {
        let receivedAt = clock()
        guard let authorization = request.header("Authorization"), authorization.hasPrefix("Bearer "),
            case let token = authorization.dropFirst(7).trimmingCharacters(in: .whitespaces), !token.isEmpty
        else { throw CaptureParser.missingToken }
        var bytes = request.rawBody
        switch request.header("Content-Encoding")?.lowercased().trimmingCharacters(in: .whitespaces) {
        case nil, "", "identity": break
        case "gzip", "deflate": bytes = try gunzip(bytes)
        case "zstd": bytes = try inflate(bytes, with: Zstd.decompress)
        case let other?:
            throw APIError(
                status: 415, type: "invalid_request", code: "unsupported_media_type",
                detail: "Content-Encoding '\(other)' is not supported; send gzip, deflate, zstd or none.")
        }
        let parsed = try CaptureV1Parser.parse(
            try parseJSON(bytes), token: token, sdkInfo: request.header("PostHog-Sdk-Info"), receivedAt: receivedAt)
        if let tokenLimiter, let wait = tokenLimiter.hit(token) {
            metrics?.recordLimited("capture_token")
            throw APIError.throttled(waitSeconds: wait)
        }
        if let accepted = parsed.accepted {
            _ = try await service.capture(accepted)
        } else if try await !service.isKnownToken(token) {
            throw CaptureParser.invalidToken
        }
        var results = JSONObject()
        for (uuid, verdict) in parsed.verdicts {
            var entry: JSONObject = ["result": .string(verdict.result)]
            if let details = verdict.details { entry["details"] = .string(details) }
            results[uuid] = .object(entry)
        }
        return .ok(.object(["results": .object(results)]))
    }

    /// The JSON document of a capture request, whatever way it was sent.
    func decodeBody(_ request: APIRequest) throws(APIError) -> JSONValue {
        var bytes = request.rawBody
        var compression = request.query["compression"]
        if request.method == "GET" || bytes.isEmpty, let data = request.query["data"] {
            bytes = Array(data.utf8)
            return try parseData(bytes, compression: compression)
        }
        if request.header("Content-Encoding")?.lowercased().contains("gzip") == true || compression == "gzip-js"
            || Gzip.isGzip(bytes)
        {
            bytes = try gunzip(bytes)
            compression = nil
        }
        // curl and some SDKs label JSON as a form: a body that starts like JSON is JSON.
        let looksLikeJSON =
            bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }.map {
                $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[")
            } ?? false
        let isForm = !looksLikeJSON && (request.mediaType == "application/x-www-form-urlencoded" || bytes.starts(with: Array("data=".utf8)))
        if isForm {
            let form = QueryString(parsing: String(decoding: bytes, as: UTF8.self))
            guard let data = form["data"] else { throw CaptureParser.invalid("Malformed request data: the form has no 'data' field.") }
            return try parseData(Array(data.utf8), compression: form["compression"] ?? compression)
        }
        return try parseJSON(bytes)
    }

    /// A `data` value: JSON, or base64 of JSON (of gzip when `compression` is `gzip-js`).
    func parseData(_ bytes: [UInt8], compression: String?) throws(APIError) -> JSONValue {
        if let first = bytes.first(where: { $0 != 0x20 }), first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            return try parseJSON(bytes)
        }
        // Form decoding turns '+' into ' '; base64 never contains spaces.
        let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: " ", with: "+")
        guard
            let decoded = Data(base64Encoded: text, options: .ignoreUnknownCharacters) ?? Data(base64Encoded: text + "=")
                ?? Data(base64Encoded: text + "==")
        else { throw CaptureParser.invalid("Malformed request data: 'data' is neither JSON nor base64.") }
        var payload = Array(decoded)
        switch compression {
        case nil, "", "base64": break
        case "gzip-js", "gzip": payload = try gunzip(payload)
        case let other?:
            throw CaptureParser.invalid("Compression '\(other)' is not supported; send JSON, gzip or base64.")
        }
        return try parseJSON(payload)
    }

    func gunzip(_ bytes: [UInt8]) throws(APIError) -> [UInt8] { try inflate(bytes, with: Gzip.decompress) }

    /// A compressed body inflated up to the body limit: past it 413, invalid data 400.
    func inflate(
        _ bytes: [UInt8], with decompress: ([UInt8], Int) throws(DecompressionFailure) -> [UInt8]
    ) throws(APIError) -> [UInt8] {
        do {
            return try decompress(bytes, maximumBodySize)
        } catch .tooLarge {
            throw APIError.payloadTooLarge(limit: maximumBodySize)
        } catch {
            throw CaptureParser.invalid("Malformed request data: \(error.description).")
        }
    }

    func parseJSON(_ bytes: [UInt8]) throws(APIError) -> JSONValue {
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw CaptureParser.invalid("Malformed request data: invalid JSON (\(error.description)).")
        }
    }
}
