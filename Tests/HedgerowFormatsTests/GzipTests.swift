import Foundation
import HedgerowFormats
import Testing

@Suite("gzip")
struct GzipTests {
    @Test func roundTripsAndReadsWhatPythonWrites() throws {
        let text = Array(String(repeating: "hedgerow é ", count: 5000).utf8)
        let compressed = Gzip.compress(text)
        #expect(Gzip.isGzip(compressed))
        #expect(compressed.count < text.count / 10)
        #expect(try Gzip.decompress(compressed, limit: 1 << 20) == text)
        // `python3 -c "import gzip,sys; sys.stdout.buffer.write(gzip.compress(b"hello", mtime=0))" | xxd -i` with mtime=0.
        let python: [UInt8] = [
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x86, 0xa6, 0x10,
            0x36, 0x05, 0x00, 0x00, 0x00,
        ]
        #expect(try Gzip.decompress(python, limit: 100) == Array("hello".utf8))
    }

    @Test func readsConcatenatedMembers() throws {
        let joined = Gzip.compress(Array("ab".utf8)) + Gzip.compress(Array("cd".utf8))
        #expect(try Gzip.decompress(joined, limit: 100) == Array("abcd".utf8))
    }

    @Test func refusesCorruptTruncatedAndOversizedData() {
        let compressed = Gzip.compress(Array(String(repeating: "x", count: 100_000).utf8))
        #expect(throws: Gzip.Failure.tooLarge(limit: 1000)) { try Gzip.decompress(compressed, limit: 1000) }
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress(Array(compressed.prefix(compressed.count / 2)), limit: 1 << 20) }
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress([0x1f, 0x8b, 1, 2, 3, 4], limit: 1 << 20) }
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress([], limit: 1 << 20) }
    }
}
