/// The writable fields of a personal API key.
package struct PersonalAPIKeyInput: Sendable, Equatable {
    package var label: String?
    package var scopes: [Scope]?
    /// `.some(nil)` removes the limit.
    package var scopedTeams: [Int64]??
    package var scopedOrganizations: [String]??

    package static let labelMaxLength = 40

    package init() {}

    package static func parse(_ body: JSONValue, requireAll: Bool) throws(APIError) -> PersonalAPIKeyInput {
        let object = try BodyObject.require(body)
        var input = PersonalAPIKeyInput()
        if let value = object["label"] {
            input.label = try FieldParser.string(value, attr: "label", maxLength: labelMaxLength)
        } else if requireAll {
            throw APIError.required("label")
        }
        if let value = object["scopes"] {
            guard case .array(let elements) = value else {
                throw APIError.validation(
                    "not_a_list", "Expected a list of items but got type \"\(value.pythonTypeName)\".", attr: "scopes")
            }
            var strings: [String] = []
            for element in elements {
                guard case .string(let text) = element else {
                    throw APIError.invalidInput("Invalid scope: \(FieldParser.pythonString(element))", attr: "scopes")
                }
                strings.append(text)
            }
            guard !strings.isEmpty else { throw APIError.invalidInput("At least one scope is required.", attr: "scopes") }
            input.scopes = try Scope.parseList(strings)
        } else if requireAll {
            throw APIError.required("scopes")
        }
        if let value = object["scoped_teams"] {
            input.scopedTeams = .some(
                try parseList(value, attr: "scoped_teams") { element -> Int64? in
                    if case .int(let integer) = element { return integer }
                    return nil
                })
        }
        if let value = object["scoped_organizations"] {
            input.scopedOrganizations = .some(
                try parseList(value, attr: "scoped_organizations") { element -> String? in
                    if case .string(let text) = element { return Identifiers.canonicalUUID(text) }
                    return nil
                })
        }
        return input
    }

    static func parseList<T>(_ value: JSONValue, attr: String, _ element: (JSONValue) -> T?) throws(APIError) -> [T]? {
        switch value {
        case .null: return nil
        case .array(let elements):
            var result: [T] = []
            for item in elements {
                guard let parsed = element(item) else {
                    throw APIError.invalid(attr, "\"\(FieldParser.pythonString(item))\" is not a valid value.")
                }
                result.append(parsed)
            }
            return result
        default:
            throw APIError.validation("not_a_list", "Expected a list of items but got type \"\(value.pythonTypeName)\".", attr: attr)
        }
    }
}
