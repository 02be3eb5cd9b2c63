import Foundation
import HedgerowS3
import HedgerowTestSupport
import NIOCore
import Testing

/// The client against a real S3-compatible server (moto).
@Suite("S3 client against moto")
struct S3ClientTests {
    static let credentials = S3Credentials(accessKeyID: "AKIAHEDGEROWTEST0001", secretAccessKey: "not-checked-by-the-shared-server")

    static func client(
        _ url: String, bucket: String, credentials: S3Credentials? = Self.credentials, attempts: Int = 2, timeout: TimeAmount = .seconds(30)
    ) throws -> S3Client {
        let endpoint = try #require(S3Endpoint.parse(url, virtualHosted: false))
        return S3Client(
            endpoint: endpoint, region: "us-east-1", bucket: bucket, credentials: credentials, maximumAttempts: attempts, timeout: timeout)
    }

    static func freshBucket(_ label: String) async throws -> S3Client {
        let client = try client(try S3TestServer.shared.get(), bucket: S3TestServer.bucketName(label))
        try await client.createBucket()
        return client
    }

    @Test func putsGetsListsAndDeletesKeysWithAwkwardCharacters() async throws {
        let client = try await Self.freshBucket("objects")
        let keys = ["exports/2024-01-01T00:00:00+00:00-2024-01-01T01:00:00+00:00.jsonl.gz", "exports/a b/été~_.json", "other/x"]
        for (index, key) in keys.enumerated() {
            try await client.putObject(key, body: Array("body \(index)".utf8), headers: [("Content-Type", "application/octet-stream")])
        }
        #expect(try await client.getObject(keys[1]) == Array("body 1".utf8))
        let listed = try await client.listObjects(prefix: "exports/")
        #expect(listed.map(\.key).sorted() == Array(keys[0..<2]).sorted())
        #expect(listed.allSatisfy { $0.size == 6 })
        try await client.deleteObject(keys[0])
        #expect(try await client.listObjects(prefix: "exports/").map(\.key) == [keys[1]])
        try await client.headBucket()
    }

    @Test func multipartUploadAssemblesPartsInOrder() async throws {
        let client = try await Self.freshBucket("multipart")
        let key = "big/file.parquet"
        let partSize: Int = 5 * 1024 * 1024
        let parts: [[UInt8]] = [[UInt8](repeating: 1, count: partSize), [UInt8](repeating: 2, count: partSize), Array("tail".utf8)]
        let upload = try await client.createMultipartUpload(key, headers: [("x-amz-server-side-encryption", "AES256")])
        var etags: [String] = []
        for (index, part) in parts.enumerated() {
            etags.append(try await client.uploadPart(key, uploadID: upload, partNumber: index + 1, body: part))
        }
        try await client.completeMultipartUpload(key, uploadID: upload, etags: etags)
        let object = try await client.getObject(key)
        #expect(object.count == 2 * partSize + 4)
        #expect(Array(object.suffix(4)) == Array("tail".utf8))
        #expect(object[partSize] == 2)
    }

    @Test func abortedUploadLeavesNothingAndCannotBeCompleted() async throws {
        let client = try await Self.freshBucket("abort")
        let upload = try await client.createMultipartUpload("partial")
        let etag = try await client.uploadPart("partial", uploadID: upload, partNumber: 1, body: Array("half".utf8))
        try await client.abortMultipartUpload("partial", uploadID: upload)
        #expect(try await client.listObjects(prefix: "").isEmpty)
        do {
            try await client.completeMultipartUpload("partial", uploadID: upload, etags: [etag])
            Issue.record("an aborted upload completed")
        } catch {
            // S3 answers NoSuchUpload; moto answers 500. Either way the object never appears.
            #expect(["NoSuchUpload", "InternalError"].contains(error.code))
        }
        #expect(try await client.listObjects(prefix: "").isEmpty)
    }

    @Test func uploadsInProgressAreListedUntilCompletedOrAborted() async throws {
        let client = try await Self.freshBucket("in-progress")
        let kept = try await client.createMultipartUpload("lake/a.jsonl")
        let dropped = try await client.createMultipartUpload("lake/b.jsonl")
        let done = try await client.createMultipartUpload("lake/c.jsonl")
        _ = try await client.createMultipartUpload("elsewhere/d.jsonl")
        let etag = try await client.uploadPart("lake/c.jsonl", uploadID: done, partNumber: 1, body: Array("c".utf8))
        try await client.completeMultipartUpload("lake/c.jsonl", uploadID: done, etags: [etag])
        try await client.abortMultipartUpload("lake/b.jsonl", uploadID: dropped)
        #expect(try await client.listMultipartUploads(prefix: "lake/") == [S3MultipartUpload(key: "lake/a.jsonl", uploadID: kept)])
        #expect(try await client.listMultipartUploads(prefix: "").map(\.key).sorted() == ["elsewhere/d.jsonl", "lake/a.jsonl"])
    }

    @Test func missingBucketIsNotRetryable() async throws {
        let client = try Self.client(try S3TestServer.shared.get(), bucket: S3TestServer.bucketName("missing"))
        do {
            try await client.putObject("x", body: [1])
            Issue.record("a put into a missing bucket succeeded")
        } catch {
            #expect(error.code == "NoSuchBucket")
            #expect(!error.retryable)
        }
    }

    @Test func unreachableServerIsRetryable() async throws {
        let client = try Self.client("http://127.0.0.1:\(S3TestServer.freePort())", bucket: "b")
        do {
            try await client.putObject("x", body: [1])
            Issue.record("a put to nowhere succeeded")
        } catch {
            #expect(error.code == "ConnectionError")
            #expect(error.retryable)
        }
    }

    /// moto checking signatures against its IAM users: our signature is accepted with the right
    /// secret; a wrong secret and an unknown key are refused, not retryably.
    @Test func serverVerifiesOurSignaturesAndRefusesBadCredentials() async throws {
        let server = try S3TestServer.start(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "3"])
        defer { server.stop() }
        let (keyID, secret) = try S3TestServer.makeIAMUser(on: server.url)
        let good = S3Credentials(accessKeyID: keyID, secretAccessKey: secret)
        let bucket = S3TestServer.bucketName("auth")
        let client = try Self.client(server.url, bucket: bucket, credentials: good)
        try await client.createBucket()
        try await client.putObject("signed/é key+1", body: Array("ok".utf8))
        #expect(try await client.getObject("signed/é key+1") == Array("ok".utf8))

        let wrongSecret = try Self.client(
            server.url, bucket: bucket, credentials: S3Credentials(accessKeyID: keyID, secretAccessKey: "wrong"))
        let unknownKey = try Self.client(
            server.url, bucket: bucket, credentials: S3Credentials(accessKeyID: "AKIAUNKNOWN000000000", secretAccessKey: "x"))
        for (client, code) in [(wrongSecret, "SignatureDoesNotMatch"), (unknownKey, "InvalidAccessKeyId")] {
            do {
                try await client.putObject("refused", body: [1])
                Issue.record("\(code): the put succeeded")
            } catch {
                #expect(error.code == code)
                #expect(!error.retryable)
            }
        }
    }

    @Test func addressesBucketsPathStyleOrVirtualHosted() throws {
        let aws = S3Endpoint.aws(region: "eu-west-1", virtualHosted: true)
        let virtual = S3Client(endpoint: aws, region: "eu-west-1", bucket: "my-bucket", credentials: nil)
        #expect(virtual.url(for: "a b/c") == "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c")
        #expect(virtual.url(for: nil) == "https://my-bucket.s3.eu-west-1.amazonaws.com/")
        let local = try #require(S3Endpoint.parse("http://127.0.0.1:9000", virtualHosted: false))
        let path = S3Client(endpoint: local, region: "us-east-1", bucket: "b", credentials: nil)
        #expect(path.url(for: "k") == "http://127.0.0.1:9000/b/k")
        #expect(S3Endpoint.parse("ftp://x", virtualHosted: false) == nil)
        #expect(S3Endpoint.parse("https://minio.internal/some/path", virtualHosted: false) == nil)
    }
}
