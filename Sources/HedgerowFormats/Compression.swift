import CCodecs
import CZlib
import Dispatch
import HedgerowCore
import Synchronization

/// The compression codecs of exported files (docs/engine.md §4), through Debian's C libraries: zlib,
/// brotli, zstd, lz4 and snappy.
extension Compression {
    /// The extension a compressed JSONLines file gets (`.gz`, `.br`, `.zst`, `.lz4`, `.sz`).
    package var fileExtension: String {
        switch self {
        case .gzip: "gz"
        case .brotli: "br"
        case .zstd: "zst"
        case .lz4: "lz4"
        case .snappy: "sz"
        }
    }

    /// A compressor for a whole file in its format's stream (gzip member, brotli stream, zstd
    /// frame, lz4 frame); snappy's framing format is not offered.
    package func streamCompressor() -> (any StreamCompressor)? {
        switch self {
        case .gzip: ParallelGzipStreamCompressor()
        case .brotli: BrotliStreamCompressor()
        case .zstd: ZstdStreamCompressor()
        case .lz4: LZ4FrameCompressor()
        case .snappy: nil
        }
    }

    /// Compresses one block as Parquet pages need it: gzip member, raw brotli stream, zstd frame,
    /// raw lz4 block (Parquet's `LZ4_RAW`), raw snappy.
    package func compressBlock(_ input: [UInt8]) -> [UInt8] {
        BlockCompressor(self).compress(input)
    }
}

/// Compresses blocks one after another with one codec, keeping what the codec can reuse between
/// blocks (zstd's context), and writing straight into the output array.
package final class BlockCompressor {
    package let compression: Compression
    private var zstdContext: OpaquePointer?

    package init(_ compression: Compression) { self.compression = compression }

    /// Parquet pages are zstd frames at level 1, the level pyarrow (PostHog's own exporter) writes
    /// by default: on export pages (hash-like uuids, timestamps, JSON) it is about twice as fast as
    /// level 3 and, page by page, no larger (docs/benchmarks.md). Whole-file streams stay at 3.
    static let zstdLevel: Int32 = 1

    deinit { if let zstdContext { ZSTD_freeCCtx(zstdContext) } }

    /// Room for the codec's worst case, kept between blocks: a block's output is copied out of it at
    /// its own size, so a compressed page does not hold its input's size in memory.
    private var scratch: [UInt8] = []

    /// `bound` bytes of room, filled by `body`, which answers how many it wrote.
    private func output(bound: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> Int) -> [UInt8] {
        let room = max(bound, 1)
        if scratch.count < room { scratch = [UInt8](unsafeUninitializedCapacity: room) { _, count in count = room } }
        let written = scratch.withUnsafeMutableBufferPointer { body(UnsafeMutableBufferPointer(rebasing: $0[0..<room])) }
        return [UInt8](unsafeUninitializedCapacity: written) { target, count in
            scratch.withUnsafeBufferPointer { source in
                if written > 0 { target.baseAddress!.initialize(from: source.baseAddress!, count: written) }
            }
            count = written
        }
    }

    /// Compresses `inputs` on several threads, one per compressor in `workers` (each codec context is
    /// used by one thread at a time); the results in the order of `inputs`. The calling thread takes
    /// part, so this ends even when no other thread is free.
    package static func compress(_ inputs: [[UInt8]], with workers: [BlockCompressor]) -> [[UInt8]] {
        precondition(!workers.isEmpty, "compressing needs at least one compressor")
        if workers.count == 1 || inputs.count < 2 { return inputs.map(workers[0].compress) }
        var results = [[UInt8]](repeating: [], count: inputs.count)
        let next = Atomic<Int>(0)
        results.withUnsafeMutableBufferPointer { output in
            let shared = ParallelCompression(output: output, workers: workers)
            DispatchQueue.concurrentPerform(iterations: min(workers.count, inputs.count)) { worker in
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < inputs.count else { return }
                    shared.output[index] = shared.workers[worker].compress(inputs[index])
                }
            }
        }
        return results
    }

    package func compress(_ input: [UInt8]) -> [UInt8] {
        switch compression {
        case .gzip:
            return Gzip.compress(input)
        case .brotli:
            return input.withUnsafeBufferPointer { source in
                output(bound: max(BrotliEncoderMaxCompressedSize(source.count), 64)) { destination in
                    var size = destination.count
                    let ok = BrotliEncoderCompress(
                        Int32(BrotliStreamCompressor.quality), BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, source.count, source.baseAddress,
                        &size, destination.baseAddress)
                    precondition(ok == BROTLI_TRUE, "brotli cannot fail with an output of its maximum size")
                    return size
                }
            }
        case .zstd:
            if zstdContext == nil { zstdContext = ZSTD_createCCtx() }
            let context = zstdContext
            return input.withUnsafeBufferPointer { source in
                output(bound: ZSTD_compressBound(source.count)) { destination in
                    let written = ZSTD_compressCCtx(
                        context, destination.baseAddress, destination.count, source.baseAddress, source.count, Self.zstdLevel)
                    precondition(ZSTD_isError(written) == 0, "zstd cannot fail with an output of its bound")
                    return written
                }
            }
        case .lz4:
            return input.withUnsafeBufferPointer { source in
                output(bound: Int(LZ4_compressBound(Int32(source.count)))) { destination in
                    let written = source.withMemoryRebound(to: CChar.self) { from in
                        destination.withMemoryRebound(to: CChar.self) { to in
                            LZ4_compress_default(from.baseAddress, to.baseAddress, Int32(from.count), Int32(to.count))
                        }
                    }
                    precondition(written > 0 || source.isEmpty, "lz4 cannot fail with an output of its bound")
                    return Int(written)
                }
            }
        case .snappy:
            return input.withUnsafeBufferPointer { source in
                output(bound: snappy_max_compressed_length(source.count)) { destination in
                    var length = destination.count
                    let status = source.withMemoryRebound(to: CChar.self) { from in
                        destination.withMemoryRebound(to: CChar.self) { to in
                            snappy_compress(from.baseAddress, from.count, to.baseAddress, &length)
                        }
                    }
                    precondition(status == SNAPPY_OK, "snappy cannot fail with an output of its maximum length")
                    return length
                }
            }
        }
    }
}

/// What the threads of `BlockCompressor.compress(_:with:)` share. Unchecked, because the sharing is
/// safe by construction: compressor `i` is used only by iteration `i` of `concurrentPerform`, and each
/// slot of `output` is written by the one thread that took its index from the atomic counter.
private struct ParallelCompression: @unchecked Sendable {
    let output: UnsafeMutableBufferPointer<[UInt8]>
    let workers: [BlockCompressor]
}

/// Compresses a stream piece by piece: what `compress` appends to `output` is ready to send, so a
/// file of any size is compressed in bounded memory. `finish` ends the stream (trailer, checksums).
package protocol StreamCompressor: AnyObject {
    func compress(_ input: [UInt8], into output: inout [UInt8])
    func finish(into output: inout [UInt8])
    /// Input taken and not yet compressed into `output` (a parallel compressor's chunks in flight).
    var bufferedInput: Int { get }
}

extension StreamCompressor {
    var bufferedInput: Int { 0 }
}

/// A brotli stream at quality 5 (brotli's default of 11 is slower than an export can afford).
final class BrotliStreamCompressor: StreamCompressor {
    static let quality: UInt32 = 5
    private let state: OpaquePointer

    init() {
        guard let state = BrotliEncoderCreateInstance(nil, nil, nil) else { fatalError("brotli could not allocate an encoder") }
        self.state = state
        BrotliEncoderSetParameter(state, BROTLI_PARAM_QUALITY, Self.quality)
    }

    deinit { BrotliEncoderDestroyInstance(state) }

    func compress(_ input: [UInt8], into output: inout [UInt8]) { run(input, operation: BROTLI_OPERATION_PROCESS, into: &output) }
    func finish(into output: inout [UInt8]) { run([], operation: BROTLI_OPERATION_FINISH, into: &output) }

    private func run(_ input: [UInt8], operation: BrotliEncoderOperation, into output: inout [UInt8]) {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        input.withUnsafeBufferPointer { source in
            var availableIn = source.count
            var nextIn = source.baseAddress
            while true {
                var availableOut = chunk.count
                chunk.withUnsafeMutableBufferPointer { buffer in
                    var nextOut = buffer.baseAddress
                    let ok = BrotliEncoderCompressStream(state, operation, &availableIn, &nextIn, &availableOut, &nextOut, nil)
                    precondition(ok == BROTLI_TRUE, "brotli rejected its own stream")
                }
                output.append(contentsOf: chunk[0..<(chunk.count - availableOut)])
                let finished = operation == BROTLI_OPERATION_FINISH ? BrotliEncoderIsFinished(state) == BROTLI_TRUE : availableIn == 0
                if finished && BrotliEncoderHasMoreOutput(state) == BROTLI_FALSE { break }
            }
        }
    }
}

/// A zstd frame at level 3 (zstd's default).
final class ZstdStreamCompressor: StreamCompressor {
    private let context: OpaquePointer

    init() {
        guard let context = ZSTD_createCCtx() else { fatalError("zstd could not allocate a context") }
        self.context = context
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 3)
    }

    deinit { ZSTD_freeCCtx(context) }

    func compress(_ input: [UInt8], into output: inout [UInt8]) { run(input, directive: ZSTD_e_continue, into: &output) }
    func finish(into output: inout [UInt8]) { run([], directive: ZSTD_e_end, into: &output) }

    private func run(_ input: [UInt8], directive: ZSTD_EndDirective, into output: inout [UInt8]) {
        var chunk = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        input.withUnsafeBufferPointer { source in
            var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            while true {
                let remaining = chunk.withUnsafeMutableBufferPointer { buffer -> Int in
                    var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
                    let remaining = ZSTD_compressStream2(context, &outBuffer, &inBuffer, directive)
                    precondition(ZSTD_isError(remaining) == 0, "zstd rejected its own stream")
                    output.append(contentsOf: buffer[0..<outBuffer.pos])
                    return remaining
                }
                if directive == ZSTD_e_end ? remaining == 0 : inBuffer.pos == inBuffer.size { break }
            }
        }
    }
}

/// An lz4 frame (what the `lz4` command reads), default preferences.
final class LZ4FrameCompressor: StreamCompressor {
    private var context: OpaquePointer?
    private var started = false

    init() {
        let status = LZ4F_createCompressionContext(&context, UInt32(LZ4F_VERSION))
        precondition(LZ4F_isError(status) == 0 && context != nil, "lz4 could not allocate a context")
    }

    deinit { LZ4F_freeCompressionContext(context) }

    private func begin(into output: inout [UInt8]) {
        guard !started else { return }
        started = true
        var header = [UInt8](repeating: 0, count: 32)  // LZ4F_HEADER_SIZE_MAX is 19
        let written = header.withUnsafeMutableBufferPointer { LZ4F_compressBegin(context, $0.baseAddress, $0.count, nil) }
        precondition(LZ4F_isError(written) == 0, "lz4 could not write a frame header")
        output.append(contentsOf: header[0..<written])
    }

    func compress(_ input: [UInt8], into output: inout [UInt8]) {
        begin(into: &output)
        guard !input.isEmpty else { return }
        var buffer = [UInt8](repeating: 0, count: LZ4F_compressBound(input.count, nil))
        let written = input.withUnsafeBufferPointer { source in
            buffer.withUnsafeMutableBufferPointer {
                LZ4F_compressUpdate(context, $0.baseAddress, $0.count, source.baseAddress, source.count, nil)
            }
        }
        precondition(LZ4F_isError(written) == 0, "lz4 rejected its own frame")
        output.append(contentsOf: buffer[0..<written])
    }

    func finish(into output: inout [UInt8]) {
        begin(into: &output)
        var buffer = [UInt8](repeating: 0, count: LZ4F_compressBound(0, nil))
        let written = buffer.withUnsafeMutableBufferPointer { LZ4F_compressEnd(context, $0.baseAddress, $0.count, nil) }
        precondition(LZ4F_isError(written) == 0, "lz4 could not end its frame")
        output.append(contentsOf: buffer[0..<written])
    }
}

/// Why inflating a body failed (`Gzip`, `Zstd`): it is not valid data of its codec, or it inflates
/// past the limit given.
package enum DecompressionFailure: Error, Equatable, CustomStringConvertible {
    case corrupt(codec: String, String)
    case tooLarge(limit: Int)

    package var description: String {
        switch self {
        case .corrupt(let codec, let message): "invalid \(codec) data: \(message)"
        case .tooLarge(let limit): "decompressed data is larger than \(limit) bytes"
        }
    }
}
