import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowS3

/// COPY mode (reference §3.4): the run's rows as Parquet (zstd, at most 100 MB a file) in the
/// user's bucket under `s3_key_prefix`, a Redshift manifest naming them with their sizes, one
/// `COPY … MANIFEST FORMAT AS PARQUET SERIALIZETOJSON` into the stage table; the files and the
/// manifest are deleted afterwards, whatever the outcome.
extension RedshiftDestination {
    /// A client for the COPY bucket (to be sent through a pinned HTTP client).
    static func s3Client(_ copy: CopyInputs) throws -> S3Client {
        guard let credentials = copy.bucketCredentials else {
            throw DestinationError(
                kind: .invalidConfiguration,
                message:
                    "COPY with an IAM role needs 'copy_inputs.bucket_credentials' (AWS keys, or an aws-s3 integration) to write the files",
                retryable: false)
        }
        let endpoint: S3Endpoint
        if let url = copy.endpoint {
            guard let parsed = S3Endpoint.parse(url, virtualHosted: false) else {
                throw DestinationError(kind: .invalidConfiguration, message: "'copy_inputs.endpoint_url' is not a URL", retryable: false)
            }
            endpoint = parsed
        } else {
            endpoint = .aws(region: copy.region, virtualHosted: true)
        }
        return S3Client(endpoint: endpoint, region: copy.region, bucket: copy.bucket, credentials: S3Credentials(credentials))
    }

    /// `<prefix>/<start>-<end>` for the run's objects.
    static func stem(_ copy: CopyInputs, context: DeliveryContext) -> String {
        ObjectFiles.join(copy.keyPrefix, ObjectFiles.baseName(context: context))
    }

    /// Redshift's manifest: every file `mandatory`, with its size (`meta.content_length`, which
    /// COPY of Parquet requires).
    static func manifest(bucket: String, files: [(key: String, size: Int)]) -> [UInt8] {
        JSONWriter.bytes(
            .object([
                "entries": .array(
                    files.map {
                        .object([
                            "url": .string("s3://\(bucket)/\($0.key)"), "mandatory": true,
                            "meta": .object(["content_length": .int(Int64($0.size))]),
                        ])
                    })
            ]))
    }

    static func copyStatement(stage: String, columns: [String], bucket: String, manifest: String, copy: CopyInputs) -> String {
        "COPY \(stage) (\(columns.map(quote).joined(separator: ", "))) FROM 's3://\(escapeLiteral(bucket))/\(escapeLiteral(manifest))' \(copy.credentialsClause) MANIFEST FORMAT AS PARQUET SERIALIZETOJSON"
    }

    /// Writes the run's Parquet files and their manifest; the manifest's key and what was written.
    /// `uploaded` collects every key, for the clean-up.
    func stageFiles(
        _ rows: WarehouseRows, columns: [FileColumn], context: DeliveryContext, copy: CopyInputs, client: S3Client,
        uploaded: inout [String], afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> (manifest: String, result: DeliveryResult) {
        let indices = columns.map { column in rows.columns.firstIndex { $0.name == column.name }! }
        let store = S3ObjectStore(client: client, headers: [])
        var settings = ObjectFileSettings(
            DestinationSettings.Files(format: .parquet, compression: .zstd), partSize: s3.partSize, uploadsInFlight: s3.uploadsInFlight)
        settings.maximumFileBytes = Self.bytesPerFile
        let stem = Self.stem(copy, context: context)
        var files: [ObjectFiles.FileRecord] = []
        var result = DeliveryResult(records: 0, bytes: 0)
        do {
            defer { uploaded += files.map(\.key) }
            try await ObjectFiles.writeFiles(
                columns: columns, next: { try await rows.next()?.selecting(indices) }, store: store,
                settings: settings, key: { stem + "-\($0).parquet" }, files: &files, result: &result, afterBatch: afterBatch)
            let manifestKey = stem + "_manifest.json"
            uploaded.append(manifestKey)
            try await client.putObject(
                manifestKey, body: Self.manifest(bucket: copy.bucket, files: files.map { ($0.key, $0.bytes) }),
                headers: [("Content-Type", "application/json")])
            return (manifestKey, result)
        } catch {
            throw store.destinationError(error)
        }
    }

    /// Deletes what the run wrote to the bucket (best effort: a failure is not the run's).
    static func remove(_ keys: [String], client: S3Client) async {
        for key in Set(keys) { try? await client.deleteObject(key) }
    }
}
