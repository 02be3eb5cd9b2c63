/// The one error type of the API, rendered as PostHog's `{type, code, detail, attr}` body.
package struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    package var status: Int
    package var type: String
    package var code: String
    package var detail: String
    package var attr: String?
    /// Extra response headers (`Retry-After`, `WWW-Authenticate`).
    package var headers: [(String, String)]

    package init(status: Int, type: String, code: String, detail: String, attr: String? = nil, headers: [(String, String)] = []) {
        self.status = status
        self.type = type
        self.code = code
        self.detail = detail
        self.attr = attr
        self.headers = headers
    }

    package var description: String { "\(status) \(type)/\(code): \(detail)" + (attr.map { " (\($0))" } ?? "") }

    package static func == (lhs: APIError, rhs: APIError) -> Bool {
        lhs.status == rhs.status && lhs.type == rhs.type && lhs.code == rhs.code && lhs.detail == rhs.detail
            && lhs.attr == rhs.attr
    }

    // MARK: 400

    package static func validation(_ code: String, _ detail: String, attr: String?) -> APIError {
        APIError(status: 400, type: "validation_error", code: code, detail: detail, attr: attr)
    }

    /// A bare message error (DRF `ValidationError("...")`).
    package static func invalidInput(_ detail: String, attr: String? = nil) -> APIError {
        validation("invalid_input", detail, attr: attr)
    }

    package static func required(_ attr: String) -> APIError {
        validation("required", "This field is required.", attr: attr)
    }

    package static func blank(_ attr: String) -> APIError {
        validation("blank", "This field may not be blank.", attr: attr)
    }

    package static func null(_ attr: String) -> APIError {
        validation("null", "This field may not be null.", attr: attr)
    }

    package static func maxLength(_ attr: String, _ limit: Int) -> APIError {
        validation("max_length", "Ensure this field has no more than \(limit) characters.", attr: attr)
    }

    package static func invalidChoice(_ attr: String, _ value: String) -> APIError {
        validation("invalid_choice", "\"\(value)\" is not a valid choice.", attr: attr)
    }

    package static func invalid(_ attr: String?, _ detail: String) -> APIError {
        validation("invalid", detail, attr: attr)
    }

    static func doesNotExist(_ attr: String, pk: String) -> APIError {
        validation("does_not_exist", "Invalid pk \"\(pk)\" - object does not exist.", attr: attr)
    }

    package static func parseError(_ message: String) -> APIError {
        APIError(status: 400, type: "invalid_request", code: "parse_error", detail: "JSON parse error - \(message)")
    }

    // MARK: 401, 403

    package static let notAuthenticated = APIError(
        status: 401, type: "authentication_error", code: "not_authenticated",
        detail: "Authentication credentials were not provided.", headers: [("WWW-Authenticate", "Bearer")])

    package static func authenticationFailed(_ detail: String) -> APIError {
        APIError(
            status: 401, type: "authentication_error", code: "authentication_failed", detail: detail,
            headers: [("WWW-Authenticate", "Bearer")])
    }

    package static func permissionDenied(_ detail: String = "You do not have permission to perform this action.") -> APIError {
        APIError(status: 403, type: "authentication_error", code: "permission_denied", detail: detail)
    }

    package static func missingScope(_ scope: String) -> APIError {
        permissionDenied("API key missing required scope '\(scope)'")
    }

    // MARK: 404, 405, 413, 415, 429, 500

    package static func notFound(_ detail: String = "Not found.") -> APIError {
        APIError(status: 404, type: "invalid_request", code: "not_found", detail: detail)
    }

    package static func methodNotAllowed(_ method: String) -> APIError {
        APIError(status: 405, type: "invalid_request", code: "method_not_allowed", detail: "Method \"\(method)\" not allowed.")
    }

    package static func payloadTooLarge(limit: Int) -> APIError {
        APIError(
            status: 413, type: "invalid_request", code: "payload_too_large",
            detail: "Request body is larger than the limit of \(limit) bytes.")
    }

    /// The request's body did not arrive within the read timeout.
    package static let requestTimeout = APIError(
        status: 408, type: "invalid_request", code: "request_timeout", detail: "The request body did not arrive in time.")

    package static func unsupportedMediaType(_ mediaType: String) -> APIError {
        APIError(
            status: 415, type: "invalid_request", code: "unsupported_media_type",
            detail: "Unsupported media type \"\(mediaType)\" in request.")
    }

    package static func throttled(waitSeconds: Int) -> APIError {
        APIError(
            status: 429, type: "throttled_error", code: "throttled",
            detail: "Request was throttled. Expected available in \(waitSeconds) second\(waitSeconds == 1 ? "" : "s").",
            headers: [("Retry-After", String(waitSeconds))])
    }

    package static let serverError = APIError(
        status: 500, type: "server_error", code: "error", detail: "A server error occurred.")
}
