import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Logging
import Testing

@testable import HedgerowAPI
@testable import HedgerowExport

@Suite("Batch exports API (docs/api.md, Batch exports)")
struct BatchExportTests {

    static let noop = Fixtures.noopExport

    @Test("Create answers 201 with PostHog's fields in order; any member may create", arguments: TestBackend.available)
    func create(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let result = try await server.request("POST", world.base + "/", key: world.member.key, json: Self.noop)
            #expect(result.status == 201)
            #expect(
                result.json.objectValue?.keys == [
                    "id", "team_id", "name", "model", "destination", "interval", "paused", "created_at", "last_updated_at",
                    "last_paused_at",
                    "start_at", "end_at", "latest_runs", "hogql_query", "schema", "filters", "timezone", "offset_day", "offset_hour",
                ])
            #expect(result["team_id"] == .int(world.team))
            #expect(result["model"] == "events")
            #expect(result["destination"] == .object(["type": "NoOp", "config": .object(["arg": ""]), "integration": nil]))
            #expect(result["paused"] == false)
            #expect(result["latest_runs"] == [])
            #expect(result["hogql_query"] == "")
            #expect(result["timezone"] == "UTC")
            let id = try #require(result["id"]?.stringValue)
            for path in [
                "/api/organizations/\(world.org)/batch_exports/\(id)/", "/api/projects/\(world.team)/batch_exports/\(id)/",
                world.base + "/\(id)/",
            ] {
                #expect(try await server.request("GET", path, key: world.owner.key)["name"] == "nightly", "\(path)")
            }
        }
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        let changes: [(String, JSONValue)]
        let code: String
        let detail: String
        let attr: String?
        var testDescription: String { detail }
    }

    static let invalid: [Invalid] = [
        Invalid(changes: [("name", nil)], code: "null", detail: "This field may not be null.", attr: "name"),
        Invalid(changes: [("name", "")], code: "blank", detail: "This field may not be blank.", attr: "name"),
        Invalid(changes: [("interval", "minute")], code: "invalid_choice", detail: "\"minute\" is not a valid choice.", attr: "interval"),
        Invalid(changes: [("model", "groups")], code: "invalid_choice", detail: "\"groups\" is not a valid choice.", attr: "model"),
        Invalid(
            changes: [
                ("model", "sessions"),
                ("destination", .object(["type": "HTTP", "config": .object(["url": "https://example.com/batch", "token": "t"])])),
            ], code: "invalid_input", detail: "HTTP batch exports only support the events model", attr: "destination"),
        Invalid(
            changes: [("destination", .object(["type": "Kafka"]))], code: "invalid_choice", detail: "\"Kafka\" is not a valid choice.",
            attr: "destination__type"),
        Invalid(
            changes: [("destination", .object(["type": "Databricks", "config": .object(["catalog": "c"])]))], code: "invalid_input",
            detail: "Configuration missing required field: 'http_path'", attr: "destination"),
        Invalid(
            changes: [("destination", .object(["type": "S3", "config": .object(["region": "us-east-1", "prefix": "p"])]))],
            code: "invalid_input", detail: "Configuration missing required field: 'bucket_name'", attr: "destination"),
        Invalid(
            changes: [("destination", .object(["type": "NoOp", "config": .object(["zap": 1])]))], code: "invalid_input",
            detail: "Configuration has unknown field/s: 'zap'", attr: "destination"),
        Invalid(
            changes: [("destination", .object(["type": "NoOp", "config": .object(["arg": 5])]))], code: "invalid_input",
            detail: "Configuration has invalid type: got 'int', expected 'str'", attr: "destination"),
        Invalid(
            changes: [("hogql_query", "SELECT event FROM events")], code: "invalid_input",
            detail: "Custom schemas (hogql_query) are not supported by this server yet: remove hogql_query to export the default schema.",
            attr: "hogql_query"),
        Invalid(
            changes: [("filters", [.object(["key": "data_interval_start", "data_interval_start": "2024-01-01"])])], code: "invalid_input",
            detail:
                "'data_interval_start' and 'data_interval_end' are run attributes and not 'filters'. Trigger a backfill if you wish to manually control which periods to batch export.",
            attr: "filters"),
        Invalid(
            changes: [("filters", [.object(["key": "k", "operator": "between", "value": 1])])], code: "invalid_input",
            detail:
                "Filter operator 'between' is not supported. Supported operators are: exact, is_not, icontains, not_icontains, regex, not_regex, gt, gte, lt, lte, is_set, is_not_set.",
            attr: "filters"),
        Invalid(
            changes: [("timezone", "Mars/Olympus")], code: "invalid_choice", detail: "\"Mars/Olympus\" is not a valid choice.",
            attr: "timezone"),
        Invalid(
            changes: [("offset_day", 2)], code: "invalid_input", detail: "offset_day is not applicable for non-weekly intervals",
            attr: "offset_day"),
        Invalid(
            changes: [("offset_hour", 3)], code: "invalid_input", detail: "offset_hour is not applicable for non-daily/weekly intervals",
            attr: "offset_hour"),
        Invalid(
            changes: [("interval", "week"), ("offset_day", 7)], code: "max_value", detail: "Ensure this value is less than or equal to 6.",
            attr: "offset_day"),
        Invalid(
            changes: [("start_at", "2024-02-01T00:00:00Z"), ("end_at", "2024-01-01T00:00:00Z")], code: "invalid_input",
            detail: "'start_at' must be before 'end_at'.", attr: "start_at"),
        Invalid(
            changes: [("start_at", "soon")], code: "invalid",
            detail: "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
            attr: "start_at"),
    ]

    @Test("Invalid configurations are refused with PostHog's messages and nothing is created", arguments: TestBackend.available, invalid)
    func validation(backend: TestBackend, testCase: Invalid) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let result = try await server.request(
                "POST", world.base + "/", key: world.member.key, json: Fixtures.patched(Self.noop, testCase.changes))
            result.expectError(400, type: "validation_error", code: testCase.code, detail: testCase.detail, attr: testCase.attr)
            #expect(try await server.request("GET", world.base + "/", key: world.member.key)["count"] == 0)
        }
    }

    @Test("Required fields on create and PUT", arguments: TestBackend.available)
    func requiredFields(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            for key in ["name", "destination", "interval"] {
                var body = Self.noop.objectValue!
                body[key] = nil
                try await server.request("POST", world.base + "/", key: world.member.key, json: .object(body)).expectError(
                    400, type: "validation_error", code: "required", detail: "This field is required.", attr: key)
            }
            let id = try await Fixtures.createExport(server, world)
            try await server.request("PUT", world.base + "/\(id)/", key: world.member.key, json: .object(["name": "x"])).expectError(
                400, type: "validation_error", code: "required", detail: "This field is required.", attr: "destination")
        }
    }

    @Test("Organization routes: team_id chooses the environment", arguments: TestBackend.available)
    func organizationLevelCreate(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let orgBase = "/api/organizations/\(world.org)/batch_exports/"
            // One environment: it is used.
            let single = try await server.request("POST", orgBase, key: world.owner.key, json: Self.noop)
            #expect(single["team_id"] == .int(world.team))
            let staging = try await server.request(
                "POST", "/api/projects/\(world.team)/environments/", key: world.owner.key, json: .object(["name": "Staging"]))
            guard case .int(let stagingID)? = staging["id"] else { Issue.record("no environment"); return }
            try await server.request("POST", orgBase, key: world.owner.key, json: Self.noop).expectError(
                400, type: "validation_error", code: "required", detail: "This field is required.", attr: "team_id")
            try await server.request("POST", orgBase, key: world.owner.key, json: Fixtures.patched(Self.noop, [("team_id", 999_999)]))
                .expectError(
                    400, type: "validation_error", code: "invalid_input", detail: "Environment not found in this organization.",
                    attr: "team_id")
            let chosen = try await server.request(
                "POST", orgBase, key: world.owner.key, json: Fixtures.patched(Self.noop, [("team_id", .int(stagingID))]))
            #expect(chosen["team_id"] == .int(stagingID))
            // The organization lists both; the environment route only its own.
            #expect(try await server.request("GET", orgBase, key: world.owner.key)["count"] == 2)
            #expect(try await server.request("GET", "/api/environments/\(stagingID)/batch_exports/", key: world.owner.key)["count"] == 1)
            // An export is not reachable through another environment's route.
            let id = try #require(chosen["id"]?.stringValue)
            #expect(try await server.request("GET", world.base + "/\(id)/", key: world.owner.key).status == 404)
            // On an environment route, the whole model as a generated client sends it (read-only
            // fields included) is accepted, and its team_id and id are ignored.
            let whole = try await server.request(
                "POST", world.base + "/", key: world.owner.key,
                json: Fixtures.patched(
                    Self.noop,
                    [
                        ("id", "00000000-0000-0000-0000-000000000000"), ("team_id", .int(stagingID)), ("latest_runs", []),
                        ("created_at", "2020-01-01T00:00:00Z"), ("last_updated_at", nil), ("last_paused_at", nil), ("schema", nil),
                    ]))
            #expect(whole.status == 201, "\(whole.text)")
            #expect(whole["team_id"] == .int(world.team) && whole["id"] != "00000000-0000-0000-0000-000000000000")
        }
    }

    @Test(
        "Who may use batch exports: members yes, outsiders 403, unknown organizations 404, scopes enforced",
        arguments: TestBackend.available)
    func permissions(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world)
            let outsider = try await server.createUser("out@example.com")
            try await server.request("GET", "/api/organizations/\(world.org)/batch_exports/", key: outsider.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "You do not have permission to perform this action.")
            try await server.request("GET", world.base + "/\(id)/", key: outsider.key).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "You do not have permission to perform this action.")
            try await server.request("GET", "/api/organizations/497f6eca-6276-4993-bfeb-53cbbbba6f08/batch_exports/", key: world.owner.key)
                .expectError(404, type: "invalid_request", code: "not_found", detail: "Organization not found.")
            try await server.request("GET", world.base + "/497f6eca-6276-4993-bfeb-53cbbbba6f08/", key: world.owner.key)
                .expectError(404, type: "invalid_request", code: "not_found", detail: "Not found.")
            #expect(try await server.request("GET", world.base + "/not-a-uuid/", key: world.owner.key).status == 404)
            let reader = try await server.createKey(for: world.member, scopes: ["batch_export:read"])
            #expect(try await server.request("GET", world.base + "/", key: reader).status == 200)
            for (method, path) in [
                ("POST", world.base + "/"), ("PATCH", world.base + "/\(id)/"), ("POST", world.base + "/\(id)/pause/"),
                ("POST", world.base + "/\(id)/backfills/"), ("DELETE", world.base + "/\(id)/"),
            ] {
                try await server.request(method, path, key: reader, json: Self.noop).expectError(
                    403, type: "authentication_error", code: "permission_denied",
                    detail: "API key missing required scope 'batch_export:write'")
            }
            let teamKey = try await server.createKey(for: world.member, scopes: ["batch_export:read"], scopedTeams: [world.team])
            #expect(try await server.request("GET", world.base + "/", key: teamKey).status == 200)
            #expect(try await server.request("GET", "/api/organizations/\(world.org)/batch_exports/", key: teamKey).status == 403)
        }
    }

    @Test("Update, type change, soft delete", arguments: TestBackend.available)
    func updateAndDelete(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world)
            let renamed = try await server.request(
                "PATCH", world.base + "/\(id)/", key: world.member.key,
                json: .object(["name": "renamed", "interval": "day", "offset_hour": 5]))
            #expect(renamed["name"] == "renamed")
            #expect(renamed["interval"] == "day")
            #expect(renamed["offset_hour"] == 5)
            try await server.request(
                "PATCH", world.base + "/\(id)/", key: world.member.key,
                json: .object(["destination": .object(["type": "HTTP", "config": .object([:])])])
            ).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "Cannot change destination type from 'NoOp' to 'HTTP'. Create a new batch export instead.", attr: "destination")
            let second = try await Fixtures.createExport(server, world)
            let list = try await server.request("GET", world.base + "/", key: world.member.key)
            #expect(list["results"]?.arrayValue?.map { $0["id"] } == [.string(second), .string(id)])
            #expect(try await server.request("DELETE", world.base + "/\(id)/", key: world.member.key).status == 204)
            #expect(try await server.request("GET", world.base + "/\(id)/", key: world.member.key).status == 404)
            #expect(try await server.request("GET", world.base + "/", key: world.member.key)["count"] == 1)
            #expect(try await server.request("DELETE", world.base + "/\(id)/", key: world.member.key).status == 404)
        }
    }

    @Test("Pause is idempotent; unpause with backfill covers the paused span", arguments: TestBackend.available)
    func pauseAndUnpause(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world, Fixtures.patched(Self.noop, [("interval", "every 5 minutes")]))
            #expect(try await server.request("POST", world.base + "/\(id)/pause/", key: world.member.key).json == .object(["paused": true]))
            let paused = try await server.request("GET", world.base + "/\(id)/", key: world.member.key)
            #expect(paused["paused"] == true)
            let pausedAt = paused["last_paused_at"]
            #expect(pausedAt != .null)
            #expect(try await server.request("POST", world.base + "/\(id)/pause/", key: world.member.key).status == 200)
            #expect(try await server.request("GET", world.base + "/\(id)/", key: world.member.key)["last_paused_at"] == pausedAt)
            // Pretend the pause started an hour ago.
            try await server.database.transaction { connection in
                try await connection.execute(
                    "UPDATE batch_exports SET last_paused_at = $1 WHERE id = $2",
                    [.int(Timestamp.now().microseconds - 3_600_000_000), .text(id)])
            }
            let unpaused = try await server.request(
                "POST", world.base + "/\(id)/unpause/", key: world.member.key, json: .object(["backfill": true]))
            #expect(unpaused.json == .object(["paused": false]))
            let backfills = try await server.request("GET", world.base + "/\(id)/backfills/", key: world.member.key)
            let backfill = try #require(backfills["results"]?.arrayValue?.first)
            let runs = Int(backfill["progress"]?["total_runs"]?.description ?? "") ?? 0
            #expect((11...13).contains(runs), "\(backfill)")
            #expect(
                try await server.request(
                    "POST", world.base + "/\(id)/unpause/", key: world.member.key, json: .object(["backfill": "maybe"])
                ).status == 400)
        }
    }

    @Test("Backfill requests are validated in order", arguments: TestBackend.available)
    func backfillValidation(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let hourly = try await Fixtures.createExport(server, world)
            let daily = try await Fixtures.createExport(server, world, Fixtures.patched(Self.noop, [("interval", "day")]))
            let weekly = try await Fixtures.createExport(
                server, world, Fixtures.patched(Self.noop, [("interval", "week"), ("offset_day", 1)]))
            func expect(_ id: String, _ body: JSONValue, _ detail: String) async throws {
                try await server.request("POST", world.base + "/\(id)/backfills/", key: world.member.key, json: body).expectError(
                    400, type: "validation_error", code: "invalid_input", detail: detail)
            }
            try await expect(
                hourly, .object(["start_at": "nope", "end_at": "2024-01-02T00:00:00Z"]), "Input nope is not a valid ISO formatted datetime."
            )
            try await expect(
                hourly, .object(["start_at": "2024-01-01T00:00:00", "end_at": "2024-01-02T00:00:00Z"]),
                "Input 2024-01-01T00:00:00 is naive.")
            try await expect(
                daily, .object(["start_at": "2024-01-01T05:00:00Z", "end_at": "2024-01-03"]),
                "Input '2024-01-01T05:00:00Z' is not a valid ISO formatted date. Daily or weekly batch export backfills expect only the date component, but a time was included."
            )
            try await expect(
                weekly, .object(["start_at": "2024-01-02", "end_at": "2024-01-15"]),
                "Input 2024-01-02 is not on the correct day of the week for this batch export. This batch export runs weekly on Monday.")
            try await expect(
                hourly, .object(["start_at": "2024-01-02T00:00:00Z", "end_at": "2024-01-01T00:00:00Z"]),
                "The initial backfill datetime 'start_at' happens after 'end_at'")
            try await expect(
                hourly, .object(["start_at": "2024-01-01T00:00:00Z", "end_at": "2999-01-01T00:00:00Z"]),
                "The provided 'end_at' (2999-01-01T00:00:00Z) is in the future")
            try await expect(
                hourly, .object(["start_at": "2024-01-01T00:00:00Z", "end_at": "2024-01-02T00:00:00Z"]),
                "There is no data to backfill for this model.")
            #expect(try await server.request("GET", world.base + "/\(hourly)/backfills/", key: world.member.key)["results"] == [])
        }
    }

    @Test(
        "Runs of a backfill are claimed oldest first, as many at once as the backfill concurrency allows", arguments: TestBackend.available)
    func backfillConcurrency(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world)
            try await Fixtures.seedEvents(
                server, team: world.team, times: ["2024-01-01T10:15:00Z", "2024-01-01T11:15:00Z", "2024-01-01T12:15:00Z"])
            let created = try await server.request(
                "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                json: .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T13:00:00Z"]))
            #expect(created.status == 201)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            func engine(_ concurrency: Int) -> ExportEngine {
                var configuration = EngineConfiguration.forTests
                configuration.backfillConcurrency = concurrency
                return ExportEngine(database: server.database, configuration: configuration, logger: logger)
            }
            // One at a time by default: only the oldest run may start.
            let first = try await engine(1).claim(limit: 5)
            #expect(first.map(\.dataIntervalEnd.iso8601) == ["2024-01-01T11:00:00Z"])
            // With 2, the next one joins it while the oldest is still running; the third waits.
            let second = try await engine(2).claim(limit: 5)
            #expect(second.map(\.dataIntervalEnd.iso8601) == ["2024-01-01T12:00:00Z"])
            #expect(try await engine(2).claim(limit: 5).isEmpty)
            let third = try await engine(3).claim(limit: 5)
            #expect(third.map(\.dataIntervalEnd.iso8601) == ["2024-01-01T13:00:00Z"])
        }
    }

    @Test("A backfill is cut into intervals, runs oldest first and records what it delivered", arguments: TestBackend.available)
    func backfillRuns(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world)
            try await Fixtures.seedEvents(
                server, team: world.team,
                times: [
                    "2024-01-01T09:59:59Z", "2024-01-01T10:15:00Z", "2024-01-01T11:00:00Z", "2024-01-01T11:30:00Z", "2024-01-01T12:30:00Z",
                    "2024-01-01T12:59:59Z",
                ])
            let created = try await server.request(
                "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                json: .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T12:45:00+00:00"]))
            #expect(created.status == 201)
            let backfillID = try #require(created["backfill_id"]?.stringValue)
            let before = try await server.request("GET", world.base + "/\(id)/backfills/\(backfillID)/", key: world.member.key)
            #expect(before["status"] == "Starting")
            #expect(before["total_records_count"] == 4)  // the estimate: events in [10:00, 12:45)
            #expect(before["progress"] == .object(["total_runs": 2, "finished_runs": 0, "progress": 0.0]))
            #expect(before["adjusted_start_at"] == "2024-01-01T10:00:00Z")
            try await Fixtures.engine(server).step()
            let after = try await server.request("GET", world.base + "/\(id)/backfills/\(backfillID)/", key: world.member.key)
            #expect(after["status"] == "Completed")
            #expect(after["total_records_count"] == 3)  // delivered: [10:00, 11:00) and [11:00, 12:00); the partial hour is not run
            #expect(after["progress"]?["progress"] == 1.0)
            let runs = try #require(
                try await server.request("GET", world.base + "/\(id)/runs/?ordering=data_interval_start", key: world.member.key)["results"]?
                    .arrayValue)
            #expect(runs.map { $0["data_interval_start"] } == ["2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"])
            #expect(runs.map { $0["records_completed"] } == [1, 2])
            #expect(runs.allSatisfy { $0["status"] == "Completed" && $0["backfill"] == .string(backfillID) })
            let latest = try await server.request("GET", world.base + "/\(id)/", key: world.member.key)
            #expect(latest["latest_runs"]?.arrayValue?.count == 2)
            // Cancel rules and retry.
            let runID = try #require(runs.first?["id"]?.stringValue)
            try await server.request("POST", world.base + "/\(id)/runs/\(runID)/cancel/", key: world.member.key).expectError(
                400, type: "validation_error", code: "invalid_input", detail: "Cannot cancel a run that is in 'Completed' status")
            let retry = try await server.request("POST", world.base + "/\(id)/runs/\(runID)/retry/", key: world.member.key)
            #expect(retry.status == 200)
            let retryBackfill = try #require(retry["backfill_id"]?.stringValue)
            let retried = try await server.request("GET", world.base + "/\(id)/backfills/\(retryBackfill)/", key: world.member.key)
            #expect(retried["progress"]?["total_runs"] == 1)
            #expect(
                try await server.request("POST", world.base + "/\(id)/backfills/\(retryBackfill)/cancel/", key: world.member.key).json
                    == .object(["cancelled": true]))
            #expect(
                try await server.request("GET", world.base + "/\(id)/backfills/\(retryBackfill)/", key: world.member.key)["status"]
                    == "Cancelled")
            try await server.request("POST", world.base + "/\(id)/backfills/\(retryBackfill)/cancel/", key: world.member.key).expectError(
                400, type: "validation_error", code: "invalid_input", detail: "Cannot cancel a backfill that is in 'Cancelled' status")
            let deprecated = try await server.request(
                "POST", world.base + "/\(id)/backfill/", key: world.member.key,
                json: .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T11:00:00Z"]))
            #expect(deprecated.status == 200)
            #expect(deprecated["backfill_id"]?.stringValue != nil)
        }
    }

    @Test(
        "The scheduler creates each due tick's run once, catches up missed ticks, and delivers by ingestion time",
        arguments: TestBackend.available)
    func scheduledRuns(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let service = BatchExportService(
                database: server.database, secrets: SecretBox.forTests, deliverable: [.noOp],
                clock: { ISO8601.parse("2024-03-01T10:02:00Z")!.timestamp })
            let principal = try await server.principal(world.member)
            let detail = try await service.create(
                .environment(String(world.team)), body: Fixtures.patched(Self.noop, [("interval", "every 5 minutes")]), principal: principal
            )
            // Inserted (received) inside the first ticks; one late event happened before the export existed.
            let store = SQLEventStore(database: server.database)
            func event(_ inserted: String, happened: String? = nil) -> Event {
                let at = ISO8601.parse(inserted)!.timestamp
                return Event(
                    uuid: Identifiers.uuidV7(at: at), teamID: world.team, event: "x", distinctID: "u", properties: "{}", personID: nil,
                    personProperties: nil,
                    elementsChain: nil, timestamp: ISO8601.parse(happened ?? inserted)!.timestamp, createdAt: at, insertedAt: at)
            }
            _ = try await store.append([
                event("2024-03-01T10:05:00Z"), event("2024-03-01T10:07:00Z", happened: "2024-02-01T00:00:00Z"),
                event("2024-03-01T10:14:59Z"),
                event("2024-03-01T10:16:00Z"),
            ])
            // The first tick after creation (10:02) is 10:05. At 10:16 the ticks 10:05, 10:10 and 10:15 are due
            // (settled 30 s); 10:20 is not.
            try await Fixtures.engine(server, at: "2024-03-01T10:16:00Z").step()
            let runs = try await server.database.read { connection in
                try await connection.query(
                    "SELECT data_interval_end, status, records_completed FROM batch_export_runs WHERE batch_export_id = $1 ORDER BY data_interval_end",
                    [.text(detail.export.id)])
            }
            #expect(
                runs.map { Timestamp(microseconds: $0.int("data_interval_end") ?? 0).iso8601 } == [
                    "2024-03-01T10:05:00Z", "2024-03-01T10:10:00Z", "2024-03-01T10:15:00Z",
                ])
            #expect(runs.map { $0.int("records_completed") } == [0, 2, 1])
            #expect(runs.allSatisfy { $0.string("status") == "Completed" })
            // Running again at the same time creates nothing new; later, the missed ticks are caught up in order.
            try await Fixtures.engine(server, at: "2024-03-01T10:16:00Z").step()
            try await Fixtures.engine(server, at: "2024-03-01T10:31:00Z").step()
            let later = try await server.database.read { connection in
                try await connection.query(
                    "SELECT data_interval_end, records_completed FROM batch_export_runs WHERE batch_export_id = $1 ORDER BY data_interval_end",
                    [.text(detail.export.id)])
            }
            #expect(later.count == 6)
            #expect(later.map { $0.int("records_completed") } == [0, 2, 1, 1, 0, 0])
            // Paused exports create no runs.
            try await service.pause(.environment(String(world.team)), id: detail.export.id, principal: principal)
            try await Fixtures.engine(server, at: "2024-03-01T11:31:00Z").step()
            let count = try await server.database.read {
                try await $0.first("SELECT COUNT(*) AS n FROM batch_export_runs WHERE batch_export_id = $1", [.text(detail.export.id)])?
                    .int("n")
            }
            #expect(count == 6)
        }
    }

    @Test("/metrics exposes run counters, records, retries, export lag and HTTP counts", arguments: TestBackend.available)
    func metrics(backend: TestBackend) async throws {
        try await TestServer.run(backend, configure: { $0.metricsToken = "metrics-token-for-tests" }) { server in
            let world = try await Fixtures.world(server)
            let service = BatchExportService(
                database: server.database, secrets: SecretBox.forTests, deliverable: [.noOp],
                clock: { ISO8601.parse("2024-03-01T10:02:00Z")!.timestamp })
            let detail = try await service.create(
                .environment(String(world.team)), body: Fixtures.patched(Self.noop, [("interval", "every 5 minutes")]),
                principal: try await server.principal(world.member))
            try await Fixtures.seedEvents(server, team: world.team, times: ["2024-03-01T10:06:00Z", "2024-03-01T10:07:00Z"])
            try await Fixtures.engine(server, at: "2024-03-01T10:16:00Z").step()
            _ = try await server.request("GET", "/_health")
            // On the API's port /metrics needs the metrics token.
            for header in [[], [("Authorization", "Bearer wrong")], [("Authorization", "Bearer \(world.owner.key)")]] {
                try await server.request("GET", "/metrics", headers: header).expectError(
                    401, type: "authentication_error", code: "authentication_failed",
                    detail: "A valid metrics token is required (Authorization: Bearer <HEDGEROW_METRICS_TOKEN>).")
            }
            let result = try await server.request("GET", "/metrics", headers: [("Authorization", "Bearer metrics-token-for-tests")])
            #expect(result.status == 200)
            #expect(result.header("Content-Type")?.hasPrefix("text/plain") == true)
            let text = result.text
            let labels = "batch_export=\"\(detail.export.id)\",destination=\"NoOp\""
            #expect(text.contains("hedgerow_batch_export_runs{status=\"Completed\"} 3"), "\(text)")
            #expect(text.contains("hedgerow_batch_export_records_exported_total{\(labels)} 2"))
            #expect(text.contains("hedgerow_batch_export_retries_total{\(labels)} 0"))
            #expect(text.contains("hedgerow_batch_export_run_seconds_count{\(labels)} 3"))
            // Lag: now minus 10:15, the end of the newest completed scheduled interval.
            let lagLine = text.split(separator: "\n").first { $0.hasPrefix("hedgerow_batch_export_lag_seconds{\(labels)}") }
            let lag = Double(lagLine?.split(separator: " ").last ?? "") ?? 0
            let expected = Double(Timestamp.now().microseconds - ISO8601.parse("2024-03-01T10:15:00Z")!.timestamp.microseconds) / 1e6
            #expect(abs(lag - expected) < 60)
            #expect(text.contains("hedgerow_http_requests_total{method=\"GET\",route=\"/_health\",status=\"200\"} 1"))
        }
        // Without a token, the API's port does not serve it at all (the metrics listener does).
        try await TestServer.run(backend) { server in
            try await server.request("GET", "/metrics").expectError(
                404, type: "invalid_request", code: "not_found", detail: "Not found.")
        }
    }

    @Test("A backfill without end_at (NoOp) catches up to the last tick, then unpauses the export", arguments: TestBackend.available)
    func openEndedBackfill(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world, Fixtures.patched(Self.noop, [("paused", true)]))
            let start = Timestamp(microseconds: (Timestamp.now().microseconds / 3_600_000_000 - 3) * 3_600_000_000)
            try await Fixtures.seedEvents(
                server, team: world.team, times: [Timestamp(microseconds: start.microseconds + 60_000_000).iso8601])
            let created = try await server.request(
                "POST", world.base + "/\(id)/backfills/", key: world.member.key, json: .object(["start_at": .string(start.iso8601)]))
            #expect(created.status == 201, "\(created.text)")
            let backfillID = try #require(created["backfill_id"]?.stringValue)
            let before = try await server.request("GET", world.base + "/\(id)/backfills/\(backfillID)/", key: world.member.key)
            #expect(before["end_at"] == .null)
            #expect((2...3).contains(Int(before["progress"]?["total_runs"]?.description ?? "") ?? 0))
            try await Fixtures.engine(server).step()
            #expect(
                try await server.request("GET", world.base + "/\(id)/backfills/\(backfillID)/", key: world.member.key)["status"]
                    == "Completed")
            #expect(try await server.request("GET", world.base + "/\(id)/", key: world.member.key)["paused"] == false)
        }
    }

    @Test("Runs list: filters, ordering and cursor pages", arguments: TestBackend.available)
    func runsList(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world, Fixtures.patched(Self.noop, [("interval", "every 5 minutes")]))
            try await Fixtures.seedEvents(server, team: world.team, times: ["2024-01-01T00:00:00Z"])
            let created = try await server.request(
                "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                json: .object(["start_at": "2024-01-01T00:00:00Z", "end_at": "2024-01-01T10:00:00Z"]))
            #expect(created.status == 201)
            let first = try await server.request("GET", world.base + "/\(id)/runs/", key: world.member.key, headers: [("Host", "h")])
            #expect(first.json.objectValue?.keys == ["next", "previous", "results"])
            #expect(first["results"]?.arrayValue?.count == 100)
            #expect(first["previous"] == .null)
            let next = try #require(first["next"]?.stringValue)
            #expect(next.hasPrefix("http://h\(world.base)/\(id)/runs/?cursor="))
            let second = try await server.request("GET", String(next.dropFirst("http://h".count)), key: world.member.key)
            #expect(second["results"]?.arrayValue?.count == 20)
            #expect(second["next"] == .null)
            #expect(second["previous"] != .null)
            #expect(try await server.request("GET", world.base + "/\(id)/runs/?status=Completed", key: world.member.key)["results"] == [])
            #expect(
                try await server.request("GET", world.base + "/\(id)/runs/?status=Starting", key: world.member.key)["results"]?.arrayValue?
                    .count == 100)
            try await server.request("GET", world.base + "/\(id)/runs/?status=Done", key: world.member.key).expectError(
                400, type: "validation_error", code: "invalid_choice", detail: "\"Done\" is not a valid choice.", attr: "status")
            try await server.request("GET", world.base + "/\(id)/runs/?ordering=name", key: world.member.key).expectError(
                400, type: "validation_error", code: "invalid_choice", detail: "\"name\" is not a valid choice.", attr: "ordering")
            let oldest = try await server.request("GET", world.base + "/\(id)/runs/?ordering=data_interval_start", key: world.member.key)
            #expect(oldest["results"]?.arrayValue?.first?["data_interval_start"] == "2024-01-01T00:00:00Z")
            let runID = try #require(oldest["results"]?.arrayValue?.first?["id"]?.stringValue)
            #expect(
                try await server.request("POST", world.base + "/\(id)/runs/\(runID)/cancel/", key: world.member.key).json
                    == .object(["cancelled": true]))
            #expect(try await server.request("GET", world.base + "/\(id)/runs/\(runID)/", key: world.member.key)["status"] == "Cancelled")
        }
    }

    @Test("Logs filter by level, search and limit", arguments: TestBackend.available)
    func logs(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world)
            _ = try await server.request("POST", world.base + "/\(id)/pause/", key: world.member.key)
            _ = try await server.request("POST", world.base + "/\(id)/unpause/", key: world.member.key)
            let all = try await server.request("GET", world.base + "/\(id)/logs/", key: world.member.key)
            let results = try #require(all["results"]?.arrayValue)
            #expect(results.count == 2)
            #expect(results[0].objectValue?.keys == ["log_source_id", "instance_id", "timestamp", "level", "message"])
            #expect(results[0]["log_source_id"] == .string(id))
            #expect(
                try await server.request("GET", world.base + "/\(id)/logs/?search=PAUSED", key: world.member.key)["results"]?.arrayValue?
                    .count == 2)
            #expect(
                try await server.request("GET", world.base + "/\(id)/logs/?search=unpause", key: world.member.key)["results"]?.arrayValue?
                    .count == 1)
            #expect(try await server.request("GET", world.base + "/\(id)/logs/?level=ERROR", key: world.member.key)["results"] == [])
            #expect(
                try await server.request("GET", world.base + "/\(id)/logs/?limit=1", key: world.member.key)["results"]?.arrayValue?.count
                    == 1)
            #expect(try await server.request("GET", world.base + "/\(id)/logs/?limit=501", key: world.member.key).status == 400)
            #expect(
                try await server.request("GET", world.base + "/\(id)/logs/?after=2999-01-01T00:00:00Z", key: world.member.key)["results"]
                    == [])
        }
    }

    @Test("A run's own log lines at runs/{id}/logs/ on every route; an unknown run is a 404", arguments: TestBackend.available)
    func runLogs(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world)
            try await Fixtures.seedEvents(server, team: world.team, times: ["2024-01-01T10:15:00Z", "2024-01-01T11:15:00Z"])
            _ = try await server.request(
                "POST", world.base + "/\(id)/backfills/", key: world.member.key,
                json: .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T12:00:00Z"]))
            try await Fixtures.engine(server).step()
            let runs = try #require(
                try await server.request("GET", world.base + "/\(id)/runs/", key: world.member.key)["results"]?.arrayValue)
            #expect(runs.count == 2)
            let runID = try #require(runs.first?["id"]?.stringValue)
            for base in [world.base, "/api/projects/\(world.team)/batch_exports", "/api/organizations/\(world.org)/batch_exports"] {
                let logs = try await server.request("GET", base + "/\(id)/runs/\(runID)/logs/", key: world.member.key)
                let lines = try #require(logs["results"]?.arrayValue, "\(base): \(logs.text)")
                #expect(!lines.isEmpty && lines.allSatisfy { $0["instance_id"] == .string(runID) })
                #expect(lines.contains { $0["message"]?.stringValue?.hasPrefix("Run completed") == true })
            }
            let all = try #require(
                try await server.request("GET", world.base + "/\(id)/logs/", key: world.member.key)["results"]?.arrayValue)
            #expect(
                all.count
                    > (try await server.request("GET", world.base + "/\(id)/runs/\(runID)/logs/", key: world.member.key)["results"]?
                        .arrayValue?.count ?? 0))
            #expect(
                try await server.request("GET", world.base + "/\(id)/runs/\(UUID().uuidString.lowercased())/logs/", key: world.member.key)
                    .status == 404)
        }
    }

    @Test("Secrets are sealed at rest, kept on PATCH, and never returned", arguments: TestBackend.available)
    func secrets(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            // Every type is accepted here, as the engine will accept them once it delivers them.
            let service = BatchExportService(
                database: server.database, secrets: SecretBox.forTests, deliverable: Set(DestinationType.allCases))
            let principal = try await server.principal(world.member)
            let password = "pa55-word-\(UUID().uuidString)"
            let body: JSONValue = .object([
                "name": "warehouse", "interval": "hour",
                "destination": .object([
                    "type": "Postgres",
                    "config": .object(["user": "loader", "password": .string(password), "host": "db", "database": "dw"]),
                ]),
            ])
            let created = try await service.create(.environment(String(world.team)), body: body, principal: principal)
            let rendered = JSONWriter.string(BatchExportWire.export(created))
            #expect(!rendered.contains(password))
            #expect(!rendered.contains("loader"))
            let row = try await server.database.read {
                try await $0.first(
                    "SELECT destination_config, destination_secrets FROM batch_exports WHERE id = $1", [.text(created.export.id)])
            }
            #expect(row?.string("destination_config")?.contains(password) == false)
            #expect(row?.string("destination_secrets")?.contains(password) == false)
            #expect(row?.string("destination_secrets")?.isEmpty == false)
            let patched = try await service.update(
                .environment(String(world.team)), id: created.export.id,
                body: .object(["destination": .object(["type": "Postgres", "config": .object(["database": "dw2"])])]), full: false,
                principal: principal)
            #expect(patched.export.destinationConfig["password"] == .string(password))
            #expect(patched.export.destinationConfig["database"] == "dw2")
            // Moving the stored password to another host needs it (and the user) again (issue #31 §6),
            // over PATCH and over a test step alike.
            let moved = try await server.request(
                "PATCH", world.base + "/\(created.export.id)/", key: world.member.key,
                json: .object(["destination": .object(["type": "Postgres", "config": .object(["host": "attacker.example"])])]))
            #expect(moved.status == 400 && moved["attr"] == "user", "\(moved.text)")
            #expect(
                moved["detail"] == "'user' must be given again when 'host' changes: a stored secret is sent only where it was saved for.")
            let probed = try await server.request(
                "POST", world.base + "/\(created.export.id)/run_test_step/", key: world.member.key,
                json: .object(["step": 0, "destination": .object(["type": "Postgres", "config": .object(["host": "attacker.example"])])]))
            #expect(probed.status == 400 && probed["attr"] == "user", "\(probed.text)")
            let partly = try await server.request(
                "PATCH", world.base + "/\(created.export.id)/", key: world.member.key,
                json: .object(["destination": .object(["type": "Postgres", "config": .object(["host": "db2", "user": "loader"])])]))
            #expect(partly.status == 400 && partly["attr"] == "password", "\(partly.text)")
            let resent = try await server.request(
                "PATCH", world.base + "/\(created.export.id)/", key: world.member.key,
                json: .object([
                    "destination": .object([
                        "type": "Postgres", "config": .object(["host": "db2", "user": "loader", "password": .string(password)]),
                    ])
                ]))
            #expect(resent.status == 200, "\(resent.text)")
            let fetched = try await server.request("GET", world.base + "/\(created.export.id)/", key: world.member.key)
            #expect(!fetched.text.contains(password))
            #expect(fetched["destination"]?["config"]?["host"] == "db2")
            #expect(fetched["destination"]?["config"]?["password"] == nil)
            let logs = try await server.request("GET", world.base + "/\(created.export.id)/logs/", key: world.member.key)
            #expect(!logs.text.contains(password))
        }
    }
}

extension SecretBox {
    static let forTests: SecretBox = {
        var configuration = HedgerowConfiguration(dataDirectory: NSTemporaryDirectory())
        configuration.secretKey = "hedgerow-test-secret"  // the key TestServer gives the app
        return try! SecretBox.load(configuration)
    }()
}
