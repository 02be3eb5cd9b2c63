import Foundation
import OrderedCollections

/// A JSON document as a value. Objects keep their keys in insertion order, so responses can be
/// written in exactly the key order PostHog uses.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The Python type name DRF uses in messages such as "Expected a dictionary, but got list."
    public var pythonTypeName: String {
        switch self {
        case .null: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .array: "list"
        case .object: "dict"
        }
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

/// An ordered JSON object: keys keep their insertion order, and lookups and inserts are hashed, so
/// parsing an object of n keys costs O(n), not O(n²) (a body of 40 000 keys must not stall the
/// server). Setting an existing key replaces its value in place, so for duplicate keys in a
/// document the last one wins, as Python's `json` decides.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    private var storage: OrderedDictionary<String, JSONValue>

    public init() { storage = [:] }

    public init(_ entries: [(String, JSONValue)]) {
        storage = OrderedDictionary(entries, uniquingKeysWith: { _, last in last })
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    /// The members in order, as `(key, value)` pairs.
    public var entries: Entries { Entries(elements: storage.elements) }

    /// A view of the members in order (no copy).
    public struct Entries: RandomAccessCollection, Sendable {
        let elements: OrderedDictionary<String, JSONValue>.Elements
        public var startIndex: Int { elements.startIndex }
        public var endIndex: Int { elements.endIndex }
        public subscript(position: Int) -> (key: String, value: JSONValue) { elements[position] }
        public func index(after index: Int) -> Int { index + 1 }
        public func index(before index: Int) -> Int { index - 1 }
    }
    public var keys: [String] { Array(storage.keys) }
    public var isEmpty: Bool { storage.isEmpty }
    public var count: Int { storage.count }

    /// Room for `count` members without growing (the parser knows nothing in advance; encoders do).
    public mutating func reserveCapacity(_ count: Int) { storage.reserveCapacity(count) }

    public func contains(_ key: String) -> Bool {
        storage.index(forKey: key) != nil
    }

    public subscript(key: String) -> JSONValue? {
        get { storage[key] }
        set { storage[key] = newValue }
    }

    /// Equal when the same keys hold the same values in the same order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.storage == rhs.storage
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral, ExpressibleByDictionaryLiteral
{
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue {
    public init(_ value: String?) { self = value.map(JSONValue.string) ?? .null }
    public init(_ value: Int?) { self = value.map { .int(Int64($0)) } ?? .null }
    public init(_ value: Int64?) { self = value.map(JSONValue.int) ?? .null }
    public init(_ value: Bool?) { self = value.map(JSONValue.bool) ?? .null }
}

extension JSONValue: CustomStringConvertible {
    /// The value as compact JSON text.
    public var description: String { JSONWriter.string(self) }
}
