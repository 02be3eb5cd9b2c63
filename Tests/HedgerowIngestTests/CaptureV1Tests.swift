import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowStore
import HedgerowTestSupport
import Testing

/// Capture v1 (`POST /i/v1/analytics/events`, issue #12): Bearer token, compressed bodies, and
/// per-event verdicts.
@Suite("Capture v1")
struct CaptureV1Tests {
    static func event(_ uuid: String, name: String = "v1 event", distinctID: JSONValue = "u1", options: JSONObject = [:]) -> JSONValue {
        .object([
            "event": .string(name), "uuid": .string(uuid), "distinct_id": distinctID, "timestamp": "2024-05-01T10:00:00Z",
            "options": .object(options), "properties": .object(["plan": "pro", "$set": .object(["tier": "gold"])]),
            "session_id": "s-1",
        ])
    }

    @Test("Events are judged one by one; retries are idempotent; every body encoding is read", arguments: TestBackend.available)
    func perEventVerdicts(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (team, token, _) = try await Fixtures.environment(server)
            let good = "0190a000-0000-7000-8000-000000000001"
            let noPerson = "0190a000-0000-7000-8000-000000000002"
            let batch: JSONValue = .object([
                "created_at": .string(Timestamp.now().iso8601),
                "batch": [
                    Self.event(good), Self.event(noPerson, distinctID: "u2", options: ["process_person_profile": false]),
                    Self.event("0190a000-0000-7000-8000-000000000003", distinctID: nil),
                    .object(["event": "no uuid", "distinct_id": "u", "timestamp": "2024-05-01T10:00:00Z"]),
                ],
            ])
            let body = JSONWriter.bytes(batch)
            let answer = try await Fixtures.postCaptureV1(server, token: token, body: body)
            #expect(answer.status == 200, "\(answer.text)")
            let results = try #require(answer["results"]?.objectValue)
            #expect(results[good] == .object(["result": "ok"]))
            #expect(results[noPerson] == .object(["result": "ok"]))
            #expect(results["0190a000-0000-7000-8000-000000000003"]?["result"] == "drop")
            #expect(results["0190a000-0000-7000-8000-000000000003"]?["details"]?.stringValue?.contains("distinct_id") == true)
            #expect(results["batch[3]"]?["result"] == "drop")
            // The same batch again (an SDK retry), gzip-, zlib- and zstd-encoded: every event once.
            let zlib = try ReferenceTools.run(
                "python3", ["-c", "import sys, zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))"],
                input: Data(body)
            ).stdout
            let zstd = try #require(Compression.zstd.streamCompressor())
            var zstdBody: [UInt8] = []
            zstd.compress(body, into: &zstdBody)
            zstd.finish(into: &zstdBody)
            for (encoding, bytes) in [("gzip", Gzip.compress(body)), ("deflate", Array(zlib)), ("zstd", zstdBody)] {
                let again = try await Fixtures.postCaptureV1(server, token: token, body: bytes, encoding: encoding)
                #expect(again.status == 200 && again["results"]?[good] == .object(["result": "ok"]), "\(encoding): \(again.text)")
            }
            let stored = try await Fixtures.stored(server, team: team)
            #expect(stored.count == 2)
            let first = try #require(stored.first { $0.uuid == good })
            let properties = try JSONParser.parse(first.properties)
            #expect(properties["$lib"] == "posthog-test" && properties["$lib_version"] == "1.2.3")
            #expect(properties["$session_id"] == "s-1" && properties["$set"] == .object(["tier": "gold"]))
            #expect(first.personID != nil)
            #expect(try #require(stored.first { $0.uuid == noPerson }).personProperties == nil)
        }
    }

    @Test(
        "Tokens: none is 401, an unknown one is 401 even when every event is dropped; bad encodings are 4xx",
        arguments: TestBackend.available)
    func tokensAndEncodings(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let (_, token, _) = try await Fixtures.environment(server)
            let body = JSONWriter.bytes(.object(["batch": [Self.event("0190a000-0000-7000-8000-000000000009")]]))
            try await Fixtures.postCaptureV1(server, token: nil, body: body).expectError(
                401, type: "authentication_error", code: "invalid_api_key",
                detail: "API key not provided. You can find your project API key in your project settings.")
            try await Fixtures.postCaptureV1(server, token: "phc_unknown", body: body).expectError(
                401, type: "authentication_error", code: "invalid_api_key",
                detail: "Project API key invalid. You can find your project API key in your project settings.")
            let dropped = JSONWriter.bytes(.object(["batch": [.object(["event": "x"])]]))
            #expect(try await Fixtures.postCaptureV1(server, token: "phc_unknown", body: dropped).status == 401)
            #expect(try await Fixtures.postCaptureV1(server, token: token, body: Array("not gzip".utf8), encoding: "gzip").status == 400)
            #expect(try await Fixtures.postCaptureV1(server, token: token, body: body, encoding: "br").status == 415)
            #expect(try await Fixtures.postCaptureV1(server, token: token, body: Array("{}".utf8)).status == 400)
        }
    }
}
