/// A membership change: the new level (`1`, `8`, `15`, or the same as strings, as DRF's
/// `ChoiceField` accepts).
package enum MemberInput {
    package static func parseLevel(_ body: JSONValue) throws(APIError) -> MembershipLevel? {
        let object = try BodyObject.require(body)
        guard let value = object["level"] else { return nil }
        let text: String
        switch value {
        case .null: throw APIError.null("level")
        case .int(let integer): text = String(integer)
        case .string(let string): text = string
        default: throw APIError.invalidChoice("level", FieldParser.pythonString(value))
        }
        guard let raw = Int(text), let level = MembershipLevel(rawValue: raw) else {
            throw APIError.invalidChoice("level", text)
        }
        return level
    }
}
