import Crypto
import Foundation
import HedgerowCore

/// Encrypts destination secrets at rest with AES-GCM (ENGINE.md §8). The key is SHA-256 of
/// `HEDGEROW_SECRET_KEY`, or 32 random bytes kept in `<data dir>/secret-key` (mode 0600), made on
/// first start. Every process that shares a database must share the key.
public struct SecretBox: Sendable {
    let key: SymmetricKey

    public init(key: SymmetricKey) { self.key = key }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The box for a secret (`HEDGEROW_SECRET_KEY`), or for the key file of a data directory
    /// (made on first use).
    public static func load(secretKey: String?, dataDirectory: String) throws -> SecretBox {
        if let secret = secretKey {
            return SecretBox(key: SymmetricKey(data: SHA256.hash(data: Array(secret.utf8))))
        }
        let path = (dataDirectory as NSString).appendingPathComponent("secret-key")
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
                throw Failure(description: "\(path) does not hold a 32-byte base64 key")
            }
            return SecretBox(key: SymmetricKey(data: bytes))
        }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let key = SymmetricKey(size: .bits256)
        let encoded = key.withUnsafeBytes { Data($0).base64EncodedString() }
        guard FileManager.default.createFile(atPath: path, contents: Data((encoded + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else { throw Failure(description: "cannot write \(path)") }
        return SecretBox(key: key)
    }

    /// base64(nonce ‖ ciphertext ‖ tag) of the JSON of `secrets`.
    public func seal(_ secrets: JSONObject) throws -> String {
        let sealed = try AES.GCM.seal(JSONWriter.bytes(.object(secrets)), using: key)
        guard let combined = sealed.combined else { throw Failure(description: "AES-GCM produced no data") }
        return combined.base64EncodedString()
    }

    public func open(_ text: String) throws -> JSONObject {
        guard let data = Data(base64Encoded: text) else { throw Failure(description: "sealed secrets are not base64") }
        let plain = try AES.GCM.open(AES.GCM.SealedBox(combined: data), using: key)
        return try JSONParser.parse(Array(plain)).objectValue ?? JSONObject()
    }
}
