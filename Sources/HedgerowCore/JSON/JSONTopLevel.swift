/// Finds the raw text of a few top-level members of a JSON object without building the whole
/// value: exports read `$set`, `$set_once` and `$ip` out of every event's properties, and parsing
/// each properties object in full cost more than the rest of the row.
package enum JSONTopLevel {
    /// The names of the members to look for, their UTF-8 bytes made once (a scan runs for every
    /// exported event).
    package struct Keys: Sendable {
        package let names: [String]
        let bytes: [[UInt8]]

        package init(_ names: [String]) {
            self.names = names
            bytes = names.map { Array($0.utf8) }
        }
    }

    /// The raw JSON text of each of `keys` found at the top level of `json` (an object written by a
    /// JSON writer, as the event store keeps them), in the order of `keys`: nil for a key that is
    /// absent; the last of repeated keys wins. Keys are compared as written, unescaped keys only;
    /// nil when `json` is not an object this scanner can follow (callers then parse it).
    package static func rawValues(in json: String, keys: Keys) -> [String?]? {
        var json = json
        return json.withUTF8 { bytes -> [String?]? in
            let wanted = keys.bytes
            var found = [String?](repeating: nil, count: wanted.count)
            var index = 0
            let count = bytes.count
            func skipSpace() {
                while index < count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                    index += 1
                }
            }
            /// Moves past a string whose opening quote is at `index`; false if it never ends.
            func skipString() -> Bool {
                index += 1
                while index < count {
                    switch bytes[index] {
                    case UInt8(ascii: "\\"): index += 2
                    case UInt8(ascii: "\""):
                        index += 1
                        return true
                    default: index += 1
                    }
                }
                return false
            }
            /// Moves past one value starting at `index`.
            func skipValue() -> Bool {
                guard index < count else { return false }
                switch bytes[index] {
                case UInt8(ascii: "\""): return skipString()
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    var depth = 0
                    while index < count {
                        switch bytes[index] {
                        case UInt8(ascii: "\""): if !skipString() { return false }; continue
                        case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                        case UInt8(ascii: "}"), UInt8(ascii: "]"):
                            depth -= 1
                            if depth == 0 {
                                index += 1
                                return true
                            }
                        default: break
                        }
                        index += 1
                    }
                    return false
                default:
                    while index < count, bytes[index] != UInt8(ascii: ","), bytes[index] != UInt8(ascii: "}"), bytes[index] != 0x20,
                        bytes[index] != 0x0A, bytes[index] != 0x0D, bytes[index] != 0x09
                    {
                        index += 1
                    }
                    return true
                }
            }
            skipSpace()
            guard index < count, bytes[index] == UInt8(ascii: "{") else { return nil }
            index += 1
            while true {
                skipSpace()
                guard index < count else { return nil }
                if bytes[index] == UInt8(ascii: "}") { return found }
                guard bytes[index] == UInt8(ascii: "\"") else { return nil }
                let keyStart = index + 1
                guard skipString() else { return nil }
                let key = UnsafeBufferPointer(rebasing: bytes[keyStart..<(index - 1)])
                skipSpace()
                guard index < count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                skipSpace()
                let valueStart = index
                guard skipValue() else { return nil }
                if let match = wanted.firstIndex(where: { $0.count == key.count && $0.elementsEqual(key) }) {
                    found[match] = String(decoding: UnsafeBufferPointer(rebasing: bytes[valueStart..<index]), as: UTF8.self)
                }
                skipSpace()
                guard index < count else { return nil }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] != UInt8(ascii: "}") {
                    return nil
                }
            }
        }
    }
}
