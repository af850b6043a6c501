//! The store's one error type. Messages say what happened and, when the
//! operator can act, what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("PostgreSQL error: {}", describe_postgres(.0))]
    Postgres(#[from] tokio_postgres::Error),

    #[error(
        "cannot reach PostgreSQL at {target}: {reason}; check that the server runs there \
         (`pg_ctlcluster 15 main start` on Debian), listens on that address, and that \
         pg_hba.conf and the URL's user and password admit this connection"
    )]
    PostgresUnreachable { target: String, reason: String },

    /// The URL is not repeated in the message: it may hold a password.
    #[error("bad PostgreSQL URL: {0}; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    PostgresUrl(String),

    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },

    #[error("no tenant {0}; `siemgate tenant list` shows the tenants there are")]
    UnknownTenant(String),

    #[error("a tenant with {0} already exists")]
    TenantExists(String),

    #[error("no app with client id {0}; `siemgate app list` shows the apps there are")]
    UnknownApp(String),

    #[error("{0} already exists")]
    AppExists(String),

    #[error("the app has no secret {0}; `siemgate app show` lists its secrets")]
    UnknownSecret(String),

    #[error("the tenant has no user {0:?}; `siemgate user list` shows its users")]
    UnknownUser(String),

    #[error("the tenant already has a user {0:?}")]
    UserExists(String),

    #[error(
        "the database has schema version {found} but this siemgate knows only up to \
         {known}; run a newer siemgate"
    )]
    SchemaTooNew { found: i64, known: i64 },

    #[error(
        "the store is not empty: it holds {tenants} tenants and {signing_keys} signing keys; \
         import only into a new, empty store"
    )]
    NotEmpty { tenants: u64, signing_keys: u64 },

    #[error("{0}")]
    Unsupported(String),

    #[error("the store's worker stopped unexpectedly: {0}")]
    Worker(String),
}

/// A tokio-postgres error with its cause: the server's message, its SQLSTATE
/// and detail for a database error, else the error and its source, since
/// tokio-postgres' own `Display` leaves the cause out.
pub(crate) fn describe_postgres(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
            other => StoreError::Worker(format!("no PostgreSQL connection to be had: {other}")),
        }
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Worker(e.to_string())
    }
}
