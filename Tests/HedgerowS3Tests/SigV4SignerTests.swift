import Foundation
import HedgerowS3
import Testing

@Suite("SigV4 signing")
struct SigV4SignerTests {
    struct Vector {
        var name: String
        var method: String
        var url: URLComponents
        var headers: [(String, String)]
        var payloadSHA256: String
        var region: String
        var sessionToken: String?
        var date: Date
        var authorization: String
    }

    static let credentials = S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The golden vectors `Vectors/make_botocore_vectors.py` had botocore's `S3SigV4Auth` sign.
    static func botocoreVectors() throws -> [Vector] {
        let url = try #require(Bundle.module.url(forResource: "botocore_sigv4", withExtension: "json"))
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let vectors = try #require(root["vectors"] as? [[String: Any]])
        return try vectors.map { item in
            let amzDate = try #require(item["amz_date"] as? String)
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
            let address = try #require(item["url"] as? String)
            return Vector(
                name: try #require(item["name"] as? String), method: try #require(item["method"] as? String),
                url: try #require(URLComponents(string: address)),
                headers: (item["headers"] as? [String: String] ?? [:]).map { ($0.key, $0.value) },
                payloadSHA256: try #require(item["payload_sha256"] as? String), region: try #require(item["region"] as? String),
                sessionToken: item["session_token"] as? String, date: try #require(formatter.date(from: amzDate)),
                authorization: try #require(item["authorization"] as? String))
        }
    }

    /// Raw query items from an already encoded query string.
    static func queryItems(_ url: URLComponents) -> [(String, String)] {
        guard let query = url.percentEncodedQuery, !query.isEmpty else { return [] }
        return query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).removingPercentEncoding ?? String(text) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    static func sign(_ vector: Vector) -> [(String, String)] {
        var credentials = Self.credentials
        credentials.sessionToken = vector.sessionToken
        var host = vector.url.host ?? ""
        if let port = vector.url.port { host += ":\(port)" }
        return SigV4Signer(credentials: credentials, region: vector.region).sign(
            method: vector.method, host: host, path: vector.url.percentEncodedPath, query: queryItems(vector.url), headers: vector.headers,
            payloadSHA256: vector.payloadSHA256, date: vector.date)
    }

    @Test func matchesBotocoreForEveryVector() throws {
        let vectors = try Self.botocoreVectors()
        #expect(vectors.count == 7)
        for vector in vectors {
            let headers = Self.sign(vector)
            #expect(headers.first { $0.0 == "Authorization" }?.1 == vector.authorization, "\(vector.name)")
            if let token = vector.sessionToken {
                #expect(headers.contains { $0.0 == "x-amz-security-token" && $0.1 == token })
            }
        }
    }

    /// AWS's published examples ("Signature Calculations for the Authorization Header", Amazon S3
    /// API reference): GET Object with a Range, GET Bucket lifecycle, GET Bucket (list objects).
    @Test(arguments: [
        (
            "/test.txt", [(String, String)](), [("Range", "bytes=0-9")], "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ),
        (
            "/", [("lifecycle", "")], [], "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        ),
        (
            "/", [("max-keys", "2"), ("prefix", "J")], [], "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        ),
    ])
    func matchesAWSPublishedExamples(
        path: String, query: [(String, String)], headers: [(String, String)], signedHeaders: String, signature: String
    ) {
        let signed = SigV4Signer(credentials: Self.credentials, region: "us-east-1").sign(
            method: "GET", host: "examplebucket.s3.amazonaws.com", path: path, query: query, headers: headers,
            payloadSHA256: Self.emptySHA256, date: Date(timeIntervalSince1970: 1_369_353_600))
        #expect(
            signed.first { $0.0 == "Authorization" }?.1
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=\(signedHeaders), Signature=\(signature)"
        )
        #expect(signed.first { $0.0 == "x-amz-date" }?.1 == "20130524T000000Z")
    }

    @Test func encodesKeysTheWayS3Does() {
        #expect(SigV4Signer.encode("a b/é+:~_-.", keepSlash: true) == "a%20b/%C3%A9%2B%3A~_-.")
        #expect(SigV4Signer.encode("a/b") == "a%2Fb")
    }
}
