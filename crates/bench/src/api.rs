//! The API benchmark: the real server, in a process of its own, over a store
//! of a million simulated detections. Its request rate under `wrk` is
//! measured beside nginx serving the same bytes, a large window fetched
//! whole beside the store streaming it in-process, and the server's memory
//! while the whole store goes out as one window.

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

use crate::report::{Report, human, median, rss_mib_of};
use crate::store::{drain, prepare_options, simulator};
use nginx::Nginx;
use server::ServerProcess;

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
    /// Folder for the store file and nginx's files (default: a temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Fetches of the whole window on each side; the median is reported.
const WINDOW_ROUNDS: usize = 7;

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
    let temp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let store_path = temp.path().join("store.db");
    let store = SqliteStore::open(&store_path).await?;

    let mut report = Report::new();
    report.note(&format!(
        "siemgate API benchmark: {} detections, server and nginx on 127.0.0.1, files in {}\n",
        human(args.detections as f64),
        temp.path().display()
    ));
    let filled = fill(args.detections, args.batch, &store, &mut report).await?;
    let server = ServerProcess::start(&store_path).await?;
    let http = reqwest::Client::new();
    let token = token(&http, &server.base, &filled).await?;
    let api = Api { http, base: server.base.clone(), token };

    requests_per_second(&args, &api, &filled, temp.path(), &mut report).await?;
    whole_window(&args, &api, &store, &filled, &mut report).await?;
    memory(&args, &api, &server, &mut report).await?;
    Ok(report.all_passed)
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
    detections: usize,
    batch: usize,
    store: &SqliteStore,
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
        "filled the store: {} detections in {seconds:.0} s ({}/s)\n",
        human(detections as f64),
        human(detections as f64 / seconds)
    ));
    Ok(Filled { tenant, client_id, secret, started, stamps })
}

/// An app of `tenant` holding `siem-read`; its client id and secret.
async fn register_app(store: &SqliteStore, tenant: Uuid) -> anyhow::Result<(Uuid, String)> {
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
/// the same body from a file.
async fn requests_per_second(
    args: &ApiBench,
    api: &Api,
    filled: &Filled,
    dir: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let path = format!("/api/alerts?limit=20&sinceTimeUtc={}", filled.started);
    let body = api.get(&path).await?.bytes().await?;
    anyhow::ensure!(array_length(&body)? == 20, "limit=20 did not answer 20 detections");
    let nginx = Nginx::start(&body, dir).await?;
    let (ours, theirs) = take_turns(args, api, &path, &nginx, report).await?;
    drop(nginx);

    let (rate, p50, p99) = medians(&ours);
    let (nginx_rate, nginx_p50, nginx_p99) = medians(&theirs);
    let name = format!("GET limit=20, {} connections, requests/s", args.connections);
    report.ratio(&name, rate, nginx_rate, "/s", 0.5);
    report.beside("GET limit=20, p50 latency", p50, nginx_p50, "ms");
    report.ceiling("GET limit=20, p99 latency", p99, Some(nginx_p99), "ms", 20.0);
    report.note(&format!(
        "  (baseline: nginx, 2 workers, serving the same {} bytes from a file; \
         median of {} wrk runs of {} s on each side, taking turns)",
        body.len(),
        args.rounds,
        args.seconds
    ));
    Ok(())
}

/// `--rounds` wrk runs against each of siemgate and nginx; siemgate's loads
/// and nginx's.
async fn take_turns(
    args: &ApiBench,
    api: &Api,
    path: &str,
    nginx: &Nginx,
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
                let side = if nginx_turn { "nginx" } else { "siemgate" };
                report.note(&format!("  ({side}: wrk saw socket errors: {errors})"));
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
/// store streaming the same window in this process.
async fn whole_window(
    args: &ApiBench,
    api: &Api,
    store: &SqliteStore,
    filled: &Filled,
    report: &mut Report,
) -> anyhow::Result<()> {
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
    let name = format!(
        "fetch a {} window ({:.0} MB), detections/s",
        human(args.window as f64),
        size as f64 / 1e6
    );
    report.ratio(&name, median(ours), median(theirs), "/s", 0.6);
    report.note("  (baseline: the store streaming the same window into this process, no HTTP)");
    Ok(())
}

/// The server's resident memory, sampled every 10 ms while it serves the
/// whole store as one window to a client that throws the bytes away.
async fn memory(
    args: &ApiBench,
    api: &Api,
    server: &ServerProcess,
    report: &mut Report,
) -> anyhow::Result<()> {
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

    let name = format!("memory growth serving all {}", human(args.detections as f64));
    report.ceiling(&name, peak - before, None, "MiB", 64.0);
    report.note(&format!(
        "  (server resident memory: {before:.1} MiB before, {peak:.1} MiB at peak; \
         {:.2} GB fetched in {seconds:.1} s)",
        bytes as f64 / 1e9
    ));
    Ok(())
}

/// The wall clock at the store's precision.
fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}
