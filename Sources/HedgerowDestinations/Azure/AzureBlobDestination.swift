import AsyncHTTPClient
import Foundation
import HedgerowCore
import HedgerowS3
import HedgerowStore

/// Delivers a run to an Azure Blob Storage container: the same files, names, prefix templates and
/// manifest as S3 (`ObjectFiles`), small files as one Put Blob, larger ones as Put Block parts
/// committed with Put Block List.
package struct AzureBlobDestination: Destination {
    package struct Options: Sendable {
        /// Bytes per block.
        package var blockSize: Int
        /// Blocks uploaded at once.
        package var uploadsInFlight: Int
        package init(blockSize: Int = 8 * 1024 * 1024, uploadsInFlight: Int = 4) {
            self.blockSize = max(blockSize, 64 * 1024)
            self.uploadsInFlight = max(uploadsInFlight, 1)
        }
    }

    let options: Options
    let connector: OutboundConnector

    package init(options: Options = Options(), connector: OutboundConnector) {
        self.options = options
        self.connector = connector
    }

    /// The configuration's account (from the integration, or inline), container and files; a
    /// connection string that names no account is the integration's error.
    static func settings(_ config: JSONObject) throws(DestinationError) -> DestinationSettings.AzureBlob {
        do {
            return try DestinationSettings.AzureBlob(config)
        } catch {
            throw DestinationError(
                kind: error.field == "connection_string" ? .azureBlobIntegrationError : .invalidConfiguration, message: error.message,
                retryable: false)
        }
    }

    /// A client for the configuration's container, sending through `http`.
    static func client(_ settings: DestinationSettings.AzureBlob, http: HTTPClient) throws(DestinationError) -> AzureBlobClient {
        do {
            return try AzureBlobClient(connectionString: settings.connection, container: settings.container, http: http)
        } catch {
            throw DestinationError(kind: .azureBlobIntegrationError, message: error.message, retryable: false)
        }
    }

    package func deliver(
        _ records: RunRecords, context: DeliveryContext, afterBatch: @escaping @Sendable (DeliveryResult) async throws -> Void
    ) async throws -> DeliveryResult {
        let settings = try Self.settings(context.export.destinationConfig)
        let files = ObjectFileSettings(settings.files, partSize: options.blockSize, uploadsInFlight: options.uploadsInFlight)
        let host = URLComponents(string: settings.connection.blobEndpoint)?.host ?? ""
        return try await connector.withHTTPClient(host: host) { http in
            let store = AzureObjectStore(client: try Self.client(settings, http: http))
            return try await ObjectFiles.deliver(records, context: context, store: store, settings: files, afterBatch: afterBatch)
        }
    }
}

extension AzureBlobDestination {
    /// The destination test's steps: 0 checks the container, 1 writes and deletes a probe blob.
    func check(step: Int, config: JSONObject) async throws -> DestinationTest.Result {
        let settings = try Self.settings(config)
        let (connection, container) = (settings.connection, settings.container)
        let host = URLComponents(string: connection.blobEndpoint)?.host ?? ""
        return try await connector.withHTTPClient(host: host) { http in
            let client = try Self.client(settings, http: http)
            do {
                if step == 0 {
                    try await client.containerProperties()
                } else {
                    let name = ObjectFiles.join(settings.files.prefix, "hedgerow-test-\(UUID().uuidString.lowercased())")
                    try await client.putBlob(name, body: .bytes(Array("hedgerow destination test\n".utf8)), contentType: "text/plain")
                    try await client.deleteBlob(name)
                }
                return .passed
            } catch let error as AzureBlobError {
                if error.status == 404 {
                    return .failed("Container '\(container)' does not exist in account '\(connection.accountName)'.")
                }
                return .failed("Azure Blob Storage answered \(error.code): \(error.message)")
            }
        }
    }
}

/// Azure Blob as an `ObjectStore`: an upload is a set of uncommitted blocks (ids of one length,
/// unique to the upload), committed with Put Block List. Azure drops uncommitted blocks itself
/// (after a week, or when the blob is next committed), so an abandoned upload needs no abort.
struct AzureObjectStore: ObjectStore {
    let client: AzureBlobClient

    func putObject(_ key: String, body: RequestBody, contentType: String) async throws {
        try await client.putBlob(key, body: body, contentType: contentType)
    }

    func beginUpload(_ key: String, contentType: String) async throws -> String {
        UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16).description
    }

    static func blockID(upload: String, number: Int) -> String {
        let digits = String(number)
        return Data(("hedgerow-" + upload + "-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits).utf8)
            .base64EncodedString()
    }

    func uploadPart(_ key: String, uploadID: String, number: Int, body: RequestBody) async throws -> String {
        let id = Self.blockID(upload: uploadID, number: number)
        try await client.putBlock(key, blockID: id, body: body)
        return id
    }

    func completeUpload(_ key: String, uploadID: String, parts: [String], contentType: String) async throws {
        try await client.putBlockList(key, blockIDs: parts, contentType: contentType)
    }

    func abortUpload(_ key: String, uploadID: String) async {}

    func listKeys(prefix: String) async throws -> [String] {
        try await client.listBlobs(prefix: prefix).map(\.name)
    }

    func deleteObject(_ key: String) async throws {
        try await client.deleteBlob(key)
    }

    func abortUnfinishedUploads(prefix: String, where matches: (String) -> Bool) async throws {}

    func destinationError(_ error: any Error) -> any Error {
        guard let azure = error as? AzureBlobError else { return error }
        return DestinationError(kind: .remote(azure.kind), message: azure.message, retryable: azure.retryable)
    }
}
