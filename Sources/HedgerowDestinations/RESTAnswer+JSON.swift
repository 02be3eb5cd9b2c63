import HedgerowCore
import HedgerowTransport
import NIOCore

extension RESTTransport.Answer {
    /// The body as JSON; `.null` when it is empty or not JSON (an error page, a proxy's answer).
    var json: JSONValue { body.readableBytes == 0 ? .null : ((try? JSONParser.parse(body.readableBytesView)) ?? .null) }
}
