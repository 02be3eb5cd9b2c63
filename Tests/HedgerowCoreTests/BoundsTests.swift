import HedgerowCore
import Testing

/// Values from outside are bounded where they enter, and what is stored is read within the same
/// bounds (issue #31: the class, not the instances; docs/security.md).
@Suite("Bounds at the border")
struct BoundsTests {
    static let received = Timestamp(microseconds: 1_733_000_000_000_000)

    static func eventTime(_ fields: JSONObject, sentAt: String? = nil) throws -> Timestamp {
        var event: JSONObject = ["api_key": "phc_x", "event": "e", "distinct_id": "d"]
        for entry in fields.entries { event[entry.key] = entry.value }
        var body: JSONObject = ["batch": .array([.object(event)])]
        if let sentAt { body["sent_at"] = .string(sentAt) }
        return try CaptureParser.parse(.object(body), queryToken: nil, receivedAt: received).events[0].timestamp
    }

    @Test("An offset of Int64.min, Int64.max or a huge double is ignored instead of trapping")
    func extremeOffsets() throws {
        for offset: JSONValue in [.int(Int64.min), .int(Int64.max), .int(-Int64.max), .double(-9.2e18), .double(.infinity)] {
            #expect(try Self.eventTime(["offset": offset]) == Self.received)
        }
        #expect(try Self.eventTime(["offset": .int(1000)]).microseconds == Self.received.microseconds - 1_000_000)
    }

    @Test("A timestamp whose skew correction leaves years 1–9999 is replaced by the time it was received")
    func skewOutOfRange() throws {
        #expect(try Self.eventTime(["timestamp": "0000-01-01T00:00:00Z", "sent_at": "9999-12-31T23:59:59Z"]) == Self.received)
        #expect(try Self.eventTime(["timestamp": "0001-01-01T00:00:00Z"], sentAt: "9999-12-31T23:59:59Z") == Self.received)
        #expect(try Self.eventTime(["timestamp": "9999-12-31T23:59:59Z"], sentAt: "0001-01-01T00:00:00Z") == Self.received)
        // In range, the correction applies as before.
        let corrected = try Self.eventTime(["timestamp": "2024-12-01T10:00:00Z", "sent_at": "2024-12-01T10:00:05Z"])
        #expect(
            corrected.microseconds == ISO8601.parse("2024-12-01T10:00:00Z")!.timestamp.microseconds
                + Self.received.microseconds - ISO8601.parse("2024-12-01T10:00:05Z")!.timestamp.microseconds)
    }

    @Test("Year 0000, and an offset that moves an instant past 9999, are not date-times")
    func iso8601Range() {
        #expect(ISO8601.parse("0000-01-01T00:00:00Z") == nil)
        #expect(ISO8601.parse("0000-06-01") == nil)
        #expect(ISO8601.parse("9999-12-31T23:00:00-05:00") == nil)
        #expect(ISO8601.parse("0001-01-01T00:00:00Z")?.timestamp == .minimum)
        #expect(ISO8601.parse("9999-12-31T23:59:59.999999Z")?.timestamp == .maximum)
    }

    @Test("Any stored Int64 is written as a timestamp within years 1–9999, never trapping")
    func writersAreTotal() {
        #expect(Timestamp(microseconds: Int64.min).iso8601WithOffset == "0001-01-01T00:00:00+00:00")
        #expect(Timestamp(microseconds: -62_198_755_200_000_000).iso8601 == "0001-01-01T00:00:00Z")
        #expect(Timestamp(microseconds: Int64.max).iso8601WithOffset == "9999-12-31T23:59:59.999999+00:00")
        #expect(Timestamp(exactly: Int64.min) == nil)
        #expect(Timestamp(exactly: 0) == Timestamp(microseconds: 0))
        // Within the range, a sum of two timestamps cannot overflow.
        #expect(Timestamp.maximum.microseconds.addingReportingOverflow(Timestamp.maximum.microseconds).overflow == false)
    }

    @Test("max_file_size_mb, port and integration_id are refused outside their ranges")
    func destinationIntegerRanges() {
        let s3: JSONObject = ["bucket_name": "b", "region": "us-east-1", "prefix": "p"]
        for size: JSONValue in [.int(Int64.max), .int(0), .int(-1), .int(DestinationConfig.maximumFileSizeMegabytes + 1)] {
            var config = s3
            config["max_file_size_mb"] = size
            #expect(throws: APIError.self) { try DestinationConfig.validate(type: .s3, config: .object(config), model: .events) }
        }
        var fine = s3
        fine["max_file_size_mb"] = .int(DestinationConfig.maximumFileSizeMegabytes)
        #expect(throws: Never.self) { try DestinationConfig.validate(type: .s3, config: .object(fine), model: .events) }
        let postgres: JSONObject = ["user": "u", "password": "p", "host": "db.example.com", "database": "d", "port": .int(70_000)]
        do {
            _ = try DestinationConfig.validate(type: .postgres, config: .object(postgres), model: .events)
            Issue.record("port 70000 was accepted")
        } catch {
            #expect(error.detail == "Configuration field 'port' must be between 1 and 65535.")
            #expect(error.attr == "destination")
        }
    }
}

/// A saved secret goes only where it was saved for (issue #31 §6).
@Suite("Secrets bound to where they go")
struct SecretRouteTests {
    /// Each type: a stored configuration, the field that moves its secrets, a new value for it, and
    /// the secret the move must repeat.
    static let cases: [(DestinationType, JSONObject, String, JSONValue, String)] = [
        (
            .postgres, ["user": "u", "password": "stored", "host": "db.example.com", "database": "d"], "host", "attacker.example",
            "user"
        ),
        (.postgres, ["user": "u", "password": "stored", "host": "db.example.com", "database": "d"], "port", .int(6543), "user"),
        (
            .postgres, ["user": "u", "password": "stored", "host": "db.example.com", "database": "d"], "has_self_signed_cert",
            .bool(true), "user"
        ),
        (
            .s3, ["bucket_name": "b", "region": "r", "prefix": "p", "aws_access_key_id": "AK", "aws_secret_access_key": "SK"],
            "endpoint_url", "http://attacker.example:9000", "aws_access_key_id"
        ),
        (
            .bigQuery,
            [
                "project_id": "p", "dataset_id": "d", "private_key": "K", "private_key_id": "I",
                "token_uri": "https://oauth2.googleapis.com/token", "client_email": "e@x",
            ], "token_uri", "https://attacker.example/token", "private_key"
        ),
        (
            .snowflake,
            ["account": "acme", "user": "u", "password": "P", "database": "d", "warehouse": "w", "schema": "s"], "account",
            "attacker", "user"
        ),
        (
            .databricks,
            [
                "server_hostname": "dbc.example.com", "client_id": "C", "client_secret": "S",
                "http_path": "/sql/1.0/warehouses/x", "catalog": "c", "schema": "s", "table_name": "t",
            ], "server_hostname", "attacker.example", "client_id"
        ),
        (.http, ["url": "https://receiver.example/batch", "token": "T"], "url", "https://attacker.example/", "token"),
    ]

    @Test("Moving where a stored secret goes, without giving it again, is refused keyed on the secret", arguments: cases.indices)
    func movedWithoutSecret(index: Int) throws {
        let (type, stored, field, value, secret) = Self.cases[index]
        let existing = try DestinationConfig.validate(type: type, config: .object(stored), model: .events)
        do {
            _ = try DestinationConfig.validate(type: type, config: .object([field: value]), model: .events, existing: existing)
            Issue.record("\(type.rawValue): '\(field)' moved with the stored secrets")
        } catch {
            #expect(error.status == 400)
            #expect(error.attr == secret, "\(error.detail)")
        }
        // Every stored secret given again: accepted.
        var given: JSONObject = [field: value]
        for entry in DestinationConfig.secretPart(existing, type: type).entries where given[entry.key] == nil {
            given[entry.key] = entry.value
        }
        #expect(throws: Never.self) {
            try DestinationConfig.validate(type: type, config: .object(given), model: .events, existing: existing)
        }
        // The same value again: no secret needed.
        if let same = existing[field] {
            #expect(throws: Never.self) {
                try DestinationConfig.validate(type: type, config: .object([field: same]), model: .events, existing: existing)
            }
        }
    }
}
