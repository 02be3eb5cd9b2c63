import Foundation
import HedgerowRuntime
import NIOCore
import NIOPosix
import NIOSSL

/// A small SMTP client (RFC 5321): one connection per message — greeting, EHLO, AUTH PLAIN when the
/// URL has a user, MAIL FROM, RCPT TO, DATA with dot-stuffing, QUIT. The body goes base64-encoded,
/// so no server needs 8BITMIME, and header values lose any line break, so nothing can add headers.
package struct SMTPClient: Sendable {
    package let settings: SMTPSettings
    package var timeout: TimeAmount = .seconds(15)

    package init(settings: SMTPSettings) { self.settings = settings }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package func send(to recipient: String, subject: String, text: String) async throws {
        let message = Self.message(from: settings.from, to: recipient, subject: subject, text: text)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(host: settings.host, port: settings.port) { [settings] channel in
                channel.eventLoop.makeCompletedFuture {
                    if settings.implicitTLS {
                        let context = try NIOSSLContext(configuration: .makeClientConfiguration())
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: context, serverHostname: settings.host))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    var replies = SMTPReplies(inbound.makeAsyncIterator())
                    func send(_ line: String) async throws { try await outbound.write(ByteBuffer(string: line + "\r\n")) }
                    func expect(_ codes: Set<Int>, after step: String) async throws {
                        let (code, text) = try await replies.next()
                        guard codes.contains(code) else { throw Failure(description: "SMTP \(step): \(code) \(text)") }
                    }
                    try await expect([220], after: "greeting")
                    try await send("EHLO hedgerow")
                    try await expect([250], after: "EHLO")
                    if let username = settings.username {
                        let credentials = Data(([0] + Array(username.utf8) + [0] + Array((settings.password ?? "").utf8)))
                        try await send("AUTH PLAIN " + credentials.base64EncodedString())
                        try await expect([235], after: "AUTH")
                    }
                    try await send("MAIL FROM:<\(settings.from)>")
                    try await expect([250], after: "MAIL FROM")
                    try await send("RCPT TO:<\(recipient)>")
                    try await expect([250, 251], after: "RCPT TO")
                    try await send("DATA")
                    try await expect([354], after: "DATA")
                    try await outbound.write(ByteBuffer(string: message + ".\r\n"))
                    try await expect([250], after: "the message")
                    try await send("QUIT")
                    _ = try? await replies.next()
                }
            }
            group.addTask { [timeout] in
                try await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                throw Failure(description: "SMTP: no answer within \(timeout.nanoseconds / 1_000_000_000) s")
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// The message as DATA carries it: headers, a blank line, the base64 body, CRLF line ends.
    static func message(from: String, to: String, subject: String, text: String) -> String {
        func header(_ value: String) -> String { value.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") }
        let encodedSubject =
            subject.allSatisfy { $0.isASCII } ? header(subject) : "=?UTF-8?B?\(Data(header(subject).utf8).base64EncodedString())?="
        let body = Data(text.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        let date = DateFormatter()
        date.locale = Locale(identifier: "en_US_POSIX")
        date.timeZone = TimeZone(identifier: "UTC")
        date.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return [
            "From: \(header(from))", "To: \(header(to))", "Subject: \(encodedSubject)", "Date: \(date.string(from: Date()))",
            "Message-ID: <\(UUID().uuidString.lowercased())@hedgerow>", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64", "", body, "",
        ].joined(separator: "\r\n")
    }
}

/// The server's replies, line by line: `250-…` continues a reply, `250 …` ends it.
struct SMTPReplies {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var pending: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.iterator = iterator }

    mutating func line() async throws -> String {
        while true {
            if let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<end], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                pending.removeSubrange(...end)
                return line
            }
            guard pending.count < 64 * 1024, let buffer = try await iterator.next() else {
                throw SMTPClient.Failure(description: "SMTP: the server closed the connection")
            }
            pending += buffer.readableBytesView
        }
    }

    mutating func next() async throws -> (Int, String) {
        var text: [String] = []
        while true {
            let line = try await line()
            guard line.count >= 3, let code = Int(line.prefix(3)) else {
                throw SMTPClient.Failure(description: "SMTP: not a reply: \(line.prefix(80))")
            }
            text.append(String(line.dropFirst(4)))
            if line.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] != "-" { return (code, text.joined(separator: " ")) }
        }
    }
}
