import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import Synchronization
import Testing

@testable import HedgerowAPI
@testable import HedgerowExport

/// The scheduler and the worker slots never wait on each other, and slots are shared fairly
/// (docs/engine.md §6).
@Suite("Engine scheduling and fair claiming")
struct EngineSchedulingTests {
    /// A clock the test moves.
    final class TestClock: Sendable {
        let now: Mutex<Timestamp>
        init(_ start: Timestamp) { now = Mutex(start) }
        func set(_ time: Timestamp) { now.withLock { $0 = time } }
        var read: @Sendable () -> Timestamp { { [self] in now.withLock { $0 } } }
    }

    /// One event in each of three hours, and a backfill of those hours for `export`.
    static func backfillThreeHours(_ server: TestServer, _ world: Fixtures.World, _ export: String) async throws {
        try await Fixtures.seedEvents(
            server, team: world.team, times: ["2024-01-01T10:15:00Z", "2024-01-01T11:15:00Z", "2024-01-01T12:15:00Z"])
        let backfill = try await server.request(
            "POST", world.base + "/\(export)/backfills/", key: world.member.key,
            json: .object(["start_at": "2024-01-01T10:00:00Z", "end_at": "2024-01-01T13:00:00Z"]))
        #expect(backfill.status == 201, "\(backfill.text)")
    }

    /// An engine with `slots` slots whose backfills may run three at once, its clock at `time`.
    static func engine(_ server: TestServer, slots: Int, at time: Timestamp) -> ExportEngine {
        var configuration = EngineConfiguration.forTests
        configuration.concurrency = slots
        configuration.backfillConcurrency = 3
        return ExportEngine(database: server.database, configuration: configuration, logger: TestBackend.logger, clock: { time })
    }

    static func completedRuns(_ server: TestServer, _ export: String) async throws -> Int {
        try await Fixtures.runs(server, export: export).filter { $0.status == "Completed" }.count
    }

    @Test(
        "A backfill of 40 one-hour runs into a receiver that answers in a minute does not delay a 5-minute export: each tick's run is created and completed within seconds, beside the backfill",
        arguments: TestBackend.available)
    func backfillDoesNotDelaySchedules(backend: TestBackend) async throws {
        try await Fixtures.withReceiver { receiver, port in
            try await TestServer.run(backend) { server in
                let world = try await Fixtures.world(server)
                await receiver.answerEach(after: .seconds(60))
                let http = try await Fixtures.httpExport(server, world, port: port)
                // One event in each hour of the backfill, so that every run POSTs.
                let hours = (0..<40).map {
                    Timestamp(microseconds: ISO8601.parse("2024-01-01T00:30:00Z")!.timestamp.microseconds + Int64($0) * 3_600_000_000)
                }
                try await Fixtures.seedEvents(server, team: world.team, times: hours.map(\.iso8601))
                let backfill = try await server.request(
                    "POST", world.base + "/\(http)/backfills/", key: world.member.key,
                    json: .object(["start_at": "2024-01-01T00:00:00Z", "end_at": "2024-01-02T16:00:00Z"]))
                #expect(backfill.status == 201, "\(backfill.text)")
                // Paused, so that the test's clock crossing an hour adds no scheduled run of its own; its backfill goes on.
                try await server.database.transaction { connection in
                    try await connection.execute("UPDATE batch_exports SET paused = $1 WHERE id = $2", [.bool(true), .text(http)])
                }
                let fast = try await Fixtures.createExport(
                    server, world, Fixtures.patched(Fixtures.noopExport, [("interval", "every 5 minutes")]))
                let created = try #require(try await server.database.read { try await BatchExportStore().find(id: fast, on: $0) }).export
                let schedule = try created.schedule()
                let firstTick = schedule.tick(atOrBefore: created.createdAt)

                let clock = TestClock(created.createdAt)
                var configuration = EngineConfiguration.forTests
                configuration.allowInsecureHTTP = true
                configuration.concurrency = 2
                configuration.pollInterval = .milliseconds(100)
                // The test's clock jumps minutes ahead: no lease may look expired meanwhile.
                configuration.leaseMicroseconds = 24 * 3_600_000_000
                let metrics = EngineMetrics()
                let engine = ExportEngine(
                    database: server.database, secrets: try SecretBox.load(server.configuration), configuration: configuration,
                    logger: TestBackend.logger, metrics: metrics, clock: clock.read)
                let running = Task { try await engine.run() }
                defer { running.cancel() }
                try await RunOutcomeTests.eventually("the backfill's first POST") { await !receiver.bodies.isEmpty }

                for tick in 1...3 {
                    // The tick's run becomes due 30 s after the tick.
                    let due = Timestamp(microseconds: firstTick.microseconds + Int64(tick) * 300_000_000 + 31_000_000)
                    clock.set(due)
                    let started = ContinuousClock.now
                    while try await Self.completedRuns(server, fast) < tick, ContinuousClock.now - started < .seconds(30) {
                        try await Task.sleep(for: .milliseconds(25))
                    }
                    let waited = ContinuousClock.now - started
                    // Well under the backfill run's minute, which the old loop made every tick wait for
                    // (about a second when the machine is quiet; 11 s was seen with the whole suite
                    // running on two cores, so the bound is the 15 s receiver of the acceptance).
                    #expect(waited < .seconds(15), "tick \(tick)'s run completed \(waited) after it was due")
                    // Beside the backfill: one of its runs is in flight, waiting for its answer.
                    let inFlight = try await Fixtures.runs(server, export: http).filter { $0.status == "Running" }
                    #expect(inFlight.count == 1, "tick \(tick): \(inFlight)")
                }
                // The latency histograms saw the three scheduled runs: created 1 s after they were due
                // (where the test's clock stood), started at once; the backfill's runs started too.
                let text = metrics.exposition()
                #expect(text.contains("hedgerow_batch_export_run_created_delay_seconds_bucket{le=\"0.5\"} 0\n"), "\(text)")
                #expect(text.contains("hedgerow_batch_export_run_created_delay_seconds_bucket{le=\"1.0\"} 3\n"), "\(text)")
                #expect(text.contains("hedgerow_batch_export_run_created_delay_seconds_count 3\n"), "\(text)")
                #expect(text.contains("hedgerow_batch_export_run_start_delay_seconds_count{kind=\"scheduled\"} 3\n"), "\(text)")
                #expect(!text.contains("hedgerow_batch_export_run_start_delay_seconds_count{kind=\"backfill\"} 0\n"), "\(text)")
                engine.shutDown()
                await receiver.release()
                _ = try? await running.value
            }
        }
    }

    @Test(
        "Claiming is fair: scheduled runs round-robin across teams and exports, before backfill runs, which never take the last slot",
        arguments: TestBackend.available)
    func fairClaiming(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let second = try await server.request(
                "POST", "/api/organizations/\(world.org)/projects/", key: world.owner.key, json: .object(["name": "Second"]))
            guard case .int(let otherTeam)? = second["id"] else { throw TestSetupError(description: "no second project") }
            let fiveMinutes = Fixtures.patched(Fixtures.noopExport, [("interval", "every 5 minutes")])
            // Team A: one export with two hours of runs to catch up, and one new export; team B: one new export.
            let behind = try await Fixtures.createExport(server, world, fiveMinutes)
            let fresh = try await Fixtures.createExport(server, world, fiveMinutes)
            let otherWorld = Fixtures.World(owner: world.owner, member: world.owner, org: world.org, team: otherTeam)
            let other = try await Fixtures.createExport(server, otherWorld, fiveMinutes)
            let now = Timestamp.now()
            try await server.database.transaction { connection in
                try await connection.execute(
                    "UPDATE batch_exports SET created_at = $1, scheduled_through = NULL WHERE id = $2",
                    [SQLValue(Timestamp(microseconds: now.microseconds - 2 * 3_600_000_000)), .text(behind)])
            }
            // And a backfill of the new export, three hours.
            try await Self.backfillThreeHours(server, world, fresh)

            let later = Timestamp(microseconds: now.microseconds + 11 * 60_000_000)
            func engine(slots: Int) -> ExportEngine { Self.engine(server, slots: slots, at: later) }
            try await engine(slots: 3).scheduleDueRuns()
            let due = try await Fixtures.runs(server, export: behind).count
            #expect(due >= 24, "two hours of 5-minute ticks to catch up: \(due)")

            // Three slots: the oldest run of each of the three exports, not three of the late export's.
            let first = try await engine(slots: 3).claim(limit: 3)
            #expect(Set(first.map(\.batchExportID)) == [behind, fresh, other])
            #expect(first.allSatisfy { $0.backfillID == nil })
            // A team's first before any team's second: team B's next run before team A's third.
            let next = try await engine(slots: 3).claim(limit: 2)
            #expect(Set(next.map(\.batchExportID)) == [behind, other] || Set(next.map(\.batchExportID)) == [fresh, other], "\(next)")

            // Backfill runs wait while scheduled runs are due: every claim takes scheduled runs only,
            // until none is left.
            var claims = 0
            while true {
                let claimed = try await engine(slots: 4).claim(limit: 4)
                if claimed.isEmpty || claimed.contains(where: { $0.backfillID != nil }) {
                    #expect(claimed.filter { $0.backfillID != nil }.count == 3, "then the backfill's runs, three at once: \(claimed)")
                    break
                }
                claims += 1
                #expect(claims < 20)
            }
            #expect(claims > 5)
        }
    }

    @Test(
        "Backfill runs never take a process's last free slot; with one slot, only when no scheduled run waits",
        arguments: TestBackend.available)
    func backfillsLeaveASlot(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let id = try await Fixtures.createExport(server, world)
            try await Self.backfillThreeHours(server, world, id)
            func engine(slots: Int) -> ExportEngine { Self.engine(server, slots: slots, at: .now()) }
            // Two free slots of two: one backfill run, though the backfill may run three at once.
            #expect(try await engine(slots: 2).claim(limit: 2).count == 1)
            // With that one running, none more in a process of two slots.
            #expect(try await engine(slots: 2).claim(limit: 1, backfillsRunning: 1).isEmpty)
            // A single slot, with no scheduled run waiting, takes one.
            #expect(try await engine(slots: 1).claim(limit: 1).count == 1)
        }
    }

    @Test(
        "A poll reads only exports with a run due or changed since: each records when its next run is due",
        arguments: TestBackend.available)
    func pollReadsOnlyDueExports(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let fiveMinutes = try await Fixtures.createExport(
                server, world, Fixtures.patched(Fixtures.noopExport, [("interval", "every 5 minutes")]))
            let hourly = try await Fixtures.createExport(server, world)
            let store = BatchExportStore()
            func looked(at time: Timestamp) async throws -> Set<String> {
                Set(try await server.database.read { try await store.active(dueBy: time, on: $0) }.rows.map(\.export.id))
            }
            let now = Timestamp.now()
            // New exports are looked at.
            #expect(try await looked(at: now) == [fiveMinutes, hourly])
            let engine = ExportEngine(database: server.database, configuration: .forTests, logger: TestBackend.logger, clock: { now })
            try await engine.scheduleDueRuns()
            // Then not until their next tick has settled: 30 s after a 5-minute tick, 60 s after an hourly one.
            func scheduledThrough(_ id: String) async throws -> Timestamp {
                try #require(try await server.database.read { try await store.find(id: id, on: $0) }?.export.scheduledThrough)
            }
            let next5 = Schedule(interval: .every5Minutes).tick(after: try await scheduledThrough(fiveMinutes))
            let nextHour = Schedule(interval: .hour).tick(after: try await scheduledThrough(hourly))
            #expect(try await looked(at: now).isEmpty)
            #expect(try await looked(at: Timestamp(microseconds: next5.microseconds + 29_000_000)).isEmpty)
            #expect(try await looked(at: Timestamp(microseconds: next5.microseconds + 30_000_000)) == [fiveMinutes])
            #expect(try await looked(at: Timestamp(microseconds: nextHour.microseconds + 60_000_000)) == [fiveMinutes, hourly])
            // A change brings an export back at the next poll.
            let patched = try await server.request(
                "PATCH", world.base + "/\(hourly)/", key: world.member.key, json: .object(["interval": "every 15 minutes"]))
            #expect(patched.status == 200, "\(patched.text)")
            #expect(try await looked(at: now) == [hourly])
        }
    }
}
