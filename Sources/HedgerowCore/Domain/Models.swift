/// A person who uses Hedgerow.
public struct User: Sendable, Equatable {
    public var id: Int64
    public var uuid: String
    public var email: String
    public var firstName: String
    public var lastName: String
    public var isActive: Bool
    public var currentOrganizationID: String?
    public var currentTeamID: Int64?
    public var createdAt: Timestamp

    public init(
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
public struct Organization: Sendable, Equatable {
    public var id: String
    public var name: String
    public var slug: String
    public var logoMediaID: String?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var isMemberJoinEmailEnabled: Bool
    public var enforce2FA: Bool?
    public var membersCanInvite: Bool
    public var membersCanUsePersonalAPIKeys: Bool
    public var allowPubliclySharedResources: Bool
    public var isAIDataProcessingApproved: Bool?
    public var defaultExperimentStatsMethod: String?
    public var defaultRoleID: String?
    public var environmentsRollbackRequestedAt: Timestamp?

    public init(id: String, name: String, slug: String, createdAt: Timestamp) {
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
public struct Membership: Sendable, Equatable {
    public var id: String
    public var organizationID: String
    public var userID: Int64
    public var level: MembershipLevel
    public var joinedAt: Timestamp
    public var updatedAt: Timestamp

    public init(id: String, organizationID: String, userID: Int64, level: MembershipLevel, joinedAt: Timestamp, updatedAt: Timestamp) {
        self.id = id
        self.organizationID = organizationID
        self.userID = userID
        self.level = level
        self.joinedAt = joinedAt
        self.updatedAt = updatedAt
    }
}

/// A project: a group of environments. Its main environment has the project's id.
public struct Project: Sendable, Equatable {
    public var id: Int64
    public var organizationID: String
    public var name: String
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(id: Int64, organizationID: String, name: String, createdAt: Timestamp, updatedAt: Timestamp) {
        self.id = id
        self.organizationID = organizationID
        self.name = name
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// An environment (PostHog's "team"): where events and batch exports live.
public struct Environment: Sendable, Equatable {
    public var id: Int64
    public var uuid: String
    public var organizationID: String
    public var projectID: Int64
    public var name: String
    public var apiToken: String
    public var timezone: String
    public var ingestedEvent: Bool
    public var completedSnippetOnboarding: Bool
    public var isDemo: Bool
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(
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
public struct PersonalAPIKey: Sendable, Equatable {
    public var id: String
    public var userID: Int64
    public var label: String
    public var secureValue: String
    public var maskValue: String
    public var scopes: [Scope]
    public var scopedTeams: [Int64]?
    public var scopedOrganizations: [String]?
    public var createdAt: Timestamp
    public var lastUsedAt: Timestamp?
    public var lastRolledAt: Timestamp?

    public init(
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
public struct OrganizationDetails: Sendable {
    public var organization: Organization
    public var membershipLevel: MembershipLevel
    public var projects: [Project]
    public var environments: [Environment]
    public var memberCount: Int

    public init(
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
