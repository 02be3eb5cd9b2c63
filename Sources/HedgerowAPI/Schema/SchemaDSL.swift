import HedgerowCore

/// A small vocabulary for the OpenAPI 3.0 schemas of `/api/schema/` (PostHog's drf-spectacular
/// documents are 3.0.3: `nullable`, `readOnly`, `$ref` wrapped in `allOf` when it needs siblings).
enum Schema {
    static let string: JSONObject = ["type": "string"]
    static let uuid: JSONObject = ["type": "string", "format": "uuid"]
    static let dateTime: JSONObject = ["type": "string", "format": "date-time"]
    static let uri: JSONObject = ["type": "string", "format": "uri"]
    static let integer: JSONObject = ["type": "integer"]
    static let int64: JSONObject = ["type": "integer", "format": "int64"]
    static let number: JSONObject = ["type": "number", "format": "double"]
    static let boolean: JSONObject = ["type": "boolean"]
    /// Any JSON value, null included.
    static let any: JSONObject = ["nullable": true]
    static let object: JSONObject = ["type": "object", "additionalProperties": .object([:])]

    static func string(maxLength: Int, minLength: Int? = nil) -> JSONObject {
        var schema = string
        schema["maxLength"] = .int(Int64(maxLength))
        if let minLength { schema["minLength"] = .int(Int64(minLength)) }
        return schema
    }

    static func array(_ items: JSONObject) -> JSONObject { ["type": "array", "items": .object(items)] }

    static func ref(_ component: String) -> JSONObject { ["$ref": .string("#/components/schemas/\(component)")] }

    static func strings(_ values: [String]) -> JSONObject {
        ["type": "string", "enum": .array(values.map(JSONValue.string))]
    }

    static func integers(_ values: [Int64]) -> JSONObject {
        ["type": "integer", "enum": .array(values.map(JSONValue.int))]
    }

    /// `nullable: true`; an enum lists null among its values too (OpenAPI 3.0.3's rule, which
    /// generators follow).
    static func nullable(_ schema: JSONObject) -> JSONObject {
        var schema = schema.keys.contains("$ref") ? ["allOf": .array([.object(schema)])] : schema
        schema["nullable"] = true
        if case .array(let values)? = schema["enum"] { schema["enum"] = .array(values + [.null]) }
        return schema
    }

    /// An inline object schema with these properties (the small bodies of actions, nested values).
    static func inline(_ properties: [(String, JSONObject)], required: [String]) -> JSONObject {
        var schema: JSONObject = ["type": "object", "properties": .object(JSONObject(properties.map { ($0, .object($1)) }))]
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        return schema
    }
}

/// One property of a model: its schema and how DRF treats it.
struct Field {
    enum Access { case readWrite, readOnly, writeOnly }

    var name: String
    var schema: JSONObject
    var access: Access
    var required: Bool

    /// Read-only fields are always present in a response, so drf-spectacular lists them as required.
    init(_ name: String, _ schema: JSONObject, _ access: Access = .readWrite, required: Bool? = nil) {
        self.name = name
        self.schema = schema
        self.access = access
        self.required = required ?? (access == .readOnly)
    }

    var property: JSONObject {
        var property = schema
        if property.keys.contains("$ref"), access != .readWrite { property = ["allOf": .array([.object(property)])] }
        switch access {
        case .readOnly: property["readOnly"] = true
        case .writeOnly: property["writeOnly"] = true
        case .readWrite: break
        }
        return property
    }
}

/// A model and the variants DRF derives from it: `Patched<Name>` (nothing required) and
/// `Paginated<Name>List` (LimitOffset: `count`, `next`, `previous`, `results`).
struct Model {
    var name: String
    var fields: [Field]
    var description: String?

    func schema(patched: Bool = false) -> JSONObject {
        var schema: JSONObject = ["type": "object"]
        if let description { schema["description"] = .string(description) }
        schema["properties"] = .object(JSONObject(fields.map { ($0.name, .object($0.property)) }))
        let required = patched ? [] : fields.filter(\.required).map(\.name)
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        return schema
    }

    static func limitOffsetPage(of component: String) -> JSONObject {
        Schema.inline(
            [
                ("count", Schema.integer), ("next", Schema.nullable(Schema.uri)), ("previous", Schema.nullable(Schema.uri)),
                ("results", Schema.array(Schema.ref(component))),
            ], required: ["count", "results"])
    }

    static func cursorPage(of component: String) -> JSONObject {
        Schema.inline(
            [
                ("next", Schema.nullable(Schema.uri)), ("previous", Schema.nullable(Schema.uri)),
                ("results", Schema.array(Schema.ref(component))),
            ], required: ["results"])
    }
}
