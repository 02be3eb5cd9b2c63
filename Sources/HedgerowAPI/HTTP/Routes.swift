import Foundation
import HedgerowCore

/// A route table matched segment by segment. A trailing slash is optional on every route; a
/// path that matches but has no handler for the method is a 405 (after authentication, as in DRF).
package struct Routes: Sendable {
    package typealias Handler = @Sendable (APIRequest) async throws -> APIResponse

    package struct Endpoint: Sendable {
        /// The scope a personal API key needs; nil on public routes.
        package var scope: RequiredScope?
        /// What `/api/schema/` says of it (every `/api/` endpoint has one).
        var doc: OperationDoc?
        package var handler: Handler
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    struct Route: Sendable {
        var segments: [Segment]
        var pattern: String
        var authenticated: Bool
        /// Whether the route belongs to a project/environment (keys with `scoped_teams` may use it).
        var teamBased: Bool
        /// Whether browsers may call it from any origin (capture endpoints).
        var cors: Bool = false
        var endpoints: [String: Endpoint]
    }

    private(set) var routes: [Route] = []

    package init() {}

    /// Adds `handler` for `method` on `pattern` (`/api/organizations/:id/`). Routes under `/api/`
    /// must say what they take and answer (`doc`): the OpenAPI document is built from this table.
    package mutating func add(
        _ method: String, _ pattern: String, scope: RequiredScope?, teamBased: Bool = false, cors: Bool = false,
        doc: OperationDoc? = nil, handler: @escaping Handler
    ) {
        precondition(doc != nil || !pattern.hasPrefix("/api/"), "\(method) \(pattern) has no OperationDoc")
        let segments = Self.split(pattern).map { part -> Segment in
            part.hasPrefix(":") ? .parameter(String(part.dropFirst())) : .literal(String(part))
        }
        let endpoint = Endpoint(scope: scope, doc: doc, handler: handler)
        if let index = routes.firstIndex(where: { $0.segments == segments }) {
            precondition(routes[index].endpoints[method] == nil, "\(method) \(pattern) registered twice")
            routes[index].endpoints[method] = endpoint
        } else {
            routes.append(
                Route(
                    segments: segments, pattern: pattern, authenticated: scope != nil, teamBased: teamBased, cors: cors,
                    endpoints: [method: endpoint]))
        }
    }

    struct Match {
        var route: Route
        var parameters: [String: String]
    }

    /// The route for a path, literal segments preferred over parameters.
    func match(path: String) -> Match? {
        let parts = Self.split(path)
        var best: (Match, Int)?
        for route in routes where route.segments.count == parts.count {
            // Literals first; the parameters are collected only for a route that matches.
            var literals = 0
            var matched = true
            for (segment, part) in zip(route.segments, parts) {
                if case .literal(let literal) = segment {
                    guard literal == part else {
                        matched = false
                        break
                    }
                    literals += 1
                }
            }
            if matched, best == nil || literals > best!.1 {
                var parameters: [String: String] = [:]
                for (segment, part) in zip(route.segments, parts) {
                    if case .parameter(let name) = segment { parameters[name] = part }
                }
                best = (Match(route: route, parameters: parameters), literals)
            }
        }
        return best?.0
    }

    /// The path's segments, percent-decoded as Django decodes paths before matching them
    /// (generated clients send `%40current`); a segment that does not decode to UTF-8 stays as sent.
    static func split(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map { segment in
            segment.utf8.contains(UInt8(ascii: "%")) ? (segment.removingPercentEncoding ?? String(segment)) : String(segment)
        }
    }
}
