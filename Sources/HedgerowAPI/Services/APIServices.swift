import HedgerowCore
import HedgerowRuntime

/// The services of one application, made once by `buildApplication` and shared by the API's
/// controllers and any `RouteModule` mounted beside them (the console).
package struct APIServices: Sendable {
    package let configuration: HedgerowConfiguration
    package let organizations: OrganizationService
    package let projects: ProjectService
    package let members: MemberService
    package let invites: InviteService
    package let users: UserService
    package let keys: PersonalAPIKeyService
    package let batchExports: BatchExportService
    package let signIn: SignInService
}

/// Routes served beside the API's from the same services (the console, `HedgerowConsole`).
package protocol RouteModule: Sendable {
    func addRoutes(to routes: inout Routes, services: APIServices)
}
