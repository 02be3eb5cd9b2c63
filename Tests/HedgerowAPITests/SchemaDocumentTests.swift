import Foundation
import HedgerowCore
import HedgerowTestSupport
import Testing

/// `/api/schema/` (issue #12): the OpenAPI document built from the route table.
@Suite("OpenAPI document")
struct SchemaDocumentTests {
    static func operations(_ document: JSONValue) -> [(path: String, method: String, operation: JSONValue)] {
        (document["paths"]?.objectValue?.entries.map { $0 } ?? []).flatMap { path, item in
            (item.objectValue?.entries.map { $0 } ?? []).map { (path, $0.0, $0.1) }
        }
    }

    @Test("Served without a key; every route under /api/ is in it with its scope, PostHog's parameter names and components")
    func document() async throws {
        try await TestServer.run(.sqlite) { server in
            let answer = try await server.request("GET", "/api/schema/")
            #expect(answer.status == 200)
            let document = answer.json
            #expect(document["openapi"] == "3.0.3")
            let operations = Self.operations(document)
            // 3 × 22 batch-export operations, 2 × 4 integration operations, 4 invite operations, 38 others,
            // the schema itself.
            #expect(operations.count == 123, "\(operations.count)")
            let invites = try #require(document["paths"]?["/api/organizations/{organization_id}/invites/bulk/"])
            #expect(invites["post"]?["security"] == .array([.object(["PersonalAPIKeyAuth": ["organization_member:write"]])]))
            #expect(
                invites["post"]?["requestBody"]?["content"]?["application/json"]?["schema"]
                    == .object(["type": "array", "items": .object(["$ref": "#/components/schemas/OrganizationInvite"])]))
            let integrations = try #require(document["paths"]?["/api/environments/{project_id}/integrations/{id}/"])
            #expect(integrations["delete"]?["security"] == .array([.object(["PersonalAPIKeyAuth": ["integration:write"]])]))
            #expect(Set(operations.compactMap { $0.operation["operationId"]?.stringValue }).count == operations.count)
            // Nothing outside /api/ (capture, health, metrics) is described.
            #expect(operations.allSatisfy { $0.path.hasPrefix("/api/") })
            let runs = try #require(document["paths"]?["/api/environments/{project_id}/batch_exports/{batch_export_id}/runs/{id}/"])
            #expect(runs["get"]?["security"] == .array([.object(["PersonalAPIKeyAuth": ["batch_export:read"]])]))
            #expect(
                runs["get"]?["parameters"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["project_id", "batch_export_id", "id"])
            #expect(
                runs["get"]?["responses"]?["200"]?["content"]?["application/json"]?["schema"]
                    == .object(["$ref": "#/components/schemas/BatchExportRun"]))
            let create = try #require(document["paths"]?["/api/organizations/"]?["post"])
            #expect(
                create["requestBody"]?["content"]?.objectValue?.keys == [
                    "application/json", "application/x-www-form-urlencoded", "multipart/form-data",
                ])
            #expect(document["paths"]?["/api/schema/"]?["get"]?["security"] == [])
            // Every component a route names exists, and every route's scope is the one the table enforces.
            let components = try #require(document["components"]?["schemas"]?.objectValue)
            for (_, _, operation) in operations {
                for reference in Self.references(operation) {
                    #expect(components[String(reference.dropFirst("#/components/schemas/".count))] != nil, "\(reference)")
                }
            }
            #expect(components["Organization"]?["properties"]?["member_count"] == .object(["type": "integer", "readOnly": true]))
            #expect(components["Team"]?["properties"]?.objectValue?.keys.count == 77)
            #expect(components["ProjectBackwardCompat"]?["properties"]?.objectValue?.keys.count == 63)
        }
    }

    @Test("openapi-spec-validator accepts the document")
    func validates() async throws {
        let python = try ReferenceTools.python.get()
        try await TestServer.run(.sqlite) { server in
            let answer = try await server.request("GET", "/api/schema/")
            let file = try ReferenceTools.temporaryFile(answer.bytes, suffix: ".json")
            defer { try? FileManager.default.removeItem(at: file) }
            let program =
                "import sys, json; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')"
            let result = try ReferenceTools.run(python, ["-c", program, file.path])
            #expect(String(decoding: result.stdout, as: UTF8.self).contains("valid"), "\(result.stderr)")
        }
    }

    static func references(_ value: JSONValue) -> [String] {
        switch value {
        case .object(let object):
            object.entries.flatMap { key, value in key == "$ref" ? [value.stringValue ?? ""] : references(value) }
        case .array(let values): values.flatMap(references)
        default: []
        }
    }
}
