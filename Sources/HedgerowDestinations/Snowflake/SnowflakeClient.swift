import AsyncHTTPClient
import Crypto
import CryptoExtras
import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowTransport
import NIOCore
import NIOHTTP1

/// How a Snowflake user signs in: PostHog's `authentication_type` (`password` | `keypair`).
package enum SnowflakeCredentials: Sendable {
    case password(String)
    /// An RSA private key (PKCS#8 PEM, as PostHog takes it); the public half is registered on the user.
    case keyPair(_RSA.Signing.PrivateKey)

    /// The key of a PEM: PKCS#8 (or PKCS#1), or encrypted PKCS#8 with its passphrase.
    package static func keyPair(pem: String, passphrase: String?) throws(DestinationError) -> SnowflakeCredentials {
        func invalid(_ message: String) -> DestinationError {
            DestinationError(kind: .invalidPrivateKey, message: message, retryable: false)
        }
        do {
            if pem.contains("ENCRYPTED PRIVATE KEY") {
                guard let passphrase, !passphrase.isEmpty else {
                    throw invalid("the private key is encrypted: give its private_key_passphrase")
                }
                let der: [UInt8]
                do {
                    der = try EncryptedPrivateKey.decrypt(pem: pem, passphrase: passphrase)
                } catch {
                    throw invalid(error.message)
                }
                return .keyPair(try _RSA.Signing.PrivateKey(derRepresentation: der))
            }
            return .keyPair(try _RSA.Signing.PrivateKey(pemRepresentation: pem))
        } catch let error as DestinationError {
            throw error
        } catch {
            throw invalid("'private_key' is not an RSA private key in PEM form")
        }
    }
}

/// Snowflake's REST protocol as its drivers speak it: `/session/v1/login-request`, then
/// `/queries/v1/query-request` with positional bindings (answers polled while the query runs),
/// results read from JSON rowsets or from base64 Arrow IPC, and `/session?delete=true` at the end.
/// Errors are classified as PostHog's Snowflake export does: refused credentials, missing objects
/// and SQL errors fail the run; a suspended warehouse, 5xx, 429 and the network are retried.
struct SnowflakeClient: Sendable {
    /// `https://<account>.snowflakecomputing.com`, or `HEDGEROW_SNOWFLAKE_URL`; no trailing slash.
    let baseURL: String
    let http: HTTPClient

    struct Session: Sendable {
        let token: String
    }

    /// A statement's answer: its columns and its rows, every cell as text (as JSON rowsets are).
    struct Result: Sendable, Equatable {
        var columns: [String]
        var rows: [[String?]]
        var queryID: String?
    }

    /// A value bound to a `?` placeholder.
    enum Binding: Sendable {
        case text(String?)
        case integer(Int64?)
        case boolean(Bool?)

        var json: JSONValue {
            switch self {
            case .text(let value): ["type": "TEXT", "value": JSONValue(value)]
            case .integer(let value): ["type": "FIXED", "value": JSONValue(value.map(String.init))]
            case .boolean(let value): ["type": "BOOLEAN", "value": JSONValue(value.map { $0 ? "true" : "false" })]
            }
        }
    }

    /// The account locator of an account identifier (`xy12345.us-east-1` → `XY12345`), as
    /// Snowflake's key-pair JWT names it.
    static func accountLocator(_ account: String) -> String {
        let locator =
            account.contains(".global")
            ? account.split(separator: "-").first.map(String.init) : account.split(separator: ".").first.map(String.init)
        return (locator ?? account).uppercased()
    }

    /// The JWT of key-pair authentication: `iss` = `ACCOUNT.USER.SHA256:<base64 of the SHA-256 of
    /// the public key's DER>`, `sub` = `ACCOUNT.USER`, valid for an hour, signed RS256.
    static func keyPairToken(
        account: String, user: String, key: _RSA.Signing.PrivateKey, now: Date = Date()
    ) throws(DestinationError) -> String {
        let subject = accountLocator(account) + "." + user.uppercased()
        let fingerprint = "SHA256:" + Data(SHA256.hash(data: key.publicKey.derRepresentation)).base64EncodedString()
        let issued = Int64(now.timeIntervalSince1970)
        let claims: JSONValue = [
            "iss": .string(subject + "." + fingerprint), "sub": .string(subject), "iat": .int(issued), "exp": .int(issued + 3600),
        ]
        return try RS256JWT.sign(claims: claims, key: key)
    }

    /// Signs in; the session's token. `database`, `schema`, `warehouse` and `role` become the
    /// session's defaults.
    func login(
        account: String, user: String, credentials: SnowflakeCredentials, database: String?, schema: String?, warehouse: String?,
        role: String?
    ) async throws -> Session {
        var query = ["request_id=" + UUID().uuidString.lowercased()]
        for (name, value) in [("databaseName", database), ("schemaName", schema), ("warehouse", warehouse), ("roleName", role)] {
            if let value, !value.isEmpty { query.append(name + "=" + Self.escape(value)) }
        }
        var data: JSONObject = [
            "CLIENT_APP_ID": "Hedgerow", "CLIENT_APP_VERSION": "1.0", "ACCOUNT_NAME": .string(account), "LOGIN_NAME": .string(user),
            "CLIENT_ENVIRONMENT": ["APPLICATION": "Hedgerow"], "SESSION_PARAMETERS": ["AUTOCOMMIT": true],
        ]
        switch credentials {
        case .password(let password): data["PASSWORD"] = .string(password)
        case .keyPair(let key):
            data["AUTHENTICATOR"] = "SNOWFLAKE_JWT"
            data["TOKEN"] = .string(try Self.keyPairToken(account: account, user: user, key: key))
        }
        let answer = try await post("/session/v1/login-request?" + query.joined(separator: "&"), body: ["data": .object(data)], token: nil)
        guard let token = answer["data"]?["token"]?.stringValue, !token.isEmpty else {
            throw DestinationError(kind: .snowflakeError, message: "the login answered without a session token", retryable: true)
        }
        return Session(token: token)
    }

    /// Runs one statement to its end (polling while Snowflake reports it in progress).
    func query(_ sql: String, bindings: [Binding] = [], session: Session) async throws -> Result {
        var body: JSONObject = ["sqlText": .string(sql), "asyncExec": false, "sequenceId": 1]
        if !bindings.isEmpty {
            var bound = JSONObject()
            for (index, binding) in bindings.enumerated() { bound[String(index + 1)] = binding.json }
            body["bindings"] = .object(bound)
        }
        var answer = try await post(
            "/queries/v1/query-request?requestId=" + UUID().uuidString.lowercased(), body: .object(body), token: session.token)
        var polls = 0
        while ["333333", "333334"].contains(answer["code"]?.stringValue ?? "") {
            guard let path = answer["data"]?["getResultUrl"]?.stringValue, path.hasPrefix("/") else {
                throw DestinationError(kind: .snowflakeError, message: "a query in progress came without a result URL", retryable: true)
            }
            polls += 1
            try await Task.sleep(for: .milliseconds(min(200 * polls, 2000)))
            answer = try await send(.GET, path, body: nil, token: session.token)
        }
        return try Self.result(answer)
    }

    /// Runs a command whose answer is data rather than rows (`PUT`: the stage's upload details).
    func put(_ sql: String, session: Session) async throws -> JSONValue {
        let answer = try await post(
            "/queries/v1/query-request?requestId=" + UUID().uuidString.lowercased(),
            body: ["sqlText": .string(sql), "asyncExec": false, "sequenceId": 1], token: session.token)
        return answer["data"] ?? .null
    }

    /// Ends the session (best effort: an expired session ends anyway).
    func close(_ session: Session) async {
        _ = try? await post("/session?delete=true", body: [:], token: session.token)
    }

    static func result(_ answer: JSONValue) throws -> Result {
        let data = answer["data"]
        let columns = (data?["rowtype"]?.arrayValue ?? []).map { $0["name"]?.stringValue ?? "" }
        if let chunks = data?["chunks"]?.arrayValue, !chunks.isEmpty {
            throw DestinationError(
                kind: .snowflakeError, message: "a result too large for one answer (\(chunks.count) chunks) is not read by this server",
                retryable: false)
        }
        var rows: [[String?]] = []
        if data?["queryResultFormat"]?.stringValue == "arrow" {
            let text = data?["rowsetBase64"]?.stringValue ?? ""
            if !text.isEmpty {
                guard let bytes = Data(base64Encoded: text) else {
                    throw DestinationError(kind: .snowflakeError, message: "rowsetBase64 is not base64", retryable: false)
                }
                do {
                    rows = try ArrowIPCReader.read(Array(bytes)).rows
                } catch {
                    throw DestinationError(
                        kind: .snowflakeError, message: "the Arrow result could not be read: \(error)", retryable: false)
                }
            }
        } else {
            rows = (data?["rowset"]?.arrayValue ?? []).map { row in (row.arrayValue ?? []).map(\.stringValue) }
        }
        return Result(columns: columns, rows: rows, queryID: data?["queryId"]?.stringValue)
    }

    static func escape(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~"))) ?? value
    }

    func post(_ path: String, body: JSONValue, token: String?) async throws -> JSONValue {
        try await send(.POST, path, body: body, token: token)
    }

    func send(_ method: HTTPMethod, _ path: String, body: JSONValue?, token: String?) async throws -> JSONValue {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/snowflake")
        request.headers.add(name: "User-Agent", value: "Hedgerow/1.0")
        if let token { request.headers.add(name: "Authorization", value: "Snowflake Token=\"\(token)\"") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(body)))
        }
        let response = try await RESTTransport(http: http).send(
            request, timeout: .seconds(600), limit: 256 << 20,
            unreachable: { DestinationError(kind: .connectionError, message: "Snowflake: \($0)", retryable: true) })
        let status = response.status
        let answer = response.json
        if answer["success"] == .bool(true) { return answer }
        let code = answer["code"]?.stringValue ?? answer["data"]?["errorCode"]?.stringValue ?? ""
        if ["333333", "333334"].contains(code) { return answer }
        let message = answer["message"]?.stringValue ?? "Snowflake answered \(status)"
        throw Self.error(code: code, message: message, status: status)
    }

    /// PostHog's classification: authentication (390xxx), missing or unauthorised objects (002003,
    /// 002043) and SQL errors fail the run; a suspended warehouse (000606, 000608), expired
    /// sessions, 429 and 5xx are retried.
    static func error(code: String, message: String, status: Int) -> DestinationError {
        let retryableCodes: Set<String> = ["000606", "000608", "390112", "390114", "000625"]
        let authentication: Set<String> = ["390100", "390144", "390102", "390101", "390103", "390104"]
        let retryable = retryableCodes.contains(code) || (!authentication.contains(code) && (status == 429 || status >= 500))
        let kind: DestinationError.Kind
        switch code {
        case _ where authentication.contains(code): kind = .snowflakeAuthenticationError
        case "002003", "002043": kind = .snowflakeObjectNotFound
        case "003001": kind = .snowflakePermissionsError
        case "000606", "000608": kind = .snowflakeWarehouseSuspended
        default: kind = retryable ? .snowflakeRetryableError : .snowflakeError
        }
        return DestinationError(kind: kind, message: code.isEmpty ? message : "\(code): \(message)", retryable: retryable)
    }
}
