/// Reads an Arrow IPC stream (the encapsulated format: a Schema message, then RecordBatch
/// messages, each `0xFFFFFFFF`, a little-endian metadata length, a FlatBuffers `Message` and its
/// body) into rows of cells as text, the way a JSON rowset carries them: what Snowflake answers
/// query results with (`rowsetBase64`).
///
/// Types read: Int (8–64 bits, signed or not), FloatingPoint (single, double), Bool, Utf8 and
/// LargeUtf8, Binary (as hex), Decimal (128 bits) and Null. Integers carry a field's `scale`
/// metadata (Snowflake's fixed-point numbers) as a decimal point. Other types, dictionary encoding
/// and compressed bodies are refused with an error naming them, never misread.
package enum ArrowIPCReader {
    package struct Failure: Error, CustomStringConvertible, Equatable {
        package let description: String
        package init(_ description: String) { self.description = description }
    }

    package struct Column: Sendable, Equatable {
        package var name: String
        package var type: String
    }

    package struct Result: Sendable, Equatable {
        package var columns: [Column]
        package var rows: [[String?]]
    }

    package static func read(_ bytes: [UInt8]) throws(Failure) -> Result {
        var position = 0
        var fields: [Field]?
        var rows: [[String?]] = []
        while position < bytes.count {
            var length = try int32(bytes, position)
            position += 4
            if length == -1 {  // the continuation marker, then the length
                length = try int32(bytes, position)
                position += 4
            }
            if length == 0 { break }  // end of stream
            guard length > 0, position + Int(length) <= bytes.count else { throw Failure("a message runs past the end of the stream") }
            let metadata = Array(bytes[position..<position + Int(length)])
            position += Int(length)
            let message = try Table.root(metadata)
            let headerType = try message.uint8(1) ?? 0
            let bodyLength = Int(try message.int64(3) ?? 0)
            // Compared by subtraction: a damaged length near Int.max must not overflow the sum.
            guard bodyLength >= 0, bodyLength <= bytes.count - position else {
                throw Failure("a message body runs past the end of the stream")
            }
            let body = bytes[position..<position + bodyLength]
            position += bodyLength
            guard let header = try message.table(2) else { throw Failure("a message has no header") }
            switch headerType {
            case 1: fields = try Field.list(header.vector(1))
            case 3:
                guard let fields else { throw Failure("a record batch came before the schema") }
                rows += try recordBatch(header, body: Array(body), fields: fields)
            case 2: throw Failure("dictionary-encoded columns are not supported")
            default: throw Failure("unexpected message type \(headerType)")
            }
        }
        guard let fields else { throw Failure("the stream has no schema") }
        return Result(columns: fields.map { Column(name: $0.name, type: $0.typeName) }, rows: rows)
    }

    // MARK: Schema

    struct Field {
        var name: String
        var type: UInt8
        var typeTable: Table?
        var children: [Field]
        var scale: Int

        init(_ table: Table) throws(Failure) {
            name = try table.string(0) ?? ""
            type = try table.uint8(2) ?? 0
            typeTable = try table.table(3)
            children = try Self.list(table.vector(5))
            if try table.table(4) != nil { throw Failure("dictionary-encoded column '\(name)' is not supported") }
            scale = 0
            for entry in try table.vector(6)?.tables() ?? [] where try entry.string(0) == "scale" {
                scale = Int(try entry.string(1) ?? "0") ?? 0
            }
        }

        static func list(_ vector: Vector?) throws(Failure) -> [Field] {
            var fields: [Field] = []
            for table in try vector?.tables() ?? [] { fields.append(try Field(table)) }
            return fields
        }

        var typeName: String {
            [
                "Null", "Null", "Int", "FloatingPoint", "Binary", "Utf8", "Bool", "Decimal", "Date", "Time", "Timestamp", "Interval",
                "List", "Struct", "Union", "FixedSizeBinary", "FixedSizeList", "Map", "Duration", "LargeBinary", "LargeUtf8",
            ]
            .dropFirst(Int(type)).first ?? "type \(type)"
        }
    }

    // MARK: Record batches

    static func recordBatch(_ batch: Table, body: [UInt8], fields: [Field]) throws(Failure) -> [[String?]] {
        if try batch.table(3) != nil { throw Failure("compressed record batches are not supported") }
        let count = Int(try batch.int64(0) ?? 0)
        // Every value but a null column's takes at least a bit of the body: a larger count is damage.
        guard count >= 0, count <= body.count * 8 + 65_536 else { throw Failure("a record batch claims \(count) rows") }
        let nodes = try batch.vector(1)?.structs(size: 16) ?? []
        let buffers = try batch.vector(2)?.structs(size: 16) ?? []
        var nodeIndex = 0
        var bufferIndex = 0
        func buffer() throws(Failure) -> ArraySlice<UInt8> {
            guard bufferIndex < buffers.count else { throw Failure("a record batch has too few buffers") }
            let (offset, length) = (Int(buffers[bufferIndex].0), Int(buffers[bufferIndex].1))
            bufferIndex += 1
            guard offset >= 0, length >= 0, offset <= body.count, length <= body.count - offset else {
                throw Failure("a buffer runs past the body")
            }
            return body[offset..<offset + length]
        }
        var columns: [[String?]] = []
        for field in fields {
            guard nodeIndex < nodes.count else { throw Failure("a record batch has too few field nodes") }
            let length = Int(nodes[nodeIndex].0)
            let nulls = Int(nodes[nodeIndex].1)
            nodeIndex += 1
            guard length == count else { throw Failure("column '\(field.name)' has \(length) values in a batch of \(count)") }
            columns.append(try column(field, length: length, nullCount: nulls, buffer: buffer))
        }
        return (0..<count).map { row in columns.map { $0[row] } }
    }

    static func column(
        _ field: Field, length: Int, nullCount: Int, buffer: () throws(Failure) -> ArraySlice<UInt8>
    ) throws(Failure) -> [String?] {
        if field.type == 1 { return Array(repeating: nil, count: length) }
        let validity = try buffer()
        func valid(_ index: Int) -> Bool {
            guard nullCount > 0, !validity.isEmpty else { return true }
            let byte = validity[validity.startIndex + index / 8]
            return byte & (1 << (index % 8)) != 0
        }
        let type = field.typeTable
        var values: [String?] = []
        values.reserveCapacity(length)
        /// A column of little-endian values of `width` bytes, each made text by `text`.
        func fixed(_ width: Int, _ text: (UInt64) -> String) throws(Failure) {
            let data = try buffer()
            guard data.count >= length * width else { throw Failure("column '\(field.name)' is shorter than its length") }
            for index in 0..<length {
                guard valid(index) else {
                    values.append(nil)
                    continue
                }
                var raw: UInt64 = 0
                for byte in 0..<width { raw |= UInt64(data[data.startIndex + index * width + byte]) << (8 * byte) }
                values.append(text(raw))
            }
        }
        switch field.type {
        case 2:  // Int
            let width = Int(try type?.int32(0) ?? 0) / 8
            let signed = try type?.bool(1) ?? false
            guard [1, 2, 4, 8].contains(width) else { throw Failure("column '\(field.name)' has an integer of \(width * 8) bits") }
            try fixed(width) { raw in
                var raw = raw
                if signed, width < 8, raw & (1 << (UInt64(width) * 8 - 1)) != 0 { raw |= ~0 << (UInt64(width) * 8) }
                return scaled(signed ? String(Int64(bitPattern: raw)) : String(raw), field.scale)
            }
        case 3:  // FloatingPoint
            let precision = try type?.int16(0) ?? 0
            let width = precision == 2 ? 8 : precision == 1 ? 4 : 0
            guard width > 0 else { throw Failure("column '\(field.name)' has half-precision floats") }
            try fixed(width) { raw in width == 8 ? String(Double(bitPattern: raw)) : String(Float(bitPattern: UInt32(raw))) }
        case 6:  // Bool
            let data = try buffer()
            for index in 0..<length {
                guard valid(index) else {
                    values.append(nil)
                    continue
                }
                guard data.count > index / 8 else { throw Failure("column '\(field.name)' is shorter than its length") }
                values.append(data[data.startIndex + index / 8] & (1 << (index % 8)) != 0 ? "true" : "false")
            }
        case 4, 5, 19, 20:  // Binary, Utf8, LargeBinary, LargeUtf8
            let large = field.type >= 19
            let offsets = try buffer()
            let data = try buffer()
            let width = large ? 8 : 4
            guard offsets.count >= (length + 1) * width else { throw Failure("column '\(field.name)' has too few offsets") }
            func offset(_ index: Int) -> Int {
                var raw: UInt64 = 0
                for byte in 0..<width { raw |= UInt64(offsets[offsets.startIndex + index * width + byte]) << (8 * byte) }
                return Int(truncatingIfNeeded: raw)
            }
            for index in 0..<length {
                guard valid(index) else {
                    values.append(nil)
                    continue
                }
                let (start, end) = (offset(index), offset(index + 1))
                guard start >= 0, start <= end, end <= data.count else { throw Failure("column '\(field.name)' has a value past its data") }
                let bytes = data[data.startIndex + start..<data.startIndex + end]
                if field.type == 5 || field.type == 20 {
                    values.append(String(decoding: bytes, as: UTF8.self))
                } else {
                    values.append(
                        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined())
                }
            }
        case 7:  // Decimal
            let width = Int(try type?.int32(2) ?? 128) / 8
            let scale = Int(try type?.int32(1) ?? 0)
            guard width == 16 else { throw Failure("column '\(field.name)' is a \(width * 8)-bit decimal") }
            let data = try buffer()
            guard data.count >= length * 16 else { throw Failure("column '\(field.name)' is shorter than its length") }
            for index in 0..<length {
                guard valid(index) else {
                    values.append(nil)
                    continue
                }
                var low: UInt64 = 0
                var high: UInt64 = 0
                for byte in 0..<8 {
                    low |= UInt64(data[data.startIndex + index * 16 + byte]) << (8 * byte)
                    high |= UInt64(data[data.startIndex + index * 16 + 8 + byte]) << (8 * byte)
                }
                values.append(scaled(decimal(high: high, low: low), scale))
            }
        default:
            throw Failure("column '\(field.name)' has type \(field.typeName), which is not supported")
        }
        return values
    }

    /// A two's-complement 128-bit integer in decimal.
    static func decimal(high: UInt64, low: UInt64) -> String {
        var (high, low) = (high, low)
        let negative = high >> 63 == 1
        if negative {  // negate: invert and add one
            (high, low) = (~high, ~low)
            let (sum, carry) = low.addingReportingOverflow(1)
            low = sum
            if carry { high &+= 1 }
        }
        // Divide by 10^19 repeatedly; each remainder is 19 digits of the result.
        let base: UInt64 = 10_000_000_000_000_000_000
        var groups: [UInt64] = []
        while high != 0 || low != 0 {
            let (quotientHigh, remainderHigh) = high.quotientAndRemainder(dividingBy: base)
            let (quotientLow, remainder) = base.dividingFullWidth((remainderHigh, low))
            groups.append(remainder)
            (high, low) = (quotientHigh, quotientLow)
        }
        guard let last = groups.popLast() else { return "0" }
        var text = String(last)
        for group in groups.reversed() {
            let digits = String(group)
            text += String(repeating: "0", count: 19 - digits.count) + digits
        }
        return negative ? "-" + text : text
    }

    /// `digits` with `scale` of them after a decimal point (`12345`, 2 → `123.45`).
    static func scaled(_ digits: String, _ scale: Int) -> String {
        guard scale > 0 else { return digits }
        let negative = digits.hasPrefix("-")
        var magnitude = negative ? String(digits.dropFirst()) : digits
        if magnitude.count <= scale { magnitude = String(repeating: "0", count: scale - magnitude.count + 1) + magnitude }
        let point = magnitude.index(magnitude.endIndex, offsetBy: -scale)
        return (negative ? "-" : "") + magnitude[..<point] + "." + magnitude[point...]
    }

    static func int32(_ bytes: [UInt8], _ position: Int) throws(Failure) -> Int32 {
        guard position + 4 <= bytes.count else { throw Failure("the stream ends inside a length") }
        return Int32(
            bitPattern: UInt32(bytes[position]) | UInt32(bytes[position + 1]) << 8 | UInt32(bytes[position + 2]) << 16
                | UInt32(bytes[position + 3]) << 24)
    }

    // MARK: FlatBuffers

    /// A FlatBuffers table: fields found through its vtable, every offset checked against the buffer.
    struct Table {
        let bytes: [UInt8]
        let position: Int

        static func root(_ bytes: [UInt8]) throws(Failure) -> Table {
            let at = Int(try read32(bytes, 0))
            return try Table(bytes: bytes, position: at)
        }

        init(bytes: [UInt8], position: Int) throws(Failure) {
            guard position >= 0, position + 4 <= bytes.count else { throw Failure("a table lies outside its message") }
            self.bytes = bytes
            self.position = position
        }

        static func read32(_ bytes: [UInt8], _ at: Int) throws(Failure) -> UInt32 {
            guard at >= 0, at + 4 <= bytes.count else { throw Failure("a field lies outside its message") }
            return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }

        func read(_ at: Int, width: Int) throws(Failure) -> UInt64 { try Self.read(bytes, at, width: width) }

        static func read(_ bytes: [UInt8], _ at: Int, width: Int) throws(Failure) -> UInt64 {
            guard at >= 0, at + width <= bytes.count else { throw Failure("a field lies outside its message") }
            var value: UInt64 = 0
            for byte in 0..<width { value |= UInt64(bytes[at + byte]) << (8 * byte) }
            return value
        }

        /// Where field `slot` is, or nil when the vtable does not hold it.
        func field(_ slot: Int) throws(Failure) -> Int? {
            let vtable = position - Int(Int32(bitPattern: try Self.read32(bytes, position)))
            let size = Int(try read(vtable, width: 2))
            let entry = 4 + slot * 2
            guard entry + 2 <= size else { return nil }
            let offset = Int(try read(vtable + entry, width: 2))
            return offset == 0 ? nil : position + offset
        }

        func scalar(_ slot: Int, width: Int) throws(Failure) -> UInt64? {
            guard let at = try field(slot) else { return nil }
            return try read(at, width: width)
        }

        func uint8(_ slot: Int) throws(Failure) -> UInt8? { try scalar(slot, width: 1).map { UInt8(truncatingIfNeeded: $0) } }
        func bool(_ slot: Int) throws(Failure) -> Bool? { try scalar(slot, width: 1).map { $0 != 0 } }
        func int16(_ slot: Int) throws(Failure) -> Int16? { try scalar(slot, width: 2).map { Int16(truncatingIfNeeded: $0) } }
        func int32(_ slot: Int) throws(Failure) -> Int32? { try scalar(slot, width: 4).map { Int32(truncatingIfNeeded: $0) } }
        func int64(_ slot: Int) throws(Failure) -> Int64? { try scalar(slot, width: 8).map { Int64(bitPattern: $0) } }

        /// What an offset field points at.
        func target(_ slot: Int) throws(Failure) -> Int? {
            guard let at = try field(slot) else { return nil }
            return at + Int(try Self.read32(bytes, at))
        }

        func table(_ slot: Int) throws(Failure) -> Table? {
            guard let at = try target(slot) else { return nil }
            return try Table(bytes: bytes, position: at)
        }

        func string(_ slot: Int) throws(Failure) -> String? {
            guard let at = try target(slot) else { return nil }
            let length = Int(try Self.read32(bytes, at))
            guard at + 4 + length <= bytes.count else { throw Failure("a string lies outside its message") }
            return String(decoding: bytes[at + 4..<at + 4 + length], as: UTF8.self)
        }

        func vector(_ slot: Int) throws(Failure) -> Vector? {
            guard let at = try target(slot) else { return nil }
            return Vector(bytes: bytes, position: at + 4, count: Int(try Self.read32(bytes, at)))
        }
    }

    struct Vector {
        let bytes: [UInt8]
        let position: Int
        let count: Int

        func tables() throws(Failure) -> [Table] {
            var tables: [Table] = []
            for index in 0..<count {
                let at = position + index * 4
                tables.append(try Table(bytes: bytes, position: at + Int(try Table.read32(bytes, at))))
            }
            return tables
        }

        /// Structs of two little-endian 64-bit integers (FieldNode, Buffer).
        func structs(size: Int) throws(Failure) -> [(Int64, Int64)] {
            guard position + count * size <= bytes.count else { throw Failure("a vector lies outside its message") }
            var values: [(Int64, Int64)] = []
            for index in 0..<count {
                let at = position + index * size
                values.append(
                    (Int64(bitPattern: try Table.read(bytes, at, width: 8)), Int64(bitPattern: try Table.read(bytes, at + 8, width: 8))))
            }
            return values
        }
    }
}
