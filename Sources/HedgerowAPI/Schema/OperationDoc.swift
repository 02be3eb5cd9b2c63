import HedgerowCore

/// What one endpoint takes and answers, for `/api/schema/`. The path, its parameters, the method
/// and the scope come from the route table itself; this adds the bodies and the query.
package struct OperationDoc: Sendable {
    /// DRF's action names, which make drf-spectacular's operation ids (`…_list`, `…_partial_update`).
    package enum Kind: String, Sendable {
        case list, retrieve, create, update, partialUpdate = "partial_update", destroy
        /// A custom action (`pause`, `logs`): named after the method (`_create` for POST, `_retrieve` for GET).
        case action
    }

    package struct Query: Sendable {
        var name: String
        var schema: JSONObject
        var description: String
        var array = false
    }

    var kind: Kind
    var summary: String
    /// The component a body must match; nil: the endpoint reads no body.
    var request: String?
    var requestRequired = true
    /// Whether the body is a JSON array of `request` (bulk actions).
    var requestIsArray = false
    var status: Int
    /// The component of the answer; nil: no body (204). `responseIsArray`: a JSON array of it.
    var response: String?
    var responseIsArray = false
    var query: [Query] = []
    /// The schema of an `{id}` path parameter (others follow their names).
    var idSchema: JSONObject = Schema.string

    static let limitOffset: [Query] = [
        Query(name: "limit", schema: Schema.integer, description: "Number of results to return per page."),
        Query(name: "offset", schema: Schema.integer, description: "The initial index from which to return the results."),
    ]
    static let cursor = [Query(name: "cursor", schema: Schema.string, description: "The pagination cursor value.")]

    static func list(_ component: String, _ summary: String, query: [Query] = limitOffset) -> OperationDoc {
        OperationDoc(kind: .list, summary: summary, status: 200, response: component, query: query)
    }

    static func retrieve(_ component: String, _ summary: String, id: JSONObject = Schema.string) -> OperationDoc {
        OperationDoc(kind: .retrieve, summary: summary, status: 200, response: component, idSchema: id)
    }

    static func create(_ component: String, _ summary: String, response: String? = nil) -> OperationDoc {
        OperationDoc(kind: .create, summary: summary, request: component, status: 201, response: response ?? component)
    }

    static func update(_ component: String, _ summary: String, id: JSONObject = Schema.string) -> OperationDoc {
        OperationDoc(kind: .update, summary: summary, request: component, status: 200, response: component, idSchema: id)
    }

    static func partialUpdate(_ component: String, _ summary: String, id: JSONObject = Schema.string) -> OperationDoc {
        OperationDoc(
            kind: .partialUpdate, summary: summary, request: "Patched\(component)", requestRequired: false, status: 200,
            response: component, idSchema: id)
    }

    static func destroy(_ summary: String, id: JSONObject = Schema.string) -> OperationDoc {
        OperationDoc(kind: .destroy, summary: summary, status: 204, response: nil, idSchema: id)
    }

    static func action(
        _ summary: String, request: String? = nil, requestRequired: Bool = false, status: Int = 200, response: String?,
        query: [Query] = [], id: JSONObject = Schema.string
    ) -> OperationDoc {
        OperationDoc(
            kind: .action, summary: summary, request: request, requestRequired: requestRequired, status: status,
            response: response, query: query, idSchema: id)
    }
}
