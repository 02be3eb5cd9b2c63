import Hummingbird
import NIOCore
import Synchronization

/// Hummingbird's request context with the client's address (the socket peer), which the limits
/// before authentication count by.
package struct HedgerowRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    /// The peer's IP address; nil when the connection has none (tests without sockets).
    package let clientAddress: String?
    let channel: any Channel

    package init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
        channel = source.channel
    }

    /// Stops reading the connection (the answer is still written, then it closes): the rest of an
    /// oversized body is not read and thrown away.
    func stopReading() {
        channel.close(mode: .input, promise: nil)
    }

    /// Stops reading the connection `timeout` from now unless the deadline is cancelled first: a
    /// body still arriving then ends, and the deadline says it passed.
    func readDeadline(after timeout: Duration) -> ReadDeadline {
        let passed = ReadDeadline.Flag()
        let scheduled = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { [channel] in
            passed.value.store(true, ordering: .relaxed)
            channel.close(mode: .input, promise: nil)
        }
        return ReadDeadline(flag: passed, scheduled: scheduled)
    }
}

/// The deadline of a request's body (`HEDGEROW_HTTP_READ_TIMEOUT_SECONDS`): a timer on the
/// connection's event loop, cancelled once the body has arrived.
struct ReadDeadline: Sendable {
    final class Flag: Sendable {
        let value = Atomic(false)
    }

    let flag: Flag
    let scheduled: Scheduled<Void>

    /// Whether the deadline passed (and the connection stopped reading).
    var passed: Bool { flag.value.load(ordering: .relaxed) }

    func cancel() { scheduled.cancel() }
}
