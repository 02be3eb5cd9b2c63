import HedgerowCore

/// The component schemas of `/api/schema/`: PostHog's component names and field order, with the
/// types Hedgerow really answers (where PostHog's published schema says otherwise, e.g.
/// `member_count` as a string, the answer decides). The `*Wire` encoders produce these shapes;
/// schemathesis and the generated-client test hold the two together.
enum APIComponents {
    typealias S = Schema

    static let membershipLevel = S.integers(MembershipLevel.allCases.map { Int64($0.rawValue) })
    static let runStatus = S.strings(RunStatus.allCases.map(\.rawValue))
    static let destinationType = S.strings(DestinationType.allCases.map(\.rawValue))
    static let integrationKind = S.strings(IntegrationKind.allCases.map(\.rawValue))

    static var models: [Model] {
        [
            organization, organizationBasic, teamBasic, projectBasic, projectBackwardCompatBasic, projectBackwardCompat, team,
            userBasic, organizationMember, user, personalAPIKey, batchExport, batchExportDestination, batchExportRun,
            batchExportBackfill, batchExportLogEntry, batchExportTestStep, batchExportTest, environmentsRollback, person, integration,
            organizationInvite,
        ]
    }

    /// Every component: the models, their `Patched` and `Paginated…List` variants that routes use,
    /// the enums, and the small bodies of actions.
    static var all: JSONObject {
        var components: JSONObject = [:]
        for model in models {
            components[model.name] = .object(model.schema())
            components["Patched\(model.name)"] = .object(model.schema(patched: true))
        }
        for name in [
            "Organization", "ProjectBackwardCompatBasic", "TeamBasic", "OrganizationMember", "User", "BatchExport", "Person", "Integration",
            "OrganizationInvite",
        ] {
            components["Paginated\(name)List"] = .object(Model.limitOffsetPage(of: name))
        }
        components["PaginatedBatchExportRunList"] = .object(Model.cursorPage(of: "BatchExportRun"))
        components["PaginatedBatchExportBackfillList"] = .object(Model.cursorPage(of: "BatchExportBackfill"))
        components["PaginatedBatchExportLogEntryList"] = .object(Model.limitOffsetPage(of: "BatchExportLogEntry"))
        components["OpenAPIDocument"] = .object(S.object)
        components["MembershipLevelEnum"] = .object(membershipLevel)
        components["PluginsAccessLevelEnum"] = .object(S.integers([0, 3, 6, 9]))
        components["IntervalEnum"] = .object(S.strings(Interval.allCases.map(\.rawValue)))
        components["BatchExportDestinationTypeEnum"] = .object(destinationType)
        components["IntegrationKindEnum"] = .object(integrationKind)
        components["BatchExportRunStatusEnum"] = .object(runStatus)
        components["EnvironmentsRollbackRequest"] = .object(["type": "object", "additionalProperties": .object(S.integer)])
        components["BatchExportBackfillCreated"] = .object(S.inline([("backfill_id", S.uuid)], required: ["backfill_id"]))
        components["BatchExportPaused"] = .object(S.inline([("paused", S.boolean)], required: ["paused"]))
        components["Cancelled"] = .object(S.inline([("cancelled", S.boolean)], required: ["cancelled"]))
        components["BatchExportBackfillRequest"] = .object(
            S.inline([("start_at", S.nullable(S.dateTime)), ("end_at", S.nullable(S.dateTime))], required: []))
        components["BatchExportUnpauseRequest"] = .object(S.inline([("backfill", S.nullable(S.boolean))], required: []))
        components["BatchExportTestStepRequest"] = .object(
            S.inline(
                [("step", S.integer), ("destination", S.ref("BatchExportDestination")), ("name", S.string)], required: []))
        return components
    }

    // MARK: Integrations

    static let integration = Model(
        name: "Integration",
        fields: [
            Field("id", S.integer, .readOnly), Field("kind", S.ref("IntegrationKindEnum"), required: true),
            Field("config", S.object), Field("created_at", S.dateTime, .readOnly),
            Field("created_by", S.nullable(S.ref("UserBasic")), .readOnly), Field("errors", S.string, .readOnly),
            Field("display_name", S.string, .readOnly),
        ])

    // MARK: Invites

    static let organizationInvite = Model(
        name: "OrganizationInvite",
        fields: [
            Field("id", S.uuid, .readOnly), Field("target_email", S.string(maxLength: 254), required: true),
            Field("first_name", S.string(maxLength: 30)), Field("emailing_attempt_made", S.boolean, .readOnly),
            Field("level", S.ref("MembershipLevelEnum")), Field("is_expired", S.boolean, .readOnly),
            Field("created_by", S.nullable(S.ref("UserBasic")), .readOnly), Field("created_at", S.dateTime, .readOnly),
            Field("updated_at", S.dateTime, .readOnly), Field("message", S.nullable(S.string)),
            Field("private_project_access", S.nullable(S.array(S.object))), Field("send_email", S.boolean, .writeOnly),
        ])

    // MARK: Persons

    static let person = Model(
        name: "Person",
        fields: [
            Field("id", S.string, .readOnly), Field("name", S.string, .readOnly), Field("distinct_ids", S.array(S.string), .readOnly),
            Field("properties", S.object), Field("created_at", S.dateTime, .readOnly), Field("uuid", S.uuid, .readOnly),
        ])

    // MARK: Organizations

    static let organization = Model(
        name: "Organization",
        fields: [
            Field("id", S.uuid, .readOnly),
            Field("name", S.string(maxLength: 64), required: true),
            Field("slug", S.string, .readOnly),
            Field("logo_media_id", S.nullable(S.uuid)),
            Field("created_at", S.dateTime, .readOnly),
            Field("updated_at", S.dateTime, .readOnly),
            Field("membership_level", S.nullable(S.ref("MembershipLevelEnum")), .readOnly),
            Field("plugins_access_level", S.ref("PluginsAccessLevelEnum"), .readOnly),
            Field("teams", S.array(S.ref("TeamBasic")), .readOnly),
            Field("projects", S.array(S.ref("ProjectBasic")), .readOnly),
            Field("available_product_features", S.nullable(S.array(S.any)), .readOnly),
            Field("is_member_join_email_enabled", S.boolean),
            Field("metadata", S.object, .readOnly),
            Field("customer_id", S.nullable(S.string), .readOnly),
            Field("enforce_2fa", S.nullable(S.boolean)),
            Field("members_can_invite", S.nullable(S.boolean)),
            Field("members_can_use_personal_api_keys", S.boolean),
            Field("allow_publicly_shared_resources", S.boolean),
            Field("member_count", S.integer, .readOnly),
            Field("is_ai_data_processing_approved", S.nullable(S.boolean)),
            Field("default_experiment_stats_method", S.nullable(S.strings(["bayesian", "frequentist", ""]))),
            Field("default_role_id", S.nullable(S.string)),
        ])

    /// An organization as `/api/users/@me/` lists it.
    static let organizationBasic = Model(
        name: "OrganizationBasic",
        fields: [
            Field("id", S.uuid, .readOnly), Field("name", S.string, .readOnly), Field("slug", S.string, .readOnly),
            Field("logo_media_id", S.nullable(S.uuid), .readOnly), Field("membership_level", S.ref("MembershipLevelEnum"), .readOnly),
            Field("members_can_use_personal_api_keys", S.boolean, .readOnly),
        ])

    static let environmentsRollback = Model(
        name: "EnvironmentsRollback",
        fields: [Field("success", S.boolean, .readOnly), Field("message", S.string, .readOnly)])

    // MARK: Projects and environments

    static let basicTeamFields: [Field] = [
        Field("id", S.integer, .readOnly), Field("uuid", S.uuid, .readOnly), Field("organization", S.uuid, .readOnly),
        Field("project_id", S.integer, .readOnly), Field("api_token", S.string, .readOnly), Field("name", S.string, .readOnly),
        Field("completed_snippet_onboarding", S.boolean, .readOnly), Field("has_completed_onboarding_for", S.any, .readOnly),
        Field("ingested_event", S.boolean, .readOnly), Field("is_demo", S.boolean, .readOnly),
        Field("timezone", S.string, .readOnly), Field("access_control", S.boolean, .readOnly),
    ]

    static let teamBasic = Model(name: "TeamBasic", fields: basicTeamFields)
    static let projectBackwardCompatBasic = Model(name: "ProjectBackwardCompatBasic", fields: basicTeamFields)
    static let projectBasic = Model(
        name: "ProjectBasic",
        fields: [Field("id", S.integer, .readOnly), Field("organization_id", S.uuid, .readOnly), Field("name", S.string, .readOnly)])

    /// The schema of every field of PostHog's team and project serializers.
    static let teamFieldSchemas: [String: Field] = {
        let nullableBool = S.nullable(S.boolean)
        let fields: [Field] = [
            Field("id", S.integer, .readOnly), Field("uuid", S.uuid, .readOnly), Field("name", S.string(maxLength: 200, minLength: 1)),
            Field("access_control", S.boolean), Field("organization", S.uuid, .readOnly), Field("project_id", S.integer, .readOnly),
            Field("api_token", S.string, .readOnly), Field("secret_api_token", S.nullable(S.string), .readOnly),
            Field("secret_api_token_backup", S.nullable(S.string), .readOnly), Field("created_at", S.dateTime, .readOnly),
            Field("updated_at", S.dateTime, .readOnly), Field("ingested_event", S.boolean, .readOnly),
            Field("default_modifiers", S.object, .readOnly), Field("person_on_events_querying_enabled", S.boolean, .readOnly),
            Field("user_access_level", S.nullable(S.string), .readOnly), Field("app_urls", S.array(S.nullable(S.string))),
            Field("slack_incoming_webhook", S.nullable(S.string)), Field("anonymize_ips", S.boolean),
            Field("completed_snippet_onboarding", S.boolean), Field("test_account_filters", S.any),
            Field("test_account_filters_default_checked", nullableBool), Field("path_cleaning_filters", S.any),
            Field("is_demo", S.boolean), Field("timezone", S.string), Field("data_attributes", S.any),
            Field("person_display_name_properties", S.nullable(S.array(S.string))), Field("correlation_config", S.any),
            Field("autocapture_opt_out", nullableBool), Field("autocapture_exceptions_opt_in", nullableBool),
            Field("autocapture_web_vitals_opt_in", nullableBool), Field("autocapture_web_vitals_allowed_metrics", S.any),
            Field("autocapture_exceptions_errors_to_ignore", S.any), Field("capture_console_log_opt_in", nullableBool),
            Field("capture_performance_opt_in", nullableBool), Field("logs_settings", S.any),
            Field("session_recording_opt_in", S.boolean), Field("session_recording_sample_rate", S.nullable(S.string)),
            Field("session_recording_minimum_duration_milliseconds", S.nullable(S.integer)),
            Field("session_recording_linked_flag", S.any), Field("session_recording_network_payload_capture_config", S.any),
            Field("session_recording_masking_config", S.any), Field("session_recording_url_trigger_config", S.any),
            Field("session_recording_url_blocklist_config", S.any), Field("session_recording_event_trigger_config", S.any),
            Field("session_recording_trigger_match_type_config", S.nullable(S.string)),
            Field("session_recording_retention_period", S.nullable(S.string)), Field("session_replay_config", S.any),
            Field("survey_config", S.any), Field("week_start_day", S.nullable(S.integers([0, 1]))),
            Field("primary_dashboard", S.nullable(S.integer)), Field("live_events_columns", S.nullable(S.array(S.string))),
            Field("recording_domains", S.nullable(S.array(S.nullable(S.string)))),
            Field("cookieless_server_hash_mode", S.nullable(S.integer)), Field("human_friendly_comparison_periods", nullableBool),
            Field("inject_web_apps", nullableBool), Field("extra_settings", S.any), Field("modifiers", S.any),
            Field("has_completed_onboarding_for", S.any), Field("surveys_opt_in", nullableBool), Field("heatmaps_opt_in", nullableBool),
            Field("flags_persistence_default", nullableBool), Field("feature_flag_confirmation_enabled", nullableBool),
            Field("feature_flag_confirmation_message", S.nullable(S.string)),
            Field("default_evaluation_environments_enabled", nullableBool), Field("capture_dead_clicks", nullableBool),
            Field("default_data_theme", S.nullable(S.integer)), Field("revenue_analytics_config", S.object),
            Field("marketing_analytics_config", S.object), Field("onboarding_tasks", S.any), Field("base_currency", S.string),
            Field("web_analytics_pre_aggregated_tables_enabled", nullableBool),
            Field("experiment_recalculation_time", S.nullable(S.string)),
            Field("effective_membership_level", S.nullable(S.ref("MembershipLevelEnum")), .readOnly),
            Field("has_group_types", S.boolean, .readOnly), Field("group_types", S.array(S.object), .readOnly),
            Field("live_events_token", S.nullable(S.string), .readOnly), Field("product_intents", S.array(S.object), .readOnly),
            Field("managed_viewsets", S.object, .readOnly), Field("product_description", S.nullable(S.string(maxLength: 1000))),
            Field("receive_org_level_activity_logs", nullableBool), Field("business_model", S.nullable(S.string)),
            Field("conversations_enabled", nullableBool), Field("conversations_settings", S.any),
            Field("available_setup_task_ids", S.array(S.string), .readOnly),
        ]
        return Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0) })
    }()

    static func teamModel(_ name: String, _ order: [String], description: String) -> Model {
        Model(name: name, fields: order.compactMap { teamFieldSchemas[$0] }, description: description)
    }

    static let team = teamModel(
        "Team", TeamWire.teamFields, description: "An environment (PostHog's team), as retrieved, created or updated.")
    static let projectBackwardCompat = teamModel(
        "ProjectBackwardCompat", TeamWire.projectFields,
        description: "A project with its main environment's fields, as retrieved, created or updated.")

    // MARK: Users and members

    static let userBasic = Model(
        name: "UserBasic",
        fields: [
            Field("id", S.integer, .readOnly), Field("uuid", S.uuid, .readOnly), Field("distinct_id", S.nullable(S.string)),
            Field("first_name", S.string), Field("last_name", S.string), Field("email", S.string, required: true),
            Field("is_email_verified", S.nullable(S.boolean)), Field("hedgehog_config", S.nullable(S.object), .readOnly),
            Field("role_at_organization", S.nullable(S.string)),
        ])

    static let organizationMember = Model(
        name: "OrganizationMember",
        fields: [
            Field("id", S.uuid, .readOnly), Field("user", S.ref("UserBasic"), .readOnly), Field("level", S.ref("MembershipLevelEnum")),
            Field("joined_at", S.dateTime, .readOnly), Field("updated_at", S.dateTime, .readOnly),
            Field("is_2fa_enabled", S.boolean, .readOnly), Field("has_social_auth", S.boolean, .readOnly),
            Field("last_login", S.nullable(S.dateTime), .readOnly),
        ])

    static let user = Model(
        name: "User",
        fields: [
            Field("id", S.integer, .readOnly), Field("uuid", S.uuid, .readOnly), Field("distinct_id", S.nullable(S.string), .readOnly),
            Field("first_name", S.string(maxLength: 150)), Field("last_name", S.string(maxLength: 150)),
            Field("email", S.string(maxLength: 254)), Field("is_email_verified", S.nullable(S.boolean), .readOnly),
            Field("date_joined", S.dateTime, .readOnly), Field("organization", S.nullable(S.ref("Organization")), .readOnly),
            Field("team", S.nullable(S.ref("TeamBasic")), .readOnly),
            Field("organizations", S.array(S.ref("OrganizationBasic")), .readOnly),
        ])

    static let personalAPIKey = Model(
        name: "PersonalAPIKey",
        fields: [
            Field("id", S.string, .readOnly), Field("label", S.string(maxLength: 40), required: true),
            Field("value", S.string, .readOnly, required: false), Field("mask_value", S.nullable(S.string), .readOnly),
            Field("created_at", S.dateTime, .readOnly), Field("last_used_at", S.nullable(S.dateTime), .readOnly),
            Field("last_rolled_at", S.nullable(S.dateTime), .readOnly), Field("user_id", S.integer, .readOnly),
            Field("scopes", S.array(S.string), required: true), Field("scoped_teams", S.nullable(S.array(S.integer))),
            Field("scoped_organizations", S.nullable(S.array(S.string))),
        ])

    // MARK: Batch exports

    static let batchExport = Model(
        name: "BatchExport",
        fields: [
            Field("id", S.uuid, .readOnly),
            Field(
                "team_id",
                ["type": "integer", "description": "On organization routes, the environment to export (set once); ignored on others."],
                required: true),
            Field("name", S.string, required: true),
            Field("model", S.nullable(S.strings(["events", "persons", "sessions"]))),
            Field("destination", S.ref("BatchExportDestination"), required: true),
            Field("interval", S.ref("IntervalEnum"), required: true), Field("paused", S.boolean),
            Field("created_at", S.dateTime, .readOnly), Field("last_updated_at", S.dateTime, .readOnly),
            Field("last_paused_at", S.nullable(S.dateTime)), Field("start_at", S.nullable(S.dateTime)),
            Field("end_at", S.nullable(S.dateTime)), Field("latest_runs", S.array(S.ref("BatchExportRun")), .readOnly),
            Field("hogql_query", S.string), Field("schema", S.any, .readOnly), Field("filters", S.any),
            Field("timezone", S.string), Field("offset_day", S.nullable(S.integer)), Field("offset_hour", S.nullable(S.integer)),
        ])

    static let batchExportDestination = Model(
        name: "BatchExportDestination",
        fields: [
            Field("type", S.ref("BatchExportDestinationTypeEnum"), required: true),
            Field("config", S.object, required: true),
            Field("integration", S.nullable(S.integer), required: false),
            Field("integration_id", S.nullable(S.integer), .writeOnly),
        ])

    static let batchExportRun = Model(
        name: "BatchExportRun",
        fields: [
            Field("id", S.uuid, .readOnly), Field("status", S.ref("BatchExportRunStatusEnum"), required: true),
            Field("records_completed", S.nullable(S.integer)), Field("latest_error", S.nullable(S.string)),
            Field("data_interval_start", S.nullable(S.dateTime)), Field("data_interval_end", S.dateTime, required: true),
            Field("cursor", S.nullable(S.string)), Field("created_at", S.dateTime, .readOnly),
            Field("finished_at", S.nullable(S.dateTime)), Field("last_updated_at", S.dateTime, .readOnly),
            Field("records_total_count", S.nullable(S.integer)), Field("bytes_exported", S.nullable(S.int64)),
            Field("batch_export", S.uuid, .readOnly), Field("backfill", S.nullable(S.uuid)),
        ])

    static let batchExportBackfill = Model(
        name: "BatchExportBackfill",
        fields: [
            Field("id", S.uuid, .readOnly),
            Field(
                "progress",
                S.nullable(
                    S.inline(
                        [("total_runs", S.integer), ("finished_runs", S.integer), ("progress", S.number)],
                        required: ["total_runs", "finished_runs", "progress"])), .readOnly),
            Field("start_at", S.nullable(S.dateTime)), Field("end_at", S.nullable(S.dateTime)),
            Field("adjusted_start_at", S.nullable(S.dateTime)), Field("status", S.ref("BatchExportRunStatusEnum"), required: true),
            Field("created_at", S.dateTime, .readOnly), Field("finished_at", S.nullable(S.dateTime)),
            Field("last_updated_at", S.dateTime, .readOnly), Field("total_records_count", S.nullable(S.int64)),
            Field("team", S.integer, required: true), Field("batch_export", S.uuid, required: true),
        ])

    static let batchExportLogEntry = Model(
        name: "BatchExportLogEntry",
        fields: [
            Field("log_source_id", S.uuid, .readOnly), Field("instance_id", S.nullable(S.uuid), .readOnly),
            Field("timestamp", S.dateTime, .readOnly), Field("level", S.string, .readOnly), Field("message", S.string, .readOnly),
        ])

    static let batchExportTestStep = Model(
        name: "BatchExportTestStep",
        fields: [
            Field("name", S.string, .readOnly), Field("description", S.string, .readOnly),
            Field(
                "result",
                S.nullable(
                    S.inline(
                        [("status", S.strings(["Passed", "Failed"])), ("message", S.nullable(S.string))], required: ["status"])),
                .readOnly),
        ])

    static let batchExportTest = Model(
        name: "BatchExportTest", fields: [Field("steps", S.array(S.ref("BatchExportTestStep")), .readOnly)])
}
