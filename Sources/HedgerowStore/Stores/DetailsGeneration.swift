/// A counter that every committed change to what an organization's details show moves on: the
/// organization's row, its projects and environments, its memberships, and users (whose activity
/// the member count reads). Triggers move it, in the transaction of the change, whichever process
/// or statement makes it, so a statement that reads the same value as an earlier one knows that no
/// such change was committed in between: details read at that value are still the current ones.
///
/// SQLite only. It has one writer at a time, so the counter's row costs writers nothing; on
/// PostgreSQL one row taken by every such transaction would serialise them and let two of them
/// deadlock (each holding a row the other's trigger needs), so there it is not kept and
/// `current(on:)` answers nil.
package enum DetailsGeneration {
    static let tables = ["organizations", "projects", "teams", "organization_memberships", "users"]

    static let sqliteSchema: [String] =
        [
            "CREATE TABLE details_generation (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO details_generation (id, value) VALUES (1, 0)",
        ]
        + tables.flatMap { table in
            ["INSERT", "UPDATE", "DELETE"].map { event in
                """
                CREATE TRIGGER details_generation_\(table)_\(event.lowercased()) AFTER \(event) ON \(table)
                BEGIN UPDATE details_generation SET value = value + 1 WHERE id = 1; END
                """
            }
        }

    static let read = "SELECT value FROM details_generation WHERE id = 1"

    /// The select-list expression that reads the counter within another statement.
    static let column = "(\(read)) AS details_generation"

    /// The committed generation, or nil where the database keeps none (PostgreSQL).
    package static func current(on connection: any SQLConnection) async throws -> Int64? {
        guard connection.dialect == .sqlite else { return nil }
        return try await connection.first(read)?.int("value")
    }
}
