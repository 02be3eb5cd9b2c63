import Foundation
import HedgerowCore
import HedgerowTestSupport
import Testing

/// Bodies as `multipart/form-data`, what generated clients send by default (issue #12): text
/// parts are strings (coerced by each field as DRF does), `application/json` parts are JSON.
@Suite("multipart/form-data bodies")
struct MultipartBodyTests {
    static let boundary = "hedgerow-test-boundary-7d2f"

    static func form(_ parts: [(name: String, value: String, json: Bool)]) -> [UInt8] {
        var text = ""
        for part in parts {
            text += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\"\r\n"
            text += "Content-Type: \(part.json ? "application/json" : "text/plain")\r\n\r\n\(part.value)\r\n"
        }
        return Array((text + "--\(boundary)--\r\n").utf8)
    }

    static var contentType: (String, String) { ("Content-Type", "multipart/form-data; boundary=\(boundary)") }

    @Test("Organizations and batch exports are created and patched from multipart bodies", arguments: TestBackend.available)
    func multipartBodies(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let world = try await Fixtures.world(server)
            let organization = try await server.request(
                "POST", "/api/organizations/", key: world.owner.key,
                body: Self.form([("name", "Multipart Inc", false), ("members_can_invite", "False", false)]), headers: [Self.contentType])
            #expect(organization.status == 201, "\(organization.text)")
            #expect(organization["name"] == "Multipart Inc" && organization["members_can_invite"] == false)
            let export = try await server.request(
                "POST", world.base + "/", key: world.member.key,
                body: Self.form([
                    ("name", "from a form", false), ("interval", "hour", false), ("paused", "True", false),
                    ("destination", #"{"type": "NoOp", "config": {}}"#, true),
                    ("filters", #"[{"key": "$browser", "operator": "exact", "value": "Chrome", "type": "event"}]"#, true),
                ]), headers: [Self.contentType])
            #expect(export.status == 201, "\(export.text)")
            #expect(export["paused"] == true && export["destination"]?["type"] == "NoOp")
            #expect(export["filters"]?.arrayValue?.first?["key"] == "$browser")
            let id = try #require(export["id"]?.stringValue)
            let patched = try await server.request(
                "PATCH", world.base + "/\(id)/", key: world.member.key, body: Self.form([("name", "renamed", false)]),
                headers: [Self.contentType])
            #expect(patched["name"] == "renamed", "\(patched.text)")
        }
    }

    @Test("Malformed multipart bodies and file parts are 400s that change nothing", arguments: TestBackend.available)
    func malformedMultipart(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let owner = try await server.createUser("owner@example.com")
            let cases: [([UInt8], String)] = [
                (Array("no boundary here".utf8), "multipart/form-data; boundary=\(Self.boundary)"),
                (Self.form([("name", "x", false)]), "multipart/form-data"),
                (
                    Array("--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nunterminated".utf8),
                    "multipart/form-data; boundary=\(Self.boundary)"
                ),
                (Self.form([("destination", "{not json", true)]), "multipart/form-data; boundary=\(Self.boundary)"),
                (
                    Array(
                        "--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"a.png\"\r\n\r\nPNG\r\n--\(Self.boundary)--\r\n"
                            .utf8),
                    "multipart/form-data; boundary=\(Self.boundary)"
                ),
            ]
            for (body, type) in cases {
                let result = try await server.request(
                    "POST", "/api/organizations/", key: owner.key, body: body, headers: [("Content-Type", type)])
                #expect(result.status == 400, "\(type): \(result.text)")
                #expect(result.json.objectValue?.keys == ["type", "code", "detail", "attr"])
            }
            #expect(try await server.request("GET", "/api/organizations/", key: owner.key)["count"] == 0)
        }
    }

    @Test func parserReadsPartsAsDRFDoes() throws {
        let body = Self.form([("a", "1", false), ("b", #"{"x": [1, 2]}"#, true), ("a", "second", false), ("c", "", false)])
        let object = try MultipartForm.parse(body, boundary: Self.boundary)
        #expect(object.keys == ["a", "b", "c"])
        #expect(object["a"] == "1" && object["b"] == .object(["x": [1, 2]]) && object["c"] == "")
        #expect(MultipartForm.boundary(in: "multipart/form-data; charset=utf-8; boundary=\"q-1\"") == "q-1")
        #expect(MultipartForm.boundary(in: "multipart/form-data") == nil)
    }
}
