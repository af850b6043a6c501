//! `siemgate serve`: the server, until SIGTERM or Ctrl-C.

use anyhow::Context;
use siemgate_model::Span;
use siemgate_server::{AppState, Keyring, ServerConfig};

use super::{now, open_store};
use crate::cli::ServeArgs;
use crate::output::say;

pub async fn run(args: ServeArgs, database: &str) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    let address = listener.local_addr()?;
    let public_url = args.public_url.unwrap_or_else(|| format!("http://{address}"));
    let config = ServerConfig::new(&public_url);
    let lifetime = Span::from_seconds(config.token_lifetime_seconds + 300);
    let keyring =
        Keyring::load(&*store, now(), lifetime).await.context("cannot load signing keys")?;
    let state = AppState::new(store, keyring, config);

    // The first line names the address, so scripts that pass port 0 can find it.
    say!("listening on http://{address} (public URL {public_url})")?;
    tracing::info!(%address, %public_url, "serving");
    siemgate_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
