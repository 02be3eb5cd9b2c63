import HedgerowCore

/// One JSON object a line, the columns in their order (ENGINE.md §3): JSON columns nested as JSON,
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

    func append(_ row: [FileValue]) {
        for (key, value) in zip(keys, row) {
            pending.append(contentsOf: key)
            switch value {
            case .null: pending.append(contentsOf: "null".utf8)
            case .string(let text): JSONWriter.writeString(text, into: &pending)
            case .json(let text): if text.isEmpty { pending.append(contentsOf: "null".utf8) } else { pending.append(contentsOf: text.utf8) }
            case .timestamp(let time):
                pending.append(UInt8(ascii: "\""))
                time.writeISO8601WithOffset(into: &pending)
                pending.append(UInt8(ascii: "\""))
            case .int(let number): pending.append(contentsOf: String(number).utf8)
            case .bool(let flag): pending.append(contentsOf: (flag ? "true" : "false").utf8)
            case .double(let number):
                pending.append(contentsOf: (number.isFinite ? JSONWriter.string(.double(number)) : "null").utf8)
            }
        }
        pending.append(contentsOf: "}\n".utf8)
        records += 1
        if pending.count >= Self.flushThreshold { flushPending() }
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
