import HedgerowCore
import HedgerowStore

/// PostHog's JSON for projects, environments, members, users and personal API keys (API.md §3).
enum TeamWire {
    static func project(_ project: Project) -> JSONValue {
        .object([
            "id": .int(project.id),
            "organization": .string(project.organizationID),
            "name": .string(project.name),
            "created_at": .string(project.createdAt.iso8601),
            "updated_at": .string(project.updatedAt.iso8601),
        ])
    }

    /// PostHog's `ProjectBackwardCompatBasic` fields: its main environment's basic fields (the
    /// project's id is the main environment's), with the project's own name.
    static func projectBasic(_ project: Project, main: Environment) -> JSONObject {
        var object = OrganizationWire.teamBasic(main)
        object["id"] = .int(project.id)
        object["project_id"] = .int(project.id)
        object["name"] = .string(project.name)
        return object
    }

    /// A retrieved project: the basic fields and its times.
    static func projectDetail(_ project: Project, main: Environment) -> JSONValue {
        var object = projectBasic(project, main: main)
        object["created_at"] = .string(project.createdAt.iso8601)
        object["updated_at"] = .string(project.updatedAt.iso8601)
        return .object(object)
    }

    static func environment(_ environment: Environment) -> JSONValue {
        .object([
            "id": .int(environment.id),
            "uuid": .string(environment.uuid),
            "organization": .string(environment.organizationID),
            "project_id": .int(environment.projectID),
            "name": .string(environment.name),
            "api_token": .string(environment.apiToken),
            "timezone": .string(environment.timezone),
            "created_at": .string(environment.createdAt.iso8601),
            "updated_at": .string(environment.updatedAt.iso8601),
        ])
    }

    static func basicUser(_ user: User) -> JSONValue {
        .object([
            "id": .int(user.id),
            "uuid": .string(user.uuid),
            "distinct_id": .string(user.uuid),
            "first_name": .string(user.firstName),
            "last_name": .string(user.lastName),
            "email": .string(user.email),
            "is_email_verified": nil,
            // PostHog's UserBasicSerializer; Hedgerow has no hedgehogs and no organization roles.
            "hedgehog_config": nil,
            "role_at_organization": nil,
        ])
    }

    static func member(_ member: OrganizationStore.Member) -> JSONValue {
        .object([
            "id": .string(member.membership.id),
            "user": basicUser(member.user),
            "level": .int(Int64(member.membership.level.rawValue)),
            "joined_at": .string(member.membership.joinedAt.iso8601),
            "updated_at": .string(member.membership.updatedAt.iso8601),
            // PostHog's OrganizationMemberSerializer: no 2FA, social logins or password logins yet.
            "is_2fa_enabled": false,
            "has_social_auth": false,
            "last_login": nil,
        ])
    }

    static func me(_ me: UserService.Me, instanceTag: String) -> JSONValue {
        .object([
            "id": .int(me.user.id),
            "uuid": .string(me.user.uuid),
            "distinct_id": .string(me.user.uuid),
            "first_name": .string(me.user.firstName),
            "last_name": .string(me.user.lastName),
            "email": .string(me.user.email),
            "is_email_verified": nil,
            "date_joined": .string(me.user.createdAt.iso8601),
            "organization": me.organization.map { OrganizationWire.render($0, instanceTag: instanceTag) } ?? .null,
            "team": me.team.map(OrganizationWire.renderTeam) ?? .null,
            "organizations": .array(
                me.organizations.map { organization, level in
                    .object([
                        "id": .string(organization.id),
                        "name": .string(organization.name),
                        "slug": .string(organization.slug),
                        "logo_media_id": JSONValue(organization.logoMediaID),
                        "membership_level": .int(Int64(level.rawValue)),
                        "members_can_use_personal_api_keys": .bool(organization.membersCanUsePersonalAPIKeys),
                    ])
                }),
        ])
    }

    static func personalAPIKey(_ key: PersonalAPIKey, value: String? = nil) -> JSONValue {
        var object: JSONObject = [
            "id": .string(key.id),
            "label": .string(key.label),
        ]
        if let value { object["value"] = .string(value) }
        object["mask_value"] = .string(key.maskValue)
        object["created_at"] = .string(key.createdAt.iso8601)
        object["last_used_at"] = JSONValue(key.lastUsedAt?.iso8601)
        object["last_rolled_at"] = JSONValue(key.lastRolledAt?.iso8601)
        object["user_id"] = .int(key.userID)
        object["scopes"] = .array(key.scopes.map { .string($0.description) })
        object["scoped_teams"] = key.scopedTeams.map { .array($0.map(JSONValue.int)) } ?? .null
        object["scoped_organizations"] = key.scopedOrganizations.map { .array($0.map(JSONValue.string)) } ?? .null
        return .object(object)
    }
}
