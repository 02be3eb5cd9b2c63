import Foundation
import HedgerowCore

/// PostHog's JSON for batch exports, runs, backfills and logs (docs/api.md, Batch exports, §4.3, §4.4).
enum BatchExportWire {
    static func time(_ value: Timestamp?) -> JSONValue { JSONValue(value?.iso8601) }

    static func export(_ detail: BatchExportService.Detail) -> JSONValue {
        let export = detail.export
        return .object([
            "id": .string(export.id),
            "team_id": .int(export.teamID),
            "name": .string(export.name),
            "model": .string(export.model.rawValue),
            "destination": .object([
                "type": .string(export.destinationType.rawValue),
                "config": .object(DestinationConfig.redacted(export.destinationConfig, type: export.destinationType)),
                "integration": export.destinationConfig["integration_id"].flatMap { $0.isNull ? nil : $0 } ?? .null,
            ]),
            "interval": .string(export.interval.rawValue),
            "paused": .bool(export.paused),
            "created_at": .string(export.createdAt.iso8601),
            "last_updated_at": .string(export.lastUpdatedAt.iso8601),
            "last_paused_at": time(export.lastPausedAt),
            "start_at": time(export.startAt),
            "end_at": time(export.endAt),
            "latest_runs": .array(detail.latestRuns.map(run)),
            "hogql_query": .string(export.hogqlQuery ?? ""),
            "schema": nil,
            "filters": export.filters ?? .null,
            "timezone": .string(export.timezone),
            "offset_day": JSONValue(export.offsetDay),
            "offset_hour": JSONValue(export.offsetHour),
        ])
    }

    static func run(_ run: BatchExportRun) -> JSONValue {
        .object([
            "id": .string(run.id),
            "status": .string(run.status.rawValue),
            "records_completed": JSONValue(run.recordsCompleted),
            "latest_error": JSONValue(run.latestError),
            "data_interval_start": time(run.dataIntervalStart),
            "data_interval_end": .string(run.dataIntervalEnd.iso8601),
            "cursor": JSONValue(run.cursor),
            "created_at": .string(run.createdAt.iso8601),
            "finished_at": time(run.finishedAt),
            "last_updated_at": .string(run.lastUpdatedAt.iso8601),
            "records_total_count": JSONValue(run.recordsTotalCount),
            "bytes_exported": JSONValue(run.bytesExported),
            "batch_export": .string(run.batchExportID),
            "backfill": JSONValue(run.backfillID),
        ])
    }

    static func backfill(_ backfill: BatchExportBackfill, teamID: Int64) -> JSONValue {
        let progress: JSONValue
        if let total = backfill.totalRuns {
            progress = .object([
                "total_runs": .int(total), "finished_runs": .int(backfill.finishedRuns),
                "progress": .double(total == 0 ? 1 : Double(backfill.finishedRuns) / Double(total)),
            ])
        } else {
            progress = .null
        }
        return .object([
            "id": .string(backfill.id),
            "progress": progress,
            "start_at": time(backfill.startAt),
            "end_at": time(backfill.endAt),
            "adjusted_start_at": time(backfill.adjustedStartAt),
            "status": .string(backfill.status.rawValue),
            "created_at": .string(backfill.createdAt.iso8601),
            "finished_at": time(backfill.finishedAt),
            "last_updated_at": .string(backfill.lastUpdatedAt.iso8601),
            "total_records_count": JSONValue(backfill.totalRecordsCount),
            // PostHog's serializer (`fields = "__all__"`) names the foreign key `team`.
            "team": .int(teamID),
            "batch_export": .string(backfill.batchExportID),
        ])
    }

    static func log(_ log: BatchExportLog) -> JSONValue {
        .object([
            "log_source_id": .string(log.batchExportID),
            "instance_id": JSONValue(log.runID),
            "timestamp": .string(log.timestamp.iso8601),
            "level": .string(log.level.rawValue),
            "message": .string(log.message),
        ])
    }
}

/// DRF's cursor pagination: `{next, previous, results}` with opaque `cursor` links.
struct CursorPagination {
    let pageSize: Int
    let offset: Int

    init(query: QueryString, pageSize: Int) {
        self.pageSize = pageSize
        if let cursor = query["cursor"], let data = Data(base64Encoded: cursor), let text = String(data: data, encoding: .utf8),
            text.hasPrefix("o="), let value = Int(text.dropFirst(2)), value >= 0, value < Int(Int32.max)
        {
            offset = value
        } else {
            offset = 0
        }
    }

    static func cursor(_ offset: Int) -> String { Data("o=\(offset)".utf8).base64EncodedString() }

    /// `fetched` holds up to `pageSize + 1` rows: the extra one says there is a next page.
    func page(_ fetched: [JSONValue], request: APIRequest) -> JSONValue {
        let next: JSONValue =
            fetched.count > pageSize
            ? .string(request.absoluteURL(query: request.query.setting("cursor", to: Self.cursor(offset + pageSize)))) : .null
        let previous: JSONValue =
            offset > 0
            ? .string(request.absoluteURL(query: request.query.setting("cursor", to: Self.cursor(max(0, offset - pageSize))))) : .null
        return .object(["next": next, "previous": previous, "results": .array(Array(fetched.prefix(pageSize)))])
    }
}
