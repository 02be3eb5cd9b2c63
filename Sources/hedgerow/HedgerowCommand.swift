import ArgumentParser
import Foundation
import HedgerowAPI
import HedgerowConsole
import HedgerowCore
import HedgerowExport
import HedgerowRuntime
import HedgerowServer
import HedgerowStore
import Logging

@main
struct Hedgerow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hedgerow",
        abstract: "A PostHog-compatible server for organizations, projects, API keys and batch exports.",
        subcommands: [Serve.self, Worker.self, Migrate.self, Users.self, Keys.self, Members.self])
}

/// Reads the configuration from the environment and sets up logging to standard error.
func loadConfiguration() throws -> (HedgerowConfiguration, Logger) {
    let configuration = try HedgerowConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = configuration.logLevel
        return handler
    }
    var logger = Logger(label: "hedgerow")
    logger.logLevel = configuration.logLevel
    return (configuration, logger)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the API server.")

    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on.") var port: Int = 8000

    func run() async throws {
        var (configuration, logger) = try loadConfiguration()
        configuration.host = host
        configuration.port = port
        // Migrate before any service starts, so that the engine never sees an old schema.
        try await withDatabase(configuration, logger: logger) { _ in }
        let database = try await configuration.openDatabase(logger: logger)
        let dataDirectory = configuration.dataDirectory
        let app = try buildApplication(configuration: configuration, database: database, logger: logger, modules: [Console()]) {
            result in
            let path = try BootstrapService.writeKeyFile(result.key, dataDirectory: dataDirectory)
            let passwordPath = try BootstrapService.writeSecretFile(
                result.password, named: "initial-admin-password", dataDirectory: dataDirectory)
            let message =
                """
                Created user \(result.email) and "Default organization" (\(result.organizationID)).
                Personal API key (shown once, also written to \(path)):
                \(result.key)
                Try: curl -H "Authorization: Bearer \(result.key)" http://\(host):\(port)/api/organizations/
                Console: http://\(host):\(port)/ — sign in as \(result.email) with the password (shown once, also written to \(passwordPath)):
                \(result.password)

                """
            FileHandle.standardOutput.write(Data(message.utf8))
        }
        try await app.run()
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run export workers only (no API, no scheduler): claims and executes runs from the shared database.")

    func run() async throws {
        var (configuration, logger) = try loadConfiguration()
        configuration.engine.schedules = false
        try await withDatabase(configuration, logger: logger) { _ in }
        let database = try await configuration.openDatabase(logger: logger)
        try await runWorker(configuration: configuration, database: database, logger: logger)
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations and exit.")

    func run() async throws {
        let (configuration, logger) = try loadConfiguration()
        try await withDatabase(configuration, logger: logger) { _ in }
        print("Database is up to date.")
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage users.", subcommands: [Create.self, SetPassword.self])

    /// Where a command's password comes from: `--password`, standard input or a prompt.
    struct PasswordSource: ParsableArguments {
        @Option(help: "A password (visible in the process list: prefer --password-stdin or --prompt-password).") var password: String?
        @Flag(name: .customLong("password-stdin"), help: "Read the password from the first line of standard input.")
        var passwordFromStandardInput = false
        @Flag(name: .customLong("prompt-password"), help: "Ask for the password on the terminal, without echo.")
        var promptForPassword = false

        func validate() throws {
            if [password != nil, passwordFromStandardInput, promptForPassword].filter({ $0 }).count > 1 {
                throw ValidationError("Give at most one of --password, --password-stdin and --prompt-password.")
            }
        }

        func read(for email: String) throws -> String? {
            if passwordFromStandardInput {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError("--password-stdin: standard input holds no password.")
                }
                return line
            }
            if promptForPassword { return try PasswordPrompt.read("Password for \(email): ") }
            return password
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password", abstract: "Set a user's console password (at least 8 characters); signs them out everywhere.")
        @Option(help: "The user's email address.") var email: String
        @OptionGroup var source: PasswordSource

        func run() async throws {
            let (configuration, logger) = try loadConfiguration()
            guard let password = try source.read(for: email) else {
                throw ValidationError("Give the password with --password-stdin, --prompt-password or --password.")
            }
            let user = try await withDatabase(configuration, logger: logger) { database in
                try await SignInService(database: database, failures: nil).setPassword(email: email, password: password)
            }
            print("Password set for \(user.email)")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user.")
        @Option(help: "The user's email address.") var email: String
        @OptionGroup var source: PasswordSource
        @Option(name: .customLong("first-name"), help: "First name.") var firstName: String = ""

        func run() async throws {
            let (configuration, logger) = try loadConfiguration()
            // Without a password the user cannot sign in to the console until `users set-password`.
            let password = try source.read(for: email)
            let user = try await withDatabase(configuration, logger: logger) { [password] database in
                try await AccountService(database: database).createUser(email: email, password: password, firstName: firstName)
            }
            print("Created user \(user.email) (\(user.uuid))")
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage personal API keys.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a personal API key and print it (alone on its line; it is shown only once).")
        @Option(help: "The owner's email address.") var email: String
        @Option(help: "A label (at most 40 characters).") var label: String = "CLI"
        @Option(help: "Comma-separated scopes, e.g. organization:read,batch_export:write. \"\" makes an unscoped (full access) key.")
        var scopes: String = "*"
        @Option(name: .customLong("scoped-organizations"), help: "Comma-separated organization ids the key is limited to.")
        var scopedOrganizations: String?
        @Option(name: .customLong("scoped-teams"), help: "Comma-separated environment ids the key is limited to.")
        var scopedTeams: String?

        func run() async throws {
            let (configuration, logger) = try loadConfiguration()
            let scopeList = splitList(scopes)
            let organizations = scopedOrganizations.map(splitList)
            let teams = try scopedTeams.map { text in
                try splitList(text).map { item -> Int64 in
                    guard let id = Int64(item) else { throw ValidationError("'\(item)' is not an environment id") }
                    return id
                }
            }
            let value = try await withDatabase(configuration, logger: logger) { database in
                try await AccountService(database: database).createKey(
                    email: email, label: label, scopes: scopeList, scopedOrganizations: organizations, scopedTeams: teams)
            }
            print(value)
        }
    }
}

struct Members: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage organization members.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an existing user to an organization (or change their level).")
        @Option(help: "The organization's id.") var organization: String
        @Option(help: "The user's email address.") var email: String
        @Option(help: "1 member, 8 admin, 15 owner.") var level: Int = 1

        func run() async throws {
            guard let membershipLevel = MembershipLevel(rawValue: level) else {
                throw ValidationError("--level must be 1 (member), 8 (admin) or 15 (owner)")
            }
            let (configuration, logger) = try loadConfiguration()
            try await withDatabase(configuration, logger: logger) { database in
                try await AccountService(database: database).addMember(
                    organizationID: organization, email: email, level: membershipLevel)
            }
            print("\(email) is now level \(level) in \(organization)")
        }
    }
}

func splitList(_ text: String) -> [String] {
    text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}
