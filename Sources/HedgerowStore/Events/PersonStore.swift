import Foundation
import HedgerowCore

/// Persons and their distinct ids, written by the capture path in the same transaction as the
/// events, and read by the persons API and the persons export.
package struct PersonStore: Sendable {
    package init() {}

    static let personColumns = "team_id, uuid, properties, created_at, is_identified, is_deleted, version, updated_at"

    /// On PostgreSQL, locks names for the transaction (advisory locks, taken in sorted order so
    /// that two requests never wait on each other in a circle). Capture locks `d:<distinct id>`
    /// before reading or writing that id's mapping and `s:<session id>` before a session, so
    /// requests about different users and sessions run side by side. SQLite has one writer at a
    /// time already.
    package func lock(teamID: Int64, keys: Set<String>, on connection: any SQLConnection) async throws {
        guard connection.dialect == .postgres, !keys.isEmpty else { return }
        for chunk in Self.chunks(keys.sorted()) {
            // Target-list expressions run left to right: the locks are taken in the keys' order.
            let locks = (0..<chunk.count).map { "pg_advisory_xact_lock(CAST($1 % 2147483647 AS INTEGER), hashtext($\($0 + 2)))" }
            try await connection.execute("SELECT " + locks.joined(separator: ", "), [.int(teamID)] + chunk.map(SQLValue.text))
        }
    }

    /// The mappings of `distinctIDs` that exist.
    package func distinctIDs(
        teamID: Int64, _ distinctIDs: [String], on connection: any SQLConnection
    ) async throws -> [String:
        PersonDistinctID]
    {
        var found: [String: PersonDistinctID] = [:]
        for chunk in Self.chunks(distinctIDs) {
            let rows = try await connection.query(
                "SELECT distinct_id, person_uuid, version, updated_at FROM person_distinct_ids WHERE team_id = $1 AND distinct_id IN (\(Self.placeholders(chunk.count, from: 2)))",
                [.int(teamID)] + chunk.map(SQLValue.text))
            for row in rows {
                let mapping = try Self.decodeDistinctID(row, teamID: teamID)
                found[mapping.distinctID] = mapping
            }
        }
        return found
    }

    /// The distinct ids of a person, in the order they were given to it.
    package func distinctIDs(teamID: Int64, personUUID: String, on connection: any SQLConnection) async throws -> [PersonDistinctID] {
        try await connection.query(
            "SELECT distinct_id, person_uuid, version, updated_at FROM person_distinct_ids WHERE team_id = $1 AND person_uuid = $2 ORDER BY updated_at, distinct_id",
            [.int(teamID), .text(personUUID)]
        ).map { try Self.decodeDistinctID($0, teamID: teamID) }
    }

    /// The distinct ids of several persons.
    package func distinctIDs(teamID: Int64, personUUIDs: [String], on connection: any SQLConnection) async throws -> [String: [String]] {
        var found: [String: [String]] = [:]
        for chunk in Self.chunks(personUUIDs) {
            let rows = try await connection.query(
                "SELECT distinct_id, person_uuid FROM person_distinct_ids WHERE team_id = $1 AND person_uuid IN (\(Self.placeholders(chunk.count, from: 2))) ORDER BY updated_at, distinct_id",
                [.int(teamID)] + chunk.map(SQLValue.text))
            for row in rows { found[try row.decodeString("person_uuid"), default: []].append(try row.decodeString("distinct_id")) }
        }
        return found
    }

    /// Persons by uuid. `forUpdate`: locked for the transaction on PostgreSQL (in uuid order), so
    /// that no other transaction changes them meanwhile and a waiting one then reads the new row.
    package func persons(
        teamID: Int64, uuids: [String], forUpdate: Bool = false, on connection: any SQLConnection
    ) async throws -> [String: Person] {
        var found: [String: Person] = [:]
        let locking = forUpdate && connection.dialect == .postgres ? " ORDER BY uuid FOR UPDATE" : ""
        for chunk in Self.chunks(uuids.sorted()) {
            let rows = try await connection.query(
                "SELECT \(Self.personColumns) FROM persons WHERE team_id = $1 AND uuid IN (\(Self.placeholders(chunk.count, from: 2)))\(locking)",
                [.int(teamID)] + chunk.map(SQLValue.text))
            for row in rows {
                let person = try Self.decodePerson(row)
                found[person.uuid] = person
            }
        }
        return found
    }

    /// Persons not deleted, newest first, optionally only the one a distinct id names; and their
    /// number.
    package func list(
        teamID: Int64, distinctID: String?, limit: Int, offset: Int, on connection: any SQLConnection
    ) async throws -> (count: Int, page: [Person]) {
        var condition = "team_id = $1 AND NOT is_deleted"
        var binds: [SQLValue] = [.int(teamID)]
        if let distinctID {
            condition += " AND uuid IN (SELECT person_uuid FROM person_distinct_ids WHERE team_id = $1 AND distinct_id = $2)"
            binds.append(.text(distinctID))
        }
        let count = try await connection.first("SELECT COUNT(*) AS n FROM persons WHERE \(condition)", binds)?.int("n") ?? 0
        let rows = try await connection.query(
            "SELECT \(Self.personColumns) FROM persons WHERE \(condition) ORDER BY created_at DESC, uuid DESC LIMIT \(limit) OFFSET \(offset)",
            binds)
        return (Int(count), try rows.map(Self.decodePerson))
    }

    /// Inserts or replaces persons (their whole row); their distinct ids' rows of the persons export
    /// change with them.
    package func save(_ persons: [Person], on connection: any SQLConnection) async throws {
        try await Self.upsert(
            into: "persons", columns: Self.personColumns, key: "team_id, uuid", rows: persons.map(Self.binds), on: connection)
        for team in Set(persons.map(\.teamID)) {
            try await refreshRowTimes(teamID: team, column: "person_uuid", persons.filter { $0.teamID == team }.map(\.uuid), on: connection)
        }
    }

    /// Inserts or replaces distinct id mappings.
    package func save(_ mappings: [PersonDistinctID], on connection: any SQLConnection) async throws {
        try await Self.upsert(
            into: "person_distinct_ids", columns: "team_id, distinct_id, person_uuid, version, updated_at, row_updated_at",
            key: "team_id, distinct_id",
            rows: mappings.map {
                [
                    .int($0.teamID), .text($0.distinctID), .text($0.personUUID), .int($0.version), SQLValue($0.updatedAt),
                    SQLValue($0.updatedAt),
                ]
            }, on: connection)
        for team in Set(mappings.map(\.teamID)) {
            try await refreshRowTimes(
                teamID: team, column: "distinct_id", mappings.filter { $0.teamID == team }.map(\.distinctID), on: connection)
        }
    }

    /// Sets `row_updated_at` of the distinct ids `column` names to the later of their own time and
    /// their person's: whichever of the two was saved last, the row holds the newest.
    func refreshRowTimes(teamID: Int64, column: String, _ values: [String], on connection: any SQLConnection) async throws {
        for chunk in Self.chunks(values) {
            try await connection.execute(
                """
                UPDATE person_distinct_ids SET row_updated_at = COALESCE((
                    SELECT CASE WHEN p.updated_at > person_distinct_ids.updated_at THEN p.updated_at ELSE person_distinct_ids.updated_at END
                    FROM persons p WHERE p.team_id = person_distinct_ids.team_id AND p.uuid = person_distinct_ids.person_uuid
                ), updated_at)
                WHERE team_id = $1 AND \(column) IN (\(Self.placeholders(chunk.count, from: 2)))
                """, [.int(teamID)] + chunk.map(SQLValue.text))
        }
    }

    /// Removes the rows of persons merged into others (their distinct ids moved first).
    package func remove(teamID: Int64, uuids: [String], on connection: any SQLConnection) async throws {
        for chunk in Self.chunks(uuids) {
            try await connection.execute(
                "DELETE FROM persons WHERE team_id = $1 AND uuid IN (\(Self.placeholders(chunk.count, from: 2)))",
                [.int(teamID)] + chunk.map(SQLValue.text))
        }
    }

    static func binds(_ person: Person) -> [SQLValue] {
        [
            .int(person.teamID), .text(person.uuid), .text(JSONWriter.string(.object(person.properties))), SQLValue(person.createdAt),
            .bool(person.isIdentified), .bool(person.isDeleted), .int(person.version), SQLValue(person.updatedAt),
        ]
    }

    static func decodePerson(_ row: SQLRow) throws -> Person {
        // Damaged properties are an error, never reset to {} (the next save would erase them).
        guard let properties = try? JSONParser.parse(try row.decodeString("properties")).objectValue else {
            throw SQLDecodingError(column: "properties", expected: "a JSON object of person properties")
        }
        return Person(
            uuid: try row.decodeString("uuid"), teamID: try row.decodeInt("team_id"), properties: properties,
            createdAt: try row.decodeTimestamp("created_at"), isIdentified: try row.decodeBool("is_identified"),
            isDeleted: try row.decodeBool("is_deleted"), version: try row.decodeInt("version"),
            updatedAt: try row.decodeTimestamp("updated_at"))
    }

    static func decodeDistinctID(_ row: SQLRow, teamID: Int64) throws -> PersonDistinctID {
        PersonDistinctID(
            teamID: teamID, distinctID: try row.decodeString("distinct_id"), personUUID: try row.decodeString("person_uuid"),
            version: try row.decodeInt("version"), updatedAt: try row.decodeTimestamp("updated_at"))
    }

    static func chunks<T>(_ values: [T], size: Int = 500) -> [ArraySlice<T>] {
        stride(from: 0, to: values.count, by: size).map { values[$0..<min($0 + size, values.count)] }
    }

    static func placeholders(_ count: Int, from first: Int) -> String {
        (0..<count).map { "$\(first + $0)" }.joined(separator: ", ")
    }

    /// Multi-row `INSERT ... ON CONFLICT (key) DO UPDATE` of every non-key column, a few hundred
    /// rows a statement (both dialects take this form).
    static func upsert(
        into table: String, columns: String, key: String, rows: [[SQLValue]], on connection: any SQLConnection
    ) async throws {
        guard let width = rows.first?.count else { return }
        let names = columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let keys = Set(key.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let updates = names.filter { !keys.contains($0) }.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        let perStatement = max(1, 30_000 / width / 2)
        for chunk in chunks(rows, size: perStatement) {
            let values = (0..<chunk.count).map { "(" + placeholders(width, from: $0 * width + 1) + ")" }.joined(separator: ", ")
            try await connection.execute(
                "INSERT INTO \(table) (\(columns)) VALUES \(values) ON CONFLICT (\(key)) DO UPDATE SET \(updates)", chunk.flatMap { $0 })
        }
    }
}
