import HedgerowCore

/// What a column of an exported file holds.
package enum ColumnKind: Sendable, Equatable {
    /// Text.
    case string
    /// JSON text: nested as JSON in JSONLines, a JSON string in Parquet.
    case json
    /// Microseconds since the epoch: an ISO 8601 string in JSONLines, `TIMESTAMP(MICROS, UTC)` in Parquet.
    case timestamp
    /// A 64-bit integer: a JSON number, Parquet `INT64`.
    case int64
    /// A JSON boolean, Parquet `BOOLEAN`.
    case boolean
    /// A JSON number, Parquet `DOUBLE` (non-finite values are written as null).
    case double
}

/// A column of an exported file: its name and how its values are written.
package struct FileColumn: Sendable, Equatable {
    package var name: String
    package var kind: ColumnKind
    package init(_ name: String, _ kind: ColumnKind) {
        self.name = name
        self.kind = kind
    }
}

/// One cell of a row; every column may be null.
package enum FileValue: Sendable, Equatable {
    case null
    case string(String)
    /// JSON text, trusted to be valid JSON (it comes from the event store, which wrote it).
    case json(String)
    case timestamp(Timestamp)
    case int(Int64)
    case bool(Bool)
    case double(Double)
}

/// Takes the cells of one row in column order, each of its column's kind. An encoder's cells go
/// straight into its buffers: a row that writes itself (`FileRow`) is never made an array of
/// `FileValue`s first.
package protocol FileCells {
    mutating func null()
    mutating func string(_ value: String)
    mutating func json(_ value: String)
    mutating func timestamp(_ value: Timestamp)
    mutating func int(_ value: Int64)
    mutating func bool(_ value: Bool)
    mutating func double(_ value: Double)
}

extension FileCells {
    /// A string cell, null when nil.
    package mutating func string(_ value: String?) { if let value { string(value) } else { null() } }
    /// A JSON cell, null when nil.
    package mutating func json(_ value: String?) { if let value { json(value) } else { null() } }

    /// One cell given as a file value.
    package mutating func value(_ value: FileValue) {
        switch value {
        case .null: null()
        case .string(let text): string(text)
        case .json(let text): json(text)
        case .timestamp(let time): timestamp(time)
        case .int(let number): int(number)
        case .bool(let flag): bool(flag)
        case .double(let number): double(number)
        }
    }
}

/// A row that writes its own cells, in column order.
package protocol FileRow {
    func write<Cells: FileCells>(into cells: inout Cells)
}

extension Array: FileRow where Element == FileValue {
    package func write<Cells: FileCells>(into cells: inout Cells) {
        for value in self { cells.value(value) }
    }
}

/// Cells collected as file values (a row for the destinations that take `[FileValue]`).
package struct FileValues: FileCells {
    package private(set) var values: [FileValue] = []

    package init() {}

    package mutating func null() { values.append(.null) }
    package mutating func string(_ value: String) { values.append(.string(value)) }
    package mutating func json(_ value: String) { values.append(.json(value)) }
    package mutating func timestamp(_ value: Timestamp) { values.append(.timestamp(value)) }
    package mutating func int(_ value: Int64) { values.append(.int(value)) }
    package mutating func bool(_ value: Bool) { values.append(.bool(value)) }
    package mutating func double(_ value: Double) { values.append(.double(value)) }
}

/// A file format's extension and encoders.
extension FileFormat {
    package var fileExtension: String { self == .jsonLines ? "jsonl" : "parquet" }

    /// An encoder for one file of this format, or a message saying why the combination is refused.
    package func encoder(columns: [FileColumn], compression: Compression?) -> Result<any FileEncoder, FileEncoderError> {
        switch self {
        case .jsonLines:
            if let compression, compression.streamCompressor() == nil {
                return .failure(FileEncoderError("JSONLines files cannot be compressed with \(compression.rawValue)"))
            }
            return .success(JSONLinesEncoder(columns: columns, compression: compression))
        case .parquet:
            return .success(ParquetEncoder(columns: columns, compression: compression))
        }
    }
}

/// A file that cannot be encoded (a value the format cannot hold, a codec that failed).
package struct FileEncoderError: Error, Equatable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Encodes rows into one file, handing out the finished bytes as it goes so that the caller can
/// upload them while more rows come: memory stays bounded by a batch, not by the file.
package protocol FileEncoder: AnyObject {
    /// Rows appended so far.
    var records: Int { get }
    /// Bytes produced so far (taken or not), after compression.
    var bytesProduced: Int { get }
    /// `bytesProduced` plus what is buffered and not yet encoded or compressed: the size the file
    /// would have if it ended now, roughly (what `max_file_size_mb` is checked against).
    var approximateSize: Int { get }
    /// Appends one row; missing trailing cells are null (JSONLines leaves their keys out).
    func append<Row: FileRow>(_ row: Row)
    /// A batch ended: Parquet closes its row group here; JSONLines just keeps going.
    func endBatch()
    /// Ends the file (footer, compression trailer). Nothing may be appended afterwards.
    func finish()
    /// The bytes produced since the last call.
    func takeOutput() -> [UInt8]
}
