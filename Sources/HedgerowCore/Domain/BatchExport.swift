import Foundation

/// What a batch export delivers (PostHog's `model`): every destination Hedgerow delivers to takes
/// all three, except HTTP (events only, as PostHog's).
package enum ExportModel: String, Sendable, CaseIterable {
    case events, persons, sessions
}

/// A batch export: a schedule that delivers an environment's events to a destination (docs/api.md, Batch exports).
package struct BatchExport: Sendable, Equatable {
    package var id: String
    package var teamID: Int64
    package var name: String
    package var model: ExportModel
    package var destinationType: DestinationType
    /// The whole configuration, secrets included (they are encrypted at rest and never returned).
    package var destinationConfig: JSONObject
    package var interval: Interval
    package var paused: Bool
    package var deleted: Bool
    package var createdAt: Timestamp
    package var lastUpdatedAt: Timestamp
    package var lastPausedAt: Timestamp?
    package var startAt: Timestamp?
    package var endAt: Timestamp?
    package var hogqlQuery: String?
    /// The filters as given (echoed back), nil when none.
    package var filters: JSONValue?
    package var timezone: String
    package var offsetDay: Int?
    package var offsetHour: Int?
    /// The last schedule tick the scheduler has created a run for.
    package var scheduledThrough: Timestamp?

    package init(
        id: String, teamID: Int64, name: String, model: ExportModel, destinationType: DestinationType, destinationConfig: JSONObject,
        interval: Interval, paused: Bool, createdAt: Timestamp, timezone: String = "UTC"
    ) {
        self.id = id
        self.teamID = teamID
        self.name = name
        self.model = model
        self.destinationType = destinationType
        self.destinationConfig = destinationConfig
        self.interval = interval
        self.paused = paused
        self.deleted = false
        self.createdAt = createdAt
        self.lastUpdatedAt = createdAt
        self.timezone = timezone
    }

    /// The export's schedule on its time zone, validated when saved. A zone this system no longer
    /// knows is an error: running the export in UTC instead would deliver the wrong intervals.
    package func schedule() throws(StoredExportError) -> Schedule {
        guard let zone = TimeZone(identifier: timezone) else {
            throw StoredExportError(message: "the export's time zone '\(timezone)' is not known to this server")
        }
        return Schedule(interval: interval, timeZone: zone, offsetDay: offsetDay ?? 0, offsetHour: offsetHour ?? 0)
    }

    /// The property filters, parsed. They were validated when saved; stored filters that no longer
    /// parse are an error, never "no filter" (that would export what the filters exclude).
    package func propertyFilters() throws(StoredExportError) -> [PropertyFilter] {
        do {
            return try PropertyFilter.parseList(filters ?? .null)
        } catch {
            throw StoredExportError(message: "the export's stored filters no longer parse: \(error.detail)")
        }
    }

    package var includeEvents: [String] { destinationConfig["include_events"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    package var excludeEvents: [String] { destinationConfig["exclude_events"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
}

/// A stored export that cannot be run as saved (a filter or time zone this build does not accept).
package struct StoredExportError: Error, Sendable, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

/// The states of a run (docs/api.md, Batch exports, docs/engine.md §5).
package enum RunStatus: String, Sendable, CaseIterable {
    case starting = "Starting", running = "Running", completed = "Completed", failed = "Failed"
    case failedRetryable = "FailedRetryable", failedBilling = "FailedBilling", cancelled = "Cancelled"
    case terminated = "Terminated", timedOut = "TimedOut", continuedAsNew = "ContinuedAsNew"

    /// Whether the run has ended for good.
    package var isFinished: Bool { [.completed, .failed, .failedBilling, .cancelled, .terminated, .timedOut].contains(self) }
}

/// One run: one data interval of one export.
package struct BatchExportRun: Sendable, Equatable {
    package var id: String
    package var batchExportID: String
    package var backfillID: String?
    package var status: RunStatus
    package var recordsCompleted: Int64?
    package var recordsTotalCount: Int64?
    package var bytesExported: Int64?
    package var latestError: String?
    package var dataIntervalStart: Timestamp?
    package var dataIntervalEnd: Timestamp
    package var cursor: String?
    package var createdAt: Timestamp
    package var finishedAt: Timestamp?
    package var lastUpdatedAt: Timestamp
    package var attempt: Int64
    package var nextAttemptAt: Timestamp?
    /// When the first attempt began (retries end `HEDGEROW_RUN_MAX_RETRY_HOURS` after it).
    package var firstAttemptAt: Timestamp?

    package init(
        id: String, batchExportID: String, backfillID: String?, dataIntervalStart: Timestamp?, dataIntervalEnd: Timestamp,
        createdAt: Timestamp
    ) {
        self.id = id
        self.batchExportID = batchExportID
        self.backfillID = backfillID
        self.status = .starting
        self.dataIntervalStart = dataIntervalStart
        self.dataIntervalEnd = dataIntervalEnd
        self.createdAt = createdAt
        self.lastUpdatedAt = createdAt
        self.attempt = 0
        self.nextAttemptAt = createdAt
    }
}

/// A backfill: runs over a past range (docs/engine.md §6, docs/engine.md §6).
package struct BatchExportBackfill: Sendable, Equatable {
    package var id: String
    package var batchExportID: String
    package var startAt: Timestamp?
    package var endAt: Timestamp?
    package var adjustedStartAt: Timestamp?
    package var status: RunStatus
    package var createdAt: Timestamp
    package var finishedAt: Timestamp?
    package var lastUpdatedAt: Timestamp
    package var totalRecordsCount: Int64?
    package var totalRuns: Int64?
    /// Runs Completed or Failed (not stored: counted from the runs).
    package var finishedRuns: Int64 = 0

    package init(id: String, batchExportID: String, startAt: Timestamp?, endAt: Timestamp?, createdAt: Timestamp) {
        self.id = id
        self.batchExportID = batchExportID
        self.startAt = startAt
        self.endAt = endAt
        self.status = .starting
        self.createdAt = createdAt
        self.lastUpdatedAt = createdAt
    }
}

/// The level of a line of an export's log (PostHog's names).
package enum LogLevel: String, Sendable, CaseIterable {
    case debug = "DEBUG", info = "INFO", warning = "WARNING", error = "ERROR", log = "LOG"
}

/// A line of an export's log, shown by `/logs/`.
package struct BatchExportLog: Sendable, Equatable {
    package var id: String
    package var batchExportID: String
    package var runID: String?
    package var level: LogLevel
    package var message: String
    package var timestamp: Timestamp

    package init(id: String, batchExportID: String, runID: String?, level: LogLevel, message: String, timestamp: Timestamp) {
        self.id = id
        self.batchExportID = batchExportID
        self.runID = runID
        self.level = level
        self.message = message
        self.timestamp = timestamp
    }
}
