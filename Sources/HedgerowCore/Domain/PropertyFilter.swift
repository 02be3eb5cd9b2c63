/// A batch-export property filter (docs/engine.md §2): `{key, operator, type, value}`, all of a list
/// must hold. `type` `event` tests the event's properties, `person` its person properties.
package struct PropertyFilter: Sendable, Equatable {
    package enum Operator: String, Sendable, CaseIterable {
        case exact, isNot = "is_not", icontains, notIcontains = "not_icontains", regex, notRegex = "not_regex"
        case gt, gte, lt, lte, isSet = "is_set", isNotSet = "is_not_set"

        var isNumeric: Bool { [.gt, .gte, .lt, .lte].contains(self) }
        var needsValue: Bool { self != .isSet && self != .isNotSet }
    }

    package enum Kind: String, Sendable {
        case event, person
    }

    package var key: String
    package var op: Operator
    package var kind: Kind
    /// The values compared against, as text (numbers as written, booleans `true`/`false`); any one
    /// may match. Empty for `is_set` / `is_not_set`.
    package var values: [String]
    /// For `gt`…`lte`: the number.
    package var number: Double?

    package init(key: String, op: Operator, kind: Kind = .event, values: [String] = [], number: Double? = nil) {
        self.key = key
        self.op = op
        self.kind = kind
        self.values = values
        self.number = number
    }

    /// Parses one filter object, refusing what Hedgerow cannot evaluate (so that an export never
    /// accepts a filter it would silently ignore).
    package static func parse(_ value: JSONValue, attr: String = "filters") throws(APIError) -> PropertyFilter {
        guard case .object(let object) = value else { throw APIError.invalidInput("Each filter must be an object.", attr: attr) }
        guard case .string(let key)? = object["key"], !key.isEmpty else {
            throw APIError.invalidInput("Each filter needs a 'key'.", attr: attr)
        }
        guard !key.contains("\""), !key.contains("\\") else {
            throw APIError.invalidInput("Filter keys may not contain '\"' or '\\\\'.", attr: attr)
        }
        let operatorName = object["operator"]?.stringValue ?? "exact"
        guard let op = Operator(rawValue: operatorName) else {
            throw APIError.invalidInput(
                "Filter operator '\(operatorName)' is not supported. Supported operators are: "
                    + Operator.allCases.map(\.rawValue).joined(separator: ", ") + ".", attr: attr)
        }
        let typeName = object["type"]?.stringValue ?? "event"
        guard let kind = Kind(rawValue: typeName) else {
            throw APIError.invalidInput(
                "Filter type '\(typeName)' is not supported by this server yet. Supported types are: event, person.", attr: attr)
        }
        var filter = PropertyFilter(key: key, op: op, kind: kind)
        guard op.needsValue else { return filter }
        let raw: [JSONValue]
        switch object["value"] {
        case .array(let list)?: raw = list
        case nil, .null?: raw = []
        case let scalar?: raw = [scalar]
        }
        var texts: [String] = []
        for item in raw {
            switch item {
            case .string(let text): texts.append(text)
            case .int, .double, .bool: texts.append(FieldParser.pythonString(item).replacingPythonBooleans)
            default: throw APIError.invalidInput("Filter values must be strings, numbers or booleans.", attr: attr)
            }
        }
        guard !texts.isEmpty else {
            throw APIError.invalidInput("Filter '\(key)' with operator '\(op.rawValue)' needs a value.", attr: attr)
        }
        if op.isNumeric {
            guard texts.count == 1, let number = Double(texts[0]), number.isFinite else {
                throw APIError.invalidInput("Filter '\(key)' with operator '\(op.rawValue)' needs one number.", attr: attr)
            }
            filter.number = number
        }
        if op == .regex || op == .notRegex {
            for pattern in texts where pattern.count > RegexCheck.maximumPatternLength {
                throw APIError.invalidInput(
                    "Filter '\(key)' has a regular expression of \(pattern.count) characters; at most \(RegexCheck.maximumPatternLength) are allowed.",
                    attr: attr)
            }
            for pattern in texts where !RegexCheck.isValid(pattern) {
                throw APIError.invalidInput("Filter '\(key)' has an invalid regular expression: \(pattern)", attr: attr)
            }
        }
        filter.values = texts
        return filter
    }

    package static func parseList(_ value: JSONValue, attr: String = "filters") throws(APIError) -> [PropertyFilter] {
        switch value {
        case .null: return []
        case .array(let items):
            var filters: [PropertyFilter] = []
            for item in items { filters.append(try parse(item, attr: attr)) }
            return filters
        default: throw APIError.invalidInput("'filters' must be a list of filter objects.", attr: attr)
        }
    }
}

extension String {
    /// JSON spells booleans `true`/`false`; Python `True`/`False`.
    fileprivate var replacingPythonBooleans: String {
        self == "True" ? "true" : self == "False" ? "false" : self
    }
}
