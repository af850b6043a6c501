//! The store's one error type. Messages say what happened and, when the
//! operator can act, what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

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

    #[error("{0}")]
    Unsupported(String),

    #[error("the store's worker stopped unexpectedly: {0}")]
    Worker(String),
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Worker(e.to_string())
    }
}
