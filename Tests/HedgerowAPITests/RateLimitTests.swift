import HedgerowAPI
import HedgerowCore
import Testing

@Suite("Rate limiting (API.md §1.3)")
struct RateLimitTests {
    @Test("Past the burst limit a key gets 429 with Retry-After; other keys are unaffected", arguments: TestBackend.available)
    func burstLimitThrottles(backend: TestBackend) async throws {
        try await TestServer.run(
            backend,
            configure: { configuration in
                configuration.rateLimit.enabled = true
                configuration.rateLimit.burstPerMinute = 3
            }
        ) { server in
            let alice = try await server.createUser("alice@example.com")
            let bob = try await server.createUser("bob@example.com")
            for _ in 0..<3 { #expect(try await server.request("GET", "/api/organizations/", key: alice.key).status == 200) }
            let throttled = try await server.request("GET", "/api/organizations/", key: alice.key)
            #expect(throttled.status == 429)
            #expect(throttled["type"] == "throttled_error")
            #expect(throttled["code"] == "throttled")
            let wait = Int(throttled.header("Retry-After") ?? "") ?? 0
            #expect((1...60).contains(wait))
            #expect(throttled["detail"] == .string("Request was throttled. Expected available in \(wait) second\(wait == 1 ? "" : "s")."))
            #expect(try await server.request("GET", "/api/organizations/", key: bob.key).status == 200)
        }
    }

    @Test func slidingWindowsReportTheExactWait() async throws {
        let clock = SecondsClock()
        let limiter = RateLimiter(burstPerMinute: 2, sustainedPerHour: 3, clock: { clock.now })
        try await limiter.check(key: "k")
        clock.now = 10
        try await limiter.check(key: "k")
        clock.now = 20
        await #expect(throws: APIError.throttled(waitSeconds: 40)) { try await limiter.check(key: "k") }
        clock.now = 60.5
        try await limiter.check(key: "k")  // the minute window slid past t=0
        clock.now = 200
        // Sustained: 3 in the hour already (t=0, 10, 60.5) → next at t=3600.
        await #expect(throws: APIError.throttled(waitSeconds: 3400)) { try await limiter.check(key: "k") }
        try await limiter.check(key: "other")
    }

    @Test func throttledMessageIsSingularForOneSecond() {
        #expect(APIError.throttled(waitSeconds: 1).detail == "Request was throttled. Expected available in 1 second.")
        #expect(APIError.throttled(waitSeconds: 5).detail == "Request was throttled. Expected available in 5 seconds.")
    }
}

final class SecondsClock: @unchecked Sendable {
    // Safe: used by one test task at a time, sequentially.
    var now: Double = 0
}
