//! The PostgreSQL schema, as an ordered list of migrations, and the rule that
//! lets several replicas start against one database at the same moment.
//!
//! Each migration runs in its own transaction that first takes a
//! transaction-scoped advisory lock: a second process starting at the same
//! time waits on the lock, then finds the version already recorded and does
//! nothing. DDL is transactional in PostgreSQL, so a crash mid-migration
//! leaves the previous version intact. Entries are never edited once
//! released; changes are new entries.
//!
//! The data model is the SQLite one: times are 100 ns ticks since the Unix
//! epoch in `bigint` (a `timestamptz` keeps only microseconds, and
//! `LastProcessedTimeUtc` must round-trip all seven digits), ids that order
//! output are `COLLATE "C"` so they sort byte-wise as in SQLite, and names
//! compared without regard to case have unique indexes on `lower(...)`.

use deadpool_postgres::Client;

use crate::StoreError;

/// The advisory lock key that serialises migrations: "siemgate" in ASCII.
const MIGRATION_LOCK: i64 = 0x7369_656d_6761_7465;

const MIGRATIONS: &[(&str, &str)] = &[(
    "tenants, detections, apps, users, grants and signing keys",
    r#"
    CREATE TABLE tenants (
        tenant_key    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id            uuid NOT NULL UNIQUE,
        name          text NOT NULL,
        state         text NOT NULL CHECK (state IN ('active', 'disabled', 'deleted')),
        created_ticks bigint NOT NULL
    );
    CREATE UNIQUE INDEX tenants_by_name ON tenants (lower(name));

    -- domain_key keeps the domains in the order they were given.
    CREATE TABLE tenant_domains (
        domain_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        domain     text NOT NULL,
        tenant_key bigint NOT NULL REFERENCES tenants (tenant_key)
    );
    CREATE UNIQUE INDEX tenant_domains_by_domain ON tenant_domains (lower(domain));

    -- processed: LastProcessedTimeUtc in 100 ns ticks since the Unix epoch.
    -- machine_group is lower-cased; the tag columns read ';tag1;tag2;'.
    -- body is the rendered JSON object, written once and served as stored.
    -- alert_id and device_id are copies of the body's, for the portal pages.
    CREATE TABLE detections (
        tenant_key    bigint NOT NULL REFERENCES tenants (tenant_key),
        full_id       text COLLATE "C" NOT NULL,
        processed     bigint NOT NULL,
        machine_group text NOT NULL,
        device_tags   text NOT NULL,
        cloud_tags    text NOT NULL,
        alert_id      text COLLATE "C" NOT NULL,
        device_id     text NOT NULL,
        body          bytea NOT NULL,
        PRIMARY KEY (tenant_key, full_id)
    );
    CREATE INDEX detections_by_window ON detections (tenant_key, processed, full_id);
    CREATE INDEX detections_by_alert ON detections (tenant_key, alert_id);
    CREATE INDEX detections_by_device ON detections (tenant_key, device_id, processed);

    -- One row: the newest LastProcessedTimeUtc handed out. Every ingest
    -- locks it until commit; see the module documentation of `postgres`.
    CREATE TABLE store_meta (
        only_row       boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        last_processed bigint NOT NULL
    );
    INSERT INTO store_meta (last_processed) VALUES (0);

    CREATE TABLE apps (
        app_key       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        client_id     uuid NOT NULL UNIQUE,
        tenant_key    bigint NOT NULL REFERENCES tenants (tenant_key),
        name          text NOT NULL,
        created_ticks bigint NOT NULL
    );
    CREATE UNIQUE INDEX apps_by_name ON apps (tenant_key, lower(name));

    CREATE TABLE app_roles (
        app_key bigint NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        role    text COLLATE "C" NOT NULL,
        PRIMARY KEY (app_key, role)
    );

    CREATE TABLE app_redirect_uris (
        uri_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        app_key bigint NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        uri     text NOT NULL,
        UNIQUE (app_key, uri)
    );

    -- hash: SHA-256 of the secret; the secret itself is never stored.
    CREATE TABLE app_secrets (
        secret_key    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        secret_id     uuid NOT NULL UNIQUE,
        app_key       bigint NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        hash          bytea NOT NULL,
        hint          text NOT NULL,
        created_ticks bigint NOT NULL,
        expires_ticks bigint NOT NULL
    );
    CREATE INDEX app_secrets_by_app ON app_secrets (app_key);

    -- password_hash: an argon2id PHC string.
    CREATE TABLE users (
        user_key      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id       uuid NOT NULL UNIQUE,
        tenant_key    bigint NOT NULL REFERENCES tenants (tenant_key),
        username      text NOT NULL,
        display_name  text NOT NULL,
        password_hash bytea NOT NULL,
        created_ticks bigint NOT NULL
    );
    CREATE UNIQUE INDEX users_by_name ON users (tenant_key, lower(username));

    -- retired_ticks: when a newer key took over; NULL for the signing key.
    CREATE TABLE signing_keys (
        kid           text NOT NULL PRIMARY KEY,
        pkcs8         bytea NOT NULL,
        created_ticks bigint NOT NULL,
        retired_ticks bigint
    );

    -- code_hash: SHA-256 of the code; the code itself is never stored. A
    -- redeemed code is kept, marked, until it expires, so that a second
    -- redemption is told apart from a code that never existed.
    CREATE TABLE auth_codes (
        code_hash        bytea NOT NULL PRIMARY KEY,
        app_key          bigint NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        user_key         bigint NOT NULL REFERENCES users (user_key) ON DELETE CASCADE,
        redirect_uri     text NOT NULL,
        scope            text NOT NULL,
        resource         text NOT NULL,
        nonce            text,
        code_challenge   text,
        challenge_method text,
        issued_ticks     bigint NOT NULL,
        expires_ticks    bigint NOT NULL,
        redeemed         boolean NOT NULL DEFAULT false
    );
    CREATE INDEX auth_codes_by_expiry ON auth_codes (expires_ticks);

    -- Removing the app or the user removes its refresh tokens: revocation.
    CREATE TABLE refresh_tokens (
        token_hash    bytea NOT NULL PRIMARY KEY,
        app_key       bigint NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        user_key      bigint NOT NULL REFERENCES users (user_key) ON DELETE CASCADE,
        scope         text NOT NULL,
        resource      text NOT NULL,
        issued_ticks  bigint NOT NULL,
        expires_ticks bigint NOT NULL
    );
    CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_key);
    CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_ticks);
    "#,
)];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to the current version; refuses one that is newer.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    loop {
        let tx = client.transaction().await?;
        // Held until this transaction ends; a second process waits here
        // and then sees the version this one recorded.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version     bigint PRIMARY KEY,
                description text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
        let found: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])
            .await?
            .get(0);
        if found > current_version() {
            return Err(StoreError::SchemaTooNew { found, known: current_version() });
        }
        let Some((description, sql)) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[&(found + 1), description],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version = found + 1, description, "applied store migration");
    }
}
