import HedgerowCore
import HedgerowStore
import NIOCore
import Testing

@testable import HedgerowDestinations

@Suite("PostgreSQL COPY text rows")
struct CopyTextTests {
    static func escaped(_ value: String) -> String {
        var buffer = ByteBuffer()
        PostgresCopyText.writeEscaped(value, into: &buffer)
        return buffer.readString(length: buffer.readableBytes) ?? ""
    }

    @Test("Backslash, tab, newline and carriage return are escaped wherever they stand; other text passes whole")
    func escaping() {
        #expect(Self.escaped("plain {\"a\": 1} ünïcödé") == "plain {\"a\": 1} ünïcödé")
        #expect(Self.escaped("\\a\tb\nc\rd\\") == "\\\\a\\tb\\nc\\rd\\\\")
        #expect(Self.escaped("\t\t") == "\\t\\t")
        #expect(Self.escaped("") == "")
        // A bridged (non-contiguous) string takes the same path's result.
        let bridged = String(decoding: Array("x\ty".utf8), as: UTF8.self)
        #expect(Self.escaped(bridged) == "x\\ty")
    }

    @Test("Integer cells are their decimal digits, with a sign when negative; a nil text cell is \\N")
    func integerAndNullCells() {
        for value: Int64 in [0, 7, 10, 1_704_067_200_000_000, -1, -45, .max, .min] {
            var buffer = ByteBuffer()
            PostgresCopyText.writeCell(value, into: &buffer)
            #expect(buffer.readString(length: buffer.readableBytes) == String(value))
        }
        var buffer = ByteBuffer()
        PostgresCopyText.writeCell(nil as String?, into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "\\N")
    }

    @Test("A row: columns in the table's order, NULL as \\N, unknown columns NULL, the timestamp with its offset")
    func row() throws {
        let event = Event(
            uuid: "0190a1b2-0000-7000-8000-000000000001", teamID: 7, event: "$pageview", distinctID: "d\t1",
            properties: #"{"$set": {"a": 1}, "$ip": "1.2.3.4", "x": "line\nbreak"}"#, personID: nil, personProperties: nil,
            elementsChain: nil, timestamp: Timestamp(microseconds: 1_748_736_000_000_001), createdAt: Timestamp(microseconds: 0),
            insertedAt: Timestamp(microseconds: 0))
        let names = ["timestamp", "uuid", "distinct_id", "set", "set_once", "ip", "team_id", "elements", "site_url", "properties"]
        var buffer = ByteBuffer()
        var scratch: [UInt8] = []
        try PostgresDestination.writeCopyRow(
            event, cells: names.map { PostgresDestination.CopyCell(rawValue: $0) }, scratch: &scratch, into: &buffer)
        let text = buffer.readString(length: buffer.readableBytes) ?? ""
        #expect(
            text
                == "2025-06-01T00:00:00.000001+00:00\t0190a1b2-0000-7000-8000-000000000001\td\\t1\t{\"a\": 1}\t\\N\t1.2.3.4\t7\t\\N\t\\N\t"
                + #"{"$set": {"a": 1}, "$ip": "1.2.3.4", "x": "line\\nbreak"}"# + "\n")
    }
}
