import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowIngest
import HedgerowRuntime
import HedgerowStore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The API's HTTP side, assembled from a configuration: every controller in the route table (and
/// the modules', such as the console), the one responder in front of them, the per-address
/// connection cap, and the responder of the separate metrics listener. The server's composition
/// root (`HedgerowServer`) runs them.
package struct APIServer: Sendable {
    package let services: APIServices
    package let responder: APIResponderHandle
    /// The channel handler that caps open connections per client address.
    package let connectionLimit: ConnectionLimit
    /// What the metrics listener (`HEDGEROW_METRICS_ADDRESS`) answers; nil when there is none.
    package let metricsResponder: APIResponderHandle?

    package init(
        configuration: HedgerowConfiguration, database: any Database, secrets: SecretBox, logger: Logger, modules: [any RouteModule],
        engineMetrics: EngineMetrics? = nil
    ) {
        var routes = Routes()
        let requestMetrics = RequestMetrics()
        let signIn = SignInService(
            database: database,
            failures: configuration.rateLimit.enabled && configuration.rateLimit.signInFailuresPerMinute > 0
                ? WindowLimiter(limit: configuration.rateLimit.signInFailuresPerMinute, clock: configuration.limiterClock) : nil)
        HealthController(database: database).addRoutes(to: &routes)
        // /metrics shows every tenant's exports: on the API's port only behind a token.
        if let token = configuration.metricsToken {
            MetricsController(database: database, requests: requestMetrics, engine: engineMetrics, clock: { .now() }, token: token)
                .addRoutes(to: &routes)
        }
        let services = APIServices(
            configuration: configuration, organizations: OrganizationService(database: database),
            projects: ProjectService(database: database),
            members: MemberService(database: database),
            invites: InviteService(database: database, mailer: configuration.smtp.map(SMTPClient.init), logger: logger),
            users: UserService(database: database),
            keys: PersonalAPIKeyService(database: database),
            batchExports: BatchExportService(
                database: database, secrets: secrets, deliverable: Destinations.deliverable,
                allowInsecureHTTP: configuration.engine.allowInsecureHTTP, outbound: configuration.engine.outbound,
                eventQueryTimeout: configuration.engine.eventQueryTimeout, endpoints: configuration.engine.endpoints,
                eventRetentionDays: configuration.engine.eventRetentionDays),
            signIn: signIn)
        OrganizationController(
            service: services.organizations, rollback: EnvironmentsRollbackService(database: database),
            instanceTag: configuration.instanceTag
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
        self.services = services
        self.responder = APIResponderHandle(responder: responder)
        self.connectionLimit = ConnectionLimit(limit: configuration.connectionsPerAddress, exempt: clientAddress)
        self.metricsResponder = configuration.metricsAddress.map { _ in
            var metricsRoutes = Routes()
            MetricsController(
                database: database, requests: requestMetrics, engine: engineMetrics, clock: { .now() }, token: configuration.metricsToken
            ).addRoutes(to: &metricsRoutes)
            return APIResponderHandle(
                responder: APIResponder(
                    routes: metricsRoutes, authentication: AuthenticationService(database: database), rateLimiter: nil, siteURL: nil,
                    maximumBodySize: 0, logger: logger, metrics: RequestMetrics()))
        }
    }
}

/// The responder type Hummingbird runs (opaque outside this module).
package struct APIResponderHandle: HTTPResponder {
    package typealias Context = HedgerowRequestContext
    let responder: APIResponder

    package func respond(to request: Request, context: Context) async throws -> Response {
        try await responder.respond(to: request, context: context)
    }
}
