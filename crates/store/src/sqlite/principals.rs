//! Apps, users and signing keys in SQLite: the queries behind the `Store`
//! methods of the same names. Each function runs on a connection or inside a
//! transaction its caller holds.

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use siemgate_model::Timestamp;
use uuid::Uuid;

use crate::{App, AppSecret, NewApp, Sealed, StoreError, StoredKey, User};

pub(super) fn uuid(text: String) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&text).map_err(|e| StoreError::Worker(format!("bad id {text} in store: {e}")))
}

fn time(ticks: i64) -> Timestamp {
    Timestamp::from_unix_ticks(ticks)
}

/// True when `e` is a UNIQUE or PRIMARY KEY violation.
fn is_conflict(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

pub(super) fn app_key(conn: &Connection, client_id: Uuid) -> Result<i64, StoreError> {
    conn.query_row("SELECT app_key FROM apps WHERE client_id = ?1", [client_id.to_string()], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError::UnknownApp(client_id.to_string()))
}

pub(super) fn user_key(conn: &Connection, user: Uuid) -> Result<i64, StoreError> {
    conn.query_row("SELECT user_key FROM users WHERE user_id = ?1", [user.to_string()], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError::UnknownUser(user.to_string()))
}

pub(super) fn load_app(conn: &Connection, client_id: Uuid) -> Result<Option<App>, StoreError> {
    let row = conn
        .query_row(
            "SELECT a.app_key, t.id, a.name, a.created_ticks
             FROM apps a JOIN tenants t ON t.tenant_key = a.tenant_key
             WHERE a.client_id = ?1",
            [client_id.to_string()],
            |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((key, tenant, name, created)) = row else {
        return Ok(None);
    };
    let strings = |sql: &str| -> Result<Vec<String>, StoreError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([key], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let roles = strings("SELECT role FROM app_roles WHERE app_key = ?1 ORDER BY role")?;
    let redirect_uris =
        strings("SELECT uri FROM app_redirect_uris WHERE app_key = ?1 ORDER BY rowid")?;
    let mut stmt = conn.prepare_cached(
        "SELECT secret_id, hash, hint, created_ticks, expires_ticks FROM app_secrets
         WHERE app_key = ?1 ORDER BY created_ticks, rowid",
    )?;
    let secrets = stmt
        .query_map([key], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .map(|row| {
            let (id, hash, hint, created, expires) = row?;
            Ok(AppSecret {
                id: uuid(id)?,
                hash: Sealed(hash),
                hint,
                created: time(created),
                expires: time(expires),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(App {
        client_id,
        tenant: uuid(tenant)?,
        name,
        roles,
        redirect_uris,
        secrets,
        created: time(created),
    }))
}

pub(super) fn create_app(
    conn: &Connection,
    tenant_key: i64,
    app: &NewApp,
) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO apps (client_id, tenant_key, name, created_ticks) VALUES (?1, ?2, ?3, ?4)",
        params![app.client_id.to_string(), tenant_key, app.name, app.secret.created.unix_ticks()],
    );
    match inserted {
        Err(e) if is_conflict(&e) => {
            return Err(StoreError::AppExists(format!(
                "an app named {:?} or with client id {}",
                app.name, app.client_id
            )));
        }
        other => other?,
    };
    let key = conn.last_insert_rowid();
    for role in &app.roles {
        set_role(conn, key, role, true)?;
    }
    for uri in &app.redirect_uris {
        conn.execute(
            "INSERT OR IGNORE INTO app_redirect_uris (app_key, uri) VALUES (?1, ?2)",
            params![key, uri],
        )?;
    }
    insert_secret(conn, key, &app.secret)
}

pub(super) fn insert_secret(
    conn: &Connection,
    app_key: i64,
    secret: &AppSecret,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO app_secrets (secret_id, app_key, hash, hint, created_ticks, expires_ticks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            secret.id.to_string(),
            app_key,
            secret.hash.0,
            secret.hint,
            secret.created.unix_ticks(),
            secret.expires.unix_ticks()
        ],
    )?;
    Ok(())
}

fn set_role(conn: &Connection, app_key: i64, role: &str, granted: bool) -> Result<(), StoreError> {
    if granted {
        conn.execute(
            "INSERT OR IGNORE INTO app_roles (app_key, role) VALUES (?1, ?2)",
            params![app_key, role],
        )?;
    } else {
        conn.execute(
            "DELETE FROM app_roles WHERE app_key = ?1 AND role = ?2",
            params![app_key, role],
        )?;
    }
    Ok(())
}

pub(super) fn app_ids(conn: &Connection, tenant_key: Option<i64>) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT client_id FROM apps WHERE ?1 IS NULL OR tenant_key = ?1 ORDER BY app_key",
    )?;
    let ids = stmt.query_map([tenant_key], |r| r.get::<_, String>(0))?;
    ids.map(|id| uuid(id?)).collect()
}

pub(super) fn remove_app(conn: &Connection, client_id: Uuid) -> Result<(), StoreError> {
    let key = app_key(conn, client_id)?;
    conn.execute("DELETE FROM apps WHERE app_key = ?1", [key])?;
    Ok(())
}

pub(super) fn add_secret(
    conn: &Connection,
    client_id: Uuid,
    secret: &AppSecret,
) -> Result<(), StoreError> {
    insert_secret(conn, app_key(conn, client_id)?, secret)
}

pub(super) fn remove_secret(
    conn: &Connection,
    client_id: Uuid,
    secret: Uuid,
) -> Result<(), StoreError> {
    let key = app_key(conn, client_id)?;
    let removed = conn.execute(
        "DELETE FROM app_secrets WHERE app_key = ?1 AND secret_id = ?2",
        params![key, secret.to_string()],
    )?;
    if removed == 0 {
        return Err(StoreError::UnknownSecret(secret.to_string()));
    }
    Ok(())
}

pub(super) fn set_app_role(
    conn: &Connection,
    client_id: Uuid,
    role: &str,
    granted: bool,
) -> Result<(), StoreError> {
    set_role(conn, app_key(conn, client_id)?, role, granted)
}

const USER_COLUMNS: &str =
    "u.user_id, t.id, u.username, u.display_name, u.password_hash, u.created_ticks";

fn user_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, Vec<u8>, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn into_user(row: (String, String, String, String, Vec<u8>, i64)) -> Result<User, StoreError> {
    let (id, tenant, username, display_name, hash, created) = row;
    Ok(User {
        id: uuid(id)?,
        tenant: uuid(tenant)?,
        username,
        display_name,
        password_hash: Sealed(hash),
        created: time(created),
    })
}

pub(super) fn create_user(
    conn: &Connection,
    tenant_key: i64,
    user: &User,
) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO users (user_id, tenant_key, username, display_name, password_hash, created_ticks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user.id.to_string(),
            tenant_key,
            user.username,
            user.display_name,
            user.password_hash.0,
            user.created.unix_ticks()
        ],
    );
    match inserted {
        Err(e) if is_conflict(&e) => Err(StoreError::UserExists(user.username.clone())),
        other => other.map(|_| ()).map_err(StoreError::from),
    }
}

pub(super) fn users(
    conn: &Connection,
    tenant_key: i64,
    username: Option<&str>,
) -> Result<Vec<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.tenant_key = u.tenant_key
         WHERE u.tenant_key = ?1 AND (?2 IS NULL OR u.username = ?2 COLLATE NOCASE)
         ORDER BY u.user_key"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![tenant_key, username], user_from_row)?;
    rows.map(|row| into_user(row?)).collect()
}

pub(super) fn remove_user(
    conn: &Connection,
    tenant_key: i64,
    username: &str,
) -> Result<(), StoreError> {
    let removed = conn.execute(
        "DELETE FROM users WHERE tenant_key = ?1 AND username = ?2 COLLATE NOCASE",
        params![tenant_key, username],
    )?;
    if removed == 0 {
        return Err(StoreError::UnknownUser(username.to_owned()));
    }
    Ok(())
}

pub(super) fn set_password(
    conn: &Connection,
    tenant_key: i64,
    username: &str,
    hash: &Sealed,
) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE users SET password_hash = ?3 WHERE tenant_key = ?1 AND username = ?2 COLLATE NOCASE",
        params![tenant_key, username, hash.0],
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownUser(username.to_owned()));
    }
    // A new password ends every sign-in made with the old one.
    conn.execute(
        "DELETE FROM refresh_tokens WHERE user_key IN
             (SELECT user_key FROM users WHERE tenant_key = ?1 AND username = ?2 COLLATE NOCASE)",
        params![tenant_key, username],
    )?;
    Ok(())
}

pub(super) fn user_by_id(conn: &Connection, id: Uuid) -> Result<Option<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.tenant_key = u.tenant_key
         WHERE u.user_id = ?1"
    );
    let row = conn.query_row(&sql, [id.to_string()], user_from_row).optional()?;
    row.map(into_user).transpose()
}

pub(super) fn signing_keys(conn: &Connection) -> Result<Vec<StoredKey>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kid, pkcs8, created_ticks, retired_ticks FROM signing_keys
         ORDER BY retired_ticks IS NULL, created_ticks",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredKey {
            kid: r.get(0)?,
            pkcs8: Sealed(r.get(1)?),
            created: time(r.get(2)?),
            retired: r.get::<_, Option<i64>>(3)?.map(time),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn rotate_key(conn: &Connection, key: &StoredKey) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE signing_keys SET retired_ticks = ?1 WHERE retired_ticks IS NULL",
        [key.created.unix_ticks()],
    )?;
    conn.execute(
        "INSERT INTO signing_keys (kid, pkcs8, created_ticks, retired_ticks) VALUES (?1, ?2, ?3, NULL)",
        params![key.kid, key.pkcs8.0, key.created.unix_ticks()],
    )?;
    Ok(())
}
