import HedgerowCore
import HedgerowRuntime

/// The services of one application, made once by `buildApplication` and shared by the API's
/// controllers and any `RouteModule` mounted beside them (the console).
public struct APIServices: Sendable {
    public let configuration: HedgerowConfiguration
    public let organizations: OrganizationService
    public let projects: ProjectService
    public let members: MemberService
    public let invites: InviteService
    public let users: UserService
    public let keys: PersonalAPIKeyService
    public let batchExports: BatchExportService
    public let signIn: SignInService
}

/// Routes served beside the API's from the same services (the console, `HedgerowConsole`).
public protocol RouteModule: Sendable {
    func addRoutes(to routes: inout Routes, services: APIServices)
}
