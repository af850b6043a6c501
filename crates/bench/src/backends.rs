//! Which store backends a benchmark measures: SQLite always, and PostgreSQL
//! at the server `--postgres` names unless `--sqlite-only` says otherwise.
//! A backend is never left out silently.

use anyhow::Context;
use clap::Args;
use siemgate_store::PostgresStore;

/// The PostgreSQL server the store's own tests use, as `.ci/run` sets it up.
const TEST_SERVER_VARIABLE: &str = "SIEMGATE_TEST_POSTGRES";

#[derive(Debug, Args)]
pub struct Backends {
    /// The PostgreSQL server to measure beside SQLite, as
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (default: $SIEMGATE_TEST_POSTGRES).
    /// The benchmark works in a schema of its own and drops it at the end.
    #[arg(long, value_name = "URL", env = "SIEMGATE_BENCH_POSTGRES")]
    postgres: Option<String>,
    /// Measure SQLite alone, without a PostgreSQL server.
    #[arg(long)]
    sqlite_only: bool,
}

/// A store backend, as its column in the printed table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl Backends {
    /// The PostgreSQL server to measure, `None` with `--sqlite-only`, and an
    /// error saying how to name one when none is named.
    pub fn postgres(&self, bench: &str) -> anyhow::Result<Option<String>> {
        if self.sqlite_only {
            return Ok(None);
        }
        let url = self.postgres.clone().or_else(|| std::env::var(TEST_SERVER_VARIABLE).ok());
        let url = url.with_context(|| {
            format!(
                "the {bench} benchmark measures SQLite and PostgreSQL side by side and needs a \
                 PostgreSQL server: give its URL with --postgres URL or SIEMGATE_BENCH_POSTGRES \
                 (for example postgres://postgres:postgres@127.0.0.1:5432/postgres), \
                 or pass --sqlite-only to measure SQLite alone"
            )
        })?;
        Ok(Some(url))
    }
}

/// A PostgreSQL store in a scratch schema of its own, dropped with the
/// store, stamping with the database's clock as a replica does.
pub async fn scratch_postgres(url: &str) -> anyhow::Result<PostgresStore> {
    PostgresStore::scratch(url).await.context(
        "cannot make a scratch schema on the PostgreSQL server --postgres names; \
         is it running, and does the URL's user have CREATE on the database?",
    )
}

/// Gathers the planner's statistics on the detections in `schema`, as
/// autovacuum would within a minute or so of a load this size: without
/// them PostgreSQL takes a window of the last hour for a small part of the
/// table and plans newest-N as a read and sort of the whole window.
pub async fn analyze_postgres(url: &str, schema: &str) -> anyhow::Result<()> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.application_name(schema);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client.batch_execute(&format!("ANALYZE {schema}.detections")).await?;
    Ok(())
}
