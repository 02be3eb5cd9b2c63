import Foundation

/// What one event tells its session (events carrying `$session_id`), read once at capture from
/// the event's properties.
package struct SessionFacts: Sendable, Equatable {
    package var sessionID: String
    package var event: String
    var currentURL: String?
    /// Entry attribution candidates: `utm_source` ... `irclid` and `referring_domain`, by column
    /// suffix (`entry_<suffix>`).
    var attribution: [String: String]
    var externalClickURL: String?
    package var lcp: Double?

    /// UTM and click-id properties PostHog's sessions keep the first value of.
    package static let attributionKeys = [
        "utm_source", "utm_campaign", "utm_medium", "utm_term", "utm_content", "referring_domain", "gclid", "fbclid", "gad_source",
        "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "twclid", "li_fat_id", "mc_cid", "igshid", "ttclid", "_kx", "irclid",
    ]

    static let attributionKeySet = Set(attributionKeys)

    /// nil when the event has no usable `$session_id` (a non-empty string of at most 200 bytes).
    package init?(event: String, properties: JSONObject) {
        guard case .string(let id)? = properties["$session_id"], !id.isEmpty, id.utf8.count <= 200 else { return nil }
        sessionID = id
        self.event = event
        func text(_ key: String) -> String? {
            guard case .string(let value)? = properties[key], !value.isEmpty else { return nil }
            return value
        }
        currentURL = text("$current_url")
        // One pass over the event's properties (usually fewer than the 21 keys looked for).
        attribution = [:]
        for entry in properties.entries {
            let key = entry.key == "$referring_domain" ? "referring_domain" : entry.key
            guard Self.attributionKeySet.contains(key), case .string(let value) = entry.value, !value.isEmpty else { continue }
            attribution[key] = value
        }
        externalClickURL = event == "$autocapture" ? text("$external_click_url") : nil
        switch properties["$web_vitals_LCP_value"] {
        case .int(let value)? where event == "$web_vitals": lcp = Double(value)
        case .double(let value)? where event == "$web_vitals" && value.isFinite: lcp = value
        default: lcp = nil
        }
    }
}

/// A value and the event time it was seen at: the earliest (entry) or latest (end) one wins,
/// ties broken by the value, so the result does not depend on the order events arrive in.
package struct Stamped<Value: Comparable & Sendable>: Sendable, Equatable {
    package var at: Int64
    package var value: Value

    static func earliest(_ current: Stamped?, _ candidate: Stamped) -> Stamped {
        guard let current else { return candidate }
        return (candidate.at, candidate.value) < (current.at, current.value) ? candidate : current
    }

    static func latest(_ current: Stamped?, _ candidate: Stamped) -> Stamped {
        guard let current else { return candidate }
        return (candidate.at, candidate.value) > (current.at, current.value) ? candidate : current
    }
}

/// A session as its events build it (PostHog's sessions model): times, URLs, counts, entry
/// attribution. Kept as its aggregate state so that a later event, in any order, updates it.
package struct Session: Sendable, Equatable {
    package var teamID: Int64
    package var sessionID: String
    /// The distinct id of the latest event.
    package var distinctID: Stamped<String>
    package var start: Int64
    package var end: Int64
    /// Unique `$current_url`s in the order first seen.
    package var urls: [String]
    package var entryURL: Stamped<String>?
    package var endURL: Stamped<String>?
    var attribution: [String: Stamped<String>]
    package var lastExternalClickURL: Stamped<String>?
    package var pageviews: Int64
    package var autocaptures: Int64
    package var screens: Int64
    package var lcp: Stamped<Double>?
    /// The capture time of the latest change.
    package var updatedAt: Int64

    package init(teamID: Int64, sessionID: String, distinctID: String, at time: Timestamp, insertedAt: Timestamp) {
        self.teamID = teamID
        self.sessionID = sessionID
        self.distinctID = Stamped(at: time.microseconds, value: distinctID)
        start = time.microseconds
        end = time.microseconds
        urls = []
        attribution = [:]
        pageviews = 0
        autocaptures = 0
        screens = 0
        updatedAt = insertedAt.microseconds
    }

    /// Adds one event.
    package mutating func add(_ facts: SessionFacts, distinctID id: String, at time: Timestamp, insertedAt: Timestamp) {
        let at = time.microseconds
        start = min(start, at)
        end = max(end, at)
        distinctID = .latest(distinctID, Stamped(at: at, value: id))
        if let url = facts.currentURL {
            if !urls.contains(url) { urls.append(url) }
            entryURL = .earliest(entryURL, Stamped(at: at, value: url))
            endURL = .latest(endURL, Stamped(at: at, value: url))
        }
        for (key, value) in facts.attribution { attribution[key] = .earliest(attribution[key], Stamped(at: at, value: value)) }
        if let url = facts.externalClickURL { lastExternalClickURL = .latest(lastExternalClickURL, Stamped(at: at, value: url)) }
        switch facts.event {
        case "$pageview": pageviews += 1
        case "$autocapture": autocaptures += 1
        case "$screen": screens += 1
        default: break
        }
        if let value = facts.lcp { lcp = .earliest(lcp, Stamped(at: at, value: value)) }
        updatedAt = max(updatedAt, insertedAt.microseconds)
    }

    /// Whole seconds between the first and the last event.
    package var durationSeconds: Int64 { (end - start) / 1_000_000 }

    /// Where the user left: the last outbound link clicked, else the last URL seen.
    package var exitURL: String? { lastExternalClickURL?.value ?? endURL?.value }

    /// Pageviews, screens and autocaptures, counted up to 2 (all a bounce needs).
    package var pageScreenAutocaptureCountUpTo: Int64 { min(pageviews + screens + autocaptures, 2) }

    /// PostHog's bounce: a session with one pageview, screen or autocapture that lasted under 10 s;
    /// nil when it had none of them.
    package var isBounce: Bool? {
        let count = pageScreenAutocaptureCountUpTo
        if count == 0 { return nil }
        return !(count > 1 || durationSeconds >= 10)
    }

    /// The session id as the 128-bit number PostHog's `session_id_v7` is, in decimal; nil when the
    /// id is not a UUID.
    package var sessionIDv7: String? {
        guard let uuid = UUID(uuidString: sessionID) else { return nil }
        var value: UInt128 = 0
        withUnsafeBytes(of: uuid.uuid) { bytes in for byte in bytes { value = value << 8 | UInt128(byte) } }
        return String(value)
    }

    package func entry(_ key: String) -> String? { attribution[key]?.value }

    /// PostHog's channel type, from the entry attribution (its rules, with short domain lists).
    package var channelType: String {
        ChannelType.classify(
            source: entry("utm_source"), medium: entry("utm_medium"), campaign: entry("utm_campaign"),
            referringDomain: entry("referring_domain"),
            paidClickID: entry("gclid") ?? entry("gad_source") ?? entry("msclkid") ?? entry("gbraid") ?? entry("wbraid")
                ?? entry("dclid") ?? entry("ttclid") ?? entry("twclid") ?? entry("li_fat_id"))
    }
}

/// PostHog's marketing channel types, decided from a session's entry UTM parameters, click ids and
/// referring domain.
package enum ChannelType {
    static let search = ["google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia", "brave", "startpage", "qwant"]
    static let social = [
        "facebook", "instagram", "twitter", "x.com", "t.co", "linkedin", "lnkd.in", "reddit", "pinterest", "tiktok", "snapchat",
        "threads", "mastodon", "bsky", "fb.com", "m.facebook", "l.facebook",
    ]
    static let video = ["youtube", "youtu.be", "vimeo", "twitch", "dailymotion"]
    static let shopping = ["amazon", "ebay", "etsy", "shopping", "walmart", "aliexpress"]

    static func matches(_ text: String?, _ list: [String]) -> Bool {
        guard let text = text?.lowercased(), !text.isEmpty else { return false }
        return list.contains { text.contains($0) }
    }

    package static func classify(
        source: String?, medium: String?, campaign: String?, referringDomain: String?, paidClickID: String?
    ) -> String {
        let medium = medium?.lowercased() ?? ""
        let source = source?.lowercased()
        let referrer = referringDomain == "$direct" ? nil : referringDomain?.lowercased()
        let origin = source ?? referrer
        if source == "cross-network" || campaign?.lowercased().contains("cross-network") == true { return "Cross Network" }
        let paidMedium = ["cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "cpv", "cpa", "retargeting", "display"]
        let isPaid = paidMedium.contains(medium) || medium.hasPrefix("paid") || paidClickID != nil
        if isPaid {
            if matches(origin, search) || (paidClickID != nil && !matches(origin, social) && !matches(origin, video)) {
                return matches(origin, shopping) ? "Paid Shopping" : "Paid Search"
            }
            if matches(origin, social) { return "Paid Social" }
            if matches(origin, video) { return "Paid Video" }
            if matches(origin, shopping) { return "Paid Shopping" }
            return "Paid Unknown"
        }
        if source == nil, referrer == nil, medium.isEmpty { return "Direct" }
        if matches(origin, search) { return "Organic Search" }
        if matches(origin, social) || ["social", "social-network", "social-media", "sm", "social network"].contains(medium) {
            return "Organic Social"
        }
        if matches(origin, video) || medium == "video" { return "Organic Video" }
        if matches(origin, shopping) || medium == "shopping" { return "Organic Shopping" }
        switch medium {
        case "push", "mobile", "notification": return "Push"
        case "sms": return "SMS"
        case "audio": return "Audio"
        case "email", "e-mail", "e_mail", "newsletter": return "Email"
        case "affiliate": return "Affiliate"
        case "referral", "app", "link": return "Referral"
        default: break
        }
        if source == "email" || source == "newsletter" { return "Email" }
        if referrer != nil || source != nil { return "Referral" }
        return "Unknown"
    }
}

/// A URL's pathname and host name, as PostHog derives the session's `*_pathname` and
/// `*_hostname` columns.
package enum URLParts {
    package static func pathname(_ url: String?) -> String? {
        guard let url, let components = URLComponents(string: url) else { return nil }
        let path = components.percentEncodedPath
        return path.isEmpty ? (components.host == nil ? nil : "/") : path
    }

    package static func hostname(_ url: String?) -> String? {
        guard let url else { return nil }
        return URLComponents(string: url)?.host
    }
}
