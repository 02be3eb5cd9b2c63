import Foundation

/// What a batch export delivers (PostHog's `model`): every destination Hedgerow delivers to takes
/// all three, except HTTP (events only, as PostHog's).
public enum ExportModel: String, Sendable, CaseIterable {
    case events, persons, sessions
}

/// A batch export: a schedule that delivers an environment's events to a destination (docs/api.md, Batch exports).
public struct BatchExport: Sendable, Equatable {
    public var id: String
    public var teamID: Int64
    public var name: String
    public var model: ExportModel
    public var destinationType: DestinationType
    /// The whole configuration, secrets included (they are encrypted at rest and never returned).
    public var destinationConfig: JSONObject
    public var interval: Interval
    public var paused: Bool
    public var deleted: Bool
    public var createdAt: Timestamp
    public var lastUpdatedAt: Timestamp
    public var lastPausedAt: Timestamp?
    public var startAt: Timestamp?
    public var endAt: Timestamp?
    public var hogqlQuery: String?
    /// The filters as given (echoed back), nil when none.
    public var filters: JSONValue?
    public var timezone: String
    public var offsetDay: Int?
    public var offsetHour: Int?
    /// The last schedule tick the scheduler has created a run for.
    public var scheduledThrough: Timestamp?

    public init(
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
    public func schedule() throws(StoredExportError) -> Schedule {
        guard let zone = TimeZone(identifier: timezone) else {
            throw StoredExportError(message: "the export's time zone '\(timezone)' is not known to this server")
        }
        return Schedule(interval: interval, timeZone: zone, offsetDay: offsetDay ?? 0, offsetHour: offsetHour ?? 0)
    }

    /// The property filters, parsed. They were validated when saved; stored filters that no longer
    /// parse are an error, never "no filter" (that would export what the filters exclude).
    public func propertyFilters() throws(StoredExportError) -> [PropertyFilter] {
        do {
            return try PropertyFilter.parseList(filters ?? .null)
        } catch {
            throw StoredExportError(message: "the export's stored filters no longer parse: \(error.detail)")
        }
    }

    public var includeEvents: [String] { destinationConfig["include_events"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    public var excludeEvents: [String] { destinationConfig["exclude_events"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
}

/// A stored export that cannot be run as saved (a filter or time zone this build does not accept).
public struct StoredExportError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The states of a run (docs/api.md, Batch exports, docs/engine.md §5).
public enum RunStatus: String, Sendable, CaseIterable {
    case starting = "Starting", running = "Running", completed = "Completed", failed = "Failed"
    case failedRetryable = "FailedRetryable", failedBilling = "FailedBilling", cancelled = "Cancelled"
    case terminated = "Terminated", timedOut = "TimedOut", continuedAsNew = "ContinuedAsNew"

    /// Whether the run has ended for good.
    public var isFinished: Bool { [.completed, .failed, .failedBilling, .cancelled, .terminated, .timedOut].contains(self) }
}

/// One run: one data interval of one export.
public struct BatchExportRun: Sendable, Equatable {
    public var id: String
    public var batchExportID: String
    public var backfillID: String?
    public var status: RunStatus
    public var recordsCompleted: Int64?
    public var recordsTotalCount: Int64?
    public var bytesExported: Int64?
    public var latestError: String?
    public var dataIntervalStart: Timestamp?
    public var dataIntervalEnd: Timestamp
    public var cursor: String?
    public var createdAt: Timestamp
    public var finishedAt: Timestamp?
    public var lastUpdatedAt: Timestamp
    public var attempt: Int64
    public var nextAttemptAt: Timestamp?
    /// When the first attempt began (retries end `HEDGEROW_RUN_MAX_RETRY_HOURS` after it).
    public var firstAttemptAt: Timestamp?

    public init(
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
public struct BatchExportBackfill: Sendable, Equatable {
    public var id: String
    public var batchExportID: String
    public var startAt: Timestamp?
    public var endAt: Timestamp?
    public var adjustedStartAt: Timestamp?
    public var status: RunStatus
    public var createdAt: Timestamp
    public var finishedAt: Timestamp?
    public var lastUpdatedAt: Timestamp
    public var totalRecordsCount: Int64?
    public var totalRuns: Int64?
    /// Runs Completed or Failed (not stored: counted from the runs).
    public var finishedRuns: Int64 = 0

    public init(id: String, batchExportID: String, startAt: Timestamp?, endAt: Timestamp?, createdAt: Timestamp) {
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
public enum LogLevel: String, Sendable, CaseIterable {
    case debug = "DEBUG", info = "INFO", warning = "WARNING", error = "ERROR", log = "LOG"
}

/// A line of an export's log, shown by `/logs/`.
public struct BatchExportLog: Sendable, Equatable {
    public var id: String
    public var batchExportID: String
    public var runID: String?
    public var level: LogLevel
    public var message: String
    public var timestamp: Timestamp

    public init(id: String, batchExportID: String, runID: String?, level: LogLevel, message: String, timestamp: Timestamp) {
        self.id = id
        self.batchExportID = batchExportID
        self.runID = runID
        self.level = level
        self.message = message
        self.timestamp = timestamp
    }
}
