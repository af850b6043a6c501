//! A PostgreSQL store read and written as rows, for copying it to or from
//! another store: the registry whole, detections a page at a time.

use deadpool_postgres::{GenericClient, Transaction};
use siemgate_model::Timestamp;

use super::grants::{insert_refresh, refresh_grant};
use super::load_tenant;
use super::principals;
use crate::{DetectionKey, DetectionRow, RefreshGrant, Registry, StoreError};

/// Reads the registry; the caller holds a REPEATABLE READ transaction, so it
/// is one snapshot.
pub(super) async fn export_registry(tx: &Transaction<'_>) -> Result<Registry, StoreError> {
    let mut registry = Registry::default();
    let keys = tx.query("SELECT tenant_key FROM tenants ORDER BY tenant_key", &[]).await?;
    for row in keys {
        let key: i64 = row.get(0);
        registry.tenants.extend(load_tenant(tx, "tenant_key = $1", &key).await?);
        registry.users.extend(principals::users(tx, key, None).await?);
    }
    for id in principals::app_ids(tx, None).await? {
        registry.apps.extend(principals::load_app(tx, id).await?);
    }
    registry.signing_keys = principals::signing_keys(tx).await?;
    registry.refresh_tokens = refresh_tokens(tx).await?;
    let last: i64 = tx.query_one("SELECT last_processed FROM store_meta", &[]).await?.get(0);
    registry.last_processed = Timestamp::from_unix_ticks(last);
    Ok(registry)
}

async fn refresh_tokens<C: GenericClient>(client: &C) -> Result<Vec<RefreshGrant>, StoreError> {
    // The table has no insertion order of its own; issue time, then hash,
    // reads the same on every backend.
    let rows = client
        .query(
            "SELECT r.token_hash, a.client_id, u.user_id, r.scope, r.resource, r.issued_ticks,
                    r.expires_ticks
             FROM refresh_tokens r
             JOIN apps a ON a.app_key = r.app_key
             JOIN users u ON u.user_key = r.user_key
             ORDER BY r.issued_ticks, r.token_hash",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| refresh_grant(r.get(0), r, 1)).collect())
}

/// Moves the newest stamp handed out up to `value`, unless it is already later.
pub(super) async fn raise_last_processed(
    tx: &Transaction<'_>,
    value: Timestamp,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE store_meta SET last_processed = greatest(last_processed, $1)",
        &[&value.unix_ticks()],
    )
    .await?;
    Ok(())
}

/// Writes the registry inside the caller's transaction, which holds the
/// ingest lock.
pub(super) async fn import_registry(
    tx: &Transaction<'_>,
    registry: &Registry,
) -> Result<(), StoreError> {
    // The caller holds the ingest lock: nothing else writes while it fills.
    let count = |table: &'static str| async move {
        let n: i64 = tx.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?.get(0);
        Ok::<u64, StoreError>(n.unsigned_abs())
    };
    let (tenants, signing_keys) = (count("tenants").await?, count("signing_keys").await?);
    if tenants > 0 || signing_keys > 0 {
        return Err(StoreError::NotEmpty { tenants, signing_keys });
    }

    for tenant in &registry.tenants {
        let key: i64 = tx
            .query_one(
                "INSERT INTO tenants (id, name, state, created_ticks) VALUES ($1, $2, $3, $4)
                 RETURNING tenant_key",
                &[&tenant.id, &tenant.name, &tenant.state.as_str(), &tenant.created.unix_ticks()],
            )
            .await?
            .get(0);
        for domain in &tenant.domains {
            tx.execute(
                "INSERT INTO tenant_domains (domain, tenant_key) VALUES ($1, $2)",
                &[domain, &key],
            )
            .await?;
        }
    }
    for app in &registry.apps {
        let key: i64 = tx
            .query_one(
                "INSERT INTO apps (client_id, tenant_key, name, created_ticks)
                 VALUES ($1, (SELECT tenant_key FROM tenants WHERE id = $2), $3, $4)
                 RETURNING app_key",
                &[&app.client_id, &app.tenant, &app.name, &app.created.unix_ticks()],
            )
            .await?
            .get(0);
        for role in &app.roles {
            tx.execute("INSERT INTO app_roles (app_key, role) VALUES ($1, $2)", &[&key, role])
                .await?;
        }
        for uri in &app.redirect_uris {
            tx.execute(
                "INSERT INTO app_redirect_uris (app_key, uri) VALUES ($1, $2)",
                &[&key, uri],
            )
            .await?;
        }
        for secret in &app.secrets {
            principals::insert_secret(tx, key, secret).await?;
        }
    }
    for user in &registry.users {
        let tenant_key: i64 = tx
            .query_one("SELECT tenant_key FROM tenants WHERE id = $1", &[&user.tenant])
            .await?
            .get(0);
        principals::create_user(tx, tenant_key, user).await?;
    }
    for key in &registry.signing_keys {
        tx.execute(
            "INSERT INTO signing_keys (kid, pkcs8, created_ticks, retired_ticks)
             VALUES ($1, $2, $3, $4)",
            &[
                &key.kid,
                &key.pkcs8.0,
                &key.created.unix_ticks(),
                &key.retired.map(|t| t.unix_ticks()),
            ],
        )
        .await?;
    }
    for grant in &registry.refresh_tokens {
        insert_refresh(tx, grant).await?;
    }
    raise_last_processed(tx, registry.last_processed).await
}

/// One page of a tenant's detections in delivery order, after `after`.
pub(super) async fn export_detections<C: GenericClient>(
    client: &C,
    tenant_key: i64,
    after: Option<DetectionKey>,
    limit: usize,
) -> Result<Vec<DetectionRow>, StoreError> {
    // The row comparison is one seek on detections_by_window.
    let (processed, full_id) = DetectionKey::page_start(after);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let select = client
        .prepare_cached(
            "SELECT full_id, processed, machine_group, device_tags, cloud_tags, alert_id,
                    device_id, body
             FROM detections
             WHERE tenant_key = $1 AND (processed, full_id) > ($2, $3)
             ORDER BY processed, full_id
             LIMIT $4",
        )
        .await?;
    let rows = client.query(&select, &[&tenant_key, &processed, &full_id, &limit]).await?;
    Ok(rows
        .iter()
        .map(|r| DetectionRow {
            full_id: r.get(0),
            processed: Timestamp::from_unix_ticks(r.get(1)),
            machine_group: r.get(2),
            device_tags: r.get(3),
            cloud_tags: r.get(4),
            alert_id: r.get(5),
            device_id: r.get(6),
            body: r.get(7),
        })
        .collect())
}

/// Writes a page of rows inside the caller's transaction, one statement per
/// [`INSERT_ROWS`](super::INSERT_ROWS); returns how many were new.
pub(super) async fn import_detections(
    tx: &Transaction<'_>,
    tenant_key: i64,
    rows: &[DetectionRow],
) -> Result<u64, StoreError> {
    let insert = tx.prepare_cached(super::INSERT_DETECTIONS).await?;
    let mut stored = 0;
    for slice in rows.chunks(super::INSERT_ROWS) {
        let column = |f: fn(&DetectionRow) -> &str| slice.iter().map(f).collect::<Vec<&str>>();
        let processed: Vec<i64> = slice.iter().map(|r| r.processed.unix_ticks()).collect();
        let bodies: Vec<&[u8]> = slice.iter().map(|r| r.body.as_slice()).collect();
        let inserted = tx
            .query(
                &insert,
                &[
                    &tenant_key,
                    &column(|r| &r.full_id),
                    &processed,
                    &column(|r| &r.machine_group),
                    &column(|r| &r.device_tags),
                    &column(|r| &r.cloud_tags),
                    &column(|r| &r.alert_id),
                    &column(|r| &r.device_id),
                    &bodies,
                ],
            )
            .await?;
        stored += inserted.len() as u64;
    }
    Ok(stored)
}
