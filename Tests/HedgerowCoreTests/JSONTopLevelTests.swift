import HedgerowCore
import Testing

@Suite("JSON top-level members without a full parse")
struct JSONTopLevelTests {
    static let keys = ["$set", "$set_once", "$ip"]

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
        for key in Self.keys {
            let found: JSONValue? = try raw[key].map { try JSONParser.parse(Array($0.utf8)) }
            #expect(found == parsed[key], "\(key) in \(sample)")
        }
    }

    @Test func givesUpOnWhatIsNotAnObject() {
        #expect(JSONTopLevel.rawValues(in: "[1]", keys: Self.keys) == nil)
        #expect(JSONTopLevel.rawValues(in: #"{"a":"#, keys: Self.keys) == nil)
        #expect(JSONTopLevel.rawValues(in: #"{"a" 1}"#, keys: Self.keys) == nil)
        #expect(JSONTopLevel.rawValues(in: #"{"a":"unterminated}"#, keys: Self.keys) == nil)
    }
}
