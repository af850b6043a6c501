//! `siemgate serve`: the server over HTTPS (and plain HTTP beside it when
//! asked), until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use siemgate_server::tls::Tls;
use siemgate_server::{AppState, Keyring, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{now, open_store};
use crate::cli::ServeArgs;
use crate::output::say;

/// How often the signing keys are read again from the store, and so how
/// soon a rotation made elsewhere is published here.
const KEY_REFRESH: Duration = Duration::from_secs(30);

pub async fn run(args: ServeArgs, database: &str) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    let https = bind(args.https).await?;
    let http = match args.http {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    let https_address = https.local_addr()?;
    let public_url = args.public_url.clone().unwrap_or_else(|| https_url(https_address));

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Tls::from_pem_files(cert, key)
            .context("cannot use the certificate given with --tls-cert and --tls-key")?,
        _ => {
            let dir = args.tls_dir.clone().unwrap_or_else(|| default_tls_dir(database));
            let names = certificate_names(&args, https_address, &public_url);
            Tls::generate(&dir, &names).with_context(|| {
                format!("cannot make a certificate in {}; pass --tls-dir", dir.display())
            })?
        }
    };

    let config = ServerConfig::new(&public_url);
    let keyring = Keyring::load(&*store, now(), config.key_lifetime())
        .await
        .context("cannot load signing keys")?;
    let state = AppState::new(store, keyring, config);
    tokio::spawn(siemgate_server::refresh_keys_every(state.clone(), KEY_REFRESH));

    // The first lines name the addresses, so scripts that pass port 0 can
    // find them; the last says the server is taking requests.
    say!("listening on {} (public URL {public_url})", https_url(https_address))?;
    if let Some(http) = &http {
        say!("listening on http://{}", http.local_addr()?)?;
    }
    if let Some(ca) = tls.ca_file() {
        say!("CA certificate {} (point REQUESTS_CA_BUNDLE and SSL_CERT_FILE at it)", ca.display())?;
    }
    say!("ready; stop with Ctrl-C or SIGTERM")?;
    tracing::info!(address = %https_address, %public_url, "serving");

    let (stop, stopped) = watch::channel(false);
    let https = siemgate_server::serve(
        tls.listen(https).context("cannot start accepting HTTPS connections")?,
        state.clone(),
        wait_for(stopped.clone()),
    );
    let http = async {
        match http {
            Some(listener) => siemgate_server::serve(listener, state, wait_for(stopped)).await,
            None => Ok(()),
        }
    };
    let signal = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    let (https, http, ()) = tokio::join!(https, http, signal);
    https.context("the HTTPS listener failed")?;
    http.context("the HTTP listener failed")?;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))
}

/// `https://` and the address, with `localhost` for an unspecified one.
fn https_url(address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        format!("https://localhost:{}", address.port())
    } else {
        format!("https://{address}")
    }
}

/// The generated certificate's CA lives beside the store, so one store keeps
/// one CA; an ephemeral store shares one in the system's temporary folder.
fn default_tls_dir(database: &str) -> PathBuf {
    let path = Path::new(database.strip_prefix("sqlite:").unwrap_or(database));
    if matches!(database, "memory" | ":memory:") {
        return std::env::temp_dir().join("siemgate-tls");
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("siemgate-tls"),
        _ => PathBuf::from("siemgate-tls"),
    }
}

/// Every name a client may reach the server by.
fn certificate_names(args: &ServeArgs, address: SocketAddr, public_url: &str) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !address.ip().is_unspecified() {
        names.push(address.ip().to_string());
    }
    if let Some(host) = url_host(public_url) {
        names.push(host);
    }
    names.extend(args.tls_names.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
    names
}

/// The host of `url`, without brackets or port.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_owned())
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_urls_without_port_or_brackets() {
        assert_eq!(url_host("https://gate.example:8443/x").as_deref(), Some("gate.example"));
        assert_eq!(url_host("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(url_host("https://10.0.0.5").as_deref(), Some("10.0.0.5"));
        assert_eq!(url_host("gate.example"), None);
    }

    #[test]
    fn the_ca_sits_beside_the_store() {
        assert_eq!(
            default_tls_dir("/var/lib/siemgate/s.db"),
            Path::new("/var/lib/siemgate/siemgate-tls")
        );
        assert_eq!(default_tls_dir("s.db"), Path::new("siemgate-tls"));
        assert_eq!(default_tls_dir("memory"), std::env::temp_dir().join("siemgate-tls"));
    }
}
