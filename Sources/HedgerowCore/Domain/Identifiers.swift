import Foundation

/// Time-ordered UUIDs (version 7), lower-case as PostHog writes them.
package enum Identifiers {
    package static func uuidV7(at timestamp: Timestamp = .now()) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        // Two draws of 64 random bits (one system call each), not one a byte.
        var generator = SystemRandomNumberGenerator()
        let high = generator.next()
        let low = generator.next()
        for index in 6..<8 { bytes[index] = UInt8(truncatingIfNeeded: high >> (8 * UInt64(index - 6))) }
        for index in 8..<16 { bytes[index] = UInt8(truncatingIfNeeded: low >> (8 * UInt64(index - 8))) }
        let millis = UInt64(max(0, timestamp.microseconds / 1000))
        for index in 0..<6 { bytes[index] = UInt8((millis >> (8 * (5 - UInt64(index)))) & 0xFF) }
        bytes[6] = 0x70 | (bytes[6] & 0x0F)
        bytes[8] = 0x80 | (bytes[8] & 0x3F)
        return uuidString(bytes)
    }

    /// 16 bytes (version and variant bits set by the caller) as a lower-case UUID string.
    package static func uuidString(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 16, "a UUID has 16 bytes")
        let uuid = UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
        return uuid.uuidString.lowercased()
    }

    /// The canonical lower-case form of a UUID string, or nil when it is not one.
    package static func canonicalUUID(_ text: String) -> String? {
        UUID(uuidString: text)?.uuidString.lowercased()
    }
}
