import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowStore
import Logging

/// Where a batch-export route hangs: an organization, a project or an environment.
package enum BatchExportParent: Sendable {
    case organization(String)
    case project(String)
    case environment(String)
}

/// The batch exports API (docs/api.md, Batch exports): configuration with validation and encrypted secrets,
/// pause/unpause, backfills, runs and logs as records the engine executes.
package struct BatchExportService: Sendable {
    let database: any Database
    let secrets: SecretBox
    let deliverable: Set<DestinationType>
    let allowInsecureHTTP: Bool
    /// Where the warehouses' APIs are (the destination tests connect there, as runs do).
    let endpoints: Destinations.Endpoints
    let outbound: OutboundPolicy
    let eventQueryTimeout: Duration
    /// `HEDGEROW_EVENT_RETENTION_DAYS`: backfills of events from before the horizon are refused.
    let eventRetentionDays: Int?
    let access = AccessService()
    let exports = BatchExportStore()
    let integrations = IntegrationStore()
    let teams = TeamStore()
    let clock: @Sendable () -> Timestamp

    package init(
        database: any Database, secrets: SecretBox, deliverable: Set<DestinationType>, allowInsecureHTTP: Bool = false,
        outbound: OutboundPolicy = OutboundPolicy(), eventQueryTimeout: Duration = .seconds(60),
        endpoints: Destinations.Endpoints = Destinations.Endpoints(), eventRetentionDays: Int? = nil,
        clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.endpoints = endpoints
        self.eventRetentionDays = eventRetentionDays
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

    package struct Detail: Sendable {
        package var export: BatchExport
        package var latestRuns: [BatchExportRun]
    }

    // MARK: Exports

    package func list(
        _ parent: BatchExportParent, principal: Principal, limit: Int, offset: Int
    ) async throws -> (count: Int, page: [Detail]) {
        try await database.read { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            let (count, rows) = try await exports.page(teamIDs: scope.teamIDs, limit: limit, offset: offset, on: connection)
            let runs = try await exports.latestRuns(batchExportIDs: rows.map(\.export.id), perExport: 10, on: connection)
            return (count, rows.map { Detail(export: $0.export, latestRuns: runs[$0.export.id] ?? []) })
        }
    }

    package func retrieve(_ parent: BatchExportParent, id: String, principal: Principal) async throws -> Detail {
        try await database.read { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            let export = try await export(id, in: scope, on: connection)
            return Detail(
                export: export,
                latestRuns: try await exports.latestRuns(batchExportIDs: [export.id], perExport: 10, on: connection)[export.id] ?? [])
        }
    }

    /// Checks the parent before the body is read (404/403 come before 400).
    func checkParent(_ parent: BatchExportParent, id: String?, principal: Principal) async throws {
        try await database.read { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            if let id { _ = try await export(id, in: scope, on: connection) }
        }
    }

    package func create(_ parent: BatchExportParent, body: JSONValue, principal: Principal) async throws -> Detail {
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
                type: type, config: input.destinationConfig ?? .object(JSONObject()), model: input.model ?? .events)
            var export = BatchExport(
                id: Identifiers.uuidV7(at: now), teamID: teamID, name: input.name!, model: input.model ?? .events, destinationType: type,
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

    package func update(_ parent: BatchExportParent, id: String, body: JSONValue, full: Bool, principal: Principal) async throws -> Detail {
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
    package func delete(_ parent: BatchExportParent, id: String, principal: Principal) async throws {
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
                export.id, run: nil, .info, "Batch export deleted; unfinished runs and backfills cancelled.", at: now, on: connection)
        }
    }

    package func pause(_ parent: BatchExportParent, id: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            var export = try await export(id, in: scope, withSecrets: true, on: connection)
            guard !export.paused else { return }
            let now = clock()
            export.paused = true
            export.lastPausedAt = now
            export.lastUpdatedAt = now
            try await save(export, insert: false, on: connection)
            try await log(export.id, run: nil, .info, "Batch export paused.", at: now, on: connection)
        }
    }

    /// Resumes at the next tick; with `backfill`, the paused span (from `last_paused_at`, aligned
    /// down to a tick, to the last tick) is backfilled. Returns the backfill's id, if one was made.
    package func unpause(_ parent: BatchExportParent, id: String, backfill: Bool, principal: Principal) async throws -> String? {
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
            try await log(export.id, run: nil, .info, "Batch export unpaused.", at: now, on: connection)
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
}
