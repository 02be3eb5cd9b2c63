import Crypto
import Foundation
import HedgerowCore
import HedgerowStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A new file only if none exists at `path` (O_EXCL), mode 0600; -1 with `errno` otherwise.
private func createExclusively(_ path: String) -> Int32 {
    open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
}

/// Encrypts destination secrets at rest with AES-GCM (docs/engine.md §8). The key is SHA-256 of
/// `HEDGEROW_SECRET_KEY`, or 32 random bytes kept in `<data dir>/secret-key` (mode 0600), made on
/// first start. Every process that shares a database must share the key.
package struct SecretBox: Sendable {
    let key: SymmetricKey

    package init(key: SymmetricKey) { self.key = key }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    /// The box for a secret (`HEDGEROW_SECRET_KEY`), or for the key file of a data directory
    /// (made on first use).
    package static func load(secretKey: String?, dataDirectory: String) throws -> SecretBox {
        if let secret = secretKey {
            return SecretBox(key: SymmetricKey(data: SHA256.hash(data: Array(secret.utf8))))
        }
        let path = (dataDirectory as NSString).appendingPathComponent("secret-key")
        // The directory holding the key is the owner's alone (0700), also one an earlier release made 0755.
        try PrivateFiles.directory(dataDirectory)
        // A key file that exists but cannot be read stops the server: a new key in its place would
        // make every stored secret unreadable.
        if FileManager.default.fileExists(atPath: path) {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw Failure(
                    description:
                        "\(path) exists but cannot be read (\((error as NSError).localizedDescription)); fix its permissions, or set HEDGEROW_SECRET_KEY. It is not replaced: stored secrets need the same key"
                )
            }
            guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
                throw Failure(description: "\(path) does not hold a 32-byte base64 key")
            }
            return SecretBox(key: SymmetricKey(data: bytes))
        }
        let key = SymmetricKey(size: .bits256)
        let encoded = key.withUnsafeBytes { Data($0).base64EncodedString() }
        // O_EXCL: two processes starting at once must not each write a key of their own.
        let descriptor = createExclusively(path)
        guard descriptor >= 0 else {
            if errno == EEXIST { return try load(secretKey: nil, dataDirectory: dataDirectory) }
            throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let bytes = Array((encoded + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        guard written == bytes.count else { throw Failure(description: "cannot write \(path)") }
        return SecretBox(key: key)
    }

    /// base64(nonce ‖ ciphertext ‖ tag) of the JSON of `secrets`.
    package func seal(_ secrets: JSONObject) throws -> String {
        let sealed = try AES.GCM.seal(JSONWriter.bytes(.object(secrets)), using: key)
        guard let combined = sealed.combined else { throw Failure(description: "AES-GCM produced no data") }
        return combined.base64EncodedString()
    }

    package func open(_ text: String) throws -> JSONObject {
        guard let data = Data(base64Encoded: text) else { throw Failure(description: "sealed secrets are not base64") }
        let plain: Data
        do {
            plain = try AES.GCM.open(AES.GCM.SealedBox(combined: data), using: key)
        } catch {
            throw Failure(
                description:
                    "the stored secrets cannot be decrypted with this server's key (is HEDGEROW_SECRET_KEY the key they were saved with?)")
        }
        guard let object = try JSONParser.parse(Array(plain)).objectValue else {
            throw Failure(description: "the stored secrets are not a JSON object")
        }
        return object
    }
}
