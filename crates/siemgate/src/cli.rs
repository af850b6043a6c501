//! The command line: every subcommand, flag and environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// siemgate: the Defender for Endpoint SIEM API, self-hosted, and the
/// connector that pulls detections from it into a SIEM.
#[derive(Debug, Parser)]
#[command(name = "siemgate", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// The store: a SQLite file path, `memory` for one that vanishes on exit, or
    /// a postgres://USER:PASSWORD@HOST:PORT/DB URL that several replicas share
    /// (plain TCP, no TLS) [default: siemgate.db; for `demo` and `serve --demo`, memory].
    #[arg(long, short = 'd', global = true, env = "SIEMGATE_DATABASE", value_name = "DATABASE")]
    pub database: Option<String>,

    /// How log lines are written to standard error.
    #[arg(long, global = true, value_enum, default_value = "human", env = "SIEMGATE_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Which log lines to write, as a tracing filter (`info`, `siemgate_store=debug`).
    #[arg(long, global = true, default_value = "warn", env = "SIEMGATE_LOG")]
    pub log: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// The store used when `--database` is not given.
pub const DEFAULT_DATABASE: &str = "siemgate.db";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server over HTTPS: the SIEM API, its identity provider and portal pages.
    Serve(ServeArgs),
    /// Pull detections from a SIEM API (Microsoft's or a siemgate server's):
    /// one window to a file, or follow the stream into a file, syslog or Splunk.
    Pull(Box<PullArgs>),
    /// Create a demo tenant full of simulated detections and show a few.
    Demo(DemoArgs),
    /// Store detections from JSON array or NDJSON files.
    Ingest(IngestArgs),
    /// Generate a realistic fleet's detections, into the store or to standard output.
    Simulate(SimulateArgs),
    /// Print a tenant's detections as the SIEM API would answer.
    Alerts(AlertsArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Delete detections processed longer ago than a given age, for every tenant.
    Purge(PurgeArgs),
    /// Manage app registrations: client ids, secrets and roles.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage the users who sign in on the authorization page.
    #[command(subcommand)]
    User(UserCommand),
    /// List or rotate the keys that sign tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Copy a whole store into an empty one, such as SQLite into PostgreSQL
    /// or back: tenants, apps, users, keys and every detection with its stamp.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy, as --database takes it: a SQLite file or a
    /// postgres:// URL. It is only read; stop the servers writing to it first.
    #[arg(long, value_name = "DATABASE")]
    pub from: String,
    /// The store to copy into: a SQLite file (made if missing) or a
    /// postgres:// URL. It must hold no tenant and no signing key.
    #[arg(long, value_name = "DATABASE")]
    pub to: String,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app and print its client id and first secret (shown once).
    Add(AppAddArgs),
    /// List apps, of every tenant or of one.
    List(AppListArgs),
    /// Show one app: tenant, roles, redirect URIs and secrets (never their text).
    Show(AppRefArgs),
    /// Remove an app and its secrets; it can no longer get or renew tokens.
    Remove(AppRefArgs),
    /// Add or remove secrets; several may be valid at once, so they rotate without downtime.
    #[command(subcommand)]
    Secret(AppSecretCommand),
    /// Grant a role: `siem-read` (GET /api/alerts) or `ingest` (POST /api/detections).
    Grant(AppRoleArgs),
    /// Revoke a role.
    Revoke(AppRoleArgs),
}

#[derive(Debug, Args)]
pub struct AppAddArgs {
    /// The tenant the app belongs to: its GUID, a domain or its name.
    #[arg(long, short = 't', env = "SIEMGATE_TENANT")]
    pub tenant: String,
    /// A name for the app, unique in its tenant.
    #[arg(long)]
    pub name: String,
    /// A role to grant (repeatable): `siem-read` or `ingest`. Default `siem-read`.
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// A redirect URI for the sign-in flow (repeatable).
    #[arg(long = "redirect-uri", value_name = "URL")]
    pub redirect_uris: Vec<String>,
    /// Days until the first secret expires.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub secret_days: u32,
    /// Print JSON, for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AppListArgs {
    /// Only this tenant's apps.
    #[arg(long, short = 't')]
    pub tenant: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AppRefArgs {
    /// The app's client id.
    pub client_id: uuid::Uuid,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AppSecretCommand {
    /// Add a secret and print it (shown once).
    Add(AppSecretAddArgs),
    /// Remove a secret by its id (see `app show`).
    Remove(AppSecretRemoveArgs),
}

#[derive(Debug, Args)]
pub struct AppSecretAddArgs {
    /// The app's client id.
    pub client_id: uuid::Uuid,
    /// Days until the secret expires.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AppSecretRemoveArgs {
    /// The app's client id.
    pub client_id: uuid::Uuid,
    /// The secret's id.
    pub secret_id: uuid::Uuid,
}

#[derive(Debug, Args)]
pub struct AppRoleArgs {
    /// The app's client id.
    pub client_id: uuid::Uuid,
    /// `siem-read` or `ingest`.
    pub role: String,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password comes from standard input or SIEMGATE_PASSWORD, never a flag.
    Add(UserAddArgs),
    /// List a tenant's users.
    List(UserListArgs),
    /// Remove a user; tokens issued to them can no longer be renewed.
    Remove(UserRefArgs),
    /// Set a user's password, read as for `add`.
    Passwd(UserPasswdArgs),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The user's tenant: its GUID, a domain or its name.
    #[arg(long, short = 't', env = "SIEMGATE_TENANT")]
    pub tenant: String,
    /// The sign-in name, such as alice@contoso.onmicrosoft.com.
    pub username: String,
    /// The name shown for the user; default the sign-in name.
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct UserListArgs {
    /// The tenant: its GUID, a domain or its name.
    #[arg(long, short = 't', env = "SIEMGATE_TENANT")]
    pub tenant: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UserRefArgs {
    /// The tenant: its GUID, a domain or its name.
    #[arg(long, short = 't', env = "SIEMGATE_TENANT")]
    pub tenant: String,
    /// The sign-in name.
    pub username: String,
}

#[derive(Debug, Args)]
pub struct UserPasswdArgs {
    #[command(flatten)]
    pub user: UserRefArgs,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys: the one that signs and those still published.
    List(KeysListArgs),
    /// Make a new signing key; the previous one stays published for checks.
    Rotate,
}

#[derive(Debug, Args)]
pub struct KeysListArgs {
    /// Print the published keys as a JWKS document instead of a table.
    #[arg(long)]
    pub jwks: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file of settings (keys as the flags' long names, with `_` for
    /// `-`); a flag or environment variable wins over the file.
    #[arg(long, env = "SIEMGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on for HTTPS; port 0 picks a free port [default: 127.0.0.1:8443].
    #[arg(long, env = "SIEMGATE_HTTPS")]
    pub https: Option<std::net::SocketAddr>,
    /// Also listen for plain HTTP on this address, for scripts (Microsoft's
    /// auth libraries refuse anything but HTTPS).
    #[arg(long, env = "SIEMGATE_HTTP")]
    pub http: Option<std::net::SocketAddr>,
    /// The server's certificate chain in PEM, leaf first. Without it, a
    /// certificate is generated and signed by a local CA kept in --tls-dir.
    #[arg(long, env = "SIEMGATE_TLS_CERT", requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert, in PEM.
    #[arg(long, env = "SIEMGATE_TLS_KEY", requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Where the generated CA is kept (ca.pem, for clients to trust, and its
    /// key). Default: siemgate-tls beside the database file.
    #[arg(long, env = "SIEMGATE_TLS_DIR", value_name = "DIR", conflicts_with = "tls_cert")]
    pub tls_dir: Option<std::path::PathBuf>,
    /// Another name (DNS name or IP address) for the generated certificate,
    /// besides localhost, the loopback addresses, the listening address and
    /// the public URL's host. Repeatable.
    #[arg(long = "tls-name", value_name = "NAME", conflicts_with = "tls_cert")]
    pub tls_names: Vec<String>,
    /// The URL clients reach the server at (default: https:// and the listening address);
    /// discovery documents and v2 token issuers are built from it.
    #[arg(long, env = "SIEMGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Delete detections processed longer ago than this (ISO 8601, such as
    /// P30D), checked every hour in the background; default: keep everything.
    #[arg(long, env = "SIEMGATE_RETENTION", value_parser = parse_span)]
    pub retention: Option<siemgate_model::Span>,
    /// Requests a second each app may make to the SIEM API, bursts of one
    /// second's worth allowed; more are answered 429 with Retry-After.
    #[arg(long, env = "SIEMGATE_RATE_LIMIT", value_name = "PER_SECOND")]
    pub rate_limit: Option<f64>,
    /// The largest POST /api/detections body taken, in bytes [default: 33554432].
    #[arg(long, env = "SIEMGATE_MAX_INGEST_BYTES", value_name = "BYTES")]
    pub max_ingest_bytes: Option<usize>,
    /// How often the signing keys are read from the store again, so that a
    /// key rotated elsewhere (`siemgate keys rotate`, another replica) is
    /// published here (ISO 8601, such as PT30S) [default: PT30S]. A token
    /// signed with a key not yet read makes the server read them at once.
    #[arg(long, env = "SIEMGATE_KEY_REFRESH", value_parser = parse_span, value_name = "SPAN")]
    pub key_refresh: Option<siemgate_model::Span>,
    /// Demo mode: a tenant, an app, a user and simulated detections flowing,
    /// in a store that vanishes on exit unless --database names one; prints
    /// the credentials and ready curl lines.
    #[arg(long)]
    pub demo: bool,
    /// In demo mode, simulated detections per second.
    #[arg(long, default_value_t = 2.0, requires = "demo")]
    pub demo_rate: f64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many detections to simulate.
    #[arg(long, default_value_t = 5_000)]
    pub count: usize,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The tenant that owns the detections: its GUID, a domain or its name.
    #[arg(long, short = 't', env = "SIEMGATE_TENANT")]
    pub tenant: String,
    /// Files of detections, each a JSON array or NDJSON; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Detections per batch. A batch is stored whole or not at all.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,
    #[command(flatten)]
    pub portal: PortalArgs,
    /// Keep each record's LastProcessedTimeUtc instead of stamping the time of
    /// storage; for importing an archive. Followers already past those times
    /// will not see the imported detections.
    #[arg(long)]
    pub keep_processed_time: bool,
}

#[derive(Debug, Args)]
pub struct PortalArgs {
    /// The server's public URL, which generated portal links point to.
    #[arg(long, env = "SIEMGATE_PUBLIC_URL", default_value = "https://localhost:8443")]
    pub public_url: String,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The tenant to store detections for; required unless `--stdout`.
    #[arg(long, short = 't', env = "SIEMGATE_TENANT", required_unless_present = "stdout")]
    pub tenant: Option<String>,
    /// Write NDJSON to standard output instead of storing.
    #[arg(long)]
    pub stdout: bool,
    /// Generate this many detections once, then stop.
    #[arg(long, conflicts_with = "rate", required_unless_present = "rate")]
    pub count: Option<usize>,
    /// Keep generating this many detections per second until stopped.
    #[arg(long)]
    pub rate: Option<f64>,
    /// With `--rate`, stop after this long (ISO 8601 duration such as PT10M).
    #[arg(long, requires = "rate", value_parser = parse_span)]
    pub duration: Option<siemgate_model::Span>,
    /// The seed; the same seed gives the same fleet and detections.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many devices the fleet has.
    #[arg(long, default_value_t = 50)]
    pub devices: usize,
    /// The fleet's DNS domain.
    #[arg(long, default_value = "contoso.com")]
    pub domain: String,
    /// With `--count`, alert times are spread over this span before `--end`.
    #[arg(long, default_value = "PT1H", value_parser = parse_span)]
    pub spread: siemgate_model::Span,
    /// With `--count`, the end of the spread (default: now); fixing it with the
    /// seed makes the output identical run after run.
    #[arg(long, value_parser = parse_time)]
    pub end: Option<siemgate_model::Timestamp>,
    /// Detections per stored batch.
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: usize,
    #[command(flatten)]
    pub portal: PortalArgs,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// The tenant: its GUID, a domain or its name.
    #[arg(long, short = 't', env = "SIEMGATE_TENANT")]
    pub tenant: String,
    /// Window start, inclusive (`sinceTimeUtc`).
    #[arg(long)]
    pub since: Option<String>,
    /// Window end, exclusive (`untilTimeUtc`); default now.
    #[arg(long)]
    pub until: Option<String>,
    /// Window `[now - AGO, now)` as an ISO 8601 duration (`PT10M`, `P1D`).
    #[arg(long)]
    pub ago: Option<String>,
    /// Only the newest N detections of the window, still oldest first.
    #[arg(long)]
    pub limit: Option<String>,
    /// Only these machine groups (repeatable; any matches, case-insensitive).
    #[arg(long = "machine-group", value_name = "GROUP")]
    pub machine_groups: Vec<String>,
    /// Only devices carrying this device-created tag.
    #[arg(long)]
    pub device_tag: Option<String>,
    /// Only devices carrying any of these cloud-created tags (repeatable).
    #[arg(long = "cloud-tag", value_name = "TAG")]
    pub cloud_tags: Vec<String>,
    /// `json` (an array, as the API answers) or `ndjson`.
    #[arg(long, value_enum, default_value = "json")]
    pub format: AlertsFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlertsFormat {
    Json,
    Ndjson,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant and print its id.
    Add(TenantAddArgs),
    /// List every tenant.
    List(TenantListArgs),
    /// Show one tenant and how many detections it has.
    Show(TenantRefArgs),
    /// Suspend a tenant: the API answers 403, the data stays.
    Disable(TenantRefArgs),
    /// Bring a disabled or deleted tenant back.
    Enable(TenantRefArgs),
    /// Mark a tenant deleted: the API answers 403, the data stays.
    Delete(TenantRefArgs),
}

#[derive(Debug, Args)]
pub struct TenantAddArgs {
    /// A name for the tenant, unique in this store.
    pub name: String,
    /// A domain the tenant answers to (repeatable); default `<name>.onmicrosoft.com`.
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Use this GUID instead of a new one (to mirror an existing Azure AD tenant).
    #[arg(long)]
    pub id: Option<uuid::Uuid>,
    /// Print the tenant as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TenantListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TenantRefArgs {
    /// The tenant: its GUID, a domain or its name.
    pub tenant: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Delete detections processed longer ago than this ISO 8601 duration (`P30D`).
    #[arg(long, value_parser = parse_span)]
    pub older_than: siemgate_model::Span,
}

fn parse_span(text: &str) -> Result<siemgate_model::Span, String> {
    siemgate_model::Span::parse(text).map_err(|e| e.to_string())
}

fn parse_time(text: &str) -> Result<siemgate_model::Timestamp, String> {
    siemgate_model::Timestamp::parse(text).map_err(|e| e.to_string())
}

/// `siemgate pull`: where to connect, what to pull, where it goes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct PullArgs {
    /// A TOML file of settings (keys as the flags' long names, with `_` for
    /// `-`), and `[[stream]]` tables to follow several tenants at once. A flag
    /// or environment variable wins over the file.
    #[arg(long, env = "SIEMGATE_PULL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The tenant: its GUID or a domain such as contoso.onmicrosoft.com.
    #[arg(long, short = 't', env = "SIEMGATE_PULL_TENANT")]
    pub tenant: Option<String>,
    /// The app's client id.
    #[arg(long, env = "SIEMGATE_PULL_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The environment variable that holds the client secret
    /// [default: SIEMGATE_PULL_CLIENT_SECRET]. The secret itself is never a flag.
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
    /// A file whose first line is the client secret.
    #[arg(long, value_name = "FILE", conflicts_with = "secret_env")]
    pub secret_file: Option<PathBuf>,
    /// Microsoft's hosts: eu, us, uk, us-gov-gcc or us-gov.
    #[arg(long, env = "SIEMGATE_PULL_REGION", conflicts_with = "url")]
    pub region: Option<String>,
    /// Any server of the API instead, such as a siemgate server (https://host:8443).
    #[arg(long, env = "SIEMGATE_PULL_URL")]
    pub url: Option<String>,
    /// The token endpoint [default: the region's Azure AD, or the server's own].
    #[arg(long, env = "SIEMGATE_PULL_TOKEN_URL")]
    pub token_url: Option<String>,
    /// The resource tokens are asked for [default: https://graph.windows.net].
    #[arg(long)]
    pub resource: Option<String>,
    /// The token endpoint's version: 1 (resource) or 2 (scope) [default: 1].
    #[arg(long, value_parser = ["1", "2"])]
    pub token_version: Option<String>,
    /// PEM certificates to trust besides the built-in public roots, such as a siemgate server's CA.
    #[arg(long, env = "SIEMGATE_PULL_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// An HTTP or HTTPS proxy for every request.
    #[arg(long, env = "SIEMGATE_PULL_PROXY", value_name = "URL")]
    pub proxy: Option<String>,
    /// Ask for plain answers instead of gzip (gzip saves bandwidth over a WAN;
    /// on a fast local network plain is quicker).
    #[arg(long)]
    pub no_gzip: bool,

    /// Start of the window: a UTC time such as 2026-01-31T08:00:00Z. When
    /// following, where a stream without a checkpoint starts [default: 2 hours ago].
    #[arg(long, help_heading = "Window")]
    pub since: Option<String>,
    /// End of the window (exclusive) [default: now]. One-shot only.
    #[arg(long, help_heading = "Window")]
    pub until: Option<String>,
    /// The window as a span back from now, such as PT1H. One-shot only.
    #[arg(long, help_heading = "Window", conflicts_with_all = ["since", "until"])]
    pub ago: Option<String>,
    /// Only the newest N detections of the window. One-shot only.
    #[arg(long, help_heading = "Window")]
    pub limit: Option<u32>,
    /// Only this machine group (repeatable).
    #[arg(long = "machine-group", value_name = "GROUP", help_heading = "Window")]
    pub machine_groups: Vec<String>,
    /// Only devices with this device-created tag.
    #[arg(long, value_name = "TAG", help_heading = "Window")]
    pub device_tag: Option<String>,
    /// Only devices with this cloud-created tag (repeatable).
    #[arg(long = "cloud-tag", value_name = "TAG", help_heading = "Window")]
    pub cloud_tags: Vec<String>,

    /// One-shot output format: json (an array, as the API answers), ndjson or csv.
    #[arg(long, help_heading = "Output")]
    pub format: Option<String>,
    /// The file to write [default: standard output]. Written under a
    /// temporary name and renamed when whole; when following, the NDJSON file sink.
    #[arg(long, short = 'o', value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,

    /// Keep pulling: poll every --interval, windows ending --lag before now,
    /// resuming from --checkpoint after a restart.
    #[arg(long, help_heading = "Follow")]
    pub follow: bool,
    /// Where the stream's position is kept (required with --follow).
    #[arg(long, value_name = "FILE", help_heading = "Follow")]
    pub checkpoint: Option<PathBuf>,
    /// Time between polls once caught up [default: PT1M].
    #[arg(long, value_name = "DURATION", help_heading = "Follow")]
    pub interval: Option<String>,
    /// How long before now each window ends, so that detections the server
    /// stamped but has not yet made visible are not passed over [default: PT2M].
    #[arg(long, value_name = "DURATION", help_heading = "Follow")]
    pub lag: Option<String>,
    /// The longest window asked for at once [default: PT1H].
    #[arg(long, value_name = "DURATION", help_heading = "Follow")]
    pub max_window: Option<String>,
    /// Where detections go: file (--output), stdout, syslog or hec
    /// [default: file with --output, else stdout].
    #[arg(long, help_heading = "Follow")]
    pub sink: Option<String>,
    /// Serve Prometheus metrics of the streams on this address, such as 127.0.0.1:9187.
    #[arg(long, value_name = "ADDR", help_heading = "Follow")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Start a new file once the current one holds this many bytes.
    #[arg(long, value_name = "BYTES", help_heading = "File sink")]
    pub rotate_size: Option<u64>,
    /// Start a new file once the current one is this old, such as P1D.
    #[arg(long, value_name = "DURATION", help_heading = "File sink")]
    pub rotate_age: Option<String>,
    /// Rotated files to keep; older ones are deleted [default: all].
    #[arg(long, value_name = "N", help_heading = "File sink")]
    pub keep: Option<usize>,

    /// The syslog receiver, HOST or HOST:PORT [default port: 514, or 6514 for TLS].
    #[arg(long, value_name = "HOST:PORT", help_heading = "Syslog sink")]
    pub syslog: Option<String>,
    /// udp, tcp (octet counting) or tls [default: tcp].
    #[arg(long, help_heading = "Syslog sink")]
    pub syslog_transport: Option<String>,
    /// PEM certificates to trust for the TLS receiver.
    #[arg(long, value_name = "FILE", help_heading = "Syslog sink")]
    pub syslog_ca_file: Option<PathBuf>,
    /// The name the TLS receiver's certificate must carry [default: the host].
    #[arg(long, value_name = "NAME", help_heading = "Syslog sink")]
    pub syslog_server_name: Option<String>,
    /// The syslog facility, by name (local0-local7, user, ...) or number [default: local0].
    #[arg(long, value_name = "FACILITY", help_heading = "Syslog sink")]
    pub syslog_facility: Option<String>,

    /// Splunk's HTTP Event Collector, such as https://splunk:8088.
    #[arg(long, value_name = "URL", help_heading = "Splunk HEC sink")]
    pub hec_url: Option<String>,
    /// The environment variable holding the HEC token [default: SIEMGATE_PULL_HEC_TOKEN].
    #[arg(long, value_name = "VAR", help_heading = "Splunk HEC sink")]
    pub hec_token_env: Option<String>,
    /// A file whose first line is the HEC token.
    #[arg(long, value_name = "FILE", help_heading = "Splunk HEC sink")]
    pub hec_token_file: Option<PathBuf>,
    /// The index events go to [default: the token's].
    #[arg(long, help_heading = "Splunk HEC sink")]
    pub hec_index: Option<String>,
    /// The events' sourcetype.
    #[arg(long, help_heading = "Splunk HEC sink")]
    pub hec_sourcetype: Option<String>,
    /// Wait for indexer acknowledgement before the checkpoint moves.
    #[arg(long, help_heading = "Splunk HEC sink")]
    pub hec_ack: bool,
    /// PEM certificates to trust for HEC.
    #[arg(long, value_name = "FILE", help_heading = "Splunk HEC sink")]
    pub hec_ca_file: Option<PathBuf>,
    /// Accept any certificate from HEC, for a test Splunk with a self-signed one. Never in production.
    #[arg(long, help_heading = "Splunk HEC sink")]
    pub hec_insecure: bool,
}
