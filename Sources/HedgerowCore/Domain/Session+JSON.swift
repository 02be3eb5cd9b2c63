/// The stored form of a session: a JSON object, written and read with Hedgerow's own JSON (the
/// capture path reads and writes each touched session once per request).
extension Session {
    package var json: JSONValue {
        func stamped(_ value: Stamped<String>?) -> JSONValue {
            value.map { .array([.int($0.at), .string($0.value)]) } ?? .null
        }
        return .object([
            "team_id": .int(teamID), "session_id": .string(sessionID), "distinct_id": stamped(distinctID), "start": .int(start),
            "end": .int(end), "urls": .array(urls.map(JSONValue.string)), "entry_url": stamped(entryURL), "end_url": stamped(endURL),
            "attribution": .object(JSONObject(attribution.sorted { $0.key < $1.key }.map { ($0.key, stamped($0.value)) })),
            "last_external_click_url": stamped(lastExternalClickURL), "pageviews": .int(pageviews),
            "autocaptures": .int(autocaptures), "screens": .int(screens),
            "lcp": lcp.map { .array([.int($0.at), .double($0.value)]) } ?? .null, "updated_at": .int(updatedAt),
        ])
    }

    /// A stored session; nil when the document is not one.
    package init?(json: JSONValue) {
        func int(_ key: String) -> Int64? { if case .int(let value)? = json[key] { value } else { nil } }
        /// `.some(nil)`: null; nil: not a stamped string.
        func stamped(_ value: JSONValue?) -> Stamped<String>?? {
            switch value {
            case nil, .null?: return .some(nil)
            case .array(let pair)? where pair.count == 2:
                guard case .int(let at) = pair[0], case .string(let text) = pair[1] else { return nil }
                return Stamped(at: at, value: text)
            default: return nil
            }
        }
        guard let teamID = int("team_id"), let sessionID = json["session_id"]?.stringValue,
            case .some(.some(let distinctID)) = stamped(json["distinct_id"]), let start = int("start"), let end = int("end"),
            let urls = json["urls"]?.arrayValue?.compactMap(\.stringValue), case .some(let entryURL) = stamped(json["entry_url"]),
            case .some(let endURL) = stamped(json["end_url"]), case .some(let click) = stamped(json["last_external_click_url"]),
            let attribution = json["attribution"]?.objectValue, let pageviews = int("pageviews"),
            let autocaptures = int("autocaptures"), let screens = int("screens"), let updatedAt = int("updated_at")
        else { return nil }
        self.init(
            teamID: teamID, sessionID: sessionID, distinctID: distinctID.value, at: Timestamp(microseconds: distinctID.at),
            insertedAt: Timestamp(microseconds: updatedAt))
        self.distinctID = distinctID
        self.start = start
        self.end = end
        self.urls = urls
        self.entryURL = entryURL
        self.endURL = endURL
        for entry in attribution.entries {
            guard case .some(.some(let value)) = stamped(entry.value) else { return nil }
            self.attribution[entry.key] = value
        }
        lastExternalClickURL = click
        self.pageviews = pageviews
        self.autocaptures = autocaptures
        self.screens = screens
        switch json["lcp"] {
        case nil, .null?: lcp = nil
        case .array(let pair)? where pair.count == 2:
            guard case .int(let at) = pair[0] else { return nil }
            switch pair[1] {
            case .double(let value): lcp = Stamped(at: at, value: value)
            case .int(let value): lcp = Stamped(at: at, value: Double(value))
            default: return nil
            }
        default: return nil
        }
    }
}
