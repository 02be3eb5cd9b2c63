import Foundation
import HedgerowCore

/// What a controller sees of a request: already routed, authenticated and size-checked.
package struct APIRequest: Sendable {
    package var method: String
    package var path: String
    package var query: QueryString
    package var headers: [(name: String, value: String)]
    /// Path parameters by name.
    package var parameters: [String: String]
    package var rawBody: [UInt8]
    package var contentType: String?
    /// The authenticated caller, nil on public routes.
    package var principal: Principal?
    /// Base of absolute URLs: the configured site URL, else scheme and Host of the request.
    package var baseURL: String
    /// The client's address (for per-address limits), when known.
    package var clientAddress: String? = nil

    package func header(_ name: String) -> String? {
        headers.first { Self.equalIgnoringASCIICase($0.name, name) }?.value
    }

    /// Header names are ASCII tokens: compared byte by byte, upper-case letters folded, no copies.
    static func equalIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return zip(a.utf8, b.utf8).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
        }
    }

    /// The authenticated caller; every route behind authentication has one.
    func requirePrincipal() throws(APIError) -> Principal {
        guard let principal else { throw APIError.notAuthenticated }
        return principal
    }

    /// The body as JSON, an empty object when there is none. Form bodies become an object of strings.
    package func body() throws(APIError) -> JSONValue {
        if rawBody.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object(JSONObject()) }
        switch mediaType {
        case nil, "application/json", "text/json":
            do {
                return try JSONParser.parse(rawBody)
            } catch {
                throw APIError.parseError(error.description)
            }
        case "application/x-www-form-urlencoded":
            let form = QueryString(parsing: String(decoding: rawBody, as: UTF8.self))
            var object = JSONObject()
            for item in form.items where object[item.key] == nil { object[item.key] = .string(item.value) }
            return .object(object)
        case "multipart/form-data":
            guard let boundary = contentType.flatMap(MultipartForm.boundary) else {
                throw APIError.parseError("Multipart form parse error - Invalid boundary in multipart: None")
            }
            return .object(try MultipartForm.parse(rawBody, boundary: boundary))
        case let other?:
            if other.hasSuffix("+json") {
                do { return try JSONParser.parse(rawBody) } catch { throw APIError.parseError(error.description) }
            }
            throw APIError.unsupportedMediaType(contentType ?? other)
        }
    }

    /// The media type of `Content-Type`, lower-cased, without parameters.
    package var mediaType: String? {
        guard let contentType else { return nil }
        let type = contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        return type?.isEmpty == false ? type : nil
    }

    /// The absolute URL of this request with another query string.
    func absoluteURL(query: QueryString) -> String {
        let encoded = query.encoded
        return baseURL + path + (encoded.isEmpty ? "" : "?" + encoded)
    }
}

/// A response: a status, optional JSON, extra headers.
package struct APIResponse: Sendable {
    package var status: Int
    package var json: JSONValue?
    package var headers: [(String, String)]
    /// A plain-text body (used by `/metrics`) instead of JSON.
    package var text: String?
    /// A JSON body already written (kept by a cache of rendered responses), sent as it is.
    var encodedJSON: [UInt8]? = nil

    package init(status: Int = 200, json: JSONValue?, headers: [(String, String)] = [], text: String? = nil) {
        self.status = status
        self.json = json
        self.headers = headers
        self.text = text
    }

    package static func ok(_ json: JSONValue) -> APIResponse { APIResponse(status: 200, json: json) }
    package static func ok(encodedJSON bytes: [UInt8]) -> APIResponse {
        var response = APIResponse(status: 200, json: nil)
        response.encodedJSON = bytes
        return response
    }
    package static func created(_ json: JSONValue) -> APIResponse { APIResponse(status: 201, json: json) }
    static let noContent = APIResponse(status: 204, json: nil)

    package static func error(_ error: APIError) -> APIResponse {
        let body: JSONObject = [
            "type": .string(error.type), "code": .string(error.code), "detail": .string(error.detail),
            "attr": JSONValue(error.attr),
        ]
        return APIResponse(status: error.status, json: .object(body), headers: error.headers)
    }
}
