import Dispatch
import Foundation
import HedgerowAPI
import HedgerowConsole
import HedgerowCore
import HedgerowExport
import HedgerowRuntime
import HedgerowS3
import HedgerowTestSupport
import HummingbirdTesting
import Testing

/// The console in headless Chromium (Debian's `chromium` and `chromium-driver`, driven by Selenium
/// from the test virtualenv): `Tests/console/browser_test.py` against a live server with the
/// export engine running and an S3 server that checks signatures. Screenshots go to
/// `HEDGEROW_CONSOLE_SCREENSHOTS` (`docs/console/`, shown by docs/console.md), else to a temporary directory.
@Suite("Console in a browser", .serialized)
struct ConsoleBrowserTests {
    @Test(
        "Sign in; an S3 export with a wrong key shows the field's error; fixed, tested, backfilled to Completed; logs; pause; a key used with curl; an invite accepted in a second browser; a CSRF-less post refused",
        arguments: TestBackend.available)
    func journey(backend: TestBackend) async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] where !FileManager.default.isExecutableFile(atPath: tool) {
            Issue.record("\(tool) is missing: scripts/install-system-packages --test installs Debian's chromium and chromium-driver")
            return
        }
        let python = try ReferenceTools.python.get()
        // A server that checks signatures, with one IAM user (three unauthenticated calls make it).
        let strict = try S3TestServer.start(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "3"])
        defer { strict.stop() }
        let (keyID, secret) = try S3TestServer.makeIAMUser(on: strict.url)
        let bucket = S3TestServer.bucketName("console")
        try await S3Client(
            endpoint: try #require(S3Endpoint.parse(strict.url, virtualHosted: false)), region: "us-east-1", bucket: bucket,
            credentials: S3Credentials(accessKeyID: keyID, secretAccessKey: secret)
        ).createBucket()
        let screenshots =
            ProcessInfo.processInfo.environment["HEDGEROW_CONSOLE_SCREENSHOTS"].map {
                $0.hasPrefix("/") ? $0 : ReferenceTools.packageRoot.appendingPathComponent($0).path
            } ?? FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-console-\(UUID().uuidString)").path

        try await TestServer.run(
            backend, live: true, modules: [Console()],
            configure: {
                $0.runsEngine = true
                $0.engine.pollInterval = .milliseconds(200)
                $0.engine.outbound = .loopbackAllowed
            }
        ) { server in
            let owner = try await server.createUser("owner@example.com", password: Fixtures.consolePassword)
            _ = try await server.createOrganization("Acme", owner: owner)
            guard case .int(let team)? = try await server.request("GET", "/api/users/@me/", key: owner.key)["team"]?["id"] else {
                Issue.record("no current team")
                return
            }
            let seeded = try await Fixtures.seedHour(server, team: team, count: 12)
            let port = try #require(server.client.port)
            let settings: JSONValue = .object([
                "base": .string("http://127.0.0.1:\(port)"), "email": "owner@example.com", "password": .string(Fixtures.consolePassword),
                "invitee": "grace@example.com", "screenshots": .string(screenshots),
                "s3": .object([
                    "endpoint": .string(strict.url), "bucket": .string(bucket), "key_id": .string(keyID), "secret": .string(secret),
                ]),
                "backfill": .object(["start": "2024-01-01T10:00", "end": "2024-01-01T11:00", "records": .int(Int64(seeded.count))]),
            ])
            let script = ReferenceTools.packageRoot.appendingPathComponent("Tests/console/browser_test.py").path
            let output = await withCheckedContinuation { continuation in
                // Off the cooperative pool: the browser talks to this process's server meanwhile.
                DispatchQueue.global().async {
                    continuation.resume(
                        returning: Result {
                            try ReferenceTools.run(python, [script, JSONWriter.string(settings)], environment: ["SE_OFFLINE": "true"])
                        })
                }
            }
            let result = try output.get()
            let stdout = String(decoding: result.stdout, as: UTF8.self)
            #expect(result.status == 0, "browser test failed:\n\(stdout)\n\(result.stderr)")
            #expect(stdout.hasSuffix("ok\n"), "\(stdout)")
            // What the browser did, as the API sees it.
            let exports = try await server.request("GET", "/api/environments/\(team)/batch_exports/", key: owner.key)
            let export = try #require(exports["results"]?.arrayValue?.first)
            #expect(export["paused"] == true)
            #expect(export["destination"]?["config"]?["aws_secret_access_key"] == nil)
            let members = try await server.request("GET", "/api/organizations/@current/members/", key: owner.key)
            #expect(
                members["results"]?.arrayValue?.contains { $0["user"]?["email"] == "grace@example.com" && $0["level"] == 8 } == true,
                "\(members)")
        }
    }
}
