/// Every table that holds resources of one environment registers here, so that moving an
/// environment's resources (environments rollback) is one place and cannot forget a table.
/// Tables with a foreign key to `teams` (ON DELETE CASCADE) are deleted with their environment.
package enum EnvironmentResources {
    /// `(table, environment id column)`.
    package static let tables: [(table: String, column: String)] = [
        ("events", "team_id"),
        ("batch_exports", "team_id"),
        ("integrations", "team_id"),
    ]

    /// Moves every registered resource of environment `source` to environment `target`.
    package static func move(from source: Int64, to target: Int64, on connection: any SQLConnection) async throws {
        for (table, column) in tables {
            try await connection.execute("UPDATE \(table) SET \(column) = $1 WHERE \(column) = $2", [.int(target), .int(source)])
        }
    }
}
