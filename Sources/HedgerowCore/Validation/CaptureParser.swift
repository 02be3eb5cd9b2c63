/// Reads what PostHog's SDKs send to the capture endpoints (docs/api.md, Capturing events): one event, `{"batch": [...]}`
/// or a bare list; the project token in `api_key`, `token` or `properties.token`; client clocks
/// corrected with `offset` or `sent_at`; `$set`/`$set_once` kept in properties.
package enum CaptureParser {
    package struct Result: Sendable {
        package var token: String
        /// Events with `teamID` 0: the caller fills it in once the token is resolved.
        package var events: [Event]
        /// What each event (same index) does to its person.
        package var personUpdates: [PersonUpdate]
        /// What each event (same index) tells its session, if it has one.
        package var sessions: [SessionFacts?]

        package init(token: String, events: [Event], personUpdates: [PersonUpdate], sessions: [SessionFacts?]) {
            self.token = token
            self.events = events
            self.personUpdates = personUpdates
            self.sessions = sessions
        }
    }

    package static func invalid(_ detail: String) -> APIError {
        APIError(status: 400, type: "validation_error", code: "invalid_payload", detail: detail)
    }

    package static let missingToken = APIError(
        status: 401, type: "authentication_error", code: "invalid_api_key",
        detail: "API key not provided. You can find your project API key in your project settings.")

    package static let invalidToken = APIError(
        status: 401, type: "authentication_error", code: "invalid_api_key",
        detail: "Project API key invalid. You can find your project API key in your project settings.")

    package static func parse(_ body: JSONValue, queryToken: String?, receivedAt: Timestamp) throws(APIError) -> Result {
        var top = JSONObject()
        let items: [JSONValue]
        switch body {
        case .array(let list): items = list
        case .object(let object):
            if case .array(let list)? = object["batch"] {
                top = object
                items = list
            } else if object["batch"] != nil {
                throw invalid("Malformed request data: 'batch' must be a list of events.")
            } else {
                items = [body]
            }
        default: throw invalid("Malformed request data: expected an event, a list of events or {\"batch\": [...]}.")
        }
        guard !items.isEmpty else { throw invalid("Malformed request data: no events in the request.") }
        var events: [JSONObject] = []
        for item in items {
            guard case .object(let object) = item else { throw invalid("Malformed request data: every event must be an object.") }
            events.append(object)
        }
        guard let token = findToken(top: top, events: events, queryToken: queryToken) else { throw missingToken }
        let topSentAt = top["sent_at"]?.stringValue.flatMap(ISO8601.parse)
        var result: [Event] = []
        var updates: [PersonUpdate] = []
        var sessions: [SessionFacts?] = []
        result.reserveCapacity(events.count)
        updates.reserveCapacity(events.count)
        sessions.reserveCapacity(events.count)
        for object in events {
            let (event, update, session) = try normalise(object, sentAt: topSentAt, receivedAt: receivedAt)
            result.append(event)
            updates.append(update)
            sessions.append(session)
        }
        return Result(token: token, events: result, personUpdates: updates, sessions: sessions)
    }

    static func findToken(top: JSONObject, events: [JSONObject], queryToken: String?) -> String? {
        func nonEmpty(_ value: JSONValue?) -> String? {
            guard case .string(let text)? = value, !text.isEmpty else { return nil }
            return text
        }
        if let token = nonEmpty(top["api_key"]) ?? nonEmpty(top["token"]) { return token }
        for event in events {
            if let token = nonEmpty(event["api_key"]) ?? nonEmpty(event["token"]) ?? nonEmpty(event["properties"]?["token"]) {
                return token
            }
        }
        return queryToken.flatMap { $0.isEmpty ? nil : $0 }
    }

    static func normalise(
        _ object: JSONObject, sentAt topSentAt: ISO8601.Parsed?, receivedAt: Timestamp
    ) throws(APIError)
        -> (Event, PersonUpdate, SessionFacts?)
    {
        guard case .string(let name)? = object["event"], !name.isEmpty else {
            throw invalid("Malformed request data: every event needs a non-empty 'event' name.")
        }
        var properties: JSONObject
        switch object["properties"] {
        case nil, .null?: properties = JSONObject()
        case .object(let value)?: properties = value
        default: throw invalid("Malformed request data: 'properties' must be an object.")
        }
        let distinctID: String
        switch object["distinct_id"] ?? properties["distinct_id"] {
        case .string(let text)? where !text.isEmpty: distinctID = text
        case .int(let integer)?: distinctID = String(integer)
        case .double(let double)?: distinctID = FieldParser.pythonString(.double(double))
        default: throw invalid("Malformed request data: every event needs a 'distinct_id'.")
        }
        guard distinctID.utf8.count <= 200 else { throw invalid("Malformed request data: 'distinct_id' is longer than 200 characters.") }
        for key in ["$set", "$set_once"] {
            if case .object(let top)? = object[key] {
                var merged = properties[key]?.objectValue ?? JSONObject()
                for entry in top.entries where merged[entry.key] == nil { merged[entry.key] = entry.value }
                properties[key] = .object(merged)
            }
        }
        properties["token"] = nil
        let uuid = object["uuid"]?.stringValue.flatMap(Identifiers.canonicalUUID) ?? Identifiers.uuidV7(at: receivedAt)
        let timestamp = eventTime(object, sentAt: topSentAt, receivedAt: receivedAt)
        var elementsChain: String?
        if case .string(let chain)? = object["elements_chain"] ?? properties["$elements_chain"] { elementsChain = chain }
        let update = PersonUpdate(event: name, properties: properties)
        let event = Event(
            uuid: uuid, teamID: 0, event: name, distinctID: distinctID, properties: JSONWriter.string(.object(properties)),
            personID: nil, personProperties: nil, elementsChain: elementsChain, timestamp: timestamp, createdAt: receivedAt,
            insertedAt: receivedAt)
        return (event, update, SessionFacts(event: name, properties: properties))
    }

    /// `now - offset` when the client sent an offset in milliseconds; else the client's timestamp
    /// shifted by the client clock's skew (`now - sent_at`); else the timestamp; else now. A result
    /// outside years 1–9999 is replaced by now, as PostHog's ingestion does; every value here came
    /// from the client, so the arithmetic is bounded before it is done (docs/security.md).
    static func eventTime(_ object: JSONObject, sentAt topSentAt: ISO8601.Parsed?, receivedAt: Timestamp) -> Timestamp {
        let offset: Int64?
        switch object["offset"] {
        case .int(let value)?: offset = value
        case .double(let value)? where value.isFinite && value.magnitude < 1e15: offset = Int64(value)
        default: offset = nil
        }
        if let offset, offset > -maximumOffsetMilliseconds, offset < maximumOffsetMilliseconds {
            return Timestamp(exactly: receivedAt.microseconds - offset * 1000) ?? receivedAt
        }
        // ISO8601.parse reads four-digit years, and receivedAt is a Timestamp: none of these sums overflows.
        guard let timestamp = object["timestamp"]?.stringValue.flatMap(ISO8601.parse) else { return receivedAt }
        let sentAt = object["sent_at"]?.stringValue.flatMap(ISO8601.parse) ?? topSentAt
        var micros = timestamp.timestamp.microseconds
        if let sentAt { micros += receivedAt.microseconds - sentAt.timestamp.microseconds }
        return Timestamp(exactly: micros) ?? receivedAt
    }

    /// An `offset` of a hundred years or more is ignored (the timestamp decides).
    static let maximumOffsetMilliseconds: Int64 = 100 * 365 * 86_400_000
}
