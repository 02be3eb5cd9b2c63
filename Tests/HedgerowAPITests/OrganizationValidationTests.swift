import HedgerowCore
import HedgerowTestSupport
import Testing

@Suite("Organization validation (docs/api.md, Organizations)")
struct OrganizationValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let body: JSONValue
        let code: String
        let detail: String
        let attr: String?
        var testDescription: String { JSONWriter.string(body) }
    }

    static let cases: [Case] = [
        Case(body: .object([:]), code: "required", detail: "This field is required.", attr: "name"),
        Case(body: .object(["name": ""]), code: "blank", detail: "This field may not be blank.", attr: "name"),
        Case(body: .object(["name": "   "]), code: "blank", detail: "This field may not be blank.", attr: "name"),
        Case(body: .object(["name": nil]), code: "null", detail: "This field may not be null.", attr: "name"),
        Case(
            body: .object(["name": .string(String(repeating: "n", count: 65))]), code: "max_length",
            detail: "Ensure this field has no more than 64 characters.", attr: "name"),
        Case(body: .object(["name": ["a"]]), code: "invalid", detail: "Not a valid string.", attr: "name"),
        Case(body: .object(["name": .object(["a": 1])]), code: "invalid", detail: "Not a valid string.", attr: "name"),
        Case(
            body: .object(["name": "ok", "logo_media_id": "497f6eca-6276-4993-bfeb-53cbbbba6f08"]), code: "does_not_exist",
            detail: "Invalid pk \"497f6eca-6276-4993-bfeb-53cbbbba6f08\" - object does not exist.", attr: "logo_media_id"),
        Case(
            body: .object(["name": "ok", "logo_media_id": true]), code: "incorrect_type",
            detail: "Incorrect type. Expected pk value, received bool.", attr: "logo_media_id"),
        Case(
            body: .object(["name": "ok", "default_role_id": "r1"]), code: "does_not_exist",
            detail: "Invalid pk \"r1\" - object does not exist.", attr: "default_role_id"),
        Case(
            body: .object(["name": "ok", "members_can_invite": "maybe"]), code: "invalid", detail: "Must be a valid boolean.",
            attr: "members_can_invite"),
        Case(
            body: .object(["name": "ok", "members_can_invite": nil]), code: "null", detail: "This field may not be null.",
            attr: "members_can_invite"),
        Case(
            body: .object(["name": "ok", "enforce_2fa": [true]]), code: "invalid", detail: "Must be a valid boolean.",
            attr: "enforce_2fa"),
        Case(
            body: .object(["name": "ok", "default_experiment_stats_method": "x"]), code: "invalid_choice",
            detail: "\"x\" is not a valid choice.", attr: "default_experiment_stats_method"),
        Case(
            body: .object(["name": "ok", "default_experiment_stats_method": 3]), code: "invalid_choice",
            detail: "\"3\" is not a valid choice.", attr: "default_experiment_stats_method"),
        Case(body: [1, 2], code: "invalid", detail: "Invalid data. Expected a dictionary, but got list.", attr: nil),
        Case(body: "name", code: "invalid", detail: "Invalid data. Expected a dictionary, but got str.", attr: nil),
    ]

    @Test(
        "Create rejects invalid bodies with DRF's messages and creates nothing",
        arguments: TestBackend.available, cases)
    func createValidation(backend: TestBackend, testCase: Case) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let result = try await server.request("POST", "/api/organizations/", key: alice.key, json: testCase.body)
            result.expectError(400, type: "validation_error", code: testCase.code, detail: testCase.detail, attr: testCase.attr)
            let list = try await server.request("GET", "/api/organizations/", key: alice.key)
            #expect(list["count"] == 0)
        }
    }

    @Test("PATCH rejects invalid values and changes nothing", arguments: TestBackend.available)
    func patchValidationChangesNothing(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Acme", owner: alice)
            let before = try await server.request("GET", "/api/organizations/\(org)/", key: alice.key)
            let result = try await server.request(
                "PATCH", "/api/organizations/\(org)/", key: alice.key,
                json: .object(["members_can_invite": false, "default_experiment_stats_method": "nope"]))
            result.expectError(
                400, type: "validation_error", code: "invalid_choice", detail: "\"nope\" is not a valid choice.",
                attr: "default_experiment_stats_method")
            let after = try await server.request("GET", "/api/organizations/\(org)/", key: alice.key)
            #expect(after.json == before.json)
        }
    }

    @Test("A name is trimmed and numbers become strings", arguments: TestBackend.available)
    func nameCoercion(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let trimmed = try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": "  Spaced  "]))
            #expect(trimmed["name"] == "Spaced")
            let number = try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": 42]))
            #expect(number["name"] == "42")
            let exactly64 = String(repeating: "x", count: 64)
            #expect(
                try await server.request("POST", "/api/organizations/", key: alice.key, json: .object(["name": .string(exactly64)])).status
                    == 201)
        }
    }
}
