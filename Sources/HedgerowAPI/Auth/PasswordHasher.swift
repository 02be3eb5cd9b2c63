import Crypto
import CryptoExtras
import Foundation
import NIOPosix

/// Passwords as Django stores them: `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`, derived
/// with swift-crypto's PBKDF2 at Django's current iteration count (Django 6.1: 1 500 000). A hash
/// with fewer iterations still verifies, and `needsUpgrade` tells the caller to store a new one.
package enum PasswordHasher {
    package static let iterations = 1_500_000
    /// The stored value of a user without a usable password.
    package static let unusable = "!"

    package static func hash(_ password: String, salt: String? = nil, iterations: Int = iterations) -> String {
        let salt = salt ?? PersonalAPIKeyCodec.randomBase62(bytes: 16, length: 22)
        let derived = derive(password: password, salt: salt, iterations: iterations)
        guard !derived.isEmpty else { return unusable }
        return "pbkdf2_sha256$\(iterations)$\(salt)$\(Data(derived).base64EncodedString())"
    }

    /// Whether `password` matches `stored`, compared in constant time.
    package static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2_sha256", let iterations = Int(parts[1]), (1...100_000_000).contains(iterations),
            let expected = Data(base64Encoded: String(parts[3]))
        else { return false }
        let derived = derive(password: password, salt: String(parts[2]), iterations: iterations)
        return ConstantTime.equal(derived, Array(expected))
    }

    /// A hash of the current cost that no password matches (its salt is random and its expected value
    /// empty): what a sign-in for an unknown email is checked against, so that it costs what a known
    /// one does.
    package static let dummy = "pbkdf2_sha256$\(iterations)$\(PersonalAPIKeyCodec.randomBase62(bytes: 16, length: 22))$"

    /// One thread that does all password hashing: 150 ms of PBKDF2 never runs on the Swift
    /// concurrency pool (where it would hold up every request) nor on NIO's blocking pool (where
    /// SQLite's lock waits run), and many sign-ins at once queue here instead of taking every core.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    /// `verify` on the hashing thread (throws only when the caller's task is cancelled first).
    package static func verifyOffPool(_ password: String, against stored: String) async throws -> Bool {
        try await pool.runIfActive { verify(password, against: stored) }
    }

    /// `hash` on the hashing thread (throws only when the caller's task is cancelled first: a hash
    /// that was not made is never stored in its place).
    package static func hashOffPool(_ password: String) async throws -> String {
        try await pool.runIfActive { hash(password) }
    }

    /// Whether a stored hash is of an older (or another) kind than `hash` makes now.
    package static func needsUpgrade(_ stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2_sha256", let count = Int(parts[1]) else { return stored != unusable }
        return count < iterations
    }

    /// PBKDF2-HMAC-SHA256, 32 bytes (Django's `pbkdf2_sha256`).
    static func derive(password: String, salt: String, iterations: Int) -> [UInt8] {
        // The unchecked form: hashes Django made with fewer rounds than swift-crypto's minimum must still verify.
        let key = try? KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: Array(salt.utf8), using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        return key?.withUnsafeBytes { Array($0) } ?? []
    }
}

/// Comparisons whose time does not depend on where two secrets first differ.
package enum ConstantTime {
    package static func equal(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count, !left.isEmpty else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
