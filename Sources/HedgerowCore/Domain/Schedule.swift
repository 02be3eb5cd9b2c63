import Foundation

/// How often a batch export runs (docs/api.md, Batch exports).
package enum Interval: String, Sendable, CaseIterable {
    case hour
    case day
    case week
    case every5Minutes = "every 5 minutes"
    case every15Minutes = "every 15 minutes"

    /// How long after a tick its run becomes due (docs/engine.md §1): the interval has settled, late
    /// events included — 30 s for 5/15-minute exports, 60 s for the others.
    package var settleMicroseconds: Int64 { self == .every5Minutes || self == .every15Minutes ? 30_000_000 : 60_000_000 }

    /// The fixed length of sub-daily intervals, in microseconds; nil for day and week, whose length
    /// follows the wall clock of the export's time zone.
    var fixedMicroseconds: Int64? {
        switch self {
        case .every5Minutes: 300_000_000
        case .every15Minutes: 900_000_000
        case .hour: 3_600_000_000
        case .day, .week: nil
        }
    }
}

/// The ticks of an export's schedule (docs/engine.md §1). A tick is the end of a data interval:
/// sub-daily intervals tick on multiples of their length since the Unix epoch, in UTC; `day` ticks
/// every day at `offsetHour` in the export's time zone, `week` on `offsetDay` (0 = Sunday) at
/// `offsetHour`, so a day may last 23 or 25 hours across a DST change.
package struct Schedule: Sendable, Equatable {
    package var interval: Interval
    package var timeZone: TimeZone
    package var offsetDay: Int
    package var offsetHour: Int

    package init(interval: Interval, timeZone: TimeZone = TimeZone(identifier: "UTC")!, offsetDay: Int = 0, offsetHour: Int = 0) {
        self.interval = interval
        self.timeZone = timeZone
        self.offsetDay = offsetDay
        self.offsetHour = offsetHour
    }

    var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    /// The latest tick at or before `time`.
    package func tick(atOrBefore time: Timestamp) -> Timestamp {
        if let step = interval.fixedMicroseconds {
            let floored = time.microseconds >= 0 ? time.microseconds / step : (time.microseconds - step + 1) / step
            return Timestamp(microseconds: floored * step)
        }
        let calendar = self.calendar
        var candidate = localTick(onDayOf: time.date, calendar: calendar)
        if interval == .week {
            // Go back to the export's weekday (Calendar: 1 = Sunday).
            let weekday = calendar.component(.weekday, from: candidate) - 1
            let back = (weekday - offsetDay + 7) % 7
            candidate = localTick(onDayOf: calendar.date(byAdding: .day, value: -back, to: candidate)!, calendar: calendar)
        }
        let step = interval == .week ? 7 : 1
        while candidate > time.date {
            candidate = localTick(onDayOf: calendar.date(byAdding: .day, value: -step, to: candidate)!, calendar: calendar)
        }
        return Timestamp(candidate)
    }

    /// The first tick strictly after `time`.
    package func tick(after time: Timestamp) -> Timestamp {
        if let step = interval.fixedMicroseconds {
            return Timestamp(microseconds: tick(atOrBefore: time).microseconds + step)
        }
        let calendar = self.calendar
        let previous = tick(atOrBefore: time).date
        let step = interval == .week ? 7 : 1
        // Noon of the day, so that DST changes cannot push the day arithmetic into a wrong date.
        let noon = calendar.date(bySettingHour: 12, minute: 0, second: 0, of: previous)!
        return Timestamp(localTick(onDayOf: calendar.date(byAdding: .day, value: step, to: noon)!, calendar: calendar))
    }

    /// The data interval that ends at `end` (a tick): from the tick before it.
    package func dataInterval(endingAt end: Timestamp) -> (start: Timestamp, end: Timestamp) {
        if let step = interval.fixedMicroseconds { return (Timestamp(microseconds: end.microseconds - step), end) }
        return (tick(atOrBefore: Timestamp(microseconds: end.microseconds - 1)), end)
    }

    /// The ticks in `(after, upTo]`, oldest first, at most `limit` of them (callers that must not cut short ask for one more and check).
    package func ticks(after start: Timestamp, upTo end: Timestamp, limit: Int) -> [Timestamp] {
        var ticks: [Timestamp] = []
        var next = tick(after: start)
        while next <= end, ticks.count < limit {
            ticks.append(next)
            next = tick(after: next)
        }
        return ticks
    }

    /// `offsetHour`:00 local time on the local day that contains `date`. A local time that does not
    /// exist (the hour skipped when clocks go forward) becomes the first instant after the gap.
    func localTick(onDayOf date: Date, calendar: Calendar) -> Date {
        var components = calendar.dateComponents([.year, .month, .day], from: date)
        components.hour = offsetHour
        components.minute = 0
        components.second = 0
        return calendar.date(from: components)!
    }
}
