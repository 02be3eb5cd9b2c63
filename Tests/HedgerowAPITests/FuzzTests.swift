import HedgerowCore
import HedgerowTestSupport
import Testing

/// No request body, path or header may produce a 500 (docs/api.md, Conventions). A seeded generator makes
/// the run repeatable; every response must be a 2xx or a 4xx in PostHog's error format.
@Suite("Robustness")
struct FuzzTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let fieldNames = [
        "name", "slug", "logo_media_id", "is_member_join_email_enabled", "enforce_2fa", "members_can_invite",
        "members_can_use_personal_api_keys", "allow_publicly_shared_resources", "is_ai_data_processing_approved",
        "default_experiment_stats_method", "default_role_id", "personal_api_key", "id", "teams", "unknown", "level", "timezone",
        "first_name", "set_current_organization", "set_current_team", "scopes", "scoped_teams", "scoped_organizations", "label", "1",
        "api_key", "event", "distinct_id", "batch", "properties", "timestamp", "offset", "sent_at", "uuid", "$set",
        "destination", "interval", "model", "filters", "start_at", "end_at", "offset_day", "offset_hour", "hogql_query", "backfill",
    ]

    static func randomValue(_ random: inout SplitMix, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<(depth > 2 ? 7 : 9), using: &random) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .int(Int64.random(in: Int64.min...Int64.max, using: &random))
        case 3: return .double(Double.random(in: -1e300...1e300, using: &random))
        case 4: return .string(String(repeating: "é", count: Int.random(in: 0...200, using: &random)))
        case 5:
            return .string(
                ["true", "0", "", " ", "bayesian", "497f6eca-6276-4993-bfeb-53cbbbba6f08", "\u{0}", "'; DROP TABLE users; --"]
                    .randomElement(using: &random)!)
        case 6: return .string(String(repeating: "x", count: Int.random(in: 60...100_000, using: &random)))
        case 7: return .array((0..<Int.random(in: 0...4, using: &random)).map { _ in randomValue(&random, depth: depth + 1) })
        default:
            var object = JSONObject()
            for _ in 0..<Int.random(in: 0...5, using: &random) {
                object[fieldNames.randomElement(using: &random)!] = randomValue(&random, depth: depth + 1)
            }
            return .object(object)
        }
    }

    static func randomBody(_ random: inout SplitMix) -> [UInt8] {
        switch Int.random(in: 0..<4, using: &random) {
        case 0:
            var object = JSONObject()
            for name in fieldNames where Bool.random(using: &random) { object[name] = randomValue(&random) }
            return JSONWriter.bytes(.object(object))
        case 1: return JSONWriter.bytes(randomValue(&random))
        case 2: return (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        default:
            var bytes = JSONWriter.bytes(randomValue(&random))
            if !bytes.isEmpty { bytes.removeLast(Int.random(in: 0...bytes.count, using: &random)) }
            return bytes
        }
    }

    @Test("Random bodies, paths and headers never produce a 500", arguments: TestBackend.available)
    func randomRequestsNever500(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Target", owner: alice)
            var random = SplitMix(state: 20_261_129)
            let paths = [
                "/api/organizations/", "/api/organizations/\(org)/", "/api/organizations/@current/", "/api/organizations/%ff%fe/",
                "/api/organizations/\(String(repeating: "a", count: 5000))/", "/api/organizations/\(org)/../../",
                "/api/organizations/?limit=%00&offset=%ZZ", "/_health?x=\u{1F600}", "//api//organizations//",
                "/api/organizations/\(org)/projects/", "/api/organizations/\(org)/projects/1/", "/api/organizations/\(org)/members/",
                "/api/organizations/\(org)/members/\(alice.user.uuid)/", "/api/projects/1/environments/", "/api/environments/1/",
                "/api/environments/1/reset_token/", "/api/environments/99999999999999999999/", "/api/users/@me/",
                "/api/personal_api_keys/", "/api/personal_api_keys/x/", "/api/organizations/\(org)/environments_rollback/",
                "/api/environments/1/batch_exports/", "/api/projects/1/batch_exports/", "/api/organizations/\(org)/batch_exports/",
                "/api/environments/1/batch_exports/\(org)/", "/api/environments/1/batch_exports/\(org)/runs/?status=x&cursor=%%%",
                "/api/environments/1/batch_exports/\(org)/backfills/", "/api/environments/1/batch_exports/\(org)/logs/?limit=-1",
                "/e/", "/batch/", "/capture/?compression=gzip-js", "/i/v0/e/", "/e/?data=e30%3D", "/track/?token=phc_x",
            ]
            let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
            let contentTypes = [
                "application/json", "application/x-www-form-urlencoded", "text/plain", "application/json; charset=utf-8", "",
                "multipart/form-data; boundary=x", "multipart/form-data",
            ]
            for iteration in 0..<800 {
                let method = methods.randomElement(using: &random)!
                var path = paths.randomElement(using: &random)!
                if method == "DELETE", path.contains("/\(org)/") || path.contains("@current") || path.contains("/1/") {
                    path = "/api/organizations/\(org)x/"
                }
                let body = Self.randomBody(&random)
                var headers = [("Content-Type", contentTypes.randomElement(using: &random)!)]
                if Bool.random(using: &random) {
                    headers.append(
                        (
                            "Authorization",
                            [
                                "Bearer ", "Bearer \(alice.key)", "Bearer phx_\u{00}", "Basic Zm9v",
                                "Bearer " + String(repeating: "k", count: 9000),
                            ].randomElement(using: &random)!
                        ))
                }
                let useKey = Int.random(in: 0..<3, using: &random) > 0
                let result = try await server.request(
                    method, path, key: useKey && headers.count == 1 ? alice.key : nil, body: body, headers: headers)
                #expect(result.status < 500, "iteration \(iteration): \(method) \(path) → \(result.status) \(result.text)")
                if result.status >= 400, method != "HEAD" {
                    #expect(result.json.objectValue?.keys == ["type", "code", "detail", "attr"], "iteration \(iteration): \(result.text)")
                }
            }
            #expect(try await server.request("GET", "/api/organizations/\(org)/", key: alice.key).status == 200)
        }
    }

    /// Objects of tens of thousands of keys, with and without a key, on public and authenticated
    /// routes: each is answered with a 4xx (or a 200 for a valid capture), none with a 500.
    @Test("Wide objects are answered, not choked on", arguments: TestBackend.available)
    func wideObjectsAreAnswered(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await server.createUser("alice@example.com")
            let org = try await server.createOrganization("Target", owner: alice)
            let me = try await server.request("GET", "/api/users/@me/", key: alice.key)
            let token = try #require(me["team"]?["api_token"]?.stringValue)
            for width in [1_000, 40_000] {
                var properties = JSONObject()
                properties.reserveCapacity(width)
                for index in 0..<width { properties["p\(index)"] = .int(Int64(index)) }
                for apiKey in ["phc_not_a_token", token] {
                    let batch: JSONValue = .object([
                        "api_key": .string(apiKey),
                        "batch": [.object(["event": "wide", "distinct_id": "d", "properties": .object(properties)])],
                    ])
                    let result = try await server.request("POST", "/batch/", body: JSONWriter.bytes(batch))
                    #expect(result.status == (apiKey == token ? 200 : 401), "\(width) keys: \(result.text.prefix(200))")
                }
                let body = JSONWriter.bytes(.object(properties))
                for path in ["/api/organizations/", "/api/organizations/\(org)/batch_exports/"] {
                    let anonymous = try await server.request("POST", path, body: body)
                    #expect(anonymous.status == 401)
                    let signedIn = try await server.request("POST", path, key: alice.key, body: body)
                    #expect(signedIn.status == 400, "\(path): \(signedIn.text.prefix(200))")
                }
            }
        }
    }
}
