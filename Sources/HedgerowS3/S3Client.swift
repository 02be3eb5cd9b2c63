import AsyncHTTPClient
import Foundation
import HedgerowTransport
import NIOCore
import NIOHTTP1

/// Where a bucket is reached: AWS's regional endpoint, or `endpoint_url` for S3-compatible stores;
/// path-style (`host/bucket/key`) or virtual-hosted (`bucket.host/key`) addressing.
package struct S3Endpoint: Sendable, Equatable {
    package var secure: Bool
    package var host: String
    package var port: Int?
    package var virtualHosted: Bool

    package init(secure: Bool, host: String, port: Int? = nil, virtualHosted: Bool) {
        self.secure = secure
        self.host = host
        self.port = port
        self.virtualHosted = virtualHosted
    }

    package static func aws(region: String, virtualHosted: Bool) -> S3Endpoint {
        S3Endpoint(secure: true, host: "s3.\(region).amazonaws.com", virtualHosted: virtualHosted)
    }

    /// `http(s)://host[:port]` (a path, if any, is not allowed).
    package static func parse(_ url: String, virtualHosted: Bool) -> S3Endpoint? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty, components.path.isEmpty || components.path == "/"
        else { return nil }
        return S3Endpoint(secure: scheme == "https", host: host, port: components.port, virtualHosted: virtualHosted)
    }

    /// The Host header: the port only when it is not the scheme's default.
    func authority(bucket: String) -> String {
        let name = virtualHosted ? "\(bucket).\(host)" : host
        guard let port, port != (secure ? 443 : 80) else { return name }
        return "\(name):\(port)"
    }
}

/// An object a listing returned.
package struct S3Object: Sendable, Equatable {
    package var key: String
    package var size: Int64
    package var etag: String
}

/// A multipart upload begun and neither completed nor aborted.
package struct S3MultipartUpload: Sendable, Equatable {
    package var key: String
    package var uploadID: String
    package init(key: String, uploadID: String) {
        self.key = key
        self.uploadID = uploadID
    }
}

/// A small S3 client: the calls an export needs (PutObject, multipart uploads and their listing, ListObjectsV2,
/// DeleteObject, HeadBucket, GetObject, CreateBucket), signed with SigV4, retried with backoff on
/// 5xx, 429 and network errors.
package struct S3Client: Sendable {
    package var endpoint: S3Endpoint
    package var bucket: String
    package var signer: SigV4Signer?
    package var maximumAttempts: Int
    package var timeout: TimeAmount
    let http: HTTPClient

    /// `credentials` nil sends anonymous requests.
    package init(
        endpoint: S3Endpoint, region: String, bucket: String, credentials: S3Credentials?, maximumAttempts: Int = 4,
        timeout: TimeAmount = .seconds(120), http: HTTPClient = S3Client.sharedHTTPClient
    ) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.signer = credentials.map { SigV4Signer(credentials: $0, region: region) }
        self.maximumAttempts = max(1, maximumAttempts)
        self.timeout = timeout
        self.http = http
    }

    /// The same client sending through `http` (an HTTP client pinned to the checked address of
    /// `connectionHost`, as destinations make them).
    package func using(_ http: HTTPClient) -> S3Client {
        var copy = S3Client(
            endpoint: endpoint, region: "", bucket: bucket, credentials: nil, maximumAttempts: maximumAttempts, timeout: timeout, http: http
        )
        copy.signer = signer
        return copy
    }

    /// The host name requests connect to: `bucket.host` when virtual-hosted.
    package var connectionHost: String { endpoint.virtualHosted ? "\(bucket).\(endpoint.host)" : endpoint.host }

    /// The process's HTTP client for S3: a refused connection fails the attempt at once (the
    /// client's own retries decide what happens next) instead of being retried until the deadline.
    package static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(120))
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    package struct Response: Sendable {
        package var status: Int
        package var headers: HTTPHeaders
        package var body: [UInt8]
    }

    // MARK: Calls

    package func putObject(_ key: String, body: [UInt8], headers: [(String, String)] = []) async throws(S3Error) {
        try await putObject(key, body: .bytes(body), headers: headers)
    }

    package func putObject(_ key: String, body: RequestBody, headers: [(String, String)] = []) async throws(S3Error) {
        _ = try await send("PUT", key: key, headers: headers, body: body)
    }

    package func getObject(_ key: String) async throws(S3Error) -> [UInt8] {
        try await send("GET", key: key, limit: 1 << 30).body
    }

    package func deleteObject(_ key: String) async throws(S3Error) {
        _ = try await send("DELETE", key: key)
    }

    package func headBucket() async throws(S3Error) {
        _ = try await send("HEAD", key: nil)
    }

    package func createBucket() async throws(S3Error) {
        _ = try await send("PUT", key: nil)
    }

    package func createMultipartUpload(_ key: String, headers: [(String, String)] = []) async throws(S3Error) -> String {
        let response = try await send("POST", key: key, query: [("uploads", "")], headers: headers)
        guard let id = XMLScan.first("UploadId", in: response.body) else {
            throw S3Error(
                code: "InvalidResponse", message: "CreateMultipartUpload answered no UploadId", status: response.status, retryable: true)
        }
        return id
    }

    /// Uploads one part; its ETag.
    package func uploadPart(_ key: String, uploadID: String, partNumber: Int, body: [UInt8]) async throws(S3Error) -> String {
        try await uploadPart(key, uploadID: uploadID, partNumber: partNumber, body: .bytes(body))
    }

    /// Uploads one part, from memory or from its spool file; its ETag.
    package func uploadPart(_ key: String, uploadID: String, partNumber: Int, body: RequestBody) async throws(S3Error) -> String {
        let response = try await send("PUT", key: key, query: [("partNumber", String(partNumber)), ("uploadId", uploadID)], body: body)
        guard let etag = response.headers.first(name: "ETag") else {
            throw S3Error(code: "InvalidResponse", message: "UploadPart answered no ETag", status: response.status, retryable: true)
        }
        return etag
    }

    package func completeMultipartUpload(_ key: String, uploadID: String, etags: [String]) async throws(S3Error) {
        var xml = "<CompleteMultipartUpload>"
        for (index, etag) in etags.enumerated() {
            xml += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(XMLScan.escape(etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let response = try await send("POST", key: key, query: [("uploadId", uploadID)], body: .bytes(Array(xml.utf8)))
        // S3 may answer 200 and put the error in the body.
        if XMLScan.first("Error", in: response.body) != nil || response.body.starts(with: Array("<Error>".utf8)) {
            throw S3Error.answered(status: 500, body: response.body)
        }
    }

    package func abortMultipartUpload(_ key: String, uploadID: String) async throws(S3Error) {
        _ = try await send("DELETE", key: key, query: [("uploadId", uploadID)])
    }

    /// Every multipart upload in progress under `prefix` (ListMultipartUploads), following the markers.
    package func listMultipartUploads(prefix: String) async throws(S3Error) -> [S3MultipartUpload] {
        var uploads: [S3MultipartUpload] = []
        var markers: (key: String, uploadID: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadID)] }
            let response = try await send("GET", key: nil, query: query)
            for element in XMLScan.elements("Upload", in: response.body) {
                guard let key = XMLScan.first("Key", in: element), let id = XMLScan.first("UploadId", in: element) else { continue }
                uploads.append(S3MultipartUpload(key: key, uploadID: id))
            }
            markers = nil
            if XMLScan.first("IsTruncated", in: response.body) == "true", let key = XMLScan.first("NextKeyMarker", in: response.body),
                let id = XMLScan.first("NextUploadIdMarker", in: response.body)
            {
                markers = (key, id)
            }
        } while markers != nil
        return uploads
    }

    /// Every object under `prefix`, following continuation tokens.
    package func listObjects(prefix: String) async throws(S3Error) -> [S3Object] {
        var objects: [S3Object] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let response = try await send("GET", key: nil, query: query)
            for element in XMLScan.elements("Contents", in: response.body) {
                guard let key = XMLScan.first("Key", in: element) else { continue }
                objects.append(
                    S3Object(
                        key: key, size: Int64(XMLScan.first("Size", in: element) ?? "") ?? 0, etag: XMLScan.first("ETag", in: element) ?? ""
                    ))
            }
            token =
                XMLScan.first("IsTruncated", in: response.body) == "true" ? XMLScan.first("NextContinuationToken", in: response.body) : nil
        } while token != nil
        return objects
    }

    // MARK: Requests

    /// Sends one request, retrying 5xx, 429 and network errors with exponential backoff
    /// (0.25 s, 0.5 s, 1 s, …); any other error answer is thrown at once.
    package func send(
        _ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
        body: RequestBody = .bytes([]), limit: Int = 16 << 20
    ) async throws(S3Error) -> Response {
        let host = endpoint.authority(bucket: bucket)
        let answer = try await RESTTransport(http: http).send(
            attempts: maximumAttempts,
            cancelled: S3Error(code: "Cancelled", message: "the request was cancelled", status: nil, retryable: true),
            timeout: timeout, limit: limit,
            unreachable: { S3Error(code: "ConnectionError", message: "\(host): \($0)", status: nil, retryable: true) },
            classify: { $0.isSuccess ? nil : S3Error.answered(status: $0.status, body: $0.bytes) }
        ) { request(method, key: key, query: query, headers: headers, body: body) }
        return Response(status: answer.status, headers: answer.headers, body: answer.bytes)
    }

    /// The URL of an object (or of the bucket, `key` nil).
    package func url(for key: String?) -> String {
        (endpoint.secure ? "https://" : "http://") + endpoint.authority(bucket: bucket) + path(for: key)
    }

    func path(for key: String?) -> String {
        var path = endpoint.virtualHosted ? "" : "/" + SigV4Signer.encode(bucket)
        if let key {
            path += "/" + SigV4Signer.encode(key, keepSlash: true)
        } else if endpoint.virtualHosted {
            path = "/"
        }
        return path
    }

    /// One signed request (signed anew for each attempt).
    private func request(
        _ method: String, key: String?, query: [(String, String)], headers: [(String, String)], body: RequestBody
    ) -> HTTPClientRequest {
        let host = endpoint.authority(bucket: bucket)
        let path = path(for: key)
        let queryString = query.map {
            $0.1.isEmpty && $0.0 == "uploads" ? "uploads" : "\(SigV4Signer.encode($0.0))=\(SigV4Signer.encode($0.1))"
        }
        .joined(separator: "&")
        var request = HTTPClientRequest(url: url(for: key) + (query.isEmpty ? "" : "?" + queryString))
        request.method = HTTPMethod(rawValue: method)
        var all = headers
        if let signer {
            all += signer.sign(
                method: method, host: host, path: path, query: query, headers: headers, payloadSHA256: body.sha256Hex,
                date: Date())
        }
        for (name, value) in all { request.headers.add(name: name, value: value) }
        if body.count > 0 || method == "PUT" || method == "POST" {
            request.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
            request.body = body.httpBody
        }
        return request
    }
}
