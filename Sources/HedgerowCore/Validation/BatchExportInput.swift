import Foundation

/// The writable fields of a batch export (docs/api.md, Batch exports), as parsed from a request body. A nil
/// property was not given; `.some(nil)` clears a nullable field.
package struct BatchExportInput: Sendable {
    package var name: String?
    package var model: ExportModel?
    package var destinationType: DestinationType?
    package var destinationConfig: JSONValue?
    package var interval: Interval?
    package var paused: Bool?
    package var startAt: Timestamp??
    package var endAt: Timestamp??
    package var filters: JSONValue??
    package var timezone: String?
    package var offsetDay: Int??
    package var offsetHour: Int??
    /// Organization routes only: the environment of a new export.
    package var teamID: Int64?

    package init() {}

    /// Parses a body. `full` is true for create and PUT (name, destination and interval required).
    package static func parse(_ body: JSONValue, full: Bool, deliverable: Set<DestinationType>) throws(APIError) -> BatchExportInput {
        let object = try BodyObject.require(body)
        var input = BatchExportInput()
        if let value = object["name"] {
            input.name = try FieldParser.string(value, attr: "name")
        } else if full {
            throw APIError.required("name")
        }
        if let value = object["model"] {
            let name = try FieldParser.choice(value, attr: "model", choices: Set(ExportModel.allCases.map(\.rawValue)), allowNull: true)
            input.model = name.flatMap(ExportModel.init(rawValue:)) ?? .events
        }
        if let value = object["destination"] {
            guard case .object(let destination) = value else {
                throw APIError.invalid("destination", "Invalid data. Expected a dictionary, but got \(value.pythonTypeName).")
            }
            if let typeValue = destination["type"] {
                let name = try FieldParser.choice(
                    typeValue, attr: "destination__type", choices: Set(DestinationType.allCases.map(\.rawValue)))!
                let type = DestinationType(rawValue: name)!
                guard deliverable.contains(type) else {
                    throw APIError.invalidInput("Destination type \(name) is not supported by this server yet", attr: "destination")
                }
                input.destinationType = type
            } else if full {
                throw APIError.required("destination__type")
            }
            input.destinationConfig = try destinationConfig(destination)
        } else if full {
            throw APIError.required("destination")
        }
        if let value = object["interval"] {
            let name = try FieldParser.choice(value, attr: "interval", choices: Set(Interval.allCases.map(\.rawValue)))!
            input.interval = Interval(rawValue: name)
        } else if full {
            throw APIError.required("interval")
        }
        if let value = object["paused"] { input.paused = try FieldParser.boolean(value, attr: "paused") }
        if let value = object["start_at"] { input.startAt = .some(try dateTime(value, attr: "start_at")) }
        if let value = object["end_at"] { input.endAt = .some(try dateTime(value, attr: "end_at")) }
        if let value = object["hogql_query"], !value.isNull, value != .string("") {
            throw APIError.invalidInput(
                "Custom schemas (hogql_query) are not supported by this server yet: remove hogql_query to export the default schema.",
                attr: "hogql_query")
        }
        if let value = object["filters"] {
            if case .array(let items) = value {
                for item in items where item["data_interval_start"] != nil || item["data_interval_end"] != nil {
                    throw APIError.invalidInput(
                        "'data_interval_start' and 'data_interval_end' are run attributes and not 'filters'. Trigger a backfill if you wish to manually control which periods to batch export.",
                        attr: "filters")
                }
            }
            _ = try PropertyFilter.parseList(value)
            input.filters = .some(value.isNull ? nil : value)
        }
        if let value = object["timezone"] {
            guard case .string(let identifier) = value, !identifier.isEmpty, TimeZone(identifier: identifier) != nil else {
                throw APIError.invalidChoice("timezone", FieldParser.pythonString(value))
            }
            input.timezone = identifier
        }
        if let value = object["offset_day"] { input.offsetDay = .some(try integer(value, attr: "offset_day", range: 0...6)) }
        if let value = object["offset_hour"] { input.offsetHour = .some(try integer(value, attr: "offset_hour", range: 0...23)) }
        if let value = object["team_id"] {
            input.teamID = try FieldParser.integer(value, attr: "team_id")
        }
        return input
    }

    /// A destination's config, with the integration PostHog's schema takes beside it
    /// (`integration_id`, write-only) moved into it, where Hedgerow's destinations read it.
    package static func destinationConfig(_ destination: JSONObject) throws(APIError) -> JSONValue {
        let config = destination["config"] ?? .object(JSONObject())
        guard let value = destination["integration_id"], !value.isNull, case .object(var object) = config else { return config }
        object["integration_id"] = .int(try FieldParser.integer(value, attr: "integration_id"))
        return .object(object)
    }

    /// The checks that involve several fields, on the export as it would be after the change.
    package static func checkCombination(_ export: BatchExport) throws(APIError) {
        if let start = export.startAt, let end = export.endAt, start >= end {
            throw APIError.invalidInput("'start_at' must be before 'end_at'.", attr: "start_at")
        }
        if export.offsetDay != nil, export.interval != .week {
            throw APIError.invalidInput("offset_day is not applicable for non-weekly intervals", attr: "offset_day")
        }
        if export.offsetHour != nil, export.interval != .day, export.interval != .week {
            throw APIError.invalidInput("offset_hour is not applicable for non-daily/weekly intervals", attr: "offset_hour")
        }
    }

    /// An ISO 8601 date-time (a naive one is UTC), or null.
    static func dateTime(_ value: JSONValue, attr: String) throws(APIError) -> Timestamp? {
        switch value {
        case .null: return nil
        case .string(let text):
            guard let parsed = ISO8601.parse(text), !parsed.isDateOnly else {
                throw APIError.invalid(
                    attr, "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")
            }
            return parsed.timestamp
        default:
            throw APIError.invalid(
                attr, "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")
        }
    }

    static func integer(_ value: JSONValue, attr: String, range: ClosedRange<Int>) throws(APIError) -> Int? {
        let number: Int
        switch value {
        case .null: return nil
        case .int(let integer): number = Int(clamping: integer)
        case .string(let text):
            guard let parsed = Int(text) else { throw APIError.invalid(attr, "A valid integer is required.") }
            number = parsed
        default: throw APIError.invalid(attr, "A valid integer is required.")
        }
        if number < range.lowerBound {
            throw APIError.validation("min_value", "Ensure this value is greater than or equal to \(range.lowerBound).", attr: attr)
        }
        if number > range.upperBound {
            throw APIError.validation("max_value", "Ensure this value is less than or equal to \(range.upperBound).", attr: attr)
        }
        return number
    }
}
