import HedgerowCore
import Testing

@Suite("JSON top-level members without a full parse")
struct JSONTopLevelTests {
    static let keys = JSONTopLevel.Keys(["$set", "$set_once", "$ip"])

    @Test(arguments: [
        #"{"$set":{"a":[1,{"b":"}]"}]},"x":"a\"b{","$ip":"1.2.3.4","$set_once":null}"#,
        #" { "n" : 1.5e3 , "$ip" : "a\\\"b" , "t": true } "#,
        #"{}"#,
        #"{"$set":"{not an object}","k":[[],{}],"$set_once":{"deep":{"er":[{"est":"\u00e9"}]}}}"#,
        #"{"$ipx":1,"$ip":-2,"$set_once":false}"#,
    ])
    func findsTheSameMembersAsTheFullParser(_ sample: String) throws {
        let raw = try #require(JSONTopLevel.rawValues(in: sample, keys: Self.keys))
        let parsed = try #require(try JSONParser.parse(Array(sample.utf8)).objectValue)
        #expect(raw.count == Self.keys.names.count)
        for (position, key) in Self.keys.names.enumerated() {
            let found: JSONValue? = try raw[position].map { try JSONParser.parse(Array($0.utf8)) }
            #expect(found == parsed[key], "\(key) in \(sample)")
        }
    }

    @Test("A repeated key gives its last value, as the full parser does")
    func repeatedKey() throws {
        let raw = try #require(JSONTopLevel.rawValues(in: #"{"$ip":"1.1.1.1","$ip":"2.2.2.2"}"#, keys: Self.keys))
        #expect(raw == [nil, nil, #""2.2.2.2""#])
        #expect(try JSONParser.parse(Array(#"{"$ip":"1.1.1.1","$ip":"2.2.2.2"}"#.utf8))["$ip"] == "2.2.2.2")
    }

    @Test func givesUpOnWhatIsNotAnObject() {
        #expect(JSONTopLevel.rawValues(in: "[1]", keys: Self.keys) == nil)
        #expect(JSONTopLevel.rawValues(in: #"{"a":"#, keys: Self.keys) == nil)
        #expect(JSONTopLevel.rawValues(in: #"{"a" 1}"#, keys: Self.keys) == nil)
        #expect(JSONTopLevel.rawValues(in: #"{"a":"unterminated}"#, keys: Self.keys) == nil)
    }
}
