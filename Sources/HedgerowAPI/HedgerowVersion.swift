/// The server's version, as `/api/schema/` states it.
package enum HedgerowVersion {
    package static let current = "0.5.0"
}
