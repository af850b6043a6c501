//! A SQLite store read and written as rows, for copying it to or from
//! another store: the registry whole, detections a page at a time.

use rusqlite::{Connection, params};
use siemgate_model::Timestamp;

use super::grants::insert_refresh;
use super::load_tenant;
use super::principals::{self, uuid};
use crate::{DetectionKey, DetectionRow, RefreshGrant, Registry, Sealed, StoreError};

/// Reads the registry; the caller holds a read transaction, so it is one snapshot.
pub(super) fn export_registry(conn: &Connection) -> Result<Registry, StoreError> {
    let mut registry = Registry::default();
    let mut stmt = conn.prepare("SELECT tenant_key FROM tenants ORDER BY tenant_key")?;
    let keys = stmt.query_map([], |r| r.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?;
    for key in keys {
        registry.tenants.extend(load_tenant(conn, "tenant_key = ?1", &key.to_string())?);
        registry.users.extend(principals::users(conn, key, None)?);
    }
    for id in principals::app_ids(conn, None)? {
        registry.apps.extend(principals::load_app(conn, id)?);
    }
    registry.signing_keys = principals::signing_keys(conn)?;
    registry.refresh_tokens = refresh_tokens(conn)?;
    registry.last_processed = Timestamp::from_unix_ticks(last_processed(conn)?);
    Ok(registry)
}

/// Ordered as the PostgreSQL backend orders them, so that a registry reads
/// the same whichever backend it went through.
fn refresh_tokens(conn: &Connection) -> Result<Vec<RefreshGrant>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT r.token_hash, a.client_id, u.user_id, r.scope, r.resource, r.issued_ticks,
                r.expires_ticks
         FROM refresh_tokens r
         JOIN apps a ON a.app_key = r.app_key
         JOIN users u ON u.user_key = r.user_key
         ORDER BY r.issued_ticks, r.token_hash",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            (r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?),
            (r.get(3)?, r.get(4)?, r.get::<_, i64>(5)?, r.get::<_, i64>(6)?),
        ))
    })?;
    rows.map(|row| {
        let ((hash, client_id, user), (scope, resource, issued, expires)) = row?;
        Ok(RefreshGrant {
            hash: Sealed(hash),
            client_id: uuid(client_id)?,
            user: uuid(user)?,
            scope,
            resource,
            issued: Timestamp::from_unix_ticks(issued),
            expires: Timestamp::from_unix_ticks(expires),
        })
    })
    .collect()
}

pub(super) fn last_processed(conn: &Connection) -> Result<i64, StoreError> {
    let ticks =
        conn.query_row("SELECT value FROM store_meta WHERE key = 'last_processed'", [], |r| {
            r.get(0)
        })?;
    Ok(ticks)
}

/// Writes `value` as the newest stamp handed out, unless one is newer; returns the result.
pub(super) fn raise_last_processed(conn: &Connection, value: i64) -> Result<i64, StoreError> {
    conn.execute(
        "UPDATE store_meta SET value = max(value, ?1) WHERE key = 'last_processed'",
        [value],
    )?;
    last_processed(conn)
}

/// Writes the registry inside the caller's write transaction; returns the
/// store's newest stamp afterwards.
pub(super) fn import_registry(conn: &Connection, registry: &Registry) -> Result<i64, StoreError> {
    let count = |table: &str| -> Result<u64, StoreError> {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        Ok(n.unsigned_abs())
    };
    let (tenants, signing_keys) = (count("tenants")?, count("signing_keys")?);
    if tenants > 0 || signing_keys > 0 {
        return Err(StoreError::NotEmpty { tenants, signing_keys });
    }

    for tenant in &registry.tenants {
        conn.execute(
            "INSERT INTO tenants (id, name, state, created_ticks) VALUES (?1, ?2, ?3, ?4)",
            params![
                tenant.id.to_string(),
                tenant.name,
                tenant.state.as_str(),
                tenant.created.unix_ticks()
            ],
        )?;
        let key = conn.last_insert_rowid();
        for domain in &tenant.domains {
            conn.execute(
                "INSERT INTO tenant_domains (domain, tenant_key) VALUES (?1, ?2)",
                params![domain, key],
            )?;
        }
    }
    for app in &registry.apps {
        conn.execute(
            "INSERT INTO apps (client_id, tenant_key, name, created_ticks)
             VALUES (?1, (SELECT tenant_key FROM tenants WHERE id = ?2), ?3, ?4)",
            params![
                app.client_id.to_string(),
                app.tenant.to_string(),
                app.name,
                app.created.unix_ticks()
            ],
        )?;
        let key = conn.last_insert_rowid();
        for role in &app.roles {
            conn.execute(
                "INSERT INTO app_roles (app_key, role) VALUES (?1, ?2)",
                params![key, role],
            )?;
        }
        for uri in &app.redirect_uris {
            conn.execute(
                "INSERT INTO app_redirect_uris (app_key, uri) VALUES (?1, ?2)",
                params![key, uri],
            )?;
        }
        for secret in &app.secrets {
            principals::insert_secret(conn, key, secret)?;
        }
    }
    for user in &registry.users {
        let tenant_key: i64 = conn.query_row(
            "SELECT tenant_key FROM tenants WHERE id = ?1",
            [user.tenant.to_string()],
            |r| r.get(0),
        )?;
        principals::create_user(conn, tenant_key, user)?;
    }
    for key in &registry.signing_keys {
        conn.execute(
            "INSERT INTO signing_keys (kid, pkcs8, created_ticks, retired_ticks)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                key.kid,
                key.pkcs8.0,
                key.created.unix_ticks(),
                key.retired.map(Timestamp::unix_ticks)
            ],
        )?;
    }
    for grant in &registry.refresh_tokens {
        insert_refresh(conn, grant)?;
    }
    raise_last_processed(conn, registry.last_processed.unix_ticks())
}

/// One page of a tenant's detections in delivery order, after `after`.
pub(super) fn export_detections(
    conn: &Connection,
    tenant_key: i64,
    after: Option<DetectionKey>,
    limit: usize,
) -> Result<Vec<DetectionRow>, StoreError> {
    // The row comparison is one seek on detections_by_window.
    let (processed, full_id) = DetectionKey::page_start(after);
    let mut stmt = conn.prepare_cached(
        "SELECT full_id, processed, machine_group, device_tags, cloud_tags, alert_id,
                device_id, body
         FROM detections
         WHERE tenant_key = ?1 AND (processed, full_id) > (?2, ?3)
         ORDER BY processed, full_id
         LIMIT ?4",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![tenant_key, processed, full_id, limit], |r| {
        Ok(DetectionRow {
            full_id: r.get(0)?,
            processed: Timestamp::from_unix_ticks(r.get(1)?),
            machine_group: r.get(2)?,
            device_tags: r.get(3)?,
            cloud_tags: r.get(4)?,
            alert_id: r.get(5)?,
            device_id: r.get(6)?,
            body: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes a page of rows inside the caller's write transaction; returns how
/// many were new.
pub(super) fn import_detections(
    conn: &Connection,
    tenant_key: i64,
    rows: &[DetectionRow],
) -> Result<u64, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO detections
            (tenant_key, full_id, processed, machine_group, device_tags, cloud_tags,
             body, alert_id, device_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (tenant_key, full_id) DO NOTHING",
    )?;
    let mut stored = 0;
    for row in rows {
        stored += insert.execute(params![
            tenant_key,
            row.full_id,
            row.processed.unix_ticks(),
            row.machine_group,
            row.device_tags,
            row.cloud_tags,
            row.body,
            row.alert_id,
            row.device_id,
        ])? as u64;
    }
    Ok(stored)
}
