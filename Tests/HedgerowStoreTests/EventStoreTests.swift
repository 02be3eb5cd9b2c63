import HedgerowCore
import HedgerowTestSupport
import Synchronization
import Testing

@testable import HedgerowStore

@Suite("Event store (docs/engine.md §2, §8)")
struct EventStoreTests {
    static let hour: Int64 = 3_600_000_000
    static let base: Int64 = 1_704_067_200_000_000  // 2024-01-01T00:00:00Z

    /// One environment to store events in.
    static func team(_ server: TestServer) async throws -> Int64 {
        let owner = try await server.createUser("owner@example.com")
        _ = try await server.createOrganization("Acme", owner: owner)
        let me = try await server.request("GET", "/api/users/@me/", key: owner.key)
        guard case .int(let id)? = me["team"]?["id"] else { throw TestSetupError(description: "no team") }
        return id
    }

    static func event(
        _ team: Int64, _ index: Int, name: String = "e", properties: String = "{}", person: String? = nil, time: Int64? = nil,
        inserted: Int64? = nil
    ) -> Event {
        let at = time ?? base + Int64(index) * 1_000_000
        return Event(
            uuid: Identifiers.uuidV7(at: Timestamp(microseconds: at)), teamID: team, event: name, distinctID: "d\(index)",
            properties: properties, personID: nil, personProperties: person, elementsChain: nil, timestamp: Timestamp(microseconds: at),
            createdAt: Timestamp(microseconds: inserted ?? at), insertedAt: Timestamp(microseconds: inserted ?? at))
    }

    static func collect(_ store: SQLEventStore, _ query: EventQuery, batchSize: Int = 1000) async throws -> [[Event]] {
        var batches: [[Event]] = []
        for try await batch in store.batches(query, batchSize: batchSize) { batches.append(batch) }
        return batches
    }

    @Test("A window larger than the batch size streams in order and completely", arguments: TestBackend.available)
    func streamsInOrder(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let team = try await Self.team(server)
            let store = SQLEventStore(database: server.database)
            // 2 500 events, many sharing a timestamp (the uuid breaks ties), shuffled on insert.
            let events = (0..<2_500).map { Self.event(team, $0, time: Self.base + Int64($0 / 7) * 1_000_000) }.shuffled()
            #expect(try await store.append(events) == 2_500)
            let query = EventQuery(
                teamID: team, field: .timestamp, start: Timestamp(microseconds: Self.base),
                end: Timestamp(microseconds: Self.base + Self.hour))
            let batches = try await Self.collect(store, query, batchSize: 300)
            #expect(batches.map(\.count) == Array(repeating: 300, count: 8) + [100])
            let streamed = batches.flatMap { $0 }
            #expect(streamed.count == 2_500)
            #expect(Set(streamed.map(\.uuid)).count == 2_500)
            let keys = streamed.map { ($0.timestamp.microseconds, $0.uuid) }
            #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 < $1 })
            #expect(try await store.count(query) == 2_500)
            #expect(try await store.earliest(query) == Timestamp(microseconds: Self.base))
            // An exact multiple of the batch size ends without an empty batch.
            #expect(try await Self.collect(store, query, batchSize: 500).map(\.count) == [500, 500, 500, 500, 500])
        }
    }

    @Test(
        "Pages of wide events hold fewer rows: about the page's bytes, sized from a sample first, then from what was read",
        arguments: TestBackend.available)
    func pagesAreBoundedByBytes(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let team = try await Self.team(server)
            let store = SQLEventStore(database: server.database)
            // 110 events of about 10 KB (more than the sample's 100), then 30 of about 1 KB.
            let wide = JSONWriter.string(.object(["pad": .string(String(repeating: "w", count: 10_000))]))
            let narrow = JSONWriter.string(.object(["pad": .string(String(repeating: "n", count: 1_000))]))
            let events = (0..<140).map { Self.event(team, $0, properties: $0 < 110 ? wide : narrow) }
            #expect(try await store.append(events) == 140)
            let query = EventQuery(
                teamID: team, field: .timestamp, start: Timestamp(microseconds: Self.base),
                end: Timestamp(microseconds: Self.base + Self.hour))
            var pages: [Int] = []
            for try await batch in store.batches(query, batchSize: 1_000, pageBytes: 50_000) { pages.append(batch.count) }
            // Four wide events to a page from the start (the sample), more once the narrow ones come.
            #expect(Array(pages.prefix(10)) == Array(repeating: 4, count: 10), "\(pages)")
            #expect(pages.reduce(0, +) == 140)
            #expect(pages.dropFirst(10).contains { $0 > 4 }, "\(pages)")
            // Under the default bound of 32 MiB, one page.
            #expect(try await Self.collect(store, query, batchSize: 1_000).map(\.count) == [140])
        }
    }

    @Test("The next page is read while the caller works on the current one; a short page is the last")
    func readsAhead() async throws {
        let events = (0..<5).map { Self.event(1, $0) }
        let fetched = Mutex<[String?]>([])
        let batches = EventBatches(field: .timestamp, batchSize: 2) { cursor in
            fetched.withLock { $0.append(cursor?.1) }
            let from = cursor.map { after in events.firstIndex { $0.uuid == after.1 }! + 1 } ?? 0
            return Array(events[from..<min(from + 2, events.count)])
        }
        var iterator = batches.makeAsyncIterator()
        #expect(try await iterator.next()?.map { $0.uuid } == events[0..<2].map(\.uuid))
        // The second page is asked for without another call to next(); a far limit, not a speed.
        var waited = 0
        while fetched.withLock({ $0.count }) < 2, waited < 1000 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        #expect(fetched.withLock { $0 } == [nil, events[1].uuid])
        #expect(try await iterator.next()?.map { $0.uuid } == events[2..<4].map(\.uuid))
        #expect(try await iterator.next()?.map { $0.uuid } == [events[4].uuid])
        #expect(try await iterator.next() == nil)
        #expect(fetched.withLock { $0 } == [nil, events[1].uuid, events[3].uuid])
    }

    @Test("Windows are half-open, on ingestion time or event time", arguments: TestBackend.available)
    func windows(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let team = try await Self.team(server)
            let store = SQLEventStore(database: server.database)
            // Happened in hour 0, arrived in hour 1 (a late event).
            let late = Self.event(team, 0, name: "late", time: Self.base + 10, inserted: Self.base + Self.hour + 10)
            let onTime = Self.event(team, 1, name: "on-time", time: Self.base + 20)
            let boundary = Self.event(team, 2, name: "boundary", time: Self.base + Self.hour)
            _ = try await store.append([late, onTime, boundary])
            func names(_ field: EventQuery.TimeField, _ hour: Int64) async throws -> [String] {
                let query = EventQuery(
                    teamID: team, field: field, start: Timestamp(microseconds: Self.base + hour * Self.hour),
                    end: Timestamp(microseconds: Self.base + (hour + 1) * Self.hour))
                return try await Self.collect(store, query).flatMap { $0 }.map(\.event).sorted()
            }
            #expect(try await names(.timestamp, 0) == ["late", "on-time"])
            #expect(try await names(.timestamp, 1) == ["boundary"])
            #expect(try await names(.insertedAt, 0) == ["on-time"])
            #expect(try await names(.insertedAt, 1) == ["boundary", "late"])
            let other = EventQuery(
                teamID: team + 1000, field: .timestamp, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max))
            #expect(try await store.count(other) == 0)
            #expect(try await store.earliest(other) == nil)
        }
    }

    @Test("A batch is stored all or nothing; stored uuids are skipped", arguments: TestBackend.available)
    func atomicAppend(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let team = try await Self.team(server)
            let store = SQLEventStore(database: server.database)
            let good = Self.event(team, 1)
            let orphan = Self.event(999_999, 2)  // no such environment: the foreign key fails
            await #expect(throws: (any Error).self) { _ = try await store.append([good, orphan]) }
            let all = EventQuery(
                teamID: team, field: .timestamp, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max))
            #expect(try await store.count(all) == 0)
            #expect(try await store.append([good]) == 1)
            #expect(try await store.append([good, Self.event(team, 3)]) == 1)
            #expect(try await store.count(all) == 2)
        }
    }

    @Test(
        "Text that COPY must escape (tab, newline, return, backslash, \\N, non-ASCII) and NULLs read back unchanged",
        arguments: TestBackend.available)
    func awkwardTextRoundTrips(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let team = try await Self.team(server)
            let store = SQLEventStore(database: server.database)
            var events: [Event] = []
            for index in 0..<5 {
                var event = Self.event(team, index, name: "tab\there\nnew\rline \\ back \\N ünï 🦔 \(index)")
                event.distinctID = "\\N"
                event.properties = #"{"k": "a\tb \\ c\n ü"}"#
                event.personID = index.isMultiple(of: 2) ? nil : "\t\\"
                event.personProperties = index.isMultiple(of: 2) ? nil : #"{"p": "\\N"}"#
                event.elementsChain = index.isMultiple(of: 2) ? "a:nth-child(1)\tb\\" : nil
                events.append(event)
            }
            #expect(try await store.append(events) == events.count)
            let all = EventQuery(
                teamID: team, field: .timestamp, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max))
            #expect(try await Self.collect(store, all).flatMap { $0 } == events)
        }
    }

    @Test("On PostgreSQL a new batch goes in by COPY; one holding a stored uuid goes by INSERT and returns only the new uuids")
    func postgresBatchesUseCopy() async throws {
        guard TestBackend.available.contains(.postgres) else { return }
        try await TestServer.run(.postgres) { server in
            let team = try await Self.team(server)
            let store = SQLEventStore(database: server.database)
            let first = (0..<1500).map { Self.event(team, $0) }
            let copied = try await server.database.transaction { connection -> Set<String>? in
                guard let copying = connection as? any SQLCopyConnection else { return nil }
                return try await SQLEventStore.copy(first, on: copying)
            }
            #expect(copied == Set(first.map(\.uuid)))
            let second = (1500..<3000).map { Self.event(team, $0) }
            let mixed = Array(second[..<700]) + [first[42]] + Array(second[700...])
            let refused = try await server.database.transaction { connection -> Set<String>? in
                guard let copying = connection as? any SQLCopyConnection else { return [] }
                return try await SQLEventStore.copy(mixed, on: copying)
            }
            #expect(refused == nil)
            let inserted = try await server.database.transaction { connection in
                try await store.appendReturningUUIDs(mixed, on: connection)
            }
            #expect(inserted == Set(second.map(\.uuid)))
            let all = EventQuery(
                teamID: team, field: .timestamp, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max))
            #expect(try await store.count(all) == 3000)
        }
    }

    struct FilterCase: Sendable, CustomTestStringConvertible {
        let filter: JSONValue
        let expected: [String]
        var testDescription: String { JSONWriter.string(filter) }
    }

    /// Events named after what they hold; each filter case lists the events it must select.
    static let filterEvents: [(String, String, String?)] = [
        (
            "chrome", #"{"browser":"Chrome","n":5,"ratio":2.5,"beta":true,"tags":["a","b"],"url":"https://Shop.example/cart"}"#,
            #"{"plan":"pro","age":"41"}"#
        ),
        ("firefox", #"{"browser":"Firefox","n":"12","beta":false,"url":"https://blog.example/post"}"#, #"{"plan":"free"}"#),
        ("nulls", #"{"browser":null,"n":"abc"}"#, nil),
        ("empty", "{}", #"{}"#),
    ]

    static let filterCases: [FilterCase] = [
        FilterCase(filter: .object(["key": "browser", "operator": "exact", "value": "Chrome"]), expected: ["chrome"]),
        FilterCase(filter: .object(["key": "browser", "value": ["Chrome", "Firefox"]]), expected: ["chrome", "firefox"]),
        FilterCase(filter: .object(["key": "n", "operator": "exact", "value": 5]), expected: ["chrome"]),
        FilterCase(filter: .object(["key": "beta", "operator": "exact", "value": true]), expected: ["chrome"]),
        FilterCase(filter: .object(["key": "browser", "operator": "is_not", "value": "Chrome"]), expected: ["empty", "firefox", "nulls"]),
        FilterCase(filter: .object(["key": "url", "operator": "icontains", "value": "shop.EXAMPLE"]), expected: ["chrome"]),
        FilterCase(
            filter: .object(["key": "url", "operator": "not_icontains", "value": "shop"]), expected: ["empty", "firefox", "nulls"]),
        FilterCase(filter: .object(["key": "url", "operator": "regex", "value": "^https://[a-z]+\\.example/"]), expected: ["firefox"]),
        FilterCase(filter: .object(["key": "url", "operator": "not_regex", "value": "cart$"]), expected: ["empty", "firefox", "nulls"]),
        FilterCase(filter: .object(["key": "n", "operator": "gt", "value": 5]), expected: ["firefox"]),
        FilterCase(filter: .object(["key": "n", "operator": "gte", "value": "5"]), expected: ["chrome", "firefox"]),
        FilterCase(filter: .object(["key": "n", "operator": "lt", "value": 12]), expected: ["chrome"]),
        FilterCase(filter: .object(["key": "ratio", "operator": "lte", "value": 2.5]), expected: ["chrome"]),
        FilterCase(filter: .object(["key": "browser", "operator": "is_set"]), expected: ["chrome", "firefox"]),
        FilterCase(filter: .object(["key": "browser", "operator": "is_not_set"]), expected: ["empty", "nulls"]),
        FilterCase(filter: .object(["key": "plan", "type": "person", "value": "pro"]), expected: ["chrome"]),
        FilterCase(filter: .object(["key": "age", "type": "person", "operator": "gt", "value": 40]), expected: ["chrome"]),
        FilterCase(filter: .object(["key": "plan", "type": "person", "operator": "is_not_set"]), expected: ["empty", "nulls"]),
    ]

    @Test("Every filter operator selects the same events on both stores", arguments: TestBackend.available, filterCases)
    func filterOperators(backend: TestBackend, testCase: FilterCase) async throws {
        try await TestServer.run(backend) { server in
            let team = try await Self.team(server)
            let store = SQLEventStore(database: server.database)
            _ = try await store.append(
                Self.filterEvents.enumerated().map { index, item in
                    Self.event(team, index, name: item.0, properties: item.1, person: item.2)
                })
            let query = EventQuery(
                teamID: team, field: .timestamp, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max),
                filters: [try PropertyFilter.parse(testCase.filter)])
            let selected = try await Self.collect(store, query).flatMap { $0 }.map(\.event).sorted()
            #expect(selected == testCase.expected)
            #expect(try await store.count(query) == testCase.expected.count)
        }
    }

    @Test("Filters combine with AND, and with event allow and deny lists", arguments: TestBackend.available)
    func combined(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let team = try await Self.team(server)
            let store = SQLEventStore(database: server.database)
            _ = try await store.append(
                Self.filterEvents.enumerated().map { index, item in
                    Self.event(team, index, name: item.0, properties: item.1, person: item.2)
                })
            var query = EventQuery(
                teamID: team, field: .timestamp, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max),
                filters: [
                    try PropertyFilter.parse(.object(["key": "browser", "operator": "is_set"])),
                    try PropertyFilter.parse(.object(["key": "n", "operator": "gte", "value": 6])),
                ])
            #expect(try await store.count(query) == 1)
            query.filters = []
            query.includeEvents = ["chrome", "nulls"]
            #expect(try await Self.collect(store, query).flatMap { $0 }.map(\.event).sorted() == ["chrome", "nulls"])
            query.includeEvents = []
            query.excludeEvents = ["chrome", "nulls"]
            #expect(try await Self.collect(store, query).flatMap { $0 }.map(\.event).sorted() == ["empty", "firefox"])
        }
    }

    @Test func filtersHedgerowCannotEvaluateAreRefused() {
        #expect(throws: APIError.self) { try PropertyFilter.parse(.object(["key": "k", "operator": "between", "value": 1])) }
        #expect(throws: APIError.self) { try PropertyFilter.parse(.object(["key": "k", "type": "hogql", "value": 1])) }
        #expect(throws: APIError.self) { try PropertyFilter.parse(.object(["key": "k", "operator": "gt", "value": "abc"])) }
        #expect(throws: APIError.self) { try PropertyFilter.parse(.object(["key": "k", "operator": "regex", "value": "("])) }
        #expect(throws: APIError.self) { try PropertyFilter.parse(.object(["key": "a\"b", "value": 1])) }
        #expect(throws: APIError.self) { try PropertyFilter.parse(.object(["operator": "exact", "value": 1])) }
        #expect(throws: APIError.self) { try PropertyFilter.parse(.object(["key": "k", "operator": "exact"])) }
        #expect(throws: Never.self) { try PropertyFilter.parse(.object(["key": "k", "operator": "is_set"])) }
    }
}
