import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowFormats
import HedgerowStore
import HedgerowTestSupport
import Testing

@testable import HedgerowAPI

/// Person processing at capture (PostHog's identity rules), sessions, and the persons API.
@Suite("Persons and sessions")
struct PersonTests {
    struct World {
        let server: TestServer
        let team: Int64
        let token: String
        let owner: TestUser

        func send(_ events: [JSONValue]) async throws {
            let result = try await server.request("POST", "/batch/", json: .object(["api_key": .string(token), "batch": .array(events)]))
            #expect(result.status == 200, "\(result.text)")
        }

        /// The mapping of a distinct id and the person it points at, read from the store.
        func person(_ distinctID: String) async throws -> (mapping: PersonDistinctID, person: Person)? {
            try await server.database.read { connection in
                let store = PersonStore()
                guard let mapping = try await store.distinctIDs(teamID: team, [distinctID], on: connection)[distinctID],
                    let person = try await store.persons(teamID: team, uuids: [mapping.personUUID], on: connection)[mapping.personUUID]
                else { return nil }
                return (mapping, person)
            }
        }

        func personCount() async throws -> Int64 {
            try await server.database.read { try await $0.first("SELECT COUNT(*) AS n FROM persons WHERE team_id = $1", [.int(team)]) }?
                .int("n") ?? 0
        }

        func events() async throws -> [String: Event] {
            Dictionary(try await Fixtures.stored(server, team: team).map { ($0.event, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    static let identifyAgain = "0190a3b2-0000-7000-8000-0000000000aa"

    static func world(_ server: TestServer) async throws -> World {
        let (team, token, owner) = try await Fixtures.environment(server)
        return World(server: server, team: team, token: token, owner: owner)
    }

    static func event(
        _ name: String, _ distinctID: String, _ properties: JSONObject = [:], uuid: String? = nil, timestamp: String? = nil
    ) -> JSONValue {
        var object: JSONObject = ["event": .string(name), "distinct_id": .string(distinctID), "properties": .object(properties)]
        if let uuid { object["uuid"] = .string(uuid) }
        if let timestamp { object["timestamp"] = .string(timestamp) }
        return .object(object)
    }

    @Test(
        "$identify gives the anonymous person the identified distinct id, and later merges an unidentified person into it",
        arguments: TestBackend.available)
    func identify(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            try await world.send([Self.event("anon view", "anon-1", ["$set_once": .object(["referrer": "ads"])])])
            let anonymous = try #require(try await world.person("anon-1"))
            #expect(!anonymous.person.isIdentified)
            try await world.send([
                Self.event("$identify", "user@x.com", ["$anon_distinct_id": "anon-1", "$set": .object(["email": "user@x.com"])])
            ])
            let identified = try #require(try await world.person("user@x.com"))
            // The identified id joined the anonymous person: one person, now identified, a version up.
            #expect(identified.person.uuid == anonymous.person.uuid)
            #expect(identified.person.isIdentified)
            #expect(identified.person.version > anonymous.person.version)
            #expect(identified.person.properties["referrer"] == "ads" && identified.person.properties["email"] == "user@x.com")
            #expect(identified.mapping.version == 0)
            // A second device: its own anonymous person, merged in when it identifies.
            try await world.send([Self.event("phone view", "anon-2", ["$set": .object(["device": "phone", "email": "old@x.com"])])])
            let phone = try #require(try await world.person("anon-2"))
            #expect(phone.person.uuid != identified.person.uuid)
            try await world.send([Self.event("$identify", "user@x.com", ["$anon_distinct_id": "anon-2"], uuid: Self.identifyAgain)])
            let merged = try #require(try await world.person("anon-2"))
            #expect(merged.person.uuid == identified.person.uuid)
            // The moved distinct id is a version up; the merged person keeps the identified one's values.
            #expect(merged.mapping.version == 1)
            #expect(merged.person.properties["device"] == "phone" && merged.person.properties["email"] == "user@x.com")
            #expect(try await world.personCount() == 1)
            let events = try await world.events()
            let again = try #require(try await Fixtures.stored(server, team: world.team).first { $0.uuid == Self.identifyAgain })
            #expect(again.personID == identified.person.uuid)
            #expect(try JSONParser.parse(again.personProperties ?? "")["device"] == "phone")
            // Events keep the person they had when they were ingested.
            #expect(events["phone view"]?.personID == phone.person.uuid)
        }
    }

    @Test(
        "An identified person is not merged by $identify or $create_alias, but is by $merge_dangerously", arguments: TestBackend.available)
    func identifiedPersonsAreNotMerged(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            try await world.send([
                Self.event("a", "anon-a"), Self.event("$identify", "alice", ["$anon_distinct_id": "anon-a"]),
                Self.event("b", "anon-b"), Self.event("$identify", "bob", ["$anon_distinct_id": "anon-b"]),
            ])
            let alice = try #require(try await world.person("alice")).person
            let bob = try #require(try await world.person("bob")).person
            #expect(alice.uuid != bob.uuid && alice.isIdentified && bob.isIdentified)
            try await world.send([
                Self.event("$identify", "alice", ["$anon_distinct_id": "bob"]), Self.event("$create_alias", "alice", ["alias": "bob"]),
            ])
            #expect(try await world.person("bob")?.person.uuid == bob.uuid)
            #expect(try await world.personCount() == 2)
            try await world.send([Self.event("$merge_dangerously", "alice", ["alias": "bob"])])
            #expect(try await world.person("bob")?.person.uuid == alice.uuid)
            #expect(try await world.person("anon-b")?.person.uuid == alice.uuid)
            #expect(try await world.person("anon-b")?.mapping.version == 1)
            #expect(try await world.personCount() == 1)
        }
    }

    @Test(
        "$create_alias adds the alias to the person, or merges its unidentified person; ids like 'null' never merge",
        arguments: TestBackend.available)
    func alias(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            try await world.send([Self.event("e", "main"), Self.event("$create_alias", "main", ["alias": "second"])])
            let main = try #require(try await world.person("main")).person
            #expect(try await world.person("second")?.person.uuid == main.uuid)
            try await world.send([
                Self.event("e", "third", ["$set": .object(["x": 1])]), Self.event("$create_alias", "main", ["alias": "third"]),
            ])
            let merged = try #require(try await world.person("third")).person
            #expect(merged.uuid == main.uuid && merged.properties["x"] == 1)
            try await world.send([
                Self.event("e", "other"), Self.event("$identify", "other", ["$anon_distinct_id": "null"]),
                Self.event("$create_alias", "anonymous", ["alias": "main"]),
            ])
            #expect(try await world.person("null") == nil)
            #expect(try await world.person("anonymous")?.person.uuid != main.uuid)
        }
    }

    @Test("$set overwrites, $set_once does not, $unset removes; each change is a version", arguments: TestBackend.available)
    func propertyUpdates(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            try await world.send([Self.event("1", "u", ["$set": .object(["plan": "free", "a": 1]), "$set_once": .object(["first": "x"])])])
            let first = try #require(try await world.person("u")).person
            try await world.send([
                Self.event("2", "u", ["$set_once": .object(["first": "y", "plan": "never"])]),
                Self.event("3", "u", ["$unset": ["a"], "$set": .object(["plan": "pro"])]),
                Self.event("4", "u", ["$set": .object(["plan": "pro"])]),
            ])
            let last = try #require(try await world.person("u")).person
            #expect(last.properties == ["first": "x", "plan": "pro"])
            // Only event 3 changed the person: 2 set once what was set, 4 set what was there already.
            #expect(last.version == first.version + 1)
            let events = try await world.events()
            #expect(try JSONParser.parse(events["2"]?.personProperties ?? "")["a"] == 1)
            #expect(try JSONParser.parse(events["3"]?.personProperties ?? "")["a"] == nil)
            // $unset as an object of keys, as some SDKs send it.
            try await world.send([Self.event("5", "u", ["$unset": .object(["first": .null])])])
            #expect(try await world.person("u")?.person.properties == ["plan": "pro"])
        }
    }

    @Test(
        "A retried request changes nothing again, even after later changes; personless events make no person",
        arguments: TestBackend.available)
    func retriesAndPersonless(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let first = [
                Self.event("set", "u", ["$set": .object(["plan": "free"])], uuid: "0190a3b2-0000-7000-8000-000000000001"),
                Self.event("$identify", "u", ["$anon_distinct_id": "anon"], uuid: "0190a3b2-0000-7000-8000-000000000002"),
            ]
            try await world.send(first)
            try await world.send(first)
            let before = try #require(try await world.person("u")).person
            try await world.send([Self.event("later", "u", ["$set": .object(["plan": "pro"])])])
            // The first request again: its events are stored already, so it sets nothing back.
            try await world.send(first)
            let after = try #require(try await world.person("u")).person
            #expect(after.properties["plan"] == "pro")
            #expect(after.version == before.version + 1)
            #expect(try await Fixtures.stored(server, team: world.team).count == 3)
            // Stored and new events in one request (and a uuid twice): only the new one does anything.
            let new = Self.event("new", "u", ["$set": .object(["seats": 3])], uuid: "0190a3b2-0000-7000-8000-000000000003")
            try await world.send(first + [new, new])
            let mixed = try #require(try await world.person("u")).person
            #expect(mixed.properties["plan"] == "pro" && mixed.properties["seats"] == 3 && mixed.version == after.version + 1)
            #expect(try await Fixtures.stored(server, team: world.team).count == 4)
            try await world.send([Self.event("quiet", "ghost", ["$process_person_profile": false, "$set": .object(["x": 1])])])
            #expect(try await world.person("ghost") == nil)
            // A personless event of a known person carries that person, unchanged.
            try await world.send([Self.event("quiet u", "u", ["$process_person_profile": false, "$set": .object(["plan": "x"])])])
            let events = try await world.events()
            #expect(events["quiet u"]?.personID == after.uuid)
            #expect(try await world.person("u")?.person.properties["plan"] == "pro")
        }
    }

    @Test(
        "Concurrent requests for the same people and session: one person each, every change, merge and session event applied",
        arguments: TestBackend.available)
    func concurrentRequests(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let session = "0190a3b2-eeee-7000-8000-000000000001"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for request in 0..<8 {
                    group.addTask {
                        var events = (0..<5).map { user in
                            Self.event("e", "user-\(user)", ["$set": .object(["r\(request)": .int(Int64(request))])])
                        }
                        // Each request also merges an anonymous person of its own into user-0.
                        events.insert(Self.event("anon", "anon-\(request)", ["$set_once": .object(["a\(request)": true])]), at: 0)
                        events.append(Self.event("$identify", "user-0", ["$anon_distinct_id": .string("anon-\(request)")]))
                        events.append(
                            Self.event(
                                "$pageview", "user-\(request % 5)", ["$session_id": .string(session)],
                                timestamp: "2026-01-01T10:00:0\(request)Z"))
                        try await world.send(events)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await world.personCount() == 5)
            for user in 1..<5 { #expect(try await world.person("user-\(user)")?.person.properties.count == 8) }
            let merged = try #require(try await world.person("user-0")).person
            #expect(merged.properties.count == 16)
            for request in 0..<8 { #expect(try await world.person("anon-\(request)")?.person.uuid == merged.uuid) }
            let built = try await server.database.read { try await SessionStore().find(teamID: world.team, sessionIDs: [session], on: $0) }
            #expect(built[session]?.pageviews == 8 && built[session]?.durationSeconds == 7)
        }
    }

    @Test("On PostgreSQL a request that changes no person takes no person lock; one that changes a person waits for its lock")
    func unchangedPersonsTakeNoLock() async throws {
        guard TestBackend.available.contains(.postgres) else { return }
        try await TestServer.run(.postgres) { server in
            let world = try await Self.world(server)
            try await world.send([Self.event("first", "u", ["$set": .object(["plan": "pro"])])])
            let person = try #require(try await world.person("u")).person
            // Another transaction holds what a changing request locks: u's distinct id and person row.
            let (locked, lockedSignal) = AsyncStream<Void>.makeStream()
            let (release, releaseSignal) = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await server.database.transaction { connection in
                    try await PersonStore().lock(teamID: world.team, keys: ["d:u"], on: connection)
                    _ = try await connection.query(
                        "SELECT uuid FROM persons WHERE team_id = $1 AND uuid = $2 FOR UPDATE",
                        [.int(world.team), .text(person.uuid)])
                    lockedSignal.yield()
                    for await _ in release { break }
                }
            }
            for await _ in locked { break }
            let timedOut = Task {
                try await Task.sleep(for: .seconds(60))
                releaseSignal.yield()
            }
            // The same values again, and a personless event: stored and stamped while the lock is held.
            let clock = ContinuousClock()
            let started = clock.now
            try await world.send([
                Self.event("same", "u", ["$set": .object(["plan": "pro"])]),
                Self.event("quiet", "u", ["$process_person_profile": false]),
            ])
            // Waiting for the lock would take the 60 s until it is released; the margin is for a
            // loaded machine (6.8 s was once measured in the parallel phase).
            #expect(clock.now - started < .seconds(30), "a request changing nothing waited for the person's lock")
            let stamped = try await world.events()
            #expect(stamped["same"]?.personID == person.uuid)
            #expect(try stamped["same"]?.personProperties.map(JSONParser.parse) == .object(["plan": "pro"]))
            #expect(try await world.person("u")?.person.version == person.version)
            // A change waits until the lock is released, then applies.
            let changing = Task { try await world.send([Self.event("change", "u", ["$set": .object(["plan": "team"])])]) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await world.events()["change"] == nil)
            releaseSignal.yield()
            try await holder.value
            try await changing.value
            timedOut.cancel()
            let changed = try #require(try await world.person("u")).person
            #expect(changed.properties["plan"] == "team" && changed.version == person.version + 1)
            #expect(try await world.events()["change"]?.personProperties.map(JSONParser.parse) == .object(["plan": "team"]))
        }
    }

    @Test("A changed person brings all its distinct ids into the next window of the persons export", arguments: TestBackend.available)
    func changedPersonsExportAllDistinctIDs(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let models = ModelRecordStore(database: server.database)
            func window(from start: Timestamp) async throws -> [PersonRecord] {
                var all: [PersonRecord] = []
                let query = ModelQuery(
                    teamID: world.team, start: start, end: Timestamp(microseconds: Timestamp.now().microseconds + 1), isBackfill: false)
                for try await page in models.persons(query, batchSize: 1) { all += page }
                return all
            }
            let first = Timestamp.now()
            try await world.send([Self.event("e", "anon"), Self.event("$identify", "user", ["$anon_distinct_id": "anon"])])
            #expect(try await window(from: first).map(\.distinctID).sorted() == ["anon", "user"])
            try await Task.sleep(for: .milliseconds(5))
            let second = Timestamp.now()
            #expect(try await window(from: second).isEmpty)
            // An event of one distinct id changes the person: both of its rows changed.
            try await world.send([Self.event("e", "anon", ["$set": .object(["plan": "pro"])])])
            let changed = try await window(from: second)
            #expect(changed.map(\.distinctID).sorted() == ["anon", "user"])
            #expect(changed.allSatisfy { $0.personVersion == changed[0].personVersion && $0.insertedAt >= second })
            #expect(try JSONParser.parse(changed[0].properties)["plan"] == "pro")
        }
    }

    @Test("Sessions are built from interleaved, out-of-order events", arguments: TestBackend.available)
    func sessions(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            let s1 = "0190a3b2-aaaa-7000-8000-000000000001"
            let s2 = "0190a3b2-bbbb-7000-8000-000000000002"
            func hit(_ name: String, _ session: String, _ at: String, _ url: String?, _ more: JSONObject = [:]) -> JSONValue {
                var properties: JSONObject = ["$session_id": .string(session)]
                if let url { properties["$current_url"] = .string(url) }
                for entry in more.entries { properties[entry.key] = entry.value }
                return Self.event(name, session == s1 ? "visitor-1" : "visitor-2", properties, timestamp: at)
            }
            try await world.send([
                hit("$pageview", s1, "2026-01-01T10:00:05Z", "https://shop.example/products?id=1"),
                hit("$pageview", s2, "2026-01-01T10:00:00Z", "https://blog.example/post", ["$referring_domain": "$direct"]),
                hit(
                    "$autocapture", s1, "2026-01-01T10:03:00Z", "https://shop.example/cart",
                    ["$external_click_url": "https://pay.example/checkout"]),
            ])
            // Later, an earlier event of session 1 arrives: it becomes the entry.
            try await world.send([
                hit(
                    "$pageview", s1, "2026-01-01T10:00:00Z", "https://shop.example/",
                    ["utm_source": "google", "utm_medium": "cpc", "gclid": "abc", "$referring_domain": "www.google.com"]),
                hit("custom", s1, "2026-01-01T10:04:00Z", nil),
            ])
            let found = try await server.database.read {
                try await SessionStore().find(teamID: world.team, sessionIDs: [s1, s2], on: $0)
            }
            let one = try #require(found[s1])
            #expect(one.entryURL?.value == "https://shop.example/" && one.endURL?.value == "https://shop.example/cart")
            #expect(one.exitURL == "https://pay.example/checkout")
            #expect(one.urls == ["https://shop.example/products?id=1", "https://shop.example/cart", "https://shop.example/"])
            #expect(one.pageviews == 2 && one.autocaptures == 1 && one.screens == 0)
            #expect(one.durationSeconds == 240 && one.isBounce == false)
            #expect(one.entry("utm_source") == "google" && one.entry("gclid") == "abc")
            #expect(one.channelType == "Paid Search")
            #expect(one.distinctID.value == "visitor-1")
            let two = try #require(found[s2])
            #expect(two.isBounce == true && two.channelType == "Direct" && two.durationSeconds == 0)
            let row = ModelProjectionCheck.sessionRow(one)
            #expect(row["entry_pathname"] == .string("/") && row["end_hostname"] == .string("shop.example"))
            #expect(row["exit_current_url"] == .string("https://pay.example/checkout"))
            #expect(row["session_id_v7"] != .null && row["duration"] == .int(240) && row["is_bounce"] == .bool(false))
        }
    }

    @Test("Persons API: list, ?distinct_id=, retrieve by uuid, delete, and scopes", arguments: TestBackend.available)
    func personsAPI(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Self.world(server)
            try await world.send([
                Self.event("e", "anon"),
                Self.event("$identify", "ann@x.com", ["$anon_distinct_id": "anon", "$set": .object(["email": "ann@x.com"])]),
                Self.event("e", "bo"),
            ])
            let key = world.owner.key
            for base in ["/api/environments/\(world.team)/persons/", "/api/projects/\(world.team)/persons/"] {
                let list = try await server.request("GET", base, key: key)
                #expect(list.status == 200 && list["count"] == 2, "\(list.text)")
                let filtered = try await server.request("GET", base + "?distinct_id=anon", key: key)
                let ann = try #require(filtered["results"]?.arrayValue?.first)
                #expect(filtered["count"] == 1)
                #expect(ann["name"] == "ann@x.com" && ann["properties"]?["email"] == "ann@x.com")
                #expect(Set((ann["distinct_ids"]?.arrayValue ?? []).compactMap(\.stringValue)) == ["anon", "ann@x.com"])
                #expect(ann.objectValue?.keys.map { $0 } == ["id", "name", "distinct_ids", "properties", "created_at", "uuid"])
                let uuid = ann["uuid"]?.stringValue ?? ""
                #expect(try await server.request("GET", base + "\(uuid)/", key: key)["uuid"] == .string(uuid))
                #expect(try await server.request("GET", base + "?distinct_id=nobody", key: key)["count"] == 0)
                #expect(try await server.request("GET", base + "not-a-uuid/", key: key).status == 404)
            }
            let readOnly = try await server.createKey(for: world.owner, scopes: ["person:read"])
            let base = "/api/environments/\(world.team)/persons/"
            let bo = try #require(
                try await server.request("GET", base + "?distinct_id=bo", key: readOnly)["results"]?.arrayValue?.first?["uuid"]?.stringValue
            )
            #expect(try await server.request("DELETE", base + "\(bo)/", key: readOnly).status == 403)
            let otherScope = try await server.createKey(for: world.owner, scopes: ["batch_export:read"])
            #expect(try await server.request("GET", base, key: otherScope).status == 403)
            let before = try #require(try await world.person("bo")).person
            #expect(try await server.request("DELETE", base + "\(bo)/", key: key).status == 204)
            #expect(try await server.request("GET", base + "\(bo)/", key: key).status == 404)
            #expect(try await server.request("GET", base, key: key)["count"] == 1)
            // Kept as deleted, a version up, for the persons export.
            let deleted = try await server.database.read {
                try await PersonStore().persons(teamID: world.team, uuids: [bo], on: $0)[bo]
            }
            #expect(deleted?.isDeleted == true && deleted?.version == before.version + 1)
            // The next event of that distinct id makes a new person; the id moves to it.
            try await world.send([Self.event("again", "bo")])
            let reborn = try #require(try await world.person("bo"))
            #expect(reborn.person.uuid != bo && reborn.mapping.version == 1)
        }
    }
}

/// A session's export row by column name.
enum ModelProjectionCheck {
    static func sessionRow(_ session: Session) -> [String: FileValue] {
        Dictionary(uniqueKeysWithValues: zip(ModelProjection.sessionColumns.map(\.name), ModelProjection.sessionRow(session)))
    }
}
