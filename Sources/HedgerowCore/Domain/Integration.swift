import Foundation

/// A stored set of credentials an environment's destinations refer to by `integration_id`
/// (PostHog's integrations). `config` is what may be shown; the kind's secret keys are sealed apart
/// and never returned.
package struct Integration: Sendable, Equatable {
    package var id: Int64
    package var teamID: Int64
    package var kind: IntegrationKind
    package var config: JSONObject
    package var errors: String
    package var createdAt: Timestamp
    package var createdByID: Int64?

    package init(
        id: Int64, teamID: Int64, kind: IntegrationKind, config: JSONObject, errors: String = "", createdAt: Timestamp,
        createdByID: Int64?
    ) {
        self.id = id
        self.teamID = teamID
        self.kind = kind
        self.config = config
        self.errors = errors
        self.createdAt = createdAt
        self.createdByID = createdByID
    }

    /// What PostHog shows as the integration's name: the workspace's host, the storage account, or
    /// the access key's id without its secret.
    package var displayName: String {
        switch kind {
        case .databricks: config["server_hostname"]?.stringValue ?? kind.rawValue
        case .azureBlob: config["account_name"]?.stringValue ?? kind.rawValue
        case .awsS3: config["aws_access_key_id"]?.stringValue ?? kind.rawValue
        }
    }
}

/// The kinds of integration Hedgerow's destinations use.
package enum IntegrationKind: String, Sendable, CaseIterable {
    case azureBlob = "azure-blob"
    case databricks
    case awsS3 = "aws-s3"

    /// The keys the kind's `config` takes when created; secret ones are sealed.
    package var fields: [(name: String, secret: Bool)] {
        switch self {
        case .azureBlob: [("connection_string", true)]
        case .databricks: [("server_hostname", false), ("client_id", true), ("client_secret", true)]
        case .awsS3: [("aws_access_key_id", false), ("aws_secret_access_key", true)]
        }
    }

    /// The destination types that use an integration of this kind.
    package var destinations: Set<DestinationType> {
        switch self {
        case .azureBlob: [.azureBlob]
        case .databricks: [.databricks]
        case .awsS3: [.redshift]
        }
    }
}

/// A create request for an integration, validated.
package struct IntegrationInput: Sendable {
    package var kind: IntegrationKind
    /// Keys shown in responses.
    package var config: JSONObject
    /// Keys sealed at rest.
    package var secrets: JSONObject

    /// Parses `{"kind": …, "config": {…}}`. The error messages are PostHog's where it has one.
    package static func parse(_ body: JSONValue) throws(APIError) -> IntegrationInput {
        let object = try BodyObject.require(body)
        guard let kindValue = object["kind"] else { throw APIError.required("kind") }
        let name = try FieldParser.choice(kindValue, attr: "kind", choices: Set(IntegrationKind.allCases.map(\.rawValue)))!
        let kind = IntegrationKind(rawValue: name)!
        let given: JSONObject
        switch object["config"] {
        case nil, .null?: given = JSONObject()
        case .object(let config)?: given = config
        case let other?: throw APIError.invalid("config", "Expected a dictionary of items but got type \"\(other.pythonTypeName)\".")
        }
        let known = Set(kind.fields.map(\.name))
        let unknown = given.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw APIError.invalidInput(
                "Configuration has unknown field/s: " + unknown.map { "'\($0)'" }.joined(separator: ", "), attr: "config")
        }
        var input = IntegrationInput(kind: kind, config: JSONObject(), secrets: JSONObject())
        for field in kind.fields {
            guard case .string(let value)? = given[field.name], !value.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw APIError.invalidInput(missingMessage(kind), attr: "config")
            }
            if field.secret { input.secrets[field.name] = .string(value) } else { input.config[field.name] = .string(value) }
        }
        switch kind {
        case .azureBlob:
            guard let account = AzureConnectionString.parse(given["connection_string"]?.stringValue ?? "") else {
                throw APIError.invalidInput(
                    "The connection string must name an AccountName with an AccountKey or a SharedAccessSignature", attr: "config")
            }
            input.config["account_name"] = .string(account.accountName)
        case .databricks:
            let host = given["server_hostname"]?.stringValue ?? ""
            guard !host.contains("/"), !host.contains(" ") else {
                throw APIError.invalidInput("Server hostname must be a host name, without a scheme or a path", attr: "config")
            }
        case .awsS3: break
        }
        return input
    }

    static func missingMessage(_ kind: IntegrationKind) -> String {
        switch kind {
        case .azureBlob: "Connection string must be provided"
        case .databricks: "Server hostname, client ID, and client secret must be provided"
        case .awsS3: "AWS access key ID and secret access key must be provided"
        }
    }
}

/// An Azure Storage connection string (`Key=Value;…`): the account, its key or a SAS token, and
/// where the Blob service is.
package struct AzureConnectionString: Sendable, Equatable {
    package var accountName: String
    package var accountKey: String?
    package var sharedAccessSignature: String?
    /// `BlobEndpoint`, or `DefaultEndpointsProtocol://AccountName.blob.EndpointSuffix`.
    package var blobEndpoint: String

    package static func parse(_ text: String) -> AzureConnectionString? {
        var values: [String: String] = [:]
        for part in text.split(separator: ";", omittingEmptySubsequences: true) {
            guard let equals = part.firstIndex(of: "=") else { continue }
            let key = part[..<equals].trimmingCharacters(in: .whitespaces)
            values[key.lowercased()] = String(part[part.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        }
        guard let account = values["accountname"], !account.isEmpty else { return nil }
        let key = values["accountkey"].flatMap { $0.isEmpty ? nil : $0 }
        let sas = values["sharedaccesssignature"].flatMap { $0.isEmpty ? nil : $0 }
        guard key != nil || sas != nil else { return nil }
        var endpoint: String
        if let given = values["blobendpoint"], !given.isEmpty {
            endpoint = given
        } else {
            let scheme = values["defaultendpointsprotocol"] ?? "https"
            guard scheme == "https" || scheme == "http" else { return nil }
            endpoint = "\(scheme)://\(account).blob.\(values["endpointsuffix"] ?? "core.windows.net")"
        }
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        guard endpoint.hasPrefix("https://") || endpoint.hasPrefix("http://") else { return nil }
        return AzureConnectionString(accountName: account, accountKey: key, sharedAccessSignature: sas, blobEndpoint: endpoint)
    }
}
