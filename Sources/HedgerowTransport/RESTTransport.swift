import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// How every REST client of Hedgerow's (S3, Azure Blob, BigQuery and Google's token endpoint,
/// Databricks, Snowflake and its stages) talks HTTP: send one request, collect the answer's body up
/// to a size limit, and turn a failure to do either into the client's own connection error. What a
/// status and a body mean stays with each client (`classify`); `withBackoff` retries around it.
package struct RESTTransport: Sendable {
    package let http: HTTPClient

    package init(http: HTTPClient) { self.http = http }

    /// An answer, whatever its status.
    package struct Answer: Sendable {
        package var status: Int
        package var headers: HTTPHeaders
        package var body: ByteBuffer

        package var bytes: [UInt8] { Array(buffer: body) }
        package var isSuccess: Bool { (200..<300).contains(status) }
    }

    /// Sends `request` once and collects at most `limit` bytes of the answer. A connection that
    /// fails, a timeout or a body over the limit is thrown as `unreachable(what went wrong)`;
    /// `classify` turns an answer into the client's error, or returns nil when it is the result.
    package func send<E: Error>(
        _ request: HTTPClientRequest, timeout: TimeAmount, limit: Int, unreachable: (String) -> E,
        classify: (Answer) -> E? = { _ in nil }
    ) async throws(E) -> Answer {
        let answer: Answer
        do {
            let response = try await http.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: limit)
            answer = Answer(status: Int(response.status.code), headers: response.headers, body: body)
        } catch {
            throw unreachable("\(error)")
        }
        if let error = classify(answer) { throw error }
        return answer
    }

    /// `send`, tried up to `attempts` times while it throws an error that is `retryable`, with
    /// `withBackoff`'s pauses; `request` is made anew for each attempt (signatures carry the time).
    package func send<E: RetryableError>(
        attempts: Int, cancelled: @autoclosure () -> E, timeout: TimeAmount, limit: Int, unreachable: (String) -> E,
        classify: (Answer) -> E?, request: () -> HTTPClientRequest
    ) async throws(E) -> Answer {
        try await withBackoff(attempts: attempts, retryable: { $0.retryable }, cancelled: cancelled()) { () async throws(E) -> Answer in
            try await send(request(), timeout: timeout, limit: limit, unreachable: unreachable, classify: classify)
        }
    }
}

/// An error that says whether trying again may succeed (network errors, 5xx, throttling).
package protocol RetryableError: Error {
    var retryable: Bool { get }
}
