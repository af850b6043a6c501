//! siemgate's server in a process of its own, so that its memory is measured
//! apart from the benchmark's: the benchmark runs itself again with the
//! hidden `api-server` command.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use clap::Args;
use siemgate_model::Timestamp;
use siemgate_server::{AppState, Keyring, ServerConfig};
use siemgate_store::{PostgresStore, Store};

use crate::report::rss_mib_of;

/// The variable that carries the store to the server process, so that a
/// PostgreSQL password stays out of the process list.
const STORE_VARIABLE: &str = "SIEMGATE_BENCH_STORE";

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The store to serve: a SQLite file or a `postgres://` URL.
    #[arg(long, env = STORE_VARIABLE, hide_env_values = true)]
    store: String,
    /// The PostgreSQL schema the store's tables are in.
    #[arg(long)]
    schema: Option<String>,
}

/// The store a server process serves, as the benchmark tells it.
#[derive(Debug, Clone)]
pub struct ServerStore {
    /// A SQLite file or a `postgres://` URL.
    pub database: String,
    /// For PostgreSQL, the (scratch) schema the tables are in.
    pub schema: Option<String>,
}

impl ServerStore {
    pub fn sqlite(file: &Path) -> ServerStore {
        ServerStore { database: file.display().to_string(), schema: None }
    }
}

/// Serves `--store` over plain HTTP on a free local port, writes the URL as
/// the first line of stdout, and stops when stdin closes, which it does when
/// the benchmark ends, however it ends.
pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = match &args.schema {
        // The database's clock stamps batches, as on a production replica.
        Some(schema) => Arc::new(PostgresStore::open_with(&args.store, Some(schema), None).await?),
        None => siemgate_store::open(&args.store).await?,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let config = ServerConfig::new(&base);
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let keyring = Keyring::load(&*store, now, config.key_lifetime()).await?;
    let state = AppState::new(store, keyring, config);
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{base}")?;
    stdout.flush()?;
    siemgate_server::serve(listener, state, stdin_closed()).await?;
    Ok(())
}

async fn stdin_closed() {
    let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
}

/// The server process, stopped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Child,
}

impl ServerProcess {
    /// Starts a server on `store` and waits until it listens.
    pub async fn start(store: &ServerStore) -> anyhow::Result<ServerProcess> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("api-server").env(STORE_VARIABLE, &store.database);
        if let Some(schema) = &store.schema {
            command.args(["--schema", schema]);
        }
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let first_line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await??;
        let base = first_line.trim().to_owned();
        let server = ServerProcess { base, child };
        anyhow::ensure!(
            server.base.starts_with("http://"),
            "the server process did not start; its error is printed above"
        );
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_mib_of(&self.pid().to_string())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
