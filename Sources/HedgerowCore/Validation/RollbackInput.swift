/// The body of `environments_rollback`: source environment id → target environment id
/// (docs/api.md, environments_rollback). Keys are strings of integers; values integers or numeric strings.
package enum RollbackInput {
    static let invalidMessage = "Environment mappings must map environment ids to environment ids"

    /// Pairs in body order, or the 400 of docs/api.md, environments_rollback steps 2 and 3.
    package static func parse(_ body: JSONValue) throws(APIError) -> [(source: Int64, target: Int64)] {
        guard case .object(let object) = body else { throw APIError.invalidInput(invalidMessage) }
        guard !object.isEmpty else { throw APIError.invalidInput("Environment mappings are required") }
        var pairs: [(source: Int64, target: Int64)] = []
        for (key, value) in object.entries {
            guard let source = Int64(key.trimmingWhitespace) else { throw APIError.invalidInput(invalidMessage) }
            let target: Int64?
            switch value {
            case .int(let integer): target = integer
            case .string(let text): target = Int64(text.trimmingWhitespace)
            default: target = nil
            }
            guard let target else { throw APIError.invalidInput(invalidMessage) }
            pairs.append((source, target))
        }
        return pairs
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
