/// An invitation to join an organization (PostHog's `OrganizationInvite`): accepted through the
/// link `/signup/{id}` by the user with `targetEmail`, within `validity` of its creation.
public struct OrganizationInvite: Sendable, Equatable {
    public var id: String
    public var organizationID: String
    public var targetEmail: String
    public var firstName: String
    public var level: MembershipLevel
    public var message: String?
    public var emailingAttemptMade: Bool
    public var createdBy: User?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    /// PostHog's `INVITE_DAYS_VALIDITY`: three days.
    public static let validityMicroseconds: Int64 = 3 * 86_400 * 1_000_000

    public init(
        id: String, organizationID: String, targetEmail: String, firstName: String, level: MembershipLevel, message: String?,
        emailingAttemptMade: Bool, createdBy: User?, createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.organizationID = organizationID
        self.targetEmail = targetEmail
        self.firstName = firstName
        self.level = level
        self.message = message
        self.emailingAttemptMade = emailingAttemptMade
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public func isExpired(at now: Timestamp) -> Bool { now.microseconds - createdAt.microseconds > Self.validityMicroseconds }
}
