/// The writable fields of an organization, parsed from a request body. A nil property was not
/// given; `.some(nil)` sets a nullable field to null.
package struct OrganizationInput: Sendable, Equatable {
    package var name: String?
    package var isMemberJoinEmailEnabled: Bool?
    package var enforce2FA: Bool??
    package var membersCanInvite: Bool?
    package var membersCanUsePersonalAPIKeys: Bool?
    package var allowPubliclySharedResources: Bool?
    package var isAIDataProcessingApproved: Bool??
    package var defaultExperimentStatsMethod: String??

    static let nameMaxLength = 64
    static let statsMethods: Set<String> = ["bayesian", "frequentist"]

    package init() {}

    /// Parses a body. `requireName` is true for create and PUT. Fields are checked in the
    /// serializer's declaration order and the first error is thrown.
    package static func parse(_ body: JSONValue, requireName: Bool) throws(APIError) -> OrganizationInput {
        let object = try BodyObject.require(body)
        var input = OrganizationInput()
        if let value = object["name"] {
            input.name = try FieldParser.string(value, attr: "name", maxLength: nameMaxLength)
        } else if requireName {
            throw APIError.required("name")
        }
        if let value = object["logo_media_id"] { try FieldParser.unknownRelation(value, attr: "logo_media_id") }
        if let value = object["is_member_join_email_enabled"] {
            input.isMemberJoinEmailEnabled = try FieldParser.boolean(value, attr: "is_member_join_email_enabled")
        }
        if let value = object["enforce_2fa"] {
            input.enforce2FA = .some(try FieldParser.boolean(value, attr: "enforce_2fa", allowNull: true))
        }
        if let value = object["members_can_invite"] {
            input.membersCanInvite = try FieldParser.boolean(value, attr: "members_can_invite")
        }
        if let value = object["members_can_use_personal_api_keys"] {
            input.membersCanUsePersonalAPIKeys = try FieldParser.boolean(value, attr: "members_can_use_personal_api_keys")
        }
        if let value = object["allow_publicly_shared_resources"] {
            input.allowPubliclySharedResources = try FieldParser.boolean(value, attr: "allow_publicly_shared_resources")
        }
        if let value = object["is_ai_data_processing_approved"] {
            input.isAIDataProcessingApproved = .some(
                try FieldParser.boolean(value, attr: "is_ai_data_processing_approved", allowNull: true))
        }
        if let value = object["default_experiment_stats_method"] {
            input.defaultExperimentStatsMethod = .some(
                try FieldParser.choice(
                    value, attr: "default_experiment_stats_method", choices: statsMethods, allowBlank: true, allowNull: true))
        }
        if let value = object["default_role_id"] { try FieldParser.unknownRelation(value, attr: "default_role_id") }
        return input
    }

    /// Applies the given fields to an organization.
    package func apply(to organization: inout Organization) {
        if let name { organization.name = name }
        if let isMemberJoinEmailEnabled { organization.isMemberJoinEmailEnabled = isMemberJoinEmailEnabled }
        if let enforce2FA { organization.enforce2FA = enforce2FA }
        if let membersCanInvite { organization.membersCanInvite = membersCanInvite }
        if let membersCanUsePersonalAPIKeys { organization.membersCanUsePersonalAPIKeys = membersCanUsePersonalAPIKeys }
        if let allowPubliclySharedResources { organization.allowPubliclySharedResources = allowPubliclySharedResources }
        if let isAIDataProcessingApproved { organization.isAIDataProcessingApproved = isAIDataProcessingApproved }
        if let defaultExperimentStatsMethod { organization.defaultExperimentStatsMethod = defaultExperimentStatsMethod }
    }
}
