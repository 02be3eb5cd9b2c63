import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

/// The text format of PostgreSQL's `COPY ... FROM STDIN`: tab-separated cells, `\N` for NULL, one
/// row a line. Capture's batches and the PostgreSQL destinations write their rows with it.
package enum PostgresCopyText {
    /// COPY text escaping: backslash, tab, newline and carriage return; most values need none, and
    /// the runs between escapes are written whole.
    package static func writeEscaped(_ value: String, into buffer: inout ByteBuffer) {
        let written: Void? = value.utf8.withContiguousStorageIfAvailable { bytes in writeEscaped(bytes, into: &buffer) }
        if written == nil { Array(value.utf8).withUnsafeBufferPointer { writeEscaped($0, into: &buffer) } }
    }

    package static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into buffer: inout ByteBuffer) {
        var start = 0
        for index in 0..<bytes.count {
            let escaped: UInt8
            switch bytes[index] {
            case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
            case 0x09: escaped = UInt8(ascii: "t")
            case 0x0A: escaped = UInt8(ascii: "n")
            case 0x0D: escaped = UInt8(ascii: "r")
            default: continue
            }
            buffer.writeBytes(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            buffer.writeInteger(UInt8(ascii: "\\"))
            buffer.writeInteger(escaped)
            start = index + 1
        }
        buffer.writeBytes(UnsafeBufferPointer(rebasing: bytes[start...]))
    }

    /// A text cell, `\N` for nil.
    package static func writeCell(_ value: String?, into buffer: inout ByteBuffer) {
        guard let value else {
            buffer.writeInteger(UInt8(ascii: "\\"))
            buffer.writeInteger(UInt8(ascii: "N"))
            return
        }
        writeEscaped(value, into: &buffer)
    }

    /// An integer cell, its decimal digits written straight into the buffer (no `String` made).
    package static func writeCell(_ value: Int64, into buffer: inout ByteBuffer) {
        var digits = 1
        var rest = value.magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let sign = value < 0 ? 1 : 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: sign + digits) { raw in
            if sign == 1 { raw[0] = UInt8(ascii: "-") }
            var magnitude = value.magnitude
            for index in stride(from: sign + digits - 1, through: sign, by: -1) {
                raw[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            }
            return sign + digits
        }
    }

    static func writeSeparator(into buffer: inout ByteBuffer) { buffer.writeInteger(UInt8(ascii: "\t")) }
    static func writeRowEnd(into buffer: inout ByteBuffer) { buffer.writeInteger(UInt8(ascii: "\n")) }
}

/// The binary format of PostgreSQL's `COPY ... FROM STDIN WITH (FORMAT binary)`: a signature and two
/// zero words, then each row as a 16-bit field count and each field as a 32-bit length (-1 for NULL)
/// followed by the value in its column type's binary form (big-endian), and a 16-bit -1 at the end.
/// The server takes these values without parsing them from text (no line scanning, no unescaping,
/// no timestamp parsing); a value of the wrong width for its column is refused, so the writer must
/// know each column's type.
package enum PostgresCopyBinary {
    /// A column type whose binary form this writer knows, from `information_schema.columns.udt_name`
    /// (for a domain, its base type: the domain's input takes the base type's binary form).
    package enum ColumnType: String, Sendable {
        case text, varchar, bpchar, json, jsonb, int2, int4, int8, timestamp, timestamptz

        /// Takes a value as text (the `text`, `varchar`, `bpchar`, `json` and `jsonb` columns).
        package var takesText: Bool {
            switch self {
            case .text, .varchar, .bpchar, .json, .jsonb: true
            case .int2, .int4, .int8, .timestamp, .timestamptz: false
            }
        }
    }

    /// The signature, the flags word and the header extension's length.
    package static func writeHeader(into buffer: inout ByteBuffer) {
        buffer.writeBytes([
            UInt8(ascii: "P"), UInt8(ascii: "G"), UInt8(ascii: "C"), UInt8(ascii: "O"), UInt8(ascii: "P"), UInt8(ascii: "Y"),
        ])
        buffer.writeBytes([0x0A, 0xFF, 0x0D, 0x0A, 0x00])
        buffer.writeInteger(UInt32(0))
        buffer.writeInteger(UInt32(0))
    }

    package static func writeTrailer(into buffer: inout ByteBuffer) { buffer.writeInteger(Int16(-1)) }

    package static func writeFieldCount(_ count: Int, into buffer: inout ByteBuffer) { buffer.writeInteger(Int16(count)) }

    package static func writeNull(into buffer: inout ByteBuffer) { buffer.writeInteger(Int32(-1)) }

    /// A text value for a column that takes text: its UTF-8 bytes, behind jsonb's version byte (1)
    /// in a `jsonb` column. nil is NULL.
    package static func writeText(_ value: String?, as type: ColumnType, into buffer: inout ByteBuffer) {
        guard let value else { return writeNull(into: &buffer) }
        let version = type == .jsonb ? 1 : 0
        buffer.writeInteger(Int32(value.utf8.count + version))
        if version == 1 { buffer.writeInteger(UInt8(1)) }
        buffer.writeString(value)
    }

    /// An integer in an integer column of its width; false (nothing written) when it does not fit.
    package static func writeInteger(_ value: Int64, as type: ColumnType, into buffer: inout ByteBuffer) -> Bool {
        switch type {
        case .int2:
            guard let narrow = Int16(exactly: value) else { return false }
            buffer.writeInteger(Int32(2))
            buffer.writeInteger(narrow)
        case .int4:
            guard let narrow = Int32(exactly: value) else { return false }
            buffer.writeInteger(Int32(4))
            buffer.writeInteger(narrow)
        case .int8:
            buffer.writeInteger(Int32(8))
            buffer.writeInteger(value)
        default:
            return false
        }
        return true
    }

    /// Microseconds since 1970 as PostgreSQL's `timestamp`/`timestamptz`: microseconds since
    /// 2000-01-01 00:00 UTC. False (nothing written) when the value cannot be shifted to that epoch.
    package static func writeTimestamp(microseconds: Int64, into buffer: inout ByteBuffer) -> Bool {
        let (shifted, overflow) = microseconds.subtractingReportingOverflow(postgresEpochMicroseconds)
        guard !overflow else { return false }
        buffer.writeInteger(Int32(8))
        buffer.writeInteger(shifted)
        return true
    }

    /// 2000-01-01T00:00:00Z in microseconds since 1970.
    static let postgresEpochMicroseconds: Int64 = 946_684_800_000_000
}

/// The server refused a COPY (a constraint, a malformed value): the statement changed nothing, and
/// the transaction must be rolled back to a savepoint taken before it.
struct SQLCopyRefused: Error, CustomStringConvertible {
    let sqlState: String
    let message: String
    var description: String { "COPY refused (\(sqlState)): \(message)" }
}

/// A connection that can bulk-load rows with `COPY ... FROM STDIN` (PostgreSQL).
package protocol SQLCopyConnection: SQLConnection {
    /// Loads `rows` (COPY text format, `PostgresCopyText`) into `table`'s `columns`. Throws
    /// `SQLCopyRefused` when the server rejects the data.
    func copy(into table: String, columns: [String], rows: ByteBuffer) async throws
}

/// The connection closed while a COPY was under way.
struct PostgresConnectionClosed: Error, CustomStringConvertible {
    init() {}
    var description: String { "the PostgreSQL server closed the connection" }
}

extension PostgresConnection {
    /// Runs `body`, but ends when the connection closes under it, throwing `closed()`. postgres-nio
    /// (1.33) never finishes a COPY write that waits for the socket to drain when the connection drops
    /// meanwhile (the pending promise is dropped), so the caller would wait forever. `body` runs in a
    /// task of its own because the stuck write cannot be cancelled; when the close wins, that task is
    /// cancelled and left suspended on the dead connection instead of holding its caller.
    package func untilClosed<T: Sendable>(
        throwing closed: @escaping @Sendable () -> any Error = { PostgresConnectionClosed() },
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let once = ResumeOnce<T>()
        let task = Task {
            do { once.resume(.success(try await body())) } catch { once.resume(.failure(error)) }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                once.set(continuation)
                closeFuture.whenComplete { _ in
                    task.cancel()
                    once.resume(.failure(closed()))
                }
            }
        } onCancel: {
            task.cancel()
        }
    }
}

/// Resumes a continuation exactly once, from whichever of several callbacks comes first.
final class ResumeOnce<T: Sendable>: Sendable {
    private let state = NIOLockedValueBox<(continuation: CheckedContinuation<T, any Error>?, result: Result<T, any Error>?)>((nil, nil))

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        let ready: Result<T, any Error>? = state.withLockedValue { state in
            if let result = state.result { return result }
            state.continuation = continuation
            return nil
        }
        if let ready { continuation.resume(with: ready) }
    }

    func resume(_ result: Result<T, any Error>) {
        let waiting: CheckedContinuation<T, any Error>? = state.withLockedValue { state in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.continuation = nil }
            return state.continuation
        }
        waiting?.resume(with: result)
    }
}
