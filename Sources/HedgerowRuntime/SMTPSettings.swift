import Foundation

/// Where invite mail goes: `HEDGEROW_SMTP_URL`, `smtp://[user:password@]host[:port]` (port 25, no
/// TLS: a relay on the same network) or `smtps://…` (port 465, TLS from the first byte); and the
/// sender, `HEDGEROW_SMTP_FROM`.
package struct SMTPSettings: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int
    package var implicitTLS: Bool
    package var username: String?
    package var password: String?
    package var from: String

    package struct Invalid: Error, CustomStringConvertible {
        package let description: String
    }

    package static func parse(_ url: String, from: String?) throws -> SMTPSettings {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), ["smtp", "smtps"].contains(scheme),
            let host = parts.host, !host.isEmpty
        else {
            throw Invalid(description: "HEDGEROW_SMTP_URL must look like smtp://[user:password@]host[:port] or smtps://…")
        }
        let sender = from ?? "hedgerow@\(host)"
        guard sender.split(separator: "@").count == 2, !sender.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" }) else {
            throw Invalid(description: "HEDGEROW_SMTP_FROM must be an email address")
        }
        return SMTPSettings(
            host: host, port: parts.port ?? (scheme == "smtps" ? 465 : 25), implicitTLS: scheme == "smtps",
            username: parts.user?.removingPercentEncoding, password: parts.password?.removingPercentEncoding, from: sender)
    }

    /// Never shows the password.
    package var description: String {
        "\(implicitTLS ? "smtps" : "smtp")://\(username.map { "\($0)@" } ?? "")\(host):\(port) from \(from)"
    }
}
