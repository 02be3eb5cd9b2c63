import HedgerowCore

/// PostHog's `OrganizationInvite` serializer.
enum InviteWire {
    static func render(_ invite: OrganizationInvite, now: Timestamp = .now()) -> JSONValue {
        .object([
            "id": .string(invite.id),
            "target_email": .string(invite.targetEmail),
            "first_name": .string(invite.firstName),
            "emailing_attempt_made": .bool(invite.emailingAttemptMade),
            "level": .int(Int64(invite.level.rawValue)),
            "is_expired": .bool(invite.isExpired(at: now)),
            "created_by": invite.createdBy.map(TeamWire.basicUser) ?? .null,
            "created_at": .string(invite.createdAt.iso8601),
            "updated_at": .string(invite.updatedAt.iso8601),
            "message": JSONValue(invite.message),
            "private_project_access": .array([]),
        ])
    }
}
