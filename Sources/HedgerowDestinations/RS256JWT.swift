import CryptoExtras
import Foundation
import HedgerowCore

/// A JSON Web Token signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256), as Google's service-account
/// grant and Snowflake's key-pair authentication both take it.
enum RS256JWT {
    /// `header.claims.signature`, each base64url without padding; `alg` and `typ` come first, then `header`'s members.
    static func sign(header: JSONObject = [:], claims: JSONValue, key: _RSA.Signing.PrivateKey) throws(DestinationError) -> String {
        var full: JSONObject = ["alg": "RS256", "typ": "JWT"]
        for entry in header.entries { full[entry.key] = entry.value }
        let signingInput = base64URL(JSONWriter.bytes(.object(full))) + "." + base64URL(JSONWriter.bytes(claims))
        do {
            let signature = try key.signature(for: Data(signingInput.utf8), padding: .insecurePKCS1v1_5)
            return signingInput + "." + base64URL(Array(signature.rawRepresentation))
        } catch {
            throw DestinationError(kind: .invalidPrivateKey, message: "the private key cannot sign: \(error)", retryable: false)
        }
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}
