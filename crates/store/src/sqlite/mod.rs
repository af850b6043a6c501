//! The embedded backend: one SQLite file in WAL mode.
//!
//! One connection writes, behind a mutex, so commits are serialised and
//! `LastProcessedTimeUtc` can be handed out in commit order. Readers take
//! their own connections from a small pool and, thanks to WAL, are never
//! blocked by the writer's transaction; only a window read first waits for
//! the batch being written, if any, so that a window ending now cannot miss
//! a batch stamped before now that commits after the read (the rule in
//! `docs/ARCHITECTURE.md`). All SQLite calls run on tokio's blocking threads.

mod alerts;
mod copy;
mod grants;
mod principals;
mod schema;
mod window;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use siemgate_model::{AlertsQuery, Prepared, Timestamp};
use uuid::Uuid;

use crate::stream::{ChunkWriter, DetectionStream, Framing};
use crate::{
    App, AppSecret, AuthCode, CodeRedemption, DetectionKey, DetectionRow, DeviceAlert,
    IngestReport, NewApp, NewTenant, RefreshGrant, Registry, Sealed, Store, StoreError, StoredKey,
    Tenant, TenantState, User,
};

pub use crate::Clock;

/// Idle reader connections kept for reuse: enough for a busy server's
/// concurrent requests (64 connections under load opened a new SQLite
/// connection per request with 8), few enough to cost little memory.
const IDLE_READERS: usize = 64;

/// Detections deleted per transaction when purging, so ingest is never held up for long.
const PURGE_CHUNK: i64 = 5_000;

/// A SQLite-backed [`Store`]. Cloning shares the same connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
    tenant_keys: Mutex<HashMap<Uuid, i64>>,
    clock: Clock,
    /// Holds the folder of an ephemeral store; dropping it removes the files.
    _ephemeral: Option<tempfile::TempDir>,
}

struct Writer {
    conn: Connection,
    /// The newest `LastProcessedTimeUtc` handed out, in ticks.
    last_processed: i64,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

fn system_clock() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave SQLite half-written (the
    // transaction rolls back), so the data behind a poisoned lock is usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the file at `path` and brings
    /// its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, None, Arc::new(system_clock)))
            .await?
    }

    /// A store that lives only as long as this value: a fresh database in a
    /// private folder (in memory-backed `/dev/shm` where there is one),
    /// removed when the store is dropped. It behaves exactly as a file store.
    pub async fn ephemeral() -> Result<SqliteStore, StoreError> {
        Self::ephemeral_with_clock(Arc::new(system_clock)).await
    }

    /// An ephemeral store that reads the time from `clock`, for tests of the
    /// timestamp rules.
    pub async fn ephemeral_with_clock(clock: Clock) -> Result<SqliteStore, StoreError> {
        tokio::task::spawn_blocking(move || {
            let shm = Path::new("/dev/shm");
            let parent = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
            let dir = tempfile::Builder::new()
                .prefix("siemgate-")
                .tempdir_in(&parent)
                .map_err(|source| StoreError::Open { path: parent, source })?;
            let path = dir.path().join("siemgate.db");
            Self::open_blocking(path, Some(dir), clock)
        })
        .await?
    }

    fn open_blocking(
        path: PathBuf,
        ephemeral: Option<tempfile::TempDir>,
        clock: Clock,
    ) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            let missing = format!("folder {} does not exist", parent.display());
            return Err(StoreError::Open {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, missing),
            });
        }
        let mut conn = connect(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        schema::migrate(&mut conn)?;
        let last_processed =
            conn.query_row("SELECT value FROM store_meta WHERE key = 'last_processed'", [], |r| {
                r.get(0)
            })?;
        tracing::debug!(path = %path.display(), "opened sqlite store");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Writer { conn, last_processed }),
                readers: Mutex::new(Vec::new()),
                tenant_keys: Mutex::new(HashMap::new()),
                clock,
                _ephemeral: ephemeral,
            }),
        })
    }

    /// Runs `work` in one immediate write transaction and commits it.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(move |inner| {
            let mut writer = lock(&inner.writer);
            let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = work(inner, &tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs an app change, then returns the app as it now is.
    async fn change_app<F>(&self, client_id: Uuid, change: F) -> Result<App, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        self.write(move |_, tx| {
            change(tx)?;
            principals::load_app(tx, client_id)?
                .ok_or_else(|| StoreError::UnknownApp(client_id.to_string()))
        })
        .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` on a blocking thread with the store's shared state.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner)).await?
    }
}

/// Opens one connection with the settings every connection shares.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // FULL: an acknowledged batch survives power loss, not only a crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

impl Inner {
    /// Runs `work` on a reader connection from the pool.
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.checkout_reader()?;
        let result = work(&conn);
        self.checkin_reader(conn);
        result
    }

    /// An idle reader connection, or a new one if none is idle.
    fn checkout_reader(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = lock(&self.readers).pop() {
            return Ok(conn);
        }
        let conn = connect(&self.path)?;
        // Readers mostly scan windows once, front to back. A small page cache
        // stays in the CPU's cache while a large one is swept through it:
        // streaming ran about a sixth faster at 256 KiB than at SQLite's
        // default 2 MiB (`siemgate-bench store`).
        conn.pragma_update(None, "cache_size", -256)?;
        Ok(conn)
    }

    fn checkin_reader(&self, conn: Connection) {
        let mut idle = lock(&self.readers);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }

    /// The tenant's row key. Tenants are never removed, so a key once
    /// found stays right and is kept in memory.
    fn tenant_key(&self, conn: &Connection, id: Uuid) -> Result<i64, StoreError> {
        if let Some(key) = self.cached_tenant_key(id) {
            return Ok(key);
        }
        let key = conn
            .query_row("SELECT tenant_key FROM tenants WHERE id = ?1", [id.to_string()], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::UnknownTenant(id.to_string()))?;
        lock(&self.tenant_keys).insert(id, key);
        Ok(key)
    }

    fn cached_tenant_key(&self, id: Uuid) -> Option<i64> {
        lock(&self.tenant_keys).get(&id).copied()
    }
}

fn load_tenant(
    conn: &Connection,
    where_clause: &str,
    arg: &str,
) -> Result<Option<Tenant>, StoreError> {
    let sql = format!(
        "SELECT tenant_key, id, name, state, created_ticks FROM tenants WHERE {where_clause}"
    );
    let row = conn
        .query_row(&sql, [arg], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((key, id, name, state, created)) = row else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached("SELECT domain FROM tenant_domains WHERE tenant_key = ?1 ORDER BY rowid")?;
    let domains = stmt.query_map([key], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(Some(Tenant {
        id: Uuid::parse_str(&id)
            .map_err(|e| StoreError::Worker(format!("bad tenant id {id}: {e}")))?,
        name,
        domains,
        state: TenantState::parse(&state)
            .ok_or_else(|| StoreError::Worker(format!("bad tenant state {state}")))?,
        created: Timestamp::from_unix_ticks(created),
    }))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, tenant: NewTenant) -> Result<Tenant, StoreError> {
        self.blocking(move |inner| {
            let now = (inner.clock)();
            let mut writer = lock(&inner.writer);
            let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = tenant.id.to_string();
            if load_tenant(&tx, "id = ?1", &id)?.is_some() {
                return Err(StoreError::TenantExists(format!("id {id}")));
            }
            if load_tenant(&tx, "name = ?1 COLLATE NOCASE", &tenant.name)?.is_some() {
                return Err(StoreError::TenantExists(format!("name {:?}", tenant.name)));
            }
            tx.execute(
                "INSERT INTO tenants (id, name, state, created_ticks) VALUES (?1, ?2, 'active', ?3)",
                params![id, tenant.name, now.unix_ticks()],
            )?;
            let key = tx.last_insert_rowid();
            for domain in &tenant.domains {
                let taken: Option<i64> = tx
                    .query_row("SELECT tenant_key FROM tenant_domains WHERE domain = ?1", [domain], |r| r.get(0))
                    .optional()?;
                if taken.is_some() {
                    return Err(StoreError::TenantExists(format!("domain {domain}")));
                }
                tx.execute("INSERT INTO tenant_domains (domain, tenant_key) VALUES (?1, ?2)", params![domain, key])?;
            }
            let created = load_tenant(&tx, "tenant_key = ?1", &key.to_string())?;
            tx.commit()?;
            created.ok_or_else(|| StoreError::Worker("tenant vanished after insert".into()))
        })
        .await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.blocking(|inner| {
            inner.read(|conn| {
                let mut stmt = conn.prepare("SELECT id FROM tenants ORDER BY tenant_key")?;
                let ids = stmt
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut tenants = Vec::with_capacity(ids.len());
                for id in ids {
                    tenants.extend(load_tenant(conn, "id = ?1", &id)?);
                }
                Ok(tenants)
            })
        })
        .await
    }

    async fn find_tenant(&self, key: &str) -> Result<Option<Tenant>, StoreError> {
        let key = key.trim().to_owned();
        self.blocking(move |inner| {
            inner.read(|conn| {
                if let Ok(id) = Uuid::parse_str(&key) {
                    return load_tenant(conn, "id = ?1", &id.to_string());
                }
                let by_domain =
                    "tenant_key = (SELECT tenant_key FROM tenant_domains WHERE domain = ?1)";
                match load_tenant(conn, by_domain, &key)? {
                    Some(tenant) => Ok(Some(tenant)),
                    None => load_tenant(conn, "name = ?1 COLLATE NOCASE", &key),
                }
            })
        })
        .await
    }

    async fn set_tenant_state(&self, id: Uuid, state: TenantState) -> Result<Tenant, StoreError> {
        self.blocking(move |inner| {
            let writer = lock(&inner.writer);
            let changed = writer.conn.execute(
                "UPDATE tenants SET state = ?1 WHERE id = ?2",
                params![state.as_str(), id.to_string()],
            )?;
            if changed == 0 {
                return Err(StoreError::UnknownTenant(id.to_string()));
            }
            load_tenant(&writer.conn, "id = ?1", &id.to_string())?
                .ok_or_else(|| StoreError::UnknownTenant(id.to_string()))
        })
        .await
    }

    async fn ingest(&self, tenant: Uuid, batch: Vec<Prepared>) -> Result<IngestReport, StoreError> {
        self.blocking(move |inner| {
            let mut writer = lock(&inner.writer);
            let Writer { conn, last_processed } = &mut *writer;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let key = inner.tenant_key(&tx, tenant)?;

            // Read once the writer is ours, and strictly after the previous
            // batch: a reader that has seen time T never later finds a new
            // detection stamped T or before.
            let now = (inner.clock)().unix_ticks();
            let stamp = now.max(*last_processed + 1);
            let live_time = Timestamp::from_unix_ticks(stamp);
            let mut stamped = false;
            let mut report = IngestReport::default();
            let mut body = Vec::with_capacity(4096);
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO detections
                        (tenant_key, full_id, processed, machine_group, device_tags, cloud_tags,
                         body, alert_id, device_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (tenant_key, full_id) DO NOTHING",
                )?;
                for detection in &batch {
                    // An archive import keeps its own times and leaves the
                    // store's clock alone: a wild time in an archive must not
                    // drag every later stamp along with it.
                    let processed = detection.kept_processed_time.unwrap_or(live_time);
                    body.clear();
                    detection.render_into(processed, &mut body);
                    let inserted = insert.execute(params![
                        key,
                        detection.full_id,
                        processed.unix_ticks(),
                        detection.machine_group_key,
                        detection.device_tags_key,
                        detection.cloud_tags_key,
                        body,
                        detection.alert_id,
                        detection.device_id,
                    ])?;
                    if inserted == 1 {
                        report.stored += 1;
                        stamped |= detection.kept_processed_time.is_none();
                    } else {
                        report.duplicates += 1;
                    }
                }
            }
            if stamped {
                tx.execute(
                    "UPDATE store_meta SET value = ?1 WHERE key = 'last_processed'",
                    [stamp],
                )?;
                report.processed = Some(live_time);
            }
            tx.commit()?;
            if stamped {
                *last_processed = stamp;
            }
            Ok(report)
        })
        .await
    }

    async fn stream(
        &self,
        tenant: Uuid,
        query: &AlertsQuery,
        framing: Framing,
    ) -> Result<DetectionStream, StoreError> {
        let query = query.clone();
        let inner = Arc::clone(&self.inner);
        // The tenant is checked before the stream starts, so that an unknown
        // tenant is an error rather than an empty window.
        let key = match self.inner.cached_tenant_key(tenant) {
            Some(key) => key,
            None => {
                self.blocking(move |inner| inner.read(|conn| inner.tenant_key(conn, tenant)))
                    .await?
            }
        };
        let (writer, stream) = ChunkWriter::channel(framing);
        tokio::task::spawn_blocking(move || {
            // Waits for the batch being written, if any, so that a window
            // ending now cannot miss a batch stamped before now that commits
            // after the window is read.
            drop(lock(&inner.writer));
            match inner.checkout_reader() {
                Ok(conn) => {
                    window::stream_window(&conn, key, &query, writer);
                    inner.checkin_reader(conn);
                }
                Err(e) => {
                    tracing::error!(error = %e, "no connection to stream a window");
                    writer.fail(e);
                }
            }
        });
        Ok(stream)
    }

    async fn alert_detections(
        &self,
        tenant: Uuid,
        alert_id: &str,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let alert_id = alert_id.to_owned();
        self.blocking(move |inner| {
            inner.read(|conn| {
                alerts::alert_detections(conn, inner.tenant_key(conn, tenant)?, &alert_id)
            })
        })
        .await
    }

    async fn device_alerts(
        &self,
        tenant: Uuid,
        device_id: &str,
        limit: usize,
    ) -> Result<Vec<DeviceAlert>, StoreError> {
        let device_id = device_id.to_owned();
        self.blocking(move |inner| {
            inner.read(|conn| {
                alerts::device_alerts(conn, inner.tenant_key(conn, tenant)?, &device_id, limit)
            })
        })
        .await
    }

    async fn purge_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let keys: Vec<i64> = self
            .blocking(|inner| {
                inner.read(|conn| {
                    let mut stmt = conn.prepare("SELECT tenant_key FROM tenants")?;
                    let keys = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
                    Ok(keys)
                })
            })
            .await?;
        let mut purged = 0u64;
        for key in keys {
            loop {
                let deleted = self
                    .blocking(move |inner| {
                        let writer = lock(&inner.writer);
                        let deleted = writer.conn.execute(
                            "DELETE FROM detections WHERE rowid IN (
                                SELECT rowid FROM detections
                                WHERE tenant_key = ?1 AND processed < ?2 LIMIT ?3)",
                            params![key, cutoff.unix_ticks(), PURGE_CHUNK],
                        )?;
                        Ok(deleted as u64)
                    })
                    .await?;
                purged += deleted;
                if deleted < PURGE_CHUNK as u64 {
                    break;
                }
            }
        }
        Ok(purged)
    }

    async fn detection_count(&self, tenant: Uuid) -> Result<u64, StoreError> {
        self.blocking(move |inner| {
            inner.read(|conn| {
                let key = inner.tenant_key(conn, tenant)?;
                let n: i64 = conn.query_row(
                    "SELECT count(*) FROM detections WHERE tenant_key = ?1",
                    [key],
                    |r| r.get(0),
                )?;
                Ok(n as u64)
            })
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|inner| inner.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)))
            .await
    }

    async fn create_app(&self, app: NewApp) -> Result<App, StoreError> {
        self.write(move |inner, tx| {
            let tenant_key = inner.tenant_key(tx, app.tenant)?;
            principals::create_app(tx, tenant_key, &app)?;
            principals::load_app(tx, app.client_id)?
                .ok_or_else(|| StoreError::UnknownApp(app.client_id.to_string()))
        })
        .await
    }

    async fn apps(&self, tenant: Option<Uuid>) -> Result<Vec<App>, StoreError> {
        self.blocking(move |inner| {
            inner.read(|conn| {
                let tenant_key = tenant.map(|t| inner.tenant_key(conn, t)).transpose()?;
                let mut apps = Vec::new();
                for id in principals::app_ids(conn, tenant_key)? {
                    apps.extend(principals::load_app(conn, id)?);
                }
                Ok(apps)
            })
        })
        .await
    }

    async fn find_app(&self, client_id: Uuid) -> Result<Option<App>, StoreError> {
        self.blocking(move |inner| inner.read(|conn| principals::load_app(conn, client_id))).await
    }

    async fn remove_app(&self, client_id: Uuid) -> Result<(), StoreError> {
        self.write(move |_, tx| principals::remove_app(tx, client_id)).await
    }

    async fn add_app_secret(&self, client_id: Uuid, secret: AppSecret) -> Result<App, StoreError> {
        self.change_app(client_id, move |tx| principals::add_secret(tx, client_id, &secret)).await
    }

    async fn remove_app_secret(&self, client_id: Uuid, secret: Uuid) -> Result<App, StoreError> {
        self.change_app(client_id, move |tx| principals::remove_secret(tx, client_id, secret)).await
    }

    async fn set_app_role(
        &self,
        client_id: Uuid,
        role: &str,
        granted: bool,
    ) -> Result<App, StoreError> {
        let role = role.to_owned();
        self.change_app(client_id, move |tx| {
            principals::set_app_role(tx, client_id, &role, granted)
        })
        .await
    }

    async fn create_user(&self, user: User) -> Result<User, StoreError> {
        self.write(move |inner, tx| {
            let tenant_key = inner.tenant_key(tx, user.tenant)?;
            principals::create_user(tx, tenant_key, &user)?;
            Ok(user)
        })
        .await
    }

    async fn users(&self, tenant: Uuid) -> Result<Vec<User>, StoreError> {
        self.blocking(move |inner| {
            inner.read(|conn| principals::users(conn, inner.tenant_key(conn, tenant)?, None))
        })
        .await
    }

    async fn find_user(&self, tenant: Uuid, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_owned();
        self.blocking(move |inner| {
            inner.read(|conn| {
                let tenant_key = inner.tenant_key(conn, tenant)?;
                Ok(principals::users(conn, tenant_key, Some(&username))?.into_iter().next())
            })
        })
        .await
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.blocking(move |inner| inner.read(|conn| principals::user_by_id(conn, id))).await
    }

    async fn remove_user(&self, tenant: Uuid, username: &str) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.write(move |inner, tx| {
            principals::remove_user(tx, inner.tenant_key(tx, tenant)?, &username)
        })
        .await
    }

    async fn set_user_password(
        &self,
        tenant: Uuid,
        username: &str,
        password_hash: Sealed,
    ) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.write(move |inner, tx| {
            principals::set_password(tx, inner.tenant_key(tx, tenant)?, &username, &password_hash)
        })
        .await
    }

    async fn save_auth_code(&self, code: AuthCode) -> Result<(), StoreError> {
        self.write(move |_, tx| grants::save_code(tx, &code)).await
    }

    async fn redeem_auth_code(&self, hash: Vec<u8>) -> Result<CodeRedemption, StoreError> {
        self.write(move |_, tx| grants::redeem_code(tx, &hash)).await
    }

    async fn save_refresh_token(&self, grant: RefreshGrant) -> Result<(), StoreError> {
        self.write(move |_, tx| grants::save_refresh(tx, &grant)).await
    }

    async fn take_refresh_token(&self, hash: Vec<u8>) -> Result<Option<RefreshGrant>, StoreError> {
        self.write(move |_, tx| grants::take_refresh(tx, &hash)).await
    }

    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.blocking(|inner| inner.read(principals::signing_keys)).await
    }

    async fn rotate_signing_key(&self, key: StoredKey) -> Result<(), StoreError> {
        self.write(move |_, tx| principals::rotate_key(tx, &key)).await
    }

    async fn export_registry(&self) -> Result<Registry, StoreError> {
        self.blocking(|inner| {
            inner.read(|conn| {
                let tx = conn.unchecked_transaction()?;
                let registry = copy::export_registry(&tx)?;
                tx.finish()?;
                Ok(registry)
            })
        })
        .await
    }

    async fn import_registry(&self, registry: &Registry) -> Result<(), StoreError> {
        let registry = registry.clone();
        self.blocking(move |inner| {
            let mut writer = lock(&inner.writer);
            let Writer { conn, last_processed } = &mut *writer;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let newest = copy::import_registry(&tx, &registry)?;
            tx.commit()?;
            *last_processed = newest;
            Ok(())
        })
        .await
    }

    async fn export_detections(
        &self,
        tenant: Uuid,
        after: Option<DetectionKey>,
        limit: usize,
    ) -> Result<Vec<DetectionRow>, StoreError> {
        self.blocking(move |inner| {
            inner.read(|conn| {
                copy::export_detections(conn, inner.tenant_key(conn, tenant)?, after, limit)
            })
        })
        .await
    }

    async fn import_detections(
        &self,
        tenant: Uuid,
        rows: Vec<DetectionRow>,
    ) -> Result<u64, StoreError> {
        self.blocking(move |inner| {
            let now = (inner.clock)();
            let mut writer = lock(&inner.writer);
            let Writer { conn, last_processed } = &mut *writer;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stored = copy::import_detections(&tx, inner.tenant_key(&tx, tenant)?, &rows)?;
            let newest = match crate::copy::newest_stamp_by(&rows, now) {
                Some(stamp) => copy::raise_last_processed(&tx, stamp.unix_ticks())?,
                None => *last_processed,
            };
            tx.commit()?;
            *last_processed = newest;
            Ok(stored)
        })
        .await
    }
}
