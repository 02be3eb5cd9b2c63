import AsyncHTTPClient
import Foundation
import HedgerowCore
import HedgerowS3
import HedgerowTransport
import NIOCore
import NIOHTTP1

/// BigQuery's REST API (v2), as much of it as exports use: datasets and tables, `jobs.query`
/// polled to completion, and load jobs fed through resumable uploads. Every error is a
/// `DestinationError`, classified as PostHog's BigQuery export does: quota, rate limits, backend
/// errors and the network are retried; refused credentials, missing datasets and invalid
/// statements fail the run.
struct BigQueryClient: Sendable {
    /// `https://bigquery.googleapis.com`, or `HEDGEROW_BIGQUERY_URL`; without a trailing slash.
    let baseURL: String
    let project: String
    let http: HTTPClient
    let token: @Sendable () async throws -> String

    var apiRoot: String { baseURL + "/bigquery/v2/projects/" + Self.escape(project) }
    var uploadRoot: String { baseURL + "/upload/bigquery/v2/projects/" + Self.escape(project) }

    static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~"))) ?? segment
    }

    /// A field of a table's schema.
    struct Field: Sendable, Equatable {
        var name: String
        var type: String
        var repeated = false

        var json: JSONValue {
            ["name": .string(name), "type": .string(type), "mode": repeated ? "REPEATED" : "NULLABLE"]
        }
    }

    struct Response {
        var status: Int
        var body: JSONValue
        var headers: HTTPHeaders
    }

    /// One request with the access token; non-2xx answers (other than `expecting`) become errors.
    func send(
        _ method: HTTPMethod, _ url: String, json: JSONValue? = nil, body: RequestBody? = nil, headers: [(String, String)] = [],
        expecting: Set<Int> = [], timeout: TimeAmount = .seconds(120)
    ) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer " + (try await token()))
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json; charset=UTF-8")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(json)))
        } else if let body {
            request.body = body.httpBody
        }
        let answer = try await RESTTransport(http: http).send(
            request, timeout: timeout, limit: 64 << 20,
            unreachable: { DestinationError(kind: .connectionError, message: "BigQuery: \($0)", retryable: true) },
            classify: {
                $0.isSuccess || $0.status == 308 || expecting.contains($0.status) ? nil : Self.error(status: $0.status, body: $0.json)
            })
        return Response(status: answer.status, body: answer.json, headers: answer.headers)
    }

    /// BigQuery's error envelope `{"error": {code, message, errors: [{reason}]}}` as a run error.
    static func error(status: Int, body: JSONValue) -> DestinationError {
        let envelope = body["error"]
        let reason = envelope?["errors"]?.arrayValue?.first?["reason"]?.stringValue ?? envelope?["status"]?.stringValue ?? ""
        let message = envelope?["message"]?.stringValue ?? "BigQuery answered \(status)"
        return error(reason: reason, message: message, status: status)
    }

    static let retryableReasons: Set<String> = [
        "backendError", "internalError", "rateLimitExceeded", "jobRateLimitExceeded", "quotaExceeded", "jobBackendError",
        "tableUnavailable",
    ]

    static func error(reason: String, message: String, status: Int? = nil) -> DestinationError {
        let retryable = retryableReasons.contains(reason) || status == 429 || (status ?? 0) >= 500
        let kind: DestinationError.Kind
        switch (status, reason) {
        case (401, _): kind = .unauthorized
        case (403, _) where !retryable: kind = .forbidden
        case (404, _), (_, "notFound"): kind = .notFound
        default: kind = retryable ? .bigQueryRetryableError : .bigQueryError
        }
        return DestinationError(kind: kind, message: message, retryable: retryable)
    }

    // MARK: Datasets and tables

    func tableURL(_ dataset: String, _ table: String) -> String {
        apiRoot + "/datasets/" + Self.escape(dataset) + "/tables/" + Self.escape(table)
    }

    /// Whether the dataset exists (a missing one fails the run: exports do not create datasets).
    func datasetExists(_ dataset: String) async throws -> Bool {
        try await send(.GET, apiRoot + "/datasets/" + Self.escape(dataset), expecting: [404]).status != 404
    }

    /// A table's schema fields; nil when the table does not exist.
    func tableFields(_ dataset: String, _ table: String) async throws -> [Field]? {
        let response = try await send(.GET, tableURL(dataset, table), expecting: [404])
        guard response.status != 404 else { return nil }
        return (response.body["schema"]?["fields"]?.arrayValue ?? []).compactMap { field in
            guard let name = field["name"]?.stringValue else { return nil }
            return Field(name: name, type: field["type"]?.stringValue ?? "STRING", repeated: field["mode"]?.stringValue == "REPEATED")
        }
    }

    /// Creates a table; one that exists already (another run created it first) is left as it is.
    func createTable(_ dataset: String, _ table: String, fields: [Field], partitionedBy: String? = nil) async throws {
        var resource: JSONObject = [
            "tableReference": ["projectId": .string(project), "datasetId": .string(dataset), "tableId": .string(table)],
            "schema": ["fields": .array(fields.map(\.json))],
        ]
        if let partitionedBy { resource["timePartitioning"] = ["type": "DAY", "field": .string(partitionedBy)] }
        _ = try await send(.POST, apiRoot + "/datasets/" + Self.escape(dataset) + "/tables", json: .object(resource), expecting: [409])
    }

    /// Deletes a table; one that is not there is fine.
    func deleteTable(_ dataset: String, _ table: String) async throws {
        _ = try await send(.DELETE, tableURL(dataset, table), expecting: [404])
    }

    // MARK: Queries

    /// Runs a GoogleSQL statement to its end; the number of rows a DML statement changed.
    @discardableResult
    func query(_ sql: String) async throws -> Int64 {
        var response = try await send(
            .POST, apiRoot + "/queries", json: ["query": .string(sql), "useLegacySql": false, "timeoutMs": 10_000],
            timeout: .seconds(300))
        var answer = response.body
        while answer["jobComplete"] != .bool(true) {
            guard let jobID = answer["jobReference"]?["jobId"]?.stringValue else {
                throw DestinationError(kind: .bigQueryError, message: "a query answered without a job reference", retryable: true)
            }
            var url = apiRoot + "/queries/" + Self.escape(jobID) + "?timeoutMs=10000"
            if let location = answer["jobReference"]?["location"]?.stringValue { url += "&location=" + Self.escape(location) }
            response = try await send(.GET, url, timeout: .seconds(300))
            answer = response.body
        }
        if let first = answer["errors"]?.arrayValue?.first {
            throw Self.error(
                reason: first["reason"]?.stringValue ?? "", message: first["message"]?.stringValue ?? "the statement failed")
        }
        if case .string(let rows)? = answer["numDmlAffectedRows"] { return Int64(rows) ?? 0 }
        return 0
    }

    /// The rows of a query's first page, each a list of its cells' values as text (tests, checks).
    func select(_ sql: String) async throws -> [[String?]] {
        let response = try await send(
            .POST, apiRoot + "/queries", json: ["query": .string(sql), "useLegacySql": false, "timeoutMs": 30_000],
            timeout: .seconds(120))
        if let first = response.body["errors"]?.arrayValue?.first {
            throw Self.error(reason: first["reason"]?.stringValue ?? "", message: first["message"]?.stringValue ?? "the query failed")
        }
        return (response.body["rows"]?.arrayValue ?? []).map { row in
            (row["f"]?.arrayValue ?? []).map { $0["v"]?.stringValue }
        }
    }

    // MARK: Load jobs

    /// Starts a load job into `table` through a resumable upload; the session URL to send the file to.
    func startLoad(dataset: String, table: String, fields: [Field], format: String = "PARQUET") async throws -> String {
        let job: JSONValue = [
            "configuration": [
                "load": [
                    "destinationTable": ["projectId": .string(project), "datasetId": .string(dataset), "tableId": .string(table)],
                    "sourceFormat": .string(format), "writeDisposition": "WRITE_APPEND", "createDisposition": "CREATE_NEVER",
                    "schema": ["fields": .array(fields.map(\.json))],
                ]
            ]
        ]
        let response = try await send(.POST, uploadRoot + "/jobs?uploadType=resumable", json: job)
        guard let location = response.headers.first(name: "Location"), !location.isEmpty else {
            throw DestinationError(kind: .bigQueryError, message: "a resumable upload started without a session URL", retryable: true)
        }
        // The session URL must stay on the checked host: this client's connections are pinned to it.
        guard Self.origin(of: location) == Self.origin(of: baseURL) else {
            throw DestinationError(
                kind: .destinationAddressRefused,
                message: "BigQuery sent the upload to another host (\(Self.origin(of: location) ?? "?"))",
                retryable: false)
        }
        return location
    }

    static func origin(of url: String) -> String? {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme, let host = parts.host else { return nil }
        return scheme.lowercased() + "://" + host.lowercased() + (parts.port.map { ":\($0)" } ?? "")
    }

    /// Sends `bytes` at `offset` of the upload; with `total`, the upload ends with them and the
    /// load job's resource is returned.
    func upload(_ body: RequestBody, to session: String, offset: Int, total: Int?) async throws -> JSONValue? {
        let range =
            body.count == 0
            ? "bytes */\(total.map(String.init) ?? "*")"
            : "bytes \(offset)-\(offset + body.count - 1)/\(total.map(String.init) ?? "*")"
        let response = try await send(.PUT, session, body: body, headers: [("Content-Range", range)], timeout: .seconds(600))
        return response.status == 308 ? nil : response.body
    }

    /// Waits for a job to be DONE; its error, if it has one, fails (or retries) the run.
    func waitForJob(_ job: JSONValue) async throws {
        var job = job
        while job["status"]?["state"]?.stringValue != "DONE" {
            guard let jobID = job["jobReference"]?["jobId"]?.stringValue else {
                throw DestinationError(kind: .bigQueryError, message: "a load job answered without a job reference", retryable: true)
            }
            try await Task.sleep(for: .milliseconds(500))
            var url = apiRoot + "/jobs/" + Self.escape(jobID)
            if let location = job["jobReference"]?["location"]?.stringValue { url += "?location=" + Self.escape(location) }
            job = try await send(.GET, url).body
        }
        if let failure = job["status"]?["errorResult"], !failure.isNull {
            throw Self.error(
                reason: failure["reason"]?.stringValue ?? "", message: failure["message"]?.stringValue ?? "the load job failed")
        }
    }
}
