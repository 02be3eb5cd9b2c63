import Foundation
import HedgerowTransport

/// An error S3 answered (its XML `Code` and `Message`), or one reaching it. Whether another attempt
/// can succeed decides between a run's `FailedRetryable` and `Failed` (docs/engine.md §5).
package struct S3Error: RetryableError, Equatable, CustomStringConvertible {
    package var code: String
    package var message: String
    package var status: Int?
    package var retryable: Bool

    package init(code: String, message: String, status: Int?, retryable: Bool) {
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable
    }

    package var description: String {
        status.map { "\(code) (HTTP \($0)): \(message)" } ?? "\(code): \(message)"
    }

    /// Codes another attempt cannot mend: credentials, signatures, missing buckets, permissions.
    static let permanentCodes: Set<String> = [
        "AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName", "AllAccessDisabled",
        "AuthorizationHeaderMalformed", "InvalidArgument", "InvalidRequest", "KMS.NotFoundException", "AccountProblem",
        "InvalidSecurity", "InvalidToken", "ExpiredToken", "NoSuchUpload", "EntityTooLarge", "EntityTooSmall", "InvalidPart",
        "InvalidPartOrder", "MethodNotAllowed", "PermanentRedirect",
    ]
    /// Codes S3 uses for "try again".
    static let transientCodes: Set<String> = [
        "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed", "OperationAborted",
    ]

    /// An answer with this status and code: 5xx and 429 and S3's "try again" codes are retryable.
    static func answered(status: Int, body: [UInt8]) -> S3Error {
        let code = XMLScan.first("Code", in: body) ?? Self.codeForStatus(status)
        let message = XMLScan.first("Message", in: body) ?? "S3 answered \(status)"
        let retryable: Bool =
            if permanentCodes.contains(code) { false } else { transientCodes.contains(code) || status >= 500 || status == 429 }
        return S3Error(code: code, message: message, status: status, retryable: retryable)
    }

    /// A bodiless answer (HEAD) still has a status.
    static func codeForStatus(_ status: Int) -> String {
        switch status {
        case 301: "PermanentRedirect"
        case 400: "BadRequest"
        case 403: "AccessDenied"
        case 404: "NoSuchBucket"
        case 429: "SlowDown"
        case 503: "ServiceUnavailable"
        default: status >= 500 ? "InternalError" : "HTTP\(status)"
        }
    }
}

/// Just enough XML for S3's (and Azure Blob's) answers: the text of named elements, entities decoded.
package enum XMLScan {
    package static func first(_ tag: String, in body: [UInt8]) -> String? { all(tag, in: body).first }

    package static func all(_ tag: String, in body: [UInt8]) -> [String] {
        let text = String(decoding: body, as: UTF8.self)
        var results: [String] = []
        var rest = text[...]
        let open = "<\(tag)>"
        let close = "</\(tag)>"
        while let start = rest.range(of: open), let end = rest[start.upperBound...].range(of: close) {
            results.append(decode(String(rest[start.upperBound..<end.lowerBound])))
            rest = rest[end.upperBound...]
        }
        return results
    }

    /// The elements `<tag>…</tag>` as raw inner XML (for records such as ListObjectsV2's `Contents`).
    package static func elements(_ tag: String, in body: [UInt8]) -> [[UInt8]] {
        let text = String(decoding: body, as: UTF8.self)
        var results: [[UInt8]] = []
        var rest = text[...]
        while let start = rest.range(of: "<\(tag)>"), let end = rest[start.upperBound...].range(of: "</\(tag)>") {
            results.append(Array(rest[start.upperBound..<end.lowerBound].utf8))
            rest = rest[end.upperBound...]
        }
        return results
    }

    package static func decode(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
