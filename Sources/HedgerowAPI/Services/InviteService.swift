import Foundation
import HedgerowCore
import HedgerowStore
import Logging

/// Organization invites (PostHog's `/api/organizations/{id}/invites/`), and accepting one through
/// the console's link. Rules as PostHog's: any member lists them; inviting and deleting need
/// `members_can_invite` or an admin; nobody invites above their own level; an address that already
/// belongs to the organization cannot be invited; a new invite replaces earlier ones for the same
/// address; an invite is good for three days, for its address only. With an SMTP server configured,
/// each new invite whose `send_email` is not false is mailed its link.
package struct InviteService: Sendable {
    let database: any Database
    let mailer: SMTPClient?
    let logger: Logger
    let clock: @Sendable () -> Timestamp
    let access = AccessService()
    let invites = InviteStore()
    let organizations = OrganizationStore()
    let users = UserStore()

    package init(
        database: any Database, mailer: SMTPClient? = nil, logger: Logger = Logger(label: "hedgerow.invites"),
        clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.database = database
        self.mailer = mailer
        self.logger = logger
        self.clock = clock
    }

    /// The fields a caller sends for one invite.
    package struct Input: Sendable, Equatable {
        package var targetEmail: String
        package var firstName = ""
        package var level = MembershipLevel.member
        package var message: String?
        /// Whether to mail the link (when an SMTP server is configured).
        var sendEmail = true

        package init(targetEmail: String) { self.targetEmail = targetEmail }

        /// PostHog's serializer: `target_email` required, the domain lower-cased; `level` one of the
        /// levels; `private_project_access` only empty (Hedgerow has no private projects).
        package static func parse(_ body: JSONValue) throws(APIError) -> Input {
            let object = try BodyObject.require(body)
            guard let rawEmail = object["target_email"], !rawEmail.isNull else { throw APIError.required("target_email") }
            let email = (try FieldParser.string(rawEmail, attr: "target_email", maxLength: 254)) ?? ""
            let parts = email.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
                !email.contains(where: { $0.isWhitespace })
            else { throw APIError.invalid("target_email", "Enter a valid email address.") }
            var input = Input(targetEmail: "\(parts[0])@\(parts[1].lowercased())")
            if let value = object["first_name"], !value.isNull {
                input.firstName = (try FieldParser.string(value, attr: "first_name", maxLength: 30, allowBlank: true)) ?? ""
            }
            if let value = object["level"] {
                let number = try FieldParser.integer(value, attr: "level")
                guard let level = MembershipLevel(rawValue: Int(number)) else {
                    throw APIError.invalid("level", "\"\(FieldParser.pythonString(value))\" is not a valid choice.")
                }
                input.level = level
            }
            if let value = object["message"], !value.isNull {
                input.message = try FieldParser.string(value, attr: "message", maxLength: 10_000, allowBlank: true)
            }
            if let value = object["send_email"], !value.isNull {
                input.sendEmail = try FieldParser.boolean(value, attr: "send_email") ?? true
            }
            if let value = object["private_project_access"], !value.isNull {
                guard case .array(let items) = value else {
                    throw APIError.validation(
                        "not_a_list", "Expected a list of items but got type \"\(value.pythonTypeName)\".", attr: "private_project_access")
                }
                if !items.isEmpty {
                    throw APIError.invalid(
                        "private_project_access",
                        "Team does not exist on this organization, or it is private and you do not have access to it.")
                }
            }
            return input
        }
    }

    package func list(
        organizationID: String, principal: Principal, limit: Int, offset: Int
    ) async throws -> (count: Int, page: [OrganizationInvite]) {
        try await database.read { connection in
            let organization = try await access.organization(organizationID, principal: principal, on: connection)
            return try await invites.page(organizationID: organization.organization.id, limit: limit, offset: offset, on: connection)
        }
    }

    /// Checks the organization and the caller's right to invite before a body is read.
    package func checkCanInvite(organizationID: String, principal: Principal) async throws {
        try await database.read { connection in
            _ = try await inviter(organizationID: organizationID, principal: principal, on: connection)
        }
    }

    /// Creates the invites in one transaction, then mails each its link (`linkBase` + `/signup/<id>`)
    /// when an SMTP server is configured; a mail that fails is logged, and the invite stands.
    package func create(
        organizationID: String, inputs: [Input], principal: Principal, linkBase: String
    ) async throws -> [OrganizationInvite] {
        let (created, organizationName) = try await database.transaction { connection in
            let organization = try await inviter(organizationID: organizationID, principal: principal, on: connection)
            var created: [OrganizationInvite] = []
            for input in inputs {
                if input.level > organization.level {
                    throw APIError.permissionDenied("You can only invite others with a level lower or equal to your own.")
                }
                if let user = try await users.find(email: input.targetEmail.lowercased(), on: connection),
                    try await organizations.membershipLevel(organizationID: organization.organization.id, userID: user.id, on: connection)
                        != nil
                {
                    throw APIError.invalidInput("A user with this email address already belongs to the organization.")
                }
                try await invites.deleteInvites(
                    organizationID: organization.organization.id, targetEmail: input.targetEmail, on: connection)
                // Offset by the position so that a bulk request keeps its order, newest last.
                let now = Timestamp(microseconds: clock().microseconds + Int64(created.count))
                let invite = OrganizationInvite(
                    id: Identifiers.uuidV7(at: now), organizationID: organization.organization.id, targetEmail: input.targetEmail,
                    firstName: input.firstName, level: input.level, message: input.message,
                    emailingAttemptMade: mailer != nil && input.sendEmail,
                    createdBy: principal.user, createdAt: now, updatedAt: now)
                try await invites.insert(invite, on: connection)
                created.append(invite)
            }
            return (created, organization.organization.name)
        }
        if let mailer {
            for invite in created where invite.emailingAttemptMade {
                await mail(invite, organizationName: organizationName, inviter: principal.user, linkBase: linkBase, mailer: mailer)
            }
        }
        return created
    }

    func mail(_ invite: OrganizationInvite, organizationName: String, inviter: User, linkBase: String, mailer: SMTPClient) async {
        let greeting = invite.firstName.isEmpty ? "Hello," : "Hello \(invite.firstName),"
        var text = """
            \(greeting)

            \(inviter.email) invites you to join \(organizationName) on Hedgerow.

            Accept the invite (good for three days):
            \(linkBase)/signup/\(invite.id)

            """
        if let message = invite.message, !message.isEmpty { text += "\nTheir message:\n\(message)\n" }
        do {
            try await mailer.send(to: invite.targetEmail, subject: "You're invited to join \(organizationName) on Hedgerow", text: text)
        } catch {
            logger.warning("Invite mail failed", metadata: ["invite": "\(invite.id)", "error": "\(error)"])
        }
    }

    package func delete(organizationID: String, inviteID: String, principal: Principal) async throws {
        try await database.transaction { connection in
            let organization = try await inviter(organizationID: organizationID, principal: principal, on: connection)
            guard let id = Identifiers.canonicalUUID(inviteID),
                let invite = try await invites.find(id: id, on: connection), invite.organizationID == organization.organization.id
            else { throw APIError.notFound() }
            try await invites.delete(id: invite.id, on: connection)
        }
    }

    // MARK: Accepting

    static let notValid = APIError.invalidInput("The provided invite ID is not valid.")

    /// An invite and its organization's name, for the accept page (anyone with the link).
    package func prevalidate(inviteID: String) async throws -> (OrganizationInvite, organizationName: String) {
        try await database.read { connection in
            guard let id = Identifiers.canonicalUUID(inviteID), let invite = try await invites.find(id: id, on: connection),
                let organization = try await organizations.findByID(invite.organizationID, on: connection)
            else { throw Self.notValid }
            if invite.isExpired(at: clock()) { throw Self.expired }
            return (invite, organization.name)
        }
    }

    static let expired = APIError(
        status: 400, type: "validation_error", code: "expired", detail: "This invite has expired. Please ask your admin for a new one.")

    /// A signed-in user takes the invite: they join at its level, the invite is used up, and the
    /// organization becomes their current one.
    package func accept(inviteID: String, user: User) async throws -> OrganizationInvite {
        try await database.transaction { connection in
            try await use(inviteID: inviteID, user: user, on: connection)
        }
    }

    /// Someone without an account takes the invite: the user is created with the invite's address
    /// and joins; an address that already has an account must sign in first.
    package func signUp(inviteID: String, firstName: String, password: String) async throws -> User {
        guard password.count >= SignInService.minimumPasswordLength else {
            throw APIError.invalid(
                "password",
                "This password is too short. It must contain at least \(SignInService.minimumPasswordLength) characters.")
        }
        let firstName = firstName.trimmingCharacters(in: .whitespaces)
        guard !firstName.isEmpty else { throw APIError.required("first_name") }
        guard firstName.count <= 150 else { throw APIError.invalid("first_name", "Ensure this field has no more than 150 characters.") }
        // Hashed on the hashing thread, before the transaction: never on Swift's pool, never holding the writer.
        let hash = try await PasswordHasher.hashOffPool(password)
        return try await database.transaction { connection in
            guard let id = Identifiers.canonicalUUID(inviteID), let invite = try await invites.find(id: id, on: connection) else {
                throw Self.notValid
            }
            if try await users.find(email: invite.targetEmail.lowercased(), on: connection) != nil {
                throw APIError(
                    status: 400, type: "validation_error", code: "account_exists",
                    detail: "An account with this email address exists already: sign in to accept the invite.")
            }
            let user = try await AccountService(database: database).createUser(
                email: invite.targetEmail.lowercased(), passwordHash: hash, firstName: firstName, lastName: "", on: connection)
            _ = try await use(inviteID: invite.id, user: user, on: connection)
            return user
        }
    }

    func use(inviteID: String, user: User, on connection: any SQLConnection) async throws -> OrganizationInvite {
        guard let id = Identifiers.canonicalUUID(inviteID), let invite = try await invites.find(id: id, on: connection) else {
            throw Self.notValid
        }
        if invite.targetEmail.lowercased() != user.email.lowercased() {
            throw APIError(
                status: 400, type: "validation_error", code: "invalid_recipient",
                detail: "This invite is intended for another email address.")
        }
        if invite.isExpired(at: clock()) { throw Self.expired }
        if try await organizations.membershipLevel(organizationID: invite.organizationID, userID: user.id, on: connection) != nil {
            throw APIError(
                status: 400, type: "validation_error", code: "user_already_member", detail: "You already are a member of this organization."
            )
        }
        try await AccountService(database: database).join(
            user, organizationID: invite.organizationID, level: invite.level, makeCurrent: true, at: clock(), on: connection)
        try await invites.delete(id: invite.id, on: connection)
        return invite
    }

    /// The organization when the caller may invite there: `members_can_invite`, or an admin.
    func inviter(organizationID: String, principal: Principal, on connection: any SQLConnection) async throws -> OrganizationAccess {
        let organization = try await access.organization(organizationID, principal: principal, on: connection)
        if !organization.organization.membersCanInvite, organization.level < .admin {
            throw APIError.permissionDenied("Your organization access level is insufficient.")
        }
        return organization
    }
}
