import HedgerowCore
import HedgerowStore

/// PostHog's JSON for projects, environments, members, users and personal API keys (docs/api.md).
enum TeamWire {
    /// PostHog's `ProjectBackwardCompatBasic` fields: its main environment's basic fields (the
    /// project's id is the main environment's), with the project's own name.
    static func projectBasic(_ project: Project, main: Environment) -> JSONObject {
        var object = OrganizationWire.teamBasic(main)
        object["id"] = .int(project.id)
        object["project_id"] = .int(project.id)
        object["name"] = .string(project.name)
        return object
    }

    /// PostHog's `ProjectBackwardCompat`, in its field order: the project's name and times, its
    /// main environment's fields and settings, the caller's level.
    static func projectDetail(_ project: Project, main: EnvironmentAccess) -> JSONValue {
        var values = teamValues(main)
        values["id"] = .int(project.id)
        values["name"] = .string(project.name)
        values["created_at"] = .string(project.createdAt.iso8601)
        values["updated_at"] = .string(project.updatedAt.iso8601)
        return .object(JSONObject(projectFields.map { ($0, values[$0] ?? .null) }))
    }

    /// PostHog's `Team` serializer (an environment), in its field order.
    static func environmentDetail(_ access: EnvironmentAccess) -> JSONValue {
        let values = teamValues(access)
        return .object(JSONObject(teamFields.map { ($0, values[$0] ?? .null) }))
    }

    /// The values behind both serializers: what Hedgerow has, then PostHog's defaults for what it
    /// has not (`TeamSettings.fixed`, no group types, no live-events service, no secret tokens).
    static func teamValues(_ access: EnvironmentAccess) -> [String: JSONValue] {
        let environment = access.environment
        var values = TeamSettings.fixed
        for (key, value) in OrganizationWire.teamBasic(environment).entries { values[key] = value }
        values["created_at"] = .string(environment.createdAt.iso8601)
        values["updated_at"] = .string(environment.updatedAt.iso8601)
        values["timezone"] = .string(environment.timezone)
        values["secret_api_token"] = nil
        values["secret_api_token_backup"] = nil
        values["default_modifiers"] = .object([:])
        values["person_on_events_querying_enabled"] = true
        values["user_access_level"] = access.level >= .admin ? "admin" : "member"
        values["effective_membership_level"] = .int(Int64(access.level.rawValue))
        values["has_group_types"] = false
        values["group_types"] = []
        values["live_events_token"] = nil
        values["product_intents"] = []
        values["managed_viewsets"] = .object([:])
        values["available_setup_task_ids"] = []
        return values
    }

    static let teamFields: [String] = [
        "id", "uuid", "name", "access_control", "organization", "project_id", "api_token", "secret_api_token",
        "secret_api_token_backup", "created_at", "updated_at", "ingested_event", "default_modifiers",
        "person_on_events_querying_enabled", "user_access_level",
        "app_urls", "slack_incoming_webhook", "anonymize_ips", "completed_snippet_onboarding", "test_account_filters",
        "test_account_filters_default_checked", "path_cleaning_filters", "is_demo", "timezone", "data_attributes",
        "person_display_name_properties", "correlation_config", "autocapture_opt_out", "autocapture_exceptions_opt_in",
        "autocapture_web_vitals_opt_in", "autocapture_web_vitals_allowed_metrics", "autocapture_exceptions_errors_to_ignore",
        "capture_console_log_opt_in", "capture_performance_opt_in", "session_recording_opt_in",
        "session_recording_sample_rate", "session_recording_minimum_duration_milliseconds", "session_recording_linked_flag",
        "session_recording_network_payload_capture_config", "session_recording_masking_config",
        "session_recording_url_trigger_config", "session_recording_url_blocklist_config",
        "session_recording_event_trigger_config", "session_recording_trigger_match_type_config",
        "session_recording_retention_period", "session_replay_config", "survey_config", "week_start_day",
        "primary_dashboard", "live_events_columns", "recording_domains", "cookieless_server_hash_mode",
        "human_friendly_comparison_periods", "inject_web_apps", "extra_settings", "modifiers",
        "has_completed_onboarding_for", "surveys_opt_in", "heatmaps_opt_in", "flags_persistence_default",
        "feature_flag_confirmation_enabled", "feature_flag_confirmation_message",
        "default_evaluation_environments_enabled", "capture_dead_clicks", "default_data_theme",
        "revenue_analytics_config", "marketing_analytics_config", "onboarding_tasks", "base_currency",
        "web_analytics_pre_aggregated_tables_enabled", "experiment_recalculation_time",
        "effective_membership_level", "has_group_types", "group_types", "live_events_token", "product_intents",
        "managed_viewsets",
    ]

    static let projectFields: [String] = [
        "id", "organization", "name", "product_description", "created_at", "effective_membership_level",
        "has_group_types", "group_types", "live_events_token", "updated_at", "uuid", "api_token", "app_urls",
        "slack_incoming_webhook", "anonymize_ips", "completed_snippet_onboarding", "ingested_event",
        "test_account_filters", "test_account_filters_default_checked", "path_cleaning_filters", "is_demo", "timezone",
        "data_attributes", "person_display_name_properties", "correlation_config", "autocapture_opt_out",
        "autocapture_exceptions_opt_in", "autocapture_web_vitals_opt_in", "autocapture_web_vitals_allowed_metrics",
        "autocapture_exceptions_errors_to_ignore", "capture_console_log_opt_in", "capture_performance_opt_in",
        "session_recording_opt_in", "session_recording_sample_rate", "session_recording_minimum_duration_milliseconds",
        "session_recording_linked_flag", "session_recording_network_payload_capture_config",
        "session_recording_masking_config", "session_replay_config", "survey_config", "access_control",
        "week_start_day", "primary_dashboard", "live_events_columns", "recording_domains",
        "person_on_events_querying_enabled", "inject_web_apps", "extra_settings", "modifiers", "default_modifiers",
        "has_completed_onboarding_for", "surveys_opt_in", "heatmaps_opt_in", "product_intents",
        "flags_persistence_default", "secret_api_token", "secret_api_token_backup", "receive_org_level_activity_logs",
        "business_model", "conversations_enabled", "conversations_settings", "logs_settings",
        "available_setup_task_ids",
    ]

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
