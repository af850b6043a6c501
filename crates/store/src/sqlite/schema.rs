//! The SQLite schema, as an ordered list of migrations.
//!
//! Version N is the N-th entry. Each runs in its own transaction together with
//! the row that records it, so a crash mid-migration leaves the previous
//! version intact. Entries are never edited once released; changes are new
//! entries.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::StoreError;

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "tenants and detections",
        "
    CREATE TABLE tenants (
        tenant_key    INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        name          TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'deleted')),
        created_ticks INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX tenants_by_name ON tenants (name COLLATE NOCASE);

    CREATE TABLE tenant_domains (
        domain     TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
        tenant_key INTEGER NOT NULL REFERENCES tenants (tenant_key)
    );

    -- processed: LastProcessedTimeUtc in 100 ns ticks since the Unix epoch.
    -- machine_group is lower-cased; the tag columns read ';tag1;tag2;'.
    -- body is the rendered JSON object, written once and served as stored.
    CREATE TABLE detections (
        tenant_key    INTEGER NOT NULL REFERENCES tenants (tenant_key),
        full_id       TEXT NOT NULL,
        processed     INTEGER NOT NULL,
        machine_group TEXT NOT NULL,
        device_tags   TEXT NOT NULL,
        cloud_tags    TEXT NOT NULL,
        body          BLOB NOT NULL,
        UNIQUE (tenant_key, full_id)
    );
    CREATE INDEX detections_by_window ON detections (tenant_key, processed, full_id);

    -- last_processed: the newest LastProcessedTimeUtc handed out, so that the
    -- next one is later even after a restart or a wall clock stepping back.
    CREATE TABLE store_meta (
        key   TEXT NOT NULL PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO store_meta (key, value) VALUES ('last_processed', 0);
    ",
    ),
    (
        "apps, users and signing keys",
        "
    CREATE TABLE apps (
        app_key       INTEGER PRIMARY KEY,
        client_id     TEXT NOT NULL UNIQUE,
        tenant_key    INTEGER NOT NULL REFERENCES tenants (tenant_key),
        name          TEXT NOT NULL,
        created_ticks INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX apps_by_name ON apps (tenant_key, name COLLATE NOCASE);

    CREATE TABLE app_roles (
        app_key INTEGER NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        role    TEXT NOT NULL,
        PRIMARY KEY (app_key, role)
    );

    CREATE TABLE app_redirect_uris (
        app_key INTEGER NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        uri     TEXT NOT NULL,
        PRIMARY KEY (app_key, uri)
    );

    -- hash: SHA-256 of the secret; the secret itself is never stored.
    CREATE TABLE app_secrets (
        secret_id     TEXT NOT NULL PRIMARY KEY,
        app_key       INTEGER NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        hash          BLOB NOT NULL,
        hint          TEXT NOT NULL,
        created_ticks INTEGER NOT NULL,
        expires_ticks INTEGER NOT NULL
    );
    CREATE INDEX app_secrets_by_app ON app_secrets (app_key);

    -- password_hash: an argon2id PHC string.
    CREATE TABLE users (
        user_key      INTEGER PRIMARY KEY,
        user_id       TEXT NOT NULL UNIQUE,
        tenant_key    INTEGER NOT NULL REFERENCES tenants (tenant_key),
        username      TEXT NOT NULL,
        display_name  TEXT NOT NULL,
        password_hash BLOB NOT NULL,
        created_ticks INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX users_by_name ON users (tenant_key, username COLLATE NOCASE);

    -- retired_ticks: when a newer key took over; NULL for the signing key.
    CREATE TABLE signing_keys (
        kid           TEXT NOT NULL PRIMARY KEY,
        pkcs8         BLOB NOT NULL,
        created_ticks INTEGER NOT NULL,
        retired_ticks INTEGER
    );
    ",
    ),
    (
        "authorization codes and refresh tokens",
        "
    -- code_hash: SHA-256 of the code; the code itself is never stored. A
    -- redeemed code is kept, marked, until it expires, so that a second
    -- redemption is told apart from a code that never existed.
    CREATE TABLE auth_codes (
        code_hash        BLOB NOT NULL PRIMARY KEY,
        app_key          INTEGER NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        user_key         INTEGER NOT NULL REFERENCES users (user_key) ON DELETE CASCADE,
        redirect_uri     TEXT NOT NULL,
        scope            TEXT NOT NULL,
        resource         TEXT NOT NULL,
        nonce            TEXT,
        code_challenge   TEXT,
        challenge_method TEXT,
        issued_ticks     INTEGER NOT NULL,
        expires_ticks    INTEGER NOT NULL,
        redeemed         INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX auth_codes_by_expiry ON auth_codes (expires_ticks);

    -- Removing the app or the user removes its refresh tokens: revocation.
    CREATE TABLE refresh_tokens (
        token_hash    BLOB NOT NULL PRIMARY KEY,
        app_key       INTEGER NOT NULL REFERENCES apps (app_key) ON DELETE CASCADE,
        user_key      INTEGER NOT NULL REFERENCES users (user_key) ON DELETE CASCADE,
        scope         TEXT NOT NULL,
        resource      TEXT NOT NULL,
        issued_ticks  INTEGER NOT NULL,
        expires_ticks INTEGER NOT NULL
    );
    CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_key);
    CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_ticks);
    ",
    ),
    (
        "detections by alert and by device",
        "
    -- Copies of the body's AlertId and DeviceID, for the portal pages. The
    -- body is a BLOB, which json_extract would read as JSONB, hence the cast.
    ALTER TABLE detections ADD COLUMN alert_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE detections ADD COLUMN device_id TEXT NOT NULL DEFAULT '';
    UPDATE detections SET
        alert_id  = coalesce(json_extract(CAST(body AS TEXT), '$.AlertId'), ''),
        device_id = coalesce(json_extract(CAST(body AS TEXT), '$.DeviceID'), '');
    CREATE INDEX detections_by_alert ON detections (tenant_key, alert_id);
    CREATE INDEX detections_by_device ON detections (tenant_key, device_id, processed);
    ",
    ),
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to the current version; refuses one that is newer.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     INTEGER PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )",
    )?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx
            .query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0))
            .optional()?
            .flatten()
            .unwrap_or(0);
        if found > current_version() {
            return Err(StoreError::SchemaTooNew { found, known: current_version() });
        }
        let Some((description, sql)) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES (?1, ?2)",
            (found + 1, description),
        )?;
        tx.commit()?;
        tracing::info!(version = found + 1, description, "applied store migration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as a siemgate of schema version 3 left it, with one detection.
    fn version_3_with_a_detection() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT)",
        )
        .unwrap();
        for (i, (description, sql)) in MIGRATIONS[..3].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (?1, ?2)",
                (i as i64 + 1, description),
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO tenants VALUES (1, 't', 't', 'active', 0);
             INSERT INTO detections VALUES (1, 'da1_1:x', 5, '', ';', ';',
                 CAST('{\"AlertId\":\"da1_1\",\"AlertPart\":0,\"DeviceID\":\"ab12\"}' AS BLOB));",
        )
        .unwrap();
        conn
    }

    #[test]
    fn version_4_fills_alert_and_device_of_existing_detections() {
        let mut conn = version_3_with_a_detection();
        migrate(&mut conn).unwrap();
        let (alert, device): (String, String) = conn
            .query_row("SELECT alert_id, device_id FROM detections", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((alert.as_str(), device.as_str()), ("da1_1", "ab12"));
        let version: i64 =
            conn.query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!(version, current_version());
    }
}
