/// The server's version, as `/api/schema/` states it.
enum HedgerowVersion {
    static let current = "0.5.0"
}
