//! One module per subcommand, and the few helpers they share.

mod alerts;
mod app;
mod demo;
mod ingest;
mod keys;
mod migrate;
mod pull;
mod purge;
mod serve;
mod serve_demo;
mod simulate;
mod tenant;
mod user;

use std::sync::Arc;

use anyhow::Context;
use siemgate_model::Timestamp;
use siemgate_store::{Store, Tenant};

use crate::cli::{Command, DEFAULT_DATABASE};

/// Runs one subcommand to completion against the store `database` names.
pub async fn run(command: Command, database: Option<String>) -> anyhow::Result<()> {
    let store = database.as_deref().unwrap_or(DEFAULT_DATABASE);
    match command {
        Command::Serve(args) => serve::run(args, database.as_deref()).await,
        Command::Pull(args) => pull::run(*args).await,
        Command::Demo(args) => demo::run(args, database.as_deref()).await,
        Command::Ingest(args) => ingest::run(args, store).await,
        Command::Simulate(args) => simulate::run(args, store).await,
        Command::Alerts(args) => alerts::run(args, store).await,
        Command::Tenant(command) => tenant::run(command, store).await,
        Command::Purge(args) => purge::run(args, store).await,
        Command::App(command) => app::run(command, store).await,
        Command::User(command) => user::run(command, store).await,
        Command::Keys(command) => keys::run(command, store).await,
        Command::Migrate(args) => migrate::run(args).await,
    }
}

/// Opens the store named by `--database`.
async fn open_store(database: &str) -> anyhow::Result<Arc<dyn Store>> {
    siemgate_store::open(database)
        .await
        .with_context(|| format!("cannot open store {}", without_password(database)))
}

/// A `--database` value fit for messages: a URL's password replaced by `***`.
fn without_password(database: &str) -> std::borrow::Cow<'_, str> {
    let Some(scheme_end) = database.find("://").map(|i| i + 3) else {
        return database.into();
    };
    let rest = &database[scheme_end..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return database.into();
    };
    match authority[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &database[..scheme_end],
            &authority[..colon],
            &database[scheme_end + at..]
        )
        .into(),
        None => database.into(),
    }
}

/// Finds a tenant by GUID, domain or name, or says how to list them.
async fn find_tenant(store: &dyn Store, key: &str) -> anyhow::Result<Tenant> {
    store.find_tenant(key).await?.with_context(|| {
        format!(
            "no tenant {key:?} in this store; `siemgate tenant list` shows the tenants there are"
        )
    })
}

/// The wall clock, at the store's precision.
fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn a_database_urls_password_stays_out_of_messages() {
        assert_eq!(
            without_password("postgres://gate:s3cret@db:5432/siemgate"),
            "postgres://gate:***@db:5432/siemgate"
        );
        assert_eq!(without_password("postgres://gate@db/siemgate"), "postgres://gate@db/siemgate");
        assert_eq!(without_password("/var/lib/siemgate/s.db"), "/var/lib/siemgate/s.db");
    }
}
