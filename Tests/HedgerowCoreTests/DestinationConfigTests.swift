import HedgerowCore
import Testing

@Suite("Destination configuration (docs/destinations.md)")
struct DestinationConfigTests {
    static let s3: JSONValue = .object(["bucket_name": "b", "region": "eu-west-1", "prefix": "exports/"])

    static func rejects(_ type: DestinationType, _ config: JSONValue, model: ExportModel = .events, _ detail: String) {
        #expect(throws: APIError.invalidInput(detail, attr: "destination")) {
            try DestinationConfig.validate(type: type, config: config, model: model)
        }
    }

    @Test func fillsDefaultsAndCoercesStrings() throws {
        let s3 = try DestinationConfig.validate(type: .s3, config: Self.s3, model: .events)
        #expect(s3["file_format"] == "JSONLines")
        #expect(s3["use_virtual_style_addressing"] == false)
        let postgres = try DestinationConfig.validate(
            type: .postgres,
            config: .object(["user": "u", "password": "p", "host": "h", "database": "d", "port": "6543", "has_self_signed_cert": "true"]),
            model: .events)
        #expect(postgres["port"] == 6543)
        #expect(postgres["has_self_signed_cert"] == true)
        #expect(postgres["schema"] == "public")
        #expect(postgres["table_name"] == "events")
        let redshift = try DestinationConfig.validate(
            type: .redshift, config: .object(["user": "u", "password": "p", "host": "h", "database": "d"]), model: .events)
        #expect(redshift["port"] == 5439)
    }

    @Test func reportsUnknownMissingAndMistypedKeys() {
        Self.rejects(
            .s3, .object(["bucket_name": "b", "region": "r", "prefix": "p", "zeta": 1, "alpha": 2]),
            "Configuration has unknown field/s: 'alpha', 'zeta'")
        Self.rejects(.s3, .object(["region": "r", "prefix": "p"]), "Configuration missing required field: 'bucket_name'")
        Self.rejects(
            .s3, .object(["bucket_name": 5, "region": "r", "prefix": "p"]), "Configuration has invalid type: got 'int', expected 'str'")
        Self.rejects(
            .postgres, .object(["user": "u", "password": "p", "host": "h", "database": "d", "port": "many"]),
            "Configuration has invalid type: got 'str', expected 'int'")
        Self.rejects(
            .http, .object(["url": "https://x", "token": "t", "include_events": [1]]),
            "Configuration has invalid type: got 'list', expected 'list[str]'")
    }

    @Test func enforcesTheS3FormatAndCompressionMatrix() throws {
        Self.rejects(
            .s3, DestinationConfig.deepMerge(Self.s3.objectValue!, ["file_format": "CSV"]).asValue,
            "File format CSV is not supported. Supported file formats are ['Parquet', 'JSONLines']")
        Self.rejects(
            .s3, DestinationConfig.deepMerge(Self.s3.objectValue!, ["compression": "zstd"]).asValue,
            "Compression zstd is not supported for file format JSONLines. Supported compressions are ['gzip', 'brotli']")
        Self.rejects(
            .awsS3, DestinationConfig.deepMerge(Self.s3.objectValue!, ["file_format": "Parquet", "compression": "xz"]).asValue,
            "Compression xz is not supported for file format Parquet. Supported compressions are ['zstd', 'lz4', 'snappy', 'gzip', 'brotli']"
        )
        for compression in ["zstd", "lz4", "snappy", "gzip", "brotli"] {
            #expect(throws: Never.self) {
                try DestinationConfig.validate(
                    type: .s3Compatible,
                    config: DestinationConfig.deepMerge(
                        Self.s3.objectValue!, ["file_format": "Parquet", "compression": .string(compression)]
                    ).asValue,
                    model: .events)
            }
        }
    }

    @Test func httpOnlyExportsEvents() {
        Self.rejects(
            .http, .object(["url": "https://x", "token": "t"]), model: .persons, "HTTP batch exports only support the events model")
    }

    @Test func patchMergesDeeplyAndKeepsOmittedSecrets() throws {
        let stored = try DestinationConfig.validate(
            type: .postgres, config: .object(["user": "u", "password": "secret", "host": "h", "database": "d"]), model: .events)
        let patched = try DestinationConfig.validate(
            type: .postgres, config: .object(["database": "d2"]), model: .events, existing: stored)
        #expect(patched["password"] == "secret")
        #expect(patched["database"] == "d2")
        let nested = DestinationConfig.deepMerge(["copy_inputs": .object(["a": 1, "b": 2])], ["copy_inputs": .object(["b": 3])])
        #expect(nested["copy_inputs"] == .object(["a": 1, "b": 3]))
    }

    @Test func secretsAreRedactedAtAnyDepth() {
        let config: JSONObject = [
            "user": "u", "password": "p", "host": "h", "nested": .object(["password": "x", "keep": 1]), "list": [.object(["user": "y"])],
        ]
        let redacted = DestinationConfig.redacted(config, type: .postgres)
        #expect(redacted["user"] == nil)
        #expect(redacted["password"] == nil)
        #expect(redacted["host"] == "h")
        #expect(redacted["nested"] == .object(["keep": 1]))
        #expect(redacted["list"] == [.object([:])])
        #expect(DestinationConfig.secretFields(for: .s3) == ["aws_access_key_id", "aws_secret_access_key"])
        #expect(DestinationConfig.secretFields(for: .bigQuery) == ["private_key", "private_key_id", "client_email", "token_uri"])
    }
}

extension JSONObject {
    var asValue: JSONValue { .object(self) }
}
