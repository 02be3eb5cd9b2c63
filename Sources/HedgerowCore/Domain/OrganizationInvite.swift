/// An invitation to join an organization (PostHog's `OrganizationInvite`): accepted through the
/// link `/signup/{id}` by the user with `targetEmail`, within `validity` of its creation.
package struct OrganizationInvite: Sendable, Equatable {
    package var id: String
    package var organizationID: String
    package var targetEmail: String
    package var firstName: String
    package var level: MembershipLevel
    package var message: String?
    package var emailingAttemptMade: Bool
    package var createdBy: User?
    package var createdAt: Timestamp
    package var updatedAt: Timestamp

    /// PostHog's `INVITE_DAYS_VALIDITY`: three days.
    static let validityMicroseconds: Int64 = 3 * 86_400 * 1_000_000

    package init(
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

    package func isExpired(at now: Timestamp) -> Bool { now.microseconds - createdAt.microseconds > Self.validityMicroseconds }
}
