import AsyncHTTPClient
import CryptoExtras
import Foundation
import HedgerowCore
import HedgerowTransport
import NIOCore
import NIOHTTP1

/// A Google service account's key (the fields of its JSON key file that BigQuery exports take)
/// and the OAuth 2.0 flow that turns it into an access token: a JWT signed with the account's
/// RSA key (RS256), sent to `token_uri` as a `jwt-bearer` grant.
struct GoogleServiceAccount: Sendable {
    let clientEmail: String
    let privateKeyID: String
    let tokenURI: String
    let key: _RSA.Signing.PrivateKey

    static let bigQueryScope = "https://www.googleapis.com/auth/bigquery"

    /// The account of a configuration; a key that is not an RSA private key in PEM fails for good.
    init(clientEmail: String, privateKeyID: String, privateKey: String, tokenURI: String) throws(DestinationError) {
        self.clientEmail = clientEmail
        self.privateKeyID = privateKeyID
        self.tokenURI = tokenURI
        // Keys pasted from a JSON key file sometimes keep their newlines escaped.
        let pem = privateKey.contains("\\n") ? privateKey.replacingOccurrences(of: "\\n", with: "\n") : privateKey
        do {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw DestinationError(
                kind: .invalidPrivateKey, message: "'private_key' is not an RSA private key in PEM form", retryable: false)
        }
    }

    /// The signed assertion: header `{alg, typ, kid}`, claims `{iss, scope, aud, iat, exp}`,
    /// valid for an hour from `now` (the longest Google accepts).
    func assertion(scope: String = bigQueryScope, now: Date = Date()) throws(DestinationError) -> String {
        let issued = Int64(now.timeIntervalSince1970)
        let claims: JSONValue = [
            "iss": .string(clientEmail), "scope": .string(scope), "aud": .string(tokenURI), "iat": .int(issued),
            "exp": .int(issued + 3600),
        ]
        return try RS256JWT.sign(header: ["kid": .string(privateKeyID)], claims: claims, key: key)
    }

    var cacheKey: String { clientEmail + "\u{0}" + privateKeyID + "\u{0}" + tokenURI }

    /// An access token and when it stops being used (a minute before it expires).
    struct AccessToken: Sendable {
        let value: String
        let renewAt: Date
    }

    /// Exchanges a fresh assertion at `token_uri`. A refused grant (400/401/403: a revoked key, a
    /// wrong email) fails for good; 429, 5xx and network errors are retried.
    func requestToken(client: HTTPClient) async throws -> AccessToken {
        var request = HTTPClientRequest(url: tokenURI)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        let form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + (try assertion())
        request.body = .bytes(ByteBuffer(string: form))
        let response = try await RESTTransport(http: client).send(
            request, timeout: .seconds(30), limit: 1 << 20,
            unreachable: { DestinationError(kind: .connectionError, message: "the token endpoint: \($0)", retryable: true) })
        let code = response.status
        let answer = response.json
        guard response.isSuccess else {
            // OAuth errors name the problem in `error` / `error_description`; neither holds a secret.
            let detail = [answer["error"]?.stringValue, answer["error_description"]?.stringValue].compactMap { $0 }.joined(
                separator: ": ")
            let retryable = code == 429 || code >= 500
            throw DestinationError(
                kind: retryable ? .tokenEndpointUnavailable : .refreshError,
                message: "the token endpoint refused the service account (\(code))" + (detail.isEmpty ? "" : ": " + detail),
                retryable: retryable)
        }
        guard let token = answer["access_token"]?.stringValue, !token.isEmpty else {
            throw DestinationError(kind: .refreshError, message: "the token endpoint answered without an access_token", retryable: false)
        }
        var lifetime: Double = 3600
        if case .int(let seconds)? = answer["expires_in"] { lifetime = Double(seconds) }
        return AccessToken(value: token, renewAt: Date().addingTimeInterval(max(lifetime - 60, 0)))
    }
}

/// Access tokens by service account, kept until a minute before they expire, so that runs do not
/// sign and exchange a new assertion each time.
actor GoogleTokenCache {
    static let shared = GoogleTokenCache()
    private var tokens: [String: GoogleServiceAccount.AccessToken] = [:]

    func token(for account: GoogleServiceAccount, client: HTTPClient) async throws -> String {
        let key = account.cacheKey
        if let cached = tokens[key], cached.renewAt > Date() { return cached.value }
        let fresh = try await account.requestToken(client: client)
        tokens[key] = fresh
        return fresh.value
    }

    /// Forgets an account's token (BigQuery refused it: it may have been revoked).
    func forget(_ account: GoogleServiceAccount) {
        tokens[account.cacheKey] = nil
    }
}
