import HedgerowCore
import HedgerowTestSupport
import Testing

@testable import HedgerowAPI

@Suite("Personal API keys over HTTP (docs/api.md, Personal API keys, §3)")
struct PersonalAPIKeyTests {
    @Test("A key lists and reads its user's keys, never their values", arguments: TestBackend.available)
    func listAndRetrieve(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let bob = try await server.createUser("bob@example.com")
            _ = try await server.createKey(for: alice, scopes: ["organization:read"])
            let list = try await server.request("GET", "/api/personal_api_keys/", key: alice.key)
            let keys = try #require(list.json.arrayValue)
            #expect(keys.count == 2)
            #expect(
                keys[0].objectValue?.keys == [
                    "id", "label", "mask_value", "created_at", "last_used_at", "last_rolled_at", "user_id", "scopes", "scoped_teams",
                    "scoped_organizations",
                ])
            #expect(!list.text.contains(alice.key))
            #expect(!list.text.contains("sha256$"))
            #expect(keys.contains { $0["mask_value"] == .string(PersonalAPIKeyCodec.mask(alice.key)) })
            let id = try #require(keys.first?["id"]?.stringValue)
            #expect(try await server.request("GET", "/api/personal_api_keys/\(id)/", key: alice.key)["id"] == .string(id))
            #expect(try await server.request("GET", "/api/personal_api_keys/\(id)/", key: bob.key).status == 404)
            #expect(try await server.request("GET", "/api/personal_api_keys/nope/", key: alice.key).status == 404)
            let noScope = try await server.createKey(for: alice, scopes: ["organization:read"])
            try await server.request("GET", "/api/personal_api_keys/", key: noScope).expectError(
                403, type: "authentication_error", code: "permission_denied",
                detail: "API key missing required scope 'personal_api_key:read'")
        }
    }

    @Test("A key may not create or roll keys", arguments: TestBackend.available)
    func cannotMint(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let detail =
                "Personal API keys cannot be created or rolled with a personal API key. Sign in to the console, or use `hedgerow keys create`."
            try await server.request("POST", "/api/personal_api_keys/", key: alice.key, json: .object(["label": "x", "scopes": ["*"]]))
                .expectError(403, type: "authentication_error", code: "permission_denied", detail: detail)
            let id = try #require(
                try await server.request("GET", "/api/personal_api_keys/", key: alice.key).json.arrayValue?.first?["id"]?.stringValue)
            try await server.request("POST", "/api/personal_api_keys/\(id)/roll/", key: alice.key)
                .expectError(403, type: "authentication_error", code: "permission_denied", detail: detail)
            #expect(try await server.request("GET", "/api/organizations/", key: alice.key).status == 200)
        }
    }

    @Test("A key may relabel and narrow keys, not widen them", arguments: TestBackend.available)
    func narrowNotWiden(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com", scopes: ["personal_api_key:write", "organization:read"])
            let org = try await server.createOrganization("Acme", owner: try await server.createUser("owner@example.com"))
            try await server.addMember(alice, to: org, level: .member)
            let id = try #require(
                try await server.request("GET", "/api/personal_api_keys/", key: alice.key).json.arrayValue?.first?["id"]?.stringValue)
            let path = "/api/personal_api_keys/\(id)/"
            let relabelled = try await server.request("PATCH", path, key: alice.key, json: .object(["label": "renamed"]))
            #expect(relabelled["label"] == "renamed")
            let widen = "A personal API key cannot widen the scopes or limits of a personal API key. Use `hedgerow keys create` instead."
            for body: JSONValue in [
                .object(["scopes": ["*"]]), .object(["scopes": ["organization:write", "personal_api_key:write"]]),
                .object(["scopes": ["batch_export:read", "personal_api_key:write"]]),
            ] {
                try await server.request("PATCH", path, key: alice.key, json: body)
                    .expectError(403, type: "authentication_error", code: "permission_denied", detail: widen)
            }
            try await server.request("PATCH", path, key: alice.key, json: .object(["scopes": ["nope:read"]]))
                .expectError(400, type: "validation_error", code: "invalid_input", detail: "Invalid scope: nope:read", attr: "scopes")
            let limited = try await server.request(
                "PATCH", path, key: alice.key,
                json: .object(["scoped_organizations": [.string(org)], "scopes": ["personal_api_key:write", "organization:read"]]))
            #expect(limited.status == 200)
            #expect(limited["scoped_organizations"] == [.string(org)])
            try await server.request("PATCH", path, key: alice.key, json: .object(["scoped_organizations": nil]))
                .expectError(403, type: "authentication_error", code: "permission_denied", detail: widen)
            let narrowed = try await server.request("PATCH", path, key: alice.key, json: .object(["scopes": ["personal_api_key:write"]]))
            #expect(narrowed["scopes"] == ["personal_api_key:write"])
            #expect(try await server.request("GET", "/api/organizations/", key: alice.key).status == 403)
            try await server.request("PATCH", path, key: alice.key, json: .object(["label": .string(String(repeating: "l", count: 41))]))
                .expectError(
                    400, type: "validation_error", code: "max_length", detail: "Ensure this field has no more than 40 characters.",
                    attr: "label")
        }
    }

    @Test("Limits must name organizations and environments the user belongs to", arguments: TestBackend.available)
    func limitsMustBeOwn(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com", scopes: [])
            let bob = try await server.createUser("bob@example.com")
            let bobs = try await server.createOrganization("Bob's", owner: bob)
            let id = try #require(
                try await server.request("GET", "/api/personal_api_keys/", key: alice.key).json.arrayValue?.first?["id"]?.stringValue)
            try await server.request(
                "PATCH", "/api/personal_api_keys/\(id)/", key: alice.key, json: .object(["scoped_organizations": [.string(bobs)]])
            )
            .expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "You must be a member of all organizations that you are scoping the key to.", attr: "scoped_organizations")
        }
    }

    @Test("Deleting a key revokes it at once", arguments: TestBackend.available)
    func deleteRevokes(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let spare = try await server.createKey(for: alice, scopes: ["organization:read"])
            let keys = try #require(try await server.request("GET", "/api/personal_api_keys/", key: alice.key).json.arrayValue)
            let spareID = try #require(keys.first { $0["mask_value"] == .string(PersonalAPIKeyCodec.mask(spare)) }?["id"]?.stringValue)
            #expect(try await server.request("GET", "/api/organizations/", key: spare).status == 200)
            #expect(try await server.request("DELETE", "/api/personal_api_keys/\(spareID)/", key: alice.key).status == 204)
            #expect(try await server.request("GET", "/api/organizations/", key: spare).status == 401)
        }
    }

    @Test("A user has at most 10 keys", arguments: TestBackend.available)
    func atMostTenKeys(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            for _ in 1..<10 { _ = try await server.createKey(for: alice, scopes: ["organization:read"]) }
            await #expect(
                throws: APIError.invalidInput(
                    "You can only have 10 personal API keys. Remove an existing key before creating a new one.")
            ) {
                _ = try await server.createKey(for: alice, scopes: ["organization:read"])
            }
            let keys = try await server.request("GET", "/api/personal_api_keys/", key: alice.key)
            #expect(keys.json.arrayValue?.count == 10)
        }
    }

    @Test func widening() {
        func key(_ scopes: [String], teams: [Int64]? = nil, orgs: [String]? = nil) -> PersonalAPIKey {
            PersonalAPIKey(
                id: "k", userID: 1, label: "", secureValue: "", maskValue: "", scopes: scopes.compactMap(Scope.init), scopedTeams: teams,
                scopedOrganizations: orgs, createdAt: Timestamp(microseconds: 0), lastUsedAt: nil)
        }
        #expect(!PersonalAPIKeyService.widens(from: key(["*"]), to: key(["organization:read"])))
        #expect(!PersonalAPIKeyService.widens(from: key([]), to: key(["*"])))
        #expect(PersonalAPIKeyService.widens(from: key(["organization:read"]), to: key([])))
        #expect(PersonalAPIKeyService.widens(from: key(["organization:read"]), to: key(["organization:write"])))
        #expect(!PersonalAPIKeyService.widens(from: key(["organization:write"]), to: key(["organization:read"])))
        #expect(PersonalAPIKeyService.widens(from: key(["*"], teams: [1]), to: key(["*"], teams: [1, 2])))
        #expect(!PersonalAPIKeyService.widens(from: key(["*"], teams: [1, 2]), to: key(["*"], teams: [2])))
        #expect(PersonalAPIKeyService.widens(from: key(["*"], orgs: ["a"]), to: key(["*"])))
        #expect(!PersonalAPIKeyService.widens(from: key(["*"]), to: key(["*"], orgs: ["a"])))
    }
}
