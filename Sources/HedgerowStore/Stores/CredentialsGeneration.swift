import Foundation
import Synchronization

/// A counter in the database that every change to what a personal API key authenticates as moves
/// on: a key's scopes, limits, value or existence, and its user's row (names, current organization
/// and environment). A process that keeps authenticated keys in memory serves them only while the
/// generation it last read is the current one, so a change made by any process reaches it as soon
/// as it reads the counter again.
///
/// The store methods that make such changes call `advance(on:)` inside their statement's
/// transaction, which also notes the new value in the database's `CredentialsWrites`: a reader in
/// this process that sees a higher value there than it last read from the database reads the
/// counter again at once, rather than at its next check.
package enum CredentialsGeneration {
    /// The committed generation.
    package static func current(on connection: any SQLConnection) async throws -> Int64 {
        try await connection.first("SELECT value FROM credentials_generation WHERE id = 1")?.int("value") ?? 0
    }

    /// Moves the counter on; called in the same transaction as the change it announces.
    static func advance(on connection: any SQLConnection) async throws {
        let value =
            try await connection.first("UPDATE credentials_generation SET value = value + 1 WHERE id = 1 RETURNING value")?
            .int("value") ?? 0
        connection.credentialsWrites?.note(value)
    }
}

/// The highest credentials generation this process has written to one database, committed or not.
package final class CredentialsWrites: Sendable {
    private let highest = Atomic<Int64>(0)

    package init() {}

    package var value: Int64 { highest.load(ordering: .acquiring) }

    func note(_ generation: Int64) { _ = highest.max(generation, ordering: .acquiringAndReleasing) }

    /// Forgets writes that never committed: after a rolled-back change this would stay ahead of the
    /// database for good, and every reader would read the counter on every request.
    package func settle(committed: Int64) {
        var current = highest.load(ordering: .acquiring)
        while current > committed {
            let (exchanged, original) = highest.compareExchange(expected: current, desired: committed, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }
}
