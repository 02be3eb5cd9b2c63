/// PostHog's capture v1 (`POST /i/v1/analytics/events`, what the SDKs send with
/// `capture_mode="v1"`): the project token as a Bearer token, `{"created_at", "batch": [...],
/// "historical_migration"?}`, each event `{event, uuid, distinct_id, timestamp, options,
/// properties, session_id?, window_id?}`, `$lib`/`$lib_version` taken from the `PostHog-Sdk-Info`
/// header. Events are judged one by one: the answer tells each uuid `ok` or `drop` (with details).
package enum CaptureV1Parser {
    /// One event's verdict in the answer's `results` map.
    package struct Verdict: Sendable, Equatable {
        package var result: String
        package var details: String?
    }

    package struct Parsed: Sendable {
        /// The events to store (`nil` when none was acceptable).
        package var accepted: CaptureParser.Result?
        /// Every event's verdict, in the order they came, keyed by the uuid the client sent.
        package var verdicts: [(uuid: String, verdict: Verdict)]
    }

    /// `options` members and the properties they stand for.
    static let optionProperties: [(option: String, property: String)] = [
        ("cookieless_mode", "$cookieless_mode"), ("product_tour_id", "$product_tour_id"),
        ("process_person_profile", "$process_person_profile"),
    ]

    package static func parse(
        _ body: JSONValue, token: String, sdkInfo: String?, receivedAt: Timestamp
    ) throws(APIError) -> Parsed {
        guard case .object(let top) = body else {
            throw CaptureParser.invalid("Malformed request data: expected {\"batch\": [...]}.")
        }
        guard case .array(let items)? = top["batch"] else {
            throw CaptureParser.invalid("Malformed request data: 'batch' must be a list of events.")
        }
        guard !items.isEmpty else { throw CaptureParser.invalid("Malformed request data: no events in the request.") }
        let createdAt = top["created_at"]?.stringValue.flatMap(ISO8601.parse)
        let library = sdkInfo.map(Self.library)
        var events: [Event] = []
        var updates: [PersonUpdate] = []
        var sessions: [SessionFacts?] = []
        var verdicts: [(uuid: String, verdict: Verdict)] = []
        for (index, item) in items.enumerated() {
            let sentUUID = item["uuid"]?.stringValue ?? "batch[\(index)]"
            do {
                let (event, update, session) = try normalise(item, createdAt: createdAt, library: library, receivedAt: receivedAt)
                events.append(event)
                updates.append(update)
                sessions.append(session)
                verdicts.append((sentUUID, Verdict(result: "ok", details: nil)))
            } catch {
                verdicts.append((sentUUID, Verdict(result: "drop", details: error.detail)))
            }
        }
        let accepted = events.isEmpty ? nil : CaptureParser.Result(token: token, events: events, personUpdates: updates, sessions: sessions)
        return Parsed(accepted: accepted, verdicts: verdicts)
    }

    /// `posthog-python/7.91.1` → (`posthog-python`, `7.91.1`).
    static func library(_ info: String) -> (name: String, version: String?) {
        let first = info.split(separator: " ").first.map(String.init) ?? info
        let parts = first.split(separator: "/", maxSplits: 1).map(String.init)
        return (parts.first ?? first, parts.count > 1 ? parts[1] : nil)
    }

    static func normalise(
        _ item: JSONValue, createdAt: ISO8601.Parsed?, library: (name: String, version: String?)?, receivedAt: Timestamp
    ) throws(APIError) -> (Event, PersonUpdate, SessionFacts?) {
        guard case .object(var object) = item else { throw CaptureParser.invalid("every event must be an object") }
        guard let uuid = object["uuid"]?.stringValue, Identifiers.canonicalUUID(uuid) != nil else {
            throw CaptureParser.invalid("every event needs a valid 'uuid'")
        }
        guard let timestamp = object["timestamp"]?.stringValue, ISO8601.parse(timestamp) != nil else {
            throw CaptureParser.invalid("every event needs an RFC 3339 'timestamp'")
        }
        var properties: JSONObject
        switch object["properties"] {
        case nil, .null?: properties = JSONObject()
        case .object(let value)?: properties = value
        default: throw CaptureParser.invalid("'properties' must be an object")
        }
        var options = JSONObject()
        switch object["options"] {
        case nil, .null?: break
        case .object(let value)?: options = value
        default: throw CaptureParser.invalid("'options' must be an object")
        }
        for (option, property) in optionProperties {
            if let value = options[option], !value.isNull { properties[property] = value }
        }
        for (field, property) in [("session_id", "$session_id"), ("window_id", "$window_id")] {
            if case .string(let value)? = object[field] { properties[property] = .string(value) }
        }
        if let library {
            properties["$lib"] = .string(library.name)
            if let version = library.version { properties["$lib_version"] = .string(version) }
        }
        object["properties"] = .object(properties)
        // The batch's created_at is the client's clock when it sent: skew is corrected from it
        // unless the event asks not to be.
        let skewCorrected = options["disable_skew_correction"] != .bool(true)
        return try CaptureParser.normalise(object, sentAt: skewCorrected ? createdAt : nil, receivedAt: receivedAt)
    }
}
