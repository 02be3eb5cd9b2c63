/// ISO 8601 date-times as clients send them: `2024-01-01T10:00:00Z`, `2024-01-01 10:00:00.123+02:00`,
/// `2024-01-01T10:00:00.123456-0530`, `2024-01-01T10:00`, or a date alone. A time without an offset
/// is naive. Years 0001–9999 only: anything else is not a date-time here (nil).
package enum ISO8601 {
    package struct Parsed: Sendable, Equatable {
        /// The instant, reading a naive time as UTC.
        package var timestamp: Timestamp
        /// Whether the text carried an offset (`Z` or `±HH:MM`).
        package var hasOffset: Bool
        /// Whether the text was a date alone.
        package var isDateOnly: Bool
    }

    package static func parse(_ text: String) -> Parsed? {
        var scanner = Scanner(Array(text.utf8))
        guard let year = scanner.digits(4), scanner.take("-"), let month = scanner.digits(2), scanner.take("-"),
            let day = scanner.digits(2), (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        let days = daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        if scanner.atEnd {
            guard let timestamp = Timestamp(exactly: days * 86_400_000_000) else { return nil }
            return Parsed(timestamp: timestamp, hasOffset: false, isDateOnly: true)
        }
        guard scanner.take("T") || scanner.take("t") || scanner.take(" "), let hour = scanner.digits(2), scanner.take(":"),
            let minute = scanner.digits(2), hour < 24, minute < 60
        else { return nil }
        var second = 0
        var micros: Int64 = 0
        if scanner.take(":") {
            guard let value = scanner.digits(2), value < 61 else { return nil }
            second = min(value, 59)
            if scanner.take(".") || scanner.take(",") {
                var digits = 0
                var fraction: Int64 = 0
                while let digit = scanner.digit() {
                    if digits < 6 {
                        fraction = fraction * 10 + Int64(digit)
                    }
                    digits += 1
                }
                guard digits > 0 else { return nil }
                for _ in min(digits, 6)..<6 { fraction *= 10 }
                micros = fraction
            }
        }
        var offsetSeconds: Int64 = 0
        var hasOffset = false
        if scanner.take("Z") || scanner.take("z") {
            hasOffset = true
        } else if let sign = scanner.sign() {
            guard let hours = scanner.digits(2), hours < 24 else { return nil }
            _ = scanner.take(":")
            let minutes = scanner.digits(2) ?? 0
            guard minutes < 60 else { return nil }
            offsetSeconds = Int64(sign * (hours * 3600 + minutes * 60))
            hasOffset = true
        }
        guard scanner.atEnd else { return nil }
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - offsetSeconds
        // Year 0000, or an offset that moves the instant past 9999-12-31, is outside what a Timestamp holds.
        guard let timestamp = Timestamp(exactly: seconds * 1_000_000 + micros) else { return nil }
        return Parsed(timestamp: timestamp, hasOffset: hasOffset, isDateOnly: false)
    }

    static func isLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    struct Scanner {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func take(_ character: Character) -> Bool {
            guard index < bytes.count, let ascii = character.asciiValue, bytes[index] == ascii else { return false }
            index += 1
            return true
        }

        mutating func digit() -> Int? {
            guard index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 else { return nil }
            defer { index += 1 }
            return Int(bytes[index] - 0x30)
        }

        mutating func digits(_ count: Int) -> Int? {
            var value = 0
            for _ in 0..<count {
                guard let digit = digit() else { return nil }
                value = value * 10 + digit
            }
            return value
        }

        mutating func sign() -> Int? {
            if take("+") { return 1 }
            if take("-") { return -1 }
            return nil
        }
    }
}
