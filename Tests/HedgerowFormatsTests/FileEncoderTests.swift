import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowTestSupport
import Testing

@Suite("JSONLines and Parquet files")
struct FileEncoderTests {
    static let columns = [
        FileColumn("uuid", .string), FileColumn("event", .string), FileColumn("properties", .json),
        FileColumn("person_id", .string), FileColumn("timestamp", .timestamp), FileColumn("count", .int64),
        FileColumn("flag", .boolean), FileColumn("score", .double),
    ]

    /// Rows with nulls, unicode, escapes, negative and fractional times.
    static func rows(_ count: Int, from start: Int = 0) -> [[FileValue]] {
        (start..<(start + count)).map { index -> [FileValue] in
            let event: String = index % 3 == 0 ? "$pageview" : "quote \" and \\ and \n é 🦔 \(index)"
            let properties: FileValue = index % 5 == 0 ? .null : .json(#"{"n":\#(index),"nested":{"list":[1,"two",null]},"s":"ü"}"#)
            let person: FileValue = index % 2 == 0 ? .null : .string("person-\(index)")
            var micros: Int64 = 1_704_067_200_000_000 + Int64(index) * 1_000_001
            if index == 7 { micros -= 1_800_000_000_000_000 }
            let count: FileValue = index % 4 == 1 ? .null : .int(Int64(index) * (index % 2 == 0 ? -1 : 1) * 1_000_000_007)
            // Nulls, both values, and runs longer than a byte of packed bits.
            let flag: FileValue = index % 11 == 3 ? .null : .bool(index % 3 != 0 || index % 19 < 9)
            let score: FileValue = index % 6 == 2 ? .null : .double(Double(index) + 0.25)
            return [
                .string("uuid-\(index)"), .string(event), properties, person, .timestamp(Timestamp(microseconds: micros)), count, flag,
                score,
            ]
        }
    }

    static func encode(_ format: FileFormat, _ compression: Compression?, batches: [[[FileValue]]]) throws -> [UInt8] {
        let encoder = try format.encoder(columns: columns, compression: compression).get()
        var bytes: [UInt8] = []
        for batch in batches {
            for row in batch { encoder.append(row) }
            encoder.endBatch()
            bytes += encoder.takeOutput()
        }
        encoder.finish()
        bytes += encoder.takeOutput()
        #expect(encoder.bytesProduced == bytes.count)
        #expect(encoder.records == batches.reduce(0) { $0 + $1.count })
        return bytes
    }

    /// What a row should read back as from pyarrow: timestamps as microseconds, nulls as None.
    static func expected(_ rows: [[FileValue]]) -> JSONValue {
        .array(
            rows.map { row in
                .array(
                    row.map { value in
                        switch value {
                        case .null: .null
                        case .string(let text), .json(let text): .string(text)
                        case .timestamp(let time): .int(time.microseconds)
                        case .int(let number): .int(number)
                        case .bool(let flag): .bool(flag)
                        case .double(let number): .double(number)
                        }
                    })
            })
    }

    @Test(arguments: [nil, Compression.zstd, .lz4, .snappy, .gzip, .brotli])
    func parquetIsReadBackByPyarrowValueByValue(_ compression: Compression?) throws {
        let batches = [Self.rows(1_000), Self.rows(1, from: 1_000), Self.rows(2_500, from: 1_001)]
        let bytes = try Self.encode(.parquet, compression, batches: batches)
        let file = try ReferenceTools.temporaryFile(bytes, suffix: ".parquet")
        defer { try? FileManager.default.removeItem(at: file) }
        let read = try ReferenceTools.python(
            """
            import sys, json, pyarrow.parquet as pq
            f = pq.ParquetFile(sys.argv[1])
            table = f.read()
            rows = [[(v.value if hasattr(v, 'value') and k == 'timestamp' else v.as_py()) for k, v in zip(table.column_names, r)]
                    for r in zip(*[table.column(c) for c in table.column_names])]
            print(json.dumps({
                "schema": [[field.name, str(field.type), field.nullable] for field in table.schema],
                "row_groups": f.metadata.num_row_groups,
                "codec": f.metadata.row_group(0).column(0).compression,
                "rows": rows,
            }))
            """, arguments: [file.path])
        let result = try JSONParser.parse(Array(read))
        #expect(
            result["schema"]
                == JSONValue.array([
                    ["uuid", "string", true], ["event", "string", true], ["properties", "string", true], ["person_id", "string", true],
                    ["timestamp", "timestamp[us, tz=UTC]", true], ["count", "int64", true], ["flag", "bool", true],
                    ["score", "double", true],
                ]))
        #expect(result["row_groups"] == .int(3))
        let codecs: [Compression?: String] = [
            nil: "UNCOMPRESSED", .zstd: "ZSTD", .lz4: "LZ4", .snappy: "SNAPPY", .gzip: "GZIP", .brotli: "BROTLI",
        ]
        #expect(result["codec"] == .string(codecs[compression] ?? "?"))
        #expect(result["rows"] == Self.expected(batches.flatMap { $0 }))
    }

    @Test func emptyParquetFileIsValid() throws {
        let bytes = try Self.encode(.parquet, .zstd, batches: [])
        let file = try ReferenceTools.temporaryFile(bytes, suffix: ".parquet")
        defer { try? FileManager.default.removeItem(at: file) }
        let read = try ReferenceTools.python(
            "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows, t.num_columns)", arguments: [file.path])
        #expect(String(decoding: read, as: UTF8.self) == "0 8\n")
    }

    @Test func jsonLinesNestsJSONAndWritesISOTimes() throws {
        let rows = Self.rows(10)
        let bytes = try Self.encode(.jsonLines, nil, batches: [rows])
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 11 && lines.last == "")
        let first = try JSONParser.parse(Array(lines[0].utf8))
        #expect(first["uuid"] == "uuid-0")
        #expect(first["properties"] == .null)
        #expect(first["person_id"] == .null)
        #expect(first["timestamp"] == "2024-01-01T00:00:00+00:00")
        let second = try JSONParser.parse(Array(lines[1].utf8))
        #expect(second["event"] == .string("quote \" and \\ and \n é 🦔 1"))
        #expect(second["properties"]?["nested"]?["list"] == [1, "two", .null])
        #expect(second["timestamp"] == "2024-01-01T00:00:01.000001+00:00")
        let seventh = try JSONParser.parse(Array(lines[7].utf8))
        #expect(seventh["timestamp"] == "1966-12-17T16:00:07.000007+00:00")
        #expect(
            Array(first.objectValue?.entries.map(\.key) ?? []) == [
                "uuid", "event", "properties", "person_id", "timestamp", "count", "flag", "score",
            ])
        #expect(first["count"] == .int(0) && first["flag"] == .bool(true) && first["score"] == .double(0.25))
        #expect(second["count"] == .null && second["flag"] == .bool(true))
    }

    @Test func compressedJSONLinesDecodesToTheSameLines() throws {
        let rows = Self.rows(5_000)
        let plain = try Self.encode(.jsonLines, nil, batches: [rows])
        for compression in [Compression.gzip, .brotli, .zstd, .lz4] {
            let bytes = try Self.encode(.jsonLines, compression, batches: [Array(rows[0..<2_000]), Array(rows[2_000...])])
            let file = try ReferenceTools.temporaryFile(bytes, suffix: "")
            defer { try? FileManager.default.removeItem(at: file) }
            let tool = try #require(CompressionTests.tools[compression])
            let decoded = try ReferenceTools.run(tool, ["-dc", file.path])
            #expect(Array(decoded.stdout) == plain, "\(compression)")
        }
    }

    @Test func jsonLinesRefusesSnappy() {
        guard case .failure(let error) = FileFormat.jsonLines.encoder(columns: Self.columns, compression: .snappy) else {
            Issue.record("snappy JSONLines was accepted")
            return
        }
        #expect(error.description.contains("snappy"))
    }

    /// The rows of `rows(_:from:)` written cell by cell, as the export's projections write them.
    struct CellRow: FileRow {
        let values: [FileValue]
        func write<Cells: FileCells>(into cells: inout Cells) {
            for value in values {
                switch value {
                case .null: cells.null()
                case .string(let text): cells.string(Optional(text))
                case .json(let text): cells.json(text)
                case .timestamp(let time): cells.timestamp(time)
                case .int(let number): cells.int(number)
                case .bool(let flag): cells.bool(flag)
                case .double(let number): cells.double(number)
                }
            }
        }
    }

    @Test(arguments: [
        (FileFormat.parquet, Compression?.none), (.parquet, .zstd), (.parquet, .snappy), (.jsonLines, nil), (.jsonLines, .gzip),
    ])
    func rowsWrittenCellByCellMakeTheSameFile(_ format: FileFormat, _ compression: Compression?) throws {
        let batches = [Self.rows(700), Self.rows(300, from: 700), Self.rows(1_200, from: 1_000)]
        let encoder = try format.encoder(columns: Self.columns, compression: compression).get()
        var bytes: [UInt8] = []
        for batch in batches {
            for row in batch { encoder.append(CellRow(values: row)) }
            encoder.endBatch()
            bytes += encoder.takeOutput()
        }
        encoder.finish()
        bytes += encoder.takeOutput()
        #expect(bytes == (try Self.encode(format, compression, batches: batches)))
        // A short row is null to the end (Parquet), and cells past the last column are dropped.
        let short = try format.encoder(columns: Self.columns, compression: nil).get()
        short.append(CellRow(values: [.string("u")]))
        short.append(CellRow(values: Self.rows(1)[0] + [.string("extra")]))
        short.finish()
        let full = try format.encoder(columns: Self.columns, compression: nil).get()
        full.append(format == .parquet ? [.string("u")] + Array(repeating: FileValue.null, count: Self.columns.count - 1) : [.string("u")])
        full.append(Self.rows(1)[0])
        full.finish()
        #expect(short.takeOutput() == full.takeOutput())
    }

    /// A Parquet row group is compressed on another thread while the next is appended; until its
    /// bytes are out, the file's size still counts it (what `max_file_size_mb` is checked against).
    @Test func parquetSizeCountsTheRowGroupBeingCompressed() throws {
        let encoder = try FileFormat.parquet.encoder(columns: Self.columns, compression: .zstd).get()
        for row in Self.rows(2_000) { encoder.append(row) }
        let buffered = encoder.approximateSize
        encoder.endBatch()
        #expect(encoder.approximateSize >= buffered)
        for row in Self.rows(10, from: 2_000) { encoder.append(row) }
        encoder.endBatch()
        // The first row group is out now, compressed; the second is in flight.
        #expect(encoder.bytesProduced > 4)
        #expect(encoder.bytesProduced < buffered)
        encoder.finish()
        #expect(encoder.approximateSize == encoder.bytesProduced)
    }

    @Test func approximateSizeGrowsWithRows() throws {
        for format in FileFormat.allCases {
            let encoder = try format.encoder(columns: Self.columns, compression: nil).get()
            let before = encoder.approximateSize
            for row in Self.rows(100) { encoder.append(row) }
            #expect(encoder.approximateSize > before + 100 * 20)
        }
    }
}
