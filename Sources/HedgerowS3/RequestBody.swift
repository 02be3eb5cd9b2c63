import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore

/// The body of an upload: bytes in memory, or a part spooled to a temporary file, which is sent
/// (and sent again on a retry) by reading it back in chunks, so a part on its way costs no memory.
package enum RequestBody: Sendable {
    case bytes([UInt8])
    case spooled(SpooledPart)

    package var count: Int {
        switch self {
        case .bytes(let bytes): bytes.count
        case .spooled(let part): part.count
        }
    }

    /// The lower-case hex SHA-256 of the bytes (SigV4 signs it).
    var sha256Hex: String {
        switch self {
        case .bytes(let bytes): SigV4Signer.sha256Hex(bytes)
        case .spooled(let part): part.sha256Hex
        }
    }

    /// AsyncHTTPClient's body: the array itself, or a stream of the file's chunks.
    package var httpBody: HTTPClientRequest.Body {
        switch self {
        case .bytes(let bytes): .bytes(bytes)
        case .spooled(let part): .stream(part.chunks(), length: .known(Int64(part.count)))
        }
    }
}

/// A temporary file's descriptor, closed when the last reference goes. The file has no name: it is
/// removed as soon as it is made (mode 0600), so a process killed mid-upload leaves nothing behind.
final class SpoolFile: Sendable {
    let descriptor: Int32

    init() throws(SpoolError) {
        var template = Array((NSTemporaryDirectory() + "/hedgerow-part-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw SpoolError("cannot create a temporary file for an upload part", errno) }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}

/// A failure to write or read a spooled part (the temporary directory full or unwritable).
package struct SpoolError: Error, CustomStringConvertible {
    package let description: String
    init(_ what: String, _ code: Int32) {
        description = "\(what): \(String(cString: strerror(code)))"
    }
}

/// Bytes gathered for one part, in a temporary file, with their SHA-256. One writer appends, then
/// `seal()` hands the part over for upload.
package struct PartSpool {
    private let file: SpoolFile
    private var hasher = SHA256()
    package private(set) var count = 0

    package init() throws(SpoolError) {
        file = try SpoolFile()
    }

    package mutating func append(_ bytes: ArraySlice<UInt8>) throws(SpoolError) {
        guard !bytes.isEmpty else { return }
        hasher.update(data: bytes)
        let descriptor = file.descriptor
        let failure: Int32? = bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let failure { throw SpoolError("cannot write an upload part to its temporary file", failure) }
        count += bytes.count
    }

    /// The part as written, ready to be read back (by any number of attempts).
    package func seal() -> SpooledPart {
        SpooledPart(file: file, count: count, sha256Hex: SigV4Signer.hex(hasher.finalize()))
    }
}

/// A sealed part: its size, its SHA-256, and its bytes read back in chunks.
package final class SpooledPart: Sendable {
    let file: SpoolFile
    package let count: Int
    package let sha256Hex: String
    /// How much is read into memory at a time while the part is sent.
    static let chunkSize = 1 << 20

    init(file: SpoolFile, count: Int, sha256Hex: String) {
        self.file = file
        self.count = count
        self.sha256Hex = sha256Hex
    }

    /// `length` bytes from `offset` (the page cache holds them: the part was just written).
    package func read(offset: Int, length: Int) throws(SpoolError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        let descriptor = file.descriptor
        var failure: Int32 = 0
        let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { target in
            var done = 0
            while done < length {
                let got = pread(descriptor, target.baseAddress! + done, length - done, off_t(offset + done))
                if got < 0, errno == EINTR { continue }
                if got <= 0 {
                    failure = got < 0 ? errno : EIO
                    break
                }
                done += got
            }
            return done
        }
        guard read == length else { throw SpoolError("cannot read an upload part back from its temporary file", failure) }
        return buffer
    }

    /// The whole part as a sequence of chunks, read as the request body is sent.
    package func chunks() -> Chunks { Chunks(part: self) }

    package struct Chunks: AsyncSequence, Sendable {
        package typealias Element = ByteBuffer
        let part: SpooledPart

        package struct AsyncIterator: AsyncIteratorProtocol {
            let part: SpooledPart
            var offset = 0

            package mutating func next() async throws -> ByteBuffer? {
                guard offset < part.count else { return nil }
                let length = Swift.min(SpooledPart.chunkSize, part.count - offset)
                let chunk = try part.read(offset: offset, length: length)
                offset += length
                return chunk
            }
        }

        package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(part: part) }
    }
}
