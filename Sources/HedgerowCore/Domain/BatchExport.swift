import Foundation

/// A batch export: a schedule that delivers an environment's events to a destination (API.md §4).
public struct BatchExport: Sendable, Equatable {
    public var id: String
    public var teamID: Int64
    public var name: String
    public var model: String
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
        id: String, teamID: Int64, name: String, model: String, destinationType: DestinationType, destinationConfig: JSONObject,
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

    public var schedule: Schedule {
        Schedule(
            interval: interval, timeZone: TimeZone(identifier: timezone) ?? TimeZone(identifier: "UTC")!, offsetDay: offsetDay ?? 0,
            offsetHour: offsetHour ?? 0)
    }

    /// The property filters, parsed (they were validated when saved).
    public var propertyFilters: [PropertyFilter] {
        (try? PropertyFilter.parseList(filters ?? .null)) ?? []
    }

    public var includeEvents: [String] { destinationConfig["include_events"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    public var excludeEvents: [String] { destinationConfig["exclude_events"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
}

/// The states of a run (API.md §4.3, ENGINE.md §5).
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

/// A backfill: runs over a past range (API.md §4.4, ENGINE.md §6).
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

/// A line of an export's log, shown by `/logs/`.
public struct BatchExportLog: Sendable, Equatable {
    public var id: String
    public var batchExportID: String
    public var runID: String?
    public var level: String
    public var message: String
    public var timestamp: Timestamp

    public init(id: String, batchExportID: String, runID: String?, level: String, message: String, timestamp: Timestamp) {
        self.id = id
        self.batchExportID = batchExportID
        self.runID = runID
        self.level = level
        self.message = message
        self.timestamp = timestamp
    }
}
