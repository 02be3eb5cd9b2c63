import HedgerowCore
import Testing

@Suite("Sessions and person updates")
struct SessionTests {
    static func facts(_ event: String, _ properties: JSONObject) -> SessionFacts {
        var properties = properties
        properties["$session_id"] = "0190a3b2-aaaa-7000-8000-000000000001"
        return SessionFacts(event: event, properties: properties)!
    }

    @Test func storedFormRoundTrips() throws {
        var session = Session(
            teamID: 3, sessionID: "0190a3b2-aaaa-7000-8000-000000000001", distinctID: "u", at: Timestamp(microseconds: 5_000_000),
            insertedAt: Timestamp(microseconds: 9_000_000))
        session.add(
            Self.facts("$pageview", ["$current_url": "https://a.example/x?y=1", "utm_source": "google", "gclid": "g"]),
            distinctID: "u", at: Timestamp(microseconds: 5_000_000), insertedAt: Timestamp(microseconds: 9_000_000))
        session.add(
            Self.facts("$web_vitals", ["$web_vitals_LCP_value": 1234.5]), distinctID: "v", at: Timestamp(microseconds: 6_000_000),
            insertedAt: Timestamp(microseconds: 9_500_000))
        session.add(
            Self.facts("$autocapture", ["$external_click_url": "https://out.example/"]), distinctID: "v",
            at: Timestamp(microseconds: 20_000_000), insertedAt: Timestamp(microseconds: 9_600_000))
        let text = JSONWriter.string(session.json)
        let read = try #require(Session(json: try JSONParser.parse(text)))
        #expect(read == session)
        #expect(read.lcp?.value == 1234.5 && read.distinctID.value == "v" && read.exitURL == "https://out.example/")
        #expect(read.channelType == "Paid Search" && read.durationSeconds == 15 && read.isBounce == false)
        #expect(Session(json: .object(["team_id": 1])) == nil)
        #expect(SessionFacts(event: "e", properties: ["$session_id": ""]) == nil)
        #expect(SessionFacts(event: "e", properties: [:]) == nil)
    }

    @Test func channelTypes() {
        func classify(_ source: String?, _ medium: String?, _ referrer: String?, click: String? = nil) -> String {
            ChannelType.classify(source: source, medium: medium, campaign: nil, referringDomain: referrer, paidClickID: click)
        }
        #expect(classify(nil, nil, nil) == "Direct")
        #expect(classify(nil, nil, "$direct") == "Direct")
        #expect(classify(nil, nil, "www.google.com") == "Organic Search")
        #expect(classify("facebook", "cpc", nil) == "Paid Social")
        #expect(classify(nil, nil, "news.example", click: "abc") == "Paid Search")
        #expect(classify("newsletter", "email", nil) == "Email")
        #expect(classify(nil, nil, "t.co") == "Organic Social")
        #expect(classify(nil, nil, "blog.example") == "Referral")
        #expect(classify("youtube", nil, nil) == "Organic Video")
        #expect(classify(nil, "paid", nil) == "Paid Unknown")
    }

    @Test func personUpdatesFromEvents() {
        let identify = PersonUpdate(event: "$identify", properties: ["$anon_distinct_id": "anon", "$set": .object(["a": 1])])
        #expect(identify.merge == PersonUpdate.Merge(other: "anon", dangerous: false) && identify.set == ["a": 1])
        #expect(PersonUpdate(event: "$create_alias", properties: ["alias": "x"]).merge?.other == "x")
        #expect(PersonUpdate(event: "$merge_dangerously", properties: ["alias": "x"]).merge?.dangerous == true)
        #expect(PersonUpdate(event: "e", properties: ["alias": "x"]).merge == nil)
        #expect(PersonUpdate(event: "e", properties: ["$unset": ["a", "b"]]).unset == ["a", "b"])
        #expect(!PersonUpdate(event: "e", properties: ["$process_person_profile": false]).processPerson)
        for id in ["anonymous", "null", "Guest", " ", "0", "undefined", "[object Object]", "distinct_id"] {
            #expect(!PersonUpdate.canMerge(id), "\(id)")
        }
        #expect(PersonUpdate.canMerge("user-1"))
    }
}
