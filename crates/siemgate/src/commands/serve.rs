//! `siemgate serve`: the server over HTTPS (and plain HTTP beside it when
//! asked), with retention in the background, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use siemgate_server::tls::Tls;
use siemgate_server::{AppState, Keyring, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use siemgate_model::Span;
use siemgate_store::Store;

use super::{now, open_store, serve_demo};
use crate::cli::{DEFAULT_DATABASE, ServeArgs};
use crate::config::FileConfig;
use crate::output::say;

/// How often the signing keys are read again from the store, and so how
/// soon a rotation made elsewhere is published here, unless set otherwise.
const KEY_REFRESH_SECONDS: i64 = 30;

/// Every setting of a server, from its flag, environment variable, file or default.
#[derive(Debug)]
struct Settings {
    database: String,
    https: SocketAddr,
    http: Option<SocketAddr>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_dir: Option<PathBuf>,
    tls_names: Vec<String>,
    retention: Option<Span>,
    rate_limit: Option<f64>,
    max_ingest_bytes: Option<usize>,
    key_refresh: Duration,
}

impl Settings {
    fn resolve(args: &ServeArgs, database: Option<&str>) -> anyhow::Result<Settings> {
        let file = FileConfig::load(args.config.as_deref())?;
        // A demo keeps nothing unless asked to.
        let fallback = if args.demo { "memory" } else { DEFAULT_DATABASE };
        let retention = span_setting("retention", args.retention, file.retention.as_deref())?;
        let key_refresh =
            span_setting("key_refresh", args.key_refresh, file.key_refresh.as_deref())?
                .unwrap_or(Span::from_seconds(KEY_REFRESH_SECONDS));
        anyhow::ensure!(
            key_refresh.ticks() > 0,
            "key refresh {key_refresh}: give a positive span such as PT30S"
        );
        let key_refresh = Duration::from_nanos(key_refresh.ticks() as u64 * 100);
        let rate_limit = args.rate_limit.or(file.rate_limit);
        if let Some(rate) = rate_limit {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "rate limit {rate}: give a positive number of requests a second, such as 10"
            );
        }
        let (tls_cert, tls_key) = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => (Some(cert.clone()), Some(key.clone())),
            _ => (file.tls_cert, file.tls_key),
        };
        anyhow::ensure!(
            tls_cert.is_some() == tls_key.is_some(),
            "tls_cert and tls_key go together; give both or neither"
        );
        Ok(Settings {
            database: database.map(str::to_owned).or(file.database).unwrap_or(fallback.into()),
            https: args.https.or(file.https).unwrap_or(DEFAULT_HTTPS),
            http: args.http.or(file.http),
            public_url: args.public_url.clone().or(file.public_url),
            tls_cert,
            tls_key,
            tls_dir: args.tls_dir.clone().or(file.tls_dir),
            tls_names: match args.tls_names.is_empty() {
                true => file.tls_names.unwrap_or_default(),
                false => args.tls_names.clone(),
            },
            retention,
            rate_limit,
            max_ingest_bytes: args.max_ingest_bytes.or(file.max_ingest_bytes),
            key_refresh,
        })
    }
}

/// A span from its flag (or environment variable), else from the file's
/// `key`, whose text is checked here.
fn span_setting(key: &str, flag: Option<Span>, file: Option<&str>) -> anyhow::Result<Option<Span>> {
    match (flag, file) {
        (Some(span), _) => Ok(Some(span)),
        (None, Some(text)) => Span::parse(text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{key} {text:?} in the configuration file: {e}")),
        (None, None) => Ok(None),
    }
}

const DEFAULT_HTTPS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8443);

pub async fn run(args: ServeArgs, database: Option<&str>) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args, database)?;
    let store = open_store(&settings.database).await?;
    let https = bind(settings.https).await?;
    let http = match settings.http {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    let https_address = https.local_addr()?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| https_url(https_address));
    let tls = tls(&settings, https_address, &public_url)?;

    let mut config = ServerConfig::new(&public_url);
    config.rate_limit_per_app = settings.rate_limit;
    if let Some(bytes) = settings.max_ingest_bytes {
        config.ingest_limit_bytes = bytes;
    }
    let keyring = Keyring::load(&*store, now(), config.key_lifetime())
        .await
        .context("cannot load signing keys")?;
    let state = AppState::new(Arc::clone(&store), keyring, config);
    tokio::spawn(siemgate_server::refresh_keys_every(state.clone(), settings.key_refresh));
    if let Some(age) = settings.retention {
        tokio::spawn(purge_every(Arc::clone(&store), age, RETENTION_CHECK));
    }
    let demo = match args.demo {
        true => Some(
            serve_demo::prepare_demo(&*store, &public_url)
                .await
                .context("cannot set up the demo tenant")?,
        ),
        false => None,
    };

    // The first lines name the addresses, so scripts that pass port 0 can
    // find them; the last says the server is taking requests.
    say!("listening on {} (public URL {public_url})", https_url(https_address))?;
    if let Some(http) = &http {
        say!("listening on http://{}", http.local_addr()?)?;
    }
    if let Some(ca) = tls.ca_file() {
        say!("CA certificate {} (point REQUESTS_CA_BUNDLE and SSL_CERT_FILE at it)", ca.display())?;
    }
    if let Some(demo) = &demo {
        say!("\n{}", serve_demo::instructions(demo, &public_url, tls.ca_file(), args.demo_rate))?;
        let feed = serve_demo::feed(
            Arc::clone(&store),
            demo.tenant.id,
            public_url.clone(),
            args.demo_rate,
        );
        tokio::spawn(feed);
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
        tracing::info!("stopping: no new connections; requests in flight finish");
        let _ = stop.send(true);
    };
    let (https, http, ()) = tokio::join!(https, http, signal);
    https.context("the HTTPS listener failed")?;
    http.context("the HTTP listener failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// The operator's certificate, or one made by the local CA.
fn tls(settings: &Settings, address: SocketAddr, public_url: &str) -> anyhow::Result<Tls> {
    if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
        return Tls::from_pem_files(cert, key)
            .context("cannot use the certificate given with --tls-cert and --tls-key");
    }
    let dir = settings.tls_dir.clone().unwrap_or_else(|| default_tls_dir(&settings.database));
    let names = certificate_names(&settings.tls_names, address, public_url);
    Tls::generate(&dir, &names)
        .with_context(|| format!("cannot make a certificate in {}; pass --tls-dir", dir.display()))
}

/// How often retention is applied.
const RETENTION_CHECK: Duration = Duration::from_secs(3600);

/// Deletes detections older than `age` now and every `period` after, until
/// dropped. A failure is logged and tried again next time.
async fn purge_every(store: Arc<dyn Store>, age: Span, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let cutoff = now().add_ticks(-age.ticks());
        match store.purge_before(cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, %cutoff, "retention: old detections deleted"),
            Err(e) => tracing::warn!(error = %e, "retention: purging failed; trying again later"),
        }
    }
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
/// one CA; an ephemeral store shares one in the system's temporary folder. A
/// PostgreSQL store has no folder, so its CA is in the working folder (the
/// replicas behind one balancer should be given one `--tls-cert` anyway).
fn default_tls_dir(database: &str) -> PathBuf {
    let path = Path::new(database.strip_prefix("sqlite:").unwrap_or(database));
    if matches!(database, "memory" | ":memory:") {
        return std::env::temp_dir().join("siemgate-tls");
    }
    if siemgate_store::is_postgres_url(database) {
        return PathBuf::from("siemgate-tls");
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("siemgate-tls"),
        _ => PathBuf::from("siemgate-tls"),
    }
}

/// Every name a client may reach the server by.
fn certificate_names(extra: &[String], address: SocketAddr, public_url: &str) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !address.ip().is_unspecified() {
        names.push(address.ip().to_string());
    }
    if let Some(host) = url_host(public_url) {
        names.push(host);
    }
    names.extend(extra.iter().cloned());
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
pub(super) async fn shutdown_signal() {
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
        assert_eq!(default_tls_dir("postgres://u:p@db:5432/siemgate"), Path::new("siemgate-tls"));
    }
}
