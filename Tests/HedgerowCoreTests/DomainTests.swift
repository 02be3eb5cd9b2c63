import HedgerowCore
import Testing

@Suite("Domain values")
struct DomainTests {
    @Test(arguments: [
        ("Acme Inc", "acme-inc"),
        ("  Hello   World  ", "hello-world"),
        ("Crème Brûlée!", "creme-brulee"),
        ("a--b__c", "a-b__c"),
        ("_-Leading and trailing-_", "leading-and-trailing"),
        ("日本語", ""),
        ("Ünïcödé Straße", "unicode-strae"),
        ("MiXeD CaSe 42", "mixed-case-42"),
    ])
    func slugifyFollowsDjango(input: String, expected: String) {
        #expect(Slug.slugify(input) == expected)
    }

    @Test func organizationSlugIsCutTo48() {
        let slug = Slug.forOrganization(named: String(repeating: "abcdefghij", count: 6))
        #expect(slug.count == 48)
    }

    @Test func clashSuffixIsFirst43PlusFourLetters() {
        let base = String(repeating: "x", count: 48)
        let candidate = Slug.withRandomSuffix(base)
        #expect(candidate.count == 48)
        #expect(candidate.hasPrefix(String(repeating: "x", count: 43) + "-"))
        #expect(candidate.suffix(4).allSatisfy { $0.isLowercase && $0.isLetter })
    }

    @Test func timestampsAreISO8601WithMicrosecondsOnlyWhenNonZero() {
        #expect(Timestamp(microseconds: 1_704_103_200_000_000).iso8601 == "2024-01-01T10:00:00Z")
        #expect(Timestamp(microseconds: 1_704_103_200_123_456).iso8601 == "2024-01-01T10:00:00.123456Z")
        #expect(Timestamp(microseconds: 951_782_400_000_001).iso8601 == "2000-02-29T00:00:00.000001Z")
        #expect(Timestamp(microseconds: -1).iso8601 == "1969-12-31T23:59:59.999999Z")
    }

    @Test func exportTimestampsAreTheISO8601FormWithAnOffset() {
        #expect(Timestamp(microseconds: 1_704_103_200_000_000).iso8601WithOffset == "2024-01-01T10:00:00+00:00")
        #expect(Timestamp(microseconds: 1_704_103_200_123_456).iso8601WithOffset == "2024-01-01T10:00:00.123456+00:00")
        #expect(Timestamp(microseconds: -62_135_596_800_000_000).iso8601WithOffset == "0001-01-01T00:00:00+00:00")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let time = Timestamp(microseconds: Int64.random(in: 0...253_402_300_799_999_999, using: &generator))
            var bytes: [UInt8] = Array("prefix".utf8)
            time.writeISO8601WithOffset(into: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == "prefix" + time.iso8601.dropLast() + "+00:00")
        }
    }

    @Test func uuidV7IsTimeOrderedAndCanonical() {
        let early = Identifiers.uuidV7(at: Timestamp(microseconds: 1_000_000_000_000))
        let late = Identifiers.uuidV7(at: Timestamp(microseconds: 2_000_000_000_000))
        #expect(early < late)
        #expect(Identifiers.canonicalUUID(early) == early)
        #expect(early.dropFirst(14).first == "7")
        #expect(Identifiers.canonicalUUID("not-a-uuid") == nil)
        #expect(Identifiers.canonicalUUID("497F6ECA-6276-4993-BFEB-53CBBBBA6F08") == "497f6eca-6276-4993-bfeb-53cbbbba6f08")
    }

    @Test func scopesParseOnlyKnownObjects() throws {
        #expect(Scope("*") == .all)
        #expect(Scope("organization:read")?.object == "organization")
        #expect(Scope("batch_export:write")?.access == .write)
        #expect(Scope("organization:delete") == nil)
        #expect(Scope("insight:read") == nil)
        #expect(Scope("organization") == nil)
        #expect(throws: APIError.invalidInput("Invalid scope: nope:read", attr: "scopes")) {
            try Scope.parseList(["organization:read", "nope:read"])
        }
    }

    @Test func writeImpliesReadAndEmptyMeansEverything() {
        let write = [Scope("organization:write")!]
        #expect(write.grants(object: "organization", access: .read))
        #expect(write.grants(object: "organization", access: .write))
        #expect(!write.grants(object: "project", access: .read))
        let read = [Scope("organization:read")!]
        #expect(!read.grants(object: "organization", access: .write))
        #expect([Scope]().grants(object: "batch_export", access: .write))
        #expect([Scope.all].grants(object: "user", access: .write))
    }
}
