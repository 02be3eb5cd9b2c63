/// A destination's configuration as typed values, read once from the JSON object `DestinationConfig`
/// validated and stored (with its secrets opened and its integrations resolved, docs/destinations.md).
/// Destinations deliver with these values; only this file knows the keys' names and defaults at run time.
package enum DestinationSettings {
    /// Settings read from a stored configuration object.
    package protocol Readable: Sendable {
        init(_ object: JSONObject) throws(DestinationSettingsError)
    }

    /// How a run's files are cut: `prefix`, `file_format`, `compression`, `max_file_size_mb` (S3, Azure Blob).
    package struct Files: Sendable, Equatable {
        package var prefix: String
        package var format: FileFormat
        package var compression: Compression?
        /// `max_file_size_mb`, within `DestinationConfig.maximumFileSizeMegabytes`; nil: one file per run.
        package var maximumFileMegabytes: Int64?

        package init(prefix: String = "", format: FileFormat, compression: Compression? = nil, maximumFileMegabytes: Int64? = nil) {
            self.prefix = prefix
            self.format = format
            self.compression = compression
            self.maximumFileMegabytes = maximumFileMegabytes
        }

        init(_ config: Reader) throws(DestinationSettingsError) {
            prefix = config.optional("prefix") ?? ""
            let name = config.optional("file_format") ?? FileFormat.jsonLines.rawValue
            guard let format = FileFormat(rawValue: name) else {
                throw DestinationSettingsError(field: "file_format", "file format \(name) is not supported")
            }
            self.format = format
            if let name = config.optional("compression") {
                guard let compression = Compression(rawValue: name) else {
                    throw DestinationSettingsError(field: "compression", "compression \(name) is not supported")
                }
                self.compression = compression
            }
            // A stored config is outside input too: one saved before the bound existed is read within it.
            if case .int(let megabytes)? = config.object["max_file_size_mb"], megabytes > 0 {
                maximumFileMegabytes = min(megabytes, DestinationConfig.maximumFileSizeMegabytes)
            }
        }
    }

    /// An AWS access key pair.
    package struct AWSKeys: Sendable, Equatable {
        package var accessKeyID: String
        package var secretAccessKey: String

        package init(accessKeyID: String, secretAccessKey: String) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
        }

        /// `aws_access_key_id` and `aws_secret_access_key` of an object, when both are given.
        init?(_ value: JSONValue?) {
            guard let id = value?["aws_access_key_id"]?.stringValue, !id.isEmpty,
                let secret = value?["aws_secret_access_key"]?.stringValue, !secret.isEmpty
            else { return nil }
            self.init(accessKeyID: id, secretAccessKey: secret)
        }
    }

    /// S3, AwsS3 and S3Compatible.
    package struct S3: Readable, Equatable {
        package var bucket: String
        package var region: String
        /// `endpoint_url`: an S3-compatible store instead of AWS.
        package var endpointURL: String?
        package var virtualHostedStyle: Bool
        /// Nil: anonymous requests.
        package var keys: AWSKeys?
        /// Server-side encryption (`AES256`, `aws:kms`) and its KMS key.
        package var encryption: String?
        package var kmsKeyID: String?
        package var files: Files

        package init(_ object: JSONObject) throws(DestinationSettingsError) {
            let config = Reader(object)
            bucket = try config.required("bucket_name")
            region = config.optional("region") ?? "us-east-1"
            endpointURL = config.optional("endpoint_url")
            virtualHostedStyle = config.flag("use_virtual_style_addressing", default: false)
            keys = AWSKeys(.object(object))
            encryption = config.optional("encryption")
            kmsKeyID = config.optional("kms_key_id")
            files = try Files(config)
        }
    }

    /// Postgres, and Redshift's connection.
    package struct Postgres: Readable, Equatable {
        package var host: String
        package var port: Int
        package var user: String
        package var password: String
        package var database: String
        package var schema: String
        package var table: String
        package var selfSignedCertificate: Bool

        package init(_ object: JSONObject) throws(DestinationSettingsError) { try self.init(object, defaultPort: 5432) }

        init(_ object: JSONObject, defaultPort: Int) throws(DestinationSettingsError) {
            let config = Reader(object)
            host = try config.required("host")
            user = try config.required("user")
            password = object["password"]?.stringValue ?? ""
            database = try config.required("database")
            schema = object["schema"]?.stringValue ?? "public"
            table = object["table_name"]?.stringValue ?? "events"
            switch object["port"] {
            case .int(let value)? where DestinationConfig.portRange.contains(value): port = Int(value)
            case .int?: throw DestinationSettingsError(field: "port", "'port' must be between 1 and 65535")
            default: port = defaultPort
            }
            for (key, name) in [("schema", schema), ("table_name", table)]
            where name.isEmpty || name.contains("\"") || name.contains("\u{0}") {
                throw DestinationSettingsError(field: key, "'\(key)' is not a valid PostgreSQL name")
            }
            selfSignedCertificate = object["has_self_signed_cert"] == .bool(true)
        }
    }

    /// Redshift: its PostgreSQL connection, the properties' column type, and COPY's inputs in COPY mode.
    package struct Redshift: Readable, Equatable {
        package var connection: Postgres
        /// `properties_data_type` is `super`.
        package var superJSON: Bool
        /// Nil: INSERT mode.
        package var copy: CopyInputs?

        package init(_ object: JSONObject) throws(DestinationSettingsError) {
            connection = try Postgres(object, defaultPort: 5439)
            superJSON = object["properties_data_type"]?.stringValue == "super"
            copy = object["mode"]?.stringValue == "COPY" ? try CopyInputs(object["copy_inputs"]?.objectValue ?? JSONObject()) : nil
        }
    }

    /// `copy_inputs`: the bucket the Parquet files go to, and the credentials Redshift reads them with.
    package struct CopyInputs: Sendable, Equatable {
        package enum Authorization: Sendable, Equatable {
            /// An IAM role ARN, or `default` (the cluster's default role).
            case role(String)
            case keys(AWSKeys)
        }
        package var bucket: String
        package var region: String
        /// `s3_key_prefix` without leading slashes.
        package var keyPrefix: String
        package var authorization: Authorization
        /// What Hedgerow writes the bucket with: `bucket_credentials`, or the authorization's keys.
        package var bucketCredentials: AWSKeys?
        /// Where the bucket is when it is not AWS's (an S3-compatible store).
        package var endpoint: String?

        package init(_ inputs: JSONObject) throws(DestinationSettingsError) {
            guard let bucket = inputs["s3_bucket"]?.stringValue, !bucket.isEmpty else {
                throw DestinationSettingsError(field: "copy_inputs", "'copy_inputs.s3_bucket' is missing")
            }
            self.bucket = bucket
            region = inputs["region_name"]?.stringValue ?? "us-east-1"
            keyPrefix = String((inputs["s3_key_prefix"]?.stringValue ?? "").drop { $0 == "/" })
            switch inputs["authorization"] {
            case .string(let role)?: authorization = .role(role)
            case let value?:
                guard let keys = AWSKeys(value) else {
                    throw DestinationSettingsError(field: "copy_inputs", "'copy_inputs.authorization' has no AWS keys")
                }
                authorization = .keys(keys)
            case nil: throw DestinationSettingsError(field: "copy_inputs", "'copy_inputs.authorization' is missing")
            }
            if case .keys(let keys) = authorization { bucketCredentials = keys }
            if let keys = AWSKeys(inputs["bucket_credentials"]) { bucketCredentials = keys }
            endpoint = inputs["endpoint_url"]?.stringValue
        }
    }

    /// BigQuery: the table and the service account's key.
    package struct BigQuery: Readable, Equatable {
        package var project: String
        package var dataset: String
        package var table: String
        package var useJSONType: Bool
        package var clientEmail: String
        package var privateKeyID: String
        package var privateKey: String
        package var tokenURI: String

        package init(_ object: JSONObject) throws(DestinationSettingsError) {
            let config = Reader(object)
            project = try config.required("project_id")
            dataset = try config.required("dataset_id")
            table = config.optional("table_id") ?? "events"
            useJSONType = config.flag("use_json_type", default: false)
            for (key, value) in [("project_id", project), ("dataset_id", dataset), ("table_id", table)]
            where value.contains(where: { $0 == "`" || $0 == "\\" || $0.isNewline || $0 == "/" }) {
                throw DestinationSettingsError(field: key, "'\(key)' is not a valid BigQuery name")
            }
            clientEmail = try config.required("client_email")
            privateKeyID = try config.required("private_key_id")
            privateKey = try config.required("private_key")
            tokenURI = try config.required("token_uri")
        }
    }

    /// Snowflake: the account, where to write, and how to sign in.
    package struct Snowflake: Readable, Equatable {
        package enum Authentication: Sendable, Equatable {
            case password(String)
            /// A PEM private key, encrypted when a passphrase is given.
            case keyPair(pem: String, passphrase: String?)
        }
        package var account: String
        package var user: String
        package var authentication: Authentication
        package var database: String
        package var schema: String
        package var warehouse: String
        package var table: String
        package var role: String?

        package init(_ object: JSONObject) throws(DestinationSettingsError) {
            let config = Reader(object)
            account = try config.required("account")
            user = try config.required("user")
            database = try config.required("database")
            schema = try config.required("schema")
            warehouse = try config.required("warehouse")
            table = config.optional("table_name") ?? "events"
            role = config.optional("role")
            guard account.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
                throw DestinationSettingsError(field: "account", "'account' is not a Snowflake account identifier")
            }
            switch object["authentication_type"]?.stringValue ?? (object["private_key"] == nil ? "password" : "keypair") {
            case "password": authentication = .password(try config.required("password"))
            case "keypair":
                authentication = .keyPair(
                    pem: try config.required("private_key"), passphrase: object["private_key_passphrase"]?.stringValue)
            default:
                throw DestinationSettingsError(field: "authentication_type", "'authentication_type' must be 'password' or 'keypair'")
            }
        }
    }

    /// Databricks: the workspace and its service principal (inline or from the integration), the
    /// SQL warehouse, and the table.
    package struct Databricks: Readable, Equatable {
        package var host: String
        package var clientID: String
        package var clientSecret: String
        package var warehouseID: String
        package var catalog: String
        package var schema: String
        package var table: String
        package var variant: Bool
        package var schemaEvolution: Bool

        package init(_ object: JSONObject) throws(DestinationSettingsError) {
            let config = Reader(object, integration: object["integration"]?.objectValue)
            host = try config.required("server_hostname")
            clientID = try config.required("client_id")
            clientSecret = try config.required("client_secret")
            guard let warehouse = Self.warehouseID(httpPath: try config.required("http_path")) else {
                throw DestinationSettingsError(
                    field: "http_path",
                    "'http_path' must name a SQL warehouse (/sql/1.0/warehouses/<id>): the Statement Execution API runs on warehouses")
            }
            warehouseID = warehouse
            catalog = try config.required("catalog")
            schema = try config.required("schema")
            table = try config.required("table_name")
            variant = config.flag("use_variant_type", default: true)
            schemaEvolution = config.flag("use_automatic_schema_evolution", default: true)
        }

        /// The SQL warehouse of an `http_path` (`/sql/1.0/warehouses/<id>`), or nil: the Statement
        /// Execution API runs on warehouses only.
        package static func warehouseID(httpPath: String) -> String? {
            let parts = httpPath.split(separator: "/")
            guard parts.count >= 2, parts[parts.count - 2] == "warehouses", let id = parts.last, !id.isEmpty else { return nil }
            return String(id)
        }
    }

    /// Azure Blob: the account (inline or from the integration), the container, and the files.
    package struct AzureBlob: Readable, Equatable {
        package var connection: AzureConnectionString
        package var container: String
        package var files: Files

        package init(_ object: JSONObject) throws(DestinationSettingsError) {
            let config = Reader(object, integration: object["integration"]?.objectValue)
            guard let connection = AzureConnectionString.parse(config.optional("connection_string") ?? "") else {
                throw DestinationSettingsError(
                    field: "connection_string", "the connection string names no account with a key or a SAS token")
            }
            self.connection = connection
            container = try config.required("container_name")
            files = try Files(Reader(object))
        }
    }

    /// HTTP: the URL batches are posted to, and the project token they carry.
    package struct HTTP: Readable, Equatable {
        package var url: String
        package var token: String

        package init(_ object: JSONObject) throws(DestinationSettingsError) {
            guard case .string(let url)? = object["url"], case .string(let token)? = object["token"] else {
                throw DestinationSettingsError(field: "url", "'url' and 'token' are required")
            }
            self.url = url
            self.token = token
        }
    }

    /// Reads a configuration's keys, looking in the resolved integration first where one is given.
    struct Reader {
        let object: JSONObject
        var integration: JSONObject?

        init(_ object: JSONObject, integration: JSONObject? = nil) {
            self.object = object
            self.integration = integration
        }

        /// A non-empty string, or nil.
        func optional(_ key: String) -> String? {
            if let value = integration?[key]?.stringValue, !value.isEmpty { return value }
            guard case .string(let value)? = object[key], !value.isEmpty else { return nil }
            return value
        }

        func required(_ key: String) throws(DestinationSettingsError) -> String {
            guard let value = optional(key) else { throw DestinationSettingsError(field: key, "'\(key)' is missing") }
            return value
        }

        /// A boolean key: `default` unless the stored value is the other boolean.
        func flag(_ key: String, default value: Bool) -> Bool {
            object[key] == .bool(!value) ? !value : value
        }
    }
}

/// A stored configuration its destination cannot deliver with: the key at fault and what is wrong.
package struct DestinationSettingsError: Error, Equatable, CustomStringConvertible {
    package var field: String
    package var message: String

    package init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    package var description: String { message }
}
