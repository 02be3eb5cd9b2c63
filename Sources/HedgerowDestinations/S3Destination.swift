import HedgerowCore
import HedgerowFormats
import HedgerowS3
import HedgerowStore

/// Delivers a run to S3 or an S3-compatible store (docs/engine.md §4, §7) through `ObjectFiles`:
/// multipart uploads, a PutObject for small files, server-side encryption on every object.
package struct S3Destination: Destination {
    package struct Options: Sendable {
        /// Bytes per multipart part (S3's minimum is 5 MiB).
        package var partSize = 50 * 1024 * 1024
        /// Parts uploaded at once.
        package var uploadsInFlight = 4
        package init(partSize: Int = 50 * 1024 * 1024, uploadsInFlight: Int = 4) {
            self.partSize = max(partSize, 5 * 1024 * 1024)
            self.uploadsInFlight = max(uploadsInFlight, 1)
        }
    }

    let options: Options
    let connector: OutboundConnector

    package init(options: Options = Options(), connector: OutboundConnector) {
        self.options = options
        self.connector = connector
    }

    struct Settings {
        var client: S3Client
        var prefix: String
        /// Server-side encryption, for every object the run writes (data files and manifest).
        var encryptionHeaders: [(String, String)]

        init(_ s3: DestinationSettings.S3) throws(DestinationError) {
            let endpoint: S3Endpoint
            if let url = s3.endpointURL {
                guard let parsed = S3Endpoint.parse(url, virtualHosted: s3.virtualHostedStyle) else {
                    throw DestinationError(
                        kind: .invalidConfiguration, message: "'endpoint_url' must be an http:// or https:// URL without a path",
                        retryable: false)
                }
                endpoint = parsed
            } else {
                endpoint = .aws(region: s3.region, virtualHosted: s3.virtualHostedStyle)
            }
            client = S3Client(endpoint: endpoint, region: s3.region, bucket: s3.bucket, credentials: s3.keys.map(S3Credentials.init))
            prefix = s3.files.prefix
            encryptionHeaders = []
            if let encryption = s3.encryption {
                encryptionHeaders.append(("x-amz-server-side-encryption", encryption))
                if encryption == "aws:kms", let key = s3.kmsKeyID {
                    encryptionHeaders.append(("x-amz-server-side-encryption-aws-kms-key-id", key))
                }
            }
        }
    }

    /// docs/engine.md §4's prefix templates (see `ObjectFiles.renderPrefix`).
    package static func renderPrefix(
        _ template: String, start: Timestamp, end: Timestamp, table: String = "events"
    ) -> (prefix: String, rendered: Bool) {
        ObjectFiles.renderPrefix(template, start: start, end: end, table: table)
    }

    package func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let s3 = try DestinationSettings.S3.read(context.export.destinationConfig)
        var settings = try Settings(s3)
        let files = ObjectFileSettings(s3.files, partSize: options.partSize, uploadsInFlight: options.uploadsInFlight)
        return try await connector.withHTTPClient(host: settings.client.connectionHost) { http in
            settings.client = settings.client.using(http)
            let store = S3ObjectStore(client: settings.client, headers: settings.encryptionHeaders)
            return try await ObjectFiles.deliver(records, context: context, store: store, settings: files, afterBatch: afterBatch)
        }
    }
}

/// S3 as an `ObjectStore`: multipart uploads (ETags), ListObjectsV2, ListMultipartUploads.
struct S3ObjectStore: ObjectStore {
    let client: S3Client
    /// Sent with every object written (server-side encryption).
    let headers: [(String, String)]

    func putObject(_ key: String, body: RequestBody, contentType: String) async throws {
        try await client.putObject(key, body: body, headers: headers + [("Content-Type", contentType)])
    }

    func beginUpload(_ key: String, contentType: String) async throws -> String {
        try await client.createMultipartUpload(key, headers: headers + [("Content-Type", contentType)])
    }

    func uploadPart(_ key: String, uploadID: String, number: Int, body: RequestBody) async throws -> String {
        try await client.uploadPart(key, uploadID: uploadID, partNumber: number, body: body)
    }

    func completeUpload(_ key: String, uploadID: String, parts: [String], contentType: String) async throws {
        try await client.completeMultipartUpload(key, uploadID: uploadID, etags: parts)
    }

    func abortUpload(_ key: String, uploadID: String) async {
        try? await client.abortMultipartUpload(key, uploadID: uploadID)
    }

    func listKeys(prefix: String) async throws -> [String] {
        try await client.listObjects(prefix: prefix).map(\.key)
    }

    func deleteObject(_ key: String) async throws {
        try await client.deleteObject(key)
    }

    func abortUnfinishedUploads(prefix: String, where matches: (String) -> Bool) async throws {
        for upload in try await client.listMultipartUploads(prefix: prefix) where matches(upload.key) {
            try await client.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
        }
    }

    func destinationError(_ error: any Error) -> any Error {
        guard let s3 = error as? S3Error else { return error }
        return DestinationError(kind: .remote(s3.code), message: s3.message, retryable: s3.retryable)
    }
}

extension S3Credentials {
    /// A configuration's key pair, as requests are signed with it.
    init(_ keys: DestinationSettings.AWSKeys) {
        self.init(accessKeyID: keys.accessKeyID, secretAccessKey: keys.secretAccessKey)
    }
}
