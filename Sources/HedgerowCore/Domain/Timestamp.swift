import Foundation

/// A point in time with microsecond precision, stored as microseconds since the Unix epoch in both
/// SQL dialects, and written the way PostHog writes datetimes.
///
/// A timestamp is always within years 1–9999 (`minimum...maximum`), the range every destination
/// and every writer here can represent: `init(microseconds:)` clamps a value from outside that range
/// (a row written before the bound existed, a stored config), and `init(exactly:)` refuses one.
/// Within the range a sum or difference of two timestamps cannot overflow `Int64`.
package struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    package private(set) var microseconds: Int64

    /// 0001-01-01T00:00:00Z.
    package static let minimum = Timestamp(uncheckedMicroseconds: -62_135_596_800_000_000)
    /// 9999-12-31T23:59:59.999999Z.
    package static let maximum = Timestamp(uncheckedMicroseconds: 253_402_300_799_999_999)

    private init(uncheckedMicroseconds: Int64) { self.microseconds = uncheckedMicroseconds }

    /// The instant `microseconds` after the Unix epoch, clamped to `minimum...maximum`.
    package init(microseconds: Int64) {
        self.microseconds = min(max(microseconds, Self.minimum.microseconds), Self.maximum.microseconds)
    }

    /// The instant `microseconds` after the Unix epoch, or nil outside years 1–9999.
    package init?(exactly microseconds: Int64) {
        guard microseconds >= Self.minimum.microseconds, microseconds <= Self.maximum.microseconds else { return nil }
        self.microseconds = microseconds
    }

    package init(_ date: Date) {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        guard micros.isFinite else {
            self = micros < 0 ? .minimum : .maximum
            return
        }
        self.init(microseconds: Int64(min(max(micros, -9.2e18), 9.2e18)))
    }

    package static func now() -> Timestamp { Timestamp(Date()) }

    package static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.microseconds < rhs.microseconds }

    package var date: Date { Date(timeIntervalSince1970: Double(microseconds) / 1_000_000) }

    /// `2024-01-01T10:00:00Z`, or `2024-01-01T10:00:00.123456Z` when the microseconds are non-zero.
    package var iso8601: String {
        let (year, month, day, secondOfDay, micros) = civilParts
        var text = Self.pad(year, 4) + "-" + Self.pad(month, 2) + "-" + Self.pad(day, 2) + "T"
        text += Self.pad(secondOfDay / 3600, 2) + ":" + Self.pad(secondOfDay / 60 % 60, 2) + ":"
        text += Self.pad(secondOfDay % 60, 2)
        if micros != 0 { text += "." + Self.pad(micros, 6) }
        return text + "Z"
    }

    /// Year, month, day, second of the day and microseconds, in UTC.
    private var civilParts: (Int64, Int64, Int64, Int64, Int64) {
        var seconds = microseconds / 1_000_000
        var micros = microseconds % 1_000_000
        if micros < 0 {
            micros += 1_000_000
            seconds -= 1
        }
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let (year, month, day) = Self.civilFromDays(days)
        return (year, month, day, seconds - days * 86_400, micros)
    }

    package var description: String { iso8601 }

    /// `2024-01-01T10:00:00+00:00` (the offset form Python's `isoformat()` writes, which object keys
    /// and exported files use), with `.123456` when the microseconds are non-zero.
    package var iso8601WithOffset: String {
        var bytes: [UInt8] = []
        writeISO8601WithOffset(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `iso8601WithOffset` to `output` without building strings (exports write millions).
    package func writeISO8601WithOffset(into output: inout [UInt8]) {
        let (year, month, day, secondOfDay, micros) = civilParts
        // Written into a small buffer on the stack, then appended in one go.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            var end = 0
            func digits(_ value: Int64, _ width: Int) {
                var value = value
                for index in stride(from: end + width - 1, through: end, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10)
                    value /= 10
                }
                end += width
            }
            func byte(_ character: Unicode.Scalar) {
                buffer[end] = UInt8(ascii: character)
                end += 1
            }
            digits(year, 4)
            byte("-")
            digits(month, 2)
            byte("-")
            digits(day, 2)
            byte("T")
            digits(secondOfDay / 3600, 2)
            byte(":")
            digits(secondOfDay / 60 % 60, 2)
            byte(":")
            digits(secondOfDay % 60, 2)
            if micros != 0 {
                byte(".")
                digits(micros, 6)
            }
            for code in "+00:00".utf8 {
                buffer[end] = code
                end += 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[0..<end]))
        }
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
