import HedgerowCore

/// The SQL dialects Hedgerow runs on.
package enum SQLDialect: String, Sendable {
    case sqlite
    case postgres

    /// A scalar subquery that returns the rows of `table` (aliased `a`) matching `condition` as a
    /// JSON array of objects with `columns`, ordered by `orderBy`, as text (`[]` when none).
    func jsonArray(columns: [String], from table: String, where condition: String, orderBy: String) -> String {
        switch self {
        case .sqlite:
            let object = "json_object(" + columns.map { "'\($0)', a.\($0)" }.joined(separator: ", ") + ")"
            // SQLite before 3.44 has no ORDER BY inside aggregates: order a correlated subquery instead.
            return "(SELECT json_group_array(\(object)) FROM (SELECT * FROM \(table) a WHERE \(condition) ORDER BY \(orderBy)) a)"
        case .postgres:
            let object = "json_build_object(" + columns.map { "'\($0)', a.\($0)" }.joined(separator: ", ") + ")"
            return "(SELECT CAST(COALESCE(json_agg(\(object) ORDER BY \(orderBy)), '[]'::json) AS TEXT) FROM \(table) a WHERE \(condition))"
        }
    }
}

/// A statement stopped by the time limit of `Database.read(timeout:)`.
package struct StatementTimeout: Error, Sendable, CustomStringConvertible {
    package let limit: Duration
    /// The limit in seconds, as people write it (`0.5`, `60`).
    package var seconds: String {
        let value = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
        return value == value.rounded() ? String(Int64(value)) : String(value)
    }
    package var description: String { "a statement ran longer than its limit of \(seconds) s" }
}

/// A connection (or a transaction on one) that runs statements. SQL is written once, with
/// PostgreSQL-style `$1` placeholders; the SQLite implementation rewrites them.
package protocol SQLConnection: Sendable {
    var dialect: SQLDialect { get }
    /// Where the credentials generations this connection's database was moved to are noted.
    var credentialsWrites: CredentialsWrites? { get }
    /// Runs a statement and returns its rows.
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
    /// Runs a statement and makes each row into a value with `decode`, which reads the row's
    /// columns by position: on SQLite straight from the statement, with no row of `SQLValue`s made
    /// (exports read a million events this way). `decode` may run on another thread (a statement with
    /// a time limit runs on a thread pool of its own).
    func query<T: Sendable>(
        _ sql: String, _ binds: [SQLValue], decoding decode: @escaping @Sendable (SQLColumns) throws -> T
    ) async throws -> [T]
}

extension SQLConnection {
    package func query<T: Sendable>(
        _ sql: String, _ binds: [SQLValue], decoding decode: @escaping @Sendable (SQLColumns) throws -> T
    ) async throws -> [T] {
        try await query(sql, binds).map { try decode(SQLColumns($0)) }
    }
}

extension SQLConnection {
    @discardableResult
    package func execute(_ sql: String, _ binds: [SQLValue] = []) async throws -> [SQLRow] {
        try await query(sql, binds)
    }

    package func first(_ sql: String, _ binds: [SQLValue] = []) async throws -> SQLRow? {
        try await query(sql, binds).first
    }
}

/// A database: connections for reads, and transactions for writes. Every write request runs in
/// one transaction, so a failed request changes nothing.
package protocol Database: Sendable {
    var dialect: SQLDialect { get }
    /// The credentials generations this process moved the database to (`CredentialsGeneration`).
    var credentialsWrites: CredentialsWrites { get }
    /// Runs `body` with a connection for reads outside a transaction.
    func read<T: Sendable>(_ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T
    /// A read whose statements each stop after `timeout` with `StatementTimeout` (PostgreSQL's
    /// `statement_timeout`; an interrupt on SQLite, which also stops a regular expression mid-match).
    func read<T: Sendable>(timeout: Duration, _ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T
    /// Runs `body` in a transaction, committed when it returns and rolled back when it throws.
    @discardableResult
    func transaction<T: Sendable>(_ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T
    /// Whether `error` is a unique-constraint violation.
    func isUniqueViolation(_ error: any Error) -> Bool
    /// Whether `error` ended a transaction that may simply be run again (PostgreSQL's deadlock
    /// and serialization failures; never on SQLite, which has one writer).
    func isTransientConflict(_ error: any Error) -> Bool
    /// Gives the space of deleted rows back to the file system where the database keeps it (SQLite:
    /// incremental vacuum, switching the file to it once, then a WAL checkpoint that truncates);
    /// PostgreSQL's autovacuum does this itself.
    func releaseFreeSpace() async throws
    /// Runs what the database needs in the background (PostgreSQL's connection pool) until the
    /// surrounding task is cancelled; SQLite has nothing to run and returns at once.
    func run() async
    /// Releases the database's connections.
    func shutdown() async
}
