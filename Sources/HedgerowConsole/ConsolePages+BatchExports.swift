import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowDestinations

/// Batch exports: the list, the form per destination type (with the destination test), an export's
/// page (runs, backfills, chart, actions), the backfill dialog and the logs.
extension ConsolePages {
    func parent(_ request: ConsoleRequest) -> BatchExportParent { .environment(request.parameter("team_id")) }
    func base(_ request: ConsoleRequest) -> String { "/project/\(request.parameter("team_id"))/batch_exports/\(request.parameter("id"))" }

    static func statusClass(_ status: RunStatus) -> String {
        switch status {
        case .completed: "completed"
        case .failed, .failedBilling, .terminated, .timedOut: "failed"
        case .running: "running"
        case .failedRetryable: "retrying"
        case .cancelled: "cancelled"
        case .starting, .continuedAsNew: "starting"
        }
    }

    static func interval(_ run: BatchExportRun) -> String {
        "\(date(run.dataIntervalStart)) → \(date(run.dataIntervalEnd))"
    }

    // MARK: List

    @Sendable func exportsPage(_ request: ConsoleRequest) async throws -> APIResponse {
        let teamID = request.parameter("team_id")
        let environment = try await services.projects.retrieveEnvironment(id: teamID, principal: request.principal)
        var context = try await layout(request, title: "Batch exports")
        let (_, exports) = try await services.batchExports.list(parent(request), principal: request.principal, limit: 200, offset: 0)
        context["team_id"] = environment.environment.id
        context["environment_name"] = environment.environment.name
        let now = Timestamp.now()
        context["exports"] = exports.map { detail -> [String: Any] in
            var row: [String: Any] = [
                "id": detail.export.id, "team_id": environment.environment.id, "name": detail.export.name,
                "type": detail.export.destinationType.rawValue, "model": detail.export.model.rawValue,
                "interval": detail.export.interval.rawValue,
                "paused": detail.export.paused,
                "marks": detail.latestRuns.reversed().map { run -> [String: Any] in
                    ["status": run.status.rawValue, "status_class": Self.statusClass(run.status), "interval": Self.interval(run)]
                },
            ]
            if let late = Lateness.reason(detail.export, latestRuns: detail.latestRuns, now: now) { row["late"] = late }
            return row
        }
        return render("exports", context)
    }

    // MARK: The form

    /// What the form shows: the export's own fields, then every field of the destination's
    /// configuration (secrets never filled in), with errors beside the fields they concern.
    func formContext(
        _ request: ConsoleRequest, type: DestinationType, export: BatchExport?, form: Form?, errors: [String: String] = [:],
        general: String? = nil, results: [(DestinationTest.Step, DestinationTest.Result)] = []
    ) async throws -> [String: Any] {
        var context = try await layout(request, title: export == nil ? "New \(type.rawValue) export" : "Edit \(export!.name)")
        let teamID = request.parameter("team_id")
        context["heading"] = export.map { "Edit \($0.name)" } ?? "New \(type.rawValue) batch export"
        context["type"] = type.rawValue
        context["action"] =
            export.map { "/project/\(teamID)/batch_exports/\($0.id)/edit" } ?? "/project/\(teamID)/batch_exports/new"
        context["check"] = form.map { $0["check"] != nil } ?? true
        context["error"] = general
        func value(_ name: String, stored: String?) -> String { form.map { $0.raw(name) } ?? stored ?? "" }
        func options(_ choices: [String], selected: String) -> [[String: Any]] {
            choices.map { ["value": $0, "label": $0, "selected": $0 == selected] }
        }
        let model = value("model", stored: export?.model.rawValue).isEmpty ? "events" : value("model", stored: export?.model.rawValue)
        let interval =
            value("interval", stored: export?.interval.rawValue).isEmpty ? "hour" : value("interval", stored: export?.interval.rawValue)
        context["top_fields"] =
            [
                [
                    "id": "field-name", "name": "name", "label": "Name", "required": true, "value": value("name", stored: export?.name),
                    "error": Self.maybe(errors["name"]),
                ],
                [
                    "id": "field-model", "name": "model", "label": "Model", "select": true,
                    "options": options(["events", "persons", "sessions"], selected: model),
                    "error": Self.maybe(errors["model"]),
                ],
                [
                    "id": "field-interval", "name": "interval", "label": "Interval", "select": true,
                    "options": options(Interval.allCases.map(\.rawValue), selected: interval), "error": Self.maybe(errors["interval"]),
                ],
            ] as [[String: Any]]
        let stored = export.map { DestinationConfig.redacted($0.destinationConfig, type: type) } ?? JSONObject()
        context["config_fields"] = DestinationConfig.fields(for: type).map { field -> [String: Any] in
            let input = "config." + field.name
            var view: [String: Any] = [
                "id": "config-" + field.name, "name": field.name, "input": input, "required": field.required, "secret": field.secret,
                "editing": export != nil, "error": Self.maybe(errors[field.name]),
            ]
            // A stored secret is never shown; one the user just typed is kept when the form comes back.
            let current = form.map { $0.raw(input) } ?? (field.secret ? "" : Self.display(stored[field.name], kind: field.kind))
            switch field.kind {
            case .boolean:
                view["select"] = true
                let chosen = current.isEmpty ? "" : current
                view["options"] =
                    [
                        [
                            "value": "", "label": "default" + (field.defaultValue.map { " (\(JSONWriter.string($0)))" } ?? ""),
                            "selected": chosen.isEmpty,
                        ],
                        ["value": "true", "label": "true", "selected": chosen == "true"],
                        ["value": "false", "label": "false", "selected": chosen == "false"],
                    ] as [[String: Any]]
            case .object:
                view["textarea"] = true
                view["value"] = current
                view["hint"] = "A JSON object."
            case .stringList:
                view["textarea"] = true
                view["value"] = current
                view["hint"] = "One per line."
            case .integer:
                view["plain"] = true
                view["input_type"] = "number"
                view["value"] = current
            case .string:
                view["plain"] = true
                view["input_type"] = field.secret ? "password" : "text"
                view["value"] = current
                if let defaultValue = field.defaultValue?.stringValue, !defaultValue.isEmpty { view["hint"] = "Default: \(defaultValue)" }
            }
            return view
        }
        context["destination_error"] = errors["destination"]
        context["has_test_results"] = !results.isEmpty
        context["test_results"] = results.map { step, result -> [String: Any] in
            [
                "name": step.name, "description": step.description, "status": result.status.rawValue,
                "status_class": result.status == .passed ? "completed" : "failed", "message": Self.maybe(result.message),
            ]
        }
        return context
    }

    /// A stored value as the form shows it.
    static func display(_ value: JSONValue?, kind: DestinationField.Kind) -> String {
        guard let value, !value.isNull else { return "" }
        switch (kind, value) {
        case (.stringList, .array(let items)): return items.compactMap(\.stringValue).joined(separator: "\n")
        case (_, .string(let text)): return text
        case (.boolean, .bool(let flag)): return flag ? "true" : "false"
        default: return JSONWriter.string(value)
        }
    }

    /// The form as the API's body. Blank fields are left out (a blank secret keeps the stored one).
    static func exportBody(_ form: Form, type: DestinationType) -> JSONObject {
        var config = JSONObject()
        for field in DestinationConfig.fields(for: type) {
            guard let text = form["config." + field.name] else { continue }
            switch field.kind {
            case .boolean: config[field.name] = text == "true" ? .bool(true) : text == "false" ? .bool(false) : .string(text)
            case .integer: config[field.name] = number(text)
            case .stringList:
                config[field.name] = .array(
                    text.split(whereSeparator: { $0 == "\n" || $0 == "," }).map {
                        .string($0.trimmingCharacters(in: .whitespacesAndNewlines))
                    }
                    .filter { $0 != .string("") })
            case .object: config[field.name] = (try? JSONParser.parse(Array(text.utf8))) ?? .string(text)
            case .string: config[field.name] = .string(form.raw("config." + field.name))
            }
        }
        var body: JSONObject = ["destination": .object(["type": .string(type.rawValue), "config": .object(config)])]
        for name in ["name", "model", "interval"] { if let value = form[name] { body[name] = .string(value) } }
        return body
    }

    /// Which field an error of the services concerns: its `attr`, or the configuration field it
    /// names in quotes; else the destination as a whole.
    static func place(_ error: APIError, type: DestinationType) -> (field: String, message: String) {
        if let attr = error.attr, ["name", "model", "interval"].contains(attr) { return (attr, error.detail) }
        for field in DestinationConfig.fields(for: type) where error.detail.contains("'\(field.name)'") {
            return (field.name, error.detail)
        }
        return ("destination", error.detail)
    }

    /// Which field a failed test step most likely concerns, from the destination's own answer.
    static func place(stepMessage message: String, type: DestinationType) -> String {
        let hints: [(String, String)] = [
            ("InvalidAccessKeyId", "aws_access_key_id"), ("SignatureDoesNotMatch", "aws_secret_access_key"),
            ("NoSuchBucket", "bucket_name"), ("Bucket '", "bucket_name"), ("password authentication failed", "password"),
            ("Schema '", "schema"), ("Table '", "table_name"), ("does not exist", "database"),
        ]
        let names = Set(DestinationConfig.fields(for: type).map(\.name))
        for (needle, field) in hints where message.contains(needle) && names.contains(field) { return field }
        return "destination"
    }

    /// Runs the destination's test steps on the form's configuration, in order, up to the first
    /// that fails.
    func runTest(
        _ request: ConsoleRequest, type: DestinationType, exportID: String?, body: JSONObject
    ) async throws -> [(DestinationTest.Step, DestinationTest.Result)] {
        guard let test = DestinationTest(type: type) else { return [] }
        var results: [(DestinationTest.Step, DestinationTest.Result)] = []
        for index in test.steps.indices {
            let result = try await services.batchExports.runTestStep(
                parent(request), id: exportID, body: .object(["step": .int(Int64(index)), "destination": body["destination"] ?? .null]),
                principal: request.principal)
            results.append(result)
            if result.1.status == .failed { break }
        }
        return results
    }

    @Sendable func newExportPage(_ request: ConsoleRequest) async throws -> APIResponse {
        guard let type = request.request.query["type"].flatMap(DestinationType.init(rawValue:)) else {
            _ = try await services.projects.retrieveEnvironment(id: request.parameter("team_id"), principal: request.principal)
            var context = try await layout(request, title: "New batch export")
            context["types"] = DestinationType.allCases.filter { Destinations.deliverable.contains($0) }.map {
                ["name": $0.rawValue, "team_id": request.parameter("team_id")]
            }
            return render("export_types", context)
        }
        _ = try await services.projects.retrieveEnvironment(id: request.parameter("team_id"), principal: request.principal)
        return render("export_form", try await formContext(request, type: type, export: nil, form: nil))
    }

    @Sendable func editExportPage(_ request: ConsoleRequest) async throws -> APIResponse {
        let detail = try await services.batchExports.retrieve(parent(request), id: request.parameter("id"), principal: request.principal)
        return render("export_form", try await formContext(request, type: detail.export.destinationType, export: detail.export, form: nil))
    }

    /// Saves (after the destination test, unless unticked) or only tests, for a new export and an
    /// edited one alike; a failure shows the form again with the error beside its field.
    @Sendable func saveExport(_ request: ConsoleRequest) async throws -> APIResponse {
        let id = request.request.parameters["id"]
        var stored: BatchExportService.Detail?
        if let id { stored = try await services.batchExports.retrieve(parent(request), id: id, principal: request.principal) }
        guard let type = stored?.export.destinationType ?? request.form["type"].flatMap(DestinationType.init(rawValue:)) else {
            throw APIError.required("destination__type")
        }
        let body = Self.exportBody(request.form, type: type)
        let testOnly = request.form["intent"] == "test"
        var results: [(DestinationTest.Step, DestinationTest.Result)] = []
        do {
            if testOnly || request.form["check"] != nil {
                results = try await runTest(request, type: type, exportID: id, body: body)
                if let failed = results.last, failed.1.status == .failed || testOnly {
                    var errors: [String: String] = [:]
                    if failed.1.status == .failed, let message = failed.1.message {
                        errors[Self.place(stepMessage: message, type: type)] = "\(failed.0.name) failed: \(message)"
                    }
                    let context = try await formContext(
                        request, type: type, export: stored?.export, form: request.form, errors: errors, results: results)
                    return render("export_form", context, status: failed.1.status == .failed ? 400 : 200)
                }
            }
            let saved: BatchExportService.Detail
            if let id {
                saved = try await services.batchExports.update(
                    parent(request), id: id, body: .object(body), full: false, principal: request.principal)
            } else {
                saved = try await services.batchExports.create(parent(request), body: .object(body), principal: request.principal)
            }
            return ConsoleResponse.redirect(
                "/project/\(request.parameter("team_id"))/batch_exports/\(saved.export.id)?flash=" + "Saved.".queryEscaped)
        } catch let error as APIError where error.status == 400 {
            let (field, message) = Self.place(error, type: type)
            let context = try await formContext(
                request, type: type, export: stored?.export, form: request.form, errors: [field: message], results: results)
            return render("export_form", context, status: 400)
        }
    }

    // MARK: One export

    func exportContext(_ request: ConsoleRequest) async throws -> [String: Any] {
        let detail = try await services.batchExports.retrieve(parent(request), id: request.parameter("id"), principal: request.principal)
        var context = try await layout(request, title: detail.export.name)
        let export = detail.export
        context["name"] = export.name
        context["type"] = export.destinationType.rawValue
        context["model"] = export.model.rawValue
        context["interval"] = export.interval.rawValue
        context["paused"] = export.paused
        context["base"] = base(request)
        let config = DestinationConfig.redacted(export.destinationConfig, type: export.destinationType)
        context["config"] = config.entries.map { key, value -> [String: Any] in ["key": key, "value": Self.display(value, kind: .string)] }
        let recent = try await services.batchExports.runs(
            parent(request), id: export.id, filter: .init(), principal: request.principal, limit: 30, offset: 0)
        context["chart"] = RunChart.svg(runs: recent)
        return try await runsContext(request, into: context)
    }

    func runsContext(_ request: ConsoleRequest, into base: [String: Any]) async throws -> [String: Any] {
        var context = base
        context["base"] = self.base(request)
        context["csrf"] = request.session.csrfToken
        let runs = try await services.batchExports.runs(
            parent(request), id: request.parameter("id"), filter: .init(), principal: request.principal, limit: 50, offset: 0)
        context["runs"] = runs.map { run -> [String: Any] in
            let duration = run.finishedAt.map { finished in
                String(format: "%.1f s", Double(finished.microseconds - (run.firstAttemptAt ?? run.createdAt).microseconds) / 1_000_000)
            }
            return [
                "id": run.id, "status": run.status.rawValue, "status_class": Self.statusClass(run.status), "interval": Self.interval(run),
                "records": run.recordsCompleted.map(String.init) ?? "—", "bytes": run.bytesExported.map(String.init) ?? "—",
                "duration": duration ?? "—", "attempt": run.attempt, "latest_error": run.latestError ?? "",
                "finished": run.status.isFinished,
            ]
        }
        let backfills = try await services.batchExports.backfills(
            parent(request), id: request.parameter("id"), principal: request.principal, limit: 20, offset: 0)
        context["backfills"] = backfills.map { backfill -> [String: Any] in
            [
                "id": backfill.id, "status": backfill.status.rawValue, "status_class": Self.statusClass(backfill.status),
                "range": "\(Self.date(backfill.startAt)) → \(Self.date(backfill.endAt))", "total": backfill.totalRuns ?? 0,
                "finished": backfill.finishedRuns, "records": backfill.totalRecordsCount.map(String.init) ?? "—",
                "done": backfill.status.isFinished,
            ]
        }
        return context
    }

    @Sendable func exportPage(_ request: ConsoleRequest) async throws -> APIResponse {
        render("export", try await exportContext(request))
    }

    /// The run and backfill tables alone, which the page's script fetches to refresh them.
    @Sendable func runsFragment(_ request: ConsoleRequest) async throws -> APIResponse {
        render("runs", try await runsContext(request, into: [:]))
    }

    func back(_ request: ConsoleRequest, _ note: String) -> APIResponse {
        ConsoleResponse.redirect(base(request) + "?flash=" + note.queryEscaped)
    }

    @Sendable func pauseExport(_ request: ConsoleRequest) async throws -> APIResponse {
        try await services.batchExports.pause(parent(request), id: request.parameter("id"), principal: request.principal)
        return back(request, "Paused.")
    }

    @Sendable func unpauseExport(_ request: ConsoleRequest) async throws -> APIResponse {
        _ = try await services.batchExports.unpause(
            parent(request), id: request.parameter("id"), backfill: false, principal: request.principal)
        return back(request, "Unpaused.")
    }

    @Sendable func deleteExport(_ request: ConsoleRequest) async throws -> APIResponse {
        try await services.batchExports.delete(parent(request), id: request.parameter("id"), principal: request.principal)
        return ConsoleResponse.redirect("/project/\(request.parameter("team_id"))/batch_exports?flash=" + "Deleted.".queryEscaped)
    }

    @Sendable func retryRun(_ request: ConsoleRequest) async throws -> APIResponse {
        _ = try await services.batchExports.retry(
            parent(request), id: request.parameter("id"), runID: request.parameter("run_id"), principal: request.principal)
        return back(request, "Retry scheduled.")
    }

    @Sendable func cancelRun(_ request: ConsoleRequest) async throws -> APIResponse {
        try await services.batchExports.cancelRun(
            parent(request), id: request.parameter("id"), runID: request.parameter("run_id"), principal: request.principal)
        return back(request, "Run cancelled.")
    }

    @Sendable func cancelBackfill(_ request: ConsoleRequest) async throws -> APIResponse {
        try await services.batchExports.cancelBackfill(
            parent(request), id: request.parameter("id"), backfillID: request.parameter("backfill_id"), principal: request.principal)
        return back(request, "Backfill cancelled.")
    }

    // MARK: Backfill

    /// `datetime-local` values are read as UTC.
    static func utc(_ text: String?) -> JSONValue {
        guard let text else { return .null }
        let colons = text.filter { $0 == ":" }.count
        return .string(text + (colons == 1 ? ":00" : "") + "+00:00")
    }

    func backfillContext(_ request: ConsoleRequest) async throws -> [String: Any] {
        let detail = try await services.batchExports.retrieve(parent(request), id: request.parameter("id"), principal: request.principal)
        var context = try await layout(request, title: "Backfill \(detail.export.name)")
        context["name"] = detail.export.name
        context["base"] = base(request)
        let hour = Timestamp.now().microseconds / 3_600_000_000 * 3_600_000_000
        func local(_ microseconds: Int64) -> String { String(Timestamp(microseconds: microseconds).iso8601.prefix(16)) }
        context["start_at"] = request.form["start_at"] ?? local(hour - 3_600_000_000)
        context["end_at"] = request.form["end_at"] ?? local(hour)
        return context
    }

    @Sendable func backfillPage(_ request: ConsoleRequest) async throws -> APIResponse {
        render("backfill", try await backfillContext(request))
    }

    /// `estimate` counts what the range holds and offers to start; `start` creates the backfill.
    @Sendable func backfill(_ request: ConsoleRequest) async throws -> APIResponse {
        let body: JSONValue = .object(["start_at": Self.utc(request.form["start_at"]), "end_at": Self.utc(request.form["end_at"])])
        do {
            if request.form["intent"] == "start" {
                _ = try await services.batchExports.createBackfill(
                    parent(request), id: request.parameter("id"), body: body, principal: request.principal)
                return back(request, "Backfill started.")
            }
            let estimate = try await services.batchExports.estimateBackfill(
                parent(request), id: request.parameter("id"), body: body, principal: request.principal)
            var context = try await backfillContext(request)
            context["estimate"] = String(estimate)
            return render("backfill", context)
        } catch let error as APIError where error.status == 400 {
            var context = try await backfillContext(request)
            context["error"] = error.detail
            return render("backfill", context, status: 400)
        }
    }

    // MARK: Logs

    @Sendable func logsPage(_ request: ConsoleRequest) async throws -> APIResponse {
        let detail = try await services.batchExports.retrieve(parent(request), id: request.parameter("id"), principal: request.principal)
        var context = try await layout(request, title: "Logs of \(detail.export.name)")
        var filter = BatchExportService.LogFilter()
        filter.limit = 200
        let level = request.request.query["level"].flatMap { $0.isEmpty ? nil : $0.uppercased() }
        filter.level = level.flatMap(LogLevel.init(rawValue:))
        filter.search = request.request.query["search"].flatMap { $0.isEmpty ? nil : $0 }
        // A level no log line has (a hand-edited link) shows no lines.
        let entries =
            level != nil && filter.level == nil
            ? []
            : try await services.batchExports.logs(parent(request), id: detail.export.id, filter: filter, principal: request.principal)
        context["name"] = detail.export.name
        context["base"] = base(request)
        context["search"] = filter.search ?? ""
        context["levels"] = [("", "All levels"), ("DEBUG", "Debug"), ("INFO", "Info"), ("WARNING", "Warning"), ("ERROR", "Error")].map {
            ["value": $0.0, "label": $0.1, "selected": $0.0 == (level ?? "")] as [String: Any]
        }
        context["entries"] = entries.map { entry -> [String: Any] in
            [
                "timestamp": Self.date(entry.timestamp), "level": entry.level.rawValue,
                "run": entry.runID.map { String($0.prefix(8)) } ?? "",
                "message": entry.message,
            ]
        }
        return render("logs", context)
    }
}
