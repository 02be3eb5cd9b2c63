import CZlib

/// gzip (RFC 1952) and zlib streams through the system's zlib.
package enum Gzip {
    package typealias Failure = DecompressionFailure

    /// Whether `bytes` start with the gzip magic number.
    package static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// Inflates a gzip (or zlib) stream, refusing output larger than `limit` bytes (so a small
    /// request cannot expand into an unbounded one). Concatenated gzip members are all read.
    package static func decompress(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        // 15 + 32: any window size, gzip or zlib header detected automatically.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt(codec: "gzip", "cannot initialise zlib")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var offset = 0
        var failure: Failure?
        input.withUnsafeBufferPointer { source in
            while failure == nil {
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress.map { $0 + offset })
                stream.avail_in = UInt32(source.count - offset)
                let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = UInt32(buffer.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                offset = source.count - Int(stream.avail_in)
                if output.count + produced > limit {
                    failure = .tooLarge(limit: limit)
                    break
                }
                output.append(contentsOf: chunk[0..<produced])
                switch status {
                case Z_STREAM_END:
                    // Another gzip member may follow.
                    if offset < source.count, inflateReset(&stream) == Z_OK { continue }
                    return
                case Z_OK:
                    if produced == 0 && stream.avail_in == 0 { failure = .corrupt(codec: "gzip", "unexpected end of data") }
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 { failure = .corrupt(codec: "gzip", "unexpected end of data") }
                default:
                    failure = .corrupt(codec: "gzip", stream.msg.map { String(cString: $0) } ?? "error \(status)")
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Compresses into a gzip member (level 6).
    package static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        // 15 + 16: gzip header and trailer.
        guard
            deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
                == Z_OK
        else { return [] }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))))
        let written = input.withUnsafeBufferPointer { source -> Int in
            output.withUnsafeMutableBufferPointer { destination -> Int in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = UInt32(source.count)
                stream.next_out = destination.baseAddress
                stream.avail_out = UInt32(destination.count)
                let status = deflate(&stream, Z_FINISH)
                return status == Z_STREAM_END ? destination.count - Int(stream.avail_out) : 0
            }
        }
        return Array(output.prefix(written))
    }
}
