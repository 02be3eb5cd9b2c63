import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Testing

@testable import HedgerowAPI
@testable import HedgerowIngest

@Suite("Capture (docs/api.md, Capturing events)")
struct CaptureTests {
    /// A user with an organization; returns the default environment's id and `phc_` token.
    static func post(_ server: TestServer, _ path: String, _ json: JSONValue, headers: [(String, String)] = []) async throws -> TestResult {
        try await server.request("POST", path, json: json, headers: headers)
    }

    @Test("A single event, a batch and a bare list are stored with their fields", arguments: TestBackend.available)
    func bodyShapes(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, owner) = try await Fixtures.environment(server)
            let uuid = "0190a3b2-1111-7222-8333-444455556666"
            let single = try await Self.post(
                server, "/e/",
                .object([
                    "api_key": .string(token), "event": "$pageview", "distinct_id": "user-1", "uuid": .string(uuid.uppercased()),
                    "timestamp": "2024-03-01T12:00:00.5+01:00", "properties": .object(["$current_url": "https://x.test/", "n": 3]),
                ]))
            #expect(single.status == 200)
            #expect(single.json == .object(["status": 1]))
            let batch = try await Self.post(
                server, "/batch/",
                .object([
                    "api_key": .string(token),
                    "batch": [.object(["event": "a", "distinct_id": 42]), .object(["event": "b", "distinct_id": "u"])],
                ]))
            #expect(batch.status == 200)
            let list = try await Self.post(
                server, "/capture/", [.object(["event": "c", "distinct_id": "u", "properties": .object(["token": .string(token)])])])
            #expect(list.status == 200)
            let track = try await Self.post(server, "/track/", .object(["token": .string(token), "event": "d", "distinct_id": "u"]))
            #expect(track.status == 200)
            let v0 = try await Self.post(server, "/i/v0/e/", .object(["api_key": .string(token), "event": "e", "distinct_id": "u"]))
            #expect(v0.status == 200)
            let events = try await Fixtures.stored(server, team: team)
            #expect(events.map(\.event).sorted() == ["$pageview", "a", "b", "c", "d", "e"])
            let pageview = try #require(events.first { $0.event == "$pageview" })
            #expect(pageview.uuid == uuid)
            #expect(pageview.distinctID == "user-1")
            #expect(pageview.timestamp.iso8601 == "2024-03-01T11:00:00.500000Z")
            // PostgreSQL's JSONB keeps keys in its own order.
            let properties = try JSONParser.parse(pageview.properties)
            #expect(properties.objectValue?.count == 2)
            #expect(properties["$current_url"] == "https://x.test/")
            #expect(properties["n"] == 3)
            #expect(events.first { $0.event == "a" }?.distinctID == "42")
            // `token` is transport, not data.
            #expect(events.first { $0.event == "c" }?.properties == "{}")
            for event in events {
                #expect(event.teamID == team)
                #expect(Identifiers.canonicalUUID(event.uuid) == event.uuid)
                #expect(event.insertedAt.microseconds > 0)
            }
            let organization = try await server.request("GET", "/api/users/@me/", key: owner.key)
            #expect(organization["team"]?["ingested_event"] == true)
        }
    }

    @Test("gzip bodies, gzip-js, form data= and GET ?data= are all read", arguments: TestBackend.available)
    func encodings(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            func event(_ name: String) -> [UInt8] {
                JSONWriter.bytes(.object(["api_key": .string(token), "event": .string(name), "distinct_id": "u"]))
            }
            let gzipHeader = try await server.request(
                "POST", "/batch/", body: Gzip.compress(event("gzip-header")),
                headers: [("Content-Encoding", "gzip"), ("Content-Type", "application/json")])
            #expect(gzipHeader.status == 200, "\(gzipHeader.text)")
            let gzipJS = try await server.request(
                "POST", "/e/?compression=gzip-js", body: Gzip.compress(event("gzip-js")), headers: [("Content-Type", "text/plain")])
            #expect(gzipJS.status == 200, "\(gzipJS.text)")
            // Base64 with '+' characters, form-encoded without escaping them (as old SDKs do).
            let base64 = Data(event("form-data-with-plus->>>>>>>>>")).base64EncodedString()
            #expect(base64.contains("+"))
            let form = try await server.request(
                "POST", "/e/", body: Array("data=\(base64)".utf8), headers: [("Content-Type", "application/x-www-form-urlencoded")])
            #expect(form.status == 200, "\(form.text)")
            let gzipForm =
                Data(Gzip.compress(event("form-gzip"))).base64EncodedString()
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let compressedForm = try await server.request(
                "POST", "/e/", body: Array("data=\(gzipForm)&compression=gzip-js".utf8),
                headers: [("Content-Type", "application/x-www-form-urlencoded")])
            #expect(compressedForm.status == 200, "\(compressedForm.text)")
            let get = Data(event("get")).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            #expect(try await server.request("GET", "/e/?data=\(get)").status == 200)
            let names = try await Fixtures.stored(server, team: team).map(\.event).sorted()
            #expect(names == ["form-data-with-plus->>>>>>>>>", "form-gzip", "get", "gzip-header", "gzip-js"].sorted())
        }
    }

    @Test("Unknown or missing tokens are 401 in PostHog's shape and store nothing", arguments: TestBackend.available)
    func tokens(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            try await Self.post(server, "/e/", .object(["api_key": "phc_unknown", "event": "x", "distinct_id": "u"])).expectError(
                401, type: "authentication_error", code: "invalid_api_key",
                detail: "Project API key invalid. You can find your project API key in your project settings.")
            try await Self.post(server, "/e/", .object(["event": "x", "distinct_id": "u"])).expectError(
                401, type: "authentication_error", code: "invalid_api_key",
                detail: "API key not provided. You can find your project API key in your project settings.")
            #expect(try await Self.post(server, "/e/?token=\(token)", .object(["event": "q", "distinct_id": "u"])).status == 200)
            #expect(try await Fixtures.stored(server, team: team).map(\.event) == ["q"])
        }
    }

    @Test("Malformed requests are 400 and a bad event rejects its whole batch", arguments: TestBackend.available)
    func malformed(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            let bodies: [[UInt8]] = [
                Array("{not json".utf8), Array("\"just a string\"".utf8), Array("[]".utf8),
                JSONWriter.bytes(.object(["api_key": .string(token), "batch": "no"])),
                JSONWriter.bytes(
                    .object([
                        "api_key": .string(token),
                        "batch": [.object(["event": "ok", "distinct_id": "u"]), .object(["event": "missing id"])],
                    ])),
                JSONWriter.bytes(.object(["api_key": .string(token), "batch": [.object(["event": "ok", "distinct_id": "u"]), 5]])),
                JSONWriter.bytes(.object(["api_key": .string(token), "event": "", "distinct_id": "u"])),
                JSONWriter.bytes(.object(["api_key": .string(token), "event": "x", "distinct_id": "u", "properties": [1]])),
                Gzip.compress(Array("{\"event\":".utf8)), [0x1f, 0x8b, 0, 1, 2],
            ]
            for body in bodies {
                let result = try await server.request("POST", "/batch/", body: body, headers: [("Content-Type", "application/json")])
                #expect(result.status == 400, "\(String(decoding: body, as: UTF8.self)) → \(result.text)")
                #expect(result["code"] == "invalid_payload")
            }
            #expect(try await Fixtures.stored(server, team: team).isEmpty)
        }
    }

    @Test("Bodies over the limit are 413, compressed or not", arguments: TestBackend.available)
    func tooLarge(backend: TestBackend) async throws {
        try await TestServer.run(backend, configure: { $0.maximumBodySize = 10_000 }) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            let big = JSONWriter.bytes(
                .object([
                    "api_key": .string(token), "event": "x", "distinct_id": "u",
                    "properties": .object(["p": .string(String(repeating: "a", count: 50_000))]),
                ]))
            #expect(try await server.request("POST", "/e/", body: big).status == 413)
            let bomb = try await server.request("POST", "/e/", body: Gzip.compress(big), headers: [("Content-Encoding", "gzip")])
            bomb.expectError(
                413, type: "invalid_request", code: "payload_too_large", detail: "Request body is larger than the limit of 10000 bytes.")
            #expect(try await Fixtures.stored(server, team: team).isEmpty)
        }
    }

    @Test("Client clocks are corrected with offset and sent_at", arguments: TestBackend.available)
    func clockSkew(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            let before = Timestamp.now().microseconds
            _ = try await Self.post(
                server, "/batch/",
                .object([
                    "api_key": .string(token), "sent_at": "2030-01-01T00:00:10Z",
                    "batch": [
                        .object(["event": "offset", "distinct_id": "u", "offset": 60_000, "timestamp": "2000-01-01T00:00:00Z"]),
                        .object(["event": "skewed", "distinct_id": "u", "timestamp": "2030-01-01T00:00:00Z"]),
                        .object(["event": "naive", "distinct_id": "u", "timestamp": "2024-05-05 10:00:00", "sent_at": nil]),
                        .object([
                            "event": "own-sent-at", "distinct_id": "u", "timestamp": "2024-01-01T00:00:00Z",
                            "sent_at": "2024-01-01T00:00:05Z",
                        ]),
                        .object(["event": "none", "distinct_id": "u"]),
                        .object(["event": "garbage", "distinct_id": "u", "timestamp": "yesterday"]),
                    ],
                ]))
            let after = Timestamp.now().microseconds
            let events = Dictionary(uniqueKeysWithValues: try await Fixtures.stored(server, team: team).map { ($0.event, $0) })
            func near(_ name: String, _ expected: ClosedRange<Int64>) {
                let value = events[name]?.timestamp.microseconds ?? 0
                #expect(expected.contains(value), "\(name): \(value) not in \(expected)")
            }
            near("offset", (before - 60_000_000)...(after - 60_000_000))
            // The client clock is 2030-01-01T00:00:10 when the server's is `now`: the event happened 10 s before sending.
            near("skewed", (before - 10_000_000)...(after - 10_000_000))
            near("none", before...after)
            near("garbage", before...after)
            near("own-sent-at", (before - 5_000_000)...(after - 5_000_000))
            #expect(events["naive"]?.timestamp.iso8601 != nil)
            for event in events.values { #expect((before...after).contains(event.insertedAt.microseconds)) }
        }
    }

    @Test("$set and $set_once sent beside properties are kept in them", arguments: TestBackend.available)
    func personProperties(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            _ = try await Self.post(
                server, "/e/",
                .object([
                    "api_key": .string(token), "event": "$identify", "distinct_id": "u", "$set": .object(["email": "a@b.c"]),
                    "$set_once": .object(["first": "yes"]), "properties": .object(["$set": .object(["plan": "pro"])]),
                ]))
            let event = try #require(try await Fixtures.stored(server, team: team).first)
            let properties = try JSONParser.parse(event.properties)
            #expect(properties["$set"] == .object(["plan": "pro", "email": "a@b.c"]))
            #expect(properties["$set_once"] == .object(["first": "yes"]))
        }
    }

    @Test(
        "Persons: one per distinct id, $set overwrites, $set_once does not, each event carries its person's properties",
        arguments: TestBackend.available)
    func persons(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            func send(_ events: [JSONValue]) async throws {
                #expect(
                    try await Self.post(server, "/batch/", .object(["api_key": .string(token), "batch": .array(events)])).status == 200)
            }
            try await send([
                .object([
                    "event": "1", "distinct_id": "u",
                    "properties": .object(["$set": .object(["plan": "free"]), "$set_once": .object(["first": "1"])]),
                ]),
                .object(["event": "2", "distinct_id": "u", "properties": .object(["$set_once": .object(["first": "2"])])]),
                .object(["event": "other", "distinct_id": "v"]),
                .object([
                    "event": "anonymous", "distinct_id": "w",
                    "properties": .object(["$process_person_profile": false, "$set": .object(["x": 1])]),
                ]),
            ])
            try await send([.object(["event": "3", "distinct_id": "u", "$set": .object(["plan": "pro"])])])
            let events = Dictionary(uniqueKeysWithValues: try await Fixtures.stored(server, team: team).map { ($0.event, $0) })
            func person(_ name: String) throws -> JSONValue? { try events[name]?.personProperties.map { try JSONParser.parse($0) } }
            #expect(try person("1")?.objectValue?.count == 2)
            #expect(try person("1")?["plan"] == "free")
            #expect(try person("1")?["first"] == "1")
            #expect(try person("2")?["first"] == "1")
            #expect(try person("3")?["plan"] == "pro")
            #expect(try person("3")?["first"] == "1")
            #expect(try person("other") == .object([:]))
            // A personless event gets the id PostHog derives from its distinct id, and no properties.
            #expect(events["anonymous"]?.personID == PersonProcessor.personlessUUID(teamID: team, distinctID: "w"))
            #expect(events["anonymous"]?.personProperties == nil)
            #expect(events["1"]?.personID != nil)
            #expect(events["1"]?.personID == events["3"]?.personID)
            #expect(events["1"]?.personID != events["other"]?.personID)
            // Person filters now select on what the person was when the event happened.
            let query = EventQuery(
                teamID: team, field: .insertedAt, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max),
                filters: [try PropertyFilter.parse(.object(["key": "plan", "type": "person", "value": "pro"]))])
            #expect(try await SQLEventStore(database: server.database).count(query) == 1)
        }
    }

    @Test("A retried event (same uuid) is stored once", arguments: TestBackend.available)
    func retriesAreIdempotent(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            let body: JSONValue = .object([
                "api_key": .string(token),
                "batch": [
                    .object(["event": "a", "distinct_id": "u", "uuid": "0190a3b2-1111-7222-8333-444455556666"]),
                    .object(["event": "b", "distinct_id": "u", "uuid": "not-a-uuid"]),
                ],
            ])
            #expect(try await Self.post(server, "/batch/", body).status == 200)
            #expect(try await Self.post(server, "/batch/", body).status == 200)
            let events = try await Fixtures.stored(server, team: team)
            #expect(events.filter { $0.event == "a" }.count == 1)
            // An invalid client uuid is replaced by a new one each time.
            #expect(events.filter { $0.event == "b" }.count == 2)
        }
    }

    @Test("Browsers get CORS headers and preflight answers", arguments: TestBackend.available)
    func cors(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (_, token, _) = try await Fixtures.environment(server)
            let preflight = try await server.request(
                "OPTIONS", "/e/", headers: [("Origin", "https://shop.example"), ("Access-Control-Request-Headers", "content-type")])
            #expect(preflight.status == 200)
            #expect(preflight.header("Access-Control-Allow-Origin") == "https://shop.example")
            #expect(preflight.header("Access-Control-Allow-Methods")?.contains("POST") == true)
            #expect(preflight.header("Access-Control-Allow-Headers") == "content-type")
            let posted = try await Self.post(
                server, "/e/", .object(["api_key": .string(token), "event": "x", "distinct_id": "u"]),
                headers: [("Origin", "https://shop.example")])
            #expect(posted.header("Access-Control-Allow-Origin") == "https://shop.example")
            let failed = try await Self.post(
                server, "/e/", .object(["api_key": "phc_x", "event": "x", "distinct_id": "u"]), headers: [("Origin", "https://a.b")])
            #expect(failed.status == 401)
            #expect(failed.header("Access-Control-Allow-Origin") == "https://a.b")
            #expect(
                try await server.request("GET", "/api/organizations/", headers: [("Origin", "https://a.b")]).header(
                    "Access-Control-Allow-Origin") == nil)
        }
    }

    @Test("Events go with their environment, and move with environments_rollback", arguments: TestBackend.available)
    func eventsFollowEnvironments(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let owner = try await server.createUser("owner@example.com", scopes: [])
            let org = try await server.createOrganization("Acme", owner: owner)
            let me = try await server.request("GET", "/api/users/@me/", key: owner.key)
            guard case .int(let main)? = me["team"]?["id"] else { Issue.record("no team"); return }
            let staging = try await server.request(
                "POST", "/api/projects/\(main)/environments/", key: owner.key, json: .object(["name": "Staging"]))
            guard case .int(let stagingID)? = staging["id"], case .string(let stagingToken)? = staging["api_token"] else { return }
            #expect(
                try await Self.post(server, "/e/", .object(["api_key": .string(stagingToken), "event": "s", "distinct_id": "u"])).status
                    == 200)
            #expect(try await Fixtures.stored(server, team: stagingID).count == 1)
            let rollback = try await server.request(
                "POST", "/api/organizations/\(org)/environments_rollback/", key: owner.key, json: .object(["\(stagingID)": .int(main)]))
            #expect(rollback.status == 202)
            #expect(try await Fixtures.stored(server, team: stagingID).isEmpty)
            #expect(try await Fixtures.stored(server, team: main).map(\.event) == ["s"])
            #expect(try await server.request("DELETE", "/api/organizations/\(org)/", key: owner.key).status == 204)
            #expect(try await Fixtures.stored(server, team: main).isEmpty)
        }
    }
}
