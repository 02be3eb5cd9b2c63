import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowStore
import Logging
import ServiceLifecycle
import UnixSignals

/// Keeps the database's connection pool running for as long as the process's services run, then
/// releases its connections.
package struct DatabaseService: Service {
    let database: any Database

    package init(database: any Database) { self.database = database }

    package func run() async throws {
        await database.run()
        try? await gracefulShutdown()
        await database.shutdown()
    }
}

/// Runs `body` with an open database whose connection pool runs for the duration (the CLI's
/// one-shot commands use it), after applying pending migrations.
package func withDatabase<T: Sendable>(
    _ configuration: HedgerowConfiguration, logger: Logger, _ body: @escaping @Sendable (any Database) async throws -> T
) async throws -> T {
    let database = try await configuration.openDatabase(logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            await database.run()
            return nil
        }
        do {
            try await Migrator(database: database).migrate()
            let result = try await body(database)
            group.cancelAll()
            await database.shutdown()
            return result
        } catch {
            group.cancelAll()
            await database.shutdown()
            throw error
        }
    }
}

/// `hedgerow worker`: the export engine and the database pool, until SIGTERM or SIGINT. Nothing on
/// this path serves HTTP.
package func runWorker(configuration: HedgerowConfiguration, database: any Database, logger: Logger) async throws {
    let group = ServiceGroup(
        configuration: .init(
            services: [
                DatabaseService(database: database),
                ExportEngine(
                    database: database, secrets: try SecretBox.load(configuration), configuration: configuration.engine, logger: logger),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}
