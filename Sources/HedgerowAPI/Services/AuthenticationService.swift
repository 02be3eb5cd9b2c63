import Foundation
import HedgerowCore
import HedgerowStore

/// Turns a personal API key found in a request into a `Principal` (API.md §1.1).
public struct AuthenticationService: Sendable {
    public enum Source: String, Sendable {
        case header = "Authorization header"
        case body = "body"
        case query = "query string"
    }

    let database: any Database
    let keys = PersonalAPIKeyStore()
    let clock: @Sendable () -> Timestamp

    public init(database: any Database, clock: @escaping @Sendable () -> Timestamp = { .now() }) {
        self.database = database
        self.clock = clock
    }

    /// Finds the first candidate key in a request: the `Authorization: Bearer` header, then the
    /// body's `personal_api_key`, then the query's.
    public static func findKey(in request: APIRequest) throws(APIError) -> (String, Source)? {
        if let authorization = request.header("Authorization"), authorization.hasPrefix("Bearer ") {
            let value = authorization.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
            if !value.isEmpty { return (value, .header) }
        }
        if !request.rawBody.isEmpty, case .object(let object) = try request.body(),
            case .string(let value)? = object["personal_api_key"], !value.isEmpty
        {
            return (value, .body)
        }
        if let value = request.query["personal_api_key"], !value.isEmpty { return (value, .query) }
        return nil
    }

    /// The principal for a key value, or 401 naming where the key was found.
    public func authenticate(value: String, source: Source) async throws -> Principal {
        let secureValue = PersonalAPIKeyCodec.hash(value)
        let found = try await database.read { connection in
            try await keys.findActive(secureValue: secureValue, on: connection)
        }
        guard let (key, user) = found else {
            throw APIError.authenticationFailed("Personal API key found in request \(source.rawValue) is invalid.")
        }
        let now = clock()
        var principal = Principal(user: user, key: key)
        if key.lastUsedAt.map({ now.microseconds - $0.microseconds >= 3_600_000_000 }) ?? true {
            try await database.transaction { connection in
                try await keys.touch(id: key.id, at: now, on: connection)
            }
            principal.key?.lastUsedAt = now
        }
        return principal
    }
}
