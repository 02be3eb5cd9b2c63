/// The file formats of object-storage exports (`file_format`).
package enum FileFormat: String, Sendable, CaseIterable {
    case jsonLines = "JSONLines"
    case parquet = "Parquet"
}

/// The compression codecs of exported files (`compression`).
package enum Compression: String, Sendable, CaseIterable {
    case gzip, brotli, zstd, lz4, snappy
}
