//! The backend for several server replicas: one PostgreSQL database shared
//! by all of them, reached over plain TCP or a Unix socket (no TLS yet).
//!
//! # LastProcessedTimeUtc across replicas
//!
//! Every ingest transaction first takes the store's ingest lock (a
//! transaction-scoped advisory lock, which everything writing detections or
//! `store_meta` takes), then reads the last stamp from `store_meta` and the
//! database's clock, gives its batch the stamp
//! `max(database now, last_processed + 100 ns)`, inserts the batch, writes
//! the stamp back and commits. The lock is held until commit, so the next
//! ingest, on whichever replica, cannot pick its stamp before this one is
//! committed and visible: stamps commit in stamp order. Reading the time
//! from the database gives every replica one clock, however far theirs
//! disagree.
//!
//! A window read first waits for the ingest in flight, if any, by taking
//! the same lock shared for an instant, and only then starts its snapshot.
//! Together: once a window `[since, until)` with `until` no later than the
//! database's clock has been answered, no detection stamped before `until`
//! can ever be committed, however long a batch took between its stamp and
//! its commit. A follower's lag has to cover only the skew between its own
//! clock and the database's, not the duration of anybody's transaction.
//!
//! The price is that ingest is serialized across replicas (one batch at a
//! time, each a single round trip per few thousand rows) and that a window
//! read waits for a batch being written; reads take no other lock and scale
//! with the replicas. Because two batches never run at once, two replicas
//! given the same `FullId` at the same moment cannot both store it either:
//! the second finds the first's committed row and counts a duplicate.
//!
//! Connections come from a deadpool pool per store; each read or write
//! borrows one for its duration and a streamed window keeps one until its
//! last row is sent.

mod alerts;
mod copy;
mod grants;
mod principals;
mod schema;
mod window;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction,
};
use siemgate_model::{AlertsQuery, Prepared, Timestamp};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls};
use uuid::Uuid;

use crate::error::describe_postgres;
use crate::stream::{ChunkWriter, DetectionStream, Framing};
use crate::{
    App, AppSecret, AuthCode, Clock, CodeRedemption, DetectionKey, DetectionRow, DeviceAlert,
    IngestReport, NewApp, NewTenant, RefreshGrant, Registry, Sealed, Store, StoreError, StoredKey,
    Tenant, TenantState, User,
};

/// Connections a store keeps at most. A replica's requests mostly hold one
/// for a few milliseconds; a streamed window holds one for its length.
const MAX_CONNECTIONS: usize = 16;

/// Detections per `INSERT` statement: one round trip carries this many rows
/// (about 4 MB of rendered JSON), while a batch of any size stays one
/// transaction.
const INSERT_ROWS: usize = 2_000;

/// Detections deleted per transaction when purging, so ingest is never held up for long.
const PURGE_CHUNK: i64 = 5_000;

/// A PostgreSQL-backed [`Store`]. Cloning shares the same pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Host, port and database, for messages (never the password).
    target: String,
    schema: Option<String>,
    tenant_keys: Mutex<HashMap<Uuid, i64>>,
    /// The key of the advisory lock that orders ingest and fences window
    /// reads; one per schema, so stores in different schemas of one
    /// database never wait for each other.
    ingest_lock: i64,
    /// The time for creation dates, and for stamps when `stamp_clock` is set.
    clock: Clock,
    /// A clock to stamp batches with instead of the database's (for tests
    /// that need stamps they can predict).
    stamp_clock: Option<Clock>,
    /// Declared last so the pool's connections close before the schema is dropped.
    _scratch: Option<ScratchSchema>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

fn system_clock() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// The advisory lock key for the tables in `schema` (empty for the
/// connection's default): FNV-1a of a fixed prefix and the name, so that it
/// is the same on every replica and unlikely to meet another program's key.
fn ingest_lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"siemgate ingest ".iter().chain(schema.as_bytes()) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// True when `e` is a UNIQUE or PRIMARY KEY violation.
pub(super) fn is_conflict(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Reads a `postgres://` URL, refusing one without a host to go to.
fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| StoreError::PostgresUrl(describe_postgres(&e)))?;
    if config.get_hosts().is_empty() {
        return Err(StoreError::PostgresUrl("it names no host".into()));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("siemgate");
    }
    Ok(config)
}

/// Where `config` points, as `host:port/database`, for messages.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "?".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().or(config.get_user()).unwrap_or("?");
    format!("{host}:{port}/{database}")
}

/// A schema name we made ourselves or were given: letters, digits and `_`
/// only, so it can be written into SQL and into the `search_path` option.
fn check_schema(name: &str) -> Result<(), StoreError> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(())
    } else {
        Err(StoreError::PostgresUrl(format!(
            "schema {name:?} must be lower-case letters, digits and underscores"
        )))
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DB`,
    /// or `host=/var/run/postgresql` for a Unix socket) and brings its schema
    /// up to date. Several replicas may do this at the same moment.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        Self::open_with(url, None, None).await
    }

    /// [`open`](Self::open) with the tables in `schema` (which must exist)
    /// instead of the user's default, and, when `clock` is given, with it as
    /// the time source in place of the system's and the database's clocks.
    pub async fn open_with(
        url: &str,
        schema: Option<&str>,
        clock: Option<Clock>,
    ) -> Result<PostgresStore, StoreError> {
        Self::connect(parse_url(url)?, schema.map(str::to_owned), clock, None).await
    }

    /// A store in a schema of its own, created now and dropped with the
    /// store's last clone, stamping with the database's clock as a replica
    /// does: for benchmarks and tests of the production path.
    pub async fn scratch(url: &str) -> Result<PostgresStore, StoreError> {
        Self::scratch_in(url, None).await
    }

    /// A store in a schema of its own, created now and dropped with the
    /// store's last clone, reading the time from `clock`: the PostgreSQL
    /// counterpart of `SqliteStore::ephemeral_with_clock`, so tests can run
    /// side by side in one database. [`schema`](Self::schema) names it, for
    /// a second store (another replica) on the same tables.
    pub async fn scratch_with_clock(url: &str, clock: Clock) -> Result<PostgresStore, StoreError> {
        Self::scratch_in(url, Some(clock)).await
    }

    async fn scratch_in(url: &str, clock: Option<Clock>) -> Result<PostgresStore, StoreError> {
        let scratch = ScratchSchema::create(url).await?;
        let (config, name) = (scratch.config.clone(), scratch.name.clone());
        Self::connect(config, Some(name), clock, Some(scratch)).await
    }

    async fn connect(
        mut config: tokio_postgres::Config,
        schema: Option<String>,
        clock: Option<Clock>,
        scratch: Option<ScratchSchema>,
    ) -> Result<PostgresStore, StoreError> {
        let target = describe_target(&config);
        // Every query here is prepared once per connection, and how many rows
        // its time bounds select varies from none to millions: a plan made
        // for one set of values (a generic plan, which PostgreSQL switches to
        // after five runs) can scan a whole table for a newest-20 request.
        let mut options = config.get_options().unwrap_or_default().to_owned();
        options.push_str(" -c plan_cache_mode=force_custom_plan");
        if let Some(schema) = &schema {
            check_schema(schema)?;
            options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(options.trim());
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| StoreError::Worker(format!("cannot build the connection pool: {e}")))?;
        let mut client = pool.get().await.map_err(|e| unreachable(&target, e))?;
        schema::migrate(&mut client).await?;
        drop(client);
        tracing::debug!(target = %target, schema = ?schema, "opened postgres store");
        let ingest_lock = ingest_lock_key(schema.as_deref().unwrap_or_default());
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                target,
                schema,
                tenant_keys: Mutex::new(HashMap::new()),
                ingest_lock,
                clock: clock.clone().unwrap_or_else(|| Arc::new(system_clock)),
                stamp_clock: clock,
                _scratch: scratch,
            }),
        })
    }

    /// The schema the store's tables are in, when it was given one.
    pub fn schema(&self) -> Option<&str> {
        self.inner.schema.as_deref()
    }
}

/// The error of a first connection that failed, naming where it went.
fn unreachable(target: &str, e: deadpool_postgres::PoolError) -> StoreError {
    let reason = match &e {
        deadpool_postgres::PoolError::Backend(e) => describe_postgres(e),
        other => other.to_string(),
    };
    StoreError::PostgresUnreachable { target: target.to_owned(), reason }
}

/// One connection outside any pool, its connection task on the runtime.
async fn connect_once(
    config: &tokio_postgres::Config,
    target: &str,
) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        StoreError::PostgresUnreachable { target: target.to_owned(), reason: describe_postgres(&e) }
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %describe_postgres(&e), "postgres connection ended");
        }
    });
    Ok(client)
}

/// An empty schema of a random name, dropped with everything in it when
/// this value is dropped: the home of a store that lives only for a test.
pub struct ScratchSchema {
    config: tokio_postgres::Config,
    name: String,
}

impl fmt::Debug for ScratchSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScratchSchema").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ScratchSchema {
    /// Creates the schema in the database at `url`.
    pub async fn create(url: &str) -> Result<ScratchSchema, StoreError> {
        let mut config = parse_url(url)?;
        let name = format!("siemgate_scratch_{}", Uuid::new_v4().simple());
        // The store's connections carry the schema's name, so that dropping
        // the schema can find and end any of them still open.
        config.application_name(&name);
        let client = connect_once(&config, &describe_target(&config)).await?;
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await?;
        Ok(ScratchSchema { config, name })
    }

    /// The schema's name, for [`PostgresStore::open_with`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        // Drop may run inside or outside a runtime, and the store's own
        // runtime may be shutting down; a thread with a runtime of its own
        // works in every case.
        let config = self.config.clone();
        let name = std::mem::take(&mut self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Worker(format!("cannot start a runtime: {e}")))?;
            runtime.block_on(async {
                let target = describe_target(&config);
                let client = connect_once(&config, &target).await?;
                // The store's connections may outlive it for a while: their
                // tasks run on the store's runtime, which may be the very
                // thread that waits here, and one may still be in a
                // transaction that holds a lock on the schema's tables.
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await?;
                let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {name} CASCADE");
                client.batch_execute(&sql).await?;
                Ok::<_, StoreError>(())
            })?;
            Ok::<_, StoreError>(())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not drop a scratch schema"),
            Err(_) => tracing::warn!("dropping a scratch schema panicked"),
        }
    }
}

/// What [`Inner::take_ingest_lock`] read once it held the lock, in ticks.
struct LockedAt {
    last_processed: i64,
    database_now: i64,
}

impl Inner {
    /// Takes the store's ingest lock for the rest of `tx` and returns the
    /// newest stamp handed out so far and the database's clock, both read
    /// once the lock is held. Everything that writes detections or
    /// `store_meta` takes it first; window reads wait for it.
    async fn take_ingest_lock(&self, tx: &Transaction<'_>) -> Result<LockedAt, StoreError> {
        let lock = tx.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?;
        let read = tx
            .prepare_cached(
                // The clock in 100 ns ticks since the Unix epoch (it keeps
                // microseconds).
                "SELECT last_processed,
                        (extract(epoch FROM clock_timestamp()) * 10000000)::bigint
                 FROM store_meta",
            )
            .await?;
        // Sent together; the server runs the read after the lock is granted.
        let key = [&self.ingest_lock as &(dyn ToSql + Sync)];
        let (_, row) = tokio::try_join!(tx.execute(&lock, &key), tx.query_one(&read, &[]))?;
        Ok(LockedAt { last_processed: row.get(0), database_now: row.get(1) })
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// The tenant's row key. Tenants are never removed, so a key once found
    /// stays right on every replica and is kept in memory.
    async fn tenant_key<C: GenericClient>(&self, client: &C, id: Uuid) -> Result<i64, StoreError> {
        if let Some(key) = lock(&self.tenant_keys).get(&id).copied() {
            return Ok(key);
        }
        let key: i64 = client
            .query_opt("SELECT tenant_key FROM tenants WHERE id = $1", &[&id])
            .await?
            .ok_or_else(|| StoreError::UnknownTenant(id.to_string()))?
            .get(0);
        lock(&self.tenant_keys).insert(id, key);
        Ok(key)
    }
}

async fn load_tenant<C: GenericClient>(
    client: &C,
    where_clause: &str,
    arg: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<Option<Tenant>, StoreError> {
    let sql = format!(
        "SELECT tenant_key, id, name, state, created_ticks FROM tenants WHERE {where_clause}"
    );
    let Some(row) = client.query_opt(&sql, &[arg]).await? else {
        return Ok(None);
    };
    let key: i64 = row.get(0);
    let domains = client
        .query(
            "SELECT domain FROM tenant_domains WHERE tenant_key = $1 ORDER BY domain_key",
            &[&key],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let state: String = row.get(3);
    Ok(Some(Tenant {
        id: row.get(1),
        name: row.get(2),
        domains,
        state: TenantState::parse(&state)
            .ok_or_else(|| StoreError::Worker(format!("bad tenant state {state}")))?,
        created: Timestamp::from_unix_ticks(row.get(4)),
    }))
}

const INSERT_DETECTIONS: &str = "
    INSERT INTO detections (tenant_key, full_id, processed, machine_group, device_tags,
        cloud_tags, alert_id, device_id, body)
    SELECT $1::bigint, * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[],
        $6::text[], $7::text[], $8::text[], $9::bytea[])
    ON CONFLICT (tenant_key, full_id) DO NOTHING
    RETURNING full_id";

/// Inserts one slice of a batch; returns the `FullId`s it stored. Rows are
/// inserted in batch order, so of a `FullId` repeated within the batch the
/// first is the one stored.
async fn insert_detections(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant_key: i64,
    detections: &[Prepared],
    live_time: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let n = detections.len();
    let (mut full_ids, mut processed, mut groups) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut device_tags, mut cloud_tags, mut alert_ids, mut device_ids, mut bodies) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for d in detections {
        // An archive import keeps its own times and leaves the store's clock
        // alone: a wild time in an archive must not drag later stamps along.
        let time = d.kept_processed_time.unwrap_or(live_time);
        full_ids.push(d.full_id.as_str());
        processed.push(time.unix_ticks());
        groups.push(d.machine_group_key.as_str());
        device_tags.push(d.device_tags_key.as_str());
        cloud_tags.push(d.cloud_tags_key.as_str());
        alert_ids.push(d.alert_id.as_str());
        device_ids.push(d.device_id.as_str());
        bodies.push(d.render(time));
    }
    let insert = tx.prepare_cached(INSERT_DETECTIONS).await?;
    let rows = tx
        .query(
            &insert,
            &[
                &tenant_key,
                &full_ids,
                &processed,
                &groups,
                &device_tags,
                &cloud_tags,
                &alert_ids,
                &device_ids,
                &bodies,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_tenant(&self, tenant: NewTenant) -> Result<Tenant, StoreError> {
        let now = (self.inner.clock)();
        let mut client = self.inner.client().await?;
        let tx = client.transaction().await?;
        if load_tenant(&tx, "id = $1", &tenant.id).await?.is_some() {
            return Err(StoreError::TenantExists(format!("id {}", tenant.id)));
        }
        if load_tenant(&tx, "lower(name) = lower($1)", &tenant.name).await?.is_some() {
            return Err(StoreError::TenantExists(format!("name {:?}", tenant.name)));
        }
        let inserted = tx
            .query_one(
                "INSERT INTO tenants (id, name, state, created_ticks) VALUES ($1, $2, 'active', $3)
                 RETURNING tenant_key",
                &[&tenant.id, &tenant.name, &now.unix_ticks()],
            )
            .await;
        // Another replica may have taken the id or name since the checks above.
        let key: i64 = match inserted {
            Err(e) if is_conflict(&e) => {
                return Err(StoreError::TenantExists(format!("name {:?}", tenant.name)));
            }
            other => other?.get(0),
        };
        for domain in &tenant.domains {
            let added = tx
                .execute(
                    "INSERT INTO tenant_domains (domain, tenant_key) VALUES ($1, $2)",
                    &[domain, &key],
                )
                .await;
            match added {
                Err(e) if is_conflict(&e) => {
                    return Err(StoreError::TenantExists(format!("domain {domain}")));
                }
                other => other?,
            };
        }
        let created = load_tenant(&tx, "tenant_key = $1", &key).await?;
        tx.commit().await?;
        created.ok_or_else(|| StoreError::Worker("tenant vanished after insert".into()))
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let client = self.inner.client().await?;
        let keys = client.query("SELECT tenant_key FROM tenants ORDER BY tenant_key", &[]).await?;
        let mut tenants = Vec::with_capacity(keys.len());
        for row in keys {
            let key: i64 = row.get(0);
            tenants.extend(load_tenant(&client, "tenant_key = $1", &key).await?);
        }
        Ok(tenants)
    }

    async fn find_tenant(&self, key: &str) -> Result<Option<Tenant>, StoreError> {
        let key = key.trim();
        let client = self.inner.client().await?;
        if let Ok(id) = Uuid::parse_str(key) {
            return load_tenant(&client, "id = $1", &id).await;
        }
        let by_domain = "tenant_key = (SELECT tenant_key FROM tenant_domains
                                       WHERE lower(domain) = lower($1))";
        match load_tenant(&client, by_domain, &key).await? {
            Some(tenant) => Ok(Some(tenant)),
            None => load_tenant(&client, "lower(name) = lower($1)", &key).await,
        }
    }

    async fn set_tenant_state(&self, id: Uuid, state: TenantState) -> Result<Tenant, StoreError> {
        let client = self.inner.client().await?;
        let changed = client
            .execute("UPDATE tenants SET state = $1 WHERE id = $2", &[&state.as_str(), &id])
            .await?;
        if changed == 0 {
            return Err(StoreError::UnknownTenant(id.to_string()));
        }
        load_tenant(&client, "id = $1", &id)
            .await?
            .ok_or_else(|| StoreError::UnknownTenant(id.to_string()))
    }

    async fn ingest(&self, tenant: Uuid, batch: Vec<Prepared>) -> Result<IngestReport, StoreError> {
        let mut client = self.inner.client().await?;
        let key = self.inner.tenant_key(&client, tenant).await?;
        let tx = client.transaction().await?;

        // The stamp rule of the module documentation: the lock, held to
        // commit, orders every replica's batches, and the time is read once
        // it is held.
        let locked = self.inner.take_ingest_lock(&tx).await?;
        let now = match &self.inner.stamp_clock {
            Some(clock) => clock().unix_ticks(),
            None => locked.database_now,
        };
        let stamp = now.max(locked.last_processed + 1);
        let live_time = Timestamp::from_unix_ticks(stamp);

        // Of a FullId repeated in the batch only the first can be stored.
        let mut first_is_live: HashMap<&str, bool> = HashMap::with_capacity(batch.len());
        for d in &batch {
            first_is_live.entry(d.full_id.as_str()).or_insert(d.kept_processed_time.is_none());
        }
        let mut stored: HashSet<String> = HashSet::new();
        for slice in batch.chunks(INSERT_ROWS) {
            stored.extend(insert_detections(&tx, key, slice, live_time).await?);
        }
        let stamped = stored.iter().any(|id| first_is_live.get(id.as_str()) == Some(&true));
        if stamped {
            let update = tx.prepare_cached("UPDATE store_meta SET last_processed = $1").await?;
            tx.execute(&update, &[&stamp]).await?;
        }
        tx.commit().await?;
        Ok(IngestReport {
            stored: stored.len() as u64,
            duplicates: (batch.len() - stored.len()) as u64,
            processed: stamped.then_some(live_time),
        })
    }

    async fn stream(
        &self,
        tenant: Uuid,
        query: &AlertsQuery,
        framing: Framing,
    ) -> Result<DetectionStream, StoreError> {
        // The tenant is checked before the stream starts, so that an unknown
        // tenant is an error rather than an empty window.
        let client = self.inner.client().await?;
        let key = self.inner.tenant_key(&client, tenant).await?;
        let (writer, stream) = ChunkWriter::channel(framing);
        // The task holds the store too, so that a scratch schema outlives
        // every window still being read from it.
        let store = Arc::clone(&self.inner);
        let query = query.clone();
        tokio::spawn(async move {
            window::stream_window(client, key, store.ingest_lock, query, writer).await;
            drop(store);
        });
        Ok(stream)
    }

    async fn alert_detections(
        &self,
        tenant: Uuid,
        alert_id: &str,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let client = self.inner.client().await?;
        let key = self.inner.tenant_key(&client, tenant).await?;
        alerts::alert_detections(&client, key, alert_id).await
    }

    async fn device_alerts(
        &self,
        tenant: Uuid,
        device_id: &str,
        limit: usize,
    ) -> Result<Vec<DeviceAlert>, StoreError> {
        let client = self.inner.client().await?;
        let key = self.inner.tenant_key(&client, tenant).await?;
        alerts::device_alerts(&client, key, device_id, limit).await
    }

    async fn purge_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let client = self.inner.client().await?;
        let keys: Vec<i64> = client
            .query("SELECT tenant_key FROM tenants ORDER BY tenant_key", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let delete = client
            .prepare_cached(
                "DELETE FROM detections WHERE (tenant_key, full_id) IN (
                    SELECT tenant_key, full_id FROM detections
                    WHERE tenant_key = $1 AND processed < $2 LIMIT $3)",
            )
            .await?;
        let mut purged = 0;
        for key in keys {
            loop {
                // Each statement is its own short transaction.
                let deleted =
                    client.execute(&delete, &[&key, &cutoff.unix_ticks(), &PURGE_CHUNK]).await?;
                purged += deleted;
                if deleted < PURGE_CHUNK as u64 {
                    break;
                }
            }
        }
        Ok(purged)
    }

    async fn detection_count(&self, tenant: Uuid) -> Result<u64, StoreError> {
        let client = self.inner.client().await?;
        let key = self.inner.tenant_key(&client, tenant).await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM detections WHERE tenant_key = $1", &[&key])
            .await?
            .get(0);
        Ok(n.unsigned_abs())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.inner.client().await?;
        client.batch_execute("SELECT 1").await?;
        Ok(())
    }

    async fn create_app(&self, app: NewApp) -> Result<App, StoreError> {
        let mut client = self.inner.client().await?;
        let tenant_key = self.inner.tenant_key(&client, app.tenant).await?;
        let tx = client.transaction().await?;
        principals::create_app(&tx, tenant_key, &app).await?;
        let created = principals::load_app(&tx, app.client_id).await?;
        tx.commit().await?;
        created.ok_or_else(|| StoreError::UnknownApp(app.client_id.to_string()))
    }

    async fn apps(&self, tenant: Option<Uuid>) -> Result<Vec<App>, StoreError> {
        let client = self.inner.client().await?;
        let tenant_key = match tenant {
            Some(t) => Some(self.inner.tenant_key(&client, t).await?),
            None => None,
        };
        let mut apps = Vec::new();
        for id in principals::app_ids(&client, tenant_key).await? {
            apps.extend(principals::load_app(&client, id).await?);
        }
        Ok(apps)
    }

    async fn find_app(&self, client_id: Uuid) -> Result<Option<App>, StoreError> {
        let client = self.inner.client().await?;
        principals::load_app(&client, client_id).await
    }

    async fn remove_app(&self, client_id: Uuid) -> Result<(), StoreError> {
        let client = self.inner.client().await?;
        principals::remove_app(&client, client_id).await
    }

    async fn add_app_secret(&self, client_id: Uuid, secret: AppSecret) -> Result<App, StoreError> {
        let client = self.inner.client().await?;
        principals::add_secret(&client, client_id, &secret).await?;
        self.reload_app(&client, client_id).await
    }

    async fn remove_app_secret(&self, client_id: Uuid, secret: Uuid) -> Result<App, StoreError> {
        let client = self.inner.client().await?;
        principals::remove_secret(&client, client_id, secret).await?;
        self.reload_app(&client, client_id).await
    }

    async fn set_app_role(
        &self,
        client_id: Uuid,
        role: &str,
        granted: bool,
    ) -> Result<App, StoreError> {
        let client = self.inner.client().await?;
        principals::set_app_role(&client, client_id, role, granted).await?;
        self.reload_app(&client, client_id).await
    }

    async fn create_user(&self, user: User) -> Result<User, StoreError> {
        let client = self.inner.client().await?;
        let tenant_key = self.inner.tenant_key(&client, user.tenant).await?;
        principals::create_user(&client, tenant_key, &user).await?;
        Ok(user)
    }

    async fn users(&self, tenant: Uuid) -> Result<Vec<User>, StoreError> {
        let client = self.inner.client().await?;
        let tenant_key = self.inner.tenant_key(&client, tenant).await?;
        principals::users(&client, tenant_key, None).await
    }

    async fn find_user(&self, tenant: Uuid, username: &str) -> Result<Option<User>, StoreError> {
        let client = self.inner.client().await?;
        let tenant_key = self.inner.tenant_key(&client, tenant).await?;
        Ok(principals::users(&client, tenant_key, Some(username)).await?.into_iter().next())
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let client = self.inner.client().await?;
        principals::user_by_id(&client, id).await
    }

    async fn remove_user(&self, tenant: Uuid, username: &str) -> Result<(), StoreError> {
        let client = self.inner.client().await?;
        let tenant_key = self.inner.tenant_key(&client, tenant).await?;
        principals::remove_user(&client, tenant_key, username).await
    }

    async fn set_user_password(
        &self,
        tenant: Uuid,
        username: &str,
        password_hash: Sealed,
    ) -> Result<(), StoreError> {
        let mut client = self.inner.client().await?;
        let tenant_key = self.inner.tenant_key(&client, tenant).await?;
        let tx = client.transaction().await?;
        principals::set_password(&tx, tenant_key, username, &password_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn save_auth_code(&self, code: AuthCode) -> Result<(), StoreError> {
        let mut client = self.inner.client().await?;
        let tx = client.transaction().await?;
        grants::save_code(&tx, &code).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn redeem_auth_code(&self, hash: Vec<u8>) -> Result<CodeRedemption, StoreError> {
        let mut client = self.inner.client().await?;
        let tx = client.transaction().await?;
        let redemption = grants::redeem_code(&tx, &hash).await?;
        tx.commit().await?;
        Ok(redemption)
    }

    async fn save_refresh_token(&self, grant: RefreshGrant) -> Result<(), StoreError> {
        let mut client = self.inner.client().await?;
        let tx = client.transaction().await?;
        grants::save_refresh(&tx, &grant).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_refresh_token(&self, hash: Vec<u8>) -> Result<Option<RefreshGrant>, StoreError> {
        let client = self.inner.client().await?;
        grants::take_refresh(&client, &hash).await
    }

    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let client = self.inner.client().await?;
        principals::signing_keys(&client).await
    }

    async fn rotate_signing_key(&self, key: StoredKey) -> Result<(), StoreError> {
        let mut client = self.inner.client().await?;
        let tx = client.transaction().await?;
        principals::rotate_key(&tx, &key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn export_registry(&self) -> Result<Registry, StoreError> {
        let mut client = self.inner.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let registry = copy::export_registry(&tx).await?;
        tx.commit().await?;
        Ok(registry)
    }

    async fn import_registry(&self, registry: &Registry) -> Result<(), StoreError> {
        let mut client = self.inner.client().await?;
        let tx = client.transaction().await?;
        // Nothing else writes to the store while it fills.
        self.inner.take_ingest_lock(&tx).await?;
        copy::import_registry(&tx, registry).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn export_detections(
        &self,
        tenant: Uuid,
        after: Option<DetectionKey>,
        limit: usize,
    ) -> Result<Vec<DetectionRow>, StoreError> {
        let client = self.inner.client().await?;
        let key = self.inner.tenant_key(&client, tenant).await?;
        copy::export_detections(&client, key, after, limit).await
    }

    async fn import_detections(
        &self,
        tenant: Uuid,
        rows: Vec<DetectionRow>,
    ) -> Result<u64, StoreError> {
        let mut client = self.inner.client().await?;
        let key = self.inner.tenant_key(&client, tenant).await?;
        let tx = client.transaction().await?;
        // The ingest lock, as for `ingest`: the stamps raised below are
        // committed before any replica picks its next one.
        self.inner.take_ingest_lock(&tx).await?;
        let stored = copy::import_detections(&tx, key, &rows).await?;
        if let Some(newest) = crate::copy::newest_stamp_by(&rows, (self.inner.clock)()) {
            copy::raise_last_processed(&tx, newest).await?;
        }
        tx.commit().await?;
        Ok(stored)
    }
}

impl PostgresStore {
    /// The app as it is after a change, or `UnknownApp` if it is gone.
    async fn reload_app(
        &self,
        client: &deadpool_postgres::Client,
        client_id: Uuid,
    ) -> Result<App, StoreError> {
        principals::load_app(client, client_id)
            .await?
            .ok_or_else(|| StoreError::UnknownApp(client_id.to_string()))
    }
}
