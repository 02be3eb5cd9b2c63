import HedgerowCore
import HedgerowStore
import HedgerowTestSupport
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

    @Test(
        "Rows decoded in place read as the rows of values do: text, integers, digits, integral doubles, NULL",
        arguments: TestBackend.available)
    func decodedInPlace(backend: TestBackend) async throws {
        try await TestServer.run(backend) { server in
            let database = server.database
            try await database.transaction { connection in
                try await connection.execute("CREATE TABLE cells (t TEXT, i BIGINT, d DOUBLE PRECISION, n TEXT, e TEXT)")
                for (index, text) in ["é 😀", "", "12", "x\ty"].enumerated() {
                    try await connection.execute(
                        "INSERT INTO cells (t, i, d, n, e) VALUES ($1, $2, $3, $4, $5)",
                        [.text(text), .int(Int64(index) - 1 << 40), .double(Double(index) + (index == 3 ? 0.5 : 0)), .null, .text("-7")])
                }
            }
            let sql = "SELECT t, i, d, n, e FROM cells ORDER BY i"
            let rows = try await database.read { try await $0.query(sql, []) }
            let inPlace = try await database.read { connection in
                try await connection.query(sql, [], decoding: { row in (0..<6).map { (row.string(at: $0), row.int(at: $0)) } })
            }
            let fromValues = rows.map { row in (0..<6).map { (SQLColumns(row).string(at: $0), SQLColumns(row).int(at: $0)) } }
            #expect(inPlace.count == 4)
            #expect(inPlace.map { $0.map(\.0) } == fromValues.map { $0.map(\.0) })
            #expect(inPlace.map { $0.map(\.1) } == fromValues.map { $0.map(\.1) })
            #expect(inPlace.first?[0].0 == "é 😀" && inPlace.first?[1].1 == -(1 << 40) && inPlace.first?[3].0 == nil)
            #expect(inPlace.first?[4].1 == -7 && inPlace.last?[2].1 == nil && inPlace[2][2].1 == 2)
            let failure = await #expect(throws: SQLDecodingError.self) {
                try await database.read { try await $0.query(sql, [], decoding: { try $0.decodeInt(at: 3) }) }
            }
            #expect(failure?.column == "n")
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
