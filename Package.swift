// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "hedgerow",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hedgerow", targets: ["hedgerow"]),
        .executable(name: "hedgerow-bench", targets: ["HedgerowBench"]),
        .executable(name: "hedgerow-fuzz", targets: ["HedgerowFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CCodecs",
            providers: [.apt(["libbrotli-dev", "libzstd-dev", "liblz4-dev", "libsnappy-dev"])]
        ),
        .target(
            name: "HedgerowFormats",
            dependencies: ["HedgerowCore", "CZlib", "CCodecs"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowTransport",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowS3",
            dependencies: [
                "HedgerowTransport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowCore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowStore",
            dependencies: [
                "HedgerowCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                "CSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowDestinations",
            dependencies: [
                "HedgerowCore",
                "HedgerowStore",
                "HedgerowFormats",
                "HedgerowS3",
                "HedgerowTransport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowExport",
            dependencies: [
                "HedgerowCore",
                "HedgerowStore",
                "HedgerowDestinations",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowIngest",
            dependencies: [
                "HedgerowCore",
                "HedgerowStore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowRuntime",
            dependencies: [
                "HedgerowCore",
                "HedgerowStore",
                "HedgerowDestinations",
                "HedgerowExport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowAPI",
            dependencies: [
                "HedgerowCore",
                "HedgerowFormats",
                "HedgerowDestinations",
                "HedgerowExport",
                "HedgerowIngest",
                "HedgerowRuntime",
                "HedgerowStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowConsole",
            dependencies: [
                "HedgerowAPI",
                "HedgerowRuntime",
                "HedgerowCore",
                "HedgerowDestinations",
                "HedgerowStore",
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowServer",
            dependencies: [
                "HedgerowAPI",
                "HedgerowCore",
                "HedgerowDestinations",
                "HedgerowExport",
                "HedgerowRuntime",
                "HedgerowStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "hedgerow",
            dependencies: [
                "HedgerowServer",
                "HedgerowRuntime",
                "HedgerowAPI",
                "HedgerowConsole",
                "HedgerowExport",
                "HedgerowCore",
                "HedgerowStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The fuzz targets (scripts/fuzz builds them with -DHEDGEROW_FUZZ -sanitize=fuzzer,address);
        // the plain build replays the corpus.
        .executableTarget(
            name: "HedgerowFuzz",
            dependencies: ["HedgerowCore", "HedgerowFormats"],
            path: "Fuzz/HedgerowFuzz",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "HedgerowBench",
            dependencies: [
                "HedgerowAPI",
                "HedgerowIngest",
                "HedgerowRuntime",
                "HedgerowCore",
                "HedgerowDestinations",
                "HedgerowFormats",
                "HedgerowStore",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/HedgerowBench",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowFormatsTests",
            dependencies: ["HedgerowFormats", "HedgerowCore", "HedgerowTestSupport", "CCodecs"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HedgerowTestSupport",
            dependencies: [
                "HedgerowAPI",
                "HedgerowCore",
                "HedgerowDestinations",
                "HedgerowExport",
                "HedgerowRuntime",
                "HedgerowServer",
                "HedgerowStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/HedgerowTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowS3Tests",
            dependencies: [
                "HedgerowS3", "HedgerowTestSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            exclude: ["Vectors/make_botocore_vectors.py"],
            resources: [.copy("Vectors/botocore_sigv4.json")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowCoreTests",
            dependencies: ["HedgerowCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowAPITests",
            dependencies: [
                "HedgerowAPI",
                "HedgerowServer",
                "HedgerowRuntime",
                "HedgerowIngest",
                "HedgerowConsole",
                "HedgerowS3",
                "HedgerowTestSupport",
                "HedgerowExport",
                "HedgerowDestinations",
                "HedgerowCore",
                "HedgerowFormats",
                "HedgerowStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowStoreTests",
            dependencies: ["HedgerowCore", "HedgerowStore", "HedgerowTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowIngestTests",
            dependencies: [
                "HedgerowAPI", "HedgerowCore", "HedgerowDestinations", "HedgerowFormats", "HedgerowIngest", "HedgerowRuntime",
                "HedgerowStore", "HedgerowTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowConsoleTests",
            dependencies: [
                "HedgerowAPI", "HedgerowConsole", "HedgerowCore", "HedgerowExport", "HedgerowRuntime", "HedgerowS3",
                "HedgerowStore", "HedgerowTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowDestinationsTests",
            dependencies: [
                "HedgerowAPI", "HedgerowCore", "HedgerowDestinations", "HedgerowExport", "HedgerowFormats", "HedgerowRuntime",
                "HedgerowS3", "HedgerowStore", "HedgerowTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowExportTests",
            dependencies: [
                "HedgerowAPI", "HedgerowCore", "HedgerowDestinations", "HedgerowExport", "HedgerowStore", "HedgerowTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HedgerowCLITests",
            dependencies: [
                "hedgerow",
                "HedgerowAPI",
                "HedgerowRuntime",
                "HedgerowServer",
                "HedgerowCore",
                "HedgerowS3",
                "HedgerowStore",
                "HedgerowTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
