import Foundation
import HedgerowCore

/// A Parquet file writer of our own (ARCHITECTURE.md): every column optional, PLAIN encoding,
/// definition levels in the RLE/bit-packed hybrid, one data page per column per row group, one row
/// group per batch (or per `rowGroupBytes` of values, whichever ends first), pages compressed with the file's codec: a row group is compressed on a thread of
/// its own (its pages on all cores at once, each worker with its own codec context) while the next
/// one is appended, and its bytes come out at the next `endBatch` or at `finish`. Strings and JSON are `BYTE_ARRAY`
/// `STRING`; timestamps `INT64` `TIMESTAMP(MICROS, isAdjustedToUTC)`.
final class ParquetEncoder: FileEncoder {
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

    /// A row group ends once this many bytes of values are buffered, whatever the batch: memory
    /// holds two row groups uncompressed at most, so one batch of wide rows cannot balloon it.
    static let rowGroupBytes = 128 << 20

    private let columns: [FileColumn]
    private let compression: Compression?
    private let rowGroupLimit: Int
    /// One per worker, none when the pages are not compressed.
    private let compressors: [BlockCompressor]
    /// The row group being appended.
    private var current: ColumnSet
    private var rowsInGroup = 0
    /// The row group on the compression thread, its uncompressed size, and the columns of the one
    /// before it, emptied for the next row group.
    private var compressing: RowGroupPages?
    private var compressingBytes = 0
    private var spare: ColumnSet?
    private let compressionQueue = DispatchQueue(label: "hedgerow.parquet.compression")
    private var bufferedBytes = 0
    private var rowGroups: [RowGroupMetadata] = []
    private var output: [UInt8] = Array("PAR1".utf8)
    private(set) var records = 0
    private(set) var bytesProduced = 4
    private var finished = false

    init(columns: [FileColumn], compression: Compression?, rowGroupBytes: Int = ParquetEncoder.rowGroupBytes) {
        self.columns = columns
        self.rowGroupLimit = max(1, rowGroupBytes)
        self.compression = compression
        let workers = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), columns.count)
        compressors = compression.map { codec in (0..<workers).map { _ in BlockCompressor(codec) } } ?? []
        current = ColumnSet(count: columns.count)
    }

    var approximateSize: Int { bytesProduced + bufferedBytes + compressingBytes }

    func append<Row: FileRow>(_ row: Row) {
        var cells = Cells(columns: current.columns)
        row.write(into: &cells)
        while cells.column < cells.columns.count { cells.null() }
        bufferedBytes += cells.added
        rowsInGroup += 1
        records += 1
        if bufferedBytes >= rowGroupLimit { endBatch() }
    }

    /// A row's cells into the column buffers (PLAIN values, a definition level each); cells past
    /// the last column are dropped. The columns are written through their pointers: no array's
    /// uniqueness or capacity is checked per cell, which the profile showed.
    private struct Cells: FileCells {
        let columns: UnsafeMutableBufferPointer<ColumnSet.Column>
        var column = 0
        var added = 0

        init(columns: UnsafeMutableBufferPointer<ColumnSet.Column>) { self.columns = columns }

        mutating func null() {
            guard column < columns.count else { return }
            columns[column].level(0)
            column += 1
        }

        /// Room for a present cell of `size` bytes in the current column, its definition level
        /// written and the column's count moved past it; nil past the last column.
        @inline(__always) private mutating func present(_ size: Int) -> UnsafeMutablePointer<UInt8>? {
            guard column < columns.count else { return nil }
            let target = columns.baseAddress! + column
            target.pointee.level(1)
            target.pointee.reserve(size)
            let room = target.pointee.values! + target.pointee.count
            target.pointee.count += size
            added += size
            column += 1
            return room
        }

        /// A length-prefixed BYTE_ARRAY, copied from the string's own storage when it has one.
        private mutating func bytes(_ text: String) {
            let count = text.utf8.count
            guard let room = present(count + 4) else { return }
            UnsafeMutableRawPointer(room).storeBytes(of: UInt32(count).littleEndian, as: UInt32.self)
            let copied: Void? = text.utf8.withContiguousStorageIfAvailable { source in
                if count > 0 { (room + 4).initialize(from: source.baseAddress!, count: count) }
            }
            if copied == nil { _ = UnsafeMutableBufferPointer(start: room + 4, count: count).initialize(from: text.utf8) }
        }

        private mutating func fixed(_ bits: UInt64) {
            guard let room = present(8) else { return }
            UnsafeMutableRawPointer(room).storeBytes(of: bits.littleEndian, as: UInt64.self)
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
            present(1)?.pointee = value ? 1 : 0
        }
    }

    func endBatch() {
        guard rowsInGroup > 0 else { return }
        // The previous row group's pages go out first; this one is compressed on another thread
        // while the caller appends the next (at most two row groups uncompressed at a time).
        collectCompressed()
        let group = RowGroupPages(rows: rowsInGroup, columns: current, kinds: columns.map(\.kind), compressors: compressors)
        current = spare ?? ColumnSet(count: columns.count)
        spare = nil
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
        spare = group.takeColumns()
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

    /// A row group's columns made into pages (definition levels in front of the values, booleans
    /// packed) and compressed, on the compression thread; `done` is signalled when they are ready.
    /// Unchecked Sendable: the encoder hands it over whole and reads it again only after `done`,
    /// and its compressors (the encoder's) serve one row group at a time.
    private final class RowGroupPages: @unchecked Sendable {
        let rows: Int
        private let columns: ColumnSet
        private let kinds: [ColumnKind]
        private let compressors: [BlockCompressor]
        private(set) var pageSizes: [Int] = []
        private(set) var bodies: [[UInt8]] = []
        let done = DispatchSemaphore(value: 0)

        init(rows: Int, columns: ColumnSet, kinds: [ColumnKind], compressors: [BlockCompressor]) {
            self.rows = rows
            self.columns = columns
            self.kinds = kinds
            self.compressors = compressors
        }

        func build() {
            let pages = kinds.indices.map { columns.page(of: $0, packingBits: kinds[$0] == .boolean) }
            pageSizes = pages.map(\.count)
            bodies = compressors.isEmpty ? pages : BlockCompressor.compress(pages, with: compressors)
            done.signal()
        }

        /// The columns, emptied with their memory kept, for the next row group but one.
        func takeColumns() -> ColumnSet {
            bodies = []
            columns.reset()
            return columns
        }
    }

    /// PLAIN booleans: one bit a value, least significant bit first.
    static func packBits(_ flags: [UInt8]) -> [UInt8] {
        var packed = [UInt8](repeating: 0, count: (flags.count + 7) / 8)
        for (index, flag) in flags.enumerated() where flag != 0 { packed[index / 8] |= 1 << UInt8(index % 8) }
        return packed
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

extension ParquetEncoder {
    /// A row group's columns in memory of their own: each column's PLAIN values, and its definition
    /// levels as RLE runs of bit width 1, made as the rows come (a run is written when the level
    /// changes and at the page's end), so neither needs a byte a row nor a second pass. The memory is
    /// kept from row group to row group (`reset`) and freed with the set. Unchecked Sendable: one
    /// thread at a time has it, the encoder handing it to the compression thread and back.
    final class ColumnSet: @unchecked Sendable {
        struct Column {
            var values: UnsafeMutablePointer<UInt8>?
            var count = 0
            var capacity = 0
            var levels: UnsafeMutablePointer<UInt8>?
            var levelsCount = 0
            var levelsCapacity = 0
            var runValue: UInt8 = 0
            var runLength = 0

            /// Room for `extra` more value bytes.
            @inline(__always) mutating func reserve(_ extra: Int) {
                if count + extra > capacity { grow(&values, capacity: &capacity, to: count + extra) }
            }

            @inline(__always) mutating func level(_ value: UInt8) {
                if value == runValue && runLength > 0 {
                    runLength += 1
                } else {
                    endRun()
                    runValue = value
                    runLength = 1
                }
            }

            /// The current run into `levels`: its length shifted left by one (an RLE run's header) as
            /// a ULEB128 varint, then its value in one byte.
            mutating func endRun() {
                guard runLength > 0 else { return }
                if levelsCount + 11 > levelsCapacity { grow(&levels, capacity: &levelsCapacity, to: levelsCount + 11) }
                var header = UInt64(runLength) << 1
                while header >= 0x80 {
                    levels![levelsCount] = UInt8(header & 0x7F) | 0x80
                    levelsCount += 1
                    header >>= 7
                }
                levels![levelsCount] = UInt8(header)
                levels![levelsCount + 1] = runValue
                levelsCount += 2
                runLength = 0
            }

            private func grow(_ storage: inout UnsafeMutablePointer<UInt8>?, capacity: inout Int, to needed: Int) {
                let size = max(needed, capacity * 2, 4096)
                guard let moved = realloc(storage, size) else { fatalError("out of memory for a Parquet column of \(size) bytes") }
                storage = moved.assumingMemoryBound(to: UInt8.self)
                capacity = size
            }
        }

        let columns: UnsafeMutableBufferPointer<Column>

        init(count: Int) {
            columns = .allocate(capacity: count)
            columns.initialize(repeating: Column())
        }

        deinit {
            for column in columns {
                free(column.values)
                free(column.levels)
            }
            columns.deallocate()
        }

        /// Empties every column, keeping its memory.
        func reset() {
            for index in columns.indices {
                columns[index].count = 0
                columns[index].levelsCount = 0
                columns[index].runLength = 0
            }
        }

        /// A column's data page body (v1): the levels' length and runs, then the values, booleans
        /// packed to bits.
        func page(of index: Int, packingBits: Bool) -> [UInt8] {
            columns[index].endRun()
            let column = columns[index]
            let values = UnsafeBufferPointer(start: column.values, count: column.count)
            let packed = packingBits ? ParquetEncoder.packBits(Array(values)) : nil
            let valuesCount = packed?.count ?? column.count
            let size = 4 + column.levelsCount + valuesCount
            return [UInt8](unsafeUninitializedCapacity: size) { page, initialized in
                let base = page.baseAddress!
                UnsafeMutableRawPointer(base).storeBytes(of: UInt32(column.levelsCount).littleEndian, as: UInt32.self)
                if column.levelsCount > 0 { (base + 4).initialize(from: column.levels!, count: column.levelsCount) }
                let target = base + 4 + column.levelsCount
                if let packed {
                    packed.withUnsafeBufferPointer { if !$0.isEmpty { target.initialize(from: $0.baseAddress!, count: $0.count) } }
                } else if valuesCount > 0 {
                    target.initialize(from: column.values!, count: valuesCount)
                }
                initialized = size
            }
        }
    }
}
