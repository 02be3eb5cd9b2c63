import HedgerowCore

/// `GET /api/schema/`: the OpenAPI document of this server's `/api/` routes (public, as PostHog's).
struct SchemaController: Sendable {
    static let doc = OperationDoc.action(
        "This document: the OpenAPI 3.0.3 schema of the routes this server serves.", response: "OpenAPIDocument")
    let version: String

    /// Adds the route last, once every other route is in the table, so that the document it
    /// serves describes the finished table (itself included). The document is built when asked
    /// for, not at every start.
    func addRoute(to routes: inout Routes) {
        var finished = routes
        finished.add("GET", "/api/schema/", scope: nil, doc: Self.doc) { _ in .noContent }
        let table = finished
        let version = version
        routes.add("GET", "/api/schema/", scope: nil, doc: Self.doc) { _ in .ok(OpenAPIDocument.build(table, version: version)) }
    }
}
