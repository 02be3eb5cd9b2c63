import Foundation

/// Destination types and their configuration (docs/destinations.md): which keys each type takes, which are
/// required, their types and defaults, and which are secrets (encrypted at rest, never returned).
package enum DestinationType: String, Sendable, CaseIterable {
    case s3 = "S3"
    case awsS3 = "AwsS3"
    case s3Compatible = "S3Compatible"
    case postgres = "Postgres"
    case redshift = "Redshift"
    case bigQuery = "BigQuery"
    case snowflake = "Snowflake"
    case databricks = "Databricks"
    case azureBlob = "AzureBlob"
    case http = "HTTP"
    case noOp = "NoOp"

    /// The S3 family shares one configuration.
    var configurationFamily: DestinationType {
        self == .awsS3 || self == .s3Compatible ? .s3 : self
    }
}

/// One configuration key.
package struct DestinationField: Sendable {
    package enum Kind: String, Sendable {
        case string = "str"
        case integer = "int"
        case boolean = "bool"
        case object = "dict"
        case stringList = "list[str]"
    }

    package let name: String
    package let kind: Kind
    package let required: Bool
    package let defaultValue: JSONValue?
    package let secret: Bool
    /// For integers: the values accepted (docs/security.md, bounds at the border).
    package let range: ClosedRange<Int64>?

    init(
        _ name: String, _ kind: Kind = .string, required: Bool = false, default defaultValue: JSONValue? = nil, secret: Bool = false,
        range: ClosedRange<Int64>? = nil
    ) {
        self.name = name
        self.kind = kind
        self.required = required
        self.defaultValue = defaultValue
        self.secret = secret
        self.range = range
    }
}

/// Every destination type's configuration: its fields with their kinds, defaults and bounds, which
/// of them are secrets and where each secret may be sent, and the validation PostHog's API applies.
package enum DestinationConfig {
    /// `max_file_size_mb`'s largest value: 5 TiB, S3's largest object.
    package static let maximumFileSizeMegabytes: Int64 = 5 * 1024 * 1024
    static let fileSize = DestinationField("max_file_size_mb", .integer, range: 1...maximumFileSizeMegabytes)
    static let integrationID = DestinationField("integration_id", .integer, range: 1...Int64(Int32.max))
    /// A TCP port.
    package static let portRange: ClosedRange<Int64> = 1...65_535

    /// Keys every type takes: event-name allow and deny lists.
    static let common = [DestinationField("include_events", .stringList), DestinationField("exclude_events", .stringList)]

    package static func fields(for type: DestinationType) -> [DestinationField] {
        let specific: [DestinationField]
        switch type.configurationFamily {
        case .s3, .awsS3, .s3Compatible:
            specific = [
                DestinationField("bucket_name", required: true), DestinationField("region", required: true),
                DestinationField("prefix", required: true), DestinationField("aws_access_key_id", secret: true),
                DestinationField("aws_secret_access_key", secret: true), DestinationField("endpoint_url"),
                DestinationField("compression"), DestinationField("encryption"), DestinationField("kms_key_id"),
                DestinationField("file_format", default: "JSONLines"), fileSize,
                DestinationField("use_virtual_style_addressing", .boolean, default: false),
            ]
        case .postgres, .redshift:
            specific =
                [
                    DestinationField("user", required: true, secret: true), DestinationField("password", required: true, secret: true),
                    DestinationField("host", required: true), DestinationField("database", required: true),
                    DestinationField("schema", default: "public"), DestinationField("table_name", default: "events"),
                    DestinationField("port", .integer, default: .int(type == .redshift ? 5439 : 5432), range: portRange),
                    DestinationField("has_self_signed_cert", .boolean, default: false),
                ]
                + (type == .redshift
                    ? [
                        DestinationField("properties_data_type", default: "varchar"), DestinationField("mode", default: "INSERT"),
                        DestinationField("copy_inputs", .object),
                    ] : [])
        case .bigQuery:
            specific = [
                DestinationField("project_id", required: true), DestinationField("dataset_id", required: true),
                DestinationField("private_key", required: true, secret: true),
                DestinationField("private_key_id", required: true, secret: true),
                DestinationField("token_uri", required: true, secret: true), DestinationField("client_email", required: true, secret: true),
                DestinationField("table_id", default: "events"), DestinationField("use_json_type", .boolean, default: false),
            ]
        case .snowflake:
            specific = [
                DestinationField("account", required: true), DestinationField("user", required: true, secret: true),
                DestinationField("database", required: true), DestinationField("warehouse", required: true),
                DestinationField("schema", required: true), DestinationField("table_name", default: "events"),
                DestinationField("authentication_type"), DestinationField("password", secret: true),
                DestinationField("private_key", secret: true), DestinationField("private_key_passphrase", secret: true),
                DestinationField("role"),
            ]
        case .databricks:
            specific = [
                integrationID, DestinationField("server_hostname"),
                DestinationField("client_id", secret: true), DestinationField("client_secret", secret: true),
                DestinationField("http_path", required: true),
                DestinationField("catalog", required: true), DestinationField("schema", required: true),
                DestinationField("table_name", required: true), DestinationField("use_variant_type", .boolean, default: true),
                DestinationField("use_automatic_schema_evolution", .boolean, default: true),
            ]
        case .azureBlob:
            specific = [
                integrationID, DestinationField("connection_string", secret: true),
                DestinationField("container_name", required: true),
                DestinationField("prefix", default: ""), DestinationField("compression"),
                DestinationField("file_format", default: "JSONLines"), fileSize,
            ]
        case .http:
            specific = [DestinationField("url", required: true), DestinationField("token", required: true, secret: true)]
        case .noOp:
            specific = [DestinationField("arg", default: "")]
        }
        return specific + common
    }

    /// The hosts a configuration connects to, with the field each comes from (for the outbound
    /// policy's check when an export is saved).
    package static func hosts(in config: JSONObject, type: DestinationType) -> [(field: String, host: String)] {
        func host(ofURL field: String) -> [(field: String, host: String)] {
            guard case .string(let url)? = config[field], let host = URLComponents(string: url)?.host, !host.isEmpty else { return [] }
            return [(field, host)]
        }
        switch type {
        case .http: return host(ofURL: "url")
        case .bigQuery: return host(ofURL: "token_uri")
        case .s3, .awsS3, .s3Compatible: return host(ofURL: "endpoint_url")
        case .postgres, .redshift:
            var found: [(field: String, host: String)] = []
            if case .string(let host)? = config["host"], !host.isEmpty { found.append(("host", host)) }
            if case .string(let url)? = config["copy_inputs"]?["endpoint_url"], let host = URLComponents(string: url)?.host, !host.isEmpty {
                found.append(("copy_inputs.endpoint_url", host))
            }
            return found
        case .databricks:
            guard case .string(let host)? = config["server_hostname"], !host.isEmpty else { return [] }
            return [("server_hostname", host)]
        case .azureBlob:
            guard case .string(let text)? = config["connection_string"], let parsed = AzureConnectionString.parse(text),
                let host = URLComponents(string: parsed.blobEndpoint)?.host
            else { return [] }
            return [("connection_string", host)]
        default: return []
        }
    }

    /// The fields that decide where a type's secrets are sent: a host, a port, an endpoint, an
    /// account, a token URI, or whether the server's certificate is verified.
    static func secretRoutes(for type: DestinationType) -> [[String]] {
        switch type {
        case .s3, .awsS3, .s3Compatible: [["endpoint_url"]]
        case .postgres: [["host"], ["port"], ["has_self_signed_cert"]]
        case .redshift: [["host"], ["port"], ["has_self_signed_cert"], ["copy_inputs", "endpoint_url"]]
        case .bigQuery: [["token_uri"]]
        case .snowflake: [["account"]]
        case .databricks: [["server_hostname"]]
        case .azureBlob: [["connection_string"]]
        case .http: [["url"]]
        case .noOp: []
        }
    }

    /// A saved export's secrets go only where they were saved for. PATCH, PUT and test steps merge
    /// the stored secrets under the request's configuration; when the request changes a field of
    /// `secretRoutes` (in `merged`, against `existing`), every secret stored in `existing` must come
    /// again in the request (`given`), or 400 keyed on the first missing secret's field.
    static func checkSecretsBound(type: DestinationType, given: JSONObject, merged: JSONObject, existing: JSONObject) throws(APIError) {
        func value(_ object: JSONObject, _ path: some Collection<String>) -> JSONValue? {
            guard let first = path.first else { return nil }
            let found = object[first]
            if path.count == 1 { return found.flatMap { $0.isNull ? nil : $0 } }
            guard case .object(let inner)? = found else { return nil }
            return value(inner, path.dropFirst())
        }
        guard let moved = secretRoutes(for: type).first(where: { value(merged, $0) != value(existing, $0) }) else { return }
        func paths(_ object: JSONObject, _ prefix: [String]) -> [[String]] {
            object.entries.flatMap { entry -> [[String]] in
                if case .object(let inner) = entry.value, !secretFields(for: type).contains(entry.key) {
                    return paths(inner, prefix + [entry.key])
                }
                return [prefix + [entry.key]]
            }
        }
        for path in paths(secretPart(existing, type: type), []) {
            switch value(given, path) {
            case .string(let text)? where !text.isEmpty: continue
            case .object?, .int?: continue
            default:
                throw APIError.invalidInput(
                    "'\(path.joined(separator: "."))' must be given again when '\(moved.joined(separator: "."))' changes:"
                        + " a stored secret is sent only where it was saved for.",
                    attr: path.last ?? "destination")
            }
        }
    }

    package static func secretFields(for type: DestinationType) -> Set<String> {
        var names = Set(fields(for: type).filter(\.secret).map(\.name))
        // Redshift's COPY credentials sit inside `copy_inputs` (PostHog's secret fields).
        if type == .redshift { names.formUnion(["aws_access_key_id", "aws_secret_access_key"]) }
        return names
    }

    /// The destination types whose credentials live in an integration (PostHog's, `integration_id`)
    /// or inline (docs/destinations.md): the integration kind, and the inline keys that stand for it.
    package static func credentials(for type: DestinationType) -> (kind: IntegrationKind, inline: [String])? {
        switch type {
        case .databricks: (.databricks, ["server_hostname", "client_id", "client_secret"])
        case .azureBlob: (.azureBlob, ["connection_string"])
        default: nil
        }
    }

    /// The integrations a configuration refers to: `integration_id`, and for Redshift the aws-s3
    /// integrations `copy_inputs.authorization` and `copy_inputs.bucket_credentials` may name.
    package static func integrationReferences(in config: JSONObject, type: DestinationType) -> [(field: String, id: Int64)] {
        var references: [(field: String, id: Int64)] = []
        if case .int(let id)? = config["integration_id"] { references.append(("integration_id", id)) }
        if type == .redshift, case .object(let inputs)? = config["copy_inputs"] {
            for key in ["authorization", "bucket_credentials"] {
                if case .int(let id)? = inputs[key] { references.append(("copy_inputs." + key, id)) }
            }
        }
        return references
    }

    /// Only the secrets of a configuration, at any depth (what is sealed at rest); merged back into
    /// the redacted configuration with `deepMerge`, it gives the configuration again.
    package static func secretPart(_ config: JSONObject, type: DestinationType) -> JSONObject {
        let secrets = secretFields(for: type)
        func keep(_ object: JSONObject) -> JSONObject {
            var result = JSONObject()
            for entry in object.entries {
                if secrets.contains(entry.key) {
                    result[entry.key] = entry.value
                } else if case .object(let inner) = entry.value {
                    let part = keep(inner)
                    if !part.isEmpty { result[entry.key] = .object(part) }
                }
            }
            return result
        }
        return keep(config)
    }

    static let s3Compressions: [String: [String]] = [
        "JSONLines": ["gzip", "brotli"], "Parquet": ["zstd", "lz4", "snappy", "gzip", "brotli"],
    ]

    /// Validates a configuration for `type` and returns it with values coerced and defaults filled
    /// in. With `existing` (PATCH), `config` is merged into it deeply first and missing required
    /// keys are not reported.
    package static func validate(
        type: DestinationType, config: JSONValue, model: ExportModel, existing: JSONObject? = nil
    ) throws(APIError) -> JSONObject {
        guard case .object(let given) = config else {
            throw APIError.invalidInput("Configuration must be an object.", attr: "destination")
        }
        var merged = existing.map { deepMerge($0, given) } ?? given
        let fields = self.fields(for: type)
        let known = Set(fields.map(\.name))
        let unknown = merged.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw APIError.invalidInput(
                "Configuration has unknown field/s: " + unknown.map { "'\($0)'" }.joined(separator: ", "), attr: "destination")
        }
        if existing == nil {
            for field in fields where field.required && (merged[field.name] == nil || merged[field.name] == .null) {
                throw APIError.invalidInput("Configuration missing required field: '\(field.name)'", attr: "destination")
            }
        }
        for field in fields {
            guard let value = merged[field.name] else {
                if let defaultValue = field.defaultValue { merged[field.name] = defaultValue }
                continue
            }
            let coerced = try coerce(value, to: field.kind)
            if let range = field.range, case .int(let number) = coerced, !range.contains(number) {
                throw APIError.invalidInput(
                    "Configuration field '\(field.name)' must be between \(range.lowerBound) and \(range.upperBound).", attr: "destination")
            }
            merged[field.name] = coerced
        }
        if let existing { try checkSecretsBound(type: type, given: given, merged: merged, existing: existing) }
        if type.configurationFamily == .s3 || type == .azureBlob {
            let format = merged["file_format"]?.stringValue ?? "JSONLines"
            guard let compressions = s3Compressions[format] else {
                throw APIError.invalidInput(
                    "File format \(format) is not supported. Supported file formats are ['Parquet', 'JSONLines']", attr: "destination")
            }
            if let compression = merged["compression"]?.stringValue, !compressions.contains(compression) {
                throw APIError.invalidInput(
                    "Compression \(compression) is not supported for file format \(format). Supported compressions are ["
                        + compressions.map { "'\($0)'" }.joined(separator: ", ") + "]", attr: "destination")
            }
        }
        if type == .snowflake {
            switch merged["authentication_type"]?.stringValue ?? "password" {
            case "password":
                if existing == nil, merged["password"]?.stringValue?.isEmpty ?? true {
                    throw APIError.invalidInput("Password is required if authentication type is password", attr: "destination")
                }
            case "keypair":
                if existing == nil, merged["private_key"]?.stringValue?.isEmpty ?? true {
                    throw APIError.invalidInput("Private key is required if authentication type is key pair", attr: "destination")
                }
            case let other:
                throw APIError.invalidInput(
                    "Authentication type '\(other)' is not supported. Supported types are ['password', 'keypair']", attr: "destination")
            }
        }
        if type == .redshift {
            try validateRedshift(merged, creating: existing == nil)
        }
        if let (kind, inline) = credentials(for: type), merged["integration_id"]?.isNull ?? true,
            let missing = inline.first(where: { (merged[$0]?.stringValue ?? "").isEmpty })
        {
            throw APIError.invalidInput(
                "Configuration missing required field: '\(missing)' (or give the id of a '\(kind.rawValue)' integration as 'integration_id')",
                attr: "destination")
        }
        if type == .databricks, let path = merged["http_path"]?.stringValue, !path.contains("/warehouses/") {
            throw APIError.invalidInput(
                "http_path must name a SQL warehouse (/sql/1.0/warehouses/<id>): Databricks exports run on SQL warehouses",
                attr: "destination")
        }
        if type == .azureBlob, let text = merged["connection_string"]?.stringValue, AzureConnectionString.parse(text) == nil {
            throw APIError.invalidInput(
                "The connection string must name an AccountName with an AccountKey or a SharedAccessSignature", attr: "destination")
        }
        if type == .http, model != .events {
            throw APIError.invalidInput("HTTP batch exports only support the events model", attr: "destination")
        }
        return merged
    }

    /// Redshift's `properties_data_type`, `mode` and, for COPY, `copy_inputs` (PostHog's shape:
    /// `s3_bucket`, `region_name`, `s3_key_prefix`, `authorization` as an IAM role ARN, "default",
    /// keys or an aws-s3 integration id, optional `bucket_credentials` as keys or an integration id).
    static func validateRedshift(_ config: JSONObject, creating: Bool) throws(APIError) {
        func invalid(_ message: String) -> APIError { APIError.invalidInput(message, attr: "destination") }
        let dataType = config["properties_data_type"]?.stringValue ?? "varchar"
        guard ["varchar", "super"].contains(dataType) else {
            throw invalid("Properties data type '\(dataType)' is not supported. Supported types are ['varchar', 'super']")
        }
        let mode = config["mode"]?.stringValue ?? "INSERT"
        guard ["INSERT", "COPY"].contains(mode) else {
            throw invalid("Mode '\(mode)' is not supported. Supported modes are ['INSERT', 'COPY']")
        }
        guard mode == "COPY" else { return }
        guard case .object(let inputs)? = config["copy_inputs"] else { throw invalid("'copy_inputs' are required when mode is 'COPY'") }
        for key in ["s3_bucket", "region_name"] where (inputs[key]?.stringValue ?? "").isEmpty {
            throw invalid("'copy_inputs' missing required field: '\(key)'")
        }
        // `endpoint_url` (Hedgerow's): an S3-compatible store for the files, where Redshift can read them.
        let known: Set<String> = ["s3_bucket", "region_name", "s3_key_prefix", "authorization", "bucket_credentials", "endpoint_url"]
        let unknown = inputs.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw invalid("'copy_inputs' has unknown field/s: " + unknown.map { "'\($0)'" }.joined(separator: ", "))
        }
        func checkKeys(_ value: JSONValue?, field: String, required: Bool) throws(APIError) {
            switch value {
            case nil, .null?:
                if required { throw invalid("'copy_inputs' missing required field: '\(field)'") }
            case .int?: break
            case .string(let role)?:
                guard field == "authorization", role == "default" || role.hasPrefix("arn:aws:iam::") else {
                    throw invalid("'copy_inputs.\(field)' must be an IAM role ARN, 'default', AWS keys or an integration id")
                }
            case .object(let keys)?:
                // On PATCH, stored keys are merged in before this check.
                guard !creating || (keys["aws_access_key_id"]?.stringValue != nil && keys["aws_secret_access_key"]?.stringValue != nil)
                else {
                    throw invalid("'copy_inputs.\(field)' needs 'aws_access_key_id' and 'aws_secret_access_key'")
                }
            default:
                throw invalid("'copy_inputs.\(field)' must be an IAM role ARN, 'default', AWS keys or an integration id")
            }
        }
        try checkKeys(inputs["authorization"], field: "authorization", required: true)
        try checkKeys(inputs["bucket_credentials"], field: "bucket_credentials", required: false)
    }

    /// Coerces a value as PostHog's config validation does (`"true"`, `"5432"` become a bool or an
    /// int), or 400 naming the types.
    static func coerce(_ value: JSONValue, to kind: DestinationField.Kind) throws(APIError) -> JSONValue {
        func mismatch() -> APIError {
            APIError.invalidInput(
                "Configuration has invalid type: got '\(value.pythonTypeName)', expected '\(kind.rawValue)'", attr: "destination")
        }
        switch (kind, value) {
        case (_, .null): return .null
        case (.string, .string): return value
        case (.integer, .int): return value
        case (.integer, .string(let text)):
            guard let integer = Int64(text.trimmingCharacters(in: .whitespaces)) else { throw mismatch() }
            return .int(integer)
        case (.boolean, .bool): return value
        case (.boolean, .string(let text)):
            switch text.lowercased() {
            case "true", "1", "yes": return .bool(true)
            case "false", "0", "no": return .bool(false)
            default: throw mismatch()
            }
        case (.object, .object): return value
        case (.stringList, .array(let items)):
            guard items.allSatisfy({ $0.stringValue != nil }) else { throw mismatch() }
            return value
        default: throw mismatch()
        }
    }

    /// `patch` merged into `base`: objects key by key, recursively; anything else replaced.
    package static func deepMerge(_ base: JSONObject, _ patch: JSONObject) -> JSONObject {
        var merged = base
        for entry in patch.entries {
            if case .object(let inner)? = merged[entry.key], case .object(let patchInner) = entry.value {
                merged[entry.key] = .object(deepMerge(inner, patchInner))
            } else {
                merged[entry.key] = entry.value
            }
        }
        return merged
    }

    /// The configuration without its secrets, at any depth, as it may be shown.
    package static func redacted(_ config: JSONObject, type: DestinationType) -> JSONObject {
        let secrets = secretFields(for: type)
        func strip(_ object: JSONObject) -> JSONObject {
            var result = JSONObject()
            for entry in object.entries where !secrets.contains(entry.key) {
                switch entry.value {
                case .object(let inner): result[entry.key] = .object(strip(inner))
                case .array(let items): result[entry.key] = .array(items.map { $0.objectValue.map { .object(strip($0)) } ?? $0 })
                default: result[entry.key] = entry.value
                }
            }
            return result
        }
        return strip(config)
    }
}
