import HedgerowCore

/// Persons by distinct id, written by the capture path in the same transaction as the events.
public struct PersonStore: Sendable {
    public init() {}

    public func find(teamID: Int64, distinctIDs: [String], on connection: any SQLConnection) async throws -> [String: Person] {
        var found: [String: Person] = [:]
        var start = distinctIDs.startIndex
        while start < distinctIDs.endIndex {
            let chunk = Array(distinctIDs[start..<min(start + 500, distinctIDs.endIndex)])
            let placeholders = chunk.indices.map { "$\($0 + 2)" }.joined(separator: ", ")
            let rows = try await connection.query(
                "SELECT distinct_id, uuid, properties, created_at, updated_at FROM persons WHERE team_id = $1 AND distinct_id IN (\(placeholders))",
                [.int(teamID)] + chunk.map(SQLValue.text))
            for row in rows {
                let distinctID = try row.decodeString("distinct_id")
                // Damaged properties are an error, never reset to {} (the next save would erase them).
                guard let properties = try? JSONParser.parse(try row.decodeString("properties")).objectValue else {
                    throw SQLDecodingError(column: "properties", expected: "a JSON object of person properties")
                }
                found[distinctID] = Person(
                    uuid: try row.decodeString("uuid"), teamID: teamID, distinctID: distinctID, properties: properties,
                    createdAt: try row.decodeTimestamp("created_at"), updatedAt: try row.decodeTimestamp("updated_at"))
            }
            start += chunk.count
        }
        return found
    }

    public func upsert(_ person: Person, on connection: any SQLConnection) async throws {
        try await connection.execute(
            """
            INSERT INTO persons (team_id, distinct_id, uuid, properties, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (team_id, distinct_id) DO UPDATE SET properties = excluded.properties, updated_at = excluded.updated_at
            """,
            [
                .int(person.teamID), .text(person.distinctID), .text(person.uuid), .text(JSONWriter.string(.object(person.properties))),
                SQLValue(person.createdAt), SQLValue(person.updatedAt),
            ])
    }
}
