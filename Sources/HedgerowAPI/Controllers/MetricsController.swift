import HedgerowCore
import HedgerowStore

/// `GET /metrics`: Prometheus text (ENGINE.md §9) — runs by status, records and bytes exported,
/// run time, retries and export lag per export, and the HTTP counters.
/// It shows every tenant's export ids, so it is served on a listener of its own
/// (`HEDGEROW_METRICS_ADDRESS`, loopback by default), and on the API's port only behind
/// `HEDGEROW_METRICS_TOKEN`.
struct MetricsController: Sendable {
    let database: any Database
    let requests: RequestMetrics
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
        let (statuses, exports) = try await database.read { connection in
            let statuses = try await connection.query(
                "SELECT status, COUNT(*) AS n FROM batch_export_runs GROUP BY status ORDER BY status", [])
            let exports = try await connection.query(
                """
                SELECT e.id, e.destination_type,
                    COALESCE(SUM(CASE WHEN r.status = 'Completed' THEN r.records_completed ELSE 0 END), 0) AS records,
                    COALESCE(SUM(CASE WHEN r.status = 'Completed' THEN r.bytes_exported ELSE 0 END), 0) AS bytes,
                    COALESCE(SUM(CASE WHEN r.attempt > 1 THEN r.attempt - 1 ELSE 0 END), 0) AS retries,
                    COALESCE(SUM(CASE WHEN r.status = 'Completed' THEN r.finished_at - r.created_at ELSE 0 END), 0) AS run_micros,
                    COUNT(CASE WHEN r.status = 'Completed' THEN 1 END) AS completed,
                    MAX(CASE WHEN r.status = 'Completed' AND r.backfill_id IS NULL THEN r.data_interval_end END) AS newest
                FROM batch_exports e LEFT JOIN batch_export_runs r ON r.batch_export_id = e.id
                WHERE e.deleted = $1 GROUP BY e.id, e.destination_type ORDER BY e.id
                """, [.bool(false)])
            return (statuses, exports)
        }
        var lines = [
            "# HELP hedgerow_batch_export_runs Batch export runs, by status.",
            "# TYPE hedgerow_batch_export_runs gauge",
        ]
        for row in statuses {
            lines.append("hedgerow_batch_export_runs{status=\"\(row.string("status") ?? "")\"} \(row.int("n") ?? 0)")
        }
        func series(_ name: String, _ type: String, _ help: String, _ value: (SQLRow) -> String?) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for row in exports {
                guard let text = value(row) else { continue }
                lines.append(
                    "\(name){batch_export=\"\(row.string("id") ?? "")\",destination=\"\(row.string("destination_type") ?? "")\"} \(text)")
            }
        }
        series("hedgerow_batch_export_records_exported_total", "counter", "Records delivered by completed runs.") {
            "\($0.int("records") ?? 0)"
        }
        series("hedgerow_batch_export_bytes_exported_total", "counter", "Bytes sent by completed runs.") { "\($0.int("bytes") ?? 0)" }
        series("hedgerow_batch_export_retries_total", "counter", "Attempts beyond the first.") { "\($0.int("retries") ?? 0)" }
        series("hedgerow_batch_export_run_seconds_sum", "counter", "Time from creation to completion of completed runs.") {
            "\(Double($0.int("run_micros") ?? 0) / 1e6)"
        }
        series("hedgerow_batch_export_run_seconds_count", "counter", "Completed runs.") { "\($0.int("completed") ?? 0)" }
        series("hedgerow_batch_export_lag_seconds", "gauge", "Now minus the end of the newest completed scheduled interval.") { row in
            row.int("newest").map { "\(Double(now.microseconds - $0) / 1e6)" }
        }
        let body = lines.joined(separator: "\n") + "\n" + (await requests.exposition())
        return APIResponse(status: 200, json: nil, headers: [("Content-Type", "text/plain; version=0.0.4")], text: body)
    }
}
