import Foundation
import HedgerowCore
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization

/// SQLite in WAL mode: one writer connection (leased through a lock, `BEGIN IMMEDIATE`) and a few
/// reader connections that never block it. Other processes (the CLI) may write to the same file:
/// SQLite's file locks and a busy timeout serialise them.
public final class SQLiteDatabase: Database {
    public let dialect = SQLDialect.sqlite
    private let writer: SQLiteStatementRunner
    private let readers: [SQLiteStatementRunner]
    private let writerLock = AsyncLock()
    private let nextReader = ManagedCounter()

    public static func open(path: String, readers readerCount: Int = 4, logger: Logger) async throws -> SQLiteDatabase {
        let writer = try await SQLiteStatementRunner.open(path: path, logger: logger)
        var readers: [SQLiteStatementRunner] = []
        for _ in 0..<max(1, readerCount) {
            readers.append(try await SQLiteStatementRunner.open(path: path, logger: logger))
        }
        return SQLiteDatabase(writer: writer, readers: readers)
    }

    private init(writer: SQLiteStatementRunner, readers: [SQLiteStatementRunner]) {
        self.writer = writer
        self.readers = readers
    }

    public func read<T: Sendable>(_ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        let reader = readers[nextReader.next() % readers.count]
        return try await body(reader)
    }

    @discardableResult
    public func transaction<T: Sendable>(_ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        await writerLock.lock()
        do {
            try await writer.execute("BEGIN IMMEDIATE")
            let result: T
            do {
                result = try await body(writer)
                try await writer.execute("COMMIT")
            } catch {
                _ = try? await writer.query("ROLLBACK", [])
                throw error
            }
            await writerLock.unlock()
            return result
        } catch {
            await writerLock.unlock()
            throw error
        }
    }

    public func isUniqueViolation(_ error: any Error) -> Bool {
        guard let error = error as? SQLiteError else { return false }
        return error.message.contains("UNIQUE constraint failed")
    }

    public func shutdown() async {
        for runner in readers + [writer] { await runner.close() }
    }
}

/// One SQLite connection that runs statements written with `$n` placeholders.
struct SQLiteStatementRunner: SQLConnection {
    let dialect = SQLDialect.sqlite
    let connection: SQLiteConnection

    static func open(path: String, logger: Logger) async throws -> SQLiteStatementRunner {
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        let runner = SQLiteStatementRunner(connection: connection)
        // busy_timeout replaces sqlite-nio's spinning busy handler with a sleeping one.
        _ = try await runner.query("PRAGMA busy_timeout = 10000", [])
        _ = try await runner.query("PRAGMA journal_mode = WAL", [])
        _ = try await runner.query("PRAGMA synchronous = NORMAL", [])
        _ = try await runner.query("PRAGMA foreign_keys = ON", [])
        return runner
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let statement = Self.rewritePlaceholders(sql)
        let data = binds.map(Self.sqliteData)
        let collector = RowCollector()
        try await connection.query(statement, data) { row in
            collector.append(row)
        }
        return collector.rows.map { row in
            let columns = row.columns
            return SQLRow(columns: columns.map(\.name), values: columns.map { Self.value($0.data) })
        }
    }

    func close() async {
        try? await connection.close()
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

    static func sqliteData(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: .null
        case .int(let integer): .integer(SQLiteInt64(integer))
        case .double(let double): .float(double)
        case .text(let text): .text(text)
        case .bool(let flag): .integer(flag ? 1 : 0)
        case .blob(let bytes): .blob(ByteBuffer(bytes: bytes))
        }
    }

    static func value(_ data: SQLiteData) -> SQLValue {
        switch data {
        case .null: .null
        case .integer(let integer): .int(Int64(integer))
        case .float(let double): .double(double)
        case .text(let text): .text(text)
        case .blob(let buffer): .blob(Array(buffer.readableBytesView))
        }
    }
}

/// Collects rows handed over by sqlite-nio's callback (called serially on its thread pool).
private final class RowCollector: @unchecked Sendable {
    // Safe: sqlite-nio's async `query` invokes the callback synchronously, one row at a time, on a
    // single thread, and `rows` is read only after `query` has returned.
    var rows: [SQLiteRow] = []
    func append(_ row: SQLiteRow) { rows.append(row) }
}

/// A lock-protected counter for round-robin selection.
final class ManagedCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int {
        value.wrappingAdd(1, ordering: .relaxed).newValue & Int.max
    }
}
