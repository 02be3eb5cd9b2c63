import HedgerowCore
import Synchronization

/// Organization details this process has rendered, by the id asked for and the user who asked,
/// each with the details generation (`DetailsGeneration`) it was read at. An entry answers a
/// request only when the generation read by that request is still the same: no change to what the
/// details show has been committed since, by any process, so the bytes are what a fresh read would
/// render. Access is checked again on every request (`OrganizationService.keptDetailsAnswer`).
final class RenderedDetailsCache: Sendable {
    struct Key: Hashable, Sendable {
        var id: String
        var userID: Int64
    }

    struct Entry: Sendable {
        var details: OrganizationDetails
        var generation: Int64
        var bytes: [UInt8]
    }

    static let capacity = 1000
    private let entries = Mutex([Key: Entry]())

    func entry(_ key: Key) -> Entry? {
        entries.withLock { $0[key] }
    }

    func store(_ entry: Entry, for key: Key) {
        entries.withLock { entries in
            if entries.count >= Self.capacity, entries[key] == nil { entries.removeAll() }
            if let kept = entries[key], kept.generation > entry.generation { return }
            entries[key] = entry
        }
    }
}
