/// The fields a user may change about themselves.
package struct UserInput: Sendable, Equatable {
    package var firstName: String?
    package var lastName: String?
    package var currentOrganization: String?
    package var currentTeam: Int64?

    static let nameMaxLength = 150

    package init() {}

    package static func parse(_ body: JSONValue) throws(APIError) -> UserInput {
        let object = try BodyObject.require(body)
        var input = UserInput()
        if let value = object["first_name"] {
            input.firstName = try FieldParser.string(value, attr: "first_name", maxLength: nameMaxLength)
        }
        if let value = object["last_name"] {
            input.lastName = try FieldParser.string(value, attr: "last_name", maxLength: nameMaxLength, allowBlank: true)
        }
        if let value = object["set_current_organization"] {
            guard case .string(let text) = value, let id = Identifiers.canonicalUUID(text) else {
                throw APIError.validation(
                    "does_not_exist", "Object with id=\(FieldParser.pythonString(value)) does not exist.",
                    attr: "set_current_organization")
            }
            input.currentOrganization = id
        }
        if let value = object["set_current_team"] {
            let id: Int64?
            switch value {
            case .int(let integer): id = integer
            case .string(let text): id = Int64(text)
            default: id = nil
            }
            guard let id else {
                throw APIError.validation(
                    "does_not_exist", "Object with id=\(FieldParser.pythonString(value)) does not exist.", attr: "set_current_team")
            }
            input.currentTeam = id
        }
        return input
    }
}
