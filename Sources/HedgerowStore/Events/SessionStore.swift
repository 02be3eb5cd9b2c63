import HedgerowCore

/// Sessions as capture builds them: the aggregate state as a JSON document beside the columns the
/// exports select on.
package struct SessionStore: Sendable {
    package init() {}

    package func find(teamID: Int64, sessionIDs: [String], on connection: any SQLConnection) async throws -> [String: Session] {
        var found: [String: Session] = [:]
        for chunk in PersonStore.chunks(sessionIDs) {
            let rows = try await connection.query(
                "SELECT state FROM sessions WHERE team_id = $1 AND session_id IN (\(PersonStore.placeholders(chunk.count, from: 2)))",
                [.int(teamID)] + chunk.map(SQLValue.text))
            for row in rows {
                let session = try Self.decode(row)
                found[session.sessionID] = session
            }
        }
        return found
    }

    package func save(_ sessions: [Session], on connection: any SQLConnection) async throws {
        let rows: [[SQLValue]] = sessions.map { session in
            [
                .int(session.teamID), .text(session.sessionID), .int(session.start), .int(session.end), .int(session.updatedAt),
                .text(JSONWriter.string(session.json)),
            ]
        }
        try await PersonStore.upsert(
            into: "sessions", columns: "team_id, session_id, start_timestamp, end_timestamp, updated_at, state", key: "team_id, session_id",
            rows: rows, on: connection)
    }

    static func decode(_ row: SQLRow) throws -> Session {
        guard let parsed = try? JSONParser.parse(try row.decodeString("state")), let session = Session(json: parsed) else {
            throw SQLDecodingError(column: "state", expected: "a session's aggregate state")
        }
        return session
    }
}
