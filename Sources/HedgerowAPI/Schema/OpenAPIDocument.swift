import HedgerowCore

/// The OpenAPI 3.0.3 document of the `/api/` routes, built from the route table: every path,
/// method, path parameter and scope is the table's own, so the document cannot list a route the
/// server lacks or miss one it has.
enum OpenAPIDocument {
    static let bodyTypes = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
    static let methodOrder = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    static func build(_ routes: Routes, version: String) -> JSONValue {
        var paths: JSONObject = [:]
        var operationIDs = Set<String>()
        for route in routes.routes where route.pattern.hasPrefix("/api/") {
            var item: JSONObject = [:]
            for method in methodOrder {
                guard let endpoint = route.endpoints[method], let doc = endpoint.doc else { continue }
                let operation = self.operation(route: route, method: method, doc: doc, scope: endpoint.scope)
                if case .string(let id)? = operation["operationId"] {
                    precondition(operationIDs.insert(id).inserted, "operation id \(id) is used twice")
                }
                item[method.lowercased()] = .object(operation)
            }
            paths[path(route)] = .object(item)
        }
        return .object([
            "openapi": "3.0.3",
            "info": .object([
                "title": "Hedgerow API",
                "version": .string(version),
                "description": .string(
                    "PostHog's organization, project, environment, member, personal API key and batch export routes, "
                        + "as this Hedgerow server implements them."),
            ]),
            "paths": .object(paths),
            "components": .object([
                "schemas": .object(APIComponents.all),
                "securitySchemes": .object(["PersonalAPIKeyAuth": .object(["type": "http", "scheme": "bearer"])]),
            ]),
        ])
    }

    /// `/api/organizations/:id/` → `/api/organizations/{id}/`.
    static func path(_ route: Routes.Route) -> String {
        let parts = route.segments.map { segment -> String in
            switch segment {
            case .literal(let literal): literal
            case .parameter(let name): "{\(name)}"
            }
        }
        return "/" + parts.joined(separator: "/") + (route.pattern.hasSuffix("/") ? "/" : "")
    }

    static func operationID(_ route: Routes.Route, method: String, kind: OperationDoc.Kind) -> String {
        let words = route.segments.dropFirst().compactMap { segment -> String? in
            guard case .literal(let literal) = segment else { return nil }
            return literal.filter { $0.isLetter || $0.isNumber || $0 == "_" }
        }
        let suffix: String
        switch kind {
        case .action:
            suffix =
                ["GET": "retrieve", "POST": "create", "PUT": "update", "PATCH": "partial_update", "DELETE": "destroy"][method]
                ?? method.lowercased()
        default: suffix = kind.rawValue
        }
        return (words + [suffix]).joined(separator: "_")
    }

    static func parameterSchema(_ name: String, doc: OperationDoc) -> (JSONObject, String) {
        switch name {
        case "id": (doc.idSchema, "The object's id.")
        case "organization_id": (Schema.string, "The organization's id (a UUID), or `@current`.")
        case "project_id": (Schema.string, "The project's (or environment's) id, or `@current`.")
        case "batch_export_id": (Schema.uuid, "The batch export's id.")
        case "user_uuid": (Schema.uuid, "The member's user UUID.")
        default: (Schema.string, "")
        }
    }

    static func operation(route: Routes.Route, method: String, doc: OperationDoc, scope: RequiredScope?) -> JSONObject {
        var operation: JSONObject = [
            "operationId": .string(operationID(route, method: method, kind: doc.kind)),
            "summary": .string(doc.summary),
        ]
        var parameters: [JSONValue] = []
        for segment in route.segments {
            guard case .parameter(let name) = segment else { continue }
            let (schema, description) = parameterSchema(name, doc: doc)
            parameters.append(
                .object([
                    "in": "path", "name": .string(name), "required": true, "schema": .object(schema),
                    "description": .string(description),
                ]))
        }
        for query in doc.query {
            var parameter: JSONObject = [
                "in": "query", "name": .string(query.name), "required": false, "description": .string(query.description),
                "schema": .object(query.array ? Schema.array(query.schema) : query.schema),
            ]
            if query.array { parameter["explode"] = true }
            parameters.append(.object(parameter))
        }
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if case .literal(let tag)? = route.segments.dropFirst().first { operation["tags"] = [.string(tag)] }
        if let request = doc.request {
            let schema = doc.requestIsArray ? Schema.array(Schema.ref(request)) : Schema.ref(request)
            let content = JSONObject(bodyTypes.map { ($0, .object(["schema": .object(schema)])) })
            operation["requestBody"] = .object(["content": .object(content), "required": .bool(doc.requestRequired)])
        }
        var response: JSONObject = ["description": .string(doc.response == nil ? "No response body" : "")]
        if let component = doc.response {
            let schema = doc.responseIsArray ? Schema.array(Schema.ref(component)) : Schema.ref(component)
            response["content"] = .object(["application/json": .object(["schema": .object(schema)])])
        }
        operation["responses"] = .object([String(doc.status): .object(response)])
        switch scope {
        case .scope(let object, let access)?:
            operation["security"] = [.object(["PersonalAPIKeyAuth": [.string("\(object):\(access.rawValue)")]])]
        case .unsupported?:
            operation["security"] = [.object(["PersonalAPIKeyAuth": []])]
        case nil:
            operation["security"] = []
        }
        return operation
    }
}
