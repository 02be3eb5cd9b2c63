import HedgerowAPI
import HedgerowCore
import HedgerowStore
import HedgerowTestSupport
import Testing

@Suite("Authentication (docs/api.md, Personal API keys)")
struct AuthenticationTests {
    @Test("No credentials: 401 not_authenticated with WWW-Authenticate: Bearer", arguments: TestBackend.available)
    func missingCredentials(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let result = try await server.request("GET", "/api/organizations/")
            result.expectError(
                401, type: "authentication_error", code: "not_authenticated",
                detail: "Authentication credentials were not provided.")
            #expect(result.header("WWW-Authenticate") == "Bearer")
        }
    }

    @Test("An unknown key is 401 naming where it was found", arguments: TestBackend.available)
    func unknownKeyNamesItsSource(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let bogus = PersonalAPIKeyCodec.generate()
            let header = try await server.request("GET", "/api/organizations/", key: bogus)
            header.expectError(
                401, type: "authentication_error", code: "authentication_failed",
                detail: "Personal API key found in request Authorization header is invalid.")
            let body = try await server.request(
                "POST", "/api/organizations/", json: .object(["personal_api_key": .string(bogus), "name": "x"]))
            body.expectError(
                401, type: "authentication_error", code: "authentication_failed",
                detail: "Personal API key found in request body is invalid.")
            let query = try await server.request("GET", "/api/organizations/?personal_api_key=\(bogus)")
            query.expectError(
                401, type: "authentication_error", code: "authentication_failed",
                detail: "Personal API key found in request query string is invalid.")
        }
    }

    @Test("A valid key works from the header, the body and the query string", arguments: TestBackend.available)
    func validKeyFromEverySource(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            _ = try await server.createOrganization("Alice's", owner: alice)
            #expect(try await server.request("GET", "/api/organizations/", key: alice.key).status == 200)
            #expect(try await server.request("GET", "/api/organizations/?personal_api_key=\(alice.key)").status == 200)
            let created = try await server.request(
                "POST", "/api/organizations/", json: .object(["personal_api_key": .string(alice.key), "name": "Via body"]))
            #expect(created.status == 201)
            let form = try await server.request(
                "POST", "/api/organizations/", body: Array("personal_api_key=\(alice.key)&name=Form+Org".utf8),
                headers: [("Content-Type", "application/x-www-form-urlencoded")])
            #expect(form.status == 201)
            #expect(form["name"] == "Form Org")
        }
    }

    @Test("Only the first candidate is tried: a bad header is not rescued by a good query key", arguments: TestBackend.available)
    func firstCandidateOnly(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let result = try await server.request(
                "GET", "/api/organizations/?personal_api_key=\(alice.key)", key: PersonalAPIKeyCodec.generate())
            #expect(result.status == 401)
            #expect(result["detail"] == "Personal API key found in request Authorization header is invalid.")
        }
    }

    @Test("White space around the Bearer value is not part of it; a value that is only white space is no candidate")
    func bearerValueIsTrimmed() async throws {
        try await TestServer.run(.sqlite) { server in
            let alice = try await server.createUser("alice@example.com")
            let padded = try await server.request("GET", "/api/organizations/", headers: [("Authorization", "Bearer \t \(alice.key)\t")])
            #expect(padded.status == 200)
            // U+00A0 is white space to Foundation's trim, as it was before the trim was done over UTF-8:
            // the header holds no key, so the query's is tried.
            let blank = try await server.request(
                "GET", "/api/organizations/?personal_api_key=\(alice.key)", headers: [("Authorization", "Bearer \u{00A0}")])
            #expect(blank.status == 200)
        }
    }

    @Test("`Bearer` is case-sensitive", arguments: TestBackend.available)
    func bearerIsCaseSensitive(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let result = try await server.request(
                "GET", "/api/organizations/", headers: [("Authorization", "bearer \(alice.key)")])
            #expect(result.status == 401)
            #expect(result["code"] == "not_authenticated")
        }
    }

    @Test("Keys of inactive users never match", arguments: TestBackend.available)
    func inactiveUsersKeysFail(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            try await server.database.transaction { connection in
                try await connection.execute("UPDATE users SET is_active = $1 WHERE id = $2", [.bool(false), .int(alice.user.id)])
            }
            let result = try await server.request("GET", "/api/organizations/", key: alice.key)
            #expect(result.status == 401)
            #expect(result["code"] == "authentication_failed")
        }
    }

    @Test("Keys are stored as sha256 hashes and shown masked; the plain value is nowhere in the database", arguments: TestBackend.available)
    func keysAreStoredHashed(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            #expect(PersonalAPIKeyCodec.looksValid(alice.key))
            let rows = try await server.database.read { connection in
                try await connection.query("SELECT secure_value, mask_value FROM personal_api_keys", [])
            }
            #expect(rows.count == 1)
            #expect(rows[0].string("secure_value") == PersonalAPIKeyCodec.hash(alice.key))
            #expect(rows[0].string("secure_value")?.hasPrefix("sha256$") == true)
            #expect(rows[0].string("mask_value") == "phx_..." + alice.key.suffix(4))
            let everything = try await server.database.read { connection in
                try await connection.query("SELECT * FROM personal_api_keys", [])
            }
            for row in everything {
                for value in row.values {
                    if case .text(let text) = value { #expect(!text.contains(alice.key.dropFirst(4))) }
                }
            }
        }
    }

    @Test("last_used_at is written on first use and at most once an hour", arguments: TestBackend.available)
    func lastUsedAtAtMostHourly(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let clock = MutableClock(Timestamp(microseconds: 1_700_000_000_000_000))
            let service = AuthenticationService(database: server.database, clock: { clock.now })
            func stored() async throws -> Int64? {
                try await server.database.read { connection in
                    try await connection.first("SELECT last_used_at FROM personal_api_keys", [])?.int("last_used_at")
                }
            }
            #expect(try await stored() == nil)
            _ = try await service.authenticate(value: alice.key, source: .header)
            #expect(try await stored() == 1_700_000_000_000_000)
            clock.now = Timestamp(microseconds: 1_700_000_000_000_000 + 3_599_000_000)
            _ = try await service.authenticate(value: alice.key, source: .header)
            #expect(try await stored() == 1_700_000_000_000_000)
            clock.now = Timestamp(microseconds: 1_700_000_000_000_000 + 3_600_000_000)
            _ = try await service.authenticate(value: alice.key, source: .header)
            #expect(try await stored() == 1_700_000_000_000_000 + 3_600_000_000)
        }
    }

    @Test(
        "an authenticated key is served from memory while the credentials generation stays, and read again once it moves",
        arguments: TestBackend.available)
    func keysAreKeptUntilTheGenerationMoves(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let service = AuthenticationService(database: server.database, recheckInterval: .milliseconds(100))
            let first = try await service.authenticate(value: alice.key, source: .header)
            // Another process's change is a row change plus a move of the counter; without the move
            // (the row alone, which no store method writes), the key is still served from memory...
            try await server.database.transaction { connection in
                try await connection.execute("UPDATE personal_api_keys SET label = 'changed elsewhere'")
            }
            try await Task.sleep(for: .milliseconds(150))
            #expect(try await service.authenticate(value: alice.key, source: .header).key?.label == first.key?.label)
            // ...and once the counter moves, the next check after the interval reads the key again.
            try await server.database.transaction { connection in
                try await connection.execute("DELETE FROM personal_api_keys")
                try await connection.execute("UPDATE credentials_generation SET value = value + 1")
            }
            try await Task.sleep(for: .milliseconds(150))
            await #expect(throws: APIError.self) { try await service.authenticate(value: alice.key, source: .header) }
        }
    }

    @Test("this process's own changes to a key or its user take effect with its next request", arguments: TestBackend.available)
    func ownChangesTakeEffectAtOnce(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let organization = try await server.createOrganization("Second", owner: alice)
            // An hour between checks: only this process's own writes can end what is in memory.
            let service = AuthenticationService(database: server.database, recheckInterval: .seconds(3600))
            let keys = PersonalAPIKeyStore()
            let principal = try await service.authenticate(value: alice.key, source: .header)
            #expect(principal.user.currentOrganizationID == organization)
            var narrowed = try #require(principal.key)
            #expect(narrowed.scopes.map(\.description) == ["*"])
            narrowed.scopes = [try #require(Scope("organization:read"))]
            let key = narrowed
            try await server.database.transaction { connection in try await keys.update(key, on: connection) }
            #expect(
                try await service.authenticate(value: alice.key, source: .header).key?.scopes.map(\.description) == ["organization:read"])

            try await server.database.transaction { connection in
                try await UserStore().setCurrent(userID: alice.user.id, organizationID: nil, teamID: nil, on: connection)
            }
            #expect(try await service.authenticate(value: alice.key, source: .header).user.currentOrganizationID == nil)

            // A change that rolls back changes nothing, and the key is still served.
            var unscoped = key
            unscoped.scopes = []
            let widened = unscoped
            await #expect(throws: CancellationError.self) {
                try await server.database.transaction { connection in
                    try await keys.update(widened, on: connection)
                    throw CancellationError()
                }
            }
            #expect(
                try await service.authenticate(value: alice.key, source: .header).key?.scopes.map(\.description) == ["organization:read"])

            try await server.database.transaction { connection in try await keys.delete(id: key.id, on: connection) }
            await #expect(throws: APIError.self) { try await service.authenticate(value: alice.key, source: .header) }
        }
    }

    @Test func generatedKeysHaveTheDocumentedShape() {
        var seen = Set<String>()
        for _ in 0..<200 {
            let key = PersonalAPIKeyCodec.generate()
            #expect(key.hasPrefix("phx_"))
            #expect(key.count == 47)
            #expect(key.dropFirst(4).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            seen.insert(key)
        }
        #expect(seen.count == 200)
        #expect(PersonalAPIKeyCodec.mask("phx_abcdefgh1234") == "phx_...1234")
    }

    @Test func sha256MatchesAKnownVector() {
        // sha256("abc") from FIPS 180-2.
        #expect(PersonalAPIKeyCodec.hash("abc") == "sha256$ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func passwordsAreStoredAsDjangoPBKDF2() {
        let stored = PasswordHasher.hash("s3cret", salt: "salt", iterations: 1000)
        #expect(stored.hasPrefix("pbkdf2_sha256$1000$salt$"))
        #expect(PasswordHasher.verify("s3cret", against: stored))
        #expect(!PasswordHasher.verify("wrong", against: stored))
        // RFC 7914 §11 test vector for PBKDF2-HMAC-SHA256 (P="passwd", S="salt", c=1), first 32 bytes.
        let derived = PasswordHasher.hash("passwd", salt: "salt", iterations: 1)
        #expect(derived == "pbkdf2_sha256$1$salt$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw=")
        // Malformed stored values never verify.
        for stored in ["", "!", "pbkdf2_sha256$1$salt$", "pbkdf2_sha256$x$salt$VawE", "md5$1$salt$abc", "pbkdf2_sha256$0$salt$VawE"] {
            #expect(!PasswordHasher.verify("passwd", against: stored), "\(stored)")
        }
        #expect(PasswordHasher.needsUpgrade(stored) && !PasswordHasher.needsUpgrade(PasswordHasher.hash("x")))
    }

    @Test("A password hash of an older iteration count is replaced by a current one when it verifies", arguments: TestBackend.available)
    func oldPasswordHashesAreUpgraded(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let accounts = AccountService(database: server.database)
            let user = try await accounts.createUser(email: "ada@example.com", password: nil)
            let old = PasswordHasher.hash("correct horse", salt: "oldsalt", iterations: 260_000)
            try await server.database.transaction { try await UserStore().setPasswordHash(old, userID: user.id, on: $0) }
            #expect(try await accounts.verifyPassword(email: "ada@example.com", password: "wrong") == nil)
            #expect(try await server.database.read { try await UserStore().passwordHash(userID: user.id, on: $0) } == old)
            #expect(try await accounts.verifyPassword(email: "Ada@Example.com", password: "correct horse")?.id == user.id)
            let upgraded = try #require(try await server.database.read { try await UserStore().passwordHash(userID: user.id, on: $0) })
            #expect(upgraded.hasPrefix("pbkdf2_sha256$\(PasswordHasher.iterations)$") && upgraded != old)
            #expect(try await accounts.verifyPassword(email: "ada@example.com", password: "correct horse")?.id == user.id)
        }
    }
}

/// A clock tests move by hand.
final class MutableClock: @unchecked Sendable {
    // Safe: each test that uses it reads and writes it from one task, sequentially.
    var now: Timestamp
    init(_ now: Timestamp) { self.now = now }
}
