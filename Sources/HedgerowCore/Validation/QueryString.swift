/// A URL query string: parsed like Python's `parse_qsl(keep_blank_values=True)` and written like
/// `urlencode(sorted(...), doseq=True)`, so pagination links match DRF's.
package struct QueryString: Sendable, Equatable {
    package var items: [(key: String, value: String)]

    package init(items: [(key: String, value: String)] = []) { self.items = items }

    package init(parsing query: String?) {
        items = []
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(String(parts[0]))
            let value = parts.count > 1 ? Self.decode(String(parts[1])) : ""
            items.append((key: key, value: value))
        }
    }

    package static func == (lhs: QueryString, rhs: QueryString) -> Bool {
        lhs.items.count == rhs.items.count && zip(lhs.items, rhs.items).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// The first value for `key`.
    package subscript(key: String) -> String? {
        items.first { $0.key == key }?.value
    }

    package func values(_ key: String) -> [String] {
        items.filter { $0.key == key }.map(\.value)
    }

    /// Replaces every value of `key` with one value.
    package func setting(_ key: String, to value: String) -> QueryString {
        var copy = removing(key)
        copy.items.append((key: key, value: value))
        return copy
    }

    package func removing(_ key: String) -> QueryString {
        QueryString(items: items.filter { $0.key != key })
    }

    /// Keys sorted (stable, so repeated keys keep their order), each part `quote_plus`-encoded.
    package var encoded: String {
        let sorted = items.enumerated().sorted { lhs, rhs in
            lhs.element.key == rhs.element.key ? lhs.offset < rhs.offset : lhs.element.key < rhs.element.key
        }
        return sorted.map { Self.quotePlus($0.element.key) + "=" + Self.quotePlus($0.element.value) }.joined(separator: "&")
    }

    /// Percent-decoding with `+` as space; invalid escapes are kept as they are, invalid UTF-8
    /// becomes U+FFFD (as Python does with `errors='replace'`).
    static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if byte == UInt8(ascii: "%"), index + 2 < utf8.count, let high = hexValue(utf8[index + 1]),
                let low = hexValue(utf8[index + 2])
            {
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Python's `quote_plus`: unreserved characters kept, space as `+`, the rest `%XX`.
    static func quotePlus(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
                output.append(byte)
            case UInt8(ascii: " "): output.append(UInt8(ascii: "+"))
            default:
                output.append(UInt8(ascii: "%"))
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
