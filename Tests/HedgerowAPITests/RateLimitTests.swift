import Foundation
import HedgerowCore
import HedgerowRuntime
import HedgerowTestSupport
import Testing

@testable import HedgerowAPI

@Suite("Rate limiting (docs/api.md, Conventions)")
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

    @Test(
        "Failed authentications are throttled per client address; past the limit only failures are refused",
        arguments: TestBackend.available)
    func failedAuthenticationsThrottled(backend: TestBackend) async throws {
        try await TestServer.run(
            backend,
            configure: { configuration in
                configuration.rateLimit.enabled = true
                configuration.rateLimit.authenticationFailuresPerMinute = 3
                configuration.metricsToken = "m"
                // The limiter's windows are clock minutes (approximate across a boundary): a clock
                // standing at the start of one keeps every attempt inside it, however slow the machine.
                configuration.limiterClock = { 1_800_000_000 }
            }
        ) { server in
            let alice = try await server.createUser("alice@example.com")
            // No credentials at all is not a failed attempt.
            for _ in 0..<5 { #expect(try await server.request("GET", "/api/organizations/").status == 401) }
            #expect(try await server.request("GET", "/api/organizations/", key: "phx_wrong1").status == 401)
            #expect(try await server.request("GET", "/api/organizations/?personal_api_key=phx_wrong2").status == 401)
            let capture = try await server.request(
                "POST", "/e/", json: .object(["api_key": "phc_unknown", "event": "e", "distinct_id": "d"]))
            #expect(capture.status == 401)
            // The address is now slowed down, but only its failures: a valid key from it still works
            // (issue #31 §11: one client with a wrong token must not lock out every user behind a proxy).
            #expect(try await server.request("GET", "/api/organizations/", key: alice.key).status == 200)
            let throttled = try await server.request("GET", "/api/organizations/", key: "phx_wrong3")
            #expect(throttled.status == 429 && throttled["code"] == "throttled")
            #expect((1...60).contains(Int(throttled.header("Retry-After") ?? "") ?? 0))
            let again = try await server.request(
                "POST", "/e/", json: .object(["api_key": "phc_unknown", "event": "e", "distinct_id": "d"]))
            #expect(again.status == 429)
            #expect(try await server.request("GET", "/api/organizations/", key: alice.key).status == 200)
            // Routes without credentials still answer.
            #expect(try await server.request("GET", "/_health").status == 200)
            let metrics = try await server.request("GET", "/metrics", headers: [("Authorization", "Bearer m")])
            #expect(metrics.text.contains("hedgerow_rate_limited_total{limit=\"authentication_failures\"} 2"), "\(metrics.text)")
        }
    }

    @Test("Capture is capped per project token; other tokens are unaffected", arguments: TestBackend.available)
    func captureCappedPerToken(backend: TestBackend) async throws {
        try await TestServer.run(
            backend,
            configure: { configuration in
                configuration.rateLimit.enabled = true
                configuration.rateLimit.capturePerMinute = 2
                configuration.metricsToken = "m"
                // A clock standing still inside one window (the limiter is approximate across a boundary).
                configuration.limiterClock = { 1_800_000_000 }
            }
        ) { server in
            let (_, token, _) = try await Fixtures.environment(server)
            func capture(_ token: String) async throws -> TestResult {
                try await server.request("POST", "/e/", json: .object(["api_key": .string(token), "event": "e", "distinct_id": "d"]))
            }
            #expect(try await capture(token).status == 200)
            #expect(try await capture(token).status == 200)
            let limited = try await capture(token)
            #expect(limited.status == 429 && limited["type"] == "throttled_error", "\(limited.text)")
            #expect(limited.header("Retry-After") != nil)
            // An unknown token is a separate key: it fails authentication, not the cap.
            #expect(try await capture("phc_another").status == 401)
            let metrics = try await server.request("GET", "/metrics", headers: [("Authorization", "Bearer m")])
            #expect(metrics.text.contains("hedgerow_rate_limited_total{limit=\"capture_token\"} 1"), "\(metrics.text)")
        }
    }

    @Test func windowLimiterWeighsThePreviousWindow() {
        let clock = SecondsClock()
        let limiter = WindowLimiter(limit: 4, perSeconds: 60, clock: { clock.now })
        for _ in 0..<4 { #expect(limiter.hit("a") == nil) }
        #expect(limiter.hit("a") == 60)
        #expect(limiter.hit("b") == nil)
        clock.now = 75  // a quarter into the next window: 4 × 0.75 = 3 still count
        #expect(limiter.hit("a") == nil)
        #expect(limiter.hit("a") == 45)
        clock.now = 200  // two windows on: nothing counts
        #expect(limiter.wait(for: "a") == nil)
        limiter.record("c")
        #expect(limiter.wait(for: "c") == nil)
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
