import Crypto
import Foundation

/// Passwords as Django stores them: `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`.
public enum PasswordHasher {
    public static let iterations = 100_000
    /// The stored value of a user without a usable password.
    public static let unusable = "!"

    public static func hash(_ password: String, salt: String? = nil, iterations: Int = iterations) -> String {
        let salt = salt ?? PersonalAPIKeyCodec.randomBase62(bytes: 16, length: 22)
        let derived = pbkdf2SHA256(password: Array(password.utf8), salt: Array(salt.utf8), iterations: iterations)
        return "pbkdf2_sha256$\(iterations)$\(salt)$\(Data(derived).base64EncodedString())"
    }

    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 4, parts[0] == "pbkdf2_sha256", let iterations = Int(parts[1]) else { return false }
        return hash(password, salt: String(parts[2]), iterations: iterations) == stored
    }

    /// RFC 8018 PBKDF2 with HMAC-SHA256, one 32-byte block.
    static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var block = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = block
        for _ in 1..<max(1, iterations) {
            block = Array(HMAC<SHA256>.authenticationCode(for: block, using: key))
            for index in result.indices { result[index] ^= block[index] }
        }
        return result
    }
}
