import HedgerowCore
import HedgerowStore
import HedgerowTestSupport
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

@Suite("PostgreSQL COPY binary rows")
struct CopyBinaryTests {
    typealias Cell = PostgresDestination.CopyCell

    @Test("A column goes in binary only when its type takes its cell's value; otherwise the run stays in text")
    func columnTypes() {
        #expect(
            PostgresDestination.binaryColumns(
                ["uuid", "event", "properties", "team_id", "site_url", "timestamp"].map { Cell(rawValue: $0) },
                types: ["varchar", "text", "jsonb", "int4", "numeric", "timestamptz"]) == [
                    .varchar, .text, .jsonb, .int4, nil, .timestamptz,
                ])
        #expect(
            PostgresDestination.binaryColumns([.set, .setOnce, .elements], types: ["json", "text", "bpchar"]) == [.json, .text, .bpchar])
        #expect(PostgresDestination.binaryColumns([.teamID, .timestamp], types: ["int8", "timestamp"]) == [.int8, .timestamp])
        // Types only text COPY's input functions can fill from these cells.
        #expect(PostgresDestination.binaryColumns([.uuid], types: ["uuid"]) == nil)
        #expect(PostgresDestination.binaryColumns([.ip], types: ["jsonb"]) == nil)
        #expect(PostgresDestination.binaryColumns([.teamID], types: ["text"]) == nil)
        #expect(PostgresDestination.binaryColumns([.teamID], types: ["numeric"]) == nil)
        #expect(PostgresDestination.binaryColumns([.timestamp], types: ["date"]) == nil)
    }

    @Test("A row: its field count, each value behind its length, jsonb's version byte, big-endian integers, NULL as -1")
    func row() throws {
        let event = Event(
            uuid: "0190a1b2-0000-7000-8000-000000000001", teamID: 7, event: "tab\there", distinctID: "d1",
            properties: #"{"$set": {"a": 1}, "$ip": "1.2.3.4"}"#, personID: nil, personProperties: nil, elementsChain: nil,
            timestamp: Timestamp(microseconds: 946_684_800_000_001), createdAt: Timestamp(microseconds: 0),
            insertedAt: Timestamp(microseconds: 0))
        let cells: [Cell?] = [.event, .set, .setOnce, .teamID, .ip, nil, .timestamp]
        let types: [PostgresCopyBinary.ColumnType?] = [.varchar, .jsonb, .jsonb, .int4, .text, nil, .timestamptz]
        var buffer = ByteBuffer()
        try PostgresDestination.writeCopyBinaryRow(event, cells: cells, types: types, into: &buffer)
        var expected: [UInt8] = [0, 7]
        expected += [0, 0, 0, 8] + Array("tab\there".utf8)
        expected += [0, 0, 0, 9, 1] + Array(#"{"a": 1}"#.utf8)
        expected += [0xFF, 0xFF, 0xFF, 0xFF]
        expected += [0, 0, 0, 4, 0, 0, 0, 7]
        expected += [0, 0, 0, 7] + Array("1.2.3.4".utf8)
        expected += [0xFF, 0xFF, 0xFF, 0xFF]
        expected += [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]
        #expect(Array(buffer.readableBytesView) == expected)

        var edges = ByteBuffer()
        PostgresCopyBinary.writeHeader(into: &edges)
        PostgresCopyBinary.writeTrailer(into: &edges)
        #expect(
            Array(edges.readableBytesView) == Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0] + [0, 0, 0, 0, 0, 0, 0, 0] + [0xFF, 0xFF])
    }

    @Test("A team id its integer column cannot hold fails the run as the server would, writing nothing")
    func integerRange() throws {
        var buffer = ByteBuffer()
        #expect(!PostgresCopyBinary.writeInteger(40_000, as: .int2, into: &buffer))
        #expect(!PostgresCopyBinary.writeInteger(Int64(Int32.max) + 1, as: .int4, into: &buffer))
        #expect(buffer.readableBytes == 0)
        #expect(PostgresCopyBinary.writeInteger(-2, as: .int2, into: &buffer))
        #expect(Array(buffer.readableBytesView) == [0, 0, 0, 2, 0xFF, 0xFE])
        let event = Event(
            uuid: "u", teamID: 70_000, event: "e", distinctID: "d", properties: "{}", personID: nil, personProperties: nil,
            elementsChain: nil, timestamp: Timestamp(microseconds: 0), createdAt: Timestamp(microseconds: 0),
            insertedAt: Timestamp(microseconds: 0))
        #expect(throws: DestinationError.self) {
            try PostgresDestination.writeCopyBinaryRow(event, cells: [.teamID], types: [.int2], into: &buffer)
        }
        var late = event
        late.teamID = 1
        // A stored value past year 1 is read within it (Timestamp's bound), which PostgreSQL holds.
        late.timestamp = Timestamp(microseconds: .min + 5)
        #expect(late.timestamp == .minimum)
        #expect(throws: Never.self) {
            try PostgresDestination.writeCopyBinaryRow(late, cells: [.timestamp], types: [.timestamptz], into: &buffer)
        }
    }

    @Test(
        "The statement handed to copyFrom's table argument runs binary COPY with the columns quoted; copyFrom's own text options are a comment"
    )
    func statement() {
        #expect(
            PostgresDestination.binaryCopyTarget("my events", columns: ["uuid", "set"])
                == #"my events" ("uuid", "set") FROM STDIN WITH (FORMAT binary) --"#)
    }
}
