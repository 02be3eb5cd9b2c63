import Crypto
import HedgerowCore

/// Personal API key values: `phx_` + 43 base62 characters from 256 random bits, stored only as
/// `sha256$<hex>`, shown masked as first 4 + `...` + last 4.
package enum PersonalAPIKeyCodec {
    package static let prefix = "phx_"
    static let bodyLength = 43
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    package static func generate() -> String {
        prefix + randomBase62(bytes: 32, length: bodyLength)
    }

    /// A project API token for an environment (`phc_...`).
    static func generateProjectToken() -> String {
        "phc_" + randomBase62(bytes: 32, length: bodyLength)
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    package static func hash(_ value: String) -> String {
        let digest = SHA256.hash(data: Array(value.utf8))
        var text = Array("sha256$".utf8)
        text.reserveCapacity(text.count + 64)
        for byte in digest {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    package static func mask(_ value: String) -> String {
        String(value.prefix(4)) + "..." + String(value.suffix(4))
    }

    /// Whether a string has the shape of a personal API key.
    package static func looksValid(_ value: String) -> Bool {
        value.hasPrefix(prefix) && value.utf8.count == prefix.utf8.count + bodyLength
            && value.utf8.dropFirst(prefix.utf8.count).allSatisfy { alphabet.contains($0) }
    }

    /// `length` base-62 digits of a random number of `bytes` bytes, left-padded with zeros.
    static func randomBase62(bytes count: Int, length: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var number = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var digits: [UInt8] = []
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in number.indices {
                let accumulator = remainder * 256 + Int(number[index])
                number[index] = UInt8(accumulator / 62)
                remainder = accumulator % 62
            }
            digits.append(alphabet[remainder])
        }
        while digits.count < length { digits.append(alphabet[0]) }
        return String(decoding: digits.prefix(length).reversed(), as: UTF8.self)
    }
}
