//! The API benchmark: the real server, in a process of its own, over a store
//! of a million simulated detections, on SQLite and then on PostgreSQL. Its
//! request rate under `wrk` is measured beside nginx serving the same bytes,
//! a large window fetched whole beside the store streaming it in-process,
//! and the server's memory while the whole store goes out as one window; the
//! two backends' figures are printed side by side.

mod nginx;
pub(crate) mod server;
mod wrk;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::de::IgnoredAny;
use siemgate_identity::{generate_secret, roles};
use siemgate_model::prepare::prepare;
use siemgate_model::{AlertsQuery, Prepared, Span, Timestamp};
use siemgate_store::{AppSecret, Framing, NewApp, NewTenant, Sealed, SqliteStore, Store};
use uuid::Uuid;

pub use server::{ServerArgs, serve};

use crate::backends::{Backend, Backends, analyze_postgres, scratch_postgres};
use crate::report::{Figure, Report, human, median, rss_mib_of};
use crate::store::{drain, prepare_options, simulator};
use nginx::Nginx;
use server::{ServerProcess, ServerStore};

#[derive(Debug, Args)]
pub struct ApiBench {
    /// Detections in the store.
    #[arg(long, default_value_t = 1_000_000)]
    detections: usize,
    /// Detections per ingested batch while filling.
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
    /// Detections in the window fetched whole (a multiple of --batch).
    #[arg(long, default_value_t = 100_000)]
    window: usize,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections wrk keeps open.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Threads wrk runs.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// wrk runs on each side; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Folder for the SQLite store file and nginx's files (default: a temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    backends: Backends,
}

/// Fetches of the whole window on each side; the median is reported.
const WINDOW_ROUNDS: usize = 7;

/// The limits a backend's figures must keep.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Requests/s of `limit=20` beside nginx's.
    requests: f64,
    /// p99 latency of `limit=20`, in ms.
    p99_ms: f64,
    /// A window fetched over HTTP beside the store streaming it in-process.
    window: f64,
    /// The server's memory growth, in MiB, serving the whole store as one window.
    memory_mib: f64,
}

impl Limits {
    fn of(backend: Backend) -> Limits {
        match backend {
            Backend::Sqlite => {
                Limits { requests: 0.5, p99_ms: 20.0, window: 0.6, memory_mib: 64.0 }
            }
            // Measured at 0.05x-0.07x of nginx, p99 27-41 ms; at 100,000
            // detections, where PostgreSQL chose a generic plan for newest-20,
            // 0.005x and 355 ms (README, Benchmarks). These catch that, not noise.
            Backend::Postgres => {
                Limits { requests: 0.02, p99_ms: 100.0, window: 0.6, memory_mib: 64.0 }
            }
        }
    }
}

/// One backend's store, and how the server process opens the same store.
struct Side {
    backend: Backend,
    store: Arc<dyn Store>,
    server: ServerStore,
}

/// What one backend measured.
#[derive(Debug)]
struct Figures {
    requests: Figure,
    p50: Figure,
    p99: Figure,
    /// The size of the `limit=20` answer, which nginx served too.
    small_body: usize,
    window: Figure,
    window_megabytes: f64,
    memory: Figure,
}

pub async fn run(args: ApiBench) -> anyhow::Result<bool> {
    require("wrk", "wrk")?;
    require(nginx::binary(), "nginx")?;
    anyhow::ensure!(
        args.batch > 0
            && args.window.is_multiple_of(args.batch)
            && args.detections.is_multiple_of(args.batch),
        "--window and --detections must be multiples of --batch"
    );
    anyhow::ensure!(args.detections >= args.window, "--detections must be at least --window");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let postgres = args.backends.postgres("api")?;
    let temp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    // Every backend is opened before any is measured, so that a PostgreSQL
    // server that cannot be reached fails the run at once.
    let mut sides = vec![Side::sqlite(&temp.path().join("store.db")).await?];
    if let Some(url) = &postgres {
        sides.push(Side::postgres(url).await?);
    }

    let names: Vec<&str> = sides.iter().map(|s| s.backend.name()).collect();
    let mut report = Report::sides(&names);
    report.note(&format!(
        "siemgate API benchmark: {} detections, server and nginx on 127.0.0.1, files in {}{}\n",
        human(args.detections as f64),
        temp.path().display(),
        if postgres.is_some() { ", PostgreSQL in a scratch schema dropped at the end" } else { "" }
    ));
    let mut figures = Vec::new();
    for side in sides {
        figures.push(measure(&args, side, temp.path(), &mut report).await?);
    }
    report.note("");
    print(&args, &figures, &mut report);
    Ok(report.all_passed)
}

impl Side {
    async fn sqlite(file: &Path) -> anyhow::Result<Side> {
        let store = Arc::new(SqliteStore::open(file).await?);
        let server = ServerStore::sqlite(file);
        Ok(Side { backend: Backend::Sqlite, store, server })
    }

    async fn postgres(url: &str) -> anyhow::Result<Side> {
        let store = scratch_postgres(url).await?;
        let schema = store.schema().map(str::to_owned);
        let server = ServerStore { database: url.to_owned(), schema };
        Ok(Side { backend: Backend::Postgres, store: Arc::new(store), server })
    }
}

/// Fills one backend's store, serves it from a server process and measures
/// it; the side is closed after, the server first.
async fn measure(
    args: &ApiBench,
    side: Side,
    dir: &Path,
    report: &mut Report,
) -> anyhow::Result<Figures> {
    let limits = Limits::of(side.backend);
    let name = side.backend.name();
    let filled = fill(side.backend, args.detections, args.batch, &*side.store, report).await?;
    if let Some(schema) = &side.server.schema {
        analyze_postgres(&side.server.database, schema).await?;
    }
    let server = ServerProcess::start(&side.server).await?;
    // Plain answers, as wrk and nginx exchange: reqwest asks for gzip by
    // itself whenever another crate in the build (siemgate-pull) enables its
    // gzip feature, and the server then spends the window fetch compressing.
    let http = reqwest::Client::builder().no_gzip().build()?;
    let token = token(&http, &server.base, &filled).await?;
    let api = Api { http, base: server.base.clone(), token };

    let (requests, p50, p99, small_body) =
        requests_per_second(args, &api, &filled, dir, name, report).await?;
    let (window, window_megabytes) = whole_window(args, &api, &*side.store, &filled).await?;
    let memory = memory(&api, &server, name, report).await?;
    Ok(Figures {
        requests: requests.floor(limits.requests),
        p50,
        p99: p99.ceiling(limits.p99_ms),
        small_body,
        window: window.floor(limits.window),
        window_megabytes,
        memory: memory.ceiling(limits.memory_mib),
    })
}

/// The table: a row per measurement, a column group per backend.
fn print(args: &ApiBench, figures: &[Figures], report: &mut Report) {
    let of = |pick: fn(&Figures) -> Figure| figures.iter().map(pick).collect::<Vec<_>>();
    let first = &figures[0];
    let name = format!("GET limit=20, {} connections, requests/s", args.connections);
    report.row(&name, &of(|f| f.requests));
    report.row("GET limit=20, p50 latency", &of(|f| f.p50));
    report.row("GET limit=20, p99 latency", &of(|f| f.p99));
    let name = format!(
        "fetch a {} window ({:.0} MB), detections/s",
        human(args.window as f64),
        first.window_megabytes
    );
    report.row(&name, &of(|f| f.window));
    let name = format!("server memory growth serving all {}", human(args.detections as f64));
    report.row(&name, &of(|f| f.memory));
    report.note(&format!(
        "\n(baselines: for limit=20, nginx, 2 workers, serving the same {} bytes from a file, \
         median of {} wrk runs of {} s on each side, taking turns; for the window, the same \
         store streaming it into this process, no HTTP. Ratios read higher-is-better.)",
        first.small_body, args.rounds, args.seconds
    ));
}

/// Fails with the package to install when `program` cannot be run.
pub(crate) fn require(program: impl AsRef<OsStr>, package: &str) -> anyhow::Result<()> {
    let program = program.as_ref();
    match Command::new(program).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "{} is not installed; the api benchmark needs it: apt-get install {package}",
            program.to_string_lossy()
        ),
        Err(e) => Err(e).with_context(|| format!("running {}", program.to_string_lossy())),
        Ok(_) => Ok(()),
    }
}

/// What the fill left in the store.
#[derive(Debug)]
pub(crate) struct Filled {
    pub tenant: Uuid,
    pub client_id: Uuid,
    pub secret: String,
    /// A time before the first detection's `LastProcessedTimeUtc`.
    pub started: Timestamp,
    /// The `LastProcessedTimeUtc` of each batch, in order.
    pub stamps: Vec<Timestamp>,
}

/// Registers a tenant and an app that may read, then stores `--detections`
/// simulated detections. A thread simulates and renders the next batches
/// while the store writes the current one.
pub(crate) async fn fill(
    backend: Backend,
    detections: usize,
    batch: usize,
    store: &dyn Store,
    report: &mut Report,
) -> anyhow::Result<Filled> {
    let tenant = NewTenant { id: Uuid::new_v4(), name: "bench".into(), domains: vec![] };
    let tenant = store.create_tenant(tenant).await?.id;
    let (client_id, secret) = register_app(store, tenant).await?;
    let started = now();
    let (batches, size) = (detections / batch, batch);
    let (send, mut receive) = tokio::sync::mpsc::channel::<Vec<Prepared>>(2);
    let generator = std::thread::spawn(move || -> anyhow::Result<()> {
        let (mut simulator, options) = (simulator(), prepare_options());
        let step = Span::from_hours(24).ticks() / batches as i64;
        for i in 0..batches {
            let from = started.add_ticks(-step * (batches - i) as i64);
            let batch = simulator.batch(size, from, from.add_ticks(step));
            let batch =
                batch.into_iter().map(|d| prepare(d, &options)).collect::<Result<_, _>>()?;
            if send.blocking_send(batch).is_err() {
                break;
            }
        }
        Ok(())
    });

    let mut stamps = Vec::with_capacity(batches);
    while let Some(batch) = receive.recv().await {
        let outcome = store.ingest(tenant, batch).await?;
        stamps.push(outcome.processed.context("a batch stored nothing")?);
    }
    generator.join().map_err(|_| anyhow::anyhow!("simulating detections panicked"))??;
    let seconds = (now().unix_ticks() - started.unix_ticks()) as f64 / 1e7;
    report.note(&format!(
        "{}: filled the store: {} detections in {seconds:.0} s ({}/s)",
        backend.name(),
        human(detections as f64),
        human(detections as f64 / seconds)
    ));
    Ok(Filled { tenant, client_id, secret, started, stamps })
}

/// An app of `tenant` holding `siem-read`; its client id and secret.
async fn register_app(store: &dyn Store, tenant: Uuid) -> anyhow::Result<(Uuid, String)> {
    let drawn = generate_secret()?;
    let client_id = Uuid::new_v4();
    let secret = AppSecret {
        id: Uuid::new_v4(),
        hash: Sealed(drawn.hash.as_bytes().to_vec()),
        hint: drawn.hint,
        created: now(),
        expires: now().add_ticks(Span::from_hours(24).ticks()),
    };
    let app = NewApp {
        client_id,
        tenant,
        name: "bench reader".into(),
        roles: vec![roles::SIEM_READ.into()],
        redirect_uris: vec![],
        secret,
    };
    store.create_app(app).await?;
    Ok((client_id, drawn.text))
}

/// A client-credentials token from the server's own token endpoint.
pub(crate) async fn token(
    http: &reqwest::Client,
    base: &str,
    filled: &Filled,
) -> anyhow::Result<String> {
    let client_id = filled.client_id.to_string();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id.as_str()),
        ("client_secret", filled.secret.as_str()),
        ("resource", "https://graph.windows.net"),
    ];
    let url = format!("{base}/{}/oauth2/token", filled.tenant);
    let answer = http.post(url).form(&form).send().await?;
    let status = answer.status();
    let text = answer.text().await?;
    anyhow::ensure!(status.is_success(), "the token endpoint answered {status}: {text}");
    let answer: serde_json::Value = serde_json::from_str(&text)?;
    let token = answer["access_token"].as_str();
    Ok(token.context("the token endpoint answered without an access_token")?.to_owned())
}

/// The SIEM API as a client sees it.
#[derive(Debug)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// `GET path`, which must answer 200.
    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let answer = self.http.get(&url).bearer_auth(&self.token).send().await?;
        let status = answer.status();
        if !status.is_success() {
            anyhow::bail!("GET {url} answered {status}: {}", answer.text().await?);
        }
        Ok(answer)
    }

    /// `GET path` read to its end and thrown away; the bytes it carried.
    async fn fetch(&self, path: &str) -> anyhow::Result<usize> {
        let mut answer = self.get(path).await?;
        let mut bytes = 0;
        while let Some(chunk) = answer.chunk().await? {
            bytes += chunk.len();
        }
        Ok(bytes)
    }
}

/// The number of elements of a JSON array, each checked to be well-formed.
fn array_length(body: &[u8]) -> anyhow::Result<usize> {
    Ok(serde_json::from_slice::<Vec<IgnoredAny>>(body).context("not a JSON array")?.len())
}

/// `GET /api/alerts?limit=20` under `wrk`, taking turns with nginx serving
/// the same body from a file: the rate, p50 and p99, and the body's size.
async fn requests_per_second(
    args: &ApiBench,
    api: &Api,
    filled: &Filled,
    dir: &Path,
    side: &str,
    report: &mut Report,
) -> anyhow::Result<(Figure, Figure, Figure, usize)> {
    let path = format!("/api/alerts?limit=20&sinceTimeUtc={}", filled.started);
    let body = api.get(&path).await?.bytes().await?;
    anyhow::ensure!(array_length(&body)? == 20, "limit=20 did not answer 20 detections");
    let nginx = Nginx::start(&body, dir).await?;
    let (ours, theirs) = take_turns(args, api, &path, &nginx, side, report).await?;
    drop(nginx);

    let (rate, p50, p99) = medians(&ours);
    let (nginx_rate, nginx_p50, nginx_p99) = medians(&theirs);
    Ok((
        Figure::rate(rate, nginx_rate),
        Figure::time(p50, nginx_p50, "ms"),
        Figure::time(p99, nginx_p99, "ms"),
        body.len(),
    ))
}

/// `--rounds` wrk runs against each of siemgate and nginx; siemgate's loads
/// and nginx's.
async fn take_turns(
    args: &ApiBench,
    api: &Api,
    path: &str,
    nginx: &Nginx,
    side: &str,
    report: &mut Report,
) -> anyhow::Result<(Vec<wrk::Load>, Vec<wrk::Load>)> {
    let pressure = wrk::Pressure {
        connections: args.connections,
        threads: args.threads,
        seconds: args.seconds,
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        // Each side goes first in turn, so that neither always meets the
        // machine after the other has warmed or tired it.
        for nginx_turn in [round % 2 == 0, round % 2 == 1] {
            let url = format!("{}{path}", if nginx_turn { &nginx.base } else { &api.base });
            let token = api.token.clone();
            let load = tokio::task::spawn_blocking(move || wrk::run(&url, &token, pressure));
            let load = load.await??;
            if let Some(errors) = &load.socket_errors {
                let server = if nginx_turn { "nginx" } else { "siemgate" };
                report.note(&format!("{side}: wrk saw socket errors against {server}: {errors}"));
            }
            if nginx_turn { &mut theirs } else { &mut ours }.push(load);
        }
    }
    Ok((ours, theirs))
}

/// The median requests/s, p50 and p99 of some wrk runs.
fn medians(loads: &[wrk::Load]) -> (f64, f64, f64) {
    let of = |figure: fn(&wrk::Load) -> f64| median(loads.iter().map(figure).collect());
    (of(|l| l.requests_per_second), of(|l| l.p50_ms), of(|l| l.p99_ms))
}

/// A window of `--window` detections fetched whole over HTTP, beside the
/// store streaming the same window in this process; the rates and the
/// window's size in MB.
async fn whole_window(
    args: &ApiBench,
    api: &Api,
    store: &dyn Store,
    filled: &Filled,
) -> anyhow::Result<(Figure, f64)> {
    // Each batch has its own stamp, so a window of whole batches holds exactly `--window`.
    let stamps = &filled.stamps;
    let span = args.window / args.batch;
    let first = (stamps.len() / 3).min(stamps.len() - span);
    let since = stamps[first];
    let until = stamps.get(first + span).copied().unwrap_or(stamps[stamps.len() - 1].add_ticks(1));
    let path = format!("/api/alerts?sinceTimeUtc={since}&untilTimeUtc={until}");
    let query = AlertsQuery::from_pairs(
        [("sinceTimeUtc", since.to_string()), ("untilTimeUtc", until.to_string())],
        until,
    )?;

    // One unmeasured fetch, parsed whole, proves the body and brings the
    // window's pages into memory for both sides.
    let body = api.get(&path).await?.bytes().await?;
    let length = array_length(&body)?;
    anyhow::ensure!(length == args.window, "the window held {length}, not {}", args.window);
    let size = body.len();
    drop(body);

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..WINDOW_ROUNDS {
        for http_turn in [round % 2 == 0, round % 2 == 1] {
            let started = Instant::now();
            let bytes = if http_turn {
                api.fetch(&path).await?
            } else {
                drain(store.stream(filled.tenant, &query, Framing::JsonArray).await?).await?.1
            };
            let rate = args.window as f64 / started.elapsed().as_secs_f64();
            anyhow::ensure!(
                bytes == size,
                "a fetch of the window carried {bytes} bytes, not {size}"
            );
            if http_turn { &mut ours } else { &mut theirs }.push(rate);
        }
    }
    Ok((Figure::rate(median(ours), median(theirs)), size as f64 / 1e6))
}

/// The server's resident memory, sampled every 10 ms while it serves the
/// whole store as one window to a client that throws the bytes away.
async fn memory(
    api: &Api,
    server: &ServerProcess,
    side: &str,
    report: &mut Report,
) -> anyhow::Result<Figure> {
    let before = server.rss_mib();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, pid) = (Arc::clone(&stop), server.pid().to_string());
        std::thread::spawn(move || {
            let mut peak = rss_mib_of(&pid);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                peak = peak.max(rss_mib_of(&pid));
            }
            peak
        })
    };
    let started = Instant::now();
    let fetched = api.fetch("/api/alerts?sinceTimeUtc=0001-01-01&untilTimeUtc=9999-01-01").await;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().map_err(|_| anyhow::anyhow!("sampling memory panicked"))?;
    let bytes = fetched?;

    report.note(&format!(
        "{side}: server resident memory {before:.1} MiB before serving the whole store, \
         {peak:.1} MiB at peak; {:.2} GB fetched in {seconds:.1} s",
        bytes as f64 / 1e9
    ));
    Ok(Figure::amount(peak - before, "MiB"))
}

/// The wall clock at the store's precision.
fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}
