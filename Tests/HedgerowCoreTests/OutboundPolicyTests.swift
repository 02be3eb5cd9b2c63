import HedgerowCore
import Testing

@Suite("Outbound policy (issue #11 §2)")
struct OutboundPolicyTests {
    @Test func parsesAddressesStrictly() {
        #expect(IPAddress("10.1.2.3")?.bytes == [10, 1, 2, 3])
        #expect(IPAddress("[::1]")?.description == "0:0:0:0:0:0:0:1")
        #expect(IPAddress("fe80::1%eth0")?.bytes.first == 0xFE)
        // IPv4-mapped IPv6 is the IPv4 address it carries.
        #expect(IPAddress("::ffff:127.0.0.1") == IPAddress("127.0.0.1"))
        #expect(IPAddress("::ffff:7f00:1") == IPAddress("127.0.0.1"))
        for text in ["256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", "example.com", "", "1::2::3", "12345::", ":::"] {
            #expect(IPAddress(text) == nil, "\(text)")
        }
    }

    @Test func networksContainWhatTheirPrefixCovers() throws {
        let private10 = try #require(IPNetwork("10.0.0.0/8"))
        #expect(private10.contains(IPAddress("10.255.0.1")!))
        #expect(!private10.contains(IPAddress("11.0.0.1")!))
        #expect(!private10.contains(IPAddress("::1")!))
        let link = try #require(IPNetwork("fe80::/10"))
        #expect(link.contains(IPAddress("febf::1")!) && !link.contains(IPAddress("fec0::1")!))
        #expect(IPNetwork("10.0.0.0/33") == nil && IPNetwork("nope/8") == nil)
        #expect(IPNetwork("::ffff:10.0.0.0/104")?.contains(IPAddress("10.9.9.9")!) == true)
        guard case .failure(let error) = IPNetwork.parseList("10.0.0.0/8, 300.0.0.0/8") else {
            Issue.record("a bad entry must be named")
            return
        }
        #expect(error.entry == "300.0.0.0/8")
        #expect((try? IPNetwork.parseList("").get())?.isEmpty == true)
    }

    @Test func defaultsDenyLoopbackLinkLocalAndMetadataButAllowPrivateRanges() {
        let policy = OutboundPolicy()
        for denied in [
            "127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "fd00:ec2::254",
        ] {
            #expect(policy.refusal(for: IPAddress(denied)!) != nil, "\(denied)")
        }
        for allowed in ["10.0.0.5", "172.16.3.4", "192.168.1.1", "fd12::1", "8.8.8.8"] {
            #expect(policy.refusal(for: IPAddress(allowed)!) == nil, "\(allowed)")
        }
        #expect(
            policy.refusal(for: IPAddress("169.254.169.254")!)
                == "169.254.169.254 is a link-local address; destinations may not connect to it unless HEDGEROW_DESTINATION_ALLOW_NETWORKS names it"
        )
        #expect(policy.refusal(forHost: "localhost") != nil && policy.refusal(forHost: "api.LOCALHOST") != nil)
        #expect(policy.refusal(forHost: "warehouse.example.com") == nil)
        #expect(policy.refusal(forHost: "[::ffff:127.0.0.1]") != nil)
    }

    @Test func allowWinsForTheNetworksItNamesAndDenyAddsToTheDefaults() {
        let policy = OutboundPolicy(allow: [IPNetwork("127.0.0.0/8")!], deny: [IPNetwork("10.0.0.0/8")!, IPNetwork("127.0.0.1/32")!])
        #expect(policy.refusal(for: IPAddress("127.0.0.1")!) == nil)
        #expect(policy.refusal(for: IPAddress("::1")!) != nil)
        #expect(policy.refusal(for: IPAddress("10.1.1.1")!) == "10.1.1.1 is in HEDGEROW_DESTINATION_DENY_NETWORKS")
        #expect(policy.refusal(for: IPAddress("192.168.0.1")!) == nil)
    }
}
