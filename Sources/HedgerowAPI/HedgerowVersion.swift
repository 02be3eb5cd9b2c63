/// The server's version, as `/api/schema/` states it.
public enum HedgerowVersion {
    public static let current = "0.5.0"
}
