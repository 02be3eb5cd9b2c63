import HedgerowCore
import HedgerowStore
import Logging

/// What a destination is told about the run it delivers.
package struct DeliveryContext: Sendable {
    package var export: BatchExport
    package var run: BatchExportRun
    /// Whether a scheduled run has already delivered this interval (object stores then give a
    /// backfill run's files names of their own, docs/engine.md §4).
    package var overlapsCompletedScheduledRun: Bool
    /// Writes a line to the run's log (level, message); throws when the line could not be stored.
    package var log: @Sendable (LogLevel, String) async throws -> Void
    /// The start of the run's data interval (a run created before starts were stored has its
    /// schedule's interval).
    package var dataIntervalStart: Timestamp

    package init(
        export: BatchExport, run: BatchExportRun, overlapsCompletedScheduledRun: Bool = false,
        log: @escaping @Sendable (LogLevel, String) async throws -> Void = { _, _ in }
    ) throws(StoredExportError) {
        self.export = export
        self.run = run
        self.overlapsCompletedScheduledRun = overlapsCompletedScheduledRun
        self.log = log
        if let start = run.dataIntervalStart {
            self.dataIntervalStart = start
        } else {
            self.dataIntervalStart = try export.schedule().dataInterval(endingAt: run.dataIntervalEnd).start
        }
    }
}

/// What a delivery achieved.
package struct DeliveryResult: Sendable, Equatable {
    package var records: Int64
    package var bytes: Int64
    /// Where a later attempt may resume (the last acknowledged event), for destinations that can.
    package var cursor: String?
    package init(records: Int64, bytes: Int64, cursor: String? = nil) {
        self.records = records
        self.bytes = bytes
        self.cursor = cursor
    }
}

/// An error a destination classifies (docs/engine.md §5): retryable errors wait for another attempt,
/// the others fail the run at once.
package struct DestinationError: Error, CustomStringConvertible {
    /// What went wrong, as runs' `latest_error` and the logs name it: our own classification,
    /// or the code the remote service answered with (S3's, Azure's, Snowflake's).
    package enum Kind: Sendable, Equatable, CustomStringConvertible {
        case azureBlobIntegrationError
        case bigQueryError
        case bigQueryRetryableError
        case connectionError
        case databaseNotFound
        case databricksAuthenticationError
        case databricksConnectionError
        case databricksError
        case databricksInsufficientPermissionsError
        case databricksQueryTimeoutError
        case databricksServiceError
        case databricksStatementError
        case databricksTokenRejected
        case databricksWarehouseStoppedError
        case destinationAddressRefused
        case encodingError
        case eventQueryTimeout
        case exportNotFound
        case featureNotSupported
        case forbidden
        case httpError
        case incompatibleSchema
        case integrationNotFound
        case internalError
        case invalidBatchExport
        case invalidConfiguration
        case invalidCredentials
        case invalidPrivateKey
        case invalidSchemaName
        case invalidStoredEvent
        case localFileError
        case missingPrimaryKey
        case notFound
        case permissionDenied
        case postgresError
        case refreshError
        case retryableHTTPError
        case schemaNotFound
        case secretsUnreadable
        case snowflakeAuthenticationError
        case snowflakeCopyError
        case snowflakeError
        case snowflakeObjectNotFound
        case snowflakePermissionsError
        case snowflakeRetryableError
        case snowflakeStageError
        case snowflakeWarehouseSuspended
        case tlsCertificateError
        case tlsUnavailable
        case tokenEndpointUnavailable
        case transactionConflict
        case unauthorized
        case undefinedColumn
        case unsupportedModel
        /// A code the remote service reported, passed on as it came.
        case remote(String)

        package var description: String {
            switch self {
            case .azureBlobIntegrationError: "AzureBlobIntegrationError"
            case .bigQueryError: "BigQueryError"
            case .bigQueryRetryableError: "BigQueryRetryableError"
            case .connectionError: "ConnectionError"
            case .databaseNotFound: "DatabaseNotFound"
            case .databricksAuthenticationError: "DatabricksAuthenticationError"
            case .databricksConnectionError: "DatabricksConnectionError"
            case .databricksError: "DatabricksError"
            case .databricksInsufficientPermissionsError: "DatabricksInsufficientPermissionsError"
            case .databricksQueryTimeoutError: "DatabricksQueryTimeoutError"
            case .databricksServiceError: "DatabricksServiceError"
            case .databricksStatementError: "DatabricksStatementError"
            case .databricksTokenRejected: "DatabricksTokenRejected"
            case .databricksWarehouseStoppedError: "DatabricksWarehouseStoppedError"
            case .destinationAddressRefused: "DestinationAddressRefused"
            case .encodingError: "EncodingError"
            case .eventQueryTimeout: "EventQueryTimeout"
            case .exportNotFound: "ExportNotFound"
            case .featureNotSupported: "FeatureNotSupported"
            case .forbidden: "Forbidden"
            case .httpError: "HTTPError"
            case .incompatibleSchema: "IncompatibleSchema"
            case .integrationNotFound: "IntegrationNotFound"
            case .internalError: "InternalError"
            case .invalidBatchExport: "InvalidBatchExport"
            case .invalidConfiguration: "InvalidConfiguration"
            case .invalidCredentials: "InvalidCredentials"
            case .invalidPrivateKey: "InvalidPrivateKey"
            case .invalidSchemaName: "InvalidSchemaName"
            case .invalidStoredEvent: "InvalidStoredEvent"
            case .localFileError: "LocalFileError"
            case .missingPrimaryKey: "MissingPrimaryKey"
            case .notFound: "NotFound"
            case .permissionDenied: "PermissionDenied"
            case .postgresError: "PostgresError"
            case .refreshError: "RefreshError"
            case .retryableHTTPError: "RetryableHTTPError"
            case .schemaNotFound: "SchemaNotFound"
            case .secretsUnreadable: "SecretsUnreadable"
            case .snowflakeAuthenticationError: "SnowflakeAuthenticationError"
            case .snowflakeCopyError: "SnowflakeCopyError"
            case .snowflakeError: "SnowflakeError"
            case .snowflakeObjectNotFound: "SnowflakeObjectNotFound"
            case .snowflakePermissionsError: "SnowflakePermissionsError"
            case .snowflakeRetryableError: "SnowflakeRetryableError"
            case .snowflakeStageError: "SnowflakeStageError"
            case .snowflakeWarehouseSuspended: "SnowflakeWarehouseSuspended"
            case .tlsCertificateError: "TLSCertificateError"
            case .tlsUnavailable: "TLSUnavailable"
            case .tokenEndpointUnavailable: "TokenEndpointUnavailable"
            case .transactionConflict: "TransactionConflict"
            case .unauthorized: "Unauthorized"
            case .undefinedColumn: "UndefinedColumn"
            case .unsupportedModel: "UnsupportedModel"
            case .remote(let code): code
            }
        }
    }

    package var kind: Kind
    package var message: String
    package var retryable: Bool
    package init(kind: Kind, message: String, retryable: Bool) {
        self.kind = kind
        self.message = message
        self.retryable = retryable
    }
    package var description: String { "\(kind): \(message)" }
}

/// A place runs deliver to. `records` is the run's rows of its model, a batch at a time;
/// `afterBatch` is called between batches (the worker renews its lease there and stops a cancelled
/// run).
package protocol Destination: Sendable {
    func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult
}

extension Destination {
    /// Delivers a run of the events model.
    package func deliver(
        _ batches: EventBatches, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        try await deliver(.events(batches), context: context, afterBatch: afterBatch)
    }
}

/// Writes nothing; counts what it would have written (docs/engine.md §3).
struct NoOpDestination: Destination {
    init() {}

    func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        var result = DeliveryResult(records: 0, bytes: 0)
        func count<Rows: AsyncSequence>(_ batches: Rows) async throws where Rows.Element: Collection {
            for try await batch in batches {
                result.records += Int64(batch.count)
                try await afterBatch(result)
            }
        }
        switch records {
        case .events(let batches): try await count(batches)
        case .persons(let batches): try await count(batches)
        case .sessions(let batches): try await count(batches)
        }
        return result
    }
}

/// The destinations this build delivers to; the API refuses every other type.
package enum Destinations {
    package static let deliverable: Set<DestinationType> = [
        .noOp, .postgres, .http, .s3, .awsS3, .s3Compatible, .bigQuery, .snowflake, .azureBlob, .redshift, .databricks,
    ]

    /// Where the warehouses' APIs are, when an operator points them elsewhere (tests, private
    /// deployments): `HEDGEROW_BIGQUERY_URL`, `HEDGEROW_SNOWFLAKE_URL`, `HEDGEROW_DATABRICKS_URL`; nil for
    /// the public services.
    package struct Endpoints: Sendable {
        package var bigQuery: String?
        package var snowflake: String?
        package var databricks: String?
        package init(bigQuery: String? = nil, snowflake: String? = nil, databricks: String? = nil) {
            self.bigQuery = bigQuery
            self.snowflake = snowflake
            self.databricks = databricks
        }
    }

    /// The destination of a type, connecting through `connector` (its outbound policy).
    package static func make(
        _ type: DestinationType, logger: Logger, connector: OutboundConnector, allowInsecureHTTP: Bool = false,
        s3: S3Destination.Options = S3Destination.Options(), azureBlob: AzureBlobDestination.Options = AzureBlobDestination.Options(),
        endpoints: Endpoints = Endpoints()
    ) -> any Destination {
        switch type {
        case .noOp: NoOpDestination()
        case .postgres: PostgresDestination(logger: logger, connector: connector)
        case .http: HTTPDestination(allowInsecure: allowInsecureHTTP, connector: connector)
        case .s3, .awsS3, .s3Compatible: S3Destination(options: s3, connector: connector)
        case .bigQuery: BigQueryDestination(connector: connector, baseURL: endpoints.bigQuery, allowInsecureHTTP: allowInsecureHTTP)
        case .snowflake: SnowflakeDestination(connector: connector, baseURL: endpoints.snowflake)
        case .azureBlob: AzureBlobDestination(options: azureBlob, connector: connector)
        case .redshift: RedshiftDestination(logger: logger, connector: connector, s3: s3)
        case .databricks: DatabricksDestination(connector: connector, baseURL: endpoints.databricks)
        }
    }
}

extension DestinationSettings.Readable {
    /// The typed settings of a stored configuration; one its destination cannot use is the run's
    /// non-retryable `InvalidConfiguration`.
    static func read(_ config: JSONObject) throws(DestinationError) -> Self {
        do {
            return try Self(config)
        } catch {
            throw DestinationError(kind: .invalidConfiguration, message: error.message, retryable: false)
        }
    }
}
