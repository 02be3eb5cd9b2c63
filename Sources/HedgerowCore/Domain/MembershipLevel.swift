/// An organization membership level, as PostHog numbers them.
package enum MembershipLevel: Int, Sendable, Comparable, CaseIterable {
    case member = 1
    case admin = 8
    case owner = 15

    package static func < (lhs: MembershipLevel, rhs: MembershipLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
