import Foundation
import HTTPTypes
import HedgerowAPI
import HedgerowCore
import HedgerowExport
import HedgerowRuntime
import HedgerowServer
import HedgerowStore
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// A response as the tests read it.
package struct TestResult: Sendable {
    package let status: Int
    package let headers: HTTPFields
    package let bytes: [UInt8]

    package var json: JSONValue {
        (try? JSONParser.parse(bytes)) ?? .null
    }

    package var text: String { String(decoding: bytes, as: UTF8.self) }

    package subscript(key: String) -> JSONValue? { json[key] }

    /// The integer `id` of the answer (projects and environments).
    package var intID: Int64? {
        if case .int(let id)? = json["id"] { return id }
        return nil
    }

    package func header(_ name: String) -> String? {
        HTTPField.Name(name).flatMap { headers[$0] }
    }

    /// The PostHog error body, checked field by field.
    package func expectError(
        _ status: Int, type: String, code: String, detail: String, attr: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(self.status == status, "status \(self.status): \(text)", sourceLocation: sourceLocation)
        #expect(
            json == .object(["type": .string(type), "code": .string(code), "detail": .string(detail), "attr": JSONValue(attr)]),
            "body: \(text)", sourceLocation: sourceLocation)
    }
}

extension OutboundPolicy {
    /// The tests' own servers (receivers, moto, PostgreSQL) listen on loopback, which the default
    /// policy denies: tests allow it, as `HEDGEROW_DESTINATION_ALLOW_NETWORKS=127.0.0.0/8,::1/128` would.
    package static let loopbackAllowed = OutboundPolicy(allow: [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!])
}

extension EngineConfiguration {
    /// The default engine settings, with loopback destinations allowed.
    package static var forTests: EngineConfiguration {
        var configuration = EngineConfiguration()
        configuration.outbound = .loopbackAllowed
        return configuration
    }
}

/// A user with a key, as tests create them.
package struct TestUser: Sendable {
    package let user: User
    package let key: String
}

/// A running application over a fresh database, driven through Hummingbird's router test client.
package struct TestServer: Sendable {
    package let database: any Database
    package let client: any TestClientProtocol
    package let configuration: HedgerowConfiguration

    /// Runs `body` against a fresh application on `backend`.
    /// `live`: a real socket on a free loopback port (`client.port`), for clients outside the
    /// process (a browser); `modules`: routes mounted beside the API's (the console).
    package static func run(
        _ backend: TestBackend, live: Bool = false, modules: [any RouteModule] = [],
        configure: @Sendable (inout HedgerowConfiguration) -> Void = { _ in },
        _ body: @Sendable (TestServer) async throws -> Void
    ) async throws {
        let (location, cleanup) = try await backend.makeLocation()
        var configuration = HedgerowConfiguration(dataDirectory: NSTemporaryDirectory(), database: location)
        configuration.bootstrapOnEmptyDatabase = false
        configuration.rateLimit.enabled = false
        configuration.runsEngine = false
        configuration.secretKey = "hedgerow-test-secret"
        configuration.engine.outbound = .loopbackAllowed
        configuration.metricsAddress = nil
        // HummingbirdTesting's live client keeps one connection and does not reconnect when the
        // server closes it for idling (which real clients do); a browser test idles longer than
        // the default 30 s between its own requests. Tests of the timeout set their own.
        configuration.readTimeout = .seconds(600)
        configure(&configuration)
        let frozen = configuration
        let database = try await DatabaseFactory.open(location, logger: TestBackend.logger)
        let app = try buildApplication(configuration: frozen, database: database, logger: TestBackend.logger, modules: modules)
        do {
            try await app.application.test(live ? .live : .router) { client in
                try await body(TestServer(database: database, client: client, configuration: frozen))
            }
        } catch {
            await cleanup()
            throw error
        }
        await cleanup()
    }

    // MARK: Fixtures

    package func createUser(
        _ email: String, scopes: [String] = ["*"], scopedOrganizations: [String]? = nil, scopedTeams: [Int64]? = nil
    )
        async throws -> TestUser
    {
        let accounts = AccountService(database: database)
        let user = try await accounts.createUser(email: email, password: nil, firstName: "Test")
        let key = try await accounts.createKey(
            email: email, label: "test", scopes: scopes, scopedOrganizations: scopedOrganizations, scopedTeams: scopedTeams)
        return TestUser(user: user, key: key)
    }

    /// Another key for an existing user.
    package func createKey(
        for user: TestUser, scopes: [String], scopedOrganizations: [String]? = nil, scopedTeams: [Int64]? = nil
    ) async throws -> String {
        try await AccountService(database: database).createKey(
            email: user.user.email, label: "extra", scopes: scopes, scopedOrganizations: scopedOrganizations,
            scopedTeams: scopedTeams)
    }

    /// Creates an organization through the API, owned by `owner`; returns its id.
    package func createOrganization(_ name: String, owner: TestUser) async throws -> String {
        let result = try await request("POST", "/api/organizations/", key: owner.key, json: .object(["name": .string(name)]))
        #expect(result.status == 201, "create organization: \(result.text)")
        return result["id"]?.stringValue ?? ""
    }

    package func addMember(_ user: TestUser, to organizationID: String, level: MembershipLevel) async throws {
        try await AccountService(database: database).addMember(
            organizationID: organizationID, email: user.user.email, level: level)
    }

    // MARK: Requests

    package func request(
        _ method: String, _ path: String, key: String? = nil, json: JSONValue? = nil, body: [UInt8]? = nil,
        headers extra: [(String, String)] = []
    ) async throws -> TestResult {
        var headers = HTTPFields()
        if let key { headers[.authorization] = "Bearer \(key)" }
        var payload = body
        if let json {
            payload = JSONWriter.bytes(json)
            headers[.contentType] = "application/json"
        }
        for (name, value) in extra {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return try await client.execute(
            uri: path, method: HTTPRequest.Method(rawValue: method) ?? .get, headers: headers,
            body: payload.map { ByteBuffer(bytes: $0) }
        ) { response in
            TestResult(status: Int(response.status.code), headers: response.headers, bytes: Array(response.body.readableBytesView))
        }
    }
}
