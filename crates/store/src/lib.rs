//! Where tenants and detections live.
//!
//! Everything above this crate talks to a [`Store`]; the SQLite backend is the
//! embedded default and a PostgreSQL backend implements the same trait for
//! several replicas. Detections are kept as rendered JSON beside the columns
//! their filters need, so serving a window writes stored bytes and re-encodes
//! nothing.

pub mod copy;
mod error;
pub mod postgres;
mod principals;
pub mod sqlite;
mod stream;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use siemgate_model::{AlertsQuery, Prepared, Timestamp};
use uuid::Uuid;

/// Where a store reads the time it stamps on detections; tests move it by hand.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub use copy::{DetectionKey, DetectionRow, Registry};
pub use error::StoreError;
pub use postgres::{PostgresStore, ScratchSchema};
pub use principals::{
    App, AppSecret, AuthCode, CodeRedemption, NewApp, RefreshGrant, Sealed, StoredKey, User,
};
pub use sqlite::SqliteStore;
pub use stream::{Chunk, DetectionStream, Framing};

/// An organization whose detections are kept apart from every other's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    /// Domain names the tenant is also reachable by, such as `contoso.onmicrosoft.com`.
    pub domains: Vec<String>,
    pub state: TenantState,
    pub created: Timestamp,
}

/// Whether a tenant's apps may use the API. Neither state removes data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantState {
    Active,
    /// Suspended by an operator; `enable` brings it back.
    Disabled,
    /// Soft-deleted: the API answers 403, the detections stay.
    Deleted,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Disabled => "disabled",
            TenantState::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Option<TenantState> {
        [TenantState::Active, TenantState::Disabled, TenantState::Deleted]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for TenantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `create_tenant` needs; the store stamps the creation time.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: Uuid,
    pub name: String,
    pub domains: Vec<String>,
}

/// The outcome of one ingested batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Detections written by this batch.
    pub stored: u64,
    /// Detections whose `FullId` the tenant already had (or that repeated
    /// within the batch); nothing was written for them.
    pub duplicates: u64,
    /// The `LastProcessedTimeUtc` the store gave this batch; `None` when it
    /// stored nothing new (or only archive records with times of their own).
    pub processed: Option<Timestamp>,
}

/// One alert of a device, as the device's alert list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAlert {
    pub alert_id: String,
    /// How many detections the alert has.
    pub detections: u64,
    /// The newest `LastProcessedTimeUtc` among them.
    pub latest: Timestamp,
    /// The stored JSON of one of its detections (title, severity and times
    /// are the alert's, whichever it is).
    pub body: Vec<u8>,
}

/// The storage behind siemgate. Every method is safe to call concurrently.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Adds a tenant; fails if its id, name or a domain is taken.
    async fn create_tenant(&self, tenant: NewTenant) -> Result<Tenant, StoreError>;

    /// Every tenant, oldest first.
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// A tenant by GUID, domain name or name, case-insensitively.
    async fn find_tenant(&self, key: &str) -> Result<Option<Tenant>, StoreError>;

    /// Moves a tenant to `state` and returns it as it now is.
    async fn set_tenant_state(&self, id: Uuid, state: TenantState) -> Result<Tenant, StoreError>;

    /// Stores a batch in one transaction: all of it or none of it, and
    /// durable before this returns. Detections whose `FullId` the tenant
    /// already has count as duplicates. Each stored detection gets a
    /// `LastProcessedTimeUtc` no earlier than any given before it.
    async fn ingest(&self, tenant: Uuid, batch: Vec<Prepared>) -> Result<IngestReport, StoreError>;

    /// The tenant's detections in `query`'s window that pass its filters,
    /// oldest first by `LastProcessedTimeUtc` then `FullId`; with a limit,
    /// only the newest N, still oldest first. Memory stays bounded however
    /// large the window.
    async fn stream(
        &self,
        tenant: Uuid,
        query: &AlertsQuery,
        framing: Framing,
    ) -> Result<DetectionStream, StoreError>;

    /// The stored JSON of every detection of the tenant's alert `alert_id`,
    /// by `AlertPart`, then `FullId`. Empty when the tenant has no such
    /// alert, whether or not another tenant has one.
    async fn alert_detections(
        &self,
        tenant: Uuid,
        alert_id: &str,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The tenant's alerts on the device `device_id` (its `DeviceID`), at
    /// most `limit`, the most recently processed first. Empty for an empty
    /// `device_id`: records that name no device are not one device.
    async fn device_alerts(
        &self,
        tenant: Uuid,
        device_id: &str,
        limit: usize,
    ) -> Result<Vec<DeviceAlert>, StoreError>;

    /// Removes every tenant's detections processed before `cutoff`; returns how many.
    async fn purge_before(&self, cutoff: Timestamp) -> Result<u64, StoreError>;

    /// How many detections the tenant has.
    async fn detection_count(&self, tenant: Uuid) -> Result<u64, StoreError>;

    /// Succeeds when the store answers queries.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Registers an app with its first secret. Fails for an unknown tenant,
    /// a client id already used, or a name the tenant already has.
    async fn create_app(&self, app: NewApp) -> Result<App, StoreError>;

    /// Every app, or every app of one tenant, oldest first.
    async fn apps(&self, tenant: Option<Uuid>) -> Result<Vec<App>, StoreError>;

    async fn find_app(&self, client_id: Uuid) -> Result<Option<App>, StoreError>;

    /// Removes an app with its secrets; nothing it was issued can be renewed.
    async fn remove_app(&self, client_id: Uuid) -> Result<(), StoreError>;

    /// Adds a secret; the app's other secrets keep working, so secrets rotate
    /// without a gap.
    async fn add_app_secret(&self, client_id: Uuid, secret: AppSecret) -> Result<App, StoreError>;

    async fn remove_app_secret(&self, client_id: Uuid, secret: Uuid) -> Result<App, StoreError>;

    /// Grants (`granted`) or revokes a role; doing either twice is harmless.
    async fn set_app_role(
        &self,
        client_id: Uuid,
        role: &str,
        granted: bool,
    ) -> Result<App, StoreError>;

    /// Adds a user; fails if the tenant already has the username.
    async fn create_user(&self, user: User) -> Result<User, StoreError>;

    /// A tenant's users, oldest first.
    async fn users(&self, tenant: Uuid) -> Result<Vec<User>, StoreError>;

    /// A user by sign-in name, ignoring letter case.
    async fn find_user(&self, tenant: Uuid, username: &str) -> Result<Option<User>, StoreError>;

    /// A user by id, whichever tenant it belongs to.
    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError>;

    /// Removes a user; the refresh tokens issued for the user stop working.
    async fn remove_user(&self, tenant: Uuid, username: &str) -> Result<(), StoreError>;

    /// Replaces a user's password hash; the user's refresh tokens stop working.
    async fn set_user_password(
        &self,
        tenant: Uuid,
        username: &str,
        password_hash: Sealed,
    ) -> Result<(), StoreError>;

    /// Keeps an authorization code until it is redeemed or expires.
    async fn save_auth_code(&self, code: AuthCode) -> Result<(), StoreError>;

    /// Spends the code with this hash: the first call gets it, every later
    /// call learns it was used (and revokes what it was exchanged for).
    async fn redeem_auth_code(&self, hash: Vec<u8>) -> Result<CodeRedemption, StoreError>;

    async fn save_refresh_token(&self, grant: RefreshGrant) -> Result<(), StoreError>;

    /// Removes and returns the refresh token with this hash; a refresh token
    /// is exchanged once, for a new one.
    async fn take_refresh_token(&self, hash: Vec<u8>) -> Result<Option<RefreshGrant>, StoreError>;

    /// Every signing key still kept, the signing one last.
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError>;

    /// Makes `key` the signing key and retires the one before it, together.
    async fn rotate_signing_key(&self, key: StoredKey) -> Result<(), StoreError>;

    /// Everything but the detections, read in one snapshot, for copying
    /// into another store with [`import_registry`](Store::import_registry).
    async fn export_registry(&self) -> Result<Registry, StoreError>;

    /// Writes an exported registry into this store, which must hold no
    /// tenant and no signing key (else `NotEmpty`), in one transaction.
    /// Ids, names, states, times, hashes and keys are kept as they are, and
    /// the order in which every list reads back. New detections are stamped
    /// after `registry.last_processed`.
    async fn import_registry(&self, registry: &Registry) -> Result<(), StoreError>;

    /// Up to `limit` of the tenant's detections as stored, ascending by
    /// `LastProcessedTimeUtc` then `FullId`, starting just after `after`
    /// (at the first with `None`). Fewer than `limit` means the last page.
    async fn export_detections(
        &self,
        tenant: Uuid,
        after: Option<DetectionKey>,
        limit: usize,
    ) -> Result<Vec<DetectionRow>, StoreError>;

    /// Stores exported rows as they are, stamps and bodies included, in one
    /// transaction; a `FullId` the tenant already has is skipped. Returns
    /// how many were written. Afterwards new detections are stamped after
    /// every imported stamp up to the store's clock; later ones (an archive
    /// imported with its own times) do not drag the clock, as for `ingest`.
    async fn import_detections(
        &self,
        tenant: Uuid,
        rows: Vec<DetectionRow>,
    ) -> Result<u64, StoreError>;
}

/// True when a `--database` value names a PostgreSQL database.
pub fn is_postgres_url(database: &str) -> bool {
    let database = database.trim();
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// Opens the store a `--database` value names: a SQLite file path (or
/// `sqlite:PATH`), `memory` for an ephemeral store that vanishes on exit, or
/// a `postgres://` / `postgresql://` URL for a database that several
/// replicas share (plain TCP or a Unix socket; TLS is not supported yet).
pub async fn open(database: &str) -> Result<Arc<dyn Store>, StoreError> {
    let database = database.trim();
    if database == "memory" || database == ":memory:" {
        return Ok(Arc::new(SqliteStore::ephemeral().await?));
    }
    if is_postgres_url(database) {
        return Ok(Arc::new(PostgresStore::open(database).await?));
    }
    let path = database.strip_prefix("sqlite:").unwrap_or(database);
    if path.is_empty() {
        return Err(StoreError::Unsupported(
            "empty database; give a SQLite file path or `memory`".into(),
        ));
    }
    Ok(Arc::new(SqliteStore::open(path).await?))
}
