import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowStore
import Logging

/// Runs and logs: the run history with its filters, retry and cancel, the export's log lines.
extension BatchExportService {

    package struct RunFilter: Sendable {
        package var statuses: [RunStatus] = []
        package var after: Timestamp?
        package var before: Timestamp?
        package var ordering = "-created_at"
        package init() {}
    }

    package func runs(
        _ parent: BatchExportParent, id: String, filter: RunFilter, principal: Principal, limit: Int, offset: Int
    ) async throws -> [BatchExportRun] {
        try await database.read { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            let descending = filter.ordering.hasPrefix("-")
            return try await exports.runs(
                batchExportID: export.id, statuses: filter.statuses,
                after: filter.after ?? Timestamp(microseconds: clock().microseconds - 7 * 86_400_000_000),
                before: filter.before, ordering: String(filter.ordering.drop { $0 == "-" }), descending: descending, limit: limit,
                offset: offset,
                on: connection)
        }
    }

    package func run(_ parent: BatchExportParent, id: String, runID: String, principal: Principal) async throws -> BatchExportRun {
        try await database.read { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            return try await findRun(runID, export: export, on: connection)
        }
    }

    func findRun(_ runID: String, export: BatchExport, on connection: any SQLConnection) async throws -> BatchExportRun {
        guard let canonical = Identifiers.canonicalUUID(runID),
            let run = try await exports.run(id: canonical, batchExportID: export.id, on: connection)
        else { throw APIError.notFound() }
        return run
    }

    /// A retry is a one-interval backfill of the run's interval.
    package func retry(_ parent: BatchExportParent, id: String, runID: String, principal: Principal) async throws -> String {
        try await database.transaction { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            let run = try await findRun(runID, export: export, on: connection)
            let end = run.dataIntervalEnd
            let start = try run.dataIntervalStart ?? checkedSchedule(export).dataInterval(endingAt: end).start
            return try await createBackfill(export, start: start, end: end, estimate: nil, at: clock(), on: connection).id
        }
    }

    package func cancelRun(_ parent: BatchExportParent, id: String, runID: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            var run = try await findRun(runID, export: export, on: connection)
            // docs/api.md, Batch exports lets a user cancel only runs that have not failed yet.
            guard run.status == .starting || run.status == .running else {
                throw APIError.invalidInput("Cannot cancel a run that is in '\(run.status.rawValue)' status")
            }
            let now = clock()
            run = try RunTransition.cancel(at: now).apply(to: run)
            try await exports.updateRun(run, on: connection)
            try await log(export.id, run: run.id, .info, "Run cancelled.", at: now, on: connection)
        }
    }

    // MARK: Logs

    package struct LogFilter: Sendable {
        package var limit = 50
        package var after: Timestamp?
        package var before: Timestamp?
        package var level: LogLevel?
        package var search: String?
        package var runID: String?
        package init() {}
    }

    package func logs(_ parent: BatchExportParent, id: String, filter: LogFilter, principal: Principal) async throws -> [BatchExportLog] {
        try await database.read { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            return try await exports.logs(
                batchExportID: export.id, runID: filter.runID, level: filter.level, search: filter.search, after: filter.after,
                before: filter.before,
                limit: filter.limit, on: connection)
        }
    }

    func log(
        _ exportID: String, run: String?, _ level: LogLevel, _ message: String, at time: Timestamp, on connection: any SQLConnection
    ) async throws {
        try await exports.log(batchExportID: exportID, runID: run, level: level, message: message, at: time, on: connection)
    }

    func cancelUnfinished(batchExportID: String, backfillID: String?, at now: Timestamp, on connection: any SQLConnection) async throws {
        try await exports.cancelUnfinished(
            batchExportID: batchExportID, backfillID: backfillID, includeScheduled: true, at: now, on: connection)
    }
}
