import Foundation
import HedgerowCore
import HedgerowDestinations
import HedgerowExport
import HedgerowStore
import Logging

/// PostHog's destination test steps, run for real against the destination.
extension BatchExportService {

    /// The steps testing a destination type (`?destination=S3`).
    package func testSteps(_ parent: BatchExportParent, destination: String?, principal: Principal) async throws -> DestinationTest {
        try await checkParent(parent, id: nil, principal: principal)
        guard let destination, !destination.isEmpty else {
            throw APIError.invalidInput("Give the destination type to test, as ?destination=S3.", attr: "destination")
        }
        guard let type = DestinationType(rawValue: destination), deliverable.contains(type), let test = DestinationTest(type: type)
        else { throw APIError.notFound() }
        return test
    }

    /// Runs one test step (`step`, default 0) on a destination given in the body; for a saved
    /// export (`id`), the body's configuration is merged over the stored one, secrets included.
    package func runTestStep(
        _ parent: BatchExportParent, id: String?, body: JSONValue, principal: Principal
    ) async throws -> (DestinationTest.Step, DestinationTest.Result) {
        var object = try BodyObject.require(body)
        let index = Int(try object["step"].map { try FieldParser.integer($0, attr: "step") } ?? 0)
        object["step"] = nil
        let (stored, defaultTeam): (BatchExport?, Int64?) = try await database.read { connection in
            let scope = try await scope(parent, principal: principal, on: connection)
            guard let id else { return (nil, scope.defaultTeam) }
            return (try await export(id, in: scope, withSecrets: true, on: connection), scope.defaultTeam)
        }
        let destination = object["destination"]?.objectValue
        guard let type = destination?["type"]?.stringValue.flatMap(DestinationType.init(rawValue:)) ?? stored?.destinationType else {
            throw APIError.required("destination__type")
        }
        if let stored, stored.destinationType != type {
            throw APIError.invalidInput("The destination type of a batch export cannot change.", attr: "destination")
        }
        guard deliverable.contains(type), let test = DestinationTest(type: type) else {
            throw APIError.invalidInput("Destination type \(type.rawValue) is not supported by this server yet", attr: "destination")
        }
        guard test.steps.indices.contains(index) else {
            throw APIError.invalid("step", "This destination has \(test.steps.count) test step(s), numbered from 0.")
        }
        let config = try DestinationConfig.validate(
            type: type, config: try destination.map(BatchExportInput.destinationConfig) ?? .object(JSONObject()),
            model: stored?.model ?? .events,
            existing: stored?.destinationConfig)
        try checkDestination(type, config: config)
        var resolved = config
        if let team = stored?.teamID ?? defaultTeam {
            do {
                resolved = try await database.read { connection in
                    try await checkIntegrations(type, config: config, teamID: team, on: connection)
                    return try await IntegrationCredentials.resolve(config, type: type, teamID: team, secrets: secrets, on: connection)
                }
            } catch let error as DestinationError {
                throw APIError.invalidInput(error.message, attr: "integration_id")
            }
        } else if !DestinationConfig.integrationReferences(in: config, type: type).isEmpty {
            throw APIError.required("team_id")
        }
        let result = await test.run(
            step: index, config: resolved, connector: OutboundConnector(policy: outbound),
            logger: Logger(label: "hedgerow.destination-test"),
            endpoints: endpoints, allowInsecureHTTP: allowInsecureHTTP)
        return (test.steps[index], result)
    }
}
