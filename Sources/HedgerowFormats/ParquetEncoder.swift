import Foundation
import HedgerowCore

/// A Parquet file writer of our own (ARCHITECTURE.md): every column optional, PLAIN encoding,
/// definition levels in the RLE/bit-packed hybrid, one data page per column per row group, one row
/// group per batch, pages compressed with the file's codec (the pages of a row group on all cores at
/// once, each worker with its own codec context). Strings and JSON are `BYTE_ARRAY`
/// `STRING`; timestamps `INT64` `TIMESTAMP(MICROS, isAdjustedToUTC)`.
final class ParquetEncoder: FileEncoder {
    private struct ColumnBuffer {
        var values: [UInt8] = []
        /// 1 = present, 0 = null, one per row of the row group.
        var definitions: [UInt8] = []
    }

    private struct ChunkMetadata {
        var offset: Int64
        var uncompressed: Int64
        var compressed: Int64
    }

    private struct RowGroupMetadata {
        var rows: Int64
        var offset: Int64
        var chunks: [ChunkMetadata]
    }

    private let columns: [FileColumn]
    private let compression: Compression?
    /// One per worker, none when the pages are not compressed.
    private let compressors: [BlockCompressor]
    private var buffers: [ColumnBuffer]
    private var rowsInGroup = 0
    private var bufferedBytes = 0
    private var rowGroups: [RowGroupMetadata] = []
    private var output: [UInt8] = Array("PAR1".utf8)
    private(set) var records = 0
    private(set) var bytesProduced = 4
    private var finished = false

    init(columns: [FileColumn], compression: Compression?) {
        self.columns = columns
        self.compression = compression
        let workers = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), columns.count)
        compressors = compression.map { codec in (0..<workers).map { _ in BlockCompressor(codec) } } ?? []
        buffers = Array(repeating: ColumnBuffer(), count: columns.count)
    }

    var approximateSize: Int { bytesProduced + bufferedBytes }

    func append(_ row: [FileValue]) {
        // The buffers are taken out of the object for the row: one exclusive access instead of one
        // per cell, which the profile showed.
        var buffers: [ColumnBuffer] = []
        swap(&buffers, &self.buffers)
        defer { swap(&buffers, &self.buffers) }
        var added = 0
        for index in buffers.indices {
            let value = index < row.count ? row[index] : .null
            switch value {
            case .null:
                buffers[index].definitions.append(0)
            case .string(let text), .json(let text):
                buffers[index].definitions.append(1)
                let count = text.utf8.count
                withUnsafeBytes(of: UInt32(count).littleEndian) { buffers[index].values.append(contentsOf: $0) }
                buffers[index].values.append(contentsOf: text.utf8)
                added += count + 4
            case .timestamp(let time):
                buffers[index].definitions.append(1)
                withUnsafeBytes(of: time.microseconds.littleEndian) { buffers[index].values.append(contentsOf: $0) }
                added += 8
            case .int(let number):
                buffers[index].definitions.append(1)
                withUnsafeBytes(of: number.littleEndian) { buffers[index].values.append(contentsOf: $0) }
                added += 8
            case .double(let number) where number.isFinite:
                buffers[index].definitions.append(1)
                withUnsafeBytes(of: number.bitPattern.littleEndian) { buffers[index].values.append(contentsOf: $0) }
                added += 8
            case .double:
                buffers[index].definitions.append(0)
            case .bool(let flag):
                // One byte a value here; packed to bits when the row group ends (PLAIN booleans).
                buffers[index].definitions.append(1)
                buffers[index].values.append(flag ? 1 : 0)
                added += 1
            }
        }
        bufferedBytes += added
        rowsInGroup += 1
        records += 1
    }

    func endBatch() {
        guard rowsInGroup > 0 else { return }
        var group = RowGroupMetadata(rows: Int64(rowsInGroup), offset: Int64(bytesProduced), chunks: [])
        // Each page is built in its column's own buffer, the levels moved in front of the values, so
        // a row group is never held twice uncompressed.
        for index in buffers.indices {
            if columns[index].kind == .boolean { buffers[index].values = Self.packBits(buffers[index].values) }
            buffers[index].values.insert(contentsOf: Self.encodeLevels(buffers[index].definitions), at: 0)
        }
        let pageSizes = buffers.map(\.values.count)
        var bodies = compressors.isEmpty ? buffers.map(\.values) : BlockCompressor.compress(buffers.map(\.values), with: compressors)
        for index in buffers.indices {
            let offset = Int64(bytesProduced)
            let body = bodies[index]
            var header = ThriftCompactWriter()
            header.beginStruct()
            header.i32(1, 0)  // DATA_PAGE
            header.i32(2, Int32(pageSizes[index]))
            header.i32(3, Int32(body.count))
            header.structure(5) { data in
                data.i32(1, Int32(rowsInGroup))
                data.i32(2, 0)  // PLAIN
                data.i32(3, 3)  // RLE definition levels
                data.i32(4, 3)  // RLE repetition levels (none: max level 0)
            }
            header.endStruct()
            output.append(contentsOf: header.bytes)
            output.append(contentsOf: body)
            bytesProduced += header.bytes.count + body.count
            group.chunks.append(
                ChunkMetadata(
                    offset: offset, uncompressed: Int64(header.bytes.count + pageSizes[index]),
                    compressed: Int64(header.bytes.count + body.count)))
        }
        // The bodies go first: a buffer still shared with one would be cleared into new storage.
        bodies = []
        for index in buffers.indices {
            buffers[index].values.removeAll(keepingCapacity: true)
            buffers[index].definitions.removeAll(keepingCapacity: true)
        }
        rowGroups.append(group)
        rowsInGroup = 0
        bufferedBytes = 0
    }

    func finish() {
        guard !finished else { return }
        finished = true
        endBatch()
        let footer = footerBytes()
        output.append(contentsOf: footer)
        withUnsafeBytes(of: UInt32(footer.count).littleEndian) { output.append(contentsOf: $0) }
        output.append(contentsOf: "PAR1".utf8)
        bytesProduced += footer.count + 8
    }

    func takeOutput() -> [UInt8] {
        defer { output = [] }
        return output
    }

    /// PLAIN booleans: one bit a value, least significant bit first.
    static func packBits(_ flags: [UInt8]) -> [UInt8] {
        var packed = [UInt8](repeating: 0, count: (flags.count + 7) / 8)
        for (index, flag) in flags.enumerated() where flag != 0 { packed[index / 8] |= 1 << UInt8(index % 8) }
        return packed
    }

    /// Definition levels of bit width 1 in the RLE/bit-packed hybrid, as RLE runs, behind their
    /// 4-byte length (data page v1).
    static func encodeLevels(_ levels: [UInt8]) -> [UInt8] {
        var runs: [UInt8] = []
        var index = 0
        while index < levels.count {
            let value = levels[index]
            var end = index + 1
            while end < levels.count && levels[end] == value { end += 1 }
            var header = UInt64(end - index) << 1
            while header >= 0x80 {
                runs.append(UInt8(header & 0x7F) | 0x80)
                header >>= 7
            }
            runs.append(UInt8(header))
            runs.append(value)
            index = end
        }
        var page: [UInt8] = []
        page.reserveCapacity(runs.count + 4)
        withUnsafeBytes(of: UInt32(runs.count).littleEndian) { page.append(contentsOf: $0) }
        page.append(contentsOf: runs)
        return page
    }

    /// Parquet's physical types: BOOLEAN 0, INT64 2, DOUBLE 5, BYTE_ARRAY 6.
    static func physicalType(_ kind: ColumnKind) -> Int32 {
        switch kind {
        case .timestamp, .int64: 2
        case .boolean: 0
        case .double: 5
        case .string, .json: 6
        }
    }

    /// Parquet's codec ids; lz4 is `LZ4_RAW` (the unframed block the format settled on).
    private var codecID: Int32 {
        switch compression {
        case nil: 0
        case .snappy: 1
        case .gzip: 2
        case .brotli: 4
        case .zstd: 6
        case .lz4: 7
        }
    }

    private func footerBytes() -> [UInt8] {
        var meta = ThriftCompactWriter()
        meta.beginStruct()
        meta.i32(1, 1)
        meta.structList(2, [nil] + columns.map { Optional($0) }) { element, column in
            guard let column else {
                element.string(4, "schema")
                element.i32(5, Int32(columns.count))
                return
            }
            element.i32(1, Self.physicalType(column.kind))
            element.i32(3, 1)  // OPTIONAL
            element.string(4, column.name)
            switch column.kind {
            case .timestamp:
                element.i32(6, 10)  // TIMESTAMP_MICROS
                element.structure(10) { logical in
                    logical.structure(8) { timestamp in
                        timestamp.bool(1, true)
                        timestamp.structure(2) { unit in unit.structure(2) { _ in } }
                    }
                }
            case .string, .json:
                element.i32(6, 0)  // UTF8
                element.structure(10) { logical in logical.structure(1) { _ in } }
            case .int64, .boolean, .double:
                break  // the physical type says it all
            }
        }
        meta.i64(3, Int64(records))
        meta.structList(4, rowGroups) { element, group in
            element.structList(1, Array(zip(columns, group.chunks))) { chunk, pair in
                let (column, metadata) = pair
                chunk.i64(2, metadata.offset)
                chunk.structure(3) { data in
                    data.i32(1, Self.physicalType(column.kind))
                    data.i32List(2, [0, 3])
                    data.stringList(3, [column.name])
                    data.i32(4, codecID)
                    data.i64(5, group.rows)
                    data.i64(6, metadata.uncompressed)
                    data.i64(7, metadata.compressed)
                    data.i64(9, metadata.offset)
                }
            }
            element.i64(2, group.chunks.reduce(0) { $0 + $1.uncompressed })
            element.i64(3, group.rows)
            element.i64(5, group.offset)
            element.i64(6, group.chunks.reduce(0) { $0 + $1.compressed })
        }
        meta.string(6, "hedgerow")
        meta.endStruct()
        return meta.bytes
    }
}
