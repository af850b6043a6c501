//! Apps, users and signing keys in PostgreSQL: the queries behind the
//! `Store` methods of the same names. Each function runs on a pooled
//! connection or inside a transaction its caller holds.

use deadpool_postgres::{GenericClient, Transaction};
use siemgate_model::Timestamp;
use tokio_postgres::Row;
use uuid::Uuid;

use super::is_conflict;
use crate::{App, AppSecret, NewApp, Sealed, StoreError, StoredKey, User};

fn time(ticks: i64) -> Timestamp {
    Timestamp::from_unix_ticks(ticks)
}

pub(super) async fn app_key<C: GenericClient>(
    client: &C,
    client_id: Uuid,
) -> Result<i64, StoreError> {
    let row =
        client.query_opt("SELECT app_key FROM apps WHERE client_id = $1", &[&client_id]).await?;
    Ok(row.ok_or_else(|| StoreError::UnknownApp(client_id.to_string()))?.get(0))
}

pub(super) async fn user_key<C: GenericClient>(client: &C, user: Uuid) -> Result<i64, StoreError> {
    let row = client.query_opt("SELECT user_key FROM users WHERE user_id = $1", &[&user]).await?;
    Ok(row.ok_or_else(|| StoreError::UnknownUser(user.to_string()))?.get(0))
}

pub(super) async fn load_app<C: GenericClient>(
    client: &C,
    client_id: Uuid,
) -> Result<Option<App>, StoreError> {
    let row = client
        .query_opt(
            "SELECT a.app_key, t.id, a.name, a.created_ticks
             FROM apps a JOIN tenants t ON t.tenant_key = a.tenant_key
             WHERE a.client_id = $1",
            &[&client_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let key: i64 = row.get(0);
    let roles = client
        .query("SELECT role FROM app_roles WHERE app_key = $1 ORDER BY role", &[&key])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let redirect_uris = client
        .query("SELECT uri FROM app_redirect_uris WHERE app_key = $1 ORDER BY uri_key", &[&key])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let secrets = client
        .query(
            "SELECT secret_id, hash, hint, created_ticks, expires_ticks FROM app_secrets
             WHERE app_key = $1 ORDER BY created_ticks, secret_key",
            &[&key],
        )
        .await?
        .iter()
        .map(|r| AppSecret {
            id: r.get(0),
            hash: Sealed(r.get(1)),
            hint: r.get(2),
            created: time(r.get(3)),
            expires: time(r.get(4)),
        })
        .collect();
    Ok(Some(App {
        client_id,
        tenant: row.get(1),
        name: row.get(2),
        roles,
        redirect_uris,
        secrets,
        created: time(row.get(3)),
    }))
}

pub(super) async fn create_app(
    tx: &Transaction<'_>,
    tenant_key: i64,
    app: &NewApp,
) -> Result<(), StoreError> {
    let inserted = tx
        .query_one(
            "INSERT INTO apps (client_id, tenant_key, name, created_ticks) VALUES ($1, $2, $3, $4)
             RETURNING app_key",
            &[&app.client_id, &tenant_key, &app.name, &app.secret.created.unix_ticks()],
        )
        .await;
    let key: i64 = match inserted {
        Err(e) if is_conflict(&e) => {
            return Err(StoreError::AppExists(format!(
                "an app named {:?} or with client id {}",
                app.name, app.client_id
            )));
        }
        other => other?.get(0),
    };
    for role in &app.roles {
        set_role(tx, key, role, true).await?;
    }
    for uri in &app.redirect_uris {
        tx.execute(
            "INSERT INTO app_redirect_uris (app_key, uri) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key, uri],
        )
        .await?;
    }
    insert_secret(tx, key, &app.secret).await
}

pub(super) async fn insert_secret<C: GenericClient>(
    client: &C,
    app_key: i64,
    secret: &AppSecret,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO app_secrets (secret_id, app_key, hash, hint, created_ticks, expires_ticks)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &secret.id,
                &app_key,
                &secret.hash.0,
                &secret.hint,
                &secret.created.unix_ticks(),
                &secret.expires.unix_ticks(),
            ],
        )
        .await?;
    Ok(())
}

async fn set_role<C: GenericClient>(
    client: &C,
    app_key: i64,
    role: &str,
    granted: bool,
) -> Result<(), StoreError> {
    let sql = if granted {
        "INSERT INTO app_roles (app_key, role) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM app_roles WHERE app_key = $1 AND role = $2"
    };
    client.execute(sql, &[&app_key, &role]).await?;
    Ok(())
}

pub(super) async fn app_ids<C: GenericClient>(
    client: &C,
    tenant_key: Option<i64>,
) -> Result<Vec<Uuid>, StoreError> {
    let rows = client
        .query(
            "SELECT client_id FROM apps WHERE $1::bigint IS NULL OR tenant_key = $1
             ORDER BY app_key",
            &[&tenant_key],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(super) async fn remove_app<C: GenericClient>(
    client: &C,
    client_id: Uuid,
) -> Result<(), StoreError> {
    let removed = client.execute("DELETE FROM apps WHERE client_id = $1", &[&client_id]).await?;
    if removed == 0 {
        return Err(StoreError::UnknownApp(client_id.to_string()));
    }
    Ok(())
}

pub(super) async fn add_secret<C: GenericClient>(
    client: &C,
    client_id: Uuid,
    secret: &AppSecret,
) -> Result<(), StoreError> {
    insert_secret(client, app_key(client, client_id).await?, secret).await
}

pub(super) async fn remove_secret<C: GenericClient>(
    client: &C,
    client_id: Uuid,
    secret: Uuid,
) -> Result<(), StoreError> {
    let key = app_key(client, client_id).await?;
    let removed = client
        .execute("DELETE FROM app_secrets WHERE app_key = $1 AND secret_id = $2", &[&key, &secret])
        .await?;
    if removed == 0 {
        return Err(StoreError::UnknownSecret(secret.to_string()));
    }
    Ok(())
}

pub(super) async fn set_app_role<C: GenericClient>(
    client: &C,
    client_id: Uuid,
    role: &str,
    granted: bool,
) -> Result<(), StoreError> {
    set_role(client, app_key(client, client_id).await?, role, granted).await
}

const USER_COLUMNS: &str =
    "u.user_id, t.id, u.username, u.display_name, u.password_hash, u.created_ticks";

fn user_from_row(r: &Row) -> User {
    User {
        id: r.get(0),
        tenant: r.get(1),
        username: r.get(2),
        display_name: r.get(3),
        password_hash: Sealed(r.get(4)),
        created: time(r.get(5)),
    }
}

pub(super) async fn create_user<C: GenericClient>(
    client: &C,
    tenant_key: i64,
    user: &User,
) -> Result<(), StoreError> {
    let inserted = client
        .execute(
            "INSERT INTO users (user_id, tenant_key, username, display_name, password_hash,
                 created_ticks)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &user.id,
                &tenant_key,
                &user.username,
                &user.display_name,
                &user.password_hash.0,
                &user.created.unix_ticks(),
            ],
        )
        .await;
    match inserted {
        Err(e) if is_conflict(&e) => Err(StoreError::UserExists(user.username.clone())),
        other => other.map(|_| ()).map_err(StoreError::from),
    }
}

pub(super) async fn users<C: GenericClient>(
    client: &C,
    tenant_key: i64,
    username: Option<&str>,
) -> Result<Vec<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.tenant_key = u.tenant_key
         WHERE u.tenant_key = $1 AND ($2::text IS NULL OR lower(u.username) = lower($2))
         ORDER BY u.user_key"
    );
    let rows = client.query(&sql, &[&tenant_key, &username]).await?;
    Ok(rows.iter().map(user_from_row).collect())
}

pub(super) async fn remove_user<C: GenericClient>(
    client: &C,
    tenant_key: i64,
    username: &str,
) -> Result<(), StoreError> {
    let removed = client
        .execute(
            "DELETE FROM users WHERE tenant_key = $1 AND lower(username) = lower($2)",
            &[&tenant_key, &username],
        )
        .await?;
    if removed == 0 {
        return Err(StoreError::UnknownUser(username.to_owned()));
    }
    Ok(())
}

pub(super) async fn set_password(
    tx: &Transaction<'_>,
    tenant_key: i64,
    username: &str,
    hash: &Sealed,
) -> Result<(), StoreError> {
    let changed = tx
        .query_opt(
            "UPDATE users SET password_hash = $3
             WHERE tenant_key = $1 AND lower(username) = lower($2)
             RETURNING user_key",
            &[&tenant_key, &username, &hash.0],
        )
        .await?;
    let Some(row) = changed else {
        return Err(StoreError::UnknownUser(username.to_owned()));
    };
    // A new password ends every sign-in made with the old one.
    let user_key: i64 = row.get(0);
    tx.execute("DELETE FROM refresh_tokens WHERE user_key = $1", &[&user_key]).await?;
    Ok(())
}

pub(super) async fn user_by_id<C: GenericClient>(
    client: &C,
    id: Uuid,
) -> Result<Option<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.tenant_key = u.tenant_key
         WHERE u.user_id = $1"
    );
    Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(user_from_row))
}

pub(super) async fn signing_keys<C: GenericClient>(
    client: &C,
) -> Result<Vec<StoredKey>, StoreError> {
    let rows = client
        .query(
            "SELECT kid, pkcs8, created_ticks, retired_ticks FROM signing_keys
             ORDER BY retired_ticks IS NULL, created_ticks",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredKey {
            kid: r.get(0),
            pkcs8: Sealed(r.get(1)),
            created: time(r.get(2)),
            retired: r.get::<_, Option<i64>>(3).map(time),
        })
        .collect())
}

pub(super) async fn rotate_key(tx: &Transaction<'_>, key: &StoredKey) -> Result<(), StoreError> {
    // Two replicas rotating at once would otherwise both leave a key
    // unretired; the lock makes the second wait and retire the first's.
    tx.batch_execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE").await?;
    tx.execute(
        "UPDATE signing_keys SET retired_ticks = $1 WHERE retired_ticks IS NULL",
        &[&key.created.unix_ticks()],
    )
    .await?;
    tx.execute(
        "INSERT INTO signing_keys (kid, pkcs8, created_ticks, retired_ticks)
         VALUES ($1, $2, $3, NULL)",
        &[&key.kid, &key.pkcs8.0, &key.created.unix_ticks()],
    )
    .await?;
    Ok(())
}
