#if HEDGEROW_FUZZ
    import Foundation

    /// libFuzzer's entry: the target named by `HEDGEROW_FUZZ_TARGET` gets each input.
    let target: @Sendable ([UInt8]) -> Void = {
        let name = ProcessInfo.processInfo.environment["HEDGEROW_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTargets.all[name] else {
            fatalError("HEDGEROW_FUZZ_TARGET must be one of \(FuzzTargets.all.keys.sorted())")
        }
        return target
    }()

    @_cdecl("LLVMFuzzerTestOneInput")
    func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        target(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }

    typealias Arguments = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

    /// libFuzzer's driver, run from the entry SwiftPM links an executable with (`<module>_main`).
    @_silgen_name("LLVMFuzzerRunDriver")
    func runDriver(
        _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<Arguments?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    @_cdecl("HedgerowFuzz_main")
    func fuzzMain(_ argc: Int32, _ argv: Arguments?) -> Int32 {
        var count = argc
        var arguments = argv
        return runDriver(&count, &arguments, fuzzOneInput)
    }
#else
    import Foundation

    /// Without the fuzzer: replays corpus files through their targets (`hedgerow-fuzz TARGET FILE...`,
    /// or `hedgerow-fuzz --corpus DIR` for DIR/TARGET/*), so that every input that ever crashed
    /// stays a test of the plain build.
    @main
    struct Replay {
        static func main() throws {
            var arguments = Array(CommandLine.arguments.dropFirst())
            var runs: [(String, String)] = []
            if arguments.first == "--corpus", arguments.count == 2 {
                let root = arguments[1]
                for name in FuzzTargets.all.keys.sorted() {
                    let directory = root + "/" + name
                    for file in (try? FileManager.default.contentsOfDirectory(atPath: directory))?.sorted() ?? [] {
                        runs.append((name, directory + "/" + file))
                    }
                }
            } else if let name = arguments.first, FuzzTargets.all[name] != nil {
                arguments.removeFirst()
                runs = arguments.map { (name, $0) }
            } else {
                print("usage: hedgerow-fuzz TARGET FILE... | hedgerow-fuzz --corpus DIR; targets: \(FuzzTargets.all.keys.sorted())")
                exit(2)
            }
            for (name, path) in runs {
                guard let data = FileManager.default.contents(atPath: path) else { throw CocoaError(.fileReadNoSuchFile) }
                FuzzTargets.all[name]!(Array(data))
            }
            print("\(runs.count) passed, 0 failed")
        }
    }
#endif
