import HedgerowCore
import NIOCore
import Synchronization

/// Open connections per client address (the TCP peer): past `limit`, a new connection from that
/// address is closed as soon as it opens. Trusted proxies (`HEDGEROW_TRUSTED_PROXIES`) carry many
/// clients' connections and are not capped.
package final class ConnectionLimit: Sendable {
    package let limit: Int
    let exempt: ClientAddress
    private let open = Mutex([String: Int]())

    package init(limit: Int, exempt: ClientAddress) {
        self.limit = limit
        self.exempt = exempt
    }

    /// Counts a connection from `address` in; false (nothing counted) when the address is at its limit.
    func admit(_ address: String) -> Bool {
        if exempt.trusted(address) { return true }
        return open.withLock { table in
            let count = table[address, default: 0]
            guard count < limit else { return false }
            table[address] = count + 1
            return true
        }
    }

    func release(_ address: String) {
        if exempt.trusted(address) { return }
        open.withLock { table in
            guard let count = table[address] else { return }
            table[address] = count > 1 ? count - 1 : nil
        }
    }

    /// The channel handler that applies the limit (one per connection).
    package func handler() -> any RemovableChannelHandler { Handler(limit: self) }

    final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let limit: ConnectionLimit
        var counted: String?

        init(limit: ConnectionLimit) { self.limit = limit }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { admit(context) }
        }

        func channelActive(context: ChannelHandlerContext) {
            admit(context)
            context.fireChannelActive()
        }

        func admit(_ context: ChannelHandlerContext) {
            guard counted == nil, let address = context.channel.remoteAddress?.ipAddress else { return }
            if limit.admit(address) {
                counted = address
                // Released when the connection closes, however it ends.
                context.channel.closeFuture.whenComplete { [limit] _ in limit.release(address) }
            } else {
                context.close(promise: nil)
            }
        }
    }
}

@available(*, unavailable)
extension ConnectionLimit.Handler: Sendable {}
