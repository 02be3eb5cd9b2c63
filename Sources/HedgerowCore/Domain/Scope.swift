/// A personal API key scope: `*`, or `<object>:read` / `<object>:write`.
package struct Scope: Sendable, Hashable, CustomStringConvertible {
    package enum Access: String, Sendable { case read, write }

    /// The objects whose scopes Hedgerow knows.
    package static let objects: Set<String> = [
        "organization", "organization_member", "project", "batch_export", "personal_api_key", "user", "person", "integration",
    ]

    package let object: String?  // nil for `*`
    package let access: Access

    package static let all = Scope(object: nil, access: .write)

    package init(object: String?, access: Access) {
        self.object = object
        self.access = access
    }

    /// Parses a scope string; nil when it is not one Hedgerow knows.
    package init?(_ text: String) {
        if text == "*" {
            self = .all
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, Self.objects.contains(String(parts[0])), let access = Access(rawValue: String(parts[1]))
        else { return nil }
        self.object = String(parts[0])
        self.access = access
    }

    package var description: String { object.map { "\($0):\(access.rawValue)" } ?? "*" }

    /// Validates scope strings given at key creation: 400 `Invalid scope: X` for the first unknown one.
    package static func parseList(_ strings: [String], attr: String = "scopes") throws(APIError) -> [Scope] {
        var scopes: [Scope] = []
        for string in strings {
            guard let scope = Scope(string) else { throw APIError.invalidInput("Invalid scope: \(string)", attr: attr) }
            scopes.append(scope)
        }
        return scopes
    }
}

/// What a route requires of a scoped key.
package enum RequiredScope: Sendable, Equatable {
    /// The action needs `<object>:<access>`.
    case scope(String, Scope.Access)
    /// The action declares no scope: scoped keys are refused.
    case unsupported

    package var description: String {
        switch self {
        case .scope(let object, let access): "\(object):\(access.rawValue)"
        case .unsupported: "none"
        }
    }
}

extension Array where Element == Scope {
    /// Whether these scopes grant `object:access`. An empty list is a legacy key with full access;
    /// `write` implies `read`.
    package func grants(object: String, access: Scope.Access) -> Bool {
        if isEmpty { return true }
        return contains { scope in
            if scope.object == nil { return true }
            guard scope.object == object else { return false }
            return scope.access == .write || access == .read
        }
    }
}
