import HedgerowCore

/// DRF's `LimitOffsetPagination` with PostHog's settings (docs/api.md, Conventions).
struct LimitOffsetPagination {
    static let defaultLimit = 100

    let limit: Int
    let offset: Int

    init(query: QueryString) {
        if let text = query["limit"], let value = Int(text), value > 0 {
            limit = value
        } else {
            limit = Self.defaultLimit
        }
        if let text = query["offset"], let value = Int(text), value >= 0 {
            offset = value
        } else {
            offset = 0
        }
    }

    /// `limit`/`offset` bounded so that SQL never sees an overflowing number.
    var sqlLimit: Int { min(limit, 1_000_000_000) }
    var sqlOffset: Int { min(offset, Int(Int32.max)) }

    func page(count: Int, results: [JSONValue], request: APIRequest) -> JSONValue {
        .object([
            "count": .int(Int64(count)),
            "next": JSONValue(nextURL(count: count, request: request)),
            "previous": JSONValue(previousURL(request: request)),
            "results": .array(results),
        ])
    }

    func nextURL(count: Int, request: APIRequest) -> String? {
        let (end, overflow) = offset.addingReportingOverflow(limit)
        if overflow || end >= count { return nil }
        return request.absoluteURL(
            query: request.query.setting("limit", to: String(limit)).setting("offset", to: String(end)))
    }

    func previousURL(request: APIRequest) -> String? {
        if offset <= 0 { return nil }
        if offset - limit <= 0 {
            return request.absoluteURL(query: request.query.setting("limit", to: String(limit)).removing("offset"))
        }
        return request.absoluteURL(
            query: request.query.setting("limit", to: String(limit)).setting("offset", to: String(offset - limit)))
    }
}
