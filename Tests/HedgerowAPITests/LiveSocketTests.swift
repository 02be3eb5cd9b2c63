import Foundation
import HedgerowCore
import HedgerowRuntime
import HedgerowTestSupport
import HummingbirdTesting
import Testing

@testable import HedgerowAPI

/// Issue #31 §7 over real sockets: body limits by route, read timeouts, the connection cap. Their
/// outcomes depend on when the server answers, so `scripts/test` runs them in its first phase, beside
/// the live-server CLI tests and away from the parallel API suites (on two cores those once starved
/// the server past its own deadlines).
@Suite("Live sockets: memory and connections")
struct LiveSocketTests {

    /// A raw client: `mode` is what it does; prints what happened.
    static let client = #"""
        import socket, sys, time
        port, mode = int(sys.argv[1]), sys.argv[2]
        if mode == "api-body":
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /api/organizations/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n")
            print(status(s))
        elif mode == "trickle":
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /e/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            began = time.monotonic()
            for _ in range(120):
                try:
                    s.sendall(b" ")
                except OSError:
                    break
                time.sleep(0.25)
                s.settimeout(0)
                try:
                    if s.recv(1, socket.MSG_PEEK):
                        break
                except (BlockingIOError, OSError):
                    pass
            print(status(s), round(time.monotonic() - began, 1))
        elif mode == "slow-headers":
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /_health HTTP/1.1\r\n")
            print(status(s))
        elif mode == "many":
            # From an address of its own (127.0.0.2): no other client of the test counts against it.
            def connect():
                return socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
            held = [connect() for _ in range(3)]
            # Each held connection answers once (kept alive): the server has surely counted all three.
            for h in held:
                h.sendall(b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert status(h, 10).startswith("HTTP/1.1 200"), "a held connection was refused"
            extra = connect()
            extra.sendall(b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\n")
            first = status(extra, 5)
            held[0].close()
            # The server sees the close when it next reads that socket: a loaded machine takes a moment.
            for _ in range(40):
                time.sleep(0.25)
                again = connect()
                again.sendall(b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\n")
                second = status(again, 5)
                if second != "closed":
                    break
            print(first, "|", second)
        """#

    static func raw(_ server: TestServer, _ mode: String) async throws -> String {
        try await RawClient.run(Self.client, port: try #require(server.client.port), [mode])
    }

    @Test("Bodies of non-capture routes are capped at 1 MiB before they are read; capture keeps its limit")
    func apiBodiesCapped() async throws {
        try await TestServer.run(.sqlite, live: true) { server in
            #expect(try await Self.raw(server, "api-body").hasPrefix("HTTP/1.1 413"))
            // Capture still takes a body over 1 MiB.
            let (_, token, _) = try await Fixtures.environment(server)
            let big: JSONValue = .object([
                "api_key": .string(token), "event": "big", "distinct_id": "d",
                "properties": .object(["blob": .string(String(repeating: "x", count: 1_500_000))]),
            ])
            #expect(try await server.request("POST", "/e/", json: big).status == 200)
        }
    }

    @Test("A body trickling in past the read timeout gets 408; headers that never end are closed")
    func readTimeouts() async throws {
        // 5 s: the 408 is written between the read deadline and the idle timeout that closes the
        // connection once it stops reading, a window as long as the timeout (the full suite on two
        // cores once took longer than 2 s).
        try await TestServer.run(.sqlite, live: true, configure: { $0.readTimeout = .seconds(5) }) { server in
            let trickled = try await Self.raw(server, "trickle")
            #expect(trickled.hasPrefix("HTTP/1.1 408"), "\(trickled)")
            let seconds = Double(trickled.split(separator: " ").last ?? "") ?? 99
            // The client would trickle for 30 s: the answer came at the deadline, not at the end.
            #expect(seconds < 20, "\(trickled)")
            #expect(try await Self.raw(server, "slow-headers") == "closed")
        }
    }

    @Test("Past the cap of connections per address, a new connection is closed; one freed is usable again")
    func connectionsCappedPerAddress() async throws {
        try await TestServer.run(.sqlite, live: true, configure: { $0.connectionsPerAddress = 3 }) { server in
            let outcome = try await Self.raw(server, "many")
            #expect(outcome == "closed | HTTP/1.1 200 OK")
        }
    }
}
