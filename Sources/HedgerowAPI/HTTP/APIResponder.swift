import HTTPTypes
import HedgerowCore
import Hummingbird
import Logging
import NIOCore

/// The one responder of the server: routes, authenticates, checks scopes, throttles, calls the
/// controller, and renders every error in PostHog's format. Anything that is not an `APIError` is
/// logged and becomes PostHog's 500 body.
struct APIResponder: HTTPResponder {
    typealias Context = HedgerowRequestContext

    let routes: Routes
    let authentication: AuthenticationService
    /// Console sessions: a request without a personal API key may present the session cookie.
    var signIn: SignInService? = nil
    let rateLimiter: RateLimiter?
    /// Failed authentications (invalid personal API keys or project tokens) per client address:
    /// past the limit, that address's further failures are answered 429 instead of 401 until it
    /// slows down; valid credentials from the same address keep working.
    var authenticationFailures: WindowLimiter? = nil
    /// How the client address is found (trusted reverse proxies).
    var clientAddress = ClientAddress()
    let siteURL: String?
    /// The largest body of a capture route (those open to browsers), and of every other route.
    let maximumBodySize: Int
    var maximumAPIBodySize = 1024 * 1024
    /// How long a request's body may take to arrive.
    var readTimeout: Duration = .seconds(30)
    let logger: Logger
    let metrics: RequestMetrics

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    func respond(to request: Request, context: Context) async throws -> Response {
        let start = ContinuousClock.now
        let method = request.method.rawValue
        let path = request.uri.path
        var response: APIResponse
        let match = routes.match(path: path)
        let address = clientAddress.resolve(peer: context.clientAddress, forwardedFor: request.headers[values: Self.forwardedFor])
        let client = address ?? "unknown"
        do {
            response = try await handle(
                request, match: match, method: method, path: path, client: address,
                readDeadline: { context.readDeadline(after: $0) })
        } catch let error as APIError {
            if error.status == 413 { context.stopReading() }
            if error.status == 401, error.code != "not_authenticated", let authenticationFailures,
                let wait = authenticationFailures.hit(client)
            {
                // Past the limit, a failure is answered 429: guessing slows down, valid keys are unaffected.
                metrics.recordLimited("authentication_failures")
                response = .error(.throttled(waitSeconds: wait))
            } else {
                response = .error(error)
            }
        } catch {
            // Only the error's type and description: request values (keys, bodies) are never logged.
            logger.error("Unhandled error", metadata: ["method": "\(method)", "path": "\(path)", "error": "\(String(reflecting: error))"])
            response = .error(.serverError)
        }
        if match?.route.cors == true {
            // Browser SDKs post from any site; the answer names the caller's origin.
            let origin = request.headers[values: HTTPField.Name("Origin")!].first
            response.headers.append(("Access-Control-Allow-Origin", origin ?? "*"))
            if origin != nil {
                response.headers.append(("Access-Control-Allow-Credentials", "true"))
                response.headers.append(("Vary", "Origin"))
            }
        }
        let elapsed = ContinuousClock.now - start
        metrics.record(
            method: method, route: match?.route.pattern ?? "unmatched", status: response.status,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        logger.info(
            "request",
            metadata: [
                "method": "\(method)", "path": "\(path)", "status": "\(response.status)", "client": "\(client)",
                "ms": "\(Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000 + Double(elapsed.components.seconds) * 1000)",
            ])
        return encode(response, head: request.method == .head)
    }

    func handle(
        _ request: Request, match: Routes.Match?, method: String, path: String, client: String?,
        readDeadline: (Duration) -> ReadDeadline
    ) async throws -> APIResponse {
        guard let match else { throw APIError.notFound() }
        // Capture takes large batches from anyone with a project token; every other route takes a
        // small body. A declared length over the limit is refused before a byte of the body is
        // read; a body without one (chunked) is refused as soon as what arrived passes the limit.
        let limit = match.route.cors ? maximumBodySize : maximumAPIBodySize
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw APIError.payloadTooLarge(limit: limit)
        }
        var headers: [(name: String, value: String)] = []
        for field in request.headers { headers.append((name: field.name.rawName, value: field.value)) }
        var apiRequest = APIRequest(
            method: method, path: path, query: QueryString(parsing: request.uri.query), headers: headers,
            parameters: match.parameters, rawBody: [], contentType: request.headers[.contentType], principal: nil,
            baseURL: siteURL ?? "http://" + (hostHeader(request) ?? request.head.authority ?? "localhost"), clientAddress: client)
        // A key in the Authorization header is checked before the body is read: a wrong key costs
        // the server no body.
        if match.route.authenticated, let (value, source) = try AuthenticationService.findKey(in: apiRequest) {
            apiRequest.principal = try await authentication.authenticate(value: value, source: source)
        }
        apiRequest.rawBody = try await readBody(request, limit: limit, deadline: readDeadline(readTimeout))

        if match.route.authenticated, apiRequest.principal == nil {
            if let (value, source) = try AuthenticationService.findKey(in: apiRequest) {
                apiRequest.principal = try await authentication.authenticate(value: value, source: source)
            } else if let signIn, let token = SignInService.cookie(SignInService.cookieName, in: headers),
                let session = try await signIn.session(token: token)
            {
                // A session's unsafe requests repeat its CSRF token in a header (Django's rule).
                if !["GET", "HEAD", "OPTIONS"].contains(method) {
                    guard let sent = apiRequest.header(SignInService.csrfHeader), !sent.isEmpty else {
                        throw APIError.permissionDenied("CSRF Failed: CSRF token missing.")
                    }
                    guard ConstantTime.equal(Array(sent.utf8), Array(session.csrfToken.utf8)) else {
                        throw APIError.permissionDenied("CSRF Failed: CSRF token incorrect.")
                    }
                }
                apiRequest.principal = .session(session.user)
            } else {
                throw APIError.notAuthenticated
            }
        }
        let lookup = method == "HEAD" ? "GET" : method
        guard let endpoint = match.route.endpoints[lookup] else { throw APIError.methodNotAllowed(method) }
        if let principal = apiRequest.principal, let scope = endpoint.scope {
            try principal.check(scope, teamBasedRoute: match.route.teamBased)
            if let rateLimiter {
                do {
                    try await rateLimiter.check(key: principal.rateLimitKey)
                } catch {
                    metrics.recordLimited("api_key")
                    throw error
                }
            }
        }
        return try await endpoint.handler(apiRequest)
    }

    /// The request's body, at most `limit` bytes, arriving before `deadline` (else 408: the
    /// connection stopped reading at the deadline, so a client trickling a body holds no memory past it).
    func readBody(_ request: Request, limit: Int, deadline: ReadDeadline) async throws -> [UInt8] {
        defer { deadline.cancel() }
        let body: [UInt8]
        do {
            body = Array(try await request.body.collect(upTo: limit).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError.payloadTooLarge(limit: limit)
        } catch  where deadline.passed {
            throw APIError.requestTimeout
        }
        if deadline.passed { throw APIError.requestTimeout }
        return body
    }

    /// The Host header when HTTP/1 parsing left it among the fields rather than in `authority`.
    func hostHeader(_ request: Request) -> String? {
        HTTPField.Name("Host").flatMap { request.headers[$0] }
    }

    func encode(_ response: APIResponse, head: Bool) -> Response {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        if let text = response.text {
            let bytes = Array(text.utf8)
            fields[.contentLength] = String(bytes.count)
            return Response(
                status: .init(code: response.status), headers: fields, body: head ? .init() : .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        let bytes: [UInt8]
        if let encoded = response.encodedJSON {
            bytes = encoded
        } else if let json = response.json, response.status != 204 {
            bytes = JSONWriter.bytes(json)
        } else {
            return Response(status: .init(code: response.status), headers: fields, body: .init())
        }
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(bytes.count)
        return Response(
            status: .init(code: response.status), headers: fields,
            body: head ? .init() : .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
