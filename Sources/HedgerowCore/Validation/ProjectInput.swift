import Foundation

/// The writable fields of a project or an environment: a name and (environments) a time zone.
public struct ProjectInput: Sendable, Equatable {
    public var name: String?
    public var timezone: String?

    public static let nameMaxLength = 200

    public init(name: String? = nil, timezone: String? = nil) {
        self.name = name
        self.timezone = timezone
    }

    public static func parse(_ body: JSONValue, requireName: Bool) throws(APIError) -> ProjectInput {
        let object = try BodyObject.require(body)
        try TeamSettings.checkUnchanged(object)
        var input = ProjectInput()
        if let value = object["name"] {
            input.name = try FieldParser.string(value, attr: "name", maxLength: nameMaxLength)
        } else if requireName {
            throw APIError.required("name")
        }
        if let value = object["timezone"] {
            guard case .string(let identifier) = value, TimeZone(identifier: identifier) != nil, !identifier.isEmpty else {
                throw APIError.invalidChoice("timezone", FieldParser.pythonString(value))
            }
            input.timezone = identifier
        }
        return input
    }
}
