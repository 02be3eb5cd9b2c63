import Foundation
import HedgerowCore

/// An SVG chart of an export's last runs, drawn here: one bar per run for its records, and a line
/// for the lag of scheduled runs (from the end of the run's interval to when it finished; a
/// backfill's runs are late by design, so they have none).
enum RunChart {
    static func svg(runs: [BatchExportRun], width: Int = 720, height: Int = 220) -> String {
        let finished = runs.filter { $0.finishedAt != nil }.sorted { $0.dataIntervalEnd < $1.dataIntervalEnd }.suffix(30)
        let left = 56.0
        let right = 56.0
        let top = 16.0
        let bottom = 28.0
        let plotWidth = Double(width) - left - right
        let plotHeight = Double(height) - top - bottom
        var parts: [String] = [
            ##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \##(width) \##(height)" role="img" aria-labelledby="chart-title">"##,
            ##"<title id="chart-title">Records per run and export lag of the last \##(finished.count) finished runs</title>"##,
            ##"<line x1="\##(left)" y1="\##(top + plotHeight)" x2="\##(left + plotWidth)" y2="\##(top + plotHeight)" stroke="#6e7781"/>"##,
        ]
        guard !finished.isEmpty else {
            parts.append(
                ##"<text x="\##(left + 8)" y="\##(top + plotHeight / 2)" fill="#57606a" font-size="14">No finished runs yet.</text>"##)
            parts.append("</svg>")
            return parts.joined()
        }
        let records = finished.map { Double($0.recordsCompleted ?? 0) }
        let lags: [Double?] = finished.map { run in
            guard run.backfillID == nil, let done = run.finishedAt else { return nil }
            return max(0, Double(done.microseconds - run.dataIntervalEnd.microseconds) / 60_000_000)
        }
        let maxRecords = max(records.max() ?? 1, 1)
        let maxLag = max(lags.compactMap { $0 }.max() ?? 1, 1)
        let slot = min(plotWidth / Double(finished.count), 48)
        for (index, run) in finished.enumerated() {
            let barHeight = records[index] / maxRecords * plotHeight
            let x = left + Double(index) * slot + slot * 0.15
            let fill = run.status == .completed ? "#1a7f37" : run.status == .failed ? "#cf222e" : "#8c959f"
            parts.append(
                ##"<rect x="\##(format(x))" y="\##(format(top + plotHeight - barHeight))" width="\##(format(slot * 0.7))" height="\##(format(barHeight))" fill="\##(fill)"><title>\##(Int(records[index])) records, \##(run.status.rawValue), interval ending \##(run.dataIntervalEnd.iso8601)</title></rect>"##
            )
        }
        let points = lags.enumerated().compactMap { index, lag in
            lag.map { "\(format(left + (Double(index) + 0.5) * slot)),\(format(top + plotHeight - $0 / maxLag * plotHeight))" }
        }
        if !points.isEmpty {
            parts.append(##"<polyline points="\##(points.joined(separator: " "))" fill="none" stroke="#0969da" stroke-width="2"/>"##)
            parts.append(
                ##"<text x="\##(format(left + plotWidth + 4))" y="\##(top + 10)" fill="#0969da" font-size="12">\##(format(maxLag)) min</text>"##
            )
        }
        parts.append(##"<text x="4" y="\##(top + 10)" fill="#1b1f24" font-size="12">\##(Int(maxRecords)) rec</text>"##)
        parts.append(##"<text x="4" y="\##(top + plotHeight)" fill="#1b1f24" font-size="12">0</text>"##)
        parts.append(
            ##"<text x="\##(left)" y="\##(Double(height) - 8)" fill="#57606a" font-size="12">\##(finished.first!.dataIntervalEnd.iso8601) → \##(finished.last!.dataIntervalEnd.iso8601)</text>"##
        )
        parts.append("</svg>")
        return parts.joined()
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }
}
