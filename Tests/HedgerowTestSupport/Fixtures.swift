import HedgerowCore
import HedgerowStore

/// Fixtures more than one test target uses.
package enum Fixtures {
    /// The console password the console tests give their users.
    package static let consolePassword = "correct horse battery"

    /// A NoOp batch export, hourly, as a create body.
    package static let noopExport: JSONValue = .object([
        "name": "nightly", "destination": .object(["type": "NoOp", "config": .object([:])]), "interval": "hour",
    ])

    /// An owner with an organization: its default environment's id and project token.
    package static func environment(_ server: TestServer) async throws -> (id: Int64, token: String, owner: TestUser) {
        let owner = try await server.createUser("owner@example.com")
        _ = try await server.createOrganization("Acme", owner: owner)
        let me = try await server.request("GET", "/api/users/@me/", key: owner.key)
        guard case .int(let id)? = me["team"]?["id"], case .string(let token)? = me["team"]?["api_token"] else {
            throw TestSetupError(description: "no environment")
        }
        return (id, token, owner)
    }

    /// Every stored event of an environment, in ingestion order.
    package static func stored(_ server: TestServer, team: Int64) async throws -> [Event] {
        var all: [Event] = []
        let query = EventQuery(
            teamID: team, field: .insertedAt, start: Timestamp(microseconds: 0), end: Timestamp(microseconds: Int64.max))
        for try await batch in SQLEventStore(database: server.database).batches(query, batchSize: 1000) { all += batch }
        return all
    }

    /// `count` events spread over 2024-01-01 10:00–11:00 UTC (and one on each side), with the
    /// awkward values files must carry: nulls, nested JSON, unicode, escapes. Returns those inside
    /// the hour.
    @discardableResult
    package static func seedHour(_ server: TestServer, team: Int64, count: Int, padding: Int = 0) async throws -> [Event] {
        let base = ISO8601.parse("2024-01-01T10:00:00Z")!.timestamp.microseconds
        let filler = String(repeating: "x", count: padding)
        let events = (-1...count).map { index in
            let at = Timestamp(microseconds: base + Int64(index) * (3_600_000_000 / Int64(max(count, 1))) + (index == count ? 1 : 0))
            return Event(
                uuid: Identifiers.uuidV7(at: at), teamID: team, event: index % 2 == 0 ? "$pageview" : "signed up \"é\"",
                distinctID: "user-\(index)", properties: #"{"n":\#(index),"nested":{"a":[1,null,"ü"]},"pad":"\#(filler)"}"#,
                personID: index % 3 == 0 ? nil : "person-\(index)", personProperties: index % 3 == 0 ? nil : #"{"plan":"pro"}"#,
                elementsChain: index % 4 == 0 ? "a:href=\"/x\"" : nil, timestamp: at, createdAt: at, insertedAt: at)
        }
        _ = try await SQLEventStore(database: server.database).append(events)
        return events.filter { $0.timestamp.microseconds >= base && $0.timestamp.microseconds < base + 3_600_000_000 }
    }

    /// A capture v1 request (`/i/v1/analytics/events`) with a project token and an optional body encoding.
    package static func postCaptureV1(
        _ server: TestServer, token: String?, body: [UInt8], encoding: String? = nil
    ) async throws -> TestResult {
        var headers = [("Content-Type", "application/json"), ("PostHog-Sdk-Info", "posthog-test/1.2.3")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        if let encoding { headers.append(("Content-Encoding", encoding)) }
        return try await server.request("POST", "/i/v1/analytics/events", body: body, headers: headers)
    }
}
