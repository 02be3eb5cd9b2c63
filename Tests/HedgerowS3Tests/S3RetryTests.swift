import AsyncHTTPClient
import Foundation
import HedgerowS3
import HedgerowTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Testing

/// What the fault front answers instead of passing a request on to the S3 server.
enum Fault: Sendable {
    /// An S3 error answer: the status and the XML error code.
    case answer(Int, String)
    /// No answer for this long (or until the script is released), then a 503: too late for a client
    /// with a shorter timeout. The request is never passed on.
    case stall(Duration)
    /// 200 at once, from the front itself (the request is not passed on).
    case accept
}

/// The faults still to play, one per request, and every request seen.
actor FaultScript {
    private var faults: [Fault]
    private(set) var requests: [String] = []
    private(set) var released = false
    init(_ faults: [Fault]) { self.faults = faults }
    /// Ends the stalls in progress, so that the front can shut down without waiting them out.
    func release() { released = true }
    func next(_ request: String) -> Fault? {
        requests.append(request)
        return faults.isEmpty ? nil : faults.removeFirst()
    }
}

/// The client's retries over real HTTP: a front on a loopback port plays S3's failures (moto has no
/// way to answer 503 on demand), then passes PUTs on to the moto server, which stores the object (its
/// ETag is passed back).
@Suite("S3 client retries")
struct S3RetryTests {
    static func withFaultyFront(
        _ faults: [Fault], _ body: @Sendable (_ front: String, _ script: FaultScript) async throws -> Void
    ) async throws {
        let backend = try S3TestServer.shared.get()
        let script = FaultScript(faults)
        let router = Router()
        let pass: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let fault = await script.next("\(request.method) \(request.uri.path)")
            switch fault {
            case .answer(let status, let code):
                let xml = "<?xml version=\"1.0\"?><Error><Code>\(code)</Code><Message>played by the test</Message></Error>"
                return Response(status: .init(code: status), body: .init(byteBuffer: ByteBuffer(string: xml)))
            case .stall(let duration):
                let end = ContinuousClock.now + duration
                while ContinuousClock.now < end, await !script.released { try await Task.sleep(for: .milliseconds(50)) }
                return Response(status: .serviceUnavailable)
            case .accept:
                return Response(status: .ok)
            case nil:
                break
            }
            var forwarded = HTTPClientRequest(url: backend + request.uri.description)
            forwarded.method = .init(rawValue: request.method.rawValue)
            for field in request.headers where field.name.canonicalName != "host" {
                forwarded.headers.add(name: field.name.rawName, value: field.value)
            }
            forwarded.body = .bytes(try await request.body.collect(upTo: 64 << 20))
            let answer = try await HTTPClient.shared.execute(forwarded, timeout: .seconds(30))
            var headers = HTTPFields()
            headers[.eTag] = answer.headers.first(name: "ETag")
            let bytes = try await answer.body.collect(upTo: 64 << 20)
            return Response(status: .init(code: Int(answer.status.code)), headers: headers, body: .init(byteBuffer: bytes))
        }
        router.put("**", use: pass)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in try await body("http://127.0.0.1:\(try #require(client.port))", script) }
    }

    @Test func serverErrorsAndSlowDownsAreRetriedUntilThePutLands() async throws {
        let direct = try await S3ClientTests.freshBucket("retried")
        try await Self.withFaultyFront([.answer(503, "SlowDown"), .answer(500, "InternalError"), .answer(429, "TooManyRequests")]) {
            front, script in
            let client = try S3ClientTests.client(front, bucket: direct.bucket, attempts: 4)
            let began = ContinuousClock.now
            try await client.putObject("after/three/failures", body: Array("landed".utf8))
            // Backoff of 0.25 s, 0.5 s and 1 s between the four attempts.
            #expect(ContinuousClock.now - began >= .milliseconds(1_750))
            #expect(await script.requests == Array(repeating: "PUT /\(direct.bucket)/after/three/failures", count: 4))
        }
        #expect(try await direct.getObject("after/three/failures") == Array("landed".utf8))
    }

    @Test("a part spooled to a file is read back whole for each attempt, and its signature verifies")
    func spooledPartsAreSentAgainWhole() async throws {
        let direct = try await S3ClientTests.freshBucket("spooled")
        // Three chunks and a bit: the body is streamed from the file in 1 MiB reads.
        let bytes = (0..<(3 * 1024 * 1024 + 12_345)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 10) }
        var spool = try PartSpool()
        try spool.append(bytes[..<1000])
        try spool.append(bytes[1000...])
        let part = spool.seal()
        #expect(part.count == bytes.count)
        try await Self.withFaultyFront([.answer(503, "SlowDown"), .answer(500, "InternalError")]) { front, script in
            let client = try S3ClientTests.client(front, bucket: direct.bucket, attempts: 4)
            try await client.putObject("spooled/object", body: .spooled(part))
            #expect(await script.requests.count == 3)
        }
        #expect(try await direct.getObject("spooled/object") == bytes)
    }

    @Test func theLastFailureIsThrownWhenAttemptsRunOut() async throws {
        let direct = try await S3ClientTests.freshBucket("exhausted")
        try await Self.withFaultyFront([.answer(503, "SlowDown"), .answer(503, "SlowDown")]) { front, script in
            let client = try S3ClientTests.client(front, bucket: direct.bucket, attempts: 2)
            do {
                try await client.putObject("never", body: [1])
                Issue.record("the put succeeded")
            } catch let error as S3Error {
                #expect(error.code == "SlowDown")
                #expect(error.retryable)
            }
            #expect(await script.requests.count == 2)
        }
        #expect(try await direct.listObjects(prefix: "").isEmpty)
    }

    @Test func refusalsAreNotRetried() async throws {
        let direct = try await S3ClientTests.freshBucket("refused")
        try await Self.withFaultyFront([.answer(403, "AccessDenied")]) { front, script in
            let client = try S3ClientTests.client(front, bucket: direct.bucket, attempts: 4)
            do {
                try await client.putObject("denied", body: [1])
                Issue.record("the put succeeded")
            } catch let error as S3Error {
                #expect(error.code == "AccessDenied")
                #expect(!error.retryable)
            }
            #expect(await script.requests.count == 1)
        }
    }

    /// The second attempt is answered by the front itself, so that the time measured is the
    /// client's and not that of moto on a loaded machine; the timeout leaves room for a test process
    /// whose threads are busy with other suites (a 5 s timeout once expired on the second attempt
    /// in CI's parallel phase).
    @Test func aRequestThatTimesOutIsSentAgain() async throws {
        try await Self.withFaultyFront([.stall(.seconds(180)), .accept]) { front, script in
            let client = try S3ClientTests.client(front, bucket: "no-bucket-needed", attempts: 2, timeout: .seconds(20))
            let began = ContinuousClock.now
            try await client.putObject("slow", body: Array("second try".utf8))
            #expect(ContinuousClock.now - began < .seconds(180), "the client waited for the stalled answer")
            #expect(await script.requests.count == 2)
            await script.release()
        }
    }
}
