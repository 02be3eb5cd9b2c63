import Foundation

/// Regular expressions as the SQLite event store evaluates them (ICU, through
/// `NSRegularExpression`), with compiled patterns cached.
package enum RegexCheck {
    private static let cache = RegexCache()

    static func isValid(_ pattern: String) -> Bool {
        cache.regex(pattern) != nil
    }

    /// Whether `text` contains a match of `pattern` (an invalid pattern matches nothing).
    package static func matches(_ pattern: String, _ text: String) -> Bool {
        match(pattern, text, deadline: nil) == .matched
    }

    package enum Outcome: Sendable, Equatable { case matched, notMatched, timedOut }

    /// Whether `text` contains a match of `pattern`, giving up at `deadline` (ICU reports progress
    /// during long matches, so a backtracking pattern is stopped mid-match).
    package static func match(_ pattern: String, _ text: String, deadline: ContinuousClock.Instant?) -> Outcome {
        guard let regex = cache.regex(pattern) else { return .notMatched }
        let range = NSRange(text.startIndex..., in: text)
        guard let deadline else { return regex.firstMatch(in: text, range: range) != nil ? .matched : .notMatched }
        var outcome = Outcome.notMatched
        regex.enumerateMatches(in: text, options: [.reportProgress], range: range) { result, _, stop in
            if result != nil {
                outcome = .matched
                stop.pointee = true
            } else if ContinuousClock.now >= deadline {
                outcome = .timedOut
                stop.pointee = true
            }
        }
        return outcome
    }

    /// The longest pattern a filter may have.
    static let maximumPatternLength = 1000
}

/// `@unchecked Sendable`: the dictionary is only touched while `lock` is held, and
/// `NSRegularExpression` is immutable and documented thread-safe for matching.
private final class RegexCache: @unchecked Sendable {
    private let lock = NSLock()
    private var compiled: [String: NSRegularExpression?] = [:]

    func regex(_ pattern: String) -> NSRegularExpression? {
        lock.withLock {
            if let cached = compiled[pattern] { return cached }
            let regex = try? NSRegularExpression(pattern: pattern)
            if compiled.count > 1024 { compiled.removeAll() }
            compiled[pattern] = regex
            return regex
        }
    }
}
