import Foundation
import HedgerowCore
import Logging
import PostgresNIO

/// Where the metadata database lives: `sqlite:///path/file.sqlite` (or `sqlite://relative/path`)
/// or `postgres://user:password@host:port/database?sslmode=disable|prefer|require`.
package enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    /// libpq's `sslmode`, as far as the pool supports it: `allow` is taken as `prefer` (TLS when the
    /// server offers it); certificates are verified whenever TLS is used.
    package enum SSLMode: String, Sendable, Equatable {
        case disable, allow, prefer, require
    }

    package struct PostgresLocation: Sendable, Equatable {
        package var host: String
        package var port: Int
        package var username: String
        package var password: String?
        package var database: String?
        package var sslMode: SSLMode
        /// Extra startup parameters (tests use `search_path` to isolate a schema).
        package var searchPath: String?
        /// The most connections the pool opens (`?pool_size=`).
        package var maximumConnections: Int = 16
    }

    package struct InvalidURL: Error, CustomStringConvertible {
        package let reason: String
        package var description: String { "Invalid database URL: \(reason)" }
    }

    package static func parse(_ url: String) throws -> DatabaseLocation {
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw InvalidURL(reason: "sqlite URL has no path") }
            return .sqlite(path: path)
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"), let components = URLComponents(string: url)
        else { throw InvalidURL(reason: "expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE") }
        guard let host = components.host, !host.isEmpty else { throw InvalidURL(reason: "no host") }
        let database = components.path.split(separator: "/").first.map(String.init)
        let query = components.queryItems ?? []
        guard let sslMode = SSLMode(rawValue: query.first { $0.name == "sslmode" }?.value ?? "prefer") else {
            throw InvalidURL(reason: "sslmode must be disable, prefer or require")
        }
        var poolSize = 16
        if let text = query.first(where: { $0.name == "pool_size" })?.value {
            guard let value = Int(text), value > 0 else { throw InvalidURL(reason: "pool_size must be a positive integer") }
            poolSize = value
        }
        var location = PostgresLocation(
            host: host, port: components.port ?? 5432,
            username: components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "postgres",
            password: components.percentEncodedPassword.flatMap { $0.removingPercentEncoding },
            database: database, sslMode: sslMode,
            searchPath: query.first { $0.name == "search_path" }?.value)
        location.maximumConnections = poolSize
        return .postgres(location)
    }
}

extension DatabaseLocation.PostgresLocation {
    package var clientConfiguration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .require: tls = .require(.makeClientConfiguration())
        case .allow, .prefer: tls = .prefer(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        if let searchPath { configuration.options.additionalStartupParameters = [("search_path", searchPath)] }
        configuration.options.maximumConnections = maximumConnections
        return configuration
    }
}

/// Opens the database a location names.
package enum DatabaseFactory {
    package static func open(
        _ location: DatabaseLocation, logger: Logger, sqliteSynchronous: SQLiteDatabase.Synchronous = .full
    ) async throws -> any Database {
        switch location {
        case .sqlite(let path):
            try PrivateFiles.database(path)
            return try await SQLiteDatabase.open(path: path, synchronous: sqliteSynchronous)
        case .postgres(let postgres):
            return PostgresDatabase(configuration: postgres.clientConfiguration, logger: logger)
        }
    }
}
