import HedgerowCore
import HedgerowStore
import Testing

/// The SQL layer behaves the same on both dialects.
@Suite("SQL layer")
struct DatabaseTests {
    @Test("Values round-trip with the same types on both dialects", arguments: TestBackend.available)
    func valuesRoundTrip(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let database = server.database
            try await database.transaction { connection in
                try await connection.execute(
                    "CREATE TABLE kinds (i BIGINT, d DOUBLE PRECISION, t TEXT, b BOOLEAN, n TEXT)")
                try await connection.execute(
                    "INSERT INTO kinds (i, d, t, b, n) VALUES ($1, $2, $3, $4, $5)",
                    [.int(Int64.min), .double(-2.5), .text("é 😀 'quoted' $1"), .bool(true), .null])
            }
            let row = try #require(try await database.read { try await $0.first("SELECT i, d, t, b, n FROM kinds") })
            #expect(row.int("i") == Int64.min)
            #expect(row["d"] == .double(-2.5))
            #expect(row.string("t") == "é 😀 'quoted' $1")
            #expect(row.bool("b") == true)
            #expect(row["n"] == .null)
        }
    }

    @Test("A placeholder may repeat and `$` inside a string literal is left alone", arguments: TestBackend.available)
    func placeholders(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let row = try #require(
                try await server.database.read { connection in
                    try await connection.first("SELECT $1 || '-$2-' || $1 AS joined", [.text("x")])
                })
            #expect(row.string("joined") == "x-$2-x")
        }
    }

    @Test("A failed transaction changes nothing; unique violations are recognised", arguments: TestBackend.available)
    func rollbackAndUniqueViolation(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let database = server.database
            try await database.transaction { connection in
                try await connection.execute("CREATE TABLE u (k TEXT PRIMARY KEY)")
                try await connection.execute("INSERT INTO u (k) VALUES ($1)", [.text("a")])
            }
            var caught: (any Error)?
            do {
                try await database.transaction { connection in
                    try await connection.execute("INSERT INTO u (k) VALUES ($1)", [.text("b")])
                    try await connection.execute("INSERT INTO u (k) VALUES ($1)", [.text("a")])
                }
            } catch {
                caught = error
            }
            let error = try #require(caught)
            #expect(database.isUniqueViolation(error))
            #expect(!database.isUniqueViolation(APIError.notFound()))
            let count = try await database.read { try await $0.first("SELECT COUNT(*) AS n FROM u")?.int("n") }
            #expect(count == 1)
        }
    }

    @Test("Many concurrent reads and writes", arguments: TestBackend.available)
    func concurrentReadsAndWrites(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let database = server.database
            try await database.transaction { try await $0.execute("CREATE TABLE c (n BIGINT)") }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        try await database.transaction { try await $0.execute("INSERT INTO c (n) VALUES ($1)", [.int(Int64(index))]) }
                        _ = try await database.read { try await $0.first("SELECT COUNT(*) AS n FROM c") }
                    }
                }
                try await group.waitForAll()
            }
            let sum = try await database.read { try await $0.first("SELECT SUM(n) AS s, COUNT(*) AS c FROM c") }
            #expect(sum?.int("s") == 1225)
            #expect(sum?.int("c") == 50)
        }
    }
}
