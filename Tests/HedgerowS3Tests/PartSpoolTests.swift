import Crypto
import Foundation
import HedgerowS3
import NIOCore
import Testing

@Suite("Upload parts spooled to temporary files")
struct PartSpoolTests {
    @Test("what is appended is read back in order, with its SHA-256, and the file has no name in the temporary directory")
    func readsBackWhatWasWritten() async throws {
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? [])
        var spool = try PartSpool()
        var expected: [UInt8] = []
        for round in 0..<40 {
            let piece = [UInt8](repeating: UInt8(round), count: 70_001 + round)
            try spool.append(piece[...])
            expected += piece
        }
        let part = spool.seal()
        let after = Set((try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? [])
        #expect(after.subtracting(before).filter { $0.hasPrefix("hedgerow-part-") }.isEmpty)
        #expect(part.count == expected.count)
        #expect(part.sha256Hex == SHA256.hash(data: expected).map { String(format: "%02x", $0) }.joined())
        // Any range, also one that crosses what one append wrote.
        let middle = try part.read(offset: 69_990, length: 30)
        #expect(Array(buffer: middle) == Array(expected[69_990..<70_020]))
        var whole: [UInt8] = []
        var chunks = 0
        for try await chunk in part.chunks() {
            whole += Array(buffer: chunk)
            chunks += 1
        }
        #expect(chunks == 3)
        #expect(whole == expected)
    }
}
