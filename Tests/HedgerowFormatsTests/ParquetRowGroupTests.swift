import Foundation
import HedgerowCore
import HedgerowTestSupport
import Testing

@testable import HedgerowFormats

/// Parquet row groups end at a byte bound as well as at a batch's end, so one batch of wide rows
/// cannot hold gigabytes in memory (docs/engine.md §4).
@Suite("Parquet row groups bounded by bytes")
struct ParquetRowGroupTests {
    @Test(arguments: [nil, Compression.zstd, .gzip])
    func oneWideBatchIsCutIntoRowGroups(_ compression: Compression?) throws {
        let columns = [FileColumn("uuid", .string), FileColumn("properties", .json), FileColumn("count", .int64)]
        let encoder = ParquetEncoder(columns: columns, compression: compression, rowGroupBytes: 64 << 10)
        var output: [UInt8] = []
        for index in 0..<100 {
            let properties = JSONWriter.string(.object(["pad": .string(String(repeating: "p", count: 4_000)), "i": .int(Int64(index))]))
            encoder.append([FileValue.string("uuid-\(index)"), .json(properties), .int(Int64(index))])
            output += encoder.takeOutput()
        }
        // One batch: without the bound, one row group.
        encoder.endBatch()
        encoder.finish()
        output += encoder.takeOutput()
        let file = try ReferenceTools.temporaryFile(output, suffix: ".parquet")
        defer { try? FileManager.default.removeItem(at: file) }
        let read = try ReferenceTools.python(
            """
            import sys, json, pyarrow.parquet as pq
            f = pq.ParquetFile(sys.argv[1])
            t = f.read()
            print(json.dumps({
                "groups": f.metadata.num_row_groups,
                "largest": max(f.metadata.row_group(i).total_byte_size for i in range(f.metadata.num_row_groups)),
                "counts": t.column("count").to_pylist(),
            }))
            """, arguments: [file.path])
        let result = try JSONParser.parse(Array(read))
        // 100 rows of about 4 KB in 64 KiB row groups: 17 rows to a group, 6 groups, each under the bound and a row.
        #expect(result["groups"] == .int(6), "\(result)")
        guard case .int(let largest)? = result["largest"] else { throw TestSetupError(description: "no row group sizes: \(result)") }
        #expect(largest <= 64 << 10 + 4_200, "\(result)")
        #expect(result["counts"] == .array((0..<100).map { .int(Int64($0)) }))
    }
}
