import CCodecs
import Foundation
import HedgerowCore
import HedgerowFormats
import HedgerowTestSupport
import Testing

@Suite("compression codecs against their reference tools")
struct CompressionTests {
    /// Text like an export's: repetitive JSON with some variety.
    static let sample: [UInt8] = {
        var text = ""
        for index in 0..<20_000 {
            text +=
                #"{"uuid":"0190-\#(index)","event":"$pageview","properties":{"$current_url":"https://example.com/\#(index % 97)","é":"ü"}}"#
            text += "\n"
        }
        return Array(text.utf8)
    }()

    static let tools: [Compression: String] = [.gzip: "gzip", .brotli: "brotli", .zstd: "zstd", .lz4: "lz4"]

    /// `sample` through `compression`'s stream compressor in pieces of `pieces` bytes, then the
    /// rest, then the end of the stream.
    static func stream(_ compression: Compression, pieces: [Int]) throws -> [UInt8] {
        let compressor = try #require(compression.streamCompressor())
        var output: [UInt8] = []
        var offset = 0
        for size in pieces {
            let end = min(offset + size, sample.count)
            compressor.compress(Array(sample[offset..<end]), into: &output)
            offset = end
        }
        compressor.compress(Array(sample[offset...]), into: &output)
        compressor.finish(into: &output)
        return output
    }

    @Test(arguments: [Compression.gzip, .brotli, .zstd, .lz4])
    func streamIsAcceptedAndDecodedByTheReferenceTool(_ compression: Compression) throws {
        // Pieces of uneven sizes, as batches arrive.
        let output = try Self.stream(compression, pieces: [1, 10, 100_000, 7, 300_000])
        #expect(output.count < Self.sample.count / 4)
        let tool = try #require(Self.tools[compression])
        let file = try ReferenceTools.temporaryFile(output, suffix: "." + compression.fileExtension)
        defer { try? FileManager.default.removeItem(at: file) }
        let tested = try ReferenceTools.run(tool, ["-t", file.path])
        #expect(tested.status == 0, "\(tool) -t: \(tested.stderr)")
        let decoded = try ReferenceTools.run(tool, ["-dc", file.path])
        #expect(decoded.status == 0)
        #expect(Array(decoded.stdout) == Self.sample)
    }

    @Test("A gzip stream deflated in parallel chunks is one member, as small as one thread's")
    func gzipStreamIsOneMember() throws {
        // Pieces across the chunk size: some end inside a chunk, one spans several.
        let output = try Self.stream(.gzip, pieces: [3, 200_000, 700_000, 5, 600_000])
        #expect(Self.sample.count > 6 * 256 * 1024)
        // zlib reads one member to its end, with nothing after it.
        let decoded = try ReferenceTools.python(
            """
            import sys, zlib
            data = sys.stdin.buffer.read()
            inflater = zlib.decompressobj(31)
            out = inflater.decompress(data)
            assert inflater.eof and not inflater.unused_data, "not one gzip member"
            sys.stdout.buffer.write(out)
            """, input: Data(output))
        #expect(Array(decoded) == Self.sample)
        let single = Gzip.compress(Self.sample)
        #expect(Double(output.count) < Double(single.count) * 1.01, "\(output.count) bytes against \(single.count) in one stream")
    }

    /// A zstd frame of `input` at `level`, by libzstd's one-shot call.
    static func zstdFrame(_ input: [UInt8], level: Int32) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let written = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { ZSTD_compress($0.baseAddress, $0.count, source.baseAddress, source.count, level) }
        }
        return Array(output[0..<written])
    }

    @Test("Parquet pages are zstd frames at level 1, pyarrow's default (PostHog's exporter), not zstd's own default of 3")
    func parquetPagesAtLevelOne() {
        // Hex like the uuid column's, where the two levels differ (level 1 is smaller there).
        let page = Array(
            (0..<40_000).map { index in String(format: "%08x-%04x", index &* 2_654_435_761 % 4_294_967_291, index % 65_536) }.joined().utf8)
        let block = Compression.zstd.compressBlock(page)
        #expect(block == Self.zstdFrame(page, level: 1))
        #expect(block != Self.zstdFrame(page, level: 3))
    }

    @Test func emptyStreamsAreValid() throws {
        for compression in [Compression.gzip, .brotli, .zstd, .lz4] {
            let compressor = try #require(compression.streamCompressor())
            var output: [UInt8] = []
            compressor.finish(into: &output)
            let file = try ReferenceTools.temporaryFile(output, suffix: "")
            defer { try? FileManager.default.removeItem(at: file) }
            let decoded = try ReferenceTools.run(try #require(Self.tools[compression]), ["-dc", file.path])
            #expect(decoded.status == 0 && decoded.stdout.isEmpty, "\(compression): \(decoded.stderr)")
        }
    }

    @Test func snappyHasNoStreamForm() {
        #expect(Compression.snappy.streamCompressor() == nil)
        #expect(Compression.allCases.map(\.fileExtension) == ["gz", "br", "zst", "lz4", "sz"])
    }

    /// Parquet's page codecs, decoded by pyarrow's (Arrow's C++ codecs).
    @Test(arguments: Compression.allCases)
    func blockIsDecodedByArrow(_ compression: Compression) throws {
        let block = compression.compressBlock(Self.sample)
        #expect(block.count < Self.sample.count / 4)
        let codec = compression == .lz4 ? "lz4_raw" : compression.rawValue
        let decoded = try ReferenceTools.python(
            """
            import sys, pyarrow as pa
            data = sys.stdin.buffer.read()
            sys.stdout.buffer.write(pa.decompress(data, decompressed_size=int(sys.argv[1]), codec=sys.argv[2]).to_pybytes())
            """, arguments: [String(Self.sample.count), codec], input: Data(block))
        #expect(Array(decoded) == Self.sample)
    }
}

@Suite("Blocks compressed on several threads")
struct ParallelBlockCompressionTests {
    /// Blocks of different sizes and contents, so that a result out of place would show.
    static let blocks: [[UInt8]] = (0..<23).map { index in
        Array(String(repeating: "block \(index) of the row group; ", count: 1 + index * 37).utf8)
    }

    @Test(arguments: Compression.allCases)
    func resultsAreInTheOrderOfTheInputs(_ compression: Compression) {
        let workers = (0..<3).map { _ in BlockCompressor(compression) }
        let sequential = Self.blocks.map(compression.compressBlock)
        for _ in 0..<5 {
            #expect(BlockCompressor.compress(Self.blocks, with: workers) == sequential)
        }
        #expect(BlockCompressor.compress([], with: workers).isEmpty)
        #expect(BlockCompressor.compress([Self.blocks[4]], with: workers) == [sequential[4]])
    }
}
