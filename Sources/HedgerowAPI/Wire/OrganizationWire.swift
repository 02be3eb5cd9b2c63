import HedgerowCore

/// PostHog's JSON for organizations, keys in PostHog's order (docs/api.md, Organizations).
enum OrganizationWire {
    static func render(_ details: OrganizationDetails, instanceTag: String) -> JSONValue {
        let organization = details.organization
        let object: JSONObject = [
            "id": .string(organization.id),
            "name": .string(organization.name),
            "slug": .string(organization.slug),
            "logo_media_id": JSONValue(organization.logoMediaID),
            "created_at": .string(organization.createdAt.iso8601),
            "updated_at": .string(organization.updatedAt.iso8601),
            "membership_level": .int(Int64(details.membershipLevel.rawValue)),
            "plugins_access_level": 9,
            "teams": .array(details.environments.map(renderTeam)),
            "projects": .array(details.projects.map(renderProject)),
            "available_product_features": [],
            "is_member_join_email_enabled": .bool(organization.isMemberJoinEmailEnabled),
            "metadata": .object(["instance_tag": .string(instanceTag)]),
            "customer_id": nil,
            "enforce_2fa": JSONValue(organization.enforce2FA),
            "members_can_invite": .bool(organization.membersCanInvite),
            "members_can_use_personal_api_keys": .bool(organization.membersCanUsePersonalAPIKeys),
            "allow_publicly_shared_resources": .bool(organization.allowPubliclySharedResources),
            "member_count": .int(Int64(details.memberCount)),
            "is_ai_data_processing_approved": JSONValue(organization.isAIDataProcessingApproved),
            "default_experiment_stats_method": JSONValue(organization.defaultExperimentStatsMethod),
            "default_role_id": JSONValue(organization.defaultRoleID),
        ]
        return .object(object)
    }

    static func renderTeam(_ environment: Environment) -> JSONValue { .object(teamBasic(environment)) }

    /// PostHog's `TeamBasicSerializer` fields (also the passthrough fields of its basic project).
    static func teamBasic(_ environment: Environment) -> JSONObject {
        [
            "id": .int(environment.id),
            "uuid": .string(environment.uuid),
            "organization": .string(environment.organizationID),
            "project_id": .int(environment.projectID),
            "api_token": .string(environment.apiToken),
            "name": .string(environment.name),
            "completed_snippet_onboarding": .bool(environment.completedSnippetOnboarding),
            "has_completed_onboarding_for": nil,
            "ingested_event": .bool(environment.ingestedEvent),
            "is_demo": .bool(environment.isDemo),
            "timezone": .string(environment.timezone),
            "access_control": false,
        ]
    }

    static func renderProject(_ project: Project) -> JSONValue {
        .object(["id": .int(project.id), "organization_id": .string(project.organizationID), "name": .string(project.name)])
    }
}
