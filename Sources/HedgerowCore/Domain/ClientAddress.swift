import Foundation

/// The client a request comes from, for limits and logs: the TCP peer, or, when the peer is one of
/// `HEDGEROW_TRUSTED_PROXIES`, the right-most address of `X-Forwarded-For` that is not a trusted
/// proxy (the left-most entries are the client's own claim and can be anything).
package struct ClientAddress: Sendable {
    package let trustedProxies: [IPNetwork]

    package init(trustedProxies: [IPNetwork] = []) { self.trustedProxies = trustedProxies }

    /// Whether `text` is an address inside one of the trusted networks.
    package func trusted(_ text: some StringProtocol) -> Bool {
        guard let address = IPAddress(String(text)) else { return false }
        return trustedProxies.contains { $0.contains(address) }
    }

    /// The client address of a request whose peer is `peer` and whose `X-Forwarded-For` headers are
    /// `forwardedFor` (in order, each a comma-separated list; read only for a trusted peer).
    package func resolve(peer: String?, forwardedFor: @autoclosure () -> [String]) -> String? {
        guard let peer, !trustedProxies.isEmpty, trusted(peer) else { return peer }
        let hops = forwardedFor().flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in hops.reversed() {
            guard IPAddress(hop) != nil else { break }
            client = hop
            if !trusted(hop) { break }
        }
        return client
    }
}
