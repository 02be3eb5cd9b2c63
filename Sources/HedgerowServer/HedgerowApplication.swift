import HedgerowAPI
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowRuntime
import HedgerowStore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// The assembled server: used by `hedgerow serve` and by the tests alike.
package struct HedgerowApplication: Sendable {
    package let configuration: HedgerowConfiguration
    package let database: any Database
    package let application: Application<APIResponderHandle>

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    package func run() async throws {
        try await application.runService()
    }
}

/// The composition root of `hedgerow serve`: builds the API (with `modules`, such as the console)
/// from a configuration and an opened database, and runs it beside the database's pool, the
/// metrics listener and, unless the configuration says otherwise, the export engine. The
/// database's lifetime is tied to the application's: it is shut down when the application stops.
/// Before the server accepts connections it applies pending migrations and, on an empty database
/// (when the configuration asks for it), creates the first user, organization and key and hands
/// them to `onFirstStart`.
package func buildApplication(
    configuration: HedgerowConfiguration, database: any Database, logger: Logger, modules: [any RouteModule] = [],
    onFirstStart: @escaping @Sendable (BootstrapService.Result) throws -> Void = { _ in }
) throws -> HedgerowApplication {
    let secrets = try SecretBox.load(configuration)
    let engineMetrics = configuration.runsEngine ? EngineMetrics() : nil
    let api = APIServer(
        configuration: configuration, database: database, secrets: secrets, logger: logger, modules: modules, engineMetrics: engineMetrics)
    // Idle connections, and requests whose headers take longer than the read timeout, are closed.
    let server = HTTPServerBuilder.http1(
        configuration: .init(
            additionalChannelHandlers: [api.connectionLimit.handler()], idleTimeout: TimeAmount(configuration.readTimeout)))
    var services: [any Service] = [DatabaseService(database: database)]
    if let address = configuration.metricsAddress, let metricsResponder = api.metricsResponder {
        services.append(
            Application(
                responder: metricsResponder,
                configuration: .init(address: .hostname(address.host, port: address.port), serverName: "Hedgerow metrics"),
                logger: logger))
    }
    if configuration.runsEngine {
        services.append(
            ExportEngine(
                database: database, secrets: secrets, configuration: configuration.engine, logger: logger,
                metrics: engineMetrics ?? EngineMetrics()))
    }
    var application = Application(
        responder: api.responder, server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Hedgerow"),
        services: services, logger: logger)
    application.beforeServerStarts {
        let applied = try await Migrator(database: database).migrate()
        if !applied.isEmpty { logger.info("Applied migrations", metadata: ["versions": "\(applied)"]) }
        if configuration.bootstrapOnEmptyDatabase,
            let result = try await BootstrapService(database: database).bootstrapIfEmpty(adminEmail: configuration.adminEmail)
        {
            try onFirstStart(result)
        }
    }
    return HedgerowApplication(configuration: configuration, database: database, application: application)
}
