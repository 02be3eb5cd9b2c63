import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowStore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Keeps the database's connection pool running for as long as the application runs.
struct DatabaseService: Service {
    let database: any Database

    func run() async throws {
        if let postgres = database as? PostgresDatabase {
            await postgres.run()
        } else {
            try? await gracefulShutdown()
        }
        await database.shutdown()
    }
}

/// The assembled server: used by `hedgerow serve` and by the tests alike.
public struct HedgerowApplication: Sendable {
    public let configuration: HedgerowConfiguration
    public let database: any Database
    public let application: Application<APIResponderHandle>

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    public func run() async throws {
        try await application.runService()
    }
}

/// The responder type Hummingbird runs (opaque outside this module).
public struct APIResponderHandle: HTTPResponder {
    public typealias Context = HedgerowRequestContext
    let responder: APIResponder

    public func respond(to request: Request, context: Context) async throws -> Response {
        try await responder.respond(to: request, context: context)
    }
}

/// Builds the application from a configuration and an opened database (the database's lifetime is
/// tied to the application's: it is shut down when the application stops).
/// Before the server accepts connections it applies pending migrations and, on an empty database
/// (when the configuration asks for it), creates the first user, organization and key and hands
/// them to `onFirstStart`.
public func buildApplication(
    configuration: HedgerowConfiguration, database: any Database, logger: Logger, modules: [any RouteModule] = [],
    onFirstStart: @escaping @Sendable (BootstrapService.Result) throws -> Void = { _ in }
) throws -> HedgerowApplication {
    var routes = Routes()
    let requestMetrics = RequestMetrics()
    let signIn = SignInService(
        database: database,
        failures: configuration.rateLimit.enabled && configuration.rateLimit.signInFailuresPerMinute > 0
            ? WindowLimiter(limit: configuration.rateLimit.signInFailuresPerMinute, clock: configuration.limiterClock) : nil)
    HealthController(database: database).addRoutes(to: &routes)
    // /metrics shows every tenant's exports: on the API's port only behind a token.
    if let token = configuration.metricsToken {
        MetricsController(database: database, requests: requestMetrics, clock: { .now() }, token: token).addRoutes(to: &routes)
    }
    let secrets = try SecretBox.load(configuration)
    let services = APIServices(
        configuration: configuration, organizations: OrganizationService(database: database), projects: ProjectService(database: database),
        members: MemberService(database: database),
        invites: InviteService(database: database, mailer: configuration.smtp.map(SMTPClient.init), logger: logger),
        users: UserService(database: database),
        keys: PersonalAPIKeyService(database: database),
        batchExports: BatchExportService(
            database: database, secrets: secrets, deliverable: Destinations.deliverable,
            allowInsecureHTTP: configuration.engine.allowInsecureHTTP, outbound: configuration.engine.outbound,
            eventQueryTimeout: configuration.engine.eventQueryTimeout, endpoints: configuration.engine.endpoints),
        signIn: signIn)
    OrganizationController(
        service: services.organizations, rollback: EnvironmentsRollbackService(database: database), instanceTag: configuration.instanceTag
    ).addRoutes(to: &routes)
    ProjectController(service: services.projects).addRoutes(to: &routes)
    MemberController(service: services.members).addRoutes(to: &routes)
    InviteController(service: services.invites).addRoutes(to: &routes)
    PersonController(service: PersonService(database: database)).addRoutes(to: &routes)
    UserController(service: services.users, instanceTag: configuration.instanceTag).addRoutes(to: &routes)
    PersonalAPIKeyController(service: services.keys).addRoutes(to: &routes)
    IntegrationController(service: IntegrationService(database: database, secrets: secrets, outbound: configuration.engine.outbound))
        .addRoutes(to: &routes)
    BatchExportController(service: services.batchExports).addRoutes(to: &routes)
    for module in modules { module.addRoutes(to: &routes, services: services) }
    let limits = configuration.rateLimit
    let wallClock = configuration.limiterClock
    CaptureController(
        service: CaptureService(database: database, events: SQLEventStore(database: database)),
        maximumBodySize: configuration.maximumBodySize, clock: { .now() },
        tokenLimiter: limits.enabled && limits.capturePerMinute > 0
            ? WindowLimiter(limit: limits.capturePerMinute, clock: wallClock) : nil,
        metrics: requestMetrics
    ).addRoutes(to: &routes)
    SchemaController(version: HedgerowVersion.current).addRoute(to: &routes)

    let rateLimiter: RateLimiter? =
        configuration.rateLimit.enabled
        ? RateLimiter(
            burstPerMinute: configuration.rateLimit.burstPerMinute,
            sustainedPerHour: configuration.rateLimit.sustainedPerHour,
            clock: wallClock)
        : nil
    let clientAddress = ClientAddress(trustedProxies: configuration.trustedProxies)
    let responder = APIResponder(
        routes: routes, authentication: AuthenticationService(database: database), signIn: signIn, rateLimiter: rateLimiter,
        authenticationFailures: limits.enabled && limits.authenticationFailuresPerMinute > 0
            ? WindowLimiter(limit: limits.authenticationFailuresPerMinute, clock: wallClock) : nil,
        clientAddress: clientAddress,
        siteURL: configuration.siteURL, maximumBodySize: configuration.maximumBodySize,
        maximumAPIBodySize: configuration.maximumAPIBodySize, readTimeout: configuration.readTimeout, logger: logger,
        metrics: requestMetrics)
    let connectionLimit = ConnectionLimit(limit: configuration.connectionsPerAddress, exempt: clientAddress)
    // Idle connections, and requests whose headers take longer than the read timeout, are closed.
    let server = HTTPServerBuilder.http1(
        configuration: .init(additionalChannelHandlers: [connectionLimit.handler()], idleTimeout: TimeAmount(configuration.readTimeout)))
    var metricsServices: [any Service] = []
    if let address = configuration.metricsAddress {
        var metricsRoutes = Routes()
        MetricsController(database: database, requests: requestMetrics, clock: { .now() }, token: configuration.metricsToken)
            .addRoutes(to: &metricsRoutes)
        let metricsResponder = APIResponder(
            routes: metricsRoutes, authentication: AuthenticationService(database: database), rateLimiter: nil, siteURL: nil,
            maximumBodySize: 0, logger: logger, metrics: RequestMetrics())
        metricsServices.append(
            Application(
                responder: APIResponderHandle(responder: metricsResponder),
                configuration: .init(address: .hostname(address.host, port: address.port), serverName: "Hedgerow metrics"),
                logger: logger))
    }
    var application = Application(
        responder: APIResponderHandle(responder: responder), server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Hedgerow"),
        services: [DatabaseService(database: database)] + metricsServices
            + (configuration.runsEngine
                ? [ExportEngine(database: database, secrets: secrets, configuration: configuration.engine, logger: logger)] : []),
        logger: logger)
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

/// Runs `body` with an open database whose connection pool runs for the duration (the CLI's
/// one-shot commands use it), after applying pending migrations.
public func withDatabase<T: Sendable>(
    _ configuration: HedgerowConfiguration, logger: Logger, _ body: @escaping @Sendable (any Database) async throws -> T
) async throws -> T {
    let database = try await configuration.openDatabase(logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        if let postgres = database as? PostgresDatabase {
            group.addTask {
                await postgres.run()
                return nil
            }
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

/// `hedgerow worker`: the export engine and the database pool, until SIGTERM or SIGINT.
public func runWorker(configuration: HedgerowConfiguration, database: any Database, logger: Logger) async throws {
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
