/// The writable settings of PostHog's team (environment) and project serializers that Hedgerow has
/// no feature behind, with the value Hedgerow reports for each: PostHog's default for a new team.
/// Responses carry them so strict clients find every field; a request may send a setting back with
/// that value (generated clients send whole models), and any other value is refused, since Hedgerow
/// would not act on it.
package enum TeamSettings {
    /// Every fixed setting, by PostHog's field name.
    package static let fixed: [String: JSONValue] = [
        "access_control": false,
        "app_urls": [],
        "slack_incoming_webhook": nil,
        "anonymize_ips": false,
        "test_account_filters": [],
        "test_account_filters_default_checked": nil,
        "path_cleaning_filters": [],
        "data_attributes": ["data-attr"],
        "person_display_name_properties": nil,
        "correlation_config": .object([:]),
        "autocapture_opt_out": false,
        "autocapture_exceptions_opt_in": false,
        "autocapture_web_vitals_opt_in": false,
        "autocapture_web_vitals_allowed_metrics": nil,
        "autocapture_exceptions_errors_to_ignore": nil,
        "capture_console_log_opt_in": false,
        "capture_performance_opt_in": false,
        "logs_settings": nil,
        "session_recording_opt_in": false,
        "session_recording_sample_rate": nil,
        "session_recording_minimum_duration_milliseconds": nil,
        "session_recording_linked_flag": nil,
        "session_recording_network_payload_capture_config": nil,
        "session_recording_masking_config": nil,
        "session_recording_url_trigger_config": [],
        "session_recording_url_blocklist_config": [],
        "session_recording_event_trigger_config": [],
        "session_recording_trigger_match_type_config": nil,
        "session_recording_retention_period": "30d",
        "session_replay_config": nil,
        "survey_config": nil,
        "week_start_day": nil,
        "primary_dashboard": nil,
        "live_events_columns": nil,
        "recording_domains": nil,
        "cookieless_server_hash_mode": 0,
        "human_friendly_comparison_periods": false,
        "inject_web_apps": false,
        "extra_settings": nil,
        "modifiers": nil,
        "has_completed_onboarding_for": nil,
        "surveys_opt_in": nil,
        "heatmaps_opt_in": nil,
        "flags_persistence_default": false,
        "feature_flag_confirmation_enabled": false,
        "feature_flag_confirmation_message": "",
        "default_evaluation_environments_enabled": false,
        "capture_dead_clicks": false,
        "default_data_theme": nil,
        "revenue_analytics_config": .object([
            "base_currency": "USD", "events": [], "goals": [], "filter_test_accounts": false,
        ]),
        "marketing_analytics_config": .object([
            "sources_map": .object([:]), "conversion_goals": [], "attribution_window_days": 90,
            "attribution_mode": "last_touch", "campaign_name_mappings": .object([:]),
        ]),
        "onboarding_tasks": nil,
        "base_currency": "USD",
        "web_analytics_pre_aggregated_tables_enabled": false,
        "experiment_recalculation_time": nil,
        // The project serializer's own settings.
        "product_description": nil,
        "receive_org_level_activity_logs": false,
        "business_model": nil,
        "conversations_enabled": nil,
        "conversations_settings": nil,
    ]

    /// Refuses a body that sets a fixed setting to another value than Hedgerow reports. Form
    /// bodies carry text: `"true"`/`"false"` stand for booleans, an empty value for null, and a
    /// JSON setting is its JSON text (as DRF's `JSONField` reads form input).
    static func checkUnchanged(_ object: JSONObject) throws(APIError) {
        for (key, value) in object.entries {
            guard let reported = fixed[key], !matches(value, reported) else { continue }
            throw APIError.invalid(
                key,
                "Hedgerow does not support changing this setting; it is always \(JSONWriter.string(reported)).")
        }
    }

    static func matches(_ sent: JSONValue, _ reported: JSONValue) -> Bool {
        if sent == reported { return true }
        guard case .string(let text) = sent else { return false }
        switch reported {
        case .bool(let flag): return ["true", "True", "1"].contains(text) ? flag : ["false", "False", "0"].contains(text) && !flag
        case .null: return text.isEmpty || text == "null"
        case .int(let number): return Int64(text) == number
        default: return (try? JSONParser.parse(text)) == reported
        }
    }
}
