import HedgerowCore
import Testing

@Suite("Typed destination settings, read from validated configurations (docs/destinations.md)")
struct DestinationSettingsTests {
    static func validated(_ type: DestinationType, _ config: JSONObject) throws -> JSONObject {
        try DestinationConfig.validate(type: type, config: .object(config), model: .events)
    }

    /// `base` with `extra`'s keys set.
    static func with(_ base: JSONObject, _ extra: JSONObject) -> JSONObject { DestinationConfig.deepMerge(base, extra) }

    @Test func objectStoresReadTheirFilesWithDefaultsAndBounds() throws {
        let s3 = try DestinationSettings.S3(
            Self.validated(
                .s3,
                [
                    "bucket_name": "b", "region": "", "prefix": "exports/", "aws_access_key_id": "AK", "aws_secret_access_key": "SK",
                    "file_format": "Parquet", "compression": "zstd", "max_file_size_mb": "5", "encryption": "aws:kms", "kms_key_id": "k",
                ]))
        #expect(s3.bucket == "b")
        #expect(s3.region == "us-east-1")
        #expect(s3.keys == DestinationSettings.AWSKeys(accessKeyID: "AK", secretAccessKey: "SK"))
        #expect(s3.files == DestinationSettings.Files(prefix: "exports/", format: .parquet, compression: .zstd, maximumFileMegabytes: 5))
        #expect(s3.encryption == "aws:kms" && s3.kmsKeyID == "k" && !s3.virtualHostedStyle && s3.endpointURL == nil)
        // Half a key pair is no key pair: requests go unsigned rather than with a broken signature.
        #expect(try DestinationSettings.S3(["bucket_name": "b", "aws_access_key_id": "AK"]).keys == nil)
        // A stored size from before the bound is read within it.
        let huge = try DestinationSettings.S3(["bucket_name": "b", "max_file_size_mb": .int(Int64.max)])
        #expect(huge.files.maximumFileMegabytes == DestinationConfig.maximumFileSizeMegabytes)
        #expect(throws: DestinationSettingsError(field: "file_format", "file format CSV is not supported")) {
            try DestinationSettings.S3(["bucket_name": "b", "file_format": "CSV"])
        }
        #expect(throws: DestinationSettingsError(field: "bucket_name", "'bucket_name' is missing")) {
            try DestinationSettings.S3(["bucket_name": ""])
        }

        let inline = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
        let azure = try DestinationSettings.AzureBlob(
            Self.validated(.azureBlob, ["connection_string": .string(inline), "container_name": "c"]))
        #expect(azure.connection.accountName == "acct" && azure.container == "c")
        #expect(azure.files == DestinationSettings.Files(format: .jsonLines))
        // An integration's connection string wins over none inline.
        let viaIntegration = try DestinationSettings.AzureBlob([
            "integration_id": 3, "integration": .object(["connection_string": .string(inline)]), "container_name": "c",
        ])
        #expect(viaIntegration.connection.accountName == "acct")
        #expect(throws: DestinationSettingsError.self) { try DestinationSettings.AzureBlob(["container_name": "c"]) }
    }

    @Test func databasesReadTheirConnectionWithTheTypesDefaultPort() throws {
        let login: JSONObject = ["user": "u", "password": "p", "host": "h", "database": "d"]
        let postgres = try DestinationSettings.Postgres(Self.validated(.postgres, Self.with(login, ["has_self_signed_cert": "true"])))
        #expect(postgres.port == 5432 && postgres.schema == "public" && postgres.table == "events" && postgres.selfSignedCertificate)
        let redshift = try DestinationSettings.Redshift(Self.validated(.redshift, Self.with(login, ["properties_data_type": "super"])))
        #expect(redshift.connection.port == 5439 && redshift.superJSON && redshift.copy == nil)
        // Without a stored port (a configuration saved before defaults were filled in), each type's own.
        #expect(try DestinationSettings.Redshift(login).connection.port == 5439)
        #expect(try DestinationSettings.Postgres(login).port == 5432)
        #expect(throws: DestinationSettingsError(field: "table_name", "'table_name' is not a valid PostgreSQL name")) {
            try DestinationSettings.Postgres(Self.with(login, ["table_name": "a\"b"]))
        }
        let copy = try DestinationSettings.Redshift(
            Self.validated(
                .redshift,
                Self.with(
                    login,
                    [
                        "mode": "COPY",
                        "copy_inputs": .object([
                            "s3_bucket": "lake", "region_name": "eu-west-1", "s3_key_prefix": "//x/", "authorization": "default",
                            "bucket_credentials": .object(["aws_access_key_id": "AK", "aws_secret_access_key": "SK"]),
                        ]),
                    ])))
        #expect(copy.copy?.authorization == .role("default"))
        #expect(copy.copy?.keyPrefix == "x/")
        #expect(copy.copy?.bucketCredentials == DestinationSettings.AWSKeys(accessKeyID: "AK", secretAccessKey: "SK"))
    }

    @Test func warehousesReadTheirTablesAndSignIns() throws {
        let snowflake = try DestinationSettings.Snowflake(
            Self.validated(
                .snowflake,
                ["account": "org-acct", "user": "u", "database": "d", "warehouse": "w", "schema": "s", "password": "p", "role": ""]))
        #expect(snowflake.authentication == .password("p") && snowflake.table == "events" && snowflake.role == nil)
        #expect(throws: DestinationSettingsError(field: "account", "'account' is not a Snowflake account identifier")) {
            try DestinationSettings.Snowflake([
                "account": "a/b", "user": "u", "database": "d", "warehouse": "w", "schema": "s", "password": "p",
            ])
        }
        let bigQuery = try DestinationSettings.BigQuery(
            Self.validated(
                .bigQuery,
                [
                    "project_id": "p", "dataset_id": "d", "private_key": "k", "private_key_id": "i", "token_uri": "https://t",
                    "client_email": "e",
                ]))
        #expect(bigQuery.table == "events" && !bigQuery.useJSONType && bigQuery.tokenURI == "https://t")
        let databricks = try DestinationSettings.Databricks(
            Self.validated(
                .databricks,
                [
                    "server_hostname": "dbc.example", "client_id": "c", "client_secret": "s", "http_path": "/sql/1.0/warehouses/w1",
                    "catalog": "c", "schema": "s", "table_name": "t",
                ]))
        #expect(databricks.warehouseID == "w1" && databricks.variant && databricks.schemaEvolution)
        let http = try DestinationSettings.HTTP(Self.validated(.http, ["url": "https://r.example/batch", "token": "phc"]))
        #expect(http.url == "https://r.example/batch" && http.token == "phc")
        #expect(throws: DestinationSettingsError.self) { try DestinationSettings.HTTP(["url": "https://r.example"]) }
    }
}
