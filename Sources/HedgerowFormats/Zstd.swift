import CCodecs

/// zstd frames inflated through the system's libzstd (capture v1 bodies sent with
/// `Content-Encoding: zstd`).
package enum Zstd {
    package typealias Failure = DecompressionFailure

    /// Inflates every frame of `input`, refusing output larger than `limit` bytes.
    package static func decompress(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        guard let stream = ZSTD_createDStream() else { throw .corrupt(codec: "zstd", "cannot allocate a zstd context") }
        defer { ZSTD_freeDStream(stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
        var failure: Failure?
        var lastHint = 0
        input.withUnsafeBufferPointer { source in
            var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            while inBuffer.pos < inBuffer.size || lastHint != 0 {
                let (hint, produced) = chunk.withUnsafeMutableBufferPointer { buffer -> (Int, Int) in
                    var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
                    let hint = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
                    return (hint, outBuffer.pos)
                }
                if ZSTD_isError(hint) != 0 {
                    failure = .corrupt(codec: "zstd", String(cString: ZSTD_getErrorName(hint)))
                    return
                }
                if output.count + produced > limit {
                    failure = .tooLarge(limit: limit)
                    return
                }
                output.append(contentsOf: chunk[0..<produced])
                lastHint = hint
                if inBuffer.pos == inBuffer.size, produced == 0, hint != 0 {
                    failure = .corrupt(codec: "zstd", "unexpected end of data")
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }
}
