import HedgerowCore
import HedgerowStore

/// `/_health` (the process serves) and `/_readyz` (the database answers).
struct HealthController: Sendable {
    let database: any Database

    func addRoutes(to routes: inout Routes) {
        routes.add("GET", "/_health", scope: nil) { _ in .ok(.object(["status": "ok"])) }
        routes.add("GET", "/_readyz", scope: nil, handler: ready)
    }

    @Sendable func ready(_ request: APIRequest) async throws -> APIResponse {
        do {
            _ = try await database.read { connection in try await connection.first("SELECT 1 AS ok") }
            return .ok(.object(["status": "ok"]))
        } catch {
            return APIResponse(status: 503, json: .object(["status": "unavailable", "detail": "The database is not reachable."]))
        }
    }
}
