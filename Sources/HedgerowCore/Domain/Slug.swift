import Foundation

/// Django's `slugify`: NFKD, drop what is not ASCII, keep `[\w\s-]`, lower-case, collapse runs of
/// whitespace and dashes into one dash, strip leading and trailing dashes and underscores.
package enum Slug {
    static let maximumLength = 48

    package static func slugify(_ text: String) -> String {
        let ascii = text.decomposedStringWithCompatibilityMapping.unicodeScalars.filter(\.isASCII)
        var kept: [Character] = []
        for scalar in ascii {
            let character = Character(Unicode.Scalar(UInt8(scalar.value)).lowercasedASCII)
            if character.isASCIIWord || character == "-" || character.isASCIIWhitespace {
                kept.append(character)
            }
        }
        var collapsed = ""
        var inRun = false
        for character in kept {
            if character == "-" || character.isASCIIWhitespace {
                if !inRun { collapsed.append("-") }
                inRun = true
            } else {
                collapsed.append(character)
                inRun = false
            }
        }
        let trimmed = collapsed.drop { $0 == "-" || $0 == "_" }
        var result = String(trimmed)
        while let last = result.last, last == "-" || last == "_" { result.removeLast() }
        return result
    }

    /// The slug for a new organization named `name`, before any clash.
    package static func forOrganization(named name: String) -> String {
        String(slugify(name).prefix(maximumLength))
    }

    /// The slug tried after a clash: first 43 characters, a dash, four random lower-case letters.
    package static func withRandomSuffix(_ slug: String) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let suffix = String((0..<4).map { _ in letters.randomElement()! })
        return String(slug.prefix(maximumLength - 5)) + "-" + suffix
    }
}

extension Unicode.Scalar {
    fileprivate var lowercasedASCII: Unicode.Scalar {
        (0x41...0x5A).contains(value) ? Unicode.Scalar(UInt8(value + 0x20)) : self
    }
}

extension Character {
    fileprivate var isASCIIWord: Bool {
        guard let scalar = unicodeScalars.first, unicodeScalars.count == 1 else { return false }
        switch scalar.value {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F: return true
        default: return false
        }
    }

    fileprivate var isASCIIWhitespace: Bool {
        self == " " || self == "\t" || self == "\n" || self == "\r" || self == "\u{0B}" || self == "\u{0C}"
    }
}
