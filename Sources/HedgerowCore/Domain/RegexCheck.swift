import Foundation

/// Regular expressions as the SQLite event store evaluates them (ICU, through
/// `NSRegularExpression`), with compiled patterns cached.
public enum RegexCheck {
    private static let cache = RegexCache()

    public static func isValid(_ pattern: String) -> Bool {
        cache.regex(pattern) != nil
    }

    /// Whether `text` contains a match of `pattern` (an invalid pattern matches nothing).
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        guard let regex = cache.regex(pattern) else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
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
