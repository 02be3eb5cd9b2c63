import Foundation

/// Field parsing with Django REST framework's rules and messages, so that every 400 reads exactly as
/// PostHog's would.
package enum FieldParser {
    static let trueValues: Set<String> = ["t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1"]
    static let falseValues: Set<String> = ["f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0"]

    /// DRF `CharField`: strings, and numbers turned into strings; trimmed; blank and length checked.
    package static func string(
        _ value: JSONValue, attr: String, maxLength: Int? = nil, allowBlank: Bool = false, allowNull: Bool = false
    ) throws(APIError) -> String? {
        let text: String
        switch value {
        case .null:
            if allowNull { return nil }
            throw APIError.null(attr)
        case .string(let string): text = string.trimmingCharacters(in: .whitespacesAndNewlines)
        case .int(let integer): text = String(integer)
        case .double(let double): text = String(double)
        default: throw APIError.invalid(attr, "Not a valid string.")
        }
        if text.isEmpty, !allowBlank { throw APIError.blank(attr) }
        if let maxLength, text.count > maxLength { throw APIError.maxLength(attr, maxLength) }
        return text
    }

    /// DRF `BooleanField`: JSON booleans, and the strings and numbers DRF accepts.
    package static func boolean(_ value: JSONValue, attr: String, allowNull: Bool = false) throws(APIError) -> Bool? {
        switch value {
        case .null:
            if allowNull { return nil }
            throw APIError.null(attr)
        case .bool(let flag): return flag
        case .int(1): return true
        case .int(0): return false
        case .double(1): return true
        case .double(0): return false
        case .string(let text):
            if trueValues.contains(text) { return true }
            if falseValues.contains(text) { return false }
            if allowNull, ["null", "Null", "NULL", ""].contains(text) { return nil }
        default: break
        }
        throw APIError.invalid(attr, "Must be a valid boolean.")
    }

    /// DRF `IntegerField`: JSON integers, whole numbers, and their text (form bodies), `"5.0"` too.
    package static func integer(_ value: JSONValue, attr: String) throws(APIError) -> Int64 {
        switch value {
        case .int(let number): return number
        case .double(let number) where number.rounded() == number && abs(number) < 9.2e18: return Int64(number)
        case .string(let text):
            var digits = Substring(text.trimmingCharacters(in: .whitespaces))
            if let dot = digits.firstIndex(of: "."), digits[digits.index(after: dot)...].allSatisfy({ $0 == "0" }) {
                digits = digits[..<dot]
            }
            if let number = Int64(digits) { return number }
        default: break
        }
        throw APIError.invalid(attr, "A valid integer is required.")
    }

    /// DRF `ChoiceField`.
    package static func choice(
        _ value: JSONValue, attr: String, choices: Set<String>, allowBlank: Bool = false, allowNull: Bool = false
    ) throws(APIError) -> String? {
        switch value {
        case .null:
            if allowNull { return nil }
            throw APIError.null(attr)
        case .string(let text):
            if text.isEmpty, allowBlank { return "" }
            if choices.contains(text) { return text }
            throw APIError.invalidChoice(attr, text)
        default:
            throw APIError.invalidChoice(attr, pythonString(value))
        }
    }

    /// A related object's primary key that Hedgerow has no objects for yet: any non-null value is
    /// unknown (`does_not_exist`), as DRF's `PrimaryKeyRelatedField` reports it.
    static func unknownRelation(_ value: JSONValue, attr: String) throws(APIError) {
        switch value {
        case .null: return
        case .string, .int, .double: throw APIError.doesNotExist(attr, pk: pythonString(value))
        default:
            throw APIError.validation(
                "incorrect_type", "Incorrect type. Expected pk value, received \(value.pythonTypeName).", attr: attr)
        }
    }

    /// How Python's `str()` prints a JSON value (as DRF quotes it in messages).
    package static func pythonString(_ value: JSONValue) -> String {
        switch value {
        case .null: "None"
        case .bool(let flag): flag ? "True" : "False"
        case .int(let integer): String(integer)
        case .double(let double): String(double)
        case .string(let text): text
        case .array, .object: JSONWriter.string(value)
        }
    }
}
