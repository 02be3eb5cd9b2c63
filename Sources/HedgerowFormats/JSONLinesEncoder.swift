import HedgerowCore

/// One JSON object a line, the columns in their order (docs/engine.md §3): JSON columns nested as JSON,
/// timestamps as ISO 8601 strings with `+00:00`. Optionally compressed as one stream.
final class JSONLinesEncoder: FileEncoder {
    private let keys: [[UInt8]]
    private let compressor: (any StreamCompressor)?
    private var pending: [UInt8] = []
    private var output: [UInt8] = []
    private(set) var records = 0
    private(set) var bytesProduced = 0
    private static let flushThreshold = 256 * 1024

    init(columns: [FileColumn], compression: Compression?) {
        keys = columns.enumerated().map { offset, column in
            var key: [UInt8] = offset == 0 ? [UInt8(ascii: "{")] : [UInt8(ascii: ",")]
            JSONWriter.writeString(column.name, into: &key)
            key.append(UInt8(ascii: ":"))
            return key
        }
        compressor = compression?.streamCompressor()
        pending.reserveCapacity(Self.flushThreshold + 64 * 1024)
    }

    var approximateSize: Int { bytesProduced + pending.count + (compressor?.bufferedInput ?? 0) }

    func append<Row: FileRow>(_ row: Row) {
        var cells = Cells(keys: keys)
        swap(&cells.line, &pending)
        row.write(into: &cells)
        swap(&cells.line, &pending)
        pending.append(contentsOf: "}\n".utf8)
        records += 1
        if pending.count >= Self.flushThreshold { flushPending() }
    }

    /// A row's cells as `"key":value` members; cells past the last column are dropped.
    private struct Cells: FileCells {
        let keys: [[UInt8]]
        var line: [UInt8] = []
        var column = 0

        /// The next member's key; false past the last column.
        private mutating func key() -> Bool {
            guard column < keys.count else { return false }
            line.append(contentsOf: keys[column])
            column += 1
            return true
        }

        mutating func null() { if key() { line.append(contentsOf: "null".utf8) } }
        mutating func string(_ value: String) { if key() { JSONWriter.writeString(value, into: &line) } }
        mutating func json(_ value: String) {
            guard key() else { return }
            line.append(contentsOf: value.isEmpty ? "null".utf8 : value.utf8)
        }
        mutating func timestamp(_ value: Timestamp) {
            guard key() else { return }
            line.append(UInt8(ascii: "\""))
            value.writeISO8601WithOffset(into: &line)
            line.append(UInt8(ascii: "\""))
        }
        mutating func int(_ value: Int64) { if key() { line.append(contentsOf: String(value).utf8) } }
        mutating func bool(_ value: Bool) { if key() { line.append(contentsOf: (value ? "true" : "false").utf8) } }
        mutating func double(_ value: Double) {
            guard key() else { return }
            line.append(contentsOf: (value.isFinite ? JSONWriter.string(.double(value)) : "null").utf8)
        }
    }

    func endBatch() {}

    func finish() {
        flushPending()
        if let compressor {
            let before = output.count
            compressor.finish(into: &output)
            bytesProduced += output.count - before
        }
    }

    func takeOutput() -> [UInt8] {
        flushPending()
        defer { output = [] }
        return output
    }

    private func flushPending() {
        guard !pending.isEmpty else { return }
        let before = output.count
        if let compressor {
            compressor.compress(pending, into: &output)
        } else {
            output.append(contentsOf: pending)
        }
        bytesProduced += output.count - before
        pending.removeAll(keepingCapacity: true)
    }
}
