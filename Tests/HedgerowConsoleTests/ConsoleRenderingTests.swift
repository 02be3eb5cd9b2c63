import Foundation
import HedgerowAPI
import HedgerowCore
import HedgerowTestSupport
import Testing

@testable import HedgerowConsole

/// The console's parts that need no server: the run chart and the form-to-API translation.
@Suite("Console rendering")
struct ConsoleRenderingTests {
    static func run(hour: Int64, records: Int64, finishedAfterMinutes: Int64?, backfill: Bool = false) -> BatchExportRun {
        let end = Timestamp(microseconds: 1_700_000_000_000_000 + hour * 3_600_000_000)
        var run = BatchExportRun(
            id: "r\(hour)", batchExportID: "e", backfillID: backfill ? "b" : nil,
            dataIntervalStart: Timestamp(microseconds: end.microseconds - 3_600_000_000), dataIntervalEnd: end, createdAt: end)
        run.status = .completed
        run.recordsCompleted = records
        run.finishedAt = finishedAfterMinutes.map { Timestamp(microseconds: end.microseconds + $0 * 60_000_000) }
        return run
    }

    @Test("The chart has a bar per finished run, scaled to the largest, and a lag line of scheduled runs only")
    func chart() {
        let svg = RunChart.svg(runs: [
            Self.run(hour: 2, records: 50, finishedAfterMinutes: 4), Self.run(hour: 1, records: 100, finishedAfterMinutes: 2),
            Self.run(hour: 3, records: 7, finishedAfterMinutes: nil),
        ])
        #expect(svg.components(separatedBy: "<rect ").count - 1 == 2)
        #expect(svg.contains("100 rec"))
        #expect(svg.contains("4.0 min"))
        #expect(svg.contains("<polyline"))
        #expect(svg.contains("100 records, Completed"))
        let backfillOnly = RunChart.svg(runs: [Self.run(hour: 1, records: 10, finishedAfterMinutes: 90_000, backfill: true)])
        #expect(!backfillOnly.contains("<polyline"))
        #expect(!backfillOnly.contains(" min<"))
        #expect(RunChart.svg(runs: []).contains("No finished runs yet."))
    }

    @Test("A destination form becomes the API's body: typed values, lists, objects; blank fields left out")
    func exportBody() throws {
        let body =
            "name=Nightly&model=events&interval=hour&config.bucket_name=b&config.prefix=&config.max_file_size_mb=512"
            + "&config.use_virtual_style_addressing=true&config.include_events=%24pageview%0Asigned+up&config.aws_secret_access_key=+s+"
        let form = Form(fields: QueryString(parsing: body))
        let object = ConsolePages.exportBody(form, type: .s3)
        let config = try #require(object["destination"]?["config"]?.objectValue)
        #expect(object["name"] == "Nightly")
        #expect(config["bucket_name"] == "b")
        #expect(config["prefix"] == nil)
        #expect(config["max_file_size_mb"] == 512)
        #expect(config["use_virtual_style_addressing"] == true)
        #expect(config["include_events"] == ["$pageview", "signed up"])
        #expect(config["aws_secret_access_key"] == " s ", "secrets are sent as typed")
        #expect(ConsolePages.place(stepMessage: "S3 answered SignatureDoesNotMatch: …", type: .s3) == "aws_secret_access_key")
        #expect(ConsolePages.place(stepMessage: "S3 answered InvalidAccessKeyId: …", type: .s3) == "aws_access_key_id")
        #expect(ConsolePages.place(stepMessage: "the host could not be reached", type: .s3) == "destination")
        #expect(ConsolePages.safeNext("//evil.example/") == "/")
        #expect(ConsolePages.safeNext("/organization") == "/organization")
    }
}
