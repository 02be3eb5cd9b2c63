import CZlib
import Dispatch
import Foundation
import Synchronization

/// One gzip member (RFC 1952) at level 6, deflated on several cores: the stream is cut into
/// chunks, each deflated on its own thread as raw deflate primed with the 32 KiB of input before
/// it (so matches reach back across the cut as in one stream) and ended on a byte boundary with a
/// sync flush; the pieces are joined in order behind one header, and `finish` adds an empty final
/// block and the trailer (the input's CRC-32, combined from the chunks', and its length). The file
/// is an ordinary single-member gzip, about as small as one thread's (each cut costs 5 bytes).
///
/// While the caller writes more input, up to `inFlight` chunks are being deflated. `compress`
/// returns the output of the chunks finished so far and waits only when that many are still
/// running; a chunk no thread has started when it is waited for is deflated by the caller itself,
/// so compression ends even when no other thread is free.
final class ParallelGzipStreamCompressor: StreamCompressor {
    static let chunkSize = 256 * 1024
    static let window = 32 * 1024

    private let inFlight: Int
    private let deflaters = RawDeflater.Pool()
    private var buffer: [UInt8] = []
    /// The last `window` bytes of input handed to a chunk: the next chunk's dictionary.
    private var tail: [UInt8] = []
    private var running: [GzipChunk] = []
    private var crc = crc32(0, nil, 0)
    private var length: UInt32 = 0
    private var headerWritten = false

    init(inFlight: Int = max(2, ProcessInfo.processInfo.activeProcessorCount)) {
        self.inFlight = inFlight
        buffer.reserveCapacity(Self.chunkSize)
    }

    /// Input not yet deflated (buffered or in a chunk still running).
    var bufferedInput: Int { buffer.count + running.reduce(0) { $0 + $1.input.count } }

    func compress(_ input: [UInt8], into output: inout [UInt8]) {
        var offset = 0
        while offset < input.count {
            let taken = min(Self.chunkSize - buffer.count, input.count - offset)
            buffer.append(contentsOf: input[offset..<(offset + taken)])
            offset += taken
            if buffer.count == Self.chunkSize { submit(into: &output) }
        }
        collect(into: &output, waitingFor: running.count - inFlight)
    }

    func finish(into output: inout [UInt8]) {
        if !buffer.isEmpty { submit(into: &output) }
        collect(into: &output, waitingFor: running.count)
        writeHeader(into: &output)
        // An empty final block with fixed codes (BFINAL 1, BTYPE 01, end of block), then the trailer.
        output.append(contentsOf: [0x03, 0x00])
        for value in [UInt32(truncatingIfNeeded: crc), length] {
            for shift in stride(from: 0, to: 32, by: 8) { output.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
        }
    }

    private func submit(into output: inout [UInt8]) {
        let chunk = GzipChunk(input: buffer, dictionary: tail, deflaters: deflaters)
        // Every chunk but the last is `chunkSize` long (more than a window), and the last has no
        // successor: the next dictionary is this chunk's end.
        tail = Array(buffer.suffix(Self.window))
        buffer = []
        buffer.reserveCapacity(Self.chunkSize)
        running.append(chunk)
        DispatchQueue.global().async { chunk.runUnlessStarted() }
        collect(into: &output, waitingFor: running.count - inFlight)
    }

    /// Appends the output of finished chunks in order, waiting for the first `count` chunks.
    private func collect(into output: inout [UInt8], waitingFor count: Int) {
        var waited = 0
        while let first = running.first {
            let result: GzipChunk.Result
            if waited < count {
                result = first.wait()
                waited += 1
            } else if let done = first.result {
                result = done
            } else {
                break
            }
            running.removeFirst()
            writeHeader(into: &output)
            output.append(contentsOf: result.deflated)
            crc = crc32_combine(crc, result.crc, Int(first.input.count))
            length &+= UInt32(truncatingIfNeeded: first.input.count)
        }
    }

    private func writeHeader(into output: inout [UInt8]) {
        guard !headerWritten else { return }
        headerWritten = true
        // Magic, deflate, no flags, no modification time, no extra flags, Unix.
        output.append(contentsOf: [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03])
    }
}

/// One chunk of a parallel gzip stream, deflated once by whichever thread starts it first.
private final class GzipChunk: Sendable {
    struct Result: Sendable {
        let deflated: [UInt8]
        let crc: UInt
    }

    let input: [UInt8]
    let dictionary: [UInt8]
    let deflaters: RawDeflater.Pool
    private let state = Mutex<(started: Bool, result: Result?)>((false, nil))
    private let done = DispatchSemaphore(value: 0)

    init(input: [UInt8], dictionary: [UInt8], deflaters: RawDeflater.Pool) {
        self.input = input
        self.dictionary = dictionary
        self.deflaters = deflaters
    }

    var result: Result? { state.withLock { $0.result } }

    func runUnlessStarted() {
        let first = state.withLock { state in
            let first = !state.started
            state.started = true
            return first
        }
        guard first else { return }
        let deflater = deflaters.take()
        let result = Result(deflated: deflater.deflate(input, dictionary: dictionary), crc: Self.crc(input))
        deflaters.give(back: deflater)
        state.withLock { $0.result = result }
        done.signal()
    }

    /// The result, deflating the chunk on this thread if no other has started it.
    func wait() -> Result {
        runUnlessStarted()
        if let result { return result }
        done.wait()
        guard let result else { preconditionFailure("a chunk signals only once its result is stored") }
        return result
    }

    static func crc(_ bytes: [UInt8]) -> UInt {
        bytes.withUnsafeBufferPointer { crc32_z(crc32(0, nil, 0), $0.baseAddress, $0.count) }
    }
}

/// A raw deflate stream (no header or trailer) at level 6, reset for each chunk. Unchecked
/// Sendable: a deflater is used by one thread at a time, handed between threads through its pool's
/// lock.
final class RawDeflater: @unchecked Sendable {
    /// Deflaters not in use, made as chunks need them (at most one per chunk in flight).
    final class Pool: Sendable {
        private let free = Mutex<[RawDeflater]>([])
        func take() -> RawDeflater { free.withLock { $0.popLast() } ?? RawDeflater() }
        func give(back deflater: RawDeflater) { free.withLock { $0.append(deflater) } }
    }

    private var stream = z_stream()

    init() {
        // -15: raw deflate with a 32 KiB window.
        let status = deflateInit2_(&stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib could not allocate a deflate stream")
    }

    deinit { deflateEnd(&stream) }

    /// `input` deflated after `dictionary` (the input just before it), ended with a sync flush on a
    /// byte boundary, so that another chunk's blocks can follow.
    func deflate(_ input: [UInt8], dictionary: [UInt8]) -> [UInt8] {
        deflateReset(&stream)
        if !dictionary.isEmpty {
            dictionary.withUnsafeBufferPointer { _ = deflateSetDictionary(&stream, $0.baseAddress, UInt32($0.count)) }
        }
        // The bound covers the blocks; a sync flush adds an empty stored block (5 bytes) at most.
        let bound = Int(deflateBound(&stream, UInt(input.count))) + 64
        return [UInt8](unsafeUninitializedCapacity: bound) { output, count in
            input.withUnsafeBufferPointer { source in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = UInt32(source.count)
                stream.next_out = output.baseAddress
                stream.avail_out = UInt32(output.count)
                let status = CZlib.deflate(&stream, Z_SYNC_FLUSH)
                precondition(status == Z_OK && stream.avail_in == 0 && stream.avail_out > 0, "deflate ran out of its bound")
                count = output.count - Int(stream.avail_out)
            }
        }
    }
}
