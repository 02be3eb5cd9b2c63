import Foundation
import HedgerowCore
import HedgerowStore
import HedgerowTestSupport
import Testing

@testable import HedgerowAPI

/// PostHog's integrations API for the kinds Hedgerow's destinations use.
@Suite("Integrations")
struct IntegrationTests {

    static func base(_ team: Int64) -> String { "/api/environments/\(team)/integrations" }

    @Test("Create answers 201 with PostHog's fields; secrets are sealed at rest and never shown", arguments: TestBackend.available)
    func create(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, _, owner) = try await Fixtures.environment(server)
            let created = try await server.request("POST", Self.base(team) + "/", key: owner.key, json: Fixtures.databricksIntegration)
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json.objectValue?.keys == ["id", "kind", "config", "created_at", "created_by", "errors", "display_name"])
            #expect(created["kind"] == "databricks")
            #expect(created["config"] == .object(["server_hostname": "dbc-1234.cloud.databricks.com"]))
            #expect(created["display_name"] == "dbc-1234.cloud.databricks.com")
            #expect(created["created_by"]?["email"] == "owner@example.com")
            #expect(!created.text.contains("sp-secret-42") && !created.text.contains("sp-id"))
            let id = Fixtures.integrationID(created)
            let stored = try await server.database.read {
                try await $0.first("SELECT config, sensitive_config FROM integrations WHERE id = $1", [.int(id)])
            }
            #expect(stored?.string("sensitive_config")?.contains("sp-secret-42") == false)
            #expect(stored?.string("sensitive_config") != nil)

            let azure = try await server.request("POST", Self.base(team) + "/", key: owner.key, json: Fixtures.azureIntegration())
            #expect(azure.status == 201, "\(azure.text)")
            #expect(azure["config"] == .object(["account_name": "acmestore"]))
            #expect(!azure.text.contains("c2VjcmV0a2V5"))

            let list = try await server.request("GET", Self.base(team) + "/", key: owner.key)
            #expect(list["count"] == 2)
            #expect(list["results"]?.arrayValue?.first?["kind"] == "azure-blob")
            let filtered = try await server.request("GET", Self.base(team) + "/?kind=databricks", key: owner.key)
            #expect(filtered["count"] == 1)
            let one = try await server.request("GET", "/api/projects/\(team)/integrations/\(id)/", key: owner.key)
            #expect(one.status == 200)
            #expect(one["id"] == .int(id))
            #expect(!one.text.contains("sp-secret-42"))
        }
    }

    @Test("Bad input is a 400 in PostHog's format and stores nothing", arguments: TestBackend.available)
    func validation(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, _, owner) = try await Fixtures.environment(server)
            let path = Self.base(team) + "/"
            try await server.request("POST", path, key: owner.key, json: .object(["kind": "slack"])).expectError(
                400, type: "validation_error", code: "invalid_choice", detail: "\"slack\" is not a valid choice.", attr: "kind")
            try await server.request("POST", path, key: owner.key, json: .object(["config": .object([:])])).expectError(
                400, type: "validation_error", code: "required", detail: "This field is required.", attr: "kind")
            try await server.request(
                "POST", path, key: owner.key,
                json: .object(["kind": "databricks", "config": .object(["server_hostname": "h", "client_id": "i"])])
            ).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "Server hostname, client ID, and client secret must be provided", attr: "config")
            try await server.request(
                "POST", path, key: owner.key,
                json: .object([
                    "kind": "databricks", "config": .object(["server_hostname": "h", "client_id": "i", "client_secret": "s", "x": "y"]),
                ])
            ).expectError(
                400, type: "validation_error", code: "invalid_input", detail: "Configuration has unknown field/s: 'x'", attr: "config")
            try await server.request(
                "POST", path, key: owner.key,
                json: .object(["kind": "azure-blob", "config": .object(["connection_string": "AccountName=a"])])
            ).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "The connection string must name an AccountName with an AccountKey or a SharedAccessSignature", attr: "config")
            try await server.request(
                "POST", path, key: owner.key,
                json: .object([
                    "kind": "databricks",
                    "config": .object(["server_hostname": "https://x.cloud.databricks.com/", "client_id": "i", "client_secret": "s"]),
                ])
            ).expectError(
                400, type: "validation_error", code: "invalid_input",
                detail: "Server hostname must be a host name, without a scheme or a path", attr: "config")
            let count = try await server.database.read { try await $0.first("SELECT COUNT(*) AS n FROM integrations") }
            #expect(count?.int("n") == 0)
        }
    }

    @Test("Integrations are scoped like the environment's other resources", arguments: TestBackend.available)
    func scoping(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, _, owner) = try await Fixtures.environment(server)
            let created = try await server.request("POST", Self.base(team) + "/", key: owner.key, json: Fixtures.databricksIntegration)
            let id = Fixtures.integrationID(created)
            let stranger = try await server.createUser("stranger@example.com")
            _ = try await server.createOrganization("Other", owner: stranger)
            let foreign = try await server.request("GET", Self.base(team) + "/\(id)/", key: stranger.key)
            #expect(foreign.status == 403 || foreign.status == 404, "\(foreign.text)")
            let foreignDelete = try await server.request("DELETE", Self.base(team) + "/\(id)/", key: stranger.key)
            #expect(foreignDelete.status == 403 || foreignDelete.status == 404)
            let reader = try await server.createKey(for: owner, scopes: ["integration:read"])
            #expect(try await server.request("GET", Self.base(team) + "/", key: reader).status == 200)
            try await server.request("POST", Self.base(team) + "/", key: reader, json: Fixtures.databricksIntegration).expectError(
                403, type: "authentication_error", code: "permission_denied", detail: "API key missing required scope 'integration:write'")
            let exportsOnly = try await server.createKey(for: owner, scopes: ["batch_export:read"])
            #expect(try await server.request("GET", Self.base(team) + "/", key: exportsOnly).status == 403)
            #expect(try await server.request("GET", Self.base(team) + "/999/", key: owner.key).status == 404)
            #expect(try await server.request("GET", Self.base(team) + "/abc/", key: owner.key).status == 404)
            #expect(try await server.request("DELETE", Self.base(team) + "/\(id)/", key: owner.key).status == 204)
            #expect(try await server.request("GET", Self.base(team) + "/\(id)/", key: owner.key).status == 404)
        }
    }

    @Test("Connection strings: keys, SAS tokens and endpoints")
    func connectionStrings() {
        let parsed = AzureConnectionString.parse(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=a2V5;EndpointSuffix=core.windows.net")
        #expect(parsed?.blobEndpoint == "https://acme.blob.core.windows.net")
        #expect(parsed?.accountKey == "a2V5")
        let local = AzureConnectionString.parse(
            "AccountName=dev;SharedAccessSignature=sv=2023&sig=x%3D;BlobEndpoint=http://127.0.0.1:9/dev/")
        #expect(local?.blobEndpoint == "http://127.0.0.1:9/dev")
        #expect(local?.sharedAccessSignature == "sv=2023&sig=x%3D")
        #expect(AzureConnectionString.parse("AccountName=acme") == nil)
        #expect(AzureConnectionString.parse("AccountName=acme;AccountKey=k;DefaultEndpointsProtocol=ftp") == nil)
    }
}
