import Foundation
import HedgerowCore
import HedgerowFormats

/// An attempt's Parquet (zstd) files for a warehouse stage, each encoded to a local 0600 temporary
/// file (memory stays at a row group) before it is uploaded: Snowflake `PUT`s them into a stage
/// table's stage, Databricks writes them into a volume through the Files API.
struct StageFiles {
    let columns: [FileColumn]
    let stage: String
    let directory: String
    let connector: OutboundConnector
    /// The stage path the attempt's files go under.
    let prefix = "hedgerow"
    private(set) var count = 0
    private var encoder: (any FileEncoder)?
    private var handle: FileHandle?
    private var path: String?
    private(set) var currentSize = 0

    init(columns: [FileColumn], stage: String, directory: String, connector: OutboundConnector) {
        self.columns = columns
        self.stage = stage
        self.directory = directory
        self.connector = connector
    }

    var fileName: String { "\(stage.lowercased())-\(count).parquet" }

    mutating func append(_ row: [FileValue]) throws {
        if encoder == nil {
            switch FileFormat.parquet.encoder(columns: columns, compression: .zstd) {
            case .success(let made): encoder = made
            case .failure(let error): throw DestinationError(kind: .encodingError, message: error.description, retryable: false)
            }
            let path = directory + "/hedgerow-" + UUID().uuidString.lowercased() + ".parquet"
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
                let handle = FileHandle(forWritingAtPath: path)
            else {
                throw DestinationError(kind: .localFileError, message: "cannot write a temporary file in \(directory)", retryable: true)
            }
            self.path = path
            self.handle = handle
            currentSize = 0
        }
        encoder?.append(row)
        currentSize = encoder?.approximateSize ?? 0
    }

    mutating func endBatch() {
        guard let encoder else { return }
        encoder.endBatch()
        handle?.write(Data(encoder.takeOutput()))
    }

    /// Ends the current file; its local path (the caller removes it) and size, nil when there was none.
    mutating func finishLocal() throws -> (path: String, size: Int)? {
        guard let encoder, let handle, let path else { return nil }
        encoder.finish()
        handle.write(Data(encoder.takeOutput()))
        try? handle.close()
        self.encoder = nil
        self.handle = nil
        self.path = nil
        count += 1
        let size = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0)
        return (path, size)
    }

    mutating func removeLocal() {
        try? handle?.close()
        if let path { try? FileManager.default.removeItem(atPath: path) }
    }
}
