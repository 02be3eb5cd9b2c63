import Foundation

/// A JSON document as a value. Objects keep their keys in insertion order, so responses can be
/// written in exactly the key order PostHog uses.
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The Python type name DRF uses in messages such as "Expected a dictionary, but got list."
    package var pythonTypeName: String {
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

    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    package var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    package var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    package var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    package subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

/// An ordered JSON object: keys keep their insertion order. Setting an existing key replaces its
/// value in place, so for duplicate keys in a document the last one wins, as Python's `json`
/// decides.
///
/// The members are one array. Past `linearLimit` members a hashed index by key is kept beside it,
/// so parsing an object of n keys costs O(n), not O(n²) (a body of 40 000 keys must not stall the
/// server). An object written as a literal in code (a response being rendered) has unique keys by
/// construction and is looked up rarely, so up to `literalLimit` members it is kept without the
/// index, and building it hashes nothing.
package struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    package typealias Member = (key: String, value: JSONValue)

    /// Without an index, lookups scan at most this many members, except in a literal's object.
    static let linearLimit = 8
    /// A literal's object of at most this many members is kept without an index.
    static let literalLimit = 32

    private var members: [Member]
    /// Each key's position in `members`; nil only while `members` is short enough to scan (at most
    /// `linearLimit` members, or `literalLimit` for a literal's object, whose keys are unique).
    private var index: [String: Int]?

    package init() {
        members = []
        index = nil
    }

    package init(_ entries: [(String, JSONValue)]) {
        self.init()
        members.reserveCapacity(entries.count)
        for (key, value) in entries { self[key] = value }
    }

    /// An object whose keys are unique by construction (a literal in code).
    init(literal elements: [(String, JSONValue)]) {
        guard elements.count <= Self.literalLimit else {
            self.init(elements)
            return
        }
        assert(Set(elements.map(\.0)).count == elements.count, "a JSON object literal repeats a key")
        self.init()
        members = elements.map { (key: $0.0, value: $0.1) }
    }

    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(literal: elements)
    }

    /// The members in order, as `(key, value)` pairs.
    package var entries: Entries { Entries(elements: members) }

    /// A view of the members in order (no copy).
    package struct Entries: RandomAccessCollection, Sendable {
        let elements: [Member]
        package var startIndex: Int { elements.startIndex }
        package var endIndex: Int { elements.endIndex }
        package subscript(position: Int) -> Member { elements[position] }
        package func index(after index: Int) -> Int { index + 1 }
        package func index(before index: Int) -> Int { index - 1 }
    }
    package var keys: [String] { members.map(\.key) }
    package var isEmpty: Bool { members.isEmpty }
    package var count: Int { members.count }

    /// Room for `count` members without growing (the parser knows nothing in advance; encoders do).
    package mutating func reserveCapacity(_ count: Int) {
        members.reserveCapacity(count)
        index?.reserveCapacity(count)
    }

    package func contains(_ key: String) -> Bool {
        position(of: key) != nil
    }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        return members.firstIndex { $0.key == key }
    }

    private mutating func rebuildIndex() {
        guard members.count > Self.linearLimit else {
            index = nil
            return
        }
        var built: [String: Int] = [:]
        built.reserveCapacity(Swift.max(members.count, members.capacity))
        for (offset, member) in members.enumerated() { built[member.key] = offset }
        index = built
    }

    package subscript(key: String) -> JSONValue? {
        get { position(of: key).map { members[$0].value } }
        set {
            let found = position(of: key)
            switch (found, newValue) {
            case (let position?, let value?):
                members[position].value = value
            case (nil, let value?):
                members.append((key: key, value: value))
                if index != nil {
                    index![key] = members.count - 1
                } else if members.count > Self.linearLimit {
                    rebuildIndex()
                }
            case (let position?, nil):
                members.remove(at: position)
                rebuildIndex()
            case (nil, nil):
                break
            }
        }
    }

    /// Equal when the same keys hold the same values in the same order.
    package static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for (left, right) in zip(lhs.members, rhs.members) where left.key != right.key || left.value != right.value { return false }
        return true
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral, ExpressibleByDictionaryLiteral
{
    package init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(literal: elements)) }
    package init(stringLiteral value: String) { self = .string(value) }
    package init(integerLiteral value: Int64) { self = .int(value) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    package init(nilLiteral: ()) { self = .null }
    package init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue {
    package init(_ value: String?) { self = value.map(JSONValue.string) ?? .null }
    package init(_ value: Int?) { self = value.map { .int(Int64($0)) } ?? .null }
    package init(_ value: Int64?) { self = value.map(JSONValue.int) ?? .null }
    package init(_ value: Bool?) { self = value.map(JSONValue.bool) ?? .null }
}

extension JSONValue: CustomStringConvertible {
    /// The value as compact JSON text.
    package var description: String { JSONWriter.string(self) }
}
