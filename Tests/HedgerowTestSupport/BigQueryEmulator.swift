import CryptoExtras
import Foundation
import HedgerowCore
import Hummingbird
import HummingbirdTesting
import NIOCore

/// The tests' BigQuery: bqemulator (`scripts/bigquery-test-server`, which scripts/test starts), Google's
/// official Python client to read it back with, and a token endpoint that checks each
/// service-account JWT's RS256 signature with the public half of `key` before it issues a token.
package enum BigQueryEmulator {
    package static let url = ProcessInfo.processInfo.environment["HEDGEROW_TEST_BIGQUERY_URL"]

    static func python() throws -> String {
        try required(ProcessInfo.processInfo.environment["HEDGEROW_TEST_BIGQUERY_PYTHON"])
    }

    static func required(_ value: String?) throws -> String {
        guard let value, !value.isEmpty else {
            throw ReferenceTools.Failure(
                "HEDGEROW_TEST_BIGQUERY_URL and HEDGEROW_TEST_BIGQUERY_PYTHON must be set (scripts/test sets them)")
        }
        return value
    }

    package static let project = "test-project"
    package static let email = "exports@test-project.iam.gserviceaccount.com"
    package static let keyID = "key-1"
    /// The service account's key (the token endpoint knows its public half).
    package static let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    /// Issues tokens for assertions signed with `key` by `email` for `aud` = its own URL.
    package actor TokenEndpoint {
        package private(set) var issued = 0
        package private(set) var refusals: [String] = []
        func issue() { issued += 1 }
        func refuse(_ reason: String) { refusals.append(reason) }
    }

    package static func withTokenEndpoint(_ body: @Sendable (TokenEndpoint, String) async throws -> Void) async throws {
        let endpoint = TokenEndpoint()
        let router = Router()
        let port = ManagedPort()
        router.post("/token") { request, _ -> Response in
            let form = String(buffer: try await request.body.collect(upTo: 1 << 20))
            let fields = Dictionary(
                form.split(separator: "&").map { pair in
                    let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                    return (parts[0], parts.count > 1 ? parts[1] : "")
                }, uniquingKeysWith: { $1 })
            if let reason = Self.refusal(fields, audience: "http://127.0.0.1:\(port.value)/token") {
                await endpoint.refuse(reason)
                return Response(
                    status: .badRequest, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"error":"invalid_grant","error_description":"\#(reason)"}"#)))
            }
            await endpoint.issue()
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"access_token":"ya29.test","expires_in":3600,"token_type":"Bearer"}"#)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            guard let value = client.port else { throw ReferenceTools.Failure("the token endpoint has no port") }
            port.value = value
            try await body(endpoint, "http://127.0.0.1:\(value)/token")
        }
    }

    /// Why an assertion is refused; nil when it is a valid grant.
    package static func refusal(_ fields: [String: String], audience: String) -> String? {
        guard fields["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", let assertion = fields["assertion"] else {
            return "not a jwt-bearer grant"
        }
        let parts = assertion.split(separator: ".").map(String.init)
        guard parts.count == 3, let header = decode(parts[0]), let claims = decode(parts[1]), let signature = bytes(parts[2]) else {
            return "not a JWT"
        }
        guard header["alg"] == "RS256", header["kid"] == .string(keyID) else { return "wrong header" }
        guard
            key.publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: Data((parts[0] + "." + parts[1]).utf8),
                padding: .insecurePKCS1v1_5)
        else { return "bad signature" }
        guard claims["iss"] == .string(email), claims["aud"] == .string(audience),
            claims["scope"] == .string("https://www.googleapis.com/auth/bigquery")
        else { return "wrong claims" }
        let now = Int64(Date().timeIntervalSince1970)
        guard case .int(let iat)? = claims["iat"], case .int(let exp)? = claims["exp"], iat <= now + 5, exp > now, exp - iat <= 3600
        else { return "expired" }
        return nil
    }

    package static func bytes(_ base64URL: String) -> [UInt8]? {
        var text = base64URL.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map(Array.init)
    }

    package static func decode(_ part: String) -> JSONValue? { bytes(part).flatMap { try? JSONParser.parse($0) } }

    /// Runs a program with Google's BigQuery client (`client`, on the emulator) and returns its
    /// JSON output.
    package static func official(_ program: String, url: String? = BigQueryEmulator.url) throws -> JSONValue {
        let script = """
            import json, sys
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import bigquery
            client = bigquery.Client(project="\(project)", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=sys.argv[1]))
            def out(value): print(json.dumps(value, default=str))
            \(program)
            """
        let output = try ChildProcess.run(try python(), ["-c", script, try required(url)])
        guard output.status == 0 else {
            throw ReferenceTools.Failure("the BigQuery client failed: \(String(decoding: output.stderr, as: UTF8.self))")
        }
        return try JSONParser.parse(Array(output.stdout))
    }

    package static func makeDataset(url: String? = BigQueryEmulator.url) throws -> String {
        let dataset = "hedgerow_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        _ = try official("client.create_dataset(\"\(dataset)\"); out(True)", url: url)
        return dataset
    }

    package static func rows(_ dataset: String, _ table: String, order: String) throws -> [JSONValue] {
        try official(
            "out([dict(row.items()) for row in client.query(\"SELECT * FROM `\(project).\(dataset).\(table)` ORDER BY \(order)\").result()])"
        ).arrayValue ?? []
    }

    package static func tables(_ dataset: String) throws -> [String] {
        (try official("out(sorted(t.table_id for t in client.list_tables(\"\(dataset)\")))").arrayValue ?? []).compactMap(\.stringValue)
    }

    /// A test export's configuration: this account, a dataset of the emulator.
    package static func config(dataset: String, table: String = "events", tokenURI: String, privateKey: String? = nil) -> JSONObject {
        [
            "project_id": .string(project), "dataset_id": .string(dataset), "table_id": .string(table),
            "private_key": .string(privateKey ?? key.pkcs8PEMRepresentation), "private_key_id": .string(keyID),
            "client_email": .string(email), "token_uri": .string(tokenURI),
        ]
    }
}

/// A value set once the server it describes is listening (read by its own handlers afterwards).
package final class ManagedPort: @unchecked Sendable {
    // Safe: written before the first request is sent, read only by request handlers.
    private let lock = NSLock()
    private var port = 0
    package init() {}
    package var value: Int {
        get { lock.withLock { port } }
        set { lock.withLock { port = newValue } }
    }
}
