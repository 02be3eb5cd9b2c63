import CSQLite
import Foundation
import HedgerowCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// SQLite in WAL mode: one writer connection (leased through a lock, `BEGIN IMMEDIATE`) and a few
/// reader connections that never block it. Other processes (the CLI) may write to the same file:
/// SQLite's file locks and a busy timeout serialise them; the wait for another process's write lock
/// happens on NIO's blocking-I/O thread pool, never on a Swift concurrency thread.
package final class SQLiteDatabase: Database {
    package let dialect = SQLDialect.sqlite
    package let credentialsWrites: CredentialsWrites
    private let writer: SQLiteStatementRunner
    private let readers: [SQLiteStatementRunner]
    private let writerLock = AsyncLock()
    private let nextReader = ManagedCounter()
    /// Where statements with a time limit run (counts, estimates, export pages, user regular
    /// expressions): threads of their own, one per reader, so that a slow statement holds neither a
    /// Swift concurrency thread nor NIO's blocking pool (where the writer waits for its lock).
    private let limitedPool: NIOThreadPool

    /// When a commit reaches the disk (`PRAGMA synchronous` in WAL mode): `full` syncs the WAL at
    /// every commit, so a write answered 200 survives a power loss; `normal` syncs only at
    /// checkpoints (faster; a power loss can take the last commits, never corrupt the file).
    package enum Synchronous: String, Sendable, CaseIterable {
        case full
        case normal
    }

    package static func open(path: String, readers readerCount: Int = 4, synchronous: Synchronous = .full) async throws -> SQLiteDatabase {
        try await NIOThreadPool.singleton.runIfActive {
            let writes = CredentialsWrites()
            let writer = try SQLiteStatementRunner.open(path: path, credentialsWrites: writes, synchronous: synchronous)
            var readers: [SQLiteStatementRunner] = []
            for _ in 0..<max(1, readerCount) {
                readers.append(try SQLiteStatementRunner.open(path: path, credentialsWrites: writes, synchronous: synchronous))
            }
            let pool = NIOThreadPool(numberOfThreads: readers.count)
            pool.start()
            return SQLiteDatabase(writer: writer, readers: readers, credentialsWrites: writes, limitedPool: pool)
        }
    }

    private init(
        writer: SQLiteStatementRunner, readers: [SQLiteStatementRunner], credentialsWrites: CredentialsWrites, limitedPool: NIOThreadPool
    ) {
        self.writer = writer
        self.readers = readers
        self.credentialsWrites = credentialsWrites
        self.limitedPool = limitedPool
    }

    package func read<T: Sendable>(_ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        let reader = readers[nextReader.next() % readers.count]
        return try await body(reader)
    }

    package func read<T: Sendable>(timeout: Duration, _ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        let reader = readers[nextReader.next() % readers.count]
        return try await body(
            SQLiteStatementRunner(connection: reader.connection, credentialsWrites: credentialsWrites, timeout: timeout, pool: limitedPool))
    }

    @discardableResult
    package func transaction<T: Sendable>(_ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        await writerLock.lock()
        do {
            let writer = self.writer
            try await NIOThreadPool.singleton.runIfActive { try writer.connection.executeScript("BEGIN IMMEDIATE") }
            let result: T
            do {
                result = try await body(writer)
                try writer.connection.executeScript("COMMIT")
            } catch {
                try? writer.connection.executeScript("ROLLBACK")
                throw error
            }
            await writerLock.unlock()
            return result
        } catch {
            await writerLock.unlock()
            throw error
        }
    }

    package func releaseFreeSpace() async throws {
        await writerLock.lock()
        do {
            let connection = writer.connection
            try await NIOThreadPool.singleton.runIfActive {
                // 2: INCREMENTAL. A file made before retention existed is rewritten once to switch.
                let mode = try connection.query("PRAGMA auto_vacuum", []).first?.int("auto_vacuum")
                if mode != 2 {
                    try connection.executeScript("PRAGMA auto_vacuum = INCREMENTAL; VACUUM")
                } else {
                    _ = try connection.query("PRAGMA incremental_vacuum", [])
                }
                _ = try connection.query("PRAGMA wal_checkpoint(TRUNCATE)", [])
            }
            await writerLock.unlock()
        } catch {
            await writerLock.unlock()
            throw error
        }
    }

    package func isUniqueViolation(_ error: any Error) -> Bool {
        (error as? SQLiteError)?.isUniqueViolation ?? false
    }

    package func isTransientConflict(_ error: any Error) -> Bool { false }

    package func run() async {}

    package func shutdown() async {
        for runner in readers + [writer] { runner.connection.close() }
        limitedPool.shutdownGracefully { _ in }
    }
}

/// One SQLite connection that runs statements written with `$n` placeholders.
struct SQLiteStatementRunner: SQLConnection {
    let dialect = SQLDialect.sqlite
    let connection: SQLiteConnection
    let credentialsWrites: CredentialsWrites?
    /// Each statement's time limit, if any.
    var timeout: Duration? = nil
    /// Where statements run when they have a time limit (nil: on the calling thread).
    var pool: NIOThreadPool? = nil

    static func open(
        path: String, credentialsWrites: CredentialsWrites, synchronous: SQLiteDatabase.Synchronous
    ) throws -> SQLiteStatementRunner {
        let connection = try SQLiteConnection(path: path)
        try connection.executeScript(
            // auto_vacuum takes effect in a new file only (before its first table): retention gives space back.
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = \(synchronous.rawValue.uppercased());"
                + " PRAGMA foreign_keys = ON")
        return SQLiteStatementRunner(connection: connection, credentialsWrites: credentialsWrites)
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await run { [connection] deadline in try connection.query(sql, binds, deadline: deadline) }
    }

    func query<T: Sendable>(
        _ sql: String, _ binds: [SQLValue], decoding decode: @escaping @Sendable (SQLColumns) throws -> T
    ) async throws -> [T] {
        try await run { [connection] deadline in try connection.query(sql, binds, deadline: deadline, decoding: decode) }
    }

    /// Runs a statement: on the pool when it has one (a statement with a time limit), else on the calling thread.
    private func run<T: Sendable>(_ statement: @escaping @Sendable (ContinuousClock.Instant?) throws -> T) async throws -> T {
        guard let pool else { return try limited(statement) }
        return try await pool.runIfActive { try limited(statement) }
    }

    /// Runs `body` with the statement's deadline, if any; an interrupted statement is a timeout.
    private func limited<T>(_ body: (ContinuousClock.Instant?) throws -> T) throws -> T {
        guard let timeout else { return try body(nil) }
        do {
            return try body(ContinuousClock.now + timeout)
        } catch let error as SQLiteError where error.code == SQLITE_INTERRUPT {
            throw StatementTimeout(limit: timeout)
        }
    }
}

/// A lock-protected counter for round-robin selection.
final class ManagedCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int {
        value.wrappingAdd(1, ordering: .relaxed).newValue & Int.max
    }
}
