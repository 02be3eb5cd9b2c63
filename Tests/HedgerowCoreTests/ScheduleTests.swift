import Foundation
import HedgerowCore
import Testing

@Suite("Schedules (docs/engine.md §1)")
struct ScheduleTests {
    static func at(_ text: String) -> Timestamp { ISO8601.parse(text)!.timestamp }

    @Test func subDailyIntervalsTickOnMultiplesSinceTheEpoch() {
        let five = Schedule(interval: .every5Minutes)
        #expect(five.tick(atOrBefore: Self.at("2024-01-01T10:07:30Z")) == Self.at("2024-01-01T10:05:00Z"))
        #expect(five.tick(after: Self.at("2024-01-01T10:05:00Z")) == Self.at("2024-01-01T10:10:00Z"))
        #expect(five.tick(atOrBefore: Self.at("2024-01-01T10:05:00Z")) == Self.at("2024-01-01T10:05:00Z"))
        let fifteen = Schedule(interval: .every15Minutes)
        #expect(fifteen.tick(after: Self.at("2024-01-01T10:59:59Z")) == Self.at("2024-01-01T11:00:00Z"))
        let hour = Schedule(interval: .hour, timeZone: TimeZone(identifier: "Asia/Kolkata")!)
        // Hours are UTC multiples whatever the export's zone (Kolkata is +05:30).
        #expect(hour.tick(after: Self.at("2024-01-01T10:20:00Z")) == Self.at("2024-01-01T11:00:00Z"))
        #expect(hour.dataInterval(endingAt: Self.at("2024-01-01T11:00:00Z")).start == Self.at("2024-01-01T10:00:00Z"))
        #expect(hour.ticks(after: Self.at("2024-01-01T10:00:00Z"), upTo: Self.at("2024-01-01T13:00:00Z"), limit: 100).count == 3)
    }

    @Test func daysTickAtTheOffsetHourInTheExportsZone() {
        let berlin = Schedule(interval: .day, timeZone: TimeZone(identifier: "Europe/Berlin")!, offsetHour: 3)
        // 03:00 in Berlin in winter is 02:00 UTC.
        #expect(berlin.tick(atOrBefore: Self.at("2024-01-10T12:00:00Z")) == Self.at("2024-01-10T02:00:00Z"))
        #expect(berlin.tick(atOrBefore: Self.at("2024-01-10T01:59:59Z")) == Self.at("2024-01-09T02:00:00Z"))
        #expect(berlin.tick(after: Self.at("2024-01-10T02:00:00Z")) == Self.at("2024-01-11T02:00:00Z"))
    }

    @Test func daysFollowTheWallClockAcrossDST() {
        let berlin = Schedule(interval: .day, timeZone: TimeZone(identifier: "Europe/Berlin")!, offsetHour: 3)
        // Clocks go forward on 2024-03-31 (02:00 → 03:00): that day has 23 hours.
        let before = Self.at("2024-03-30T02:00:00Z")  // 03:00 CET
        let after = berlin.tick(after: before)
        #expect(after == Self.at("2024-03-31T01:00:00Z"))  // 03:00 CEST
        #expect(after.microseconds - before.microseconds == 23 * 3_600_000_000)
        #expect(berlin.dataInterval(endingAt: after).start == before)
        // And back on 2024-10-27: 25 hours.
        let autumn = Self.at("2024-10-26T01:00:00Z")  // 03:00 CEST
        #expect(berlin.tick(after: autumn).microseconds - autumn.microseconds == 25 * 3_600_000_000)
        // A midnight schedule in a zone whose clocks skip midnight (Santiago, 2024-09-08) still ticks once that day.
        let santiago = Schedule(interval: .day, timeZone: TimeZone(identifier: "America/Santiago")!, offsetHour: 0)
        let ticks = santiago.ticks(after: Self.at("2024-09-06T12:00:00Z"), upTo: Self.at("2024-09-10T12:00:00Z"), limit: 100)
        #expect(ticks.count == 4)
        #expect(zip(ticks, ticks.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test func weeksTickOnTheOffsetDay() {
        // Mondays (1) at 06:00 UTC.
        let monday = Schedule(interval: .week, offsetDay: 1, offsetHour: 6)
        #expect(monday.tick(atOrBefore: Self.at("2024-01-10T00:00:00Z")) == Self.at("2024-01-08T06:00:00Z"))  // a Wednesday
        #expect(monday.tick(atOrBefore: Self.at("2024-01-08T05:59:59Z")) == Self.at("2024-01-01T06:00:00Z"))
        #expect(monday.tick(after: Self.at("2024-01-08T06:00:00Z")) == Self.at("2024-01-15T06:00:00Z"))
        let sunday = Schedule(interval: .week, timeZone: TimeZone(identifier: "America/New_York")!, offsetDay: 0, offsetHour: 0)
        // Sunday 2024-01-07 00:00 in New York is 05:00 UTC.
        #expect(sunday.tick(atOrBefore: Self.at("2024-01-09T00:00:00Z")) == Self.at("2024-01-07T05:00:00Z"))
        #expect(sunday.dataInterval(endingAt: Self.at("2024-01-07T05:00:00Z")).start == Self.at("2023-12-31T05:00:00Z"))
    }

    @Test func iso8601AcceptsWhatClientsSend() {
        #expect(ISO8601.parse("2024-01-01T10:00:00Z")?.timestamp.iso8601 == "2024-01-01T10:00:00Z")
        #expect(ISO8601.parse("2024-01-01 10:00:00.123456+02:00")?.timestamp.iso8601 == "2024-01-01T08:00:00.123456Z")
        #expect(ISO8601.parse("2024-01-01T10:00:00.1234567-0530")?.timestamp.iso8601 == "2024-01-01T15:30:00.123456Z")
        #expect(ISO8601.parse("2024-01-01T10:00")?.hasOffset == false)
        #expect(ISO8601.parse("2024-02-29")?.isDateOnly == true)
        for bad in [
            "2023-02-29", "2024-13-01", "2024-01-01T25:00:00Z", "yesterday", "2024-01-01T10:00:00+25:00", "", "2024-01-01T10:00:00Zjunk",
        ] {
            #expect(ISO8601.parse(bad) == nil, "\(bad)")
        }
    }
}
