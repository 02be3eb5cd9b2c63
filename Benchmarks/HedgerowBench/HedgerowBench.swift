import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowFormats
import HedgerowRuntime
import HedgerowStore
import Logging

/// Benchmark driver for the event store (used by scripts/bench-capture):
///   hedgerow-bench seed N TEAM START_MICROS SPAN_MICROS   stores N events spread over the span
///   hedgerow-bench scan TEAM START_MICROS END_MICROS [BATCH]  streams a window, then reads the same
///                                                            rows with one SQL aggregate (the baseline)
///   hedgerow-bench encode TEAM START END FORMAT COMPRESSION FILE  reads a window into memory, then times
///                                                            projecting and encoding it into FILE
///                                                            (scripts/bench-s3; COMPRESSION "none" for none)
///   hedgerow-bench json                                      parses wide objects (1k to 1M keys) and a 20 MiB
///                                                            capture batch with Hedgerow's JSONParser and with
///                                                            Foundation's JSONSerialization (scripts/bench-json)
/// The database comes from HEDGEROW_DATABASE_URL / HEDGEROW_DATA_DIR, as for `hedgerow`.
@main
struct HedgerowBench {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        var configuration = try HedgerowConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
        configuration.bootstrapOnEmptyDatabase = false
        var logger = Logger(label: "hedgerow-bench")
        logger.logLevel = .warning
        guard let command = arguments.first else {
            print("usage: hedgerow-bench seed N TEAM START SPAN | scan TEAM START END [BATCH]")
            return
        }
        let numbers = arguments.dropFirst().compactMap { Int64($0) }
        switch command {
        case "json":
            try parseJSON()
        case "seed" where numbers.count == 4:
            try await withDatabase(configuration, logger: logger) { database in
                try await seed(database, count: Int(numbers[0]), team: numbers[1], start: numbers[2], span: numbers[3])
            }
        case "seed-persons" where numbers.count == 4:
            try await withDatabase(configuration, logger: logger) { database in
                try await seedPersons(database, count: Int(numbers[0]), team: numbers[1], start: numbers[2], span: numbers[3])
            }
        case "scan" where numbers.count >= 3:
            try await withDatabase(configuration, logger: logger) { database in
                try await scan(
                    database, team: numbers[0], start: numbers[1], end: numbers[2], batch: Int(numbers.count > 3 ? numbers[3] : 10_000))
            }
        case "encode" where (arguments.count == 7 || arguments.count == 8) && numbers.count >= 3:
            guard let format = FileFormat(rawValue: arguments[4]) else { throw BenchError("unknown format \(arguments[4])") }
            let compression = arguments[5] == "none" ? nil : Compression(rawValue: arguments[5])
            try await withDatabase(configuration, logger: logger) { database in
                try await encode(
                    database, team: numbers[0], start: numbers[1], end: numbers[2], format: format, compression: compression,
                    file: arguments[6], rounds: arguments.count == 8 ? max(1, Int(arguments[7]) ?? 1) : 1)
            }
        default:
            print(
                "usage: hedgerow-bench seed N TEAM START SPAN | seed-persons N TEAM START SPAN | scan TEAM START END [BATCH] | encode TEAM START END FORMAT COMPRESSION FILE [ROUNDS] | json"
            )
        }
    }

    static func seed(_ database: any Database, count: Int, team: Int64, start: Int64, span: Int64) async throws {
        let store = SQLEventStore(database: database)
        let clock = ContinuousClock()
        let began = clock.now
        var written = 0
        while written < count {
            let size = min(5_000, count - written)
            let events = (0..<size).map { offset -> Event in
                let index = written + offset
                let at = start + span * Int64(index) / Int64(count)
                return Event(
                    uuid: Identifiers.uuidV7(at: Timestamp(microseconds: at)), teamID: team,
                    event: index % 10 == 0 ? "$pageview" : "clicked",
                    distinctID: "user-\(index % 5_000)",
                    properties:
                        #"{"$current_url":"https://shop.example/products/\#(index % 977)","$browser":"Firefox","price":\#(index % 300).5,"$lib":"posthog-python","$set":{"plan":"pro"}}"#,
                    personID: nil, personProperties: nil, elementsChain: nil, timestamp: Timestamp(microseconds: at),
                    createdAt: Timestamp(microseconds: at), insertedAt: Timestamp(microseconds: at))
            }
            written += try await store.append(events)
        }
        let seconds = (clock.now - began).seconds
        print(
            String(
                format: "seeded %d events in %.1f s (%.0f events/s through EventStore.append)", written, seconds, Double(written) / seconds)
        )
    }

    /// `count` distinct ids, two to a person, changed across `[start, start + span)`.
    static func seedPersons(_ database: any Database, count: Int, team: Int64, start: Int64, span: Int64) async throws {
        let store = PersonStore()
        let clock = ContinuousClock()
        let began = clock.now
        for chunk in stride(from: 0, to: count, by: 10_000) {
            let range = chunk..<min(chunk + 10_000, count)
            func time(_ index: Int) -> Timestamp { Timestamp(microseconds: start + span * Int64(index) / Int64(count)) }
            func uuid(_ person: Int) -> String {
                let hex = String(person, radix: 16)
                return "0190a3b2-0000-7000-8000-" + String(repeating: "0", count: 12 - hex.count) + hex
            }
            let persons = Set(range.map { $0 / 2 }).sorted().map { person in
                Person(
                    uuid: uuid(person), teamID: team,
                    properties: [
                        "email": .string("user-\(person)@example.com"), "plan": person % 3 == 0 ? "pro" : "free",
                        "seats": .int(Int64(person % 50)),
                        "$initial_referring_domain": "www.google.com", "$geoip_country_code": "GB",
                    ], createdAt: time(person * 2), isIdentified: true, version: 1, updatedAt: time(person * 2))
            }
            let mappings = range.map { index in
                PersonDistinctID(teamID: team, distinctID: "user-\(index)", personUUID: uuid(index / 2), updatedAt: time(index))
            }
            try await database.transaction { connection in
                try await store.save(persons, on: connection)
                try await store.save(mappings, on: connection)
            }
        }
        let seconds = (clock.now - began).seconds
        print(String(format: "seeded %d distinct ids (%d persons) in %.1f s", count, (count + 1) / 2, seconds))
    }

    static func scan(_ database: any Database, team: Int64, start: Int64, end: Int64, batch: Int) async throws {
        let store = SQLEventStore(database: database)
        let query = EventQuery(teamID: team, field: .timestamp, start: Timestamp(microseconds: start), end: Timestamp(microseconds: end))
        let clock = ContinuousClock()
        let rssBefore = residentKilobytes("VmRSS")
        var began = clock.now
        var rows = 0
        var bytes = 0
        var largestBatch = 0
        for try await events in store.batches(query, batchSize: batch) {
            rows += events.count
            largestBatch = max(largestBatch, events.count)
            for event in events { bytes += event.properties.utf8.count }
        }
        let streamed = (clock.now - began).seconds
        began = clock.now
        let baseline = try await database.read { connection in
            try await connection.first(
                "SELECT COUNT(*) AS n, SUM(LENGTH(CAST(properties AS TEXT))) AS b FROM events WHERE team_id = $1 AND timestamp >= $2 AND timestamp < $3",
                [.int(team), .int(start), .int(end)])
        }
        let aggregated = (clock.now - began).seconds
        let baselineRows = Int(baseline?.int("n") ?? 0)
        print(
            String(
                format:
                    "scan: %d events in %.2f s = %.0f events/s (batches of %d); baseline SQL aggregate over the same %d rows: %.2f s = %.0f rows/s; ratio %.2f",
                rows, streamed, Double(rows) / streamed, largestBatch, baselineRows, aggregated, Double(baselineRows) / aggregated,
                (Double(rows) / streamed) / (Double(baselineRows) / aggregated)))
        print("scan: property bytes read \(bytes); RSS before \(rssBefore) kB, peak \(residentKilobytes("VmHWM")) kB")
    }

    /// The encoding stage alone, as the S3 destination runs it (projection, encoder, codec), into a
    /// local file: the events are read first, so the time is the encoding's only. With `rounds` > 1
    /// the same events are encoded that many times, each round printed, then the round of median
    /// time (`encode:`), which a single cold round can miss by a third.
    static func encode(
        _ database: any Database, team: Int64, start: Int64, end: Int64, format: FileFormat, compression: Compression?, file: String,
        rounds: Int
    ) async throws {
        let store = SQLEventStore(database: database)
        let query = EventQuery(teamID: team, field: .timestamp, start: Timestamp(microseconds: start), end: Timestamp(microseconds: end))
        var batches: [[Event]] = []
        for try await batch in store.batches(query, batchSize: 10_000) { batches.append(batch) }
        var results: [(records: Int, seconds: Double, bytes: Int, cpu: Double)] = []
        for _ in 0..<rounds {
            guard FileManager.default.createFile(atPath: file, contents: nil), let handle = FileHandle(forWritingAtPath: file) else {
                throw BenchError("cannot write \(file)")
            }
            let clock = ContinuousClock()
            let began = clock.now
            let cpuBefore = cpuSeconds()
            let encoder = try format.encoder(columns: EventProjection.fileColumns, compression: compression).get()
            for batch in batches {
                for index in batch.indices { encoder.append(EventProjection.PageRow(page: batch, index: index)) }
                encoder.endBatch()
                try handle.write(contentsOf: encoder.takeOutput())
            }
            encoder.finish()
            try handle.write(contentsOf: encoder.takeOutput())
            try handle.close()
            results.append((encoder.records, (clock.now - began).seconds, encoder.bytesProduced, cpuSeconds() - cpuBefore))
            if rounds > 1 {
                let round = results[results.count - 1]
                print(String(format: "round %d: %.3f s, %.3f s of CPU", results.count, round.seconds, round.cpu))
            }
        }
        let median = results.sorted { $0.seconds < $1.seconds }[results.count / 2]
        print(
            String(
                format: "encode: %d rows in %.3f s = %.0f rows/s, %d bytes, %.3f s of CPU", median.records, median.seconds,
                Double(median.records) / median.seconds, median.bytes, median.cpu))
    }

    /// Parse time of bodies that grow in width: with linear parsing the time per key stays flat from
    /// a thousand keys to a million. Foundation's JSONSerialization parses the same bytes beside it.
    static func parseJSON() throws {
        func wideObject(keys: Int) -> [UInt8] {
            var text = "{"
            text.reserveCapacity(keys * 24)
            for index in 0..<keys { text += (index == 0 ? "" : ",") + "\"property_\(index)\":\(index)" }
            return Array((text + "}").utf8)
        }
        func captureBatch(bytes: Int) -> [UInt8] {
            var text = #"{"api_key":"phc_bench","batch":["#
            var index = 0
            while text.utf8.count < bytes {
                text +=
                    (index == 0 ? "" : ",")
                    + #"{"event":"$pageview","distinct_id":"user-\#(index % 5000)","uuid":"0190f0c2-0000-7000-8000-\#(String(format: "%012d", index))","properties":{"$current_url":"https://shop.example/products/\#(index % 977)","$browser":"Firefox","price":\#(index % 300).5,"$lib":"posthog-python","$set":{"plan":"pro"}},"timestamp":"2026-11-30T12:00:00Z"}"#
                index += 1
            }
            return Array((text + "]}").utf8)
        }
        func time(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
            var best = Double.infinity
            for _ in 0..<repeats {
                let began = ContinuousClock.now
                try body()
                best = min(best, (ContinuousClock.now - began).seconds)
            }
            return best
        }
        print("body                         bytes       Hedgerow s   ns/key   Foundation s   ratio (Hedgerow/Foundation time)")
        var cases: [(String, [UInt8], Int)] = [1_000, 10_000, 40_000, 100_000, 1_000_000].map {
            ("object of \($0) keys", wideObject(keys: $0), $0)
        }
        cases.append(("capture batch of 20 MiB", captureBatch(bytes: 20 * 1024 * 1024), 0))
        for (name, body, keys) in cases {
            let repeats = body.count > 5_000_000 ? 3 : 5
            let ours = try time(repeats: repeats) { _ = try JSONParser.parse(body) }
            let data = Data(body)
            let foundation = try time(repeats: repeats) { _ = try JSONSerialization.jsonObject(with: data) }
            let perKey = keys > 0 ? String(format: "%8.1f", ours * 1e9 / Double(keys)) : "       -"
            print(
                name.padding(toLength: 28, withPad: " ", startingAt: 0)
                    + String(format: " %10d   %10.4f   %@   %12.4f   %.2f", body.count, ours, perKey, foundation, ours / foundation))
        }
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// User and system CPU time of the process so far, all threads.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static func residentKilobytes(_ field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
