import HedgerowCore
import Testing

@Suite("DRF field rules")
struct FieldParserTests {
    @Test(arguments: [JSONValue.bool(true), "true", "True", "1", "yes", "on", "t", .int(1)])
    func acceptsDRFTrueValues(_ value: JSONValue) throws {
        #expect(try FieldParser.boolean(value, attr: "f") == true)
    }

    @Test(arguments: [JSONValue.bool(false), "false", "False", "0", "no", "off", "f", .int(0)])
    func acceptsDRFFalseValues(_ value: JSONValue) throws {
        #expect(try FieldParser.boolean(value, attr: "f") == false)
    }

    @Test(arguments: [JSONValue.string("maybe"), .int(2), .array([]), .object(JSONObject()), .double(0.5)])
    func rejectsOtherBooleans(_ value: JSONValue) {
        #expect(throws: APIError.invalid("f", "Must be a valid boolean.")) { try FieldParser.boolean(value, attr: "f") }
    }

    @Test func nullBooleanNeedsAllowNull() throws {
        #expect(throws: APIError.null("f")) { try FieldParser.boolean(.null, attr: "f") }
        #expect(try FieldParser.boolean(.null, attr: "f", allowNull: true) == nil)
    }

    @Test func stringsAreTrimmedCheckedForBlankAndLength() throws {
        #expect(try FieldParser.string("  hi  ", attr: "name") == "hi")
        #expect(try FieldParser.string(.int(42), attr: "name") == "42")
        #expect(throws: APIError.blank("name")) { try FieldParser.string("   ", attr: "name") }
        #expect(throws: APIError.maxLength("name", 3)) { try FieldParser.string("abcd", attr: "name", maxLength: 3) }
        #expect(throws: APIError.invalid("name", "Not a valid string.")) { try FieldParser.string(.bool(true), attr: "name") }
        #expect(throws: APIError.null("name")) { try FieldParser.string(.null, attr: "name") }
    }

    @Test func choicesQuoteTheRejectedValue() throws {
        #expect(throws: APIError.invalidChoice("m", "x")) { try FieldParser.choice("x", attr: "m", choices: ["a"]) }
        #expect(throws: APIError.invalidChoice("m", "5")) { try FieldParser.choice(.int(5), attr: "m", choices: ["a"]) }
        #expect(try FieldParser.choice("", attr: "m", choices: ["a"], allowBlank: true) == "")
    }

    @Test func organizationInputReportsTheFirstErrorInFieldOrder() throws {
        let body: JSONValue = .object(["members_can_invite": "nope", "name": ""])
        #expect(throws: APIError.blank("name")) { try OrganizationInput.parse(body, requireName: false) }
        #expect(throws: APIError.required("name")) { try OrganizationInput.parse(.object(JSONObject()), requireName: true) }
        #expect(throws: APIError.invalid(nil, "Invalid data. Expected a dictionary, but got list.")) {
            try OrganizationInput.parse([1], requireName: true)
        }
    }
}
