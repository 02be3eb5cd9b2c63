import Hummingbird
import NIOCore

/// Hummingbird's request context with the client's address (the socket peer), which the limits
/// before authentication count by.
public struct HedgerowRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address; nil when the connection has none (tests without sockets).
    public let clientAddress: String?
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
        channel = source.channel
    }

    /// Stops reading the connection (the answer is still written, then it closes): the rest of an
    /// oversized body is not read and thrown away.
    func stopReading() {
        channel.close(mode: .input, promise: nil)
    }
}
