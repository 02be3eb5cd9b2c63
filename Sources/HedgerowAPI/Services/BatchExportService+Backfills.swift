import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowStore
import Logging

/// Backfills: validated in order (cheap checks first), counted outside any write transaction,
/// listed, cancelled with their unfinished runs.
extension BatchExportService {

    /// Validates a backfill request (docs/engine.md §6) in order, cheap checks first, then creates it.
    package func createBackfill(
        _ parent: BatchExportParent, id: String, body: JSONValue, principal: Principal
    ) async throws -> BatchExportBackfill {
        try await checkParent(parent, id: id, principal: principal)
        // The records are counted on a read connection with the statement time limit (a filter's
        // regular expression may be slow), never inside the write transaction.
        let stored = try await database.read { connection in
            try await self.export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
        }
        let now = clock()
        let plan = try await backfillPlan(stored, body: body, at: now)
        return try await database.transaction { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            let export = try await export(id, in: scope, on: connection)
            return try await createBackfill(
                export, start: plan.start, end: plan.end, earliest: plan.earliest, estimate: plan.estimate, at: now, on: connection)
        }
    }

    /// What a backfill of `body` would export (the console shows it before the backfill starts):
    /// the same checks as `createBackfill`, and the records counted, without creating anything.
    package func estimateBackfill(_ parent: BatchExportParent, id: String, body: JSONValue, principal: Principal) async throws -> Int64 {
        try await checkParent(parent, id: id, principal: principal)
        let stored = try await database.read { connection in
            try await self.export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
        }
        return try await backfillPlan(stored, body: body, at: clock()).estimate
    }

    /// A backfill request checked in order, cheap checks first, then the records in its range counted.
    func backfillPlan(
        _ export: BatchExport, body: JSONValue, at now: Timestamp
    ) async throws -> (start: Timestamp, end: Timestamp?, earliest: Timestamp, estimate: Int64) {
        let object = try BodyObject.require(body)
        let start = try backfillBound(object["start_at"], attr: "start_at", export: export)
        let end = try backfillBound(object["end_at"], attr: "end_at", export: export)
        guard let start else { throw APIError.required("start_at") }
        if end == nil, export.destinationType != .http, export.destinationType != .noOp {
            throw APIError.invalidInput("A backfill needs an 'end_at' for this destination")
        }
        if let end, start > end { throw APIError.invalidInput("The initial backfill datetime 'start_at' happens after 'end_at'") }
        if let end, end > now { throw APIError.invalidInput("The provided 'end_at' (\(end.iso8601)) is in the future") }
        if export.model == .events, let days = eventRetentionDays {
            let horizon = Timestamp(microseconds: now.microseconds - Int64(days) * 86_400_000_000)
            if start < horizon {
                throw APIError.invalidInput(
                    "The backfill starts at \(start.iso8601), before the event retention horizon: events older than \(days) days"
                        + " (before \(horizon.iso8601)) are deleted (HEDGEROW_EVENT_RETENTION_DAYS).", attr: "start_at")
            }
        }
        let query = EventQuery(
            teamID: export.teamID, field: .timestamp, start: start, end: end ?? now, includeEvents: export.includeEvents,
            excludeEvents: export.excludeEvents, filters: try checkedFilters(export))
        let events = SQLEventStore(database: database, statementTimeout: eventQueryTimeout)
        let models = ModelRecordStore(database: database, statementTimeout: eventQueryTimeout)
        let window = ModelQuery(teamID: export.teamID, start: start, end: end ?? now, isBackfill: true)
        let earliest: Timestamp?
        let estimate: Int
        do {
            switch export.model {
            case .persons: (earliest, estimate) = try await models.personsEstimate(window)
            case .sessions: (earliest, estimate) = try await models.sessionsEstimate(window)
            case .events:
                earliest = try await events.earliest(query)
                estimate = earliest == nil ? 0 : try await events.count(query)
            }
        } catch let timeout as StatementTimeout {
            throw APIError.invalidInput(
                "Counting the events to backfill took longer than \(timeout.seconds) s; the export's filters (a regular expression?) are too slow for this data."
            )
        }
        guard let earliest else { throw APIError.invalidInput("There is no data to backfill for this model.") }
        return (start, end, earliest, Int64(estimate))
    }

    /// One date-time bound: hour and minute exports need an offset; day and week exports take a
    /// date, read at `offset_hour` in the export's zone (and, for weeks, on `offset_day`).
    func backfillBound(_ value: JSONValue?, attr: String, export: BatchExport) throws(APIError) -> Timestamp? {
        guard let value, !value.isNull else { return nil }
        guard case .string(let text) = value, let parsed = ISO8601.parse(text) else {
            throw APIError.invalidInput("Input \(FieldParser.pythonString(value)) is not a valid ISO formatted datetime.")
        }
        switch export.interval {
        case .hour, .every5Minutes, .every15Minutes:
            guard parsed.hasOffset else { throw APIError.invalidInput("Input \(text) is naive.") }
            return parsed.timestamp
        case .day, .week:
            guard parsed.isDateOnly else {
                throw APIError.invalidInput(
                    "Input '\(text)' is not a valid ISO formatted date. Daily or weekly batch export backfills expect only the date component, but a time was included."
                )
            }
            // The date (parsed as UTC midnight) at `offset_hour` on the export's wall clock.
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = TimeZone(identifier: "UTC")!
            let day = utc.dateComponents([.year, .month, .day], from: parsed.timestamp.date)
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = try checkedSchedule(export).timeZone
            guard
                let local = calendar.date(
                    from: DateComponents(year: day.year, month: day.month, day: day.day, hour: export.offsetHour ?? 0))
            else { throw APIError.invalidInput("Input \(text) is not a valid ISO formatted datetime.") }
            if export.interval == .week, calendar.component(.weekday, from: local) - 1 != (export.offsetDay ?? 0) {
                let names = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
                throw APIError.invalidInput(
                    "Input \(text) is not on the correct day of the week for this batch export. This batch export runs weekly on \(names[export.offsetDay ?? 0])."
                )
            }
            return Timestamp(local)
        }
    }

    /// The most runs one backfill creates (a larger one is refused, never cut short).
    static let maximumBackfillRuns = 100_000

    /// Cuts `[start, end)` into the export's intervals and records the backfill with one run per
    /// interval, oldest first. Without `end` (HTTP, NoOp) it runs to the last tick before now.
    func createBackfill(
        _ export: BatchExport, start: Timestamp, end: Timestamp?, earliest: Timestamp? = nil, estimate: Int64?, at now: Timestamp,
        on connection: any SQLConnection
    ) async throws -> BatchExportBackfill {
        let schedule = try checkedSchedule(export)
        let adjusted = earliest.map { max(start, schedule.tick(atOrBefore: $0)) } ?? start
        var backfill = BatchExportBackfill(
            id: Identifiers.uuidV7(at: now), batchExportID: export.id, startAt: start, endAt: end, createdAt: now)
        backfill.adjustedStartAt = adjusted
        backfill.totalRecordsCount = estimate
        let ticks = schedule.ticks(after: adjusted, upTo: end ?? schedule.tick(atOrBefore: now), limit: Self.maximumBackfillRuns + 1)
        guard ticks.count <= Self.maximumBackfillRuns else {
            throw APIError.invalidInput(
                "This backfill would create more than \(Self.maximumBackfillRuns) runs, the most one backfill may have. Backfill a shorter range, or several ranges one after another."
            )
        }
        backfill.totalRuns = Int64(ticks.count)
        if ticks.isEmpty {
            backfill.status = .completed
            backfill.finishedAt = now
        }
        try await exports.insertBackfill(backfill, on: connection)
        let runs = ticks.enumerated().map { index, tick in
            let intervalStart =
                index == 0 ? max(adjusted, schedule.dataInterval(endingAt: tick).start) : schedule.dataInterval(endingAt: tick).start
            var run = BatchExportRun(
                id: Identifiers.uuidV7(at: now), batchExportID: export.id, backfillID: backfill.id, dataIntervalStart: intervalStart,
                dataIntervalEnd: tick, createdAt: Timestamp(microseconds: now.microseconds + Int64(index)))
            run.nextAttemptAt = now
            return run
        }
        try await exports.insertRuns(runs, on: connection)
        try await log(
            export.id, run: nil, .info,
            "Backfill \(backfill.id) created: \(ticks.count) run(s) from \(adjusted.iso8601) to \((end ?? ticks.last ?? adjusted).iso8601).",
            at: now, on: connection)
        return backfill
    }

    package func backfills(
        _ parent: BatchExportParent, id: String, principal: Principal, limit: Int, offset: Int
    ) async throws -> [BatchExportBackfill] {
        try await database.read { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            return try await exports.backfills(batchExportID: export.id, limit: limit, offset: offset, on: connection)
        }
    }

    package func backfill(
        _ parent: BatchExportParent, id: String, backfillID: String, principal: Principal
    ) async throws -> BatchExportBackfill {
        try await database.read { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            guard let canonical = Identifiers.canonicalUUID(backfillID),
                let backfill = try await exports.backfill(id: canonical, batchExportID: export.id, on: connection)
            else { throw APIError.notFound() }
            return backfill
        }
    }

    package func cancelBackfill(_ parent: BatchExportParent, id: String, backfillID: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            guard let canonical = Identifiers.canonicalUUID(backfillID),
                let found = try await exports.backfill(id: canonical, batchExportID: export.id, on: connection)
            else { throw APIError.notFound() }
            guard found.status == .starting || found.status == .running else {
                throw APIError.invalidInput("Cannot cancel a backfill that is in '\(found.status.rawValue)' status")
            }
            let now = clock()
            // The runs first, then the backfill's row: the engine locks them in that order (claiming
            // a run, finishing a backfill), and the opposite order here deadlocked against it on
            // PostgreSQL (a 500 for the cancel). The backfill is read again once its runs are held.
            try await cancelUnfinished(batchExportID: export.id, backfillID: found.id, at: now, on: connection)
            let current = try await exports.backfill(id: found.id, batchExportID: export.id, on: connection)
            guard var backfill = current, backfill.status == .starting || backfill.status == .running else {
                throw APIError.invalidInput("Cannot cancel a backfill that is in '\((current ?? found).status.rawValue)' status")
            }
            backfill.status = .cancelled
            backfill.finishedAt = now
            backfill.lastUpdatedAt = now
            try await exports.updateBackfill(backfill, on: connection)
            try await log(export.id, run: nil, .info, "Backfill \(backfill.id) cancelled.", at: now, on: connection)
        }
    }
}
