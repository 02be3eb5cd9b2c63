import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowStore
import Logging

/// Everything the server reads from its environment, read once at start-up and passed down.
package struct HedgerowConfiguration: Sendable {
    package var host: String = "127.0.0.1"
    package var port: Int = 8000
    package var dataDirectory: String = "./hedgerow-data"
    package var database: DatabaseLocation
    /// SQLite's `PRAGMA synchronous` (`HEDGEROW_SQLITE_SYNCHRONOUS`): `full` unless traded back.
    package var sqliteSynchronous: SQLiteDatabase.Synchronous = .full
    /// Base of absolute URLs (`next`/`previous`); nil to use the request's Host header.
    package var siteURL: String?
    /// Key for encrypting destination secrets; nil to use (or create) `<data dir>/secret-key`.
    package var secretKey: String?
    package var logLevel: Logger.Level = .info
    package var adminEmail: String = "admin@localhost"
    package var instanceTag: String = "none"
    package var rateLimit = RateLimitConfiguration()
    /// The wall clock (seconds since 1970) the rate limiters count windows by; tests set their own.
    package var limiterClock: @Sendable () -> Double = { Date().timeIntervalSince1970 }
    /// Largest capture body accepted, in bytes (`HEDGEROW_MAX_BODY_SIZE`).
    package var maximumBodySize: Int = 20 * 1024 * 1024
    /// Largest body of every other route, in bytes (`HEDGEROW_MAX_API_BODY_SIZE`); an authenticated
    /// route's body is read only once its key is known, when the key is in a header.
    package var maximumAPIBodySize: Int = 1024 * 1024
    /// How long a connection may sit idle or take to send a request's headers, and how long a
    /// request's body may take to arrive (`HEDGEROW_HTTP_READ_TIMEOUT_SECONDS`).
    package var readTimeout: Duration = .seconds(30)
    /// Open connections per client address (`HEDGEROW_HTTP_MAX_CONNECTIONS_PER_ADDRESS`).
    package var connectionsPerAddress = 256
    /// Whether to create the admin user, default organization and first key on an empty database.
    package var bootstrapOnEmptyDatabase = true
    /// Whether `serve` runs the export engine (scheduler and workers) beside the API.
    package var runsEngine = true
    package var engine = EngineConfiguration()
    /// Where `/metrics` is served on a listener of its own (`HEDGEROW_METRICS_ADDRESS`); nil for none.
    package var metricsAddress: (host: String, port: Int)? = ("127.0.0.1", 9102)
    /// When set (`HEDGEROW_METRICS_TOKEN`), `/metrics` needs `Authorization: Bearer <token>`, and
    /// is then also served on the API's port; without it, only the metrics listener serves it.
    package var metricsToken: String?
    /// Reverse proxies whose `X-Forwarded-For` is believed (`HEDGEROW_TRUSTED_PROXIES`, CIDRs).
    package var trustedProxies: [IPNetwork] = []
    /// Where invite mail goes (`HEDGEROW_SMTP_URL`, `HEDGEROW_SMTP_FROM`); nil: invites are not mailed.
    package var smtp: SMTPSettings?

    package struct RateLimitConfiguration: Sendable, Equatable {
        package var enabled = true
        package var burstPerMinute = 480
        package var sustainedPerHour = 4800
        /// Failed authentications (invalid keys or project tokens) per client address and minute
        /// before that address is answered 429 (`HEDGEROW_AUTH_FAILURE_LIMIT`; 0 for no limit).
        package var authenticationFailuresPerMinute = 30
        /// Capture requests per project token and minute (`HEDGEROW_CAPTURE_RATE_LIMIT`; 0 for
        /// no limit): far above what SDKs send, a cap on floods.
        package var capturePerMinute = 120_000
        /// Failed console sign-ins per minute, counted per client address and per email address,
        /// before further attempts are answered 429 (`HEDGEROW_SIGN_IN_FAILURE_LIMIT`; 0 for no limit).
        package var signInFailuresPerMinute = 5
        package init() {}
    }

    package init(dataDirectory: String = "./hedgerow-data", database: DatabaseLocation? = nil) {
        self.dataDirectory = dataDirectory
        self.database = database ?? .sqlite(path: dataDirectory + "/hedgerow.sqlite")
    }

    package struct Invalid: Error, CustomStringConvertible {
        package let description: String
    }

    /// Reads `HEDGEROW_*` variables over the defaults. Flags given on the command line are applied
    /// afterwards by the CLI.
    package static func fromEnvironment(_ environment: [String: String]) throws -> HedgerowConfiguration {
        let dataDirectory = environment["HEDGEROW_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "./hedgerow-data"
        var configuration = HedgerowConfiguration(dataDirectory: dataDirectory)
        if let url = environment["HEDGEROW_DATABASE_URL"], !url.isEmpty {
            configuration.database = try DatabaseLocation.parse(url)
        }
        if let mode = environment["HEDGEROW_SQLITE_SYNCHRONOUS"], !mode.isEmpty {
            guard let parsed = SQLiteDatabase.Synchronous(rawValue: mode.lowercased()) else {
                throw Invalid(description: "HEDGEROW_SQLITE_SYNCHRONOUS must be full or normal")
            }
            configuration.sqliteSynchronous = parsed
        }
        if let site = environment["HEDGEROW_SITE_URL"], !site.isEmpty {
            configuration.siteURL = site.hasSuffix("/") ? String(site.dropLast()) : site
        }
        if let key = environment["HEDGEROW_SECRET_KEY"], !key.isEmpty { configuration.secretKey = key }
        if let url = environment["HEDGEROW_SMTP_URL"], !url.isEmpty {
            configuration.smtp = try SMTPSettings.parse(url, from: environment["HEDGEROW_SMTP_FROM"].flatMap { $0.isEmpty ? nil : $0 })
        }
        if let level = environment["HEDGEROW_LOG_LEVEL"], !level.isEmpty {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw Invalid(description: "HEDGEROW_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
            }
            configuration.logLevel = parsed
        }
        if let email = environment["HEDGEROW_ADMIN_EMAIL"], !email.isEmpty { configuration.adminEmail = email.lowercased() }
        if let tag = environment["HEDGEROW_INSTANCE_TAG"], !tag.isEmpty { configuration.instanceTag = tag }
        if let enabled = environment["HEDGEROW_RATE_LIMIT_ENABLED"], !enabled.isEmpty {
            configuration.rateLimit.enabled = !["0", "false", "no", "off"].contains(enabled.lowercased())
        }
        /// A whole number in `range` (no upper end when it reaches `Int.max`), or nil when unset.
        func integer(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), range.contains(value) else {
                let bounds =
                    range.upperBound == Int.max ? "of at least \(range.lowerBound)" : "from \(range.lowerBound) to \(range.upperBound)"
                throw Invalid(description: "\(name) must be an integer \(bounds)")
            }
            return value
        }
        /// A number of seconds (or hours) in `range`, or nil when unset.
        func number(_ name: String, _ range: ClosedRange<Double>) throws -> Double? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Double(text), range.contains(value) else {
                throw Invalid(description: "\(name) must be a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        if let value = try integer("HEDGEROW_RATE_LIMIT_BURST", 1...Int.max) { configuration.rateLimit.burstPerMinute = value }
        if let value = try integer("HEDGEROW_RATE_LIMIT_SUSTAINED", 1...Int.max) { configuration.rateLimit.sustainedPerHour = value }
        // 0: no limit.
        if let value = try integer("HEDGEROW_AUTH_FAILURE_LIMIT", 0...Int.max) {
            configuration.rateLimit.authenticationFailuresPerMinute = value
        }
        if let value = try integer("HEDGEROW_CAPTURE_RATE_LIMIT", 0...Int.max) { configuration.rateLimit.capturePerMinute = value }
        if let value = try integer("HEDGEROW_SIGN_IN_FAILURE_LIMIT", 0...Int.max) {
            configuration.rateLimit.signInFailuresPerMinute = value
        }
        if let value = try integer("HEDGEROW_WORKER_CONCURRENCY", 1...64) { configuration.engine.concurrency = value }
        if let value = try integer("HEDGEROW_BACKFILL_CONCURRENCY", 1...64) { configuration.engine.backfillConcurrency = value }
        if let value = try integer("HEDGEROW_EVENT_RETENTION_DAYS", 1...36_500) { configuration.engine.eventRetentionDays = value }
        if let value = try integer("HEDGEROW_S3_PART_SIZE_MB", 5...5_000) { configuration.engine.s3.partSize = value * 1024 * 1024 }
        if let value = try integer("HEDGEROW_S3_UPLOADS_IN_FLIGHT", 1...64) { configuration.engine.s3.uploadsInFlight = value }
        if let value = try integer("HEDGEROW_AZURE_BLOB_BLOCK_SIZE_MB", 1...4_000) {
            configuration.engine.azureBlob.blockSize = value * 1024 * 1024
        }
        if let value = try integer("HEDGEROW_AZURE_BLOB_UPLOADS_IN_FLIGHT", 1...64) {
            configuration.engine.azureBlob.uploadsInFlight = value
        }
        if let value = try number("HEDGEROW_ENGINE_POLL_SECONDS", 0.001...3600) {
            configuration.engine.pollInterval = .milliseconds(Int64(value * 1000))
        }
        for (name, path) in [
            ("HEDGEROW_BIGQUERY_URL", \Destinations.Endpoints.bigQuery), ("HEDGEROW_SNOWFLAKE_URL", \Destinations.Endpoints.snowflake),
            ("HEDGEROW_DATABRICKS_URL", \Destinations.Endpoints.databricks),
        ] {
            guard let url = environment[name], !url.isEmpty else { continue }
            guard let scheme = URLComponents(string: url)?.scheme?.lowercased(), scheme == "http" || scheme == "https",
                URLComponents(string: url)?.host?.isEmpty == false
            else { throw Invalid(description: "\(name) must be an http:// or https:// URL") }
            configuration.engine.endpoints[keyPath: path] = url
        }
        if let flag = environment["HEDGEROW_ALLOW_INSECURE_HTTP_DESTINATIONS"], !flag.isEmpty {
            configuration.engine.allowInsecureHTTP = ["1", "true", "yes", "on"].contains(flag.lowercased())
        }
        if let url = environment["HEDGEROW_ALERT_WEBHOOK_URL"], !url.isEmpty {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw Invalid(description: "HEDGEROW_ALERT_WEBHOOK_URL must be an http:// or https:// URL")
            }
            configuration.engine.alertWebhookURL = url
        }
        if let value = try number("HEDGEROW_RUN_LEASE_SECONDS", 1...3600) {
            configuration.engine.leaseMicroseconds = Int64(value * 1_000_000)
        }
        for (name, path) in [
            ("HEDGEROW_DESTINATION_ALLOW_NETWORKS", \OutboundPolicy.allow), ("HEDGEROW_DESTINATION_DENY_NETWORKS", \OutboundPolicy.deny),
        ] {
            guard let text = environment[name] else { continue }
            switch IPNetwork.parseList(text) {
            case .success(let networks): configuration.engine.outbound[keyPath: path] = networks
            case .failure(let error):
                throw Invalid(description: "\(name) must be a comma-separated list of CIDR networks; '\(error.entry)' is not one")
            }
        }
        if let hours = try number("HEDGEROW_RUN_MAX_RETRY_HOURS", 0...8760) {
            configuration.engine.retry = RetryPolicy(maximumRetryHours: hours)
        }
        if let limit = try number("HEDGEROW_EVENT_QUERY_TIMEOUT_SECONDS", 0.1...86_400) {
            configuration.engine.eventQueryTimeout = .milliseconds(Int64(limit * 1000))
        }
        if let grace = try number("HEDGEROW_SHUTDOWN_GRACE_SECONDS", 0...3600) {
            configuration.engine.shutdownGrace = .milliseconds(Int64(grace * 1000))
        }
        if let address = environment["HEDGEROW_METRICS_ADDRESS"], !address.isEmpty {
            if ["off", "none", "0"].contains(address.lowercased()) {
                configuration.metricsAddress = nil
            } else {
                guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
                    (0...65535).contains(port)
                else { throw Invalid(description: "HEDGEROW_METRICS_ADDRESS must be HOST:PORT (or off)") }
                var host = String(address[..<colon])
                if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                configuration.metricsAddress = (host.isEmpty ? "127.0.0.1" : host, port)
            }
        }
        if let text = environment["HEDGEROW_TRUSTED_PROXIES"], !text.isEmpty {
            switch IPNetwork.parseList(text) {
            case .success(let networks): configuration.trustedProxies = networks
            case .failure(let error):
                throw Invalid(
                    description: "HEDGEROW_TRUSTED_PROXIES must be a comma-separated list of CIDR networks; '\(error.entry)' is not one")
            }
        }
        if let token = environment["HEDGEROW_METRICS_TOKEN"], !token.isEmpty { configuration.metricsToken = token }
        if let value = try integer("HEDGEROW_MAX_BODY_SIZE", 1...Int.max) { configuration.maximumBodySize = value }
        if let value = try integer("HEDGEROW_MAX_API_BODY_SIZE", 1024...Int.max) { configuration.maximumAPIBodySize = value }
        if let seconds = try number("HEDGEROW_HTTP_READ_TIMEOUT_SECONDS", 0.1...3600) {
            configuration.readTimeout = .milliseconds(Int64(seconds * 1000))
        }
        if let value = try integer("HEDGEROW_HTTP_MAX_CONNECTIONS_PER_ADDRESS", 1...1_000_000) {
            configuration.connectionsPerAddress = value
        }
        return configuration
    }
}

extension HedgerowConfiguration {
    /// The configured database (SQLite with the configured `synchronous`), not yet migrated.
    package func openDatabase(logger: Logger) async throws -> any Database {
        try await DatabaseFactory.open(database, logger: logger, sqliteSynchronous: sqliteSynchronous)
    }
}

extension SecretBox {
    /// The box of a configuration: `HEDGEROW_SECRET_KEY`, or the data directory's key file.
    package static func load(_ configuration: HedgerowConfiguration) throws -> SecretBox {
        try load(secretKey: configuration.secretKey, dataDirectory: configuration.dataDirectory)
    }
}
