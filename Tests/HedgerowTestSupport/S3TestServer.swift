import Foundation

/// moto's S3 server for the tests (`scripts/s3-test-server`): the shared one `scripts/test` starts
/// (`HEDGEROW_TEST_S3_URL`), or one this test process starts; and dedicated ones for tests that
/// stop their server or enforce credentials.
package enum S3TestServer {
    package struct Instance: Sendable {
        package var url: String
        package var port: Int
        package var directory: String

        package func stop() {
            _ = try? ReferenceTools.run(
                ReferenceTools.packageRoot.appendingPathComponent("scripts/s3-test-server").path, ["stop", directory])
        }
    }

    package static let shared: Result<String, ReferenceTools.Failure> = {
        if let url = ProcessInfo.processInfo.environment["HEDGEROW_TEST_S3_URL"], !url.isEmpty { return .success(url) }
        do { return .success(try start().url) } catch let failure as ReferenceTools.Failure { return .failure(failure) } catch {
            return .failure(ReferenceTools.Failure("\(error)"))
        }
    }()

    /// Starts a moto server of its own on a free loopback port (another one when a port is taken).
    package static func start(environment: [String: String] = [:]) throws -> Instance {
        let directory = newDirectory()
        var lastError = ""
        for _ in 0..<5 {
            switch try startOnce(port: freePort(), directory: directory, environment: environment) {
            case .success(let instance): return instance
            case .failure(let failure): lastError = failure.description
            }
        }
        throw ReferenceTools.Failure("moto_server did not start: \(lastError)")
    }

    /// Starts a moto server again on the port a stopped one had, waiting half a second between
    /// tries while the port is still held.
    package static func restart(port: Int) async throws -> Instance {
        let directory = newDirectory()
        var lastError = ""
        for _ in 0..<5 {
            switch try startOnce(port: port, directory: directory, environment: [:]) {
            case .success(let instance): return instance
            case .failure(let failure): lastError = failure.description
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw ReferenceTools.Failure("moto_server did not start again on port \(port): \(lastError)")
    }

    static func newDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-s3-\(UUID().uuidString)").path
    }

    static func startOnce(
        port: Int, directory: String, environment: [String: String]
    ) throws -> Result<Instance, ReferenceTools.Failure> {
        let output = try ReferenceTools.run(
            ReferenceTools.packageRoot.appendingPathComponent("scripts/s3-test-server").path, ["start", directory, String(port)],
            environment: environment)
        guard output.status == 0 else { return .failure(ReferenceTools.Failure(output.stderr)) }
        let url = String(decoding: output.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return .success(Instance(url: url, port: port, directory: directory))
    }

    /// A port nothing listens on now (the kernel's choice for a socket bound to port 0).
    package static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// On a server started with `INITIAL_NO_AUTH_ACTION_COUNT=3`: three unauthenticated IAM calls
    /// make a user with an access key and every S3 right, after which moto checks signatures.
    /// Returns the key id and secret.
    package static func makeIAMUser(on url: String) throws -> (keyID: String, secret: String) {
        let made = try ReferenceTools.python(
            """
            import sys, json, boto3
            iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            iam.create_user(UserName="exporter")
            key = iam.create_access_key(UserName="exporter")["AccessKey"]
            iam.put_user_policy(UserName="exporter", PolicyName="s3", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
            print(key["AccessKeyId"], key["SecretAccessKey"])
            """, arguments: [url])
        let parts = String(decoding: made, as: UTF8.self).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard parts.count == 2 else { throw ReferenceTools.Failure("no IAM key was made: \(parts)") }
        return (parts[0], parts[1])
    }

    /// A bucket name no other test uses.
    package static func bucketName(_ label: String) -> String {
        "hedgerow-\(label)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}
