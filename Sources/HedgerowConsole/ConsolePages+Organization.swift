import HedgerowAPI
import HedgerowCore
import HedgerowStore

/// Organizations, projects and environments, members and invites.
extension ConsolePages {
    @Sendable func switchOrganization(_ request: ConsoleRequest) async throws -> APIResponse {
        var input = UserInput()
        input.currentOrganization = request.form["organization"].flatMap(Identifiers.canonicalUUID)
        guard input.currentOrganization != nil else { throw APIError.invalid("set_current_organization", "Choose an organization.") }
        _ = try await services.users.update(input: input, principal: request.principal)
        return ConsoleResponse.redirect("/")
    }

    @Sendable func switchEnvironment(_ request: ConsoleRequest) async throws -> APIResponse {
        var input = UserInput()
        guard let team = request.form["team"].flatMap(Int64.init) else { throw APIError.invalid("set_current_team", "Choose a project.") }
        input.currentTeam = team
        _ = try await services.users.update(input: input, principal: request.principal)
        return ConsoleResponse.redirect("/project/\(team)/batch_exports")
    }

    func organizationContext(_ request: ConsoleRequest) async throws -> [String: Any] {
        let organizationID = try currentOrganization(request)
        let projects = try await services.projects.projectsWithEnvironments(organizationID: organizationID, principal: request.principal)
        var context = try await layout(request, title: "Organization", projects: projects)
        let details = try await services.organizations.retrieve(id: organizationID, principal: request.principal)
        context["organization"] = ["id": details.organization.id, "name": details.organization.name]
        context["projects"] = projects.map { project, environments -> [String: Any] in
            [
                "id": project.id, "name": project.name,
                "environments": environments.map { ["id": $0.id, "name": $0.name, "api_token": $0.apiToken] as [String: Any] },
            ]
        }
        return context
    }

    @Sendable func organizationPage(_ request: ConsoleRequest) async throws -> APIResponse {
        render("organization", try await organizationContext(request))
    }

    /// Runs a change and goes back to `page` with a note, or shows `page` again with the error.
    func perform(
        _ request: ConsoleRequest, back page: String, done: String, _ change: () async throws -> Void,
        context: (ConsoleRequest) async throws -> [String: Any], template: String
    ) async throws -> APIResponse {
        do {
            try await change()
            return ConsoleResponse.redirect(page + "?flash=" + done.queryEscaped)
        } catch let error as APIError where error.status == 400 {
            var values = try await context(request)
            values["error"] = error.detail
            return render(template, values, status: 400)
        }
    }

    /// A change on the organization page, given the form's name as the API's body; a 400 shows the
    /// page again with the message.
    func organizationChange(
        _ request: ConsoleRequest, done: String, _ change: @escaping (JSONValue) async throws -> Void
    ) async throws -> APIResponse {
        try await perform(
            request, back: "/organization", done: done, { try await change(.object(["name": .string(request.form.raw("name"))])) },
            context: organizationContext, template: "organization")
    }

    @Sendable func renameOrganization(_ request: ConsoleRequest) async throws -> APIResponse {
        let organizationID = try currentOrganization(request)
        return try await organizationChange(request, done: "Organization renamed.") { body in
            let input = try OrganizationInput.parse(body, requireName: true)
            try await services.organizations.checkCanUpdate(id: organizationID, principal: request.principal)
            _ = try await services.organizations.update(id: organizationID, input: input, principal: request.principal)
        }
    }

    @Sendable func createProject(_ request: ConsoleRequest) async throws -> APIResponse {
        let organizationID = try currentOrganization(request)
        return try await organizationChange(request, done: "Project created.") { body in
            let input = try ProjectInput.parse(body, requireName: true)
            _ = try await services.projects.createProject(organizationID: organizationID, input: input, principal: request.principal)
        }
    }

    @Sendable func renameProject(_ request: ConsoleRequest) async throws -> APIResponse {
        try await organizationChange(request, done: "Project renamed.") { body in
            let input = try ProjectInput.parse(body, requireName: true)
            _ = try await services.projects.updateProject(id: request.parameter("project_id"), input: input, principal: request.principal)
        }
    }

    @Sendable func createEnvironment(_ request: ConsoleRequest) async throws -> APIResponse {
        try await organizationChange(request, done: "Environment created.") { body in
            let input = try ProjectInput.parse(body, requireName: true)
            _ = try await services.projects.createEnvironment(
                projectID: request.parameter("project_id"), input: input, principal: request.principal)
        }
    }

    // MARK: Members and invites

    func membersContext(_ request: ConsoleRequest) async throws -> [String: Any] {
        let organizationID = try currentOrganization(request)
        var context = try await layout(request, title: "Members")
        let (_, members) = try await services.members.list(
            organizationID: organizationID, principal: request.principal, limit: 500, offset: 0)
        context["members"] = members.map { member -> [String: Any] in
            [
                "uuid": member.user.uuid, "email": member.user.email,
                "name": [member.user.firstName, member.user.lastName].filter { !$0.isEmpty }.joined(separator: " "),
                "joined_at": Self.date(member.membership.joinedAt), "is_me": member.user.id == request.session.user.id,
                "levels": MembershipLevel.allCases.map { level in
                    ["value": level.rawValue, "name": Self.levelName(level), "selected": level == member.membership.level] as [String: Any]
                },
            ]
        }
        let (_, invites) = try await services.invites.list(
            organizationID: organizationID, principal: request.principal, limit: 500, offset: 0)
        let now = Timestamp.now()
        context["invites"] = invites.map { invite -> [String: Any] in
            [
                "id": invite.id, "target_email": invite.targetEmail, "level_name": Self.levelName(invite.level),
                "link": request.request.baseURL + "/signup/" + invite.id, "is_expired": invite.isExpired(at: now),
            ]
        }
        return context
    }

    @Sendable func membersPage(_ request: ConsoleRequest) async throws -> APIResponse {
        render("members", try await membersContext(request))
    }

    /// Member and invite changes answer 400 or 403 by the API's rules; both are shown on the page.
    func performOnMembers(_ request: ConsoleRequest, done: String, _ change: () async throws -> Void) async throws -> APIResponse {
        do {
            try await change()
            return ConsoleResponse.redirect("/organization/members?flash=" + done.queryEscaped)
        } catch let error as APIError where error.status == 400 || error.status == 403 {
            var values = try await membersContext(request)
            values["error"] = error.detail
            return render("members", values, status: error.status)
        }
    }

    @Sendable func changeLevel(_ request: ConsoleRequest) async throws -> APIResponse {
        let organizationID = try currentOrganization(request)
        return try await performOnMembers(request, done: "Level changed.") {
            let userUUID = request.parameter("user_uuid")
            try await services.members.checkCanEdit(organizationID: organizationID, userUUID: userUUID, principal: request.principal)
            let level = try MemberInput.parseLevel(.object(["level": Self.number(request.form["level"]) ?? .null]))
            _ = try await services.members.update(
                organizationID: organizationID, userUUID: userUUID, level: level, principal: request.principal)
        }
    }

    @Sendable func removeMember(_ request: ConsoleRequest) async throws -> APIResponse {
        let organizationID = try currentOrganization(request)
        return try await performOnMembers(request, done: "Member removed.") {
            try await services.members.remove(
                organizationID: organizationID, userUUID: request.parameter("user_uuid"), principal: request.principal)
        }
    }

    @Sendable func createInvite(_ request: ConsoleRequest) async throws -> APIResponse {
        let organizationID = try currentOrganization(request)
        return try await performOnMembers(request, done: "Invite created: send its link to \(request.form["target_email"] ?? "them").") {
            try await services.invites.checkCanInvite(organizationID: organizationID, principal: request.principal)
            var body: JSONObject = ["target_email": .string(request.form.raw("target_email"))]
            if let firstName = request.form["first_name"] { body["first_name"] = .string(firstName) }
            if let level = Self.number(request.form["level"]) { body["level"] = level }
            let input = try InviteService.Input.parse(.object(body))
            _ = try await services.invites.create(
                organizationID: organizationID, inputs: [input], principal: request.principal, linkBase: request.request.baseURL)
        }
    }

    @Sendable func deleteInvite(_ request: ConsoleRequest) async throws -> APIResponse {
        let organizationID = try currentOrganization(request)
        return try await performOnMembers(request, done: "Invite deleted.") {
            try await services.invites.delete(
                organizationID: organizationID, inviteID: request.parameter("id"), principal: request.principal)
        }
    }
}
