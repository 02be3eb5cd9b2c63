import HedgerowCore

/// One forward-only schema step. The same SQL serves SQLite and PostgreSQL: integers are BIGINT,
/// timestamps BIGINT microseconds since the epoch, UUIDs and JSON documents TEXT, flags BOOLEAN.
/// Integer ids come from the `id_sequences` table, so no dialect-specific auto-increment is needed.
package struct Migration: Sendable {
    package let version: Int
    package let name: String
    package let statements: [String]
    /// Statements for PostgreSQL where they differ (JSONB columns); nil when `statements` serve both.
    let postgresStatements: [String]?

    package init(version: Int, name: String, statements: [String], postgres: [String]? = nil) {
        self.version = version
        self.name = name
        self.statements = statements
        self.postgresStatements = postgres
    }

    func statements(for dialect: SQLDialect) -> [String] {
        dialect == .postgres ? postgresStatements ?? statements : statements
    }
}

/// Every migration, in order; a database applies those it has not seen (`Migrator`).
enum Migrations {
    static let all: [Migration] = [
        Migration(
            version: 1, name: "organizations, users, projects, environments, personal API keys",
            statements: [
                """
                CREATE TABLE id_sequences (
                    name TEXT PRIMARY KEY,
                    value BIGINT NOT NULL
                )
                """,
                "INSERT INTO id_sequences (name, value) VALUES ('user', 0), ('team', 0)",
                """
                CREATE TABLE organizations (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    slug TEXT NOT NULL UNIQUE,
                    logo_media_id TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    is_member_join_email_enabled BOOLEAN NOT NULL,
                    enforce_2fa BOOLEAN,
                    members_can_invite BOOLEAN NOT NULL,
                    members_can_use_personal_api_keys BOOLEAN NOT NULL,
                    allow_publicly_shared_resources BOOLEAN NOT NULL,
                    is_ai_data_processing_approved BOOLEAN,
                    default_experiment_stats_method TEXT,
                    default_role_id TEXT,
                    environments_rollback_requested_at BIGINT
                )
                """,
                "CREATE INDEX organizations_created_at ON organizations (created_at, id)",
                """
                CREATE TABLE users (
                    id BIGINT PRIMARY KEY,
                    uuid TEXT NOT NULL UNIQUE,
                    email TEXT NOT NULL UNIQUE,
                    first_name TEXT NOT NULL,
                    last_name TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    is_active BOOLEAN NOT NULL,
                    current_organization_id TEXT REFERENCES organizations (id) ON DELETE SET NULL,
                    current_team_id BIGINT,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE organization_memberships (
                    id TEXT PRIMARY KEY,
                    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    level BIGINT NOT NULL,
                    joined_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    UNIQUE (organization_id, user_id)
                )
                """,
                "CREATE INDEX organization_memberships_user ON organization_memberships (user_id)",
                """
                CREATE TABLE projects (
                    id BIGINT PRIMARY KEY,
                    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX projects_organization ON projects (organization_id)",
                """
                CREATE TABLE teams (
                    id BIGINT PRIMARY KEY,
                    uuid TEXT NOT NULL UNIQUE,
                    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    api_token TEXT NOT NULL UNIQUE,
                    timezone TEXT NOT NULL,
                    ingested_event BOOLEAN NOT NULL,
                    completed_snippet_onboarding BOOLEAN NOT NULL,
                    is_demo BOOLEAN NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX teams_organization ON teams (organization_id)",
                "CREATE INDEX teams_project ON teams (project_id)",
                """
                CREATE TABLE personal_api_keys (
                    id TEXT PRIMARY KEY,
                    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    label TEXT NOT NULL,
                    secure_value TEXT NOT NULL UNIQUE,
                    mask_value TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    scoped_teams TEXT,
                    scoped_organizations TEXT,
                    created_at BIGINT NOT NULL,
                    last_used_at BIGINT
                )
                """,
                "CREATE INDEX personal_api_keys_user ON personal_api_keys (user_id)",
            ]),
        Migration(
            version: 2, name: "personal API key rolling",
            statements: ["ALTER TABLE personal_api_keys ADD COLUMN last_rolled_at BIGINT"]),
        Migration(
            version: 3, name: "captured events",
            statements: eventsTable(json: "TEXT"),
            postgres: eventsTable(json: "JSONB")),
        Migration(
            version: 4, name: "persons",
            statements: [
                """
                CREATE TABLE persons (
                    team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                    distinct_id TEXT NOT NULL,
                    uuid TEXT NOT NULL,
                    properties TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (team_id, distinct_id)
                )
                """
            ]),
        Migration(
            version: 5, name: "batch exports, runs, backfills, logs",
            statements: [
                """
                CREATE TABLE batch_exports (
                    id TEXT PRIMARY KEY,
                    team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    model TEXT NOT NULL,
                    destination_type TEXT NOT NULL,
                    destination_config TEXT NOT NULL,
                    destination_secrets TEXT,
                    interval TEXT NOT NULL,
                    paused BOOLEAN NOT NULL,
                    deleted BOOLEAN NOT NULL,
                    created_at BIGINT NOT NULL,
                    last_updated_at BIGINT NOT NULL,
                    last_paused_at BIGINT,
                    start_at BIGINT,
                    end_at BIGINT,
                    hogql_query TEXT,
                    filters TEXT,
                    timezone TEXT NOT NULL,
                    offset_day BIGINT,
                    offset_hour BIGINT,
                    scheduled_through BIGINT
                )
                """,
                "CREATE INDEX batch_exports_team ON batch_exports (team_id, created_at)",
                """
                CREATE TABLE batch_export_backfills (
                    id TEXT PRIMARY KEY,
                    batch_export_id TEXT NOT NULL REFERENCES batch_exports (id) ON DELETE CASCADE,
                    start_at BIGINT,
                    end_at BIGINT,
                    adjusted_start_at BIGINT,
                    status TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    finished_at BIGINT,
                    last_updated_at BIGINT NOT NULL,
                    total_records_count BIGINT,
                    total_runs BIGINT
                )
                """,
                "CREATE INDEX batch_export_backfills_export ON batch_export_backfills (batch_export_id, created_at)",
                """
                CREATE TABLE batch_export_runs (
                    id TEXT PRIMARY KEY,
                    batch_export_id TEXT NOT NULL REFERENCES batch_exports (id) ON DELETE CASCADE,
                    backfill_id TEXT REFERENCES batch_export_backfills (id) ON DELETE CASCADE,
                    status TEXT NOT NULL,
                    records_completed BIGINT,
                    records_total_count BIGINT,
                    bytes_exported BIGINT,
                    latest_error TEXT,
                    data_interval_start BIGINT,
                    data_interval_end BIGINT NOT NULL,
                    cursor TEXT,
                    created_at BIGINT NOT NULL,
                    finished_at BIGINT,
                    last_updated_at BIGINT NOT NULL,
                    attempt BIGINT NOT NULL,
                    next_attempt_at BIGINT,
                    lease_owner TEXT,
                    lease_expires_at BIGINT
                )
                """,
                // One scheduled run per tick, whatever the number of schedulers.
                """
                CREATE UNIQUE INDEX batch_export_runs_scheduled ON batch_export_runs (batch_export_id, data_interval_end)
                WHERE backfill_id IS NULL
                """,
                "CREATE INDEX batch_export_runs_export ON batch_export_runs (batch_export_id, created_at)",
                "CREATE INDEX batch_export_runs_queue ON batch_export_runs (status, next_attempt_at)",
                """
                CREATE TABLE batch_export_logs (
                    id TEXT PRIMARY KEY,
                    batch_export_id TEXT NOT NULL REFERENCES batch_exports (id) ON DELETE CASCADE,
                    run_id TEXT,
                    level TEXT NOT NULL,
                    message TEXT NOT NULL,
                    timestamp BIGINT NOT NULL
                )
                """,
                "CREATE INDEX batch_export_logs_export ON batch_export_logs (batch_export_id, timestamp)",
            ]),
        Migration(
            version: 6, name: "auto-pause alerts",
            statements: ["ALTER TABLE batch_exports ADD COLUMN last_alerted_at BIGINT"]),
        Migration(
            version: 7, name: "run retry deadline",
            statements: ["ALTER TABLE batch_export_runs ADD COLUMN first_attempt_at BIGINT"]),
        Migration(
            version: 8, name: "backfill frontier index",
            statements: [
                """
                CREATE INDEX batch_export_runs_unfinished ON batch_export_runs (backfill_id, data_interval_end)
                WHERE status IN ('Starting', 'Running', 'FailedRetryable')
                """
            ]),
        Migration(
            version: 9, name: "persons with merged distinct ids, sessions",
            statements: personsAndSessions),
        Migration(
            version: 10, name: "integrations",
            statements: [
                """
                CREATE TABLE integrations (
                    id BIGINT PRIMARY KEY,
                    team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,
                    config TEXT NOT NULL,
                    sensitive_config TEXT,
                    errors TEXT,
                    created_at BIGINT NOT NULL,
                    created_by_id BIGINT
                )
                """,
                "CREATE INDEX integrations_team ON integrations (team_id, id)",
                "INSERT INTO id_sequences (name, value) VALUES ('integration', 0)",
            ]),
        Migration(
            version: 11, name: "console sign-in sessions, organization invites",
            statements: [
                """
                CREATE TABLE login_sessions (
                    token_hash TEXT PRIMARY KEY,
                    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    csrf_token TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX login_sessions_user ON login_sessions (user_id)",
                """
                CREATE TABLE organization_invites (
                    id TEXT PRIMARY KEY,
                    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                    target_email TEXT NOT NULL,
                    first_name TEXT NOT NULL,
                    level INTEGER NOT NULL,
                    message TEXT,
                    emailing_attempt_made BOOLEAN NOT NULL,
                    created_by_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX organization_invites_organization ON organization_invites (organization_id, created_at)",
            ]),
        Migration(
            version: 12, name: "credentials generation",
            statements: [
                "CREATE TABLE credentials_generation (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO credentials_generation (id, value) VALUES (1, 0)",
            ]),
        Migration(
            version: 13, name: "organization details generation (SQLite)", statements: DetailsGeneration.sqliteSchema, postgres: []),
        Migration(
            version: 14, name: "attempts abandoned by a dying process",
            statements: ["ALTER TABLE batch_export_runs ADD COLUMN abandoned_attempts BIGINT NOT NULL DEFAULT 0"]),
        Migration(
            version: 15, name: "when the scheduler next looks at an export",
            statements: [
                "ALTER TABLE batch_exports ADD COLUMN next_schedule_at BIGINT",
                "CREATE INDEX batch_exports_next_schedule ON batch_exports (next_schedule_at)",
            ]),
    ]

    /// Persons become one row per person with a version, and distinct ids rows of their own that
    /// point at a person (with a version that grows when the id moves to another person); the old
    /// one-person-per-distinct-id rows are carried over as they were. Sessions keep their aggregate
    /// state as a JSON document beside the columns runs select on. `updated_at` is the capture time
    /// of a row's latest version; a distinct id's `row_updated_at` is the later of its own and its
    /// person's, the time its row of the persons export last changed (exports select on it).
    static let personsAndSessions: [String] = [
        "CREATE TABLE persons_before_9 AS SELECT team_id, distinct_id, uuid, properties, created_at, updated_at FROM persons",
        "DROP TABLE persons",
        """
        CREATE TABLE persons (
            team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
            uuid TEXT NOT NULL,
            properties TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            is_identified BOOLEAN NOT NULL,
            is_deleted BOOLEAN NOT NULL,
            version BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (team_id, uuid)
        )
        """,
        "CREATE INDEX persons_team_updated_at ON persons (team_id, updated_at, uuid)",
        "CREATE INDEX persons_team_created_at ON persons (team_id, created_at, uuid)",
        """
        CREATE TABLE person_distinct_ids (
            team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
            distinct_id TEXT NOT NULL,
            person_uuid TEXT NOT NULL,
            version BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            row_updated_at BIGINT NOT NULL,
            PRIMARY KEY (team_id, distinct_id)
        )
        """,
        "CREATE INDEX person_distinct_ids_person ON person_distinct_ids (team_id, person_uuid)",
        // Covering: the persons export reads the mapping from the index alone.
        """
        CREATE INDEX person_distinct_ids_row_updated_at
        ON person_distinct_ids (team_id, row_updated_at, distinct_id, person_uuid, version)
        """,
        """
        INSERT INTO persons (team_id, uuid, properties, created_at, is_identified, is_deleted, version, updated_at)
        SELECT team_id, uuid, properties, created_at, FALSE, FALSE, 0, updated_at FROM persons_before_9
        """,
        """
        INSERT INTO person_distinct_ids (team_id, distinct_id, person_uuid, version, updated_at, row_updated_at)
        SELECT team_id, distinct_id, uuid, 0, updated_at, updated_at FROM persons_before_9
        """,
        "DROP TABLE persons_before_9",
        """
        CREATE TABLE sessions (
            team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
            session_id TEXT NOT NULL,
            start_timestamp BIGINT NOT NULL,
            end_timestamp BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (team_id, session_id)
        )
        """,
        "CREATE INDEX sessions_team_updated_at ON sessions (team_id, updated_at, session_id)",
        "CREATE INDEX sessions_team_end_timestamp ON sessions (team_id, end_timestamp, session_id)",
    ]

    /// Events: properties as JSON (JSONB on PostgreSQL, for the filter operators), times in
    /// microseconds, one row per `(team_id, uuid)` so a retried capture stores nothing twice.
    static func eventsTable(json: String) -> [String] {
        [
            """
            CREATE TABLE events (
                team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                uuid TEXT NOT NULL,
                event TEXT NOT NULL,
                distinct_id TEXT NOT NULL,
                properties \(json) NOT NULL,
                person_id TEXT,
                person_properties \(json),
                elements_chain TEXT,
                timestamp BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                inserted_at BIGINT NOT NULL,
                PRIMARY KEY (team_id, uuid)
            )
            """,
            "CREATE INDEX events_team_inserted_at ON events (team_id, inserted_at, uuid)",
            "CREATE INDEX events_team_timestamp ON events (team_id, timestamp, uuid)",
        ]
    }
}

/// Applies the migrations a database has not seen yet, each in its own transaction.
package struct Migrator: Sendable {
    package let database: any Database

    package init(database: any Database) { self.database = database }

    /// Returns the versions applied by this call.
    @discardableResult
    package func migrate() async throws -> [Int] {
        try await database.transaction { connection in
            if connection.dialect == .postgres {
                // Concurrent CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL: several
                // processes (or services) starting at once take turns here.
                try await connection.execute("SELECT pg_advisory_xact_lock(4805162022)")
            }
            try await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
        }
        var applied: [Int] = []
        for migration in Migrations.all {
            let didApply = try await database.transaction { connection -> Bool in
                if connection.dialect == .postgres {
                    // Serialises concurrent migrators (several processes starting at once).
                    try await connection.execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                }
                let existing = try await connection.first(
                    "SELECT version FROM schema_migrations WHERE version = $1", [.int(Int64(migration.version))])
                guard existing == nil else { return false }
                for statement in migration.statements(for: connection.dialect) { try await connection.execute(statement) }
                try await connection.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    [.int(Int64(migration.version)), .text(migration.name), .int(Timestamp.now().microseconds)])
                return true
            }
            if didApply { applied.append(migration.version) }
        }
        return applied
    }
}
