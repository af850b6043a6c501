//! `siemgate pull`: settings from flags, environment and a TOML file turned
//! into streams and sinks, then one window pulled or the streams followed
//! until SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use siemgate_model::{Span, Timestamp};
use siemgate_pull::api::{Api, Filters, Query};
use siemgate_pull::checkpoint::Checkpoint;
use siemgate_pull::endpoint::{DEFAULT_RESOURCE, Endpoint, Hosts, Region, TokenVersion};
use siemgate_pull::follow::{FollowOptions, Stats, Stream, now};
use siemgate_pull::oneshot::{self, Tries};
use siemgate_pull::sink::Sink;
use siemgate_pull::sink::file::{FileSink, FileSinkConfig};
use siemgate_pull::sink::hec::{HecConfig, HecSink};
use siemgate_pull::sink::output::{FileOutput, Format, StdoutOutput};
use siemgate_pull::sink::syslog::{Facility, SyslogConfig, SyslogSink, Transport};
use siemgate_pull::token::Tokens;
use siemgate_pull::window::Pulled;
use tokio::sync::watch;

use crate::cli::PullArgs;

/// The environment variable read for the secret when no other is named.
const SECRET_ENV: &str = "SIEMGATE_PULL_CLIENT_SECRET";

/// What a `[[stream]]` table of the configuration file holds: one tenant
/// followed into its own checkpoint (and its own file, for the file sink).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFile {
    pub name: Option<String>,
    pub tenant: String,
    pub client_id: String,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub checkpoint: PathBuf,
    pub output: Option<PathBuf>,
}

/// Every key the configuration file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullFile {
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub region: Option<String>,
    pub url: Option<String>,
    pub token_url: Option<String>,
    pub resource: Option<String>,
    pub token_version: Option<u8>,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<String>,
    pub no_gzip: Option<bool>,
    pub since: Option<String>,
    pub machine_groups: Option<Vec<String>>,
    pub device_tag: Option<String>,
    pub cloud_tags: Option<Vec<String>>,
    pub format: Option<String>,
    pub output: Option<PathBuf>,
    pub follow: Option<bool>,
    pub checkpoint: Option<PathBuf>,
    pub interval: Option<String>,
    pub lag: Option<String>,
    pub max_window: Option<String>,
    pub sink: Option<String>,
    pub metrics: Option<std::net::SocketAddr>,
    pub rotate_size: Option<u64>,
    pub rotate_age: Option<String>,
    pub keep: Option<usize>,
    pub syslog: Option<String>,
    pub syslog_transport: Option<String>,
    pub syslog_ca_file: Option<PathBuf>,
    pub syslog_server_name: Option<String>,
    pub syslog_facility: Option<String>,
    pub hec_url: Option<String>,
    pub hec_token_env: Option<String>,
    pub hec_token_file: Option<PathBuf>,
    pub hec_index: Option<String>,
    pub hec_sourcetype: Option<String>,
    pub hec_ack: Option<bool>,
    pub hec_ca_file: Option<PathBuf>,
    pub hec_insecure: Option<bool>,
    #[serde(default)]
    pub stream: Vec<StreamFile>,
}

impl PullFile {
    fn load(path: Option<&Path>) -> anyhow::Result<PullFile> {
        let Some(path) = path else {
            return Ok(PullFile::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end().replace('\n', " "))
        })
    }
}

/// Flags over the file: the command line and environment win.
fn merge(mut args: PullArgs, file: &mut PullFile) -> PullArgs {
    macro_rules! take {
        ($($field:ident),*) => { $( if args.$field.is_none() { args.$field = file.$field.take(); } )* };
    }
    take!(
        tenant,
        client_id,
        secret_env,
        secret_file,
        region,
        url,
        token_url,
        resource,
        ca_file,
        proxy,
        since,
        device_tag,
        format,
        output,
        checkpoint,
        interval,
        lag,
        max_window,
        sink,
        metrics,
        rotate_size,
        rotate_age,
        keep,
        syslog,
        syslog_transport,
        syslog_ca_file,
        syslog_server_name,
        syslog_facility,
        hec_url,
        hec_token_env,
        hec_token_file,
        hec_index,
        hec_sourcetype,
        hec_ca_file
    );
    if args.token_version.is_none() {
        args.token_version = file.token_version.map(|v| v.to_string());
    }
    if args.machine_groups.is_empty() {
        args.machine_groups = file.machine_groups.take().unwrap_or_default();
    }
    if args.cloud_tags.is_empty() {
        args.cloud_tags = file.cloud_tags.take().unwrap_or_default();
    }
    args.follow |= file.follow.unwrap_or(false);
    args.no_gzip |= file.no_gzip.unwrap_or(false);
    args.hec_ack |= file.hec_ack.unwrap_or(false);
    args.hec_insecure |= file.hec_insecure.unwrap_or(false);
    args
}

/// Runs `siemgate pull`.
pub async fn run(args: PullArgs) -> anyhow::Result<()> {
    let mut file = PullFile::load(args.config.as_deref())?;
    let args = merge(args, &mut file);
    if args.follow {
        follow(args, file.stream).await
    } else {
        if !file.stream.is_empty() {
            bail!("[[stream]] tables are for --follow; a one-shot pull reads one tenant's flags");
        }
        one_shot(args).await
    }
}

fn span(flag: &str, value: Option<&str>, default: &str) -> anyhow::Result<Span> {
    let text = value.unwrap_or(default);
    Span::parse(text).map_err(|e| {
        anyhow::anyhow!("--{flag} {text:?}: {e}; write an ISO 8601 duration such as PT5M or P1D")
    })
}

fn time(flag: &str, value: &str) -> anyhow::Result<Timestamp> {
    Timestamp::parse(value).map_err(|e| {
        anyhow::anyhow!("--{flag} {value:?}: {e}; write a UTC time such as 2026-01-31T08:00:00Z")
    })
}

fn filters(args: &PullArgs) -> Filters {
    Filters {
        machine_groups: args.machine_groups.clone(),
        device_tag: args.device_tag.clone(),
        cloud_tags: args.cloud_tags.clone(),
    }
}

/// The first line of `path`, for secrets and tokens kept in files.
fn first_line(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(line)
}

/// The secret from a file, a named environment variable or the default one.
fn secret(env: Option<&str>, file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(path) = file {
        return first_line(path, "secret");
    }
    let var = env.unwrap_or(SECRET_ENV);
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
        _ => bail!(
            "no client secret: put it in the environment variable {var}, or name another \
             variable with --secret-env, or a file with --secret-file"
        ),
    }
}

/// The hosts, resource and TLS settings every stream shares.
struct Connection {
    hosts: Hosts,
    resource: String,
    version: TokenVersion,
    ca_file: Option<PathBuf>,
    proxy: Option<String>,
    gzip: bool,
}

impl Connection {
    fn from_args(args: &PullArgs) -> anyhow::Result<Connection> {
        let hosts = match (&args.region, &args.url) {
            (Some(region), None) => {
                let region: Region = region.parse().map_err(|e: String| anyhow::anyhow!(e))?;
                if args.token_url.is_some() {
                    bail!("--token-url goes with --url; a region has its own token endpoint");
                }
                Hosts::Region(region)
            }
            (None, Some(url)) => {
                Hosts::Custom { url: url.clone(), token_url: args.token_url.clone() }
            }
            (Some(_), Some(_)) => bail!("give --region or --url, not both"),
            (None, None) => bail!(
                "where to pull from: --region eu|us|uk|us-gov-gcc|us-gov for Microsoft's hosts, \
                 or --url for another server such as siemgate's"
            ),
        };
        let version = match args.token_version.as_deref() {
            None | Some("1") => TokenVersion::V1,
            Some("2") => TokenVersion::V2,
            Some(other) => bail!("token_version {other:?}: write 1 or 2"),
        };
        Ok(Connection {
            hosts,
            resource: args.resource.clone().unwrap_or_else(|| DEFAULT_RESOURCE.to_string()),
            version,
            ca_file: args.ca_file.clone(),
            proxy: args.proxy.clone(),
            gzip: !args.no_gzip,
        })
    }

    fn api(&self, tenant: &str, client_id: &str, secret: String) -> anyhow::Result<Api> {
        let (alerts_url, token_url) = self.hosts.urls(tenant, self.version);
        let endpoint = Endpoint {
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            client_secret: secret,
            alerts_url: alerts_url.clone(),
            token_url,
            resource: self.resource.clone(),
            token_version: self.version,
            ca_file: self.ca_file.clone(),
            proxy: self.proxy.clone(),
            gzip: self.gzip,
        };
        let http = siemgate_pull::http::client(&endpoint)?;
        Ok(Api::new(http.clone(), Tokens::new(http, endpoint), alerts_url))
    }
}

fn format(args: &PullArgs) -> anyhow::Result<Format> {
    Ok(match args.format.as_deref().unwrap_or("json") {
        "json" => Format::Json,
        "ndjson" => Format::Ndjson,
        "csv" => Format::Csv,
        other => bail!("--format {other:?}: write json, ndjson or csv"),
    })
}

async fn one_shot(args: PullArgs) -> anyhow::Result<()> {
    for (flag, set) in [("checkpoint", args.checkpoint.is_some()), ("sink", args.sink.is_some())] {
        if set {
            bail!("--{flag} is for --follow");
        }
    }
    let connection = Connection::from_args(&args)?;
    let tenant = args.tenant.as_deref().context("--tenant is required")?;
    let client_id = args.client_id.as_deref().context("--client-id is required")?;
    let secret = secret(args.secret_env.as_deref(), args.secret_file.as_deref())?;
    let api = connection.api(tenant, client_id, secret)?;

    let now = now();
    let (since, until) = match (&args.ago, &args.since, &args.until) {
        (Some(ago), _, _) => (now.add_ticks(-span("ago", Some(ago), "")?.ticks()), now),
        (None, since, until) => {
            let until = until.as_deref().map(|u| time("until", u)).transpose()?.unwrap_or(now);
            let since = match since {
                Some(s) => time("since", s)?,
                None => until.add_ticks(-Span::from_hours(2).ticks()),
            };
            if since > until {
                bail!("--since {since} is after --until {until}");
            }
            (since, until)
        }
    };
    let query = Query { since, until, limit: args.limit, filters: filters(&args) };
    let format = format(&args)?;
    let (mut sink, spool_dir): (Box<dyn Sink>, PathBuf) = match &args.output {
        Some(path) => (Box::new(FileOutput::create(path, format)?), std::env::temp_dir()),
        None => (Box::new(StdoutOutput::new(format, true)), std::env::temp_dir()),
    };

    let mut progress = Progress::new(args.output.is_some());
    let pulled =
        oneshot::pull(&api, &query, sink.as_mut(), &spool_dir, &Tries::default(), &mut |p| {
            progress.show(p)
        })
        .await
        .with_context(|| format!("cannot pull [{since}, {until}) from {}", api.alerts_url()))?;
    progress.done(&pulled);
    tracing::info!(detections = pulled.delivered, bytes = pulled.bytes, "pulled");
    Ok(())
}

/// A one-line progress report on standard error, when it is a terminal and
/// the detections are not going there too.
struct Progress {
    on: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(output_is_file: bool) -> Progress {
        let on = output_is_file && std::io::stderr().is_terminal();
        Progress { on, started: Instant::now(), last: Instant::now() }
    }

    fn show(&mut self, pulled: &Pulled) {
        if !self.on || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        self.line(pulled, "\r");
    }

    fn done(&mut self, pulled: &Pulled) {
        if self.on {
            self.line(pulled, "\r");
            crate::output::stderr_line("");
        }
    }

    fn line(&self, pulled: &Pulled, start: &str) {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let mib = pulled.bytes as f64 / (1024.0 * 1024.0);
        crate::output::stderr_text(&format!(
            "{start}{} detections, {mib:.1} MiB, {:.0} detections/s   ",
            pulled.delivered,
            pulled.delivered as f64 / seconds
        ));
    }
}

/// One stream's own settings, from the flags or a `[[stream]]` table.
struct StreamSettings {
    name: String,
    tenant: String,
    client_id: String,
    secret: String,
    checkpoint: PathBuf,
    output: Option<PathBuf>,
}

fn streams(args: &PullArgs, tables: Vec<StreamFile>) -> anyhow::Result<Vec<StreamSettings>> {
    let mut streams = Vec::new();
    if args.output.is_some() && !tables.is_empty() && args.tenant.is_none() {
        bail!("--output names one file; give each [[stream]] its own `output`");
    }
    if let Some(tenant) = &args.tenant {
        let checkpoint = args.checkpoint.clone().context(
            "--follow needs --checkpoint FILE: where the stream's position is kept across restarts",
        )?;
        streams.push(StreamSettings {
            name: tenant.clone(),
            tenant: tenant.clone(),
            client_id: args.client_id.clone().context("--client-id is required")?,
            secret: secret(args.secret_env.as_deref(), args.secret_file.as_deref())?,
            checkpoint,
            output: args.output.clone(),
        });
    }
    for table in tables {
        streams.push(StreamSettings {
            name: table.name.unwrap_or_else(|| table.tenant.clone()),
            secret: secret(table.secret_env.as_deref(), table.secret_file.as_deref())
                .with_context(|| format!("stream {}", table.tenant))?,
            tenant: table.tenant,
            client_id: table.client_id,
            checkpoint: table.checkpoint,
            output: table.output,
        });
    }
    if streams.is_empty() {
        bail!(
            "nothing to follow: give --tenant, --client-id and --checkpoint, or [[stream]] tables in --config"
        );
    }
    // Compared as absolute paths: `./cp.json` and `/srv/cp.json` may be one
    // file, whose second lock would otherwise be blamed on another puller.
    let mut checkpoints: Vec<PathBuf> = streams
        .iter()
        .map(|s| std::path::absolute(&s.checkpoint).unwrap_or_else(|_| s.checkpoint.clone()))
        .collect();
    checkpoints.sort();
    if let Some(pair) = checkpoints.windows(2).find(|w| w[0] == w[1]) {
        bail!("two streams share the checkpoint {}; give each its own", pair[0].display());
    }
    Ok(streams)
}

async fn follow(args: PullArgs, tables: Vec<StreamFile>) -> anyhow::Result<()> {
    for (flag, set) in [
        ("until", args.until.is_some()),
        ("ago", args.ago.is_some()),
        ("limit", args.limit.is_some()),
    ] {
        if set {
            bail!("--{flag} is for one-shot pulls; following moves the window by itself");
        }
    }
    if args.format.is_some() {
        bail!(
            "--format is for one-shot pulls; following writes NDJSON to a file or standard \
             output, CEF to syslog and events to HEC"
        );
    }
    let connection = Connection::from_args(&args)?;
    let lag = span("lag", args.lag.as_deref(), "PT2M")?;
    let start = match &args.since {
        Some(s) => time("since", s)?,
        None => now().add_ticks(-Span::from_hours(2).ticks()),
    };
    let options = FollowOptions {
        interval: std_duration(span("interval", args.interval.as_deref(), "PT1M")?),
        lag,
        start,
        max_window: span("max-window", args.max_window.as_deref(), "PT1H")?,
        filters: filters(&args),
        first_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(300),
        loud_after: 3,
        split_after: 3,
        spool_dir: std::env::temp_dir(),
    };
    let streams = streams(&args, tables)?;

    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut all_stats = Vec::new();
    for settings in streams {
        let api = connection.api(&settings.tenant, &settings.client_id, settings.secret.clone())?;
        let checkpoint = Checkpoint::open(
            &settings.checkpoint,
            &format!("{} {}", api.alerts_url(), settings.tenant),
        )?;
        let sink = make_sink(&args, &settings)?;
        let stats = Arc::new(Stats::default());
        all_stats.push((settings.name.clone(), stats.clone()));
        let stream =
            Stream { name: settings.name, api, checkpoint, sink, options: options.clone(), stats };
        tasks.spawn(stream.follow(stop.clone()));
    }
    if let Some(addr) = args.metrics {
        siemgate_pull::metrics::serve(addr, all_stats)
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
    }
    tokio::spawn(async move {
        crate::commands::serve::shutdown_signal().await;
        tracing::info!("stopping: windows in flight are abandoned and pulled again next time");
        let _ = stop_tx.send(true);
    });
    let mut failed = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(anyhow::Error::new(e)),
            Err(e) => failed = Some(anyhow::anyhow!("a stream stopped: {e}")),
        }
    }
    failed.map_or(Ok(()), Err)
}

fn std_duration(span: Span) -> Duration {
    Duration::from_nanos(span.ticks() as u64 * 100)
}

fn make_sink(args: &PullArgs, stream: &StreamSettings) -> anyhow::Result<Box<dyn Sink>> {
    let kind =
        args.sink.as_deref().unwrap_or(if stream.output.is_some() { "file" } else { "stdout" });
    match kind {
        "stdout" => Ok(Box::new(StdoutOutput::new(Format::Ndjson, false))),
        "file" => {
            let path = stream.output.clone().context("--sink file needs --output FILE")?;
            let config = FileSinkConfig {
                path,
                rotate_size: args.rotate_size,
                rotate_age: args
                    .rotate_age
                    .as_deref()
                    .map(|age| span("rotate-age", Some(age), "").map(std_duration))
                    .transpose()?,
                keep: args.keep,
            };
            Ok(Box::new(FileSink::new(config)?))
        }
        "syslog" => Ok(Box::new(SyslogSink::new(syslog_config(args)?)?)),
        "hec" => {
            let url = args.hec_url.clone().context("--sink hec needs --hec-url")?;
            let token = match &args.hec_token_file {
                Some(path) => first_line(path, "HEC token")?,
                None => {
                    let var = args.hec_token_env.as_deref().unwrap_or("SIEMGATE_PULL_HEC_TOKEN");
                    std::env::var(var).ok().filter(|t| !t.trim().is_empty()).with_context(|| {
                        format!("no HEC token: put it in {var}, or give --hec-token-file")
                    })?
                }
            };
            let mut config = HecConfig::new(url, token.trim());
            config.index = args.hec_index.clone();
            if let Some(sourcetype) = &args.hec_sourcetype {
                config.sourcetype = sourcetype.clone();
            }
            config.ack = args.hec_ack;
            config.ca_file = args.hec_ca_file.clone();
            config.insecure = args.hec_insecure;
            Ok(Box::new(HecSink::new(&config)?))
        }
        other => bail!("--sink {other:?}: write file, stdout, syslog or hec"),
    }
}

/// The syslog sink's settings: `--syslog HOST[:PORT]` and its companions.
fn syslog_config(args: &PullArgs) -> anyhow::Result<SyslogConfig> {
    let target = args.syslog.as_deref().context("--sink syslog needs --syslog HOST:PORT")?;
    let transport = match args.syslog_transport.as_deref().unwrap_or("tcp") {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        other => bail!("--syslog-transport {other:?}: write udp, tcp or tls"),
    };
    let (host, port) = split_host_port(target)
        .with_context(|| format!("--syslog {target:?}: write HOST or HOST:PORT"))?;
    let mut config = SyslogConfig::new(host, transport);
    if let Some(port) = port {
        config.port = port;
    }
    config.ca_file = args.syslog_ca_file.clone();
    config.server_name = args.syslog_server_name.clone();
    if let Some(facility) = &args.syslog_facility {
        config.facility =
            facility.parse::<Facility>().map_err(|e| anyhow::anyhow!("--syslog-facility: {e}"))?;
    }
    Ok(config)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Some((host.to_string(), Some(port.parse().ok()?)))
        }
        Some(_) => Some((text.to_string(), None)),
        None => Some((text.to_string(), None)),
    }
}
