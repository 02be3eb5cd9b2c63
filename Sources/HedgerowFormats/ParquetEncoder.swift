import Foundation
import HedgerowCore

/// A Parquet file writer of our own (ARCHITECTURE.md): every column optional, PLAIN encoding,
/// definition levels in the RLE/bit-packed hybrid, one data page per column per row group, one row
/// group per batch, pages compressed with the file's codec: a row group is compressed on a thread of
/// its own (its pages on all cores at once, each worker with its own codec context) while the next
/// one is appended, and its bytes come out at the next `endBatch` or at `finish`. Strings and JSON are `BYTE_ARRAY`
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
    /// The row group on the compression thread, its uncompressed size, and the buffers of the one
    /// before it, emptied for the next row group.
    private var compressing: RowGroupPages?
    private var compressingBytes = 0
    private var spareBuffers: [ColumnBuffer]?
    private let compressionQueue = DispatchQueue(label: "hedgerow.parquet.compression")
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

    var approximateSize: Int { bytesProduced + bufferedBytes + compressingBytes }

    func append<Row: FileRow>(_ row: Row) {
        // The buffers are taken out of the object for the row: one exclusive access instead of one
        // per cell, which the profile showed.
        var cells = Cells()
        swap(&cells.buffers, &buffers)
        row.write(into: &cells)
        while cells.column < cells.buffers.count { cells.null() }
        swap(&cells.buffers, &buffers)
        bufferedBytes += cells.added
        rowsInGroup += 1
        records += 1
    }

    /// A row's cells into the column buffers (PLAIN values, a definition level each); cells past
    /// the last column are dropped.
    private struct Cells: FileCells {
        var buffers: [ColumnBuffer] = []
        var column = 0
        var added = 0

        mutating func null() {
            guard column < buffers.count else { return }
            buffers[column].definitions.append(0)
            column += 1
        }

        /// A length-prefixed BYTE_ARRAY; written from the string's own storage when it has one (the
        /// generic `append(contentsOf: text.utf8)` retained and released it several times a cell).
        private mutating func bytes(_ text: String) {
            guard column < buffers.count else { return }
            let index = column
            buffers[index].definitions.append(1)
            let count = text.utf8.count
            withUnsafeBytes(of: UInt32(count).littleEndian) { buffers[index].values.append(contentsOf: $0) }
            let copied: Void? = text.utf8.withContiguousStorageIfAvailable { buffers[index].values.append(contentsOf: $0) }
            if copied == nil { buffers[index].values.append(contentsOf: text.utf8) }
            added += count + 4
            column += 1
        }

        private mutating func fixed(_ bits: UInt64) {
            guard column < buffers.count else { return }
            buffers[column].definitions.append(1)
            withUnsafeBytes(of: bits.littleEndian) { buffers[column].values.append(contentsOf: $0) }
            added += 8
            column += 1
        }

        mutating func string(_ value: String) { bytes(value) }
        mutating func json(_ value: String) { bytes(value) }
        mutating func timestamp(_ value: Timestamp) { fixed(UInt64(bitPattern: value.microseconds)) }
        mutating func int(_ value: Int64) { fixed(UInt64(bitPattern: value)) }
        mutating func double(_ value: Double) {
            guard value.isFinite else { return null() }
            fixed(value.bitPattern)
        }
        mutating func bool(_ value: Bool) {
            // One byte a value here; packed to bits when the row group ends (PLAIN booleans).
            guard column < buffers.count else { return }
            buffers[column].definitions.append(1)
            buffers[column].values.append(value ? 1 : 0)
            added += 1
            column += 1
        }
    }

    func endBatch() {
        guard rowsInGroup > 0 else { return }
        // The previous row group's pages go out first; this one is compressed on another thread
        // while the caller appends the next (at most two row groups uncompressed at a time).
        collectCompressed()
        let group = RowGroupPages(rows: rowsInGroup, columns: buffers, kinds: columns.map(\.kind), compressors: compressors)
        buffers = spareBuffers ?? Array(repeating: ColumnBuffer(), count: columns.count)
        spareBuffers = nil
        if compressors.isEmpty {
            group.build()
            write(group)
        } else {
            compressing = group
            compressingBytes = bufferedBytes
            compressionQueue.async { group.build() }
        }
        rowsInGroup = 0
        bufferedBytes = 0
    }

    /// Waits for the row group on the compression thread, if any, and writes its pages.
    private func collectCompressed() {
        guard let group = compressing else { return }
        group.done.wait()
        compressing = nil
        compressingBytes = 0
        write(group)
    }

    /// A built row group's pages, headers in front, into the output; its buffers are kept for the
    /// next row group but one.
    private func write(_ group: RowGroupPages) {
        var metadata = RowGroupMetadata(rows: Int64(group.rows), offset: Int64(bytesProduced), chunks: [])
        for index in group.bodies.indices {
            let offset = Int64(bytesProduced)
            let body = group.bodies[index]
            var header = ThriftCompactWriter()
            header.beginStruct()
            header.i32(1, 0)  // DATA_PAGE
            header.i32(2, Int32(group.pageSizes[index]))
            header.i32(3, Int32(body.count))
            header.structure(5) { data in
                data.i32(1, Int32(group.rows))
                data.i32(2, 0)  // PLAIN
                data.i32(3, 3)  // RLE definition levels
                data.i32(4, 3)  // RLE repetition levels (none: max level 0)
            }
            header.endStruct()
            output.append(contentsOf: header.bytes)
            output.append(contentsOf: body)
            bytesProduced += header.bytes.count + body.count
            metadata.chunks.append(
                ChunkMetadata(
                    offset: offset, uncompressed: Int64(header.bytes.count + group.pageSizes[index]),
                    compressed: Int64(header.bytes.count + body.count)))
        }
        rowGroups.append(metadata)
        spareBuffers = group.takeBuffers()
    }

    func finish() {
        guard !finished else { return }
        finished = true
        endBatch()
        collectCompressed()
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

    /// A row group's column buffers made into pages (definition levels in front of the values,
    /// booleans packed) and compressed, on the compression thread; `done` is signalled when they are
    /// ready. Unchecked Sendable: the encoder hands it over whole and reads it again only after `done`,
    /// and its compressors (the encoder's) serve one row group at a time.
    private final class RowGroupPages: @unchecked Sendable {
        let rows: Int
        private var columns: [ColumnBuffer]
        private let kinds: [ColumnKind]
        private let compressors: [BlockCompressor]
        private(set) var pageSizes: [Int] = []
        private(set) var bodies: [[UInt8]] = []
        let done = DispatchSemaphore(value: 0)

        init(rows: Int, columns: [ColumnBuffer], kinds: [ColumnKind], compressors: [BlockCompressor]) {
            self.rows = rows
            self.columns = columns
            self.kinds = kinds
            self.compressors = compressors
        }

        /// Each page is built in its column's own buffer, so a row group is never held twice
        /// uncompressed.
        func build() {
            for index in columns.indices {
                if kinds[index] == .boolean { columns[index].values = ParquetEncoder.packBits(columns[index].values) }
                columns[index].values.insert(contentsOf: ParquetEncoder.encodeLevels(columns[index].definitions), at: 0)
            }
            pageSizes = columns.map(\.values.count)
            bodies = compressors.isEmpty ? columns.map(\.values) : BlockCompressor.compress(columns.map(\.values), with: compressors)
            done.signal()
        }

        /// The column buffers, emptied with their capacity kept. The bodies go first: a buffer still
        /// shared with one would be cleared into new storage.
        func takeBuffers() -> [ColumnBuffer] {
            bodies = []
            for index in columns.indices {
                columns[index].values.removeAll(keepingCapacity: true)
                columns[index].definitions.removeAll(keepingCapacity: true)
            }
            return columns
        }
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
