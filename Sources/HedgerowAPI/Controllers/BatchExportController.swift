import HedgerowCore
import HedgerowDestinations

/// `/api/{organizations,projects,environments}/{parent}/batch_exports/...` (docs/api.md, Batch exports).
struct BatchExportController: Sendable {
    let service: BatchExportService

    func addRoutes(to routes: inout Routes) {
        let read = RequiredScope.scope("batch_export", .read)
        let write = RequiredScope.scope("batch_export", .write)
        // PostHog's parameter names: the parent is `organization_id` or `project_id` (environments
        // too); below a batch export, its id is `batch_export_id` and the nested object's is `id`.
        let prefixes: [(String, Bool, @Sendable (APIRequest) -> BatchExportParent)] = [
            ("/api/organizations/:organization_id/batch_exports", false, { .organization($0.parameters["organization_id"] ?? "") }),
            ("/api/projects/:project_id/batch_exports", true, { .project($0.parameters["project_id"] ?? "") }),
            ("/api/environments/:project_id/batch_exports", true, { .environment($0.parameters["project_id"] ?? "") }),
        ]
        let export = "BatchExport"
        let uuid = Schema.uuid
        var runsDoc = OperationDoc.list("PaginatedBatchExportRunList", "The export's runs, newest first.", query: OperationDoc.cursor)
        runsDoc.query += [
            .init(name: "status", schema: APIComponents.runStatus, description: "Only runs with these statuses.", array: true),
            .init(name: "after", schema: Schema.dateTime, description: "Only runs whose interval starts at or after this time."),
            .init(name: "before", schema: Schema.dateTime, description: "Only runs whose interval starts before this time."),
            .init(
                name: "ordering", schema: Schema.strings(["created_at", "-created_at", "data_interval_start", "-data_interval_start"]),
                description: "The order of the runs."),
        ]
        let logQuery: [OperationDoc.Query] = [
            .init(name: "limit", schema: Schema.integer, description: "At most this many lines (1 to 500)."),
            .init(name: "after", schema: Schema.dateTime, description: "Only lines at or after this time."),
            .init(name: "before", schema: Schema.dateTime, description: "Only lines before this time."),
            .init(name: "level", schema: Schema.strings(LogLevel.allCases.map(\.rawValue)), description: "Only this level."),
            .init(name: "search", schema: Schema.string, description: "Only lines containing this text."),
            .init(name: "instance_id", schema: Schema.string, description: "Only the lines of this run."),
        ]
        let testQuery = [
            OperationDoc.Query(name: "destination", schema: APIComponents.destinationType, description: "The destination type.")
        ]
        typealias Handler = @Sendable (APIRequest, BatchExportParent) async throws -> APIResponse
        let endpoints: [(String, String, RequiredScope, OperationDoc, Handler)] = [
            ("GET", "/", read, .list("PaginatedBatchExportList", "The batch exports."), list),
            ("POST", "/", write, .create(export, "Create a batch export."), create),
            ("GET", "/:id/", read, .retrieve(export, "A batch export with its latest runs.", id: uuid), retrieve),
            (
                "PUT", "/:id/", write, .update(export, "Replace a batch export's settings.", id: uuid),
                { try await update($0, $1, full: true) }
            ),
            (
                "PATCH", "/:id/", write, .partialUpdate(export, "Change a batch export's settings.", id: uuid),
                { try await update($0, $1, full: false) }
            ),
            ("DELETE", "/:id/", write, .destroy("Delete a batch export.", id: uuid), delete),
            ("POST", "/:id/pause/", write, .action("Pause the schedule.", response: "BatchExportPaused", id: uuid), pause),
            (
                "POST", "/:id/unpause/", write,
                .action(
                    "Resume the schedule (with `backfill`, the missed intervals too).", request: "BatchExportUnpauseRequest",
                    response: "BatchExportPaused", id: uuid),
                unpause
            ),
            (
                "POST", "/:id/backfill/", write,
                .action(
                    "Start a backfill (PostHog's older route).", request: "BatchExportBackfillRequest", requestRequired: true,
                    response: "BatchExportBackfillCreated", id: uuid),
                deprecatedBackfill
            ),
            (
                "GET", "/:batch_export_id/backfills/", read,
                .list("PaginatedBatchExportBackfillList", "The export's backfills.", query: OperationDoc.cursor), listBackfills
            ),
            (
                "POST", "/:batch_export_id/backfills/", write,
                .create("BatchExportBackfillRequest", "Start a backfill.", response: "BatchExportBackfillCreated"), createBackfill
            ),
            (
                "GET", "/:batch_export_id/backfills/:id/", read,
                .retrieve("BatchExportBackfill", "A backfill and its progress.", id: uuid), retrieveBackfill
            ),
            (
                "POST", "/:batch_export_id/backfills/:id/cancel/", write,
                .action("Cancel a backfill.", response: "Cancelled", id: uuid), cancelBackfill
            ),
            ("GET", "/:batch_export_id/runs/", read, runsDoc, listRuns),
            ("GET", "/:batch_export_id/runs/:id/", read, .retrieve("BatchExportRun", "A run.", id: uuid), retrieveRun),
            (
                "POST", "/:batch_export_id/runs/:id/retry/", write,
                .action("Run the interval again, as a backfill of one run.", response: "BatchExportBackfillCreated", id: uuid),
                retryRun
            ),
            ("POST", "/:batch_export_id/runs/:id/cancel/", write, .action("Cancel a run.", response: "Cancelled", id: uuid), cancelRun),
            (
                "GET", "/:id/logs/", read,
                .action("The export's log lines, newest first.", response: "PaginatedBatchExportLogEntryList", query: logQuery, id: uuid),
                logs
            ),
            (
                "GET", "/:batch_export_id/runs/:id/logs/", read,
                .action("One run's log lines, newest first.", response: "PaginatedBatchExportLogEntryList", query: logQuery, id: uuid),
                runLogs
            ),
            (
                "GET", "/test/", read, .action("The test steps of a destination type.", response: "BatchExportTest", query: testQuery),
                testSteps
            ),
            (
                "POST", "/run_test_step_new/", write,
                .action(
                    "Run one test step against an unsaved configuration.", request: "BatchExportTestStepRequest",
                    requestRequired: true, response: "BatchExportTestStep"),
                { try await runTestStep($0, $1, id: nil) }
            ),
            (
                "POST", "/:id/run_test_step/", write,
                .action(
                    "Run one test step against the export's configuration (with changes from the body).",
                    request: "BatchExportTestStepRequest", requestRequired: true, response: "BatchExportTestStep", id: uuid),
                { try await runTestStep($0, $1, id: $0.parameters["id"] ?? "") }
            ),
        ]
        for (prefix, teamBased, parent) in prefixes {
            for (method, suffix, scope, doc, handler) in endpoints {
                routes.add(method, prefix + suffix, scope: scope, teamBased: teamBased, doc: doc) { request in
                    try await handler(request, parent(request))
                }
            }
        }
    }

    /// The batch export a route names: `batch_export_id` below it, `id` on its own routes.
    func id(_ request: APIRequest) -> String { request.parameters["batch_export_id"] ?? request.parameters["id"] ?? "" }

    /// The run or backfill below a batch export.
    func nestedID(_ request: APIRequest) -> String { request.parameters["id"] ?? "" }

    @Sendable func testSteps(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let test = try await service.testSteps(parent, destination: request.query["destination"], principal: try request.requirePrincipal())
        return .ok(test.asJSON)
    }

    func runTestStep(_ request: APIRequest, _ parent: BatchExportParent, id: String?) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        if let id { try await service.checkParent(parent, id: id, principal: principal) }
        let (step, result) = try await service.runTestStep(parent, id: id, body: try request.body(), principal: principal)
        return .ok(DestinationTest.json(step, result: result))
    }

    @Sendable func list(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let pagination = LimitOffsetPagination(query: request.query)
        let (count, page) = try await service.list(
            parent, principal: try request.requirePrincipal(), limit: pagination.sqlLimit, offset: pagination.sqlOffset)
        return .ok(pagination.page(count: count, results: page.map(BatchExportWire.export), request: request))
    }

    @Sendable func create(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        try await service.checkParent(parent, id: nil, principal: principal)
        return .created(BatchExportWire.export(try await service.create(parent, body: try request.body(), principal: principal)))
    }

    @Sendable func retrieve(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        .ok(BatchExportWire.export(try await service.retrieve(parent, id: id(request), principal: try request.requirePrincipal())))
    }

    func update(_ request: APIRequest, _ parent: BatchExportParent, full: Bool) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        try await service.checkParent(parent, id: id(request), principal: principal)
        return .ok(
            BatchExportWire.export(
                try await service.update(parent, id: id(request), body: try request.body(), full: full, principal: principal)))
    }

    @Sendable func delete(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        try await service.delete(parent, id: id(request), principal: try request.requirePrincipal())
        return .noContent
    }

    @Sendable func pause(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        try await service.pause(parent, id: id(request), principal: try request.requirePrincipal())
        return .ok(.object(["paused": true]))
    }

    @Sendable func unpause(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        try await service.checkParent(parent, id: id(request), principal: principal)
        let object = try BodyObject.require(try request.body())
        let backfill = try object["backfill"].map { try FieldParser.boolean($0, attr: "backfill", allowNull: true) ?? false } ?? false
        _ = try await service.unpause(parent, id: id(request), backfill: backfill, principal: principal)
        return .ok(.object(["paused": false]))
    }

    @Sendable func deprecatedBackfill(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let backfill = try await service.createBackfill(
            parent, id: id(request), body: try request.body(), principal: try request.requirePrincipal())
        return .ok(.object(["backfill_id": .string(backfill.id)]))
    }

    @Sendable func createBackfill(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let backfill = try await service.createBackfill(
            parent, id: id(request), body: try request.body(), principal: try request.requirePrincipal())
        return .created(.object(["backfill_id": .string(backfill.id)]))
    }

    @Sendable func listBackfills(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let pagination = CursorPagination(query: request.query, pageSize: 50)
        let principal = try request.requirePrincipal()
        let detail = try await service.retrieve(parent, id: id(request), principal: principal)
        let backfills = try await service.backfills(
            parent, id: id(request), principal: principal, limit: pagination.pageSize + 1, offset: pagination.offset)
        return .ok(pagination.page(backfills.map { BatchExportWire.backfill($0, teamID: detail.export.teamID) }, request: request))
    }

    @Sendable func retrieveBackfill(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let principal = try request.requirePrincipal()
        let detail = try await service.retrieve(parent, id: id(request), principal: principal)
        let backfill = try await service.backfill(
            parent, id: id(request), backfillID: nestedID(request), principal: principal)
        return .ok(BatchExportWire.backfill(backfill, teamID: detail.export.teamID))
    }

    @Sendable func cancelBackfill(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        try await service.cancelBackfill(
            parent, id: id(request), backfillID: nestedID(request), principal: try request.requirePrincipal())
        return .ok(.object(["cancelled": true]))
    }

    @Sendable func listRuns(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let pagination = CursorPagination(query: request.query, pageSize: 100)
        var filter = BatchExportService.RunFilter()
        for status in request.query.values("status") where !status.isEmpty {
            guard let parsed = RunStatus(rawValue: status) else { throw APIError.invalidChoice("status", status) }
            filter.statuses.append(parsed)
        }
        filter.after = try Self.dateTime(request.query["after"], attr: "after")
        filter.before = try Self.dateTime(request.query["before"], attr: "before")
        if let ordering = request.query["ordering"], !ordering.isEmpty {
            guard ["created_at", "-created_at", "data_interval_start", "-data_interval_start"].contains(ordering) else {
                throw APIError.invalidChoice("ordering", ordering)
            }
            filter.ordering = ordering
        }
        let runs = try await service.runs(
            parent, id: id(request), filter: filter, principal: try request.requirePrincipal(), limit: pagination.pageSize + 1,
            offset: pagination.offset)
        return .ok(pagination.page(runs.map(BatchExportWire.run), request: request))
    }

    @Sendable func retrieveRun(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        .ok(
            BatchExportWire.run(
                try await service.run(
                    parent, id: id(request), runID: nestedID(request), principal: try request.requirePrincipal())))
    }

    @Sendable func retryRun(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        let backfill = try await service.retry(
            parent, id: id(request), runID: nestedID(request), principal: try request.requirePrincipal())
        return .ok(.object(["backfill_id": .string(backfill)]))
    }

    @Sendable func cancelRun(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        try await service.cancelRun(
            parent, id: id(request), runID: nestedID(request), principal: try request.requirePrincipal())
        return .ok(.object(["cancelled": true]))
    }

    @Sendable func logs(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        try await logs(request, parent, run: nil)
    }

    /// One run's log lines (PostHog's `runs/{id}/logs/`); an unknown run is a 404.
    @Sendable func runLogs(_ request: APIRequest, _ parent: BatchExportParent) async throws -> APIResponse {
        try await logs(request, parent, run: nestedID(request))
    }

    func logs(_ request: APIRequest, _ parent: BatchExportParent, run: String?) async throws -> APIResponse {
        var filter = BatchExportService.LogFilter()
        if let text = request.query["limit"], !text.isEmpty {
            guard let limit = Int(text), (1...500).contains(limit) else {
                throw APIError.invalid("limit", "Ensure this value is between 1 and 500.")
            }
            filter.limit = limit
        }
        filter.after = try Self.dateTime(request.query["after"], attr: "after")
        filter.before = try Self.dateTime(request.query["before"], attr: "before")
        if let level = request.query["level"], !level.isEmpty {
            guard let known = LogLevel(rawValue: level.uppercased()) else { throw APIError.invalidChoice("level", level) }
            filter.level = known
        }
        filter.search = request.query["search"].flatMap { $0.isEmpty ? nil : $0 }
        filter.runID = request.query["instance_id"].flatMap { $0.isEmpty ? nil : Identifiers.canonicalUUID($0) ?? $0 }
        let principal = try request.requirePrincipal()
        if let run {
            filter.runID = try await service.run(parent, id: id(request), runID: run, principal: principal).id
        }
        let logs = try await service.logs(parent, id: id(request), filter: filter, principal: principal)
        return .ok(
            .object(["count": .int(Int64(logs.count)), "next": nil, "previous": nil, "results": .array(logs.map(BatchExportWire.log))]))
    }

    static func dateTime(_ text: String?, attr: String) throws(APIError) -> Timestamp? {
        guard let text, !text.isEmpty else { return nil }
        guard let parsed = ISO8601.parse(text) else {
            throw APIError.invalid(
                attr, "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")
        }
        return parsed.timestamp
    }
}
