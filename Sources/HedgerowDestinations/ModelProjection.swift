import HedgerowCore
import HedgerowFormats
import HedgerowStore

/// What a run delivers: the rows of its export's model, a batch at a time.
public enum RunRecords: Sendable {
    case events(EventBatches)
    case persons(RecordBatches<PersonRecord>)
    case sessions(RecordBatches<Session>)

    public var model: String {
        switch self {
        case .events: "events"
        case .persons: "persons"
        case .sessions: "sessions"
        }
    }
}

/// The columns of the persons and sessions models (PostHog's, in its order) and their rows, for
/// files and for the warehouses that merge them.
public enum ModelProjection {
    public static let personColumns: [FileColumn] = [
        FileColumn("team_id", .int64), FileColumn("distinct_id", .string), FileColumn("person_id", .string),
        FileColumn("properties", .json), FileColumn("person_distinct_id_version", .int64), FileColumn("person_version", .int64),
        FileColumn("created_at", .timestamp), FileColumn("_inserted_at", .timestamp), FileColumn("is_deleted", .boolean),
    ]

    public static func personRow(_ person: PersonRecord) -> [FileValue] {
        [
            .int(person.teamID), .string(person.distinctID), .string(person.personID), .json(person.properties),
            .int(person.distinctIDVersion), .int(person.personVersion), .timestamp(person.createdAt), .timestamp(person.insertedAt),
            .bool(person.isDeleted),
        ]
    }

    public static let sessionColumns: [FileColumn] =
        [
            FileColumn("session_id", .string), FileColumn("session_id_v7", .string), FileColumn("team_id", .int64),
            FileColumn("distinct_id", .string), FileColumn("start_timestamp", .timestamp), FileColumn("end_timestamp", .timestamp),
            // A list of strings: a JSON array in files, TEXT[] in PostgreSQL.
            FileColumn("urls", .json), FileColumn("num_uniq_urls", .int64),
        ]
        + ["entry", "end", "exit"].flatMap { place in
            ["current_url", "pathname", "hostname"].map { FileColumn("\(place)_\($0)", .string) }
        }
        + SessionFacts.attributionKeys.map { FileColumn("entry_\($0)", .string) }
        + [
            FileColumn("pageview_count", .int64), FileColumn("autocapture_count", .int64), FileColumn("screen_count", .int64),
            FileColumn("channel_type", .string), FileColumn("session_duration", .int64), FileColumn("duration", .int64),
            FileColumn("is_bounce", .boolean), FileColumn("last_external_click_url", .string),
            FileColumn("page_screen_autocapture_count_up_to", .int64), FileColumn("vitals_lcp", .double),
            FileColumn("_inserted_at", .timestamp),
        ]

    public static func sessionRow(_ session: Session) -> [FileValue] {
        func text(_ value: String?) -> FileValue { value.map(FileValue.string) ?? .null }
        let places = [session.entryURL?.value, session.endURL?.value, session.exitURL]
        var row: [FileValue] = [
            .string(session.sessionID), text(session.sessionIDv7), .int(session.teamID), .string(session.distinctID.value),
            .timestamp(Timestamp(microseconds: session.start)), .timestamp(Timestamp(microseconds: session.end)),
            .json(JSONWriter.string(.array(session.urls.map(JSONValue.string)))), .int(Int64(session.urls.count)),
        ]
        row.reserveCapacity(sessionColumns.count)
        for url in places { row += [text(url), text(URLParts.pathname(url)), text(URLParts.hostname(url))] }
        for key in SessionFacts.attributionKeys { row.append(text(session.entry(key))) }
        row += [
            .int(session.pageviews), .int(session.autocaptures), .int(session.screens), .string(session.channelType),
            .int(session.durationSeconds), .int(session.durationSeconds), session.isBounce.map(FileValue.bool) ?? .null,
            text(session.lastExternalClickURL?.value), .int(session.pageScreenAutocaptureCountUpTo),
            session.lcp.map { .double($0.value) } ?? .null,
            // PostHog's `_inserted_at` of a session: the later of its last change and its end.
            .timestamp(Timestamp(microseconds: max(session.updatedAt, session.end))),
        ]
        return row
    }
}
