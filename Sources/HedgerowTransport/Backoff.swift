/// Runs `body` up to `attempts` times while it throws a retryable error, sleeping 0.25 s, 0.5 s,
/// 1 s, … between attempts (the object-store clients' retry policy); a cancelled sleep throws
/// `cancelled`.
func withBackoff<T, E: Error>(
    attempts: Int, retryable: (E) -> Bool, cancelled: @autoclosure () -> E, _ body: () async throws(E) -> T
) async throws(E) -> T {
    var attempt = 0
    while true {
        attempt += 1
        do {
            return try await body()
        } catch {
            guard retryable(error), attempt < attempts else { throw error }
            do { try await Task.sleep(nanoseconds: UInt64(250_000_000) << UInt64(attempt - 1)) } catch { throw cancelled() }
        }
    }
}
