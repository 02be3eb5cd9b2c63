import HedgerowCore
import HedgerowExport
import HedgerowStore

/// `GET /metrics`: Prometheus text (docs/engine.md §9) — runs by status, records and bytes exported,
/// run time, retries and export lag per export, and the HTTP counters.
/// It shows every tenant's export ids, so it is served on a listener of its own
/// (`HEDGEROW_METRICS_ADDRESS`, loopback by default), and on the API's port only behind
/// `HEDGEROW_METRICS_TOKEN`.
struct MetricsController: Sendable {
    let database: any Database
    let requests: RequestMetrics
    /// This process's engine's scheduling latency; nil when it runs no engine.
    var engine: EngineMetrics? = nil
    let clock: @Sendable () -> Timestamp
    /// The bearer token `/metrics` requires; nil for none (the metrics listener without a token).
    let token: String?

    func addRoutes(to routes: inout Routes) {
        routes.add("GET", "/metrics", scope: nil, handler: metrics)
    }

    @Sendable func metrics(_ request: APIRequest) async throws -> APIResponse {
        if let token {
            let given = request.header("Authorization").flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil } ?? ""
            guard ConstantTime.equal(Array(given.utf8), Array(token.utf8)) else {
                throw APIError.authenticationFailed("A valid metrics token is required (Authorization: Bearer <HEDGEROW_METRICS_TOKEN>).")
            }
        }
        let now = clock()
        let (statuses, exports) = try await database.read { connection in try await BatchExportStore().metrics(on: connection) }
        var lines = [
            "# HELP hedgerow_batch_export_runs Batch export runs, by status.",
            "# TYPE hedgerow_batch_export_runs gauge",
        ]
        for (status, count) in statuses { lines.append("hedgerow_batch_export_runs{status=\"\(status)\"} \(count)") }
        func series(_ name: String, _ type: String, _ help: String, _ value: (BatchExportStore.ExportFigures) -> String?) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for figures in exports {
                guard let text = value(figures) else { continue }
                lines.append("\(name){batch_export=\"\(figures.batchExportID)\",destination=\"\(figures.destinationType)\"} \(text)")
            }
        }
        series("hedgerow_batch_export_records_exported_total", "counter", "Records delivered by completed runs.") { "\($0.records)" }
        series("hedgerow_batch_export_bytes_exported_total", "counter", "Bytes sent by completed runs.") { "\($0.bytes)" }
        series("hedgerow_batch_export_retries_total", "counter", "Attempts beyond the first.") { "\($0.retries)" }
        series("hedgerow_batch_export_run_seconds_sum", "counter", "Time from creation to completion of completed runs.") {
            "\(Double($0.runMicroseconds) / 1e6)"
        }
        series("hedgerow_batch_export_run_seconds_count", "counter", "Completed runs.") { "\($0.completedRuns)" }
        series("hedgerow_batch_export_lag_seconds", "gauge", "Now minus the end of the newest completed scheduled interval.") { figures in
            figures.newestCompletedEnd.map { "\(Double(now.microseconds - $0) / 1e6)" }
        }
        let body = lines.joined(separator: "\n") + "\n" + requests.exposition() + (engine?.exposition() ?? "")
        return APIResponse(status: 200, json: nil, headers: [("Content-Type", "text/plain; version=0.0.4")], text: body)
    }
}
