import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowTestSupport
import Testing

/// The Arrow IPC stream reader (Snowflake's `rowsetBase64`) against streams pyarrow writes.
@Suite("Arrow IPC reader")
struct ArrowIPCReaderTests {
    /// A stream of two record batches written by pyarrow, and the cells as text pyarrow expects.
    static func stream(_ program: String) throws -> (bytes: [UInt8], expected: JSONValue) {
        let output = try ReferenceTools.python(
            """
            import base64, json, sys, decimal
            import pyarrow as pa
            \(program)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                for batch in table.to_batches(max_chunksize=3):
                    writer.write_batch(batch)
            print(json.dumps({"stream": base64.b64encode(sink.getvalue().to_pybytes()).decode(), "expected": expected}))
            """)
        let answer = try JSONParser.parse(Array(output))
        let bytes = Array(Data(base64Encoded: answer["stream"]?.stringValue ?? "") ?? Data())
        return (bytes, answer["expected"] ?? .null)
    }

    @Test("Every supported type, with nulls, across record batches, reads as the text pyarrow gives")
    func types() throws {
        let (bytes, expected) = try Self.stream(
            """
            table = pa.table({
                "i8": pa.array([-128, 127, None, 0, 5], pa.int8()),
                "i16": pa.array([-32768, 1, 2, None, 3], pa.int16()),
                "i32": pa.array([-2147483648, 2147483647, 0, 1, None], pa.int32()),
                "i64": pa.array([-9223372036854775808, 9223372036854775807, None, 42, -1], pa.int64()),
                "u64": pa.array([18446744073709551615, 0, 1, None, 7], pa.uint64()),
                "f64": pa.array([1.5, -0.25, None, 1e100, 0.0], pa.float64()),
                "b": pa.array([True, False, None, True, True]),
                "s": pa.array(["a", "", None, "é ü", "x" * 300]),
                "ls": pa.array(["L", None, "m", "n", "o"], pa.large_string()),
                "bin": pa.array([b"\\x00\\xff", b"", None, b"ab", b"z"]),
                "d": pa.array([decimal.Decimal("123.45"), decimal.Decimal("-0.05"), None, decimal.Decimal("99999999999999999999999999999999999.99"), decimal.Decimal("0")], pa.decimal128(38, 2)),
                "n": pa.nulls(5),
            })
            def text(v, t):
                if v is None: return None
                if pa.types.is_boolean(t): return "true" if v else "false"
                if pa.types.is_binary(t): return v.hex()
                if pa.types.is_floating(t): return None
                return str(v)
            expected = [[text(col[i].as_py(), col.type) for col in table.columns] for i in range(table.num_rows)]
            """)
        let result = try ArrowIPCReader.read(bytes)
        #expect(result.columns.map(\.name) == ["i8", "i16", "i32", "i64", "u64", "f64", "b", "s", "ls", "bin", "d", "n"])
        #expect(
            result.columns.map(\.type) == [
                "Int", "Int", "Int", "Int", "Int", "FloatingPoint", "Bool", "Utf8", "LargeUtf8", "Binary", "Decimal", "Null",
            ])
        let rows = try #require(expected.arrayValue)
        #expect(result.rows.count == rows.count)
        for (got, want) in zip(result.rows, rows) {
            for (index, cell) in got.enumerated() where result.columns[index].name != "f64" {
                #expect(cell == want.arrayValue?[index].stringValue, "\(result.columns[index].name): \(got) vs \(want)")
            }
        }
        #expect(result.rows.map { $0[5].flatMap(Double.init) } == [1.5, -0.25, nil, 1e100, 0.0])
    }

    @Test("Snowflake's fixed-point integers: a field's scale metadata puts the decimal point in")
    func scaledIntegers() throws {
        let (bytes, _) = try Self.stream(
            """
            field = pa.field("amount", pa.int64(), metadata={"scale": "2", "logicalType": "FIXED"})
            table = pa.Table.from_arrays([pa.array([12345, -5, 0, None])], schema=pa.schema([field]))
            expected = None
            """)
        let result = try ArrowIPCReader.read(bytes)
        #expect(result.rows == [["123.45"], ["-0.05"], ["0.00"], [nil]])
    }

    @Test("A damaged stream is an error naming the problem, never a crash: every truncation, random bytes, an unsupported type")
    func damaged() throws {
        let (bytes, _) = try Self.stream(
            """
            table = pa.table({"s": pa.array(["a", "bb", None, "ccc"]), "i": pa.array([1, 2, 3, 4], pa.int64())})
            expected = None
            """)
        #expect(try ArrowIPCReader.read(bytes).rows.count == 4)
        for length in stride(from: 0, to: bytes.count, by: 3) {
            // Any prefix reads to an error or to fewer rows: never past the buffer.
            if let result = try? ArrowIPCReader.read(Array(bytes.prefix(length))) { #expect(result.rows.count <= 4) }
        }
        // Offsets and lengths near Int.max, sixteen bytes at each position in turn (damage the random
        // noise below hit once in a while): an error, never an overflow.
        for index in bytes.indices {
            var huge = bytes
            for at in index..<min(index + 16, huge.count) { huge[at] = 0x7F }
            _ = try? ArrowIPCReader.read(huge)
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var noisy = bytes
            for _ in 0..<8 { noisy[Int.random(in: 0..<noisy.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            _ = try? ArrowIPCReader.read(noisy)
        }
        let (listStream, _) = try Self.stream(
            """
            table = pa.table({"l": pa.array([[1, 2], [3]])})
            expected = None
            """)
        #expect(throws: ArrowIPCReader.Failure("column 'l' has type List, which is not supported")) { try ArrowIPCReader.read(listStream) }
    }
}
