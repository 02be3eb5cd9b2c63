import Foundation

/// The Databricks test servers (`scripts/databricks-test-server`): the workspace contract server
/// (tokens, Files API, Statement Execution with COPY INTO, SQL on DuckDB) and brickhouse (the
/// Statement Execution API on real Delta tables). `scripts/test` starts them once
/// (`HEDGEROW_TEST_DATABRICKS`: "CONTRACT_URL BRICKHOUSE_URL WAREHOUSE_ID"), or this test process does.
package enum DatabricksTestServers {
    package static let clientID = "hedgerow-sp"
    package static let clientSecret = "hedgerow-sp-secret"
    package static let warehouse = "hedgerow-warehouse"
    package static let catalog = "main"

    package struct Servers: Sendable {
        package var contract: String
        package var brickhouse: String
        package var brickhouseWarehouse: String
    }

    package static let shared: Result<Servers, ReferenceTools.Failure> = {
        var text = ProcessInfo.processInfo.environment["HEDGEROW_TEST_DATABRICKS"] ?? ""
        if text.isEmpty {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hedgerow-databricks-\(UUID().uuidString)").path
            do {
                let output = try ReferenceTools.run(
                    ReferenceTools.packageRoot.appendingPathComponent("scripts/databricks-test-server").path,
                    ["start", directory, String(S3TestServer.freePort())])
                guard output.status == 0 else { return .failure(ReferenceTools.Failure("databricks-test-server: \(output.stderr)")) }
                text = String(decoding: output.stdout, as: UTF8.self)
            } catch {
                return .failure(ReferenceTools.Failure("\(error)"))
            }
        }
        let parts = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard parts.count == 3 else { return .failure(ReferenceTools.Failure("HEDGEROW_TEST_DATABRICKS is malformed: \(text)")) }
        return .success(Servers(contract: parts[0], brickhouse: parts[1], brickhouseWarehouse: parts[2]))
    }()

    /// A JSON request to the contract server's test controls; the answer.
    static func control(_ path: String, _ body: String = "{}") throws -> Data {
        let output = try ReferenceTools.run(
            "curl", ["-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d", body, try shared.get().contract + path])
        guard output.status == 0 else { throw ReferenceTools.Failure("contract server \(path): \(output.stderr)") }
        return output.stdout
    }

    /// A fresh schema in the `main` catalog of the contract server; its name.
    package static func makeSchema() throws -> String {
        let name = "s_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        _ = try control("/_control/schema", "{\"catalog\": \"\(catalog)\", \"schema\": \"\(name)\"}")
        return name
    }

    /// Runs SQL (DuckDB's) in a schema of the contract server, for checks; the rows as text.
    package static func query(_ sql: String, schema: String) throws -> [[String?]] {
        let body = try JSONSerialization.data(withJSONObject: ["statement": sql, "catalog": catalog, "schema": schema])
        let answer = try control("/_control/sql", String(decoding: body, as: UTF8.self))
        guard let object = try JSONSerialization.jsonObject(with: answer) as? [String: Any], let rows = object["rows"] as? [[Any]] else {
            throw ReferenceTools.Failure("query failed: \(String(decoding: answer, as: UTF8.self))")
        }
        return rows.map { $0.map { $0 as? String } }
    }

    /// Registers another service principal (a test of its own that revokes its tokens).
    package static func addPrincipal(id: String, secret: String) throws {
        _ = try control("/_control/principal", "{\"client_id\": \"\(id)\", \"client_secret\": \"\(secret)\"}")
    }

    /// Revokes the tokens the contract server issued to a principal (a workspace revoking them early).
    package static func revokeTokens(of id: String) throws {
        _ = try control("/_control/revoke-tokens", "{\"client_id\": \"\(id)\"}")
    }

    /// Every request the contract server answered, in order.
    package static func log() throws -> [[String: Any]] {
        let answer = try control("/_control/log")
        return ((try JSONSerialization.jsonObject(with: answer) as? [String: Any])?["log"] as? [[String: Any]]) ?? []
    }

    /// The volumes (`catalog/schema/volume`) and files the contract server holds.
    package static func volumes() throws -> (volumes: [String], files: [String]) {
        let answer = try JSONSerialization.jsonObject(with: try control("/_control/volumes")) as? [String: [String]]
        return (answer?["volumes"] ?? [], answer?["files"] ?? [])
    }
}
