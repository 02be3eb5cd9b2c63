import Foundation
import HedgerowCore
import HedgerowStore

/// Turns a personal API key found in a request into a `Principal` (docs/api.md, Personal API keys).
package struct AuthenticationService: Sendable {
    package enum Source: String, Sendable {
        case header = "Authorization header"
        case body = "body"
        case query = "query string"
    }

    let database: any Database
    let keys = PersonalAPIKeyStore()
    let clock: @Sendable () -> Timestamp
    let cache: CredentialsCache

    /// `recheckInterval`: how long an authenticated key is served from memory before the database's
    /// credentials generation is read again (a change made by another process takes effect here
    /// within it; this process's own changes take effect at once).
    package init(
        database: any Database, clock: @escaping @Sendable () -> Timestamp = { .now() },
        recheckInterval: Duration = .milliseconds(250)
    ) {
        self.database = database
        self.clock = clock
        self.cache = CredentialsCache(recheckInterval: recheckInterval, writes: database.credentialsWrites)
    }

    /// Finds the first candidate key in a request: the `Authorization: Bearer` header, then the
    /// body's `personal_api_key`, then the query's.
    static func findKey(in request: APIRequest) throws(APIError) -> (String, Source)? {
        if let authorization = request.header("Authorization"), authorization.hasPrefix("Bearer ") {
            // White space around the value is not part of it. Spaces and tabs are trimmed over
            // UTF-8; only a value that then starts or ends outside ASCII (where Unicode white space
            // such as U+00A0 may sit) takes Foundation's UTF-16 pass.
            let bytes = authorization.utf8.dropFirst("Bearer ".utf8.count)
            let isBlank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
            var value = ""
            if let first = bytes.firstIndex(where: { !isBlank($0) }), let last = bytes.lastIndex(where: { !isBlank($0) }) {
                value = String(decoding: bytes[first...last], as: UTF8.self)
                if bytes[first] >= 0x80 || bytes[last] >= 0x80 { value = value.trimmingCharacters(in: .whitespaces) }
            }
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
    package func authenticate(value: String, source: Source) async throws -> Principal {
        let secureValue = PersonalAPIKeyCodec.hash(value)
        guard var entry = try await find(secureValue: secureValue) else {
            throw APIError.authenticationFailed("Personal API key found in request \(source.rawValue) is invalid.")
        }
        let now = clock()
        if entry.key.lastUsedAt.map({ now.microseconds - $0.microseconds >= 3_600_000_000 }) ?? true {
            let id = entry.key.id
            try await database.transaction { connection in
                try await keys.touch(id: id, at: now, on: connection)
            }
            entry.key.lastUsedAt = now
            cache.store(entry, secureValue: secureValue)
        }
        return Principal(user: entry.user, key: entry.key)
    }

    /// The key with this hash and its user: from memory while the credentials generation they were
    /// read at is still the current one, else from the database. The counter is read on its own
    /// only to check a key in memory; a key not in memory is read with it in one statement.
    func find(secureValue: String) async throws -> CredentialsCache.Entry? {
        let start = ContinuousClock.now
        if let kept = cache.entry(secureValue: secureValue) {
            if cache.freshGeneration(at: start) == nil {
                let current = try await database.read { connection in try await CredentialsGeneration.current(on: connection) }
                cache.observe(current, readAt: start)
            }
            if cache.freshGeneration(at: start) == kept.generation { return kept }
        }
        guard
            let found = try await database.read({ connection in
                try await keys.findActiveWithGeneration(secureValue: secureValue, on: connection)
            })
        else { return nil }
        cache.observe(found.generation, readAt: start)
        let entry = CredentialsCache.Entry(key: found.key, user: found.user, generation: found.generation)
        cache.store(entry, secureValue: secureValue)
        return entry
    }
}
