import AsyncHTTPClient
import Crypto
import Foundation
import HedgerowCore
import HedgerowS3
import HedgerowTransport
import NIOCore
import NIOHTTP1

/// An error Azure Blob Storage answered (its `x-ms-error-code` or XML `Code`), or one reaching it,
/// classified as PostHog's: a missing container or blob (`ResourceNotFoundError`, 404) and refused
/// credentials (`ClientAuthenticationError`, 401/403) fail the run; every other answer is tried again.
struct AzureBlobError: RetryableError, Equatable, CustomStringConvertible {
    var code: String
    var message: String
    var status: Int?
    var retryable: Bool

    var description: String { status.map { "\(code) (HTTP \($0)): \(message)" } ?? "\(code): \(message)" }

    /// PostHog's error class for the answer.
    var kind: String {
        switch status {
        case 404?: "ResourceNotFoundError"
        case 401?, 403?: "ClientAuthenticationError"
        default: code
        }
    }

    static func answered(status: Int, headers: HTTPHeaders, body: [UInt8]) -> AzureBlobError {
        let code = headers.first(name: "x-ms-error-code") ?? XMLScan.first("Code", in: body) ?? "HTTP\(status)"
        var message = XMLScan.first("Message", in: body) ?? "Azure Blob Storage answered \(status)"
        // Azure's messages end with the request id and time on new lines.
        if let line = message.split(separator: "\n").first { message = String(line) }
        return AzureBlobError(code: code, message: message, status: status, retryable: ![401, 403, 404].contains(status))
    }
}

/// Signs Azure Storage requests with Shared Key (the account key's HMAC-SHA256 over the request's
/// canonical form, as the Blob service computes it).
package struct AzureSharedKeySigner: Sendable {
    package let accountName: String
    let key: SymmetricKey

    /// nil when the key is not base64.
    package init?(accountName: String, accountKey: String) {
        guard let decoded = Data(base64Encoded: accountKey) else { return nil }
        self.accountName = accountName
        self.key = SymmetricKey(data: decoded)
    }

    /// The string the Blob service signs for a request: the verb, the standard headers (a zero
    /// Content-Length as empty), the `x-ms-` headers sorted, and the resource (`/account/path`,
    /// with the query's names lower-cased and sorted, values decoded).
    package func stringToSign(method: String, path: String, query: [(String, String)], headers: [(String, String)]) -> String {
        var lowered: [String: String] = [:]
        for (name, value) in headers where !value.isEmpty { lowered[name.lowercased()] = value }
        if lowered["content-length"] == "0" { lowered["content-length"] = nil }
        let standard = [
            "content-encoding", "content-language", "content-length", "content-md5", "content-type", "date", "if-modified-since",
            "if-match", "if-none-match", "if-unmodified-since", "range",
        ]
        var text = method + "\n" + standard.map { lowered[$0] ?? "" }.joined(separator: "\n") + "\n"
        for (name, value) in lowered.filter({ $0.key.hasPrefix("x-ms-") }).sorted(by: { $0.key < $1.key }) {
            text += name + ":" + value + "\n"
        }
        text += "/" + accountName + path
        for (name, value) in query.map({ ($0.0.lowercased(), $0.1) }).sorted(by: { $0.0 < $1.0 }) {
            text += "\n" + name + ":" + value
        }
        return text
    }

    /// The `Authorization` header's value.
    package func authorization(method: String, path: String, query: [(String, String)], headers: [(String, String)]) -> String {
        let text = stringToSign(method: method, path: path, query: query, headers: headers)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key)
        return "SharedKey \(accountName):" + Data(mac).base64EncodedString()
    }
}

/// Azure Blob Storage's REST API for a run's files: Put Blob, Put Block, Put Block List, Get Blob,
/// List Blobs, Delete Blob and Get Container Properties, authenticated with Shared Key or a SAS
/// token, retried with backoff on 5xx, 429 and network errors (as the S3 client).
struct AzureBlobClient: Sendable {
    enum Credential: Sendable {
        case sharedKey(AzureSharedKeySigner)
        /// The SAS token's query (`sv=…&sig=…`), added to every request.
        case sas(String)
    }

    /// `scheme://host[:port][/path]`, without a trailing slash.
    let endpoint: String
    /// The endpoint's parts, read once: `scheme://host[:port]`, its host, and its path (the
    /// account, on emulators that address it by path) without a trailing slash.
    let origin: String
    let host: String
    let basePath: String
    let container: String
    let credential: Credential
    var maximumAttempts = 4
    var timeout: TimeAmount = .seconds(120)
    let http: HTTPClient
    static let version = "2023-11-03"

    init(connectionString: AzureConnectionString, container: String, http: HTTPClient) throws(AzureBlobError) {
        if let key = connectionString.accountKey {
            guard let signer = AzureSharedKeySigner(accountName: connectionString.accountName, accountKey: key) else {
                throw AzureBlobError(code: "InvalidAccountKey", message: "the account key is not base64", status: nil, retryable: false)
            }
            credential = .sharedKey(signer)
        } else {
            var token = connectionString.sharedAccessSignature ?? ""
            if token.hasPrefix("?") { token.removeFirst() }
            credential = .sas(token)
        }
        endpoint = connectionString.blobEndpoint
        let components = URLComponents(string: endpoint)
        host = components?.host ?? ""
        origin = "\(components?.scheme ?? "https")://\(host)" + (components?.port.map { ":\($0)" } ?? "")
        let path = components?.percentEncodedPath ?? ""
        basePath = path.hasSuffix("/") ? String(path.dropLast()) : path
        self.container = container
        self.http = http
    }

    // MARK: Calls

    func putBlob(_ name: String, body: RequestBody, contentType: String) async throws(AzureBlobError) {
        _ = try await send(
            "PUT", blob: name, headers: [("x-ms-blob-type", "BlockBlob"), ("Content-Type", contentType)], body: body)
    }

    func putBlock(_ name: String, blockID: String, body: RequestBody) async throws(AzureBlobError) {
        _ = try await send("PUT", blob: name, query: [("comp", "block"), ("blockid", blockID)], body: body)
    }

    func putBlockList(_ name: String, blockIDs: [String], contentType: String) async throws(AzureBlobError) {
        let xml =
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>" + blockIDs.map { "<Latest>\($0)</Latest>" }.joined()
            + "</BlockList>"
        _ = try await send(
            "PUT", blob: name, query: [("comp", "blocklist")],
            headers: [("x-ms-blob-content-type", contentType), ("Content-Type", "application/xml")], body: .bytes(Array(xml.utf8)))
    }

    func getBlob(_ name: String) async throws(AzureBlobError) -> [UInt8] {
        try await send("GET", blob: name, limit: 1 << 30).body
    }

    func deleteBlob(_ name: String) async throws(AzureBlobError) {
        _ = try await send("DELETE", blob: name)
    }

    /// Fails with `ContainerNotFound` (404) when the container does not exist.
    func containerProperties() async throws(AzureBlobError) {
        _ = try await send("GET", blob: nil, query: [("restype", "container")])
    }

    /// Every blob whose name starts with `prefix`: its name and size, page by page.
    func listBlobs(prefix: String) async throws(AzureBlobError) -> [(name: String, size: Int)] {
        var found: [(name: String, size: Int)] = []
        var marker: String?
        repeat {
            var query = [("restype", "container"), ("comp", "list"), ("prefix", prefix)]
            if let marker { query.append(("marker", marker)) }
            let body = try await send("GET", blob: nil, query: query).body
            for blob in XMLScan.elements("Blob", in: body) {
                guard let name = XMLScan.first("Name", in: blob) else { continue }
                found.append((name, Int(XMLScan.first("Content-Length", in: blob) ?? "") ?? 0))
            }
            marker = XMLScan.first("NextMarker", in: body).flatMap { $0.isEmpty ? nil : $0 }
        } while marker != nil
        return found
    }

    // MARK: Requests

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// The request path of a blob (or of the container): the endpoint's own path, the container,
    /// and the name with each segment percent-encoded.
    func path(blob: String?) -> String {
        var path = basePath + "/" + SigV4Signer.encode(container)
        if let blob { path += "/" + SigV4Signer.encode(blob, keepSlash: true) }
        return path
    }

    func send(
        _ method: String, blob: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
        body: RequestBody = .bytes([]), limit: Int = 16 << 20
    ) async throws(AzureBlobError) -> Response {
        let answer = try await RESTTransport(http: http).send(
            attempts: maximumAttempts,
            cancelled: AzureBlobError(code: "Cancelled", message: "the request was cancelled", status: nil, retryable: true),
            timeout: timeout, limit: limit,
            unreachable: { [host = self.host] in
                AzureBlobError(code: "ConnectionError", message: "\(host): \($0)", status: nil, retryable: true)
            },
            classify: { $0.isSuccess ? nil : AzureBlobError.answered(status: $0.status, headers: $0.headers, body: $0.bytes) }
        ) { request(method, blob: blob, query: query, headers: headers, body: body) }
        return Response(status: answer.status, headers: answer.headers, body: answer.bytes)
    }

    static let dateFormat: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()

    /// One signed request (signed anew, with the current date, for each attempt).
    private func request(
        _ method: String, blob: String?, query: [(String, String)], headers: [(String, String)], body: RequestBody
    ) -> HTTPClientRequest {
        let path = path(blob: blob)
        var queryString = query.map { "\(SigV4Signer.encode($0.0))=\(SigV4Signer.encode($0.1))" }.joined(separator: "&")
        var all = headers + [("x-ms-date", Self.dateFormat.string(from: Date())), ("x-ms-version", Self.version)]
        if body.count > 0 || method == "PUT" { all.append(("Content-Length", String(body.count))) }
        switch credential {
        case .sharedKey(let signer):
            all.append(("Authorization", signer.authorization(method: method, path: path, query: query, headers: all)))
        case .sas(let token):
            queryString += (queryString.isEmpty ? "" : "&") + token
        }
        var request = HTTPClientRequest(url: origin + path + (queryString.isEmpty ? "" : "?" + queryString))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in all { request.headers.add(name: name, value: value) }
        if body.count > 0 || method == "PUT" { request.body = body.httpBody }
        return request
    }
}
