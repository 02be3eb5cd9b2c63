import Crypto
import CryptoExtras
import Foundation

/// An encrypted PKCS#8 private key (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, RFC 5958/8018), as
/// `openssl pkcs8 -topk8` writes it and PostHog takes it with `private_key_passphrase`: PBES2 with
/// PBKDF2 (HMAC-SHA1/224/256/384/512) and AES-128/192/256-CBC. Older PBES1 schemes (DES, RC2) are
/// refused, naming them.
enum EncryptedPrivateKey {
    struct Failure: Error {
        let message: String
    }

    /// The PrivateKeyInfo DER inside `pem`, decrypted with `passphrase`.
    static func decrypt(pem: String, passphrase: String) throws(Failure) -> [UInt8] {
        let body = pem.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
        guard let der = Data(base64Encoded: String(body)).map(Array.init) else { throw Failure(message: "the key is not valid PEM") }
        var reader = DER(der[...])
        var info = try reader.sequence()
        var algorithm = try info.sequence()
        guard try algorithm.objectIdentifier() == pbes2 else {
            throw Failure(
                message: "the key is encrypted with a scheme other than PBES2 (re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)")
        }
        var parameters = try algorithm.sequence()
        var derivation = try parameters.sequence()
        guard try derivation.objectIdentifier() == pbkdf2 else { throw Failure(message: "the key's PBES2 key derivation is not PBKDF2") }
        var pbkdf2Parameters = try derivation.sequence()
        let salt = try pbkdf2Parameters.octetString()
        let rounds = try pbkdf2Parameters.integer()
        var hash = KDF.Insecure.PBKDF2.HashFunction.insecureSHA1
        while !pbkdf2Parameters.isEmpty {
            if pbkdf2Parameters.nextTag == 0x02 {
                _ = try pbkdf2Parameters.integer()  // keyLength: implied by the cipher
                continue
            }
            var prf = try pbkdf2Parameters.sequence()
            switch try prf.objectIdentifier() {
            case hmac(7): hash = .insecureSHA1
            case hmac(8): hash = .insecureSHA224
            case hmac(9): hash = .sha256
            case hmac(10): hash = .sha384
            case hmac(11): hash = .sha512
            default: throw Failure(message: "the key's PBKDF2 uses an unknown pseudo-random function")
            }
        }
        var scheme = try parameters.sequence()
        let cipher = try scheme.objectIdentifier()
        let keyLength: Int
        switch cipher {
        case aesCBC(2): keyLength = 16
        case aesCBC(22): keyLength = 24
        case aesCBC(42): keyLength = 32
        default: throw Failure(message: "the key is encrypted with a cipher other than AES-CBC")
        }
        let iv = try scheme.octetString()
        let encrypted = try info.octetString()
        guard rounds > 0, rounds <= 10_000_000 else { throw Failure(message: "the key's PBKDF2 iteration count is out of range") }
        do {
            let key = try KDF.Insecure.PBKDF2.deriveKey(
                from: Array(passphrase.utf8), salt: salt, using: hash, outputByteCount: keyLength, unsafeUncheckedRounds: rounds)
            return Array(try AES._CBC.decrypt(encrypted, using: key, iv: try AES._CBC.IV(ivBytes: iv)))
        } catch {
            throw Failure(message: "the key could not be decrypted: wrong private_key_passphrase?")
        }
    }

    static let pbes2: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05, 0x0D]
    static let pbkdf2: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05, 0x0C]
    static func hmac(_ last: UInt8) -> [UInt8] { [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x02, last] }
    static func aesCBC(_ last: UInt8) -> [UInt8] { [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, last] }

    /// Just enough DER: definite lengths, the universal types the structure above uses.
    struct DER {
        var bytes: ArraySlice<UInt8>
        init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

        var isEmpty: Bool { bytes.isEmpty }
        var nextTag: UInt8? { bytes.first }

        mutating func element(_ tag: UInt8) throws(Failure) -> ArraySlice<UInt8> {
            guard let first = bytes.first, first == tag else { throw Failure(message: "the key is not a valid encrypted PKCS#8 structure") }
            var index = bytes.index(after: bytes.startIndex)
            guard index < bytes.endIndex else { throw Failure(message: "the key ends early") }
            var length = Int(bytes[index])
            index += 1
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard count > 0, count <= 4, index + count <= bytes.endIndex else { throw Failure(message: "the key has a bad length") }
                length = 0
                for _ in 0..<count {
                    length = length << 8 | Int(bytes[index])
                    index += 1
                }
            }
            guard length >= 0, index + length <= bytes.endIndex else { throw Failure(message: "the key ends early") }
            let content = bytes[index..<index + length]
            bytes = bytes[(index + length)...]
            return content
        }

        mutating func sequence() throws(Failure) -> DER { DER(try element(0x30)) }
        mutating func objectIdentifier() throws(Failure) -> [UInt8] { Array(try element(0x06)) }
        mutating func octetString() throws(Failure) -> [UInt8] { Array(try element(0x04)) }
        mutating func integer() throws(Failure) -> Int {
            let content = try element(0x02)
            guard !content.isEmpty, content.count <= 8 else { throw Failure(message: "the key has an integer out of range") }
            return content.reduce(0) { $0 << 8 | Int($1) }
        }
    }
}
