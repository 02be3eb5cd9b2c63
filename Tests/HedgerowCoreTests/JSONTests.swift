import HedgerowCore
import Testing

@Suite("JSON parser and writer")
struct JSONTests {
    @Test func parsesObjectsKeepingKeyOrder() throws {
        let value = try JSONParser.parse(#"{"b": 1, "a": [true, null, "x"], "c": {"d": -2.5}}"#)
        #expect(value.objectValue?.keys == ["b", "a", "c"])
        #expect(value["a"] == [true, nil, "x"])
        #expect(value["c"]?["d"] == .double(-2.5))
    }

    @Test func duplicateKeysKeepTheLastValueAtTheFirstPosition() throws {
        // Python's json (and so PostHog) keeps the last value of a repeated key.
        let value = try JSONParser.parse(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(value.objectValue?.keys == ["a", "b"])
        #expect(value["a"] == 3)
        var object = JSONObject([("x", 1), ("y", 2), ("x", 5)])
        #expect(object.keys == ["x", "y"] && object["x"] == 5)
        object["x"] = nil
        #expect(object.keys == ["y"] && !object.contains("x"))
    }

    /// Objects keep a hashed index only past a few members (or, written as literals, past a few
    /// dozen): every operation must answer the same on either side of that size, from any start.
    @Test func objectsAgreeWithAnOrderedListModelBelowAndPastTheIndexSize() {
        let literal: JSONObject = [
            "k0": 0, "k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9, "k10": 10, "k11": 11,
        ]
        let starts: [(JSONObject, [(String, JSONValue)])] = [
            (JSONObject(), []),
            (literal, (0..<12).map { ("k\($0)", .int(Int64($0))) }),
            (JSONObject((0..<20).map { ("k\($0 % 10)", .int(Int64($0))) }), (0..<10).map { ("k\($0)", .int(Int64($0 + 10))) }),
        ]
        var generator = SystemRandomNumberGenerator()
        for (start, startModel) in starts {
            var object = start
            var model = startModel
            #expect(object.keys == model.map(\.0))
            for step in 0..<2000 {
                let key = "k\(Int.random(in: 0..<40, using: &generator))"
                if Int.random(in: 0..<4, using: &generator) == 0 {
                    object[key] = nil
                    model.removeAll { $0.0 == key }
                } else {
                    object[key] = .int(Int64(step))
                    if let position = model.firstIndex(where: { $0.0 == key }) {
                        model[position].1 = .int(Int64(step))
                    } else {
                        model.append((key, .int(Int64(step))))
                    }
                }
                let probe = "k\(Int.random(in: 0..<40, using: &generator))"
                #expect(object[probe] == model.first { $0.0 == probe }?.1)
                #expect(object.contains(probe) == model.contains { $0.0 == probe })
                #expect(object.count == model.count)
            }
            #expect(object.keys == model.map(\.0))
            #expect(object.entries.map(\.value) == model.map(\.1))
            #expect(object == JSONObject(model))
            #expect(JSONWriter.string(.object(object)) == JSONWriter.string(.object(JSONObject(model))))
        }
        #expect(literal == JSONObject((0..<12).map { ("k\($0)", .int(Int64($0))) }))
        #expect(literal != JSONObject((0..<12).reversed().map { ("k\($0)", .int(Int64($0))) }))
    }

    @Test func parsesWideObjects() throws {
        let keys = 200_000
        let text = "{" + (0..<keys).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        let object = try #require(try JSONParser.parse(text).objectValue)
        #expect(object.count == keys)
        #expect(object["k0"] == 0 && object["k199999"] == 199_999)
        #expect(object.keys.first == "k0" && object.keys.last == "k199999")
    }

    @Test func keepsLargeIntegersExact() throws {
        #expect(try JSONParser.parse("9007199254740993") == .int(9_007_199_254_740_993))
        #expect(try JSONParser.parse("1e3") == .double(1000))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "01", "\"\\x\"", "{} x", "1.", "-", "\"\u{01}\"", "1e999"])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParser.ParseError.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParser.ParseError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test func boundsNestingDepth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParser.ParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONParser.parse(fine) }
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try JSONParser.parse(#""a\"\\\/\n\u00e9\ud83d\ude00""#) == .string("a\"\\/\né😀"))
        #expect(throws: JSONParser.ParseError.self) { try JSONParser.parse(#""\ud83d""#) }
    }

    @Test func writesCompactJSONInObjectOrder() {
        let value: JSONValue = .object(["z": 1, "a": "x\"y\n\u{01}", "m": [nil, true, 1.5]])
        #expect(JSONWriter.string(value) == #"{"z":1,"a":"x\"y\n\u0001","m":[null,true,1.5]}"#)
    }

    @Test func roundTrips() throws {
        let text = #"{"k":[1,-2,3.25,"é",{"n":null}],"b":false}"#
        #expect(JSONWriter.string(try JSONParser.parse(text)) == text)
    }
}
