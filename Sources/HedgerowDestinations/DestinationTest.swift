import AsyncHTTPClient
import Foundation
import HedgerowCore
import HedgerowS3
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO

/// PostHog's destination tests (`batch_exports/test/`, `run_test_step_new/`, `{id}/run_test_step/`):
/// an ordered list of steps per destination, each run on its own against a configuration, so a
/// user sees which part fails (reaching the server, credentials, the bucket or schema, writing).
/// Every step connects through the outbound policy, and writes only a probe it removes again.
package struct DestinationTest: Sendable {
    package struct Step: Sendable, Equatable {
        package let name: String
        package let description: String
    }

    package enum Status: String, Sendable { case passed = "Passed", failed = "Failed" }

    package struct Result: Sendable, Equatable {
        package let status: Status
        package let message: String?

        static let passed = Result(status: .passed, message: nil)
        static func failed(_ message: String) -> Result { Result(status: .failed, message: message) }
    }

    package let type: DestinationType
    package let steps: [Step]

    /// The test of a destination type; nil for a type this server does not deliver to.
    package init?(type: DestinationType) {
        self.type = type
        switch type {
        case .s3, .awsS3, .s3Compatible:
            steps = [
                Step(name: "Check S3 bucket", description: "The bucket exists and these credentials may use it."),
                Step(
                    name: "Write to the bucket",
                    description: "A small probe object is written under the configured prefix, then deleted again."),
            ]
        case .redshift:
            steps = [
                Step(
                    name: "Connect to Redshift",
                    description: "The cluster is reached over TLS and accepts the user, password and database."),
                Step(name: "Check the schema", description: "The configured schema exists."),
                Step(
                    name: "Check the table",
                    description:
                        "The table exists with a uuid column, or this user may create it (a probe table is created in a transaction that is rolled back)."
                ),
            ]
        case .postgres:
            steps = [
                Step(
                    name: "Connect to PostgreSQL",
                    description: "The server is reached over TLS and accepts the user, password and database."),
                Step(name: "Check the schema", description: "The configured schema exists."),
                Step(
                    name: "Check the table",
                    description:
                        "The table exists with the columns exports write, or this user may create it (a probe table is created and dropped in a transaction that is rolled back)."
                ),
            ]
        case .bigQuery:
            steps = [
                Step(
                    name: "Verify the service account",
                    description: "A token is requested at token_uri with a JWT signed by the private key."),
                Step(name: "Check the dataset", description: "The dataset exists in the project and the account can read it."),
                Step(
                    name: "Check the table",
                    description:
                        "The table exists, or the account may create tables in the dataset (a probe table is created and deleted)."),
            ]
        case .snowflake:
            steps = [
                Step(
                    name: "Connect to Snowflake",
                    description: "The account is reached and accepts the user's password or key, with the warehouse and role."),
                Step(name: "Check the database and schema", description: "The database and schema exist and the user may use them."),
                Step(
                    name: "Check the table",
                    description:
                        "The table exists, or the user may create tables in the schema (a temporary probe table is created and dropped)."
                ),
            ]
        case .databricks:
            steps = [
                Step(
                    name: "Verify the service principal",
                    description: "A token is requested at the workspace with the service principal's client ID and secret."),
                Step(
                    name: "Check the warehouse, catalog and schema",
                    description: "A statement runs on the SQL warehouse of http_path, in the configured catalog and schema."),
            ]
        case .azureBlob:
            steps = [
                Step(
                    name: "Check the container",
                    description: "The storage account is reached, accepts the key or SAS token, and the container exists."),
                Step(
                    name: "Write to the container",
                    description: "A small probe blob is written under the configured prefix, then deleted again."),
            ]
        case .http:
            steps = [
                Step(name: "Reach the endpoint", description: "The URL answers an HTTP request, without a redirect or a server error.")
            ]
        case .noOp:
            steps = [Step(name: "Nothing to check", description: "NoOp exports write nothing anywhere.")]
        }
    }

    /// The steps, none run yet (`{"steps": [{name, description, result: null}]}`).
    package var asJSON: JSONValue {
        .object(["steps": .array(steps.map { Self.json($0, result: nil) })])
    }

    package static func json(_ step: Step, result: Result?) -> JSONValue {
        .object([
            "name": .string(step.name), "description": .string(step.description),
            "result": result.map { .object(["status": .string($0.status.rawValue), "message": JSONValue($0.message)]) } ?? .null,
        ])
    }

    /// Runs step `index` against `config` (secrets included). Failures are results, not errors.
    package func run(
        step index: Int, config: JSONObject, connector: OutboundConnector, logger: Logger,
        endpoints: Destinations.Endpoints = Destinations.Endpoints(), allowInsecureHTTP: Bool = false
    ) async -> Result {
        do {
            switch type {
            case .bigQuery:
                let destination = BigQueryDestination(
                    connector: connector, baseURL: endpoints.bigQuery, allowInsecureHTTP: allowInsecureHTTP)
                return try await destination.check(step: index, config: config)
            case .snowflake:
                return try await SnowflakeDestination(connector: connector, baseURL: endpoints.snowflake).check(step: index, config: config)
            case .s3, .awsS3, .s3Compatible: return try await runS3(index, config, connector)
            case .azureBlob: return try await AzureBlobDestination(connector: connector).check(step: index, config: config)
            case .databricks:
                return try await DatabricksDestination(connector: connector, baseURL: endpoints.databricks).check(
                    step: index, config: config)
            case .postgres, .redshift: return try await runPostgres(index, config, connector, logger)
            case .http: return try await runHTTP(config, connector)
            default: return .passed
            }
        } catch let refused as OutboundConnector.Refused {
            return .failed(refused.description)
        } catch let error as DestinationError {
            return .failed(error.message)
        } catch {
            return .failed("The step failed: \(error)")
        }
    }

    func runS3(_ index: Int, _ config: JSONObject, _ connector: OutboundConnector) async throws -> Result {
        let settings = try S3Destination.Settings(DestinationSettings.S3.read(config))
        let client = settings.client
        return try await connector.withHTTPClient(host: client.connectionHost) { http in
            let pinned = client.using(http)
            do {
                if index == 0 {
                    do {
                        try await pinned.headBucket()
                    } catch let refused as S3Error where refused.status == 403 {
                        // A HEAD answer has no body to name its reason: a GET of the prefix's listing
                        // gets S3's error code (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied).
                        _ = try await pinned.listObjects(prefix: ObjectFiles.join(settings.prefix, "hedgerow-test-"))
                        throw refused
                    }
                } else {
                    let key = ObjectFiles.join(settings.prefix, "hedgerow-test-\(UUID().uuidString.lowercased())")
                    try await pinned.putObject(key, body: Array("hedgerow destination test\n".utf8), headers: settings.encryptionHeaders)
                    try await pinned.deleteObject(key)
                }
                return .passed
            } catch let error as S3Error {
                if error.status == 404 || error.code == "NoSuchBucket" {
                    return .failed("Bucket '\(client.bucket)' does not exist, or these credentials may not use it.")
                }
                return .failed("S3 answered \(error.code): \(error.message)")
            }
        }
    }

    func runPostgres(_ index: Int, _ config: JSONObject, _ connector: OutboundConnector, _ logger: Logger) async throws -> Result {
        let destination = PostgresDestination(logger: logger, connector: connector)
        let settings = try PostgresDestination.Settings.read(config)
        let connection = try await destination.connect(settings)
        let result: Result
        do {
            result = try await checkPostgres(index, settings, destination, connection, logger)
        } catch {
            try? await connection.close()
            throw PostgresDestination.classify(error)
        }
        try? await connection.close()
        return result
    }

    func checkPostgres(
        _ index: Int, _ settings: PostgresDestination.Settings, _ destination: PostgresDestination, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> Result {
        if index == 0 { return .passed }
        let schema = try await connection.query(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = \(settings.schema)", logger: logger
        ).collect()
        guard !schema.isEmpty else { return .failed("Schema '\(settings.schema)' does not exist.") }
        if index == 1 { return .passed }
        let columns = try await connection.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = \(settings.schema) AND table_name = \(settings.table)",
            logger: logger
        ).collect().map { try $0.decode(String.self) }
        if !columns.isEmpty {
            let missing = PostgresDestination.columns.map(\.name).filter { !columns.contains($0) }
            return missing.contains("uuid")
                ? .failed("Table '\(settings.table)' has no 'uuid' column, which exports de-duplicate by.") : .passed
        }
        // No table yet: a run would create it. Try that in a transaction that is rolled back.
        let probe =
            PostgresDestination.quote(settings.schema) + "." + PostgresDestination.quote("hedgerow_probe_\(Int.random(in: 0..<1_000_000))")
        do {
            try await destination.run(connection, "BEGIN")
            try await destination.run(connection, "CREATE TABLE \(probe) (uuid VARCHAR(200))")
            try await destination.run(connection, "ROLLBACK")
            return .passed
        } catch {
            try? await destination.run(connection, "ROLLBACK")
            return .failed(
                "Table '\(settings.table)' does not exist and this user may not create it: \(PostgresDestination.classify(error).message)")
        }
    }

    func runHTTP(_ config: JSONObject, _ connector: OutboundConnector) async throws -> Result {
        guard let url = (try? DestinationSettings.HTTP(config))?.url, let host = URLComponents(string: url)?.host, !host.isEmpty else {
            return .failed("The URL has no host.")
        }
        return try await connector.withHTTPClient(host: host, readTimeout: .seconds(15)) { client in
            var request = HTTPClientRequest(url: url)
            request.method = .HEAD
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: .seconds(15))
            } catch {
                return .failed("The endpoint could not be reached: \(error)")
            }
            _ = try? await response.body.collect(upTo: 1 << 16)
            let code = Int(response.status.code)
            if (300..<400).contains(code) { return .failed("The endpoint answered \(code), a redirect; destinations follow none.") }
            if code >= 500 { return .failed("The endpoint answered \(code).") }
            return .passed
        }
    }
}
