import HedgerowAPI
import HedgerowCore
import HedgerowRuntime
import HedgerowTestSupport
import Testing

@Suite("Pagination (docs/api.md, Conventions)")
struct PaginationTests {
    /// A user in `count` organizations.
    func seed(_ server: TestServer, count: Int) async throws -> TestUser {
        let alice = try await server.createUser("alice@example.com")
        for index in 0..<count { _ = try await server.createOrganization("Org \(index)", owner: alice) }
        return alice
    }

    @Test("next and previous are absolute URLs with sorted, re-encoded query parameters", arguments: TestBackend.available)
    func nextAndPrevious(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await seed(server, count: 5)
            let first = try await server.request(
                "GET", "/api/organizations/?limit=2&zeta=a+b&alpha=%C3%A9", key: alice.key, headers: [("Host", "example.test:8000")])
            #expect(first["count"] == 5)
            #expect(first["results"]?.arrayValue?.count == 2)
            #expect(first["next"] == "http://example.test:8000/api/organizations/?alpha=%C3%A9&limit=2&offset=2&zeta=a+b")
            #expect(first["previous"] == .null)
            let middle = try await server.request("GET", "/api/organizations/?limit=2&offset=2", key: alice.key, headers: [("Host", "h")])
            #expect(middle["next"] == "http://h/api/organizations/?limit=2&offset=4")
            #expect(middle["previous"] == "http://h/api/organizations/?limit=2")
            let last = try await server.request("GET", "/api/organizations/?limit=2&offset=4", key: alice.key, headers: [("Host", "h")])
            #expect(last["next"] == .null)
            #expect(last["previous"] == "http://h/api/organizations/?limit=2&offset=2")
            #expect(last["results"]?.arrayValue?.count == 1)
            let names = middle["results"]?.arrayValue?.map { $0["name"] }
            #expect(names == ["Org 2", "Org 3"])
        }
    }

    @Test("Bad limits fall back to 100 and bad offsets to 0", arguments: TestBackend.available)
    func badParametersFallBack(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let alice = try await seed(server, count: 3)
            for query in ["limit=0", "limit=-3", "limit=abc", "limit=", "offset=-1", "offset=x", "limit=99999999999999999999999"] {
                let result = try await server.request("GET", "/api/organizations/?\(query)", key: alice.key)
                #expect(result.status == 200, "\(query)")
                #expect(result["results"]?.arrayValue?.count == 3, "\(query)")
                #expect(result["next"] == .null, "\(query)")
                #expect(result["previous"] == .null, "\(query)")
            }
            let past = try await server.request("GET", "/api/organizations/?offset=50", key: alice.key, headers: [("Host", "h")])
            #expect(past["results"] == [])
            #expect(past["count"] == 3)
            #expect(past["previous"] == "http://h/api/organizations/?limit=100")
            let huge = try await server.request(
                "GET", "/api/organizations/?offset=9223372036854775807&limit=9223372036854775807", key: alice.key)
            #expect(huge.status == 200)
            #expect(huge["results"] == [])
        }
    }

    @Test("HEDGEROW_SITE_URL is the base of absolute URLs", arguments: TestBackend.available)
    func siteURLIsTheBase(backend: TestBackend) async throws {
        try await TestServer.run(backend, configure: { $0.siteURL = "https://hedgerow.example.com" }) { server in
            let alice = try await seed(server, count: 2)
            let result = try await server.request("GET", "/api/organizations/?limit=1", key: alice.key, headers: [("Host", "ignored")])
            #expect(result["next"] == "https://hedgerow.example.com/api/organizations/?limit=1&offset=1")
        }
    }

    @Test func queryStringEncodesLikePython() {
        let query = QueryString(parsing: "b=2&a=x%20y&a=%2B&c")
        #expect(query.values("a") == ["x y", "+"])
        #expect(query["c"] == "")
        #expect(query.encoded == "a=x+y&a=%2B&b=2&c=")
        #expect(query.setting("a", to: "z").encoded == "a=z&b=2&c=")
        #expect(QueryString(parsing: "k=%E2%82%AC~._-/").encoded == "k=%E2%82%AC~._-%2F")
    }
}
