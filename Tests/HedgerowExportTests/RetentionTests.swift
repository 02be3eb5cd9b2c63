import Foundation
import HedgerowCore
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Testing

@testable import HedgerowAPI
@testable import HedgerowExport

/// `HEDGEROW_EVENT_RETENTION_DAYS` (docs/engine.md §8): old events every export has read are
/// deleted, the others kept; backfills before the horizon are refused.
@Suite("Event retention")
struct RetentionTests {
    static let day: Int64 = 86_400_000_000

    /// Events of `team` ingested `insertedDaysAgo` days ago with an event time `timestampDaysAgo` days ago.
    static func events(
        _ count: Int, team: Int64, insertedDaysAgo: Int64, timestampDaysAgo: Int64, now: Timestamp, name: String, padding: Int = 0
    ) -> [Event] {
        (0..<count).map { index in
            let inserted = Timestamp(microseconds: now.microseconds - insertedDaysAgo * day + Int64(index))
            let at = Timestamp(microseconds: now.microseconds - timestampDaysAgo * day + Int64(index))
            return Event(
                uuid: Identifiers.uuidV7(at: inserted), teamID: team, event: name, distinctID: "u",
                properties: padding > 0 ? JSONWriter.string(.object(["pad": .string(String(repeating: "x", count: padding))])) : "{}",
                personID: nil, personProperties: nil, elementsChain: nil, timestamp: at, createdAt: at, insertedAt: inserted)
        }
    }

    static func names(_ server: TestServer) async throws -> [String: Int] {
        try await server.database.read { connection in
            try await connection.query("SELECT event, COUNT(*) AS n FROM events GROUP BY event", [])
        }.reduce(into: [:]) { $0[$1.string("event") ?? ""] = Int($1.int("n") ?? 0) }
    }

    @Test(
        "Events past the horizon that every export has read are deleted; those an export will still read, and recent ones, are kept",
        arguments: TestBackend.available)
    func deletesOnlyWhatIsBehindEveryExport(backend: TestBackend) async throws {
        try await TestServer.run(backend, configure: { $0.engine.eventRetentionDays = 30 }) { server in
            let world = try await Fixtures.world(server)
            let now = Timestamp.now()
            let export = try await Fixtures.createExport(server, world)
            // The export has runs through 35 days ago: what was ingested before then, it has read.
            try await server.database.transaction { connection in
                try await connection.execute(
                    "UPDATE batch_exports SET scheduled_through = $1 WHERE id = $2",
                    [SQLValue(Timestamp(microseconds: now.microseconds - 35 * Self.day)), .text(export)])
            }
            // A second environment with no export at all.
            let second = try await server.request(
                "POST", "/api/organizations/\(world.org)/projects/", key: world.owner.key, json: .object(["name": "Second"]))
            guard case .int(let otherTeam)? = second["id"] else { throw TestSetupError(description: "no second project") }
            let store = SQLEventStore(database: server.database)
            // Large enough that the SQLite file has pages to give back.
            _ = try await store.append(
                Self.events(3_000, team: world.team, insertedDaysAgo: 40, timestampDaysAgo: 40, now: now, name: "read", padding: 2_000))
            _ = try await store.append(
                Self.events(5, team: world.team, insertedDaysAgo: 33, timestampDaysAgo: 33, now: now, name: "unread"))
            _ = try await store.append(Self.events(5, team: world.team, insertedDaysAgo: 1, timestampDaysAgo: 40, now: now, name: "late"))
            _ = try await store.append(
                Self.events(5, team: world.team, insertedDaysAgo: 10, timestampDaysAgo: 10, now: now, name: "recent"))
            _ = try await store.append(Self.events(7, team: otherTeam, insertedDaysAgo: 31, timestampDaysAgo: 31, now: now, name: "nobody"))

            let file: String? = if case .sqlite(let path) = server.configuration.database { path } else { nil }
            func fileSize() throws -> Int {
                guard let file else { return 0 }
                return (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            }
            if file != nil { try await server.database.releaseFreeSpace() }
            let before = try fileSize()

            var configuration = EngineConfiguration.forTests
            configuration.eventRetentionDays = 30
            let metrics = EngineMetrics()
            let engine = ExportEngine(
                database: server.database, configuration: configuration, logger: TestBackend.logger, metrics: metrics, clock: { now })
            #expect(try await engine.sweepExpiredEvents() == 3_007)
            #expect(try await Self.names(server) == ["unread": 5, "late": 5, "recent": 5])
            #expect(metrics.exposition().contains("hedgerow_events_deleted_total 3007\n"))
            if file != nil {
                let after = try fileSize()
                #expect(after < before / 2, "the SQLite file shrinks: \(before) → \(after) bytes")
            }
            // An unfinished scheduled run holds what it will read, whatever the export's progress.
            try await server.database.transaction { connection in
                try await connection.execute(
                    "UPDATE batch_exports SET scheduled_through = $1 WHERE id = $2",
                    [SQLValue(Timestamp(microseconds: now.microseconds - 2 * Self.day)), .text(export)])
            }
            let start = Timestamp(microseconds: now.microseconds - 34 * Self.day)
            let run = BatchExportRun(
                id: Identifiers.uuidV7(), batchExportID: export, backfillID: nil, dataIntervalStart: start,
                dataIntervalEnd: Timestamp(microseconds: start.microseconds + 3_600_000_000), createdAt: now)
            _ = try await server.database.transaction { try await BatchExportStore().insertRun(run, on: $0) }
            #expect(try await engine.sweepExpiredEvents() == 0)
            #expect(try await Self.names(server)["unread"] == 5)
            // Once it completed, they go.
            try await server.database.transaction { connection in
                try await connection.execute("UPDATE batch_export_runs SET status = 'Completed' WHERE id = $1", [.text(run.id)])
            }
            #expect(try await engine.sweepExpiredEvents() == 5)
            #expect(try await Self.names(server) == ["late": 5, "recent": 5])
        }
    }

    @Test("A backfill that reaches before the retention horizon is refused with a 400", arguments: TestBackend.available)
    func refusesBackfillsBeforeTheHorizon(backend: TestBackend) async throws {
        try await TestServer.run(backend, configure: { $0.engine.eventRetentionDays = 30 }) { server in
            let world = try await Fixtures.world(server)
            let export = try await Fixtures.createExport(server, world)
            let now = Timestamp.now()
            _ = try await SQLEventStore(database: server.database).append(
                Self.events(3, team: world.team, insertedDaysAgo: 5, timestampDaysAgo: 5, now: now, name: "e"))
            let old = Timestamp(microseconds: now.microseconds - 31 * Self.day)
            let refused = try await server.request(
                "POST", world.base + "/\(export)/backfills/", key: world.member.key,
                json: .object(["start_at": .string(old.iso8601), "end_at": .string(now.iso8601)]))
            #expect(refused.status == 400)
            #expect(refused["attr"] == "start_at")
            #expect(refused["detail"]?.stringValue?.contains("before the event retention horizon") == true, "\(refused.text)")
            #expect(try await server.request("GET", world.base + "/\(export)/backfills/", key: world.member.key)["results"] == [])
            let recent = Timestamp(microseconds: now.microseconds - 6 * Self.day)
            let accepted = try await server.request(
                "POST", world.base + "/\(export)/backfills/", key: world.member.key,
                json: .object(["start_at": .string(recent.iso8601), "end_at": .string(now.iso8601)]))
            #expect(accepted.status == 201, "\(accepted.text)")
        }
    }
}
