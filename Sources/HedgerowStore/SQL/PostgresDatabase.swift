import Foundation
import HedgerowCore
import Logging
import NIOCore
import PostgresNIO

/// PostgreSQL through postgres-nio's pooled `PostgresClient`. The client's `run()` must be running
/// (it is a lifecycle service of the application) for connections to be leased.
package final class PostgresDatabase: Database {
    package let dialect = SQLDialect.postgres
    package let credentialsWrites = CredentialsWrites()
    package let client: PostgresClient
    private let logger: Logger

    package init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    package func read<T: Sendable>(_ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await body(PostgresStatementRunner(connection: connection, logger: logger, credentialsWrites: credentialsWrites))
        }
    }

    package func read<T: Sendable>(timeout: Duration, _ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        let milliseconds = max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await client.withConnection { connection in
            let runner = PostgresStatementRunner(connection: connection, logger: logger, credentialsWrites: credentialsWrites)
            // SET LOCAL ends with the transaction: the pooled connection keeps no limit.
            try await runner.execute("BEGIN READ ONLY")
            do {
                try await runner.execute("SET LOCAL statement_timeout = \(milliseconds)")
                let result = try await body(runner)
                try await runner.execute("COMMIT")
                return result
            } catch {
                _ = try? await runner.execute("ROLLBACK")
                if let error = error as? PSQLError, error.serverInfo?[.sqlState] == "57014" { throw StatementTimeout(limit: timeout) }
                throw error
            }
        }
    }

    @discardableResult
    package func releaseFreeSpace() async throws {}

    package func transaction<T: Sendable>(_ body: @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            let runner = PostgresStatementRunner(connection: connection, logger: logger, credentialsWrites: credentialsWrites)
            try await runner.execute("BEGIN")
            do {
                let result = try await body(runner)
                try await runner.execute("COMMIT")
                return result
            } catch {
                _ = try? await runner.execute("ROLLBACK")
                throw error
            }
        }
    }

    package func isUniqueViolation(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        return error.serverInfo?[.sqlState] == "23505"
    }

    package func isTransientConflict(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        return ["40P01", "40001"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    /// Runs the client's connection pool until the surrounding task is cancelled.
    package func run() async {
        await client.run()
    }

    package func shutdown() async {}
}

/// Runs statements on one leased PostgreSQL connection.
struct PostgresStatementRunner: SQLConnection {
    let dialect = SQLDialect.postgres
    let connection: PostgresConnection
    let logger: Logger
    let credentialsWrites: CredentialsWrites?

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        var bindings = PostgresBindings(capacity: binds.count)
        for bind in binds {
            switch bind {
            case .null: bindings.appendNull()
            case .int(let integer): bindings.append(integer)
            case .double(let double): bindings.append(double)
            case .text(let text): bindings.append(text)
            case .bool(let flag): bindings.append(flag)
            case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            }
        }
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        var result: [SQLRow] = []
        for try await row in rows {
            var columns: [String] = []
            var values: [SQLValue] = []
            columns.reserveCapacity(row.count)
            values.reserveCapacity(row.count)
            for cell in row {
                columns.append(cell.columnName)
                values.append(try Self.value(cell))
            }
            result.append(SQLRow(columns: columns, values: values))
        }
        return result
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2: return .int(Int64(try cell.decode(Int16.self)))
        case .int4: return .int(Int64(try cell.decode(Int32.self)))
        case .int8: return .int(try cell.decode(Int64.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .float4, .float8: return .double(try cell.decode(Double.self))
        case .numeric:
            // SUM and AVG of integers are NUMERIC: exact integers stay integers.
            let text = try cell.decode(Decimal.self).description
            if let integer = Int64(text) { return .int(integer) }
            return Double(text).map(SQLValue.double) ?? .text(text)
        case .bytea: return .blob(Array((try cell.decode(ByteBuffer.self)).readableBytesView))
        default: return .text(try cell.decode(String.self))
        }
    }
}

extension PostgresStatementRunner: SQLCopyConnection {
    func copy(into table: String, columns: [String], rows: ByteBuffer) async throws {
        let connection = self.connection
        let logger = self.logger
        do {
            try await connection.untilClosed {
                try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in try await writer.write(rows) }
            }
        } catch let error as PSQLError {
            guard let info = error.serverInfo else { throw error }
            throw SQLCopyRefused(sqlState: info[.sqlState] ?? "", message: info[.message] ?? "")
        }
    }
}
