import Foundation

/// `multipart/form-data` bodies (RFC 7578), read as DRF's MultiPartParser reads them: each part a
/// field named by its `Content-Disposition`, its text the value. A part declared
/// `application/json` (how generated clients send nested objects and lists) holds JSON and is
/// parsed. A name sent twice keeps its first value, as for form bodies. File parts are refused:
/// no route takes uploads.
package enum MultipartForm {
    /// The `boundary` parameter of a `multipart/form-data` content type.
    package static func boundary(in contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            var value = pair[1]
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value.isEmpty || value.utf8.count > 70 ? nil : value
        }
        return nil
    }

    package static func parse(_ body: [UInt8], boundary: String) throws(APIError) -> JSONObject {
        let delimiter = Array("--\(boundary)".utf8)
        var object = JSONObject()
        guard var position = find(delimiter, in: body, from: 0) else { throw malformed("no part starts with the boundary") }
        while true {
            position += delimiter.count
            // "--" after a delimiter closes the body.
            if position + 1 < body.count, body[position] == UInt8(ascii: "-"), body[position + 1] == UInt8(ascii: "-") { break }
            guard let headersStart = skipLineBreak(body, position) else {
                throw malformed("a boundary line is not followed by a line break")
            }
            guard let headersEnd = find(Array("\r\n\r\n".utf8), in: body, from: headersStart) else {
                throw malformed("a part's headers do not end")
            }
            guard let next = find(Array("\r\n".utf8) + delimiter, in: body, from: headersEnd + 4) else {
                throw malformed("a part does not end with the boundary")
            }
            let headerText = String(decoding: body[headersStart..<headersEnd], as: UTF8.self)
            let (name, isFile, isJSON) = try describe(headerText)
            if isFile { throw APIError.invalidInput("File uploads are not accepted here.") }
            let content = Array(body[(headersEnd + 4)..<next])
            if object[name] == nil {
                if isJSON {
                    do {
                        object[name] = try JSONParser.parse(content)
                    } catch {
                        throw APIError.parseError("Part '\(name)': \(error.description)")
                    }
                } else {
                    guard let text = String(validating: content, as: UTF8.self) else { throw malformed("part '\(name)' is not UTF-8 text") }
                    object[name] = .string(text)
                }
            }
            position = next + 2
        }
        return object
    }

    static func malformed(_ reason: String) -> APIError {
        APIError.parseError("Multipart form parse error - \(reason).")
    }

    /// The field name of a part, and whether it is a file or JSON.
    static func describe(_ headers: String) throws(APIError) -> (name: String, isFile: Bool, isJSON: Bool) {
        var name: String?
        var isFile = false
        var isJSON = false
        for line in headers.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let header = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            if header == "content-disposition" {
                for parameter in value.split(separator: ";").dropFirst() {
                    let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard pair.count == 2 else { continue }
                    var text = pair[1]
                    if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
                    switch pair[0].lowercased() {
                    case "name": name = text
                    case "filename": isFile = true
                    default: break
                    }
                }
            } else if header == "content-type" {
                let media = value.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
                isJSON = media == "application/json" || media.hasSuffix("+json")
            }
        }
        guard let name, !name.isEmpty else { throw malformed("a part has no name") }
        return (name, isFile, isJSON)
    }

    static func skipLineBreak(_ bytes: [UInt8], _ index: Int) -> Int? {
        guard index + 1 < bytes.count, bytes[index] == 0x0D, bytes[index + 1] == 0x0A else { return nil }
        return index + 2
    }

    /// The first index of `needle` in `haystack` at or after `start`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        var index = start
        let last = haystack.count - needle.count
        let first = needle[0]
        while index <= last {
            if haystack[index] == first {
                var matched = true
                for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return index }
            }
            index += 1
        }
        return nil
    }
}
