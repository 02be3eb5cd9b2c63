import CSQLite
import Foundation
import HedgerowCore
import Synchronization

/// An error reported by SQLite.
struct SQLiteError: Error, CustomStringConvertible {
    /// The extended result code.
    let code: Int32
    let message: String

    var description: String { "SQLite error \(code): \(message)" }

    /// `SQLITE_CONSTRAINT_UNIQUE` or `SQLITE_CONSTRAINT_PRIMARYKEY`.
    var isUniqueViolation: Bool { code == 2067 || code == 1555 }
}

/// One connection to an SQLite database file, over the system's libsqlite3. Statements are
/// prepared once and kept (keyed by their SQL), and run synchronously on the calling thread:
/// a read costs microseconds, so a hop to another thread would cost more than the work.
///
/// `@unchecked Sendable`: the database handle and the statement cache are touched only while
/// `lock` is held (every method takes it), so one connection is used by one thread at a time.
final class SQLiteConnection: @unchecked Sendable {
    private let lock = NSLock()
    private var handle: OpaquePointer?
    private var statements: [StatementKey: CachedStatement] = [:]
    static let statementCacheLimit = 512
    /// When the running statement must stop (read by the progress handler and the regexp function).
    let deadline = StatementDeadline()

    final class CachedStatement {
        let pointer: OpaquePointer
        let columns: [String]
        init(pointer: OpaquePointer, columns: [String]) {
            self.pointer = pointer
            self.columns = columns
        }
    }

    /// Process-wide settings, applied before SQLite initialises (its first open): no memory
    /// statistics, whose global mutex every allocation of every connection would otherwise take.
    private static let configured: Bool = hedgerow_sqlite3_disable_memory_statistics() == SQLITE_OK

    init(path: String) throws {
        _ = Self.configured
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open \(path)"
            sqlite3_close(handle)
            throw SQLiteError(code: status, message: message)
        }
        sqlite3_extended_result_codes(handle, 1)
        self.handle = handle
        let context = Unmanaged.passUnretained(deadline).toOpaque()
        SQLiteFunctions.register(on: handle, deadline: context)
        // Every 1000 virtual-machine steps: past the deadline, the statement stops with SQLITE_INTERRUPT.
        sqlite3_progress_handler(
            handle, 1000,
            { context in
                guard let context else { return 0 }
                return Unmanaged<StatementDeadline>.fromOpaque(context).takeUnretainedValue().hasPassed ? 1 : 0
            }, context)
    }

    deinit { close() }

    func close() {
        lock.withLock {
            for statement in statements.values { sqlite3_finalize(statement.pointer) }
            statements.removeAll()
            if let handle { sqlite3_close_v2(handle) }
            handle = nil
        }
    }

    /// Runs one statement written with `$n` placeholders and returns its rows; with a deadline, a
    /// statement still running then stops with SQLITE_INTERRUPT.
    func query(_ sql: String, _ binds: [SQLValue], deadline limit: ContinuousClock.Instant? = nil) throws -> [SQLRow] {
        try rows(sql, binds, deadline: limit) { statement, columns in
            SQLRow(columns: columns, values: readRow(statement, count: columns.count))
        }
    }

    /// The same, each row made into a value by `decode`, which reads the columns from the statement
    /// in place.
    func query<T>(
        _ sql: String, _ binds: [SQLValue], deadline limit: ContinuousClock.Instant? = nil, decoding decode: (SQLColumns) throws -> T
    ) throws -> [T] {
        try rows(sql, binds, deadline: limit) { statement, columns in try decode(SQLColumns(sqlite: statement, columns: columns)) }
    }

    private func rows<T>(
        _ sql: String, _ binds: [SQLValue], deadline limit: ContinuousClock.Instant?, _ make: (OpaquePointer, [String]) throws -> T
    ) throws -> [T] {
        try lock.withLock {
            deadline.set(limit)
            defer { deadline.set(nil) }
            guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "connection is closed") }
            let statement = try prepared(sql, handle: handle)
            defer {
                sqlite3_reset(statement.pointer)
                sqlite3_clear_bindings(statement.pointer)
            }
            try bind(binds, to: statement.pointer, handle: handle)
            var rows: [T] = []
            while true {
                let status = sqlite3_step(statement.pointer)
                if status == SQLITE_DONE { break }
                guard status == SQLITE_ROW else { throw error(handle, status) }
                rows.append(try make(statement.pointer, statement.columns))
            }
            return rows
        }
    }

    /// A column of the statement's current row as `SQLValue.string` reads it: text, or an
    /// integer's digits; nil otherwise.
    static func string(_ statement: OpaquePointer, at column: Int32) -> String? {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_TEXT:
            let length = Int(sqlite3_column_bytes(statement, column))
            guard let text = sqlite3_column_text(statement, column) else { return "" }
            return String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self)
        case SQLITE_INTEGER: return String(sqlite3_column_int64(statement, column))
        default: return nil
        }
    }

    /// A column of the statement's current row as `SQLValue.int` reads it: an integer, an integral
    /// double or integer text; nil otherwise.
    static func int(_ statement: OpaquePointer, at column: Int32) -> Int64? {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return sqlite3_column_int64(statement, column)
        case SQLITE_FLOAT: return Int64(exactly: sqlite3_column_double(statement, column))
        case SQLITE_TEXT: return string(statement, at: column).flatMap { Int64($0) }
        default: return nil
        }
    }

    /// Runs statements that return nothing (`PRAGMA`s, several separated by `;`).
    func executeScript(_ sql: String) throws {
        try lock.withLock {
            guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "connection is closed") }
            var message: UnsafeMutablePointer<CChar>?
            let status = sqlite3_exec(handle, sql, nil, nil, &message)
            if status != SQLITE_OK {
                let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
                sqlite3_free(message)
                throw SQLiteError(code: status, message: text)
            }
        }
    }

    private func prepared(_ sql: String, handle: OpaquePointer) throws -> CachedStatement {
        let key = StatementKey(sql: sql)
        if let cached = statements[key] { return cached }
        var pointer: OpaquePointer?
        let status = sqlite3_prepare_v3(
            handle, Self.rewritePlaceholders(sql), -1, UInt32(SQLITE_PREPARE_PERSISTENT), &pointer, nil)
        guard status == SQLITE_OK, let pointer else { throw error(handle, status) }
        let count = Int(sqlite3_column_count(pointer))
        let columns = (0..<count).map { String(cString: sqlite3_column_name(pointer, Int32($0))) }
        let statement = CachedStatement(pointer: pointer, columns: columns)
        if statements.count >= Self.statementCacheLimit {
            for old in statements.values { sqlite3_finalize(old.pointer) }
            statements.removeAll()
        }
        statements[key] = statement
        return statement
    }

    /// A statement cache key: the SQL, hashed by its length and four 16-byte windows of its text
    /// rather than all of it (a statement is often a kilobyte, looked up on every run); equality
    /// still compares the whole text.
    struct StatementKey: Hashable {
        let sql: String

        static func == (lhs: StatementKey, rhs: StatementKey) -> Bool { lhs.sql == rhs.sql }

        func hash(into hasher: inout Hasher) {
            var text = sql
            text.withUTF8 { bytes in
                hasher.combine(bytes.count)
                let window = 16
                guard bytes.count > 4 * window else {
                    hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
                    return
                }
                for start in [0, bytes.count / 3, 2 * bytes.count / 3, bytes.count - window] {
                    hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<(start + window)])))
                }
            }
        }
    }

    /// `$12` → `?12` outside string literals and quoted identifiers (SQLite binds `?NNN` by index).
    /// Works on UTF-8 bytes: `$`, quotes and `?` are ASCII and never part of a multi-byte sequence.
    static func rewritePlaceholders(_ sql: String) -> String {
        var bytes = Array(sql.utf8)
        var quote: UInt8?
        for index in bytes.indices {
            let byte = bytes[index]
            if let open = quote {
                if byte == open { quote = nil }
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quote = byte
            } else if byte == UInt8(ascii: "$") {
                bytes[index] = UInt8(ascii: "?")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private func bind(_ binds: [SQLValue], to statement: OpaquePointer, handle: OpaquePointer) throws {
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(statement, index)
            case .int(let integer): status = sqlite3_bind_int64(statement, index, integer)
            case .double(let double): status = sqlite3_bind_double(statement, index, double)
            case .bool(let flag): status = sqlite3_bind_int64(statement, index, flag ? 1 : 0)
            case .text(let text): status = sqlite3_bind_text(statement, index, text, -1, Self.transient)
            case .blob(let bytes):
                status = bytes.withUnsafeBytes { buffer in
                    sqlite3_bind_blob(statement, index, buffer.baseAddress, Int32(buffer.count), Self.transient)
                }
            }
            guard status == SQLITE_OK else { throw error(handle, status) }
        }
    }

    private func readRow(_ statement: OpaquePointer, count: Int) -> [SQLValue] {
        var values: [SQLValue] = []
        values.reserveCapacity(count)
        for column in 0..<Int32(count) {
            switch sqlite3_column_type(statement, column) {
            case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(statement, column)))
            case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(statement, column)))
            case SQLITE_TEXT:
                let length = Int(sqlite3_column_bytes(statement, column))
                if let text = sqlite3_column_text(statement, column) {
                    values.append(.text(String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self)))
                } else {
                    values.append(.text(""))
                }
            case SQLITE_BLOB:
                let length = Int(sqlite3_column_bytes(statement, column))
                if let blob = sqlite3_column_blob(statement, column) {
                    values.append(.blob(Array(UnsafeRawBufferPointer(start: blob, count: length))))
                } else {
                    values.append(.blob([]))
                }
            default: values.append(.null)
            }
        }
        return values
    }

    private func error(_ handle: OpaquePointer, _ status: Int32) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)))
    }
}

/// The deadline of the statement a connection is running (nil for none).
final class StatementDeadline: Sendable {
    private let value = Mutex<ContinuousClock.Instant?>(nil)
    func set(_ deadline: ContinuousClock.Instant?) { value.withLock { $0 = deadline } }
    var instant: ContinuousClock.Instant? { value.withLock { $0 } }
    var hasPassed: Bool { instant.map { ContinuousClock.now >= $0 } ?? false }
}

/// Functions the event store's filters use where SQLite has no built-in equivalent (they match
/// PostgreSQL's `~`, safe numeric casts and case-insensitive `strpos`).
enum SQLiteFunctions {
    static func register(on handle: OpaquePointer, deadline: UnsafeMutableRawPointer) {
        let flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC
        sqlite3_create_function_v2(handle, "hedgerow_regexp", 2, flags, deadline, regexp, nil, nil, nil)
        sqlite3_create_function_v2(handle, "hedgerow_float", 1, flags, nil, toFloat, nil, nil, nil)
        sqlite3_create_function_v2(handle, "hedgerow_icontains", 2, flags, nil, icontains, nil, nil, nil)
    }

    static func text(_ arguments: UnsafeMutablePointer<OpaquePointer?>?, _ index: Int) -> String? {
        guard let value = arguments?[index], sqlite3_value_type(value) != SQLITE_NULL, let text = sqlite3_value_text(value) else {
            return nil
        }
        return String(cString: text)
    }

    /// `hedgerow_regexp(pattern, text)`: 1 when `text` contains a match, NULL when either is NULL.
    /// A match still running at the statement's deadline stops it with SQLITE_INTERRUPT (one
    /// backtracking pattern on one long value would otherwise never return to SQLite's handler).
    static let regexp: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, _, arguments in
        guard let pattern = text(arguments, 0), let subject = text(arguments, 1) else { return sqlite3_result_null(context) }
        let deadline = sqlite3_user_data(context).map { Unmanaged<StatementDeadline>.fromOpaque($0).takeUnretainedValue().instant } ?? nil
        switch RegexCheck.match(pattern, subject, deadline: deadline) {
        case .matched: sqlite3_result_int(context, 1)
        case .notMatched: sqlite3_result_int(context, 0)
        case .timedOut:
            sqlite3_result_error(context, "regular expression stopped at the statement's time limit", -1)
            sqlite3_result_error_code(context, SQLITE_INTERRUPT)
        }
    }

    /// `hedgerow_float(text)`: the number a text spells, or NULL (never 0 for non-numbers).
    static let toFloat: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, _, arguments in
        guard let subject = text(arguments, 0), let number = Double(subject.trimmingCharacters(in: .whitespaces)), number.isFinite else {
            return sqlite3_result_null(context)
        }
        sqlite3_result_double(context, number)
    }

    /// `hedgerow_icontains(haystack, needle)`: case-insensitive (Unicode) containment.
    static let icontains: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, _, arguments in
        guard let haystack = text(arguments, 0), let needle = text(arguments, 1) else { return sqlite3_result_null(context) }
        sqlite3_result_int(context, haystack.lowercased().contains(needle.lowercased()) ? 1 : 0)
    }
}
