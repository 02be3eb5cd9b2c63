/// Integer ids shared by projects and environments (a project's main environment has the
/// project's id), and user ids.
package enum Sequences {
    package static func next(_ name: String, on connection: any SQLConnection) async throws -> Int64 {
        guard
            let row = try await connection.first(
                "UPDATE id_sequences SET value = value + 1 WHERE name = $1 RETURNING value", [.text(name)])
        else { throw SQLDecodingError(column: "id_sequences.\(name)", expected: "present") }
        return try row.decodeInt("value")
    }
}
