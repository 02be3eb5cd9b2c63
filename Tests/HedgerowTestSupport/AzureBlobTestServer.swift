import Foundation

/// The Azure Blob contract server for the tests (`scripts/azure-blob-test-server`): the shared one
/// `scripts/test` starts (`HEDGEROW_TEST_AZURE_CONNECTION_STRING`), or one this test process starts.
/// Containers are made and blobs read back with the azure-storage-blob SDK, not Hedgerow's client.
package enum AzureBlobTestServer {
    package static let account = "hedgerowdev"
    package static let key = "aGVkZ2Vyb3ctdGVzdC1hY2NvdW50LWtleS0wMTIzNDU="

    package static let shared: Result<String, ReferenceTools.Failure> = {
        if let text = ProcessInfo.processInfo.environment["HEDGEROW_TEST_AZURE_CONNECTION_STRING"], !text.isEmpty {
            return .success(text)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-azure-\(UUID().uuidString)").path
        do {
            let output = try ReferenceTools.run(
                ReferenceTools.packageRoot.appendingPathComponent("scripts/azure-blob-test-server").path,
                ["start", directory, String(S3TestServer.freePort())])
            guard output.status == 0 else { return .failure(ReferenceTools.Failure("azure-blob-test-server: \(output.stderr)")) }
            return .success(String(decoding: output.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            return .failure(ReferenceTools.Failure("\(error)"))
        }
    }()

    /// The server's blob endpoint (`http://127.0.0.1:PORT/hedgerowdev`).
    package static func endpoint() throws -> String {
        let text = try shared.get()
        guard let part = text.split(separator: ";").first(where: { $0.hasPrefix("BlobEndpoint=") }) else {
            throw ReferenceTools.Failure("no BlobEndpoint in \(text)")
        }
        return String(part.dropFirst("BlobEndpoint=".count))
    }

    static let prelude = """
        import sys, json, os, base64, datetime
        from azure.storage.blob import BlobServiceClient, generate_account_sas, generate_container_sas, ResourceTypes, AccountSasPermissions
        service = BlobServiceClient.from_connection_string(sys.argv[1])

        """

    /// Makes a container with a name of its own (through the SDK); its name.
    package static func makeContainer(_ label: String) throws -> String {
        let name = "\(label.lowercased())-\(UUID().uuidString.lowercased().prefix(8))"
        _ = try ReferenceTools.python(prelude + "service.create_container(sys.argv[2])", arguments: [try shared.get(), name])
        return name
    }

    /// Every blob under `prefix`, downloaded with the SDK: name → (bytes, content type).
    package static func blobs(_ container: String, prefix: String = "") throws -> [String: (bytes: [UInt8], contentType: String)] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-blobs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let listing = try ReferenceTools.python(
            prelude + """
                client = service.get_container_client(sys.argv[2])
                found = {}
                for index, blob in enumerate(client.list_blobs(name_starts_with=sys.argv[3])):
                    path = os.path.join(sys.argv[4], str(index))
                    with open(path, "wb") as out:
                        out.write(client.download_blob(blob.name).readall())
                    found[blob.name] = {"file": path, "type": blob.content_settings.content_type or "", "size": blob.size}
                print(json.dumps(found))
                """, arguments: [try shared.get(), container, prefix, directory.path])
        guard let object = try JSONSerialization.jsonObject(with: listing) as? [String: [String: Any]] else { return [:] }
        var result: [String: (bytes: [UInt8], contentType: String)] = [:]
        for (name, entry) in object {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: entry["file"] as? String ?? "")))
            result[name] = (bytes, entry["type"] as? String ?? "")
        }
        return result
    }

    /// Uploads a blob with the SDK.
    package static func upload(_ container: String, _ name: String, _ bytes: [UInt8]) throws {
        _ = try ReferenceTools.python(
            prelude + "service.get_container_client(sys.argv[2]).upload_blob(sys.argv[3], sys.stdin.buffer.read(), overwrite=True)",
            arguments: [try shared.get(), container, name], input: Data(bytes))
    }

    /// A SAS token made by the SDK: an account SAS (`container` nil) or a container SAS, with
    /// `permissions` (e.g. "rwdl") and an expiry `hours` from now (negative: already expired).
    package static func sasToken(container: String? = nil, permissions: String, hours: Double = 1) throws -> String {
        let output = try ReferenceTools.python(
            prelude + """
                expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=float(sys.argv[4]))
                if sys.argv[2]:
                    token = generate_container_sas("\(account)", sys.argv[2], account_key="\(key)", permission=sys.argv[3], expiry=expiry)
                else:
                    token = generate_account_sas("\(account)", "\(key)", resource_types=ResourceTypes(container=True, object=True),
                                                 permission=sys.argv[3], expiry=expiry)
                print(token)
                """, arguments: [try shared.get(), container ?? "", permissions, String(hours)])
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The SDK's Shared Key `Authorization` header for a request (its own signing policy).
    package static func sdkAuthorization(method: String, url: String, headers: [(String, String)]) throws -> String {
        let program = """
            import sys, json
            from azure.core.pipeline import PipelineContext, PipelineRequest
            from azure.core.pipeline.transport import HttpRequest
            from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy
            headers = json.loads(sys.argv[3])
            request = HttpRequest(sys.argv[1], sys.argv[2], headers=dict(headers))
            SharedKeyCredentialPolicy("\(account)", "\(key)").on_request(PipelineRequest(request, PipelineContext(None)))
            print(request.headers["Authorization"])
            """
        let json = "[" + headers.map { "[\"\($0.0)\", \"\($0.1)\"]" }.joined(separator: ",") + "]"
        let output = try ReferenceTools.python(program, arguments: [method, url, json])
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Makes the server's next `count` writes answer 503 ServerBusy (the contract server's control).
    package static func failNextPuts(_ count: Int) throws {
        let origin = try endpoint().replacingOccurrences(of: "/\(account)", with: "")
        let output = try ReferenceTools.run("curl", ["-fsS", "-X", "POST", origin + "/_control/fail-puts/\(count)"])
        guard output.status == 0 else { throw ReferenceTools.Failure("fail-puts: \(output.stderr)") }
    }
}
