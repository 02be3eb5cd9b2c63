import AsyncHTTPClient
import Foundation
import HedgerowCore
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one way destinations and the alert webhook reach the network (issue #11 §2). A host is
/// resolved here, every address it resolves to is checked against the `OutboundPolicy`, and the
/// connection is then made to the checked address — pinned, so a second lookup (DNS rebinding)
/// cannot change where it goes. HTTP clients made here follow no redirects.
package struct OutboundConnector: Sendable {
    package let policy: OutboundPolicy

    package init(policy: OutboundPolicy = OutboundPolicy()) { self.policy = policy }

    /// A host the policy does not let destinations reach (not retried: the answer will not change).
    package struct Refused: Error, CustomStringConvertible {
        package let host: String
        package let reason: String
        package var description: String { "connecting to \(host) is not allowed: \(reason)" }

        package var destinationError: DestinationError {
            DestinationError(kind: .destinationAddressRefused, message: description, retryable: false)
        }
    }

    /// The address to connect to for `host`; throws `Refused` when it, or any address its name
    /// resolves to, is denied, and a retryable `DestinationError` when the name does not resolve.
    package func address(for host: String) async throws -> IPAddress {
        if let reason = policy.refusal(forHost: host) { throw Refused(host: host, reason: reason) }
        if let literal = IPAddress(host) { return literal }
        let resolved = try await Self.resolve(host)
        guard let first = resolved.first else {
            throw DestinationError(kind: .connectionError, message: "\(host) did not resolve to any address", retryable: true)
        }
        for address in resolved {
            if let reason = policy.refusal(for: address) { throw Refused(host: host, reason: "it resolves to \(address); " + reason) }
        }
        return first
    }

    /// Runs `body` with an HTTP client whose connections to `host` go to its checked address
    /// (TLS still verifies `host`'s certificate) and that follows no redirects; shut down after.
    package func withHTTPClient<T: Sendable>(
        host: String, connectTimeout: TimeAmount = .seconds(10), readTimeout: TimeAmount = .seconds(120),
        _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        let address = try await address(for: host)
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: connectTimeout, read: readTimeout)
        configuration.decompression = .disabled
        if IPAddress(host) == nil { configuration.dnsOverride = [host: address.description] }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        do {
            let result = try await body(client)
            try? await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// Every address `host` resolves to (getaddrinfo, on NIO's blocking-work pool).
    static func resolve(_ host: String) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            #if canImport(Glibc)
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            #else
                hints.ai_socktype = SOCK_STREAM
            #endif
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0, let list else {
                throw DestinationError(
                    kind: .connectionError, message: "\(host) could not be resolved (\(String(cString: gai_strerror(status))))",
                    retryable: true)
            }
            defer { freeaddrinfo(list) }
            var addresses: [IPAddress] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = list
            while let entry = cursor?.pointee {
                if let socketAddress = entry.ai_addr {
                    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
                    if entry.ai_family == AF_INET {
                        socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                            var address = pointer.pointee.sin_addr
                            _ = inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                        }
                    } else if entry.ai_family == AF_INET6 {
                        socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                            var address = pointer.pointee.sin6_addr
                            _ = inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
                        }
                    }
                    let end = text.firstIndex(of: 0) ?? text.endIndex
                    if let parsed = IPAddress(String(decoding: text[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)),
                        !addresses.contains(parsed)
                    {
                        addresses.append(parsed)
                    }
                }
                cursor = entry.ai_next
            }
            return addresses
        }
    }
}
