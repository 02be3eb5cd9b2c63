import Foundation

/// An IPv4 or IPv6 address as its bytes (4 or 16). IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
/// are read as the IPv4 address they carry, so a policy cannot be passed by writing one as the other.
package struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    package let bytes: [UInt8]

    package init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let zone = text.firstIndex(of: "%") { text = text[..<zone] }
        if let v4 = Self.parseIPv4(text) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(text) {
            bytes = v6.starts(with: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) ? Array(v6[12...]) : v6
        } else {
            return nil
        }
    }

    var isIPv4: Bool { bytes.count == 4 }

    package var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber), let value = UInt8(part),
                part == "0" || !part.hasPrefix("0")
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        func groups(_ part: Substring) -> [UInt8]? {
            if part.isEmpty { return [] }
            var bytes: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains("."), let v4 = parseIPv4(piece) {
                    bytes += v4
                    continue
                }
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return bytes
        }
        let halves = text.components(separatedBy: "::")
        switch halves.count {
        case 1:
            guard let all = groups(text), all.count == 16 else { return nil }
            return all
        case 2:
            guard let head = groups(Substring(halves[0])), let tail = groups(Substring(halves[1])), head.count + tail.count <= 14
            else { return nil }
            return head + Array(repeating: 0, count: 16 - head.count - tail.count) + tail
        default:
            return nil
        }
    }
}

/// A CIDR block such as `10.0.0.0/8` or `fd00::/8` (a bare address is a block of one).
package struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    package let address: IPAddress
    let prefixLength: Int

    package init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let address = IPAddress(String(first)) else { return nil }
        let maximum = address.bytes.count * 8
        if parts.count == 2 {
            // An IPv4-mapped block is given with its IPv6 prefix length; count it on the IPv4 address.
            guard var length = Int(parts[1]), length >= 0 else { return nil }
            if address.isIPv4, first.contains(":") { length -= 96 }
            guard (0...maximum).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        self.address = address
    }

    package func contains(_ other: IPAddress) -> Bool {
        guard other.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for index in address.bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address.bytes[index] & mask != other.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    package var description: String { "\(address)/\(prefixLength)" }

    /// A comma- or space-separated list (`HEDGEROW_DESTINATION_ALLOW_NETWORKS`); nil names the bad entry.
    package static func parseList(_ text: String) -> Result<[IPNetwork], ListError> {
        var networks: [IPNetwork] = []
        for entry in text.split(whereSeparator: { $0 == "," || $0 == " " }) where !entry.isEmpty {
            guard let network = IPNetwork(String(entry)) else { return .failure(ListError(entry: String(entry))) }
            networks.append(network)
        }
        return .success(networks)
    }

    package struct ListError: Error, Sendable {
        package let entry: String
    }
}

/// Which addresses destinations and webhooks may connect to (issue #11 §2). Loopback, link-local
/// (the cloud metadata addresses among them), unspecified, broadcast and multicast addresses are
/// denied by default; private ranges are allowed (self-hosted warehouses live there). `allow` and
/// `deny` (`HEDGEROW_DESTINATION_ALLOW_NETWORKS`, `HEDGEROW_DESTINATION_DENY_NETWORKS`) change
/// that; `allow` wins for the networks it names. Every client checks the addresses it resolved,
/// when it connects; the API checks literal addresses when an export is saved.
package struct OutboundPolicy: Sendable, Equatable {
    package var allow: [IPNetwork]
    package var deny: [IPNetwork]

    package init(allow: [IPNetwork] = [], deny: [IPNetwork] = []) {
        self.allow = allow
        self.deny = deny
    }

    /// The networks denied unless allowed, with what they are.
    static let deniedByDefault: [(network: IPNetwork, name: String)] = [
        ("127.0.0.0/8", "a loopback address"), ("::1/128", "a loopback address"), ("0.0.0.0/8", "an unspecified address"),
        ("::/128", "an unspecified address"), ("169.254.0.0/16", "a link-local address"), ("fe80::/10", "a link-local address"),
        ("100.100.100.200/32", "a cloud metadata address"), ("fd00:ec2::254/128", "a cloud metadata address"),
        ("224.0.0.0/4", "a multicast address"), ("ff00::/8", "a multicast address"), ("255.255.255.255/32", "a broadcast address"),
    ].map { (IPNetwork($0.0)!, $0.1) }

    /// Why `address` may not be connected to, or nil when it may.
    package func refusal(for address: IPAddress) -> String? {
        if allow.contains(where: { $0.contains(address) }) { return nil }
        if deny.contains(where: { $0.contains(address) }) {
            return "\(address) is in HEDGEROW_DESTINATION_DENY_NETWORKS"
        }
        if let denied = Self.deniedByDefault.first(where: { $0.network.contains(address) }) {
            return "\(address) is \(denied.name); destinations may not connect to it unless HEDGEROW_DESTINATION_ALLOW_NETWORKS names it"
        }
        return nil
    }

    /// For a host as written in a configuration: the refusal when it is an address literal (or
    /// `localhost`, which is loopback by definition) that may not be connected to. Names are
    /// checked when they are resolved.
    package func refusal(forHost host: String) -> String? {
        let lowered = host.lowercased()
        if lowered == "localhost" || lowered.hasSuffix(".localhost") {
            return refusal(for: IPAddress("127.0.0.1")!).map { "\(host) is loopback (" + $0 + ")" }
        }
        return IPAddress(host).flatMap(refusal(for:))
    }
}
