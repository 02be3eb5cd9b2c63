import Foundation
import HedgerowAPI
import HedgerowStore
import Logging
import PostgresNIO
import Testing

/// The databases the API suite runs against: SQLite always, PostgreSQL when
/// `HEDGEROW_TEST_DATABASE_URL` names one (CI sets it; `scripts/test` starts one).
package enum TestBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    package var testDescription: String { rawValue }

    package static let postgresURL: String? = {
        let value = ProcessInfo.processInfo.environment["HEDGEROW_TEST_DATABASE_URL"]
        return value?.isEmpty == false ? value : nil
    }()

    package static var available: [TestBackend] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    package static let logger: Logger = {
        var logger = Logger(label: "hedgerow-test")
        logger.logLevel = ProcessInfo.processInfo.environment["HEDGEROW_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return logger
    }()

    /// A new, empty database location: a fresh SQLite file, or a fresh schema in the PostgreSQL
    /// test database. `cleanup` removes it.
    package func makeLocation() async throws -> (location: DatabaseLocation, cleanup: @Sendable () async -> Void) {
        switch self {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return (
                .sqlite(path: directory.appendingPathComponent("test.sqlite").path),
                {
                    try? FileManager.default.removeItem(at: directory)
                }
            )
        case .postgres:
            guard let url = Self.postgresURL, case .postgres(var postgres) = try DatabaseLocation.parse(url) else {
                throw TestSetupError(description: "HEDGEROW_TEST_DATABASE_URL is not a PostgreSQL URL")
            }
            let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
            try await Self.adminExecute(postgres, "CREATE SCHEMA \(schema)")
            postgres.searchPath = String(schema)
            postgres.maximumConnections = 4
            let admin = postgres
            return (
                .postgres(postgres),
                {
                    var target = admin
                    target.searchPath = nil
                    try? await Self.adminExecute(target, "DROP SCHEMA \(schema) CASCADE")
                }
            )
        }
    }

    /// Runs a query on the PostgreSQL test database (outside any test schema).
    package static func postgresQuery(_ sql: String, _ binds: [SQLValue] = []) async throws -> [SQLRow] {
        guard let url = postgresURL, case .postgres(var location) = try DatabaseLocation.parse(url) else { return [] }
        location.maximumConnections = 1
        let database = PostgresDatabase(configuration: location.clientConfiguration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            return try await database.read { connection in try await connection.query(sql, binds) }
        }
    }

    package static func adminExecute(_ location: DatabaseLocation.PostgresLocation, _ sql: String) async throws {
        var configuration = location.clientConfiguration
        configuration.options.maximumConnections = 1
        let database = PostgresDatabase(configuration: configuration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            try await database.read { connection in _ = try await connection.execute(sql) }
        }
    }
}

package struct TestSetupError: Error, CustomStringConvertible {
    package let description: String
    package init(description: String) { self.description = description }
}
