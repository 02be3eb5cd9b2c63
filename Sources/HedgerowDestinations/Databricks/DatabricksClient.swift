import AsyncHTTPClient
import Crypto
import Foundation
import HedgerowCore
import HedgerowTransport
import NIOCore
import NIOHTTP1

/// A Databricks workspace's REST APIs, as much of them as exports use: OAuth machine-to-machine
/// tokens (a service principal's client credentials at `/oidc/v1/token`), the SQL Statement
/// Execution API (`/api/2.0/sql/statements`, polled until the statement ends) and the Files API
/// (`/api/2.0/fs/files`, bodies streamed from disk). Every error is a `DestinationError`,
/// classified as PostHog's Databricks export does: missing permissions and a stopped or unknown
/// warehouse fail the run; the network, rate limits and the service's own errors are retried.
struct DatabricksClient: Sendable {
    /// `https://<server_hostname>`, or `HEDGEROW_DATABRICKS_URL`; without a trailing slash.
    let baseURL: String
    let clientID: String
    let clientSecret: String
    let warehouseID: String
    let http: HTTPClient
    /// How long one statement may take (PostHog's: an hour).
    var statementTimeout: Duration = .seconds(3600)

    // MARK: Tokens

    struct AccessToken: Sendable {
        var value: String
        var renewAt: Date
    }

    /// A token for the service principal, from the workspace's token endpoint.
    func requestToken() async throws -> AccessToken {
        var request = HTTPClientRequest(url: baseURL + "/oidc/v1/token")
        request.method = .POST
        let basic = Data((clientID + ":" + clientSecret).utf8).base64EncodedString()
        request.headers.add(name: "Authorization", value: "Basic " + basic)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: "grant_type=client_credentials&scope=all-apis"))
        let (status, body) = try await execute(request)
        guard (200..<300).contains(status), let token = body["access_token"]?.stringValue, !token.isEmpty else {
            let reason = body["error_description"]?.stringValue ?? body["error"]?.stringValue ?? "answered \(status)"
            throw DestinationError(
                kind: .databricksAuthenticationError,
                message: "the workspace refused the service principal's client credentials: \(reason)",
                retryable: status >= 500 || status == 429)
        }
        let lifetime: Double = if case .int(let seconds)? = body["expires_in"] { Double(seconds) } else { 3600 }
        return AccessToken(value: token, renewAt: Date().addingTimeInterval(max(lifetime - 60, 1)))
    }

    // MARK: Requests

    func execute(_ request: HTTPClientRequest, timeout: TimeAmount = .seconds(120)) async throws -> (Int, JSONValue) {
        let answer = try await RESTTransport(http: http).send(
            request, timeout: timeout, limit: 64 << 20,
            unreachable: { DestinationError(kind: .databricksConnectionError, message: "Databricks: \($0)", retryable: true) })
        return (answer.status, answer.json)
    }

    /// One API request with the bearer token; a non-2xx answer becomes an error.
    func send(
        _ method: HTTPMethod, _ path: String, token: String, json: JSONValue? = nil, body: HTTPClientRequest.Body? = nil,
        timeout: TimeAmount = .seconds(120)
    ) async throws -> JSONValue {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(json)))
        } else if let body {
            request.headers.add(name: "Content-Type", value: "application/octet-stream")
            request.body = body
        }
        let (status, parsed) = try await execute(request, timeout: timeout)
        guard (200..<300).contains(status) else {
            throw Self.error(
                code: parsed["error_code"]?.stringValue ?? "", message: parsed["message"]?.stringValue ?? "Databricks answered \(status)",
                status: status)
        }
        return parsed
    }

    /// PostHog's classes: no permission (403, `PERMISSION_DENIED`), a bad request, a missing
    /// resource or a stopped warehouse fail the run; anything else is tried again.
    static func error(code: String, message: String, status: Int?) -> DestinationError {
        if status == 401 || code == "UNAUTHENTICATED" {
            // The token endpoint issued the token a moment ago; the workspace refusing it now means it
            // was revoked or expired early. The destination forgets it and the run is tried again
            // with a new one (refused client credentials fail at the token endpoint instead).
            return DestinationError(kind: .databricksTokenRejected, message: message, retryable: true)
        }
        if status == 403 || code == "PERMISSION_DENIED" || message.contains("INSUFFICIENT_PERMISSIONS") {
            return DestinationError(kind: .databricksInsufficientPermissionsError, message: message, retryable: false)
        }
        if message.localizedCaseInsensitiveContains("warehouse") && message.localizedCaseInsensitiveContains("stopped") {
            return DestinationError(kind: .databricksWarehouseStoppedError, message: message, retryable: false)
        }
        if status == 429 || (status ?? 0) >= 500 || code == "TEMPORARILY_UNAVAILABLE" || code == "RESOURCE_EXHAUSTED" {
            return DestinationError(kind: .databricksServiceError, message: message, retryable: true)
        }
        if ["BAD_REQUEST", "INVALID_PARAMETER_VALUE", "NOT_FOUND", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE"].contains(code)
            || status == 400 || status == 404
        {
            return DestinationError(kind: .databricksStatementError, message: message, retryable: false)
        }
        return DestinationError(kind: .databricksError, message: code.isEmpty ? message : "\(code): \(message)", retryable: true)
    }

    // MARK: Statements

    /// A named parameter of a statement (`:name` in its text).
    struct Parameter: Sendable {
        var name: String
        var value: String?
        var type: String = "STRING"

        var json: JSONValue {
            ["name": .string(name), "value": value.map(JSONValue.string) ?? .null, "type": .string(type)]
        }
    }

    /// Runs a statement to its end (waiting in the request up to 10 s, then polling); its rows as text.
    @discardableResult
    func statement(
        _ sql: String, token: String, catalog: String? = nil, schema: String? = nil, parameters: [Parameter] = []
    ) async throws -> [[String?]] {
        var body: JSONObject = [
            "statement": .string(sql), "warehouse_id": .string(warehouseID), "wait_timeout": "10s", "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE", "format": "JSON_ARRAY",
        ]
        if let catalog { body["catalog"] = .string(catalog) }
        if let schema { body["schema"] = .string(schema) }
        if !parameters.isEmpty { body["parameters"] = .array(parameters.map(\.json)) }
        var answer = try await send(.POST, "/api/2.0/sql/statements", token: token, json: .object(body))
        let deadline = ContinuousClock.now + statementTimeout
        var delay = Duration.milliseconds(100)
        while true {
            let state = answer["status"]?["state"]?.stringValue ?? ""
            switch state {
            case "SUCCEEDED":
                return (answer["result"]?["data_array"]?.arrayValue ?? []).map { row in
                    (row.arrayValue ?? []).map { $0.stringValue ?? ($0.isNull ? nil : JSONWriter.string($0)) }
                }
            case "FAILED", "CANCELED", "CLOSED":
                let error = answer["status"]?["error"]
                throw Self.error(
                    code: error?["error_code"]?.stringValue ?? state,
                    message: error?["message"]?.stringValue ?? "the statement ended \(state)", status: nil)
            case "PENDING", "RUNNING":
                guard let id = answer["statement_id"]?.stringValue, !id.isEmpty else {
                    throw DestinationError(kind: .databricksError, message: "a running statement came without an id", retryable: true)
                }
                guard ContinuousClock.now < deadline else {
                    _ = try? await send(.POST, "/api/2.0/sql/statements/\(id)/cancel", token: token, json: .object([:]))
                    throw DestinationError(
                        kind: .databricksQueryTimeoutError, message: "a statement ran longer than \(statementTimeout)", retryable: false)
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
                answer = try await send(.GET, "/api/2.0/sql/statements/\(id)", token: token)
            default:
                throw DestinationError(
                    kind: .databricksError, message: "the statement API answered an unknown state '\(state)'", retryable: true)
            }
        }
    }

    // MARK: Files

    /// The Files API path of a file (each segment percent-encoded).
    static func filesPath(_ path: String) -> String {
        "/api/2.0/fs/files"
            + path.split(separator: "/", omittingEmptySubsequences: false).map {
                String($0).addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~")))
                    ?? String($0)
            }.joined(separator: "/")
    }

    /// Uploads a local file to `path` (a volume path), streamed from disk, replacing what is there.
    func upload(localPath: String, size: Int, to path: String, token: String) async throws {
        _ = try await send(
            .PUT, Self.filesPath(path) + "?overwrite=true", token: token,
            body: .stream(StageUpload.chunks(of: localPath), length: .known(Int64(size))), timeout: .seconds(600))
    }
}

/// Service principals' tokens, kept until a minute before they expire.
actor DatabricksTokenCache {
    static let shared = DatabricksTokenCache()
    private var tokens: [String: DatabricksClient.AccessToken] = [:]

    static func key(_ client: DatabricksClient) -> String {
        client.baseURL + "\u{0}" + client.clientID + "\u{0}" + SHA256.hash(data: Array(client.clientSecret.utf8)).description
    }

    /// Forgets a service principal's token (the workspace refused it).
    func forget(_ client: DatabricksClient) {
        tokens[Self.key(client)] = nil
    }

    func token(for client: DatabricksClient) async throws -> String {
        let key = Self.key(client)
        if let cached = tokens[key], cached.renewAt > Date() { return cached.value }
        let fresh = try await client.requestToken()
        tokens[key] = fresh
        return fresh.value
    }
}
