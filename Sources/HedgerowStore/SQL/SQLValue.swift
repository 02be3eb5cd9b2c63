import HedgerowCore

/// A value bound into, or read out of, a SQL statement. The same values serve both dialects:
/// timestamps are microseconds since the epoch (`BIGINT`), UUIDs and JSON are `TEXT`.
package enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)
    case blob([UInt8])

    package init(_ value: String?) { self = value.map(SQLValue.text) ?? .null }
    package init(_ value: Int64?) { self = value.map(SQLValue.int) ?? .null }
    package init(_ value: Int?) { self = value.map { .int(Int64($0)) } ?? .null }
    package init(_ value: Bool?) { self = value.map(SQLValue.bool) ?? .null }
    package init(_ value: Timestamp?) { self = value.map { .int($0.microseconds) } ?? .null }
}

extension SQLValue {
    /// Text, or an integer's digits; nil otherwise.
    package var string: String? {
        switch self {
        case .text(let text): text
        case .int(let integer): String(integer)
        default: nil
        }
    }

    /// An integer, a boolean as 0/1, an integral double or integer text; nil otherwise.
    package var int: Int64? {
        switch self {
        case .int(let integer): integer
        case .bool(let flag): flag ? 1 : 0
        case .double(let double): Int64(exactly: double)
        case .text(let text): Int64(text)
        default: nil
        }
    }
}

/// One result row: column names and values, in select order.
package struct SQLRow: Sendable {
    package let columns: [String]
    package let values: [SQLValue]

    package init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    /// The value of a column by name. Names of another length in UTF-8 are passed over without a
    /// string comparison, which rules out most of a wide row's other columns at once.
    package subscript(column: String) -> SQLValue {
        let length = column.utf8.count
        guard let index = columns.firstIndex(where: { $0.utf8.count == length && $0 == column }) else { return .null }
        return values[index]
    }

    func decodeString(_ column: String) throws -> String {
        guard let value = string(column) else { throw SQLDecodingError(column: column, expected: "text") }
        return value
    }

    package func string(_ column: String) -> String? { self[column].string }

    /// The value at a select-list position (hot paths that know their statement's columns).
    package func value(at index: Int) -> SQLValue { index < values.count ? values[index] : .null }

    func decodeString(at index: Int) throws -> String {
        guard let value = value(at: index).string else { throw SQLDecodingError(column: column(at: index), expected: "text") }
        return value
    }

    package func decodeInt(at index: Int) throws -> Int64 {
        guard let value = value(at: index).int else { throw SQLDecodingError(column: column(at: index), expected: "integer") }
        return value
    }

    func column(at index: Int) -> String { index < columns.count ? columns[index] : "#\(index)" }

    package func decodeInt(_ column: String) throws -> Int64 {
        guard let value = int(column) else { throw SQLDecodingError(column: column, expected: "integer") }
        return value
    }

    package func int(_ column: String) -> Int64? { self[column].int }

    func decodeBool(_ column: String) throws -> Bool {
        guard let value = bool(column) else { throw SQLDecodingError(column: column, expected: "boolean") }
        return value
    }

    package func bool(_ column: String) -> Bool? {
        switch self[column] {
        case .bool(let flag): flag
        case .int(let integer): integer != 0
        default: nil
        }
    }

    func decodeTimestamp(_ column: String) throws -> Timestamp {
        Timestamp(microseconds: try decodeInt(column))
    }

    package func timestamp(_ column: String) -> Timestamp? {
        int(column).map(Timestamp.init(microseconds:))
    }
}

/// A stored value that is not what its column should hold (a row written by hand or by an older
/// release): the read fails with the column's name instead of trapping.
package struct SQLDecodingError: Error, CustomStringConvertible {
    package let column: String
    package let expected: String
    package var description: String { "column \(column) is not \(expected)" }
}

/// One object of a JSON-aggregated column, read like a row (SQLite gives booleans as 0/1).
struct JSONRow {
    let column: String
    let object: JSONObject

    func int(_ key: String) throws -> Int64 {
        switch object[key] {
        case .int(let value)?: return value
        case .double(let value)?: if let exact = Int64(exactly: value) { return exact }
        default: break
        }
        throw SQLDecodingError(column: "\(column).\(key)", expected: "integer")
    }

    func string(_ key: String) throws -> String {
        guard case .string(let value)? = object[key] else { throw SQLDecodingError(column: "\(column).\(key)", expected: "text") }
        return value
    }

    func bool(_ key: String) throws -> Bool {
        switch object[key] {
        case .bool(let value)?: return value
        case .int(let value)?: return value != 0
        default: throw SQLDecodingError(column: "\(column).\(key)", expected: "boolean")
        }
    }
}

/// One result row's columns by select-list position, as `SQLValue`'s `string` and `int` read them:
/// a row of values, or (SQLite) the statement standing on the row, read in place. Valid only during
/// the `decode` call it is handed to.
package struct SQLColumns {
    enum Source {
        case row(SQLRow)
        case sqlite(OpaquePointer, columns: [String])
    }

    let source: Source

    package init(_ row: SQLRow) { source = .row(row) }
    init(sqlite statement: OpaquePointer, columns: [String]) { source = .sqlite(statement, columns: columns) }

    /// Text, or an integer's digits; nil for anything else.
    package func string(at index: Int) -> String? {
        switch source {
        case .row(let row): row.value(at: index).string
        case .sqlite(let statement, let columns): index < columns.count ? SQLiteConnection.string(statement, at: Int32(index)) : nil
        }
    }

    /// An integer (a boolean as 0/1, an integral double, integer text); nil for anything else.
    package func int(at index: Int) -> Int64? {
        switch source {
        case .row(let row): row.value(at: index).int
        case .sqlite(let statement, let columns): index < columns.count ? SQLiteConnection.int(statement, at: Int32(index)) : nil
        }
    }

    func decodeString(at index: Int) throws -> String {
        guard let value = string(at: index) else { throw SQLDecodingError(column: column(at: index), expected: "text") }
        return value
    }

    package func decodeInt(at index: Int) throws -> Int64 {
        guard let value = int(at: index) else { throw SQLDecodingError(column: column(at: index), expected: "integer") }
        return value
    }

    func column(at index: Int) -> String {
        switch source {
        case .row(let row): row.column(at: index)
        case .sqlite(_, let columns): index < columns.count ? columns[index] : "#\(index)"
        }
    }
}
