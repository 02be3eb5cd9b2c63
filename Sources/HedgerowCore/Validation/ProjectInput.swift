import Foundation

/// The writable fields of a project or an environment: a name, and the environment settings
/// Hedgerow keeps (a project's go to its main environment). PostHog's other settings are checked
/// by `TeamSettings`.
package struct ProjectInput: Sendable, Equatable {
    package var name: String?
    package var timezone: String?
    package var isDemo: Bool?
    package var completedSnippetOnboarding: Bool?

    static let nameMaxLength = 200

    package init(name: String? = nil, timezone: String? = nil) {
        self.name = name
        self.timezone = timezone
    }

    package static func parse(_ body: JSONValue, requireName: Bool) throws(APIError) -> ProjectInput {
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
        if let value = object["is_demo"] { input.isDemo = try FieldParser.boolean(value, attr: "is_demo") }
        if let value = object["completed_snippet_onboarding"] {
            input.completedSnippetOnboarding = try FieldParser.boolean(value, attr: "completed_snippet_onboarding")
        }
        return input
    }

    /// Sets the environment settings the input gives; whether anything changed.
    @discardableResult
    package func apply(to environment: inout Environment) -> Bool {
        let before = environment
        if let timezone { environment.timezone = timezone }
        if let isDemo { environment.isDemo = isDemo }
        if let completedSnippetOnboarding { environment.completedSnippetOnboarding = completedSnippetOnboarding }
        return environment != before
    }
}
