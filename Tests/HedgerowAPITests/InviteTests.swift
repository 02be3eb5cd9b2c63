import Foundation
import HedgerowAPI
import HedgerowConsole
import HedgerowCore
import HedgerowRuntime
import HedgerowStore
import HedgerowTestSupport
import NIOCore
import Testing

/// `/api/organizations/{id}/invites/` (PostHog's fields and rules) and accepting an invite through
/// the console's link.
@Suite("Invites")
struct InviteTests {
    @Test(
        "Create answers PostHog's fields; list, replace, delete; the rules on levels, members and members_can_invite",
        arguments: TestBackend.available)
    func api(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let owner = try await server.createUser("owner@example.com")
            let member = try await server.createUser("member@example.com")
            let org = try await server.createOrganization("Acme", owner: owner)
            try await server.addMember(member, to: org, level: .member)
            let base = "/api/organizations/\(org)/invites/"

            let created = try await server.request(
                "POST", base, key: owner.key, json: ["target_email": "New.Person@EXAMPLE.com", "first_name": "New", "level": 8])
            #expect(created.status == 201, "\(created.text)")
            #expect(
                created.json.objectValue?.keys == [
                    "id", "target_email", "first_name", "emailing_attempt_made", "level", "is_expired", "created_by", "created_at",
                    "updated_at",
                    "message", "private_project_access",
                ])
            #expect(created["target_email"] == "New.Person@example.com")
            #expect(created["level"] == 8)
            #expect(created["is_expired"] == false)
            #expect(created["emailing_attempt_made"] == false)
            #expect(created["created_by"]?["email"] == "owner@example.com")

            // A new invite for the same address replaces the earlier one.
            let again = try await server.request("POST", base, key: owner.key, json: ["target_email": "New.Person@example.com"])
            #expect(again.status == 201)
            let list = try await server.request("GET", base, key: member.key)
            #expect(list["count"] == 1)
            #expect(list["results"]?.arrayValue?.first?["id"] == again["id"])

            try await server.request("POST", base, key: owner.key, json: ["target_email": "member@example.com"])
                .expectError(
                    400, type: "validation_error", code: "invalid_input",
                    detail: "A user with this email address already belongs to the organization.")
            try await server.request("POST", base, key: owner.key, json: ["target_email": "not-an-address"])
                .expectError(400, type: "validation_error", code: "invalid", detail: "Enter a valid email address.", attr: "target_email")
            try await server.request("POST", base, key: owner.key, json: [:])
                .expectError(400, type: "validation_error", code: "required", detail: "This field is required.", attr: "target_email")
            try await server.request("POST", base, key: member.key, json: ["target_email": "boss@example.com", "level": 8])
                .expectError(
                    403, type: "authentication_error", code: "permission_denied",
                    detail: "You can only invite others with a level lower or equal to your own.")
            #expect(try await server.request("POST", base, key: member.key, json: ["target_email": "peer@example.com"]).status == 201)

            // Without members_can_invite, only admins invite or delete.
            #expect(
                try await server.request("PATCH", "/api/organizations/\(org)/", key: owner.key, json: ["members_can_invite": false]).status
                    == 200)
            try await server.request("POST", base, key: member.key, json: ["target_email": "x@example.com"])
                .expectError(
                    403, type: "authentication_error", code: "permission_denied", detail: "Your organization access level is insufficient.")
            let id = try #require(again["id"]?.stringValue)
            #expect(try await server.request("DELETE", base + "\(id)/", key: member.key).status == 403)
            #expect(try await server.request("DELETE", base + "\(id)/", key: owner.key).status == 204)
            #expect(try await server.request("DELETE", base + "\(id)/", key: owner.key).status == 404)

            // Bulk: a list of up to 20.
            let bulk = try await server.request(
                "POST", base + "bulk/", key: owner.key, json: [["target_email": "a@example.com"], ["target_email": "b@example.com"]])
            #expect(bulk.status == 201)
            #expect(bulk.json.arrayValue?.count == 2)
            let tooMany = JSONValue.array((0..<21).map { .object(["target_email": .string("p\($0)@example.com")]) })
            try await server.request("POST", base + "bulk/", key: owner.key, json: tooMany)
                .expectError(
                    400, type: "validation_error", code: "max_length", detail: "A maximum of 20 invites can be sent in a single request.")

            // Another organization's invites are not reachable, and the scope is organization_member's.
            let outsider = try await server.createUser("outsider@example.com")
            #expect(try await server.request("GET", base, key: outsider.key).status == 403)
            let readOnly = try await server.createKey(for: owner, scopes: ["organization_member:read"])
            #expect(try await server.request("GET", base, key: readOnly).status == 200)
            try await server.request("POST", base, key: readOnly, json: ["target_email": "y@example.com"])
                .expectError(
                    403, type: "authentication_error", code: "permission_denied",
                    detail: "API key missing required scope 'organization_member:write'")
        }
    }

    @Test(
        "An invite's link signs a new user up and in; it works once, for its address, within three days", arguments: TestBackend.available)
    func accept(backend: TestBackend) async throws {
        try await TestServer.run(backend, modules: [Console()]) { server in
            let owner = try await server.createUser("owner@example.com", password: Fixtures.consolePassword)
            let org = try await server.createOrganization("Acme", owner: owner)
            let base = "/api/organizations/\(org)/invites/"
            let invite = try await server.request("POST", base, key: owner.key, json: ["target_email": "new@example.com", "level": 8])
            let id = try #require(invite["id"]?.stringValue)

            // Someone signed in with another address cannot take it.
            var wrong = ConsoleClient(server)
            _ = try await server.createUser("other@example.com", password: Fixtures.consolePassword)
            try await wrong.signIn("other@example.com", Fixtures.consolePassword)
            _ = try await wrong.get("/signup/\(id)")
            let refused = try await wrong.post("/signup/\(id)")
            #expect(refused.status == 400)
            #expect(refused.text.contains("This invite is intended for another email address."))

            var browser = ConsoleClient(server)
            let page = try await browser.get("/signup/\(id)")
            #expect(page.status == 200)
            #expect(page.text.contains("You&#39;ve been invited to join Acme") || page.text.contains("You've been invited to join Acme"))
            let short = try await browser.post("/signup/\(id)", [("first_name", "New"), ("password", "short")])
            #expect(short.status == 400)
            let joined = try await browser.post("/signup/\(id)", [("first_name", "New"), ("password", Fixtures.consolePassword)])
            #expect(joined.status == 303, "\(joined.text)")
            #expect(browser.cookies[SignInService.cookieName] != nil)
            let members = try await server.request("GET", "/api/organizations/\(org)/members/", key: owner.key)
            let newMember = members["results"]?.arrayValue?.first { $0["user"]?["email"] == "new@example.com" }
            #expect(newMember?["level"] == 8)
            #expect(try await server.request("GET", base, key: owner.key)["count"] == 0)
            let home = try await browser.get("/organization")
            #expect(home.text.contains("new@example.com") && home.text.contains("Organization: Acme"))
            #expect(try await browser.get("/signup/\(id)").status == 400)

            // Expired: three days after it was made.
            let old = try await server.request("POST", base, key: owner.key, json: ["target_email": "late@example.com"])
            let oldID = try #require(old["id"]?.stringValue)
            try await server.database.transaction { connection in
                try await connection.execute(
                    "UPDATE organization_invites SET created_at = $1 WHERE id = $2",
                    [.int(Timestamp.now().microseconds - 4 * 86_400_000_000), .text(oldID)])
            }
            #expect(try await server.request("GET", base, key: owner.key)["results"]?.arrayValue?.first?["is_expired"] == true)
            var late = ConsoleClient(server)
            let expired = try await late.get("/signup/\(oldID)")
            #expect(expired.status == 400)
            #expect(expired.text.contains("This invite has expired. Please ask your admin for a new one."))
        }
    }
}

extension InviteTests {
    /// The test SMTP server (`Tests/mail/smtp_server.py`, aiosmtpd): messages land in `directory`.
    struct MailServer {
        let process: ChildProcess
        let port: Int
        let directory: String

        static func start(user: String, password: String) throws -> MailServer {
            let port = S3TestServer.freePort()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-mail-\(UUID().uuidString)").path
            let script = ReferenceTools.packageRoot.appendingPathComponent("Tests/mail/smtp_server.py").path
            let process = try ChildProcess(
                try ReferenceTools.python.get(), [script, String(port), directory, user, password], stdin: .pipe, stdout: .pipe)
            let output = FileHandle(fileDescriptor: process.standardOutput!, closeOnDealloc: false)
            var seen = Data()
            while !String(decoding: seen, as: UTF8.self).contains("ready") {
                let chunk = output.availableData
                if chunk.isEmpty { throw ReferenceTools.Failure("the SMTP test server did not start") }
                seen += chunk
            }
            return MailServer(process: process, port: port, directory: directory)
        }

        func stop() {
            process.closeInput()
            _ = process.wait()
        }

        /// Each message's envelope recipients and its text (the base64 body decoded).
        func messages() throws -> [(to: [String], headers: String, text: String)] {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".eml") }.sorted()
            return try names.map { name in
                let raw = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
                let envelope = try JSONParser.parse(
                    Array(
                        try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name.replacingOccurrences(of: ".eml", with: ".json")))))
                let parts = raw.components(separatedBy: "\r\n\r\n")
                let body = Data(base64Encoded: parts.dropFirst().joined().replacingOccurrences(of: "\r\n", with: "")) ?? Data()
                return (
                    envelope["to"]?.arrayValue?.compactMap(\.stringValue) ?? [], parts[0], String(decoding: body, as: UTF8.self)
                )
            }
        }
    }

    @Test(
        "With an SMTP server configured, a new invite is mailed its link (AUTH PLAIN); send_email false mails nothing; a mail server that is down leaves the invite standing"
    )
    func mail() async throws {
        let mail = try MailServer.start(user: "relay", password: "relay-secret")
        defer { mail.stop() }
        try await TestServer.run(
            .sqlite,
            configure: {
                $0.siteURL = "https://hedgerow.example"
                $0.smtp = try? SMTPSettings.parse("smtp://relay:relay-secret@127.0.0.1:\(mail.port)", from: "invites@hedgerow.example")
            }
        ) { server in
            let owner = try await server.createUser("owner@example.com")
            let org = try await server.createOrganization("Acme Ünïcode", owner: owner)
            let base = "/api/organizations/\(org)/invites/"
            let invite = try await server.request(
                "POST", base, key: owner.key, json: ["target_email": "grace@example.com", "first_name": "Grace", "message": "Welcome!"])
            #expect(invite.status == 201)
            #expect(invite["emailing_attempt_made"] == true)
            let id = try #require(invite["id"]?.stringValue)
            let messages = try mail.messages()
            #expect(messages.count == 1)
            let message = try #require(messages.first)
            #expect(message.to == ["grace@example.com"])
            #expect(message.headers.contains("From: invites@hedgerow.example"))
            #expect(message.headers.contains("Subject: =?UTF-8?B?"), "non-ASCII subjects are encoded")
            #expect(message.text.contains("https://hedgerow.example/signup/\(id)"))
            #expect(message.text.contains("Hello Grace,") && message.text.contains("Acme Ünïcode") && message.text.contains("Welcome!"))

            let quiet = try await server.request(
                "POST", base, key: owner.key, json: ["target_email": "quiet@example.com", "send_email": false])
            #expect(quiet["emailing_attempt_made"] == false)
            #expect(try mail.messages().count == 1)
        }
        let nothingListens = S3TestServer.freePort()
        try await TestServer.run(
            .sqlite, configure: { $0.smtp = try? SMTPSettings.parse("smtp://relay:relay-secret@127.0.0.1:\(nothingListens)", from: nil) }
        ) { server in
            let owner = try await server.createUser("owner@example.com")
            let org = try await server.createOrganization("Acme", owner: owner)
            let invite = try await server.request(
                "POST", "/api/organizations/\(org)/invites/", key: owner.key, json: ["target_email": "x@example.com"])
            #expect(invite.status == 201)
            #expect(invite["emailing_attempt_made"] == true)
            #expect(try await server.request("GET", "/api/organizations/\(org)/invites/", key: owner.key)["count"] == 1)
            #expect(try mail.messages().count == 1)
        }
        #expect(throws: SMTPSettings.Invalid.self) { try SMTPSettings.parse("http://mail.example", from: nil) }
        let settings = try SMTPSettings.parse("smtps://user:p%40ss@mail.example", from: nil)
        #expect(settings.port == 465 && settings.implicitTLS && settings.password == "p@ss" && settings.from == "hedgerow@mail.example")
        #expect(!settings.description.contains("p@ss"))
    }
}

extension InviteTests {
    @Test("A mail server that hangs up mid-conversation fails the mail then, not at the time limit")
    func hangUp() async throws {
        let port = S3TestServer.freePort()
        let server = try ChildProcess(
            try ReferenceTools.python.get(),
            [
                "-c",
                """
                import socket, sys
                listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
                print("ready", flush=True)
                connection, _ = listener.accept()
                connection.sendall(b"220 hello\\r\\n")
                connection.recv(1000)
                connection.sendall(b"250-first\\r\\n250 last\\r\\n")
                connection.recv(1000)
                connection.close()
                """,
                String(port),
            ], stdout: .pipe)
        defer { server.signal() }
        _ = FileHandle(fileDescriptor: server.standardOutput!, closeOnDealloc: false).availableData
        var client = SMTPClient(settings: try SMTPSettings.parse("smtp://u:p@127.0.0.1:\(port)", from: nil))
        // A time limit far off: the hang-up itself must end the conversation, however busy the machine.
        client.timeout = .seconds(300)
        let error = await #expect(throws: SMTPClient.Failure.self) { try await client.send(to: "a@example.com", subject: "s", text: "t") }
        #expect(error?.description == "SMTP: the server closed the connection", "\(String(describing: error))")
    }
}
