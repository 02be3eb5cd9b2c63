/// A person who uses Hedgerow.
package struct User: Sendable, Equatable {
    package var id: Int64
    package var uuid: String
    package var email: String
    package var firstName: String
    package var lastName: String
    package var isActive: Bool
    package var currentOrganizationID: String?
    package var currentTeamID: Int64?
    package var createdAt: Timestamp

    package init(
        id: Int64, uuid: String, email: String, firstName: String, lastName: String, isActive: Bool,
        currentOrganizationID: String?, currentTeamID: Int64?, createdAt: Timestamp
    ) {
        self.id = id
        self.uuid = uuid
        self.email = email
        self.firstName = firstName
        self.lastName = lastName
        self.isActive = isActive
        self.currentOrganizationID = currentOrganizationID
        self.currentTeamID = currentTeamID
        self.createdAt = createdAt
    }
}

/// An organization and its settings.
package struct Organization: Sendable, Equatable {
    package var id: String
    package var name: String
    package var slug: String
    package var logoMediaID: String?
    package var createdAt: Timestamp
    package var updatedAt: Timestamp
    package var isMemberJoinEmailEnabled: Bool
    package var enforce2FA: Bool?
    package var membersCanInvite: Bool
    package var membersCanUsePersonalAPIKeys: Bool
    package var allowPubliclySharedResources: Bool
    package var isAIDataProcessingApproved: Bool?
    package var defaultExperimentStatsMethod: String?
    package var defaultRoleID: String?
    package var environmentsRollbackRequestedAt: Timestamp?

    package init(id: String, name: String, slug: String, createdAt: Timestamp) {
        self.id = id
        self.name = name
        self.slug = slug
        self.logoMediaID = nil
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.isMemberJoinEmailEnabled = true
        self.enforce2FA = nil
        self.membersCanInvite = true
        self.membersCanUsePersonalAPIKeys = true
        self.allowPubliclySharedResources = true
        self.isAIDataProcessingApproved = nil
        self.defaultExperimentStatsMethod = "bayesian"
        self.defaultRoleID = nil
        self.environmentsRollbackRequestedAt = nil
    }
}

/// A user's membership of an organization.
package struct Membership: Sendable, Equatable {
    package var id: String
    package var organizationID: String
    package var userID: Int64
    package var level: MembershipLevel
    package var joinedAt: Timestamp
    package var updatedAt: Timestamp

    package init(id: String, organizationID: String, userID: Int64, level: MembershipLevel, joinedAt: Timestamp, updatedAt: Timestamp) {
        self.id = id
        self.organizationID = organizationID
        self.userID = userID
        self.level = level
        self.joinedAt = joinedAt
        self.updatedAt = updatedAt
    }
}

/// A project: a group of environments. Its main environment has the project's id.
package struct Project: Sendable, Equatable {
    package var id: Int64
    package var organizationID: String
    package var name: String
    package var createdAt: Timestamp
    package var updatedAt: Timestamp

    package init(id: Int64, organizationID: String, name: String, createdAt: Timestamp, updatedAt: Timestamp) {
        self.id = id
        self.organizationID = organizationID
        self.name = name
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// An environment (PostHog's "team"): where events and batch exports live.
package struct Environment: Sendable, Equatable {
    package var id: Int64
    package var uuid: String
    package var organizationID: String
    package var projectID: Int64
    package var name: String
    package var apiToken: String
    package var timezone: String
    package var ingestedEvent: Bool
    package var completedSnippetOnboarding: Bool
    package var isDemo: Bool
    package var createdAt: Timestamp
    package var updatedAt: Timestamp

    package init(
        id: Int64, uuid: String, organizationID: String, projectID: Int64, name: String, apiToken: String,
        timezone: String, ingestedEvent: Bool, completedSnippetOnboarding: Bool, isDemo: Bool,
        createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.uuid = uuid
        self.organizationID = organizationID
        self.projectID = projectID
        self.name = name
        self.apiToken = apiToken
        self.timezone = timezone
        self.ingestedEvent = ingestedEvent
        self.completedSnippetOnboarding = completedSnippetOnboarding
        self.isDemo = isDemo
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A personal API key. The plain value is never held here: only its hash.
package struct PersonalAPIKey: Sendable, Equatable {
    package var id: String
    package var userID: Int64
    package var label: String
    package var secureValue: String
    package var maskValue: String
    package var scopes: [Scope]
    package var scopedTeams: [Int64]?
    package var scopedOrganizations: [String]?
    package var createdAt: Timestamp
    package var lastUsedAt: Timestamp?
    package var lastRolledAt: Timestamp?

    package init(
        id: String, userID: Int64, label: String, secureValue: String, maskValue: String, scopes: [Scope],
        scopedTeams: [Int64]?, scopedOrganizations: [String]?, createdAt: Timestamp, lastUsedAt: Timestamp?,
        lastRolledAt: Timestamp? = nil
    ) {
        self.id = id
        self.userID = userID
        self.label = label
        self.secureValue = secureValue
        self.maskValue = maskValue
        self.scopes = scopes
        self.scopedTeams = scopedTeams
        self.scopedOrganizations = scopedOrganizations
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.lastRolledAt = lastRolledAt
    }
}

/// An organization with what its representation shows the caller.
package struct OrganizationDetails: Sendable {
    package var organization: Organization
    package var membershipLevel: MembershipLevel
    package var projects: [Project]
    package var environments: [Environment]
    package var memberCount: Int

    package init(
        organization: Organization, membershipLevel: MembershipLevel, projects: [Project], environments: [Environment],
        memberCount: Int
    ) {
        self.organization = organization
        self.membershipLevel = membershipLevel
        self.projects = projects
        self.environments = environments
        self.memberCount = memberCount
    }
}
