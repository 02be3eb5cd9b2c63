import HedgerowCore
import HedgerowStore

/// A person as the API shows it: with its distinct ids.
struct PersonDetail: Sendable {
    var person: Person
    var distinctIDs: [String]
}

/// The persons API (PostHog's `/persons/` routes): list, retrieve by uuid or distinct id, delete.
struct PersonService: Sendable {
    let database: any Database
    let access = AccessService()
    let persons = PersonStore()
    let clock: @Sendable () -> Timestamp

    init(database: any Database, clock: @escaping @Sendable () -> Timestamp = { .now() }) {
        self.database = database
        self.clock = clock
    }

    func list(
        _ parent: EnvironmentParent, distinctID: String?, limit: Int, offset: Int, principal: Principal
    ) async throws -> (count: Int, page: [PersonDetail]) {
        try await database.read { connection in
            let team = try await access.environmentID(parent, principal: principal, on: connection)
            let (count, page) = try await persons.list(teamID: team, distinctID: distinctID, limit: limit, offset: offset, on: connection)
            let ids = try await persons.distinctIDs(teamID: team, personUUIDs: page.map(\.uuid), on: connection)
            return (count, page.map { PersonDetail(person: $0, distinctIDs: ids[$0.uuid] ?? []) })
        }
    }

    func retrieve(_ parent: EnvironmentParent, id: String, principal: Principal) async throws -> PersonDetail {
        try await database.read { connection in
            let team = try await access.environmentID(parent, principal: principal, on: connection)
            let person = try await find(id, teamID: team, on: connection)
            let ids = try await persons.distinctIDs(teamID: team, personUUIDs: [person.uuid], on: connection)
            return PersonDetail(person: person, distinctIDs: ids[person.uuid] ?? [])
        }
    }

    /// Marks the person deleted (a new version, so that the persons export carries
    /// `is_deleted = true` for each of its distinct ids). A later event of one of those distinct
    /// ids makes a new person.
    func delete(_ parent: EnvironmentParent, id: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let team = try await access.environmentID(parent, principal: principal, on: connection)
            var person = try await find(id, teamID: team, forUpdate: true, on: connection)
            person.isDeleted = true
            person.version += 1
            person.updatedAt = max(clock(), person.updatedAt)
            try await persons.save([person], on: connection)
        }
    }

    func find(_ id: String, teamID: Int64, forUpdate: Bool = false, on connection: any SQLConnection) async throws -> Person {
        guard let uuid = Identifiers.canonicalUUID(id),
            let person = try await persons.persons(teamID: teamID, uuids: [uuid], forUpdate: forUpdate, on: connection)[uuid],
            !person.isDeleted
        else { throw APIError.notFound() }
        return person
    }
}
