import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowStore
import Logging

/// Where a batch-export route hangs: an organization, a project or an environment.
public enum BatchExportParent: Sendable {
    case organization(String)
    case project(String)
    case environment(String)
}

/// The batch exports API (API.md §4): configuration with validation and encrypted secrets,
/// pause/unpause, backfills, runs and logs as records the engine executes.
public struct BatchExportService: Sendable {
    let database: any Database
    let secrets: SecretBox
    let deliverable: Set<DestinationType>
    let allowInsecureHTTP: Bool
    /// Where the warehouses' APIs are (the destination tests connect there, as runs do).
    let endpoints: Destinations.Endpoints
    let outbound: OutboundPolicy
    let eventQueryTimeout: Duration
    let access = AccessService()
    let exports = BatchExportStore()
    let integrations = IntegrationStore()
    let teams = TeamStore()
    let clock: @Sendable () -> Timestamp

    public init(
        database: any Database, secrets: SecretBox, deliverable: Set<DestinationType>, allowInsecureHTTP: Bool = false,
        outbound: OutboundPolicy = OutboundPolicy(), eventQueryTimeout: Duration = .seconds(60),
        endpoints: Destinations.Endpoints = Destinations.Endpoints(), clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.endpoints = endpoints
        self.eventQueryTimeout = eventQueryTimeout
        self.database = database
        self.secrets = secrets
        self.deliverable = deliverable
        self.allowInsecureHTTP = allowInsecureHTTP
        self.outbound = outbound
        self.clock = clock
    }

    /// The environments a parent route covers, and (for environment routes) the one it names.
    /// `teamIDs` are those the caller's key may reach (`scoped_teams`); `coveredTeamIDs` all of
    /// the parent's, so that an export of an environment beyond the key is a 403 naming it, not a 404.
    struct Scope {
        var teamIDs: [Int64]
        var coveredTeamIDs: [Int64]
        var defaultTeam: Int64?
        var organizationID: String

        init(covering covered: [Int64], defaultTeam: Int64?, organizationID: String, principal: Principal) {
            coveredTeamIDs = covered
            let scoped = principal.scopedTeams
            teamIDs = scoped.map { allowed in covered.filter(allowed.contains) } ?? covered
            self.defaultTeam = defaultTeam
            self.organizationID = organizationID
        }

        /// 403 when the key's `scoped_teams` do not cover the environment.
        func check(team: Int64) throws(APIError) {
            guard teamIDs.contains(team) else {
                throw APIError.permissionDenied("API key does not have access to the requested project: ID \(team).")
            }
        }
    }

    func scope(_ parent: BatchExportParent, principal: Principal, on connection: any SQLConnection) async throws -> Scope {
        switch parent {
        case .organization(let id):
            let organization = try await access.organization(id, principal: principal, on: connection).organization
            let environments = try await teams.environments(organizationID: organization.id, on: connection)
            return Scope(
                covering: environments.map(\.id), defaultTeam: environments.count == 1 ? environments[0].id : nil,
                organizationID: organization.id, principal: principal)
        case .project(let id):
            let (project, main) = try await access.project(id, principal: principal, on: connection)
            let environments = try await teams.environmentPage(projectID: project.id, limit: Int(Int32.max), offset: 0, on: connection).page
            return Scope(
                covering: environments.map(\.id), defaultTeam: main.environment.id, organizationID: project.organizationID,
                principal: principal)
        case .environment(let id):
            let environment = try await access.environment(id, principal: principal, on: connection).environment
            return Scope(
                covering: [environment.id], defaultTeam: environment.id, organizationID: environment.organizationID, principal: principal)
        }
    }

    /// An export of the parent; 404 when it is not one. Its secrets are opened only when asked
    /// for (a change to the configuration needs them; showing it never does).
    func export(_ id: String, in scope: Scope, withSecrets: Bool = false, on connection: any SQLConnection) async throws -> BatchExport {
        guard let canonical = Identifiers.canonicalUUID(id), let row = try await exports.find(id: canonical, on: connection),
            scope.coveredTeamIDs.contains(row.export.teamID)
        else { throw APIError.notFound() }
        try scope.check(team: row.export.teamID)
        var export = row.export
        if withSecrets, let sealed = row.sealedSecrets {
            export.destinationConfig = DestinationConfig.deepMerge(export.destinationConfig, try secrets.open(sealed))
        }
        return export
    }

    /// The checks a destination passes before it is saved or tested: an HTTP URL's form, and the
    /// outbound policy for addresses written as literals (names are checked when a run connects).
    func checkDestination(_ type: DestinationType, config: JSONObject) throws(APIError) {
        if type == .http, case .string(let url)? = config["url"],
            let problem = HTTPDestination.check(url: url, allowInsecure: allowInsecureHTTP)
        {
            throw APIError.invalidInput("Invalid HTTP destination URL: \(problem)", attr: "destination")
        }
        if type == .bigQuery, case .string(let url)? = config["token_uri"],
            let problem = HTTPDestination.check(url: url, allowInsecure: allowInsecureHTTP)
        {
            throw APIError.invalidInput("Invalid token_uri: \(problem)", attr: "destination")
        }
        for (field, host) in DestinationConfig.hosts(in: config, type: type) {
            if let reason = outbound.refusal(forHost: host) {
                throw APIError.invalidInput("The destination's '\(field)' is not allowed: \(reason)", attr: "destination")
            }
        }
    }

    /// The integrations a configuration names exist in the export's environment and are of the
    /// kind its destination takes.
    func checkIntegrations(_ type: DestinationType, config: JSONObject, teamID: Int64, on connection: any SQLConnection) async throws {
        for reference in DestinationConfig.integrationReferences(in: config, type: type) {
            guard let row = try await integrations.find(id: reference.id, teamID: teamID, on: connection) else {
                throw APIError.invalid("integration_id", "Invalid pk \"\(reference.id)\" - object does not exist.")
            }
            guard row.integration.kind.destinations.contains(type) else {
                throw APIError.invalidInput(
                    "Integration \(reference.id) is a '\(row.integration.kind.rawValue)' integration, which \(type.rawValue) batch exports cannot use.",
                    attr: "integration_id")
            }
        }
    }

    func save(_ export: BatchExport, insert: Bool, on connection: any SQLConnection) async throws {
        try checkDestination(export.destinationType, config: export.destinationConfig)
        try await checkIntegrations(export.destinationType, config: export.destinationConfig, teamID: export.teamID, on: connection)
        let hidden = DestinationConfig.secretPart(export.destinationConfig, type: export.destinationType)
        let visible = DestinationConfig.redacted(export.destinationConfig, type: export.destinationType)
        let sealed = hidden.isEmpty ? nil : try secrets.seal(hidden)
        if insert {
            try await exports.insert(export, publicConfig: visible, sealedSecrets: sealed, on: connection)
        } else {
            try await exports.update(export, publicConfig: visible, sealedSecrets: sealed, on: connection)
        }
    }

    public struct Detail: Sendable {
        public var export: BatchExport
        public var latestRuns: [BatchExportRun]
    }

    // MARK: Exports

    public func list(
        _ parent: BatchExportParent, principal: Principal, limit: Int, offset: Int
    ) async throws -> (count: Int, page: [Detail]) {
        try await database.read { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            let (count, rows) = try await exports.page(teamIDs: scope.teamIDs, limit: limit, offset: offset, on: connection)
            let runs = try await exports.latestRuns(batchExportIDs: rows.map(\.export.id), perExport: 10, on: connection)
            return (count, rows.map { Detail(export: $0.export, latestRuns: runs[$0.export.id] ?? []) })
        }
    }

    public func retrieve(_ parent: BatchExportParent, id: String, principal: Principal) async throws -> Detail {
        try await database.read { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            let export = try await export(id, in: scope, on: connection)
            return Detail(
                export: export,
                latestRuns: try await exports.latestRuns(batchExportIDs: [export.id], perExport: 10, on: connection)[export.id] ?? [])
        }
    }

    /// Checks the parent before the body is read (404/403 come before 400).
    public func checkParent(_ parent: BatchExportParent, id: String?, principal: Principal) async throws {
        try await database.read { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            if let id { _ = try await export(id, in: scope, on: connection) }
        }
    }

    public func create(_ parent: BatchExportParent, body: JSONValue, principal: Principal) async throws -> Detail {
        let input = try BatchExportInput.parse(body, full: true, deliverable: deliverable)
        return try await database.transaction { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            let teamID: Int64
            // On project and environment routes the route names the environment and a `team_id`
            // in the body is read-only, so ignored (as PostHog's serializer ignores it): generated
            // clients send the whole model.
            let requestedTeam: Int64? = if case .organization = parent { input.teamID } else { nil }
            if let requested = requestedTeam {
                guard scope.coveredTeamIDs.contains(requested) else {
                    throw APIError.invalidInput("Environment not found in this organization.", attr: "team_id")
                }
                try scope.check(team: requested)
                teamID = requested
            } else if let only = scope.defaultTeam {
                try scope.check(team: only)
                teamID = only
            } else {
                throw APIError.required("team_id")
            }
            let now = clock()
            let type = input.destinationType!
            let config = try DestinationConfig.validate(
                type: type, config: input.destinationConfig ?? .object(JSONObject()), model: input.model ?? "events")
            var export = BatchExport(
                id: Identifiers.uuidV7(at: now), teamID: teamID, name: input.name!, model: input.model ?? "events", destinationType: type,
                destinationConfig: config, interval: input.interval!, paused: input.paused ?? false, createdAt: now,
                timezone: input.timezone ?? "UTC")
            try apply(input, to: &export)
            try BatchExportInput.checkCombination(export)
            if export.paused { export.lastPausedAt = now }
            // The schedule starts at the first tick after creation (or after start_at).
            export.scheduledThrough = try checkedSchedule(export).tick(atOrBefore: max(now, export.startAt ?? now))
            try await save(export, insert: true, on: connection)
            return Detail(export: export, latestRuns: [])
        }
    }

    public func update(_ parent: BatchExportParent, id: String, body: JSONValue, full: Bool, principal: Principal) async throws -> Detail {
        try await checkParent(parent, id: id, principal: principal)
        let input = try BatchExportInput.parse(body, full: full, deliverable: Set(DestinationType.allCases))
        return try await database.transaction { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            var export = try await export(id, in: scope, withSecrets: true, on: connection)
            if let type = input.destinationType, type != export.destinationType {
                throw APIError.invalidInput(
                    "Cannot change destination type from '\(export.destinationType.rawValue)' to '\(type.rawValue)'. Create a new batch export instead.",
                    attr: "destination")
            }
            if let config = input.destinationConfig {
                export.destinationConfig = try DestinationConfig.validate(
                    type: export.destinationType, config: config, model: input.model ?? export.model, existing: export.destinationConfig)
            } else if input.model != nil, input.model != export.model {
                _ = try DestinationConfig.validate(
                    type: export.destinationType, config: .object(JSONObject()), model: input.model!, existing: export.destinationConfig)
            }
            if let name = input.name { export.name = name }
            if let model = input.model { export.model = model }
            if let interval = input.interval, interval != export.interval {
                export.interval = interval
                export.scheduledThrough = nil
            }
            let wasPaused = export.paused
            try apply(input, to: &export)
            try BatchExportInput.checkCombination(export)
            let now = clock()
            if export.paused, !wasPaused { export.lastPausedAt = now }
            if export.scheduledThrough == nil || (!export.paused && wasPaused) {
                export.scheduledThrough = try checkedSchedule(export).tick(atOrBefore: max(now, export.startAt ?? now))
            }
            export.lastUpdatedAt = now
            try await save(export, insert: false, on: connection)
            return Detail(
                export: export,
                latestRuns: try await exports.latestRuns(batchExportIDs: [export.id], perExport: 10, on: connection)[export.id] ?? [])
        }
    }

    func apply(_ input: BatchExportInput, to export: inout BatchExport) throws(APIError) {
        if let paused = input.paused { export.paused = paused }
        if let startAt = input.startAt { export.startAt = startAt }
        if let endAt = input.endAt { export.endAt = endAt }
        if let filters = input.filters { export.filters = filters }
        if let timezone = input.timezone { export.timezone = timezone }
        if let offsetDay = input.offsetDay { export.offsetDay = offsetDay }
        if let offsetHour = input.offsetHour { export.offsetHour = offsetHour }
    }

    /// Soft delete: the export disappears from the API, stops, and its running work is cancelled;
    /// history stays.
    public func delete(_ parent: BatchExportParent, id: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            var export = try await export(id, in: scope, withSecrets: true, on: connection)
            let now = clock()
            export.deleted = true
            export.paused = true
            export.lastUpdatedAt = now
            try await save(export, insert: false, on: connection)
            try await cancelUnfinished(batchExportID: export.id, backfillID: nil, at: now, on: connection)
            try await log(
                export.id, run: nil, "INFO", "Batch export deleted; unfinished runs and backfills cancelled.", at: now, on: connection)
        }
    }

    public func pause(_ parent: BatchExportParent, id: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            var export = try await export(id, in: scope, withSecrets: true, on: connection)
            guard !export.paused else { return }
            let now = clock()
            export.paused = true
            export.lastPausedAt = now
            export.lastUpdatedAt = now
            try await save(export, insert: false, on: connection)
            try await log(export.id, run: nil, "INFO", "Batch export paused.", at: now, on: connection)
        }
    }

    /// Resumes at the next tick; with `backfill`, the paused span (from `last_paused_at`, aligned
    /// down to a tick, to the last tick) is backfilled. Returns the backfill's id, if one was made.
    public func unpause(_ parent: BatchExportParent, id: String, backfill: Bool, principal: Principal) async throws -> String? {
        try await database.transaction { connection -> String? in
            let scope = try await scope(parent, principal: principal, on: connection)
            var export = try await export(id, in: scope, withSecrets: true, on: connection)
            let now = clock()
            let pausedAt = export.lastPausedAt
            let wasPaused = export.paused
            export.paused = false
            export.lastUpdatedAt = now
            let lastTick = try checkedSchedule(export).tick(atOrBefore: now)
            if wasPaused { export.scheduledThrough = lastTick }
            try await save(export, insert: false, on: connection)
            try await log(export.id, run: nil, "INFO", "Batch export unpaused.", at: now, on: connection)
            guard backfill, wasPaused, let pausedAt else { return nil }
            let start = try checkedSchedule(export).tick(atOrBefore: pausedAt)
            guard start < lastTick else { return nil }
            return try await createBackfill(export, start: start, end: lastTick, estimate: nil, at: now, on: connection).id
        }
    }

    /// The export's schedule and filters; a stored export this build can no longer read is a 400
    /// that says what is wrong, never a silent fallback.
    func checkedSchedule(_ export: BatchExport) throws(APIError) -> Schedule {
        do { return try export.schedule() } catch { throw APIError.invalidInput(error.message) }
    }

    func checkedFilters(_ export: BatchExport) throws(APIError) -> [PropertyFilter] {
        do { return try export.propertyFilters() } catch { throw APIError.invalidInput(error.message) }
    }

    // MARK: Backfills

    /// Validates a backfill request (API.md §4.4) in order, cheap checks first, then creates it.
    public func createBackfill(
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
    public func estimateBackfill(_ parent: BatchExportParent, id: String, body: JSONValue, principal: Principal) async throws -> Int64 {
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
            case "persons": (earliest, estimate) = try await models.personsEstimate(window)
            case "sessions": (earliest, estimate) = try await models.sessionsEstimate(window)
            default:
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
            export.id, run: nil, "INFO",
            "Backfill \(backfill.id) created: \(ticks.count) run(s) from \(adjusted.iso8601) to \((end ?? ticks.last ?? adjusted).iso8601).",
            at: now, on: connection)
        return backfill
    }

    public func backfills(
        _ parent: BatchExportParent, id: String, principal: Principal, limit: Int, offset: Int
    ) async throws -> [BatchExportBackfill] {
        try await database.read { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            return try await exports.backfills(batchExportID: export.id, limit: limit, offset: offset, on: connection)
        }
    }

    public func backfill(
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

    public func cancelBackfill(_ parent: BatchExportParent, id: String, backfillID: String, principal: Principal) async throws {
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
            try await log(export.id, run: nil, "INFO", "Backfill \(backfill.id) cancelled.", at: now, on: connection)
        }
    }

    // MARK: Runs

    public struct RunFilter: Sendable {
        public var statuses: [RunStatus] = []
        public var after: Timestamp?
        public var before: Timestamp?
        public var ordering = "-created_at"
        public init() {}
    }

    public func runs(
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

    public func run(_ parent: BatchExportParent, id: String, runID: String, principal: Principal) async throws -> BatchExportRun {
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
    public func retry(_ parent: BatchExportParent, id: String, runID: String, principal: Principal) async throws -> String {
        try await database.transaction { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            let run = try await findRun(runID, export: export, on: connection)
            let end = run.dataIntervalEnd
            let start = try run.dataIntervalStart ?? checkedSchedule(export).dataInterval(endingAt: end).start
            return try await createBackfill(export, start: start, end: end, estimate: nil, at: clock(), on: connection).id
        }
    }

    public func cancelRun(_ parent: BatchExportParent, id: String, runID: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            var run = try await findRun(runID, export: export, on: connection)
            // API.md §4.3 lets a user cancel only runs that have not failed yet.
            guard run.status == .starting || run.status == .running else {
                throw APIError.invalidInput("Cannot cancel a run that is in '\(run.status.rawValue)' status")
            }
            let now = clock()
            run = try RunTransition.cancel(at: now).apply(to: run)
            try await exports.updateRun(run, on: connection)
            try await log(export.id, run: run.id, "INFO", "Run cancelled.", at: now, on: connection)
        }
    }

    // MARK: Destination tests (PostHog's test steps)

    /// The steps testing a destination type (`?destination=S3`).
    public func testSteps(_ parent: BatchExportParent, destination: String?, principal: Principal) async throws -> DestinationTest {
        try await checkParent(parent, id: nil, principal: principal)
        guard let destination, !destination.isEmpty else {
            throw APIError.invalidInput("Give the destination type to test, as ?destination=S3.", attr: "destination")
        }
        guard let type = DestinationType(rawValue: destination), deliverable.contains(type), let test = DestinationTest(type: type)
        else { throw APIError.notFound() }
        return test
    }

    /// Runs one test step (`step`, default 0) on a destination given in the body; for a saved
    /// export (`id`), the body's configuration is merged over the stored one, secrets included.
    public func runTestStep(
        _ parent: BatchExportParent, id: String?, body: JSONValue, principal: Principal
    ) async throws -> (DestinationTest.Step, DestinationTest.Result) {
        var object = try BodyObject.require(body)
        let index = Int(try object["step"].map { try FieldParser.integer($0, attr: "step") } ?? 0)
        object["step"] = nil
        let (stored, defaultTeam): (BatchExport?, Int64?) = try await database.read { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            guard let id else { return (nil, scope.defaultTeam) }
            return (try await export(id, in: scope, withSecrets: true, on: connection), scope.defaultTeam)
        }
        let destination = object["destination"]?.objectValue
        guard let type = destination?["type"]?.stringValue.flatMap(DestinationType.init(rawValue:)) ?? stored?.destinationType else {
            throw APIError.required("destination__type")
        }
        if let stored, stored.destinationType != type {
            throw APIError.invalidInput("The destination type of a batch export cannot change.", attr: "destination")
        }
        guard deliverable.contains(type), let test = DestinationTest(type: type) else {
            throw APIError.invalidInput("Destination type \(type.rawValue) is not supported by this server yet", attr: "destination")
        }
        guard test.steps.indices.contains(index) else {
            throw APIError.invalid("step", "This destination has \(test.steps.count) test step(s), numbered from 0.")
        }
        let config = try DestinationConfig.validate(
            type: type, config: try destination.map(BatchExportInput.destinationConfig) ?? .object(JSONObject()),
            model: stored?.model ?? "events",
            existing: stored?.destinationConfig)
        try checkDestination(type, config: config)
        var resolved = config
        if let team = stored?.teamID ?? defaultTeam {
            do {
                resolved = try await database.read { connection in
                    try await checkIntegrations(type, config: config, teamID: team, on: connection)
                    return try await IntegrationCredentials.resolve(config, type: type, teamID: team, secrets: secrets, on: connection)
                }
            } catch let error as DestinationError {
                throw APIError.invalidInput(error.message, attr: "integration_id")
            }
        } else if !DestinationConfig.integrationReferences(in: config, type: type).isEmpty {
            throw APIError.required("team_id")
        }
        let result = await test.run(
            step: index, config: resolved, connector: OutboundConnector(policy: outbound),
            logger: Logger(label: "hedgerow.destination-test"),
            endpoints: endpoints, allowInsecureHTTP: allowInsecureHTTP)
        return (test.steps[index], result)
    }

    // MARK: Logs

    public struct LogFilter: Sendable {
        public var limit = 50
        public var after: Timestamp?
        public var before: Timestamp?
        public var level: String?
        public var search: String?
        public var runID: String?
        public init() {}
    }

    public func logs(_ parent: BatchExportParent, id: String, filter: LogFilter, principal: Principal) async throws -> [BatchExportLog] {
        try await database.read { connection in
            let export = try await export(id, in: try await scope(parent, principal: principal, on: connection), on: connection)
            return try await exports.logs(
                batchExportID: export.id, runID: filter.runID, level: filter.level, search: filter.search, after: filter.after,
                before: filter.before,
                limit: filter.limit, on: connection)
        }
    }

    func log(
        _ exportID: String, run: String?, _ level: String, _ message: String, at time: Timestamp, on connection: any SQLConnection
    ) async throws {
        try await exports.log(batchExportID: exportID, runID: run, level: level, message: message, at: time, on: connection)
    }

    func cancelUnfinished(batchExportID: String, backfillID: String?, at now: Timestamp, on connection: any SQLConnection) async throws {
        try await exports.cancelUnfinished(
            batchExportID: batchExportID, backfillID: backfillID, includeScheduled: true, at: now, on: connection)
    }
}
