import Foundation
import HedgerowCore

/// The tests' Snowflake: fakesnow's server (`scripts/snowflake-test-server`, which scripts/test
/// starts) and Snowflake's official Python connector to read it back with. fakesnow checks no
/// credentials (key-pair JWTs are checked by the tests themselves) and resolves table stages of
/// upper-case names only, so the tests name their databases, schemas and tables in upper case.
package enum SnowflakeEmulator {
    package static let url = ProcessInfo.processInfo.environment["HEDGEROW_TEST_SNOWFLAKE_URL"]

    /// A database of its own for a test, with a `PUBLIC` schema.
    package static func makeDatabase() throws -> String {
        let database = "HEDGEROW_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).uppercased()
        _ = try official("cursor.execute('CREATE DATABASE \(database)'); cursor.execute('CREATE SCHEMA \(database).PUBLIC'); out(True)")
        return database
    }

    /// Runs a program with the official connector (`cursor`, on the emulator) and returns its JSON output.
    package static func official(_ program: String) throws -> JSONValue {
        guard let url, let parts = URLComponents(string: url), let port = parts.port,
            let python = ProcessInfo.processInfo.environment["HEDGEROW_TEST_SNOWFLAKE_PYTHON"]
        else {
            throw ReferenceTools.Failure(
                "HEDGEROW_TEST_SNOWFLAKE_URL and HEDGEROW_TEST_SNOWFLAKE_PYTHON must be set (scripts/test sets them)")
        }
        let script = """
            import json, sys
            import snowflake.connector
            connection = snowflake.connector.connect(user="tests", password="x", account="tests", host="127.0.0.1", port=\(port), protocol="http")
            cursor = connection.cursor()
            def out(value): print(json.dumps(value, default=str))
            \(program)
            """
        let output = try ChildProcess.run(python, ["-c", script])
        guard output.status == 0 else {
            throw ReferenceTools.Failure("the Snowflake connector failed: \(String(decoding: output.stderr, as: UTF8.self))")
        }
        return try JSONParser.parse(Array(output.stdout))
    }

    /// The rows of `SELECT …` as objects of column name to value.
    package static func rows(_ sql: String) throws -> [JSONValue] {
        try official(
            """
            cursor.execute(\"\"\"\(sql)\"\"\")
            names = [d[0] for d in cursor.description]
            out([dict(zip(names, row)) for row in cursor.fetchall()])
            """
        ).arrayValue ?? []
    }

    /// A test export's configuration (password authentication; fakesnow takes any password).
    package static func config(database: String, table: String = "EVENTS") -> JSONObject {
        [
            "account": "tests", "user": "loader", "password": "secret-password", "database": .string(database), "schema": "PUBLIC",
            "warehouse": "COMPUTE_WH", "table_name": .string(table), "authentication_type": "password",
        ]
    }
}
