//! The store benchmark: a million simulated detections ingested, queried and
//! streamed through the `Store` trait on SQLite and on PostgreSQL, each
//! figure beside that backend's bare client doing the same work on the same
//! rows, the two backends side by side.

mod baseline;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use siemgate_model::prepare::prepare;
use siemgate_model::{AlertsQuery, PrepareOptions, Prepared, Timestamp};
use siemgate_simulate::{FleetOptions, Simulator};
use siemgate_store::{Framing, NewTenant, SqliteStore, Store};
use uuid::Uuid;

use crate::backends::{Backend, Backends, scratch_postgres};
use crate::report::{Figure, Report, human, median, quantile_us, rss_mib};
use baseline::{Baseline, Row};

#[derive(Debug, Args)]
pub struct StoreBench {
    /// Detections in the store.
    #[arg(long, default_value_t = 1_000_000)]
    detections: usize,
    /// Detections per ingested batch.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Detections in the streamed window.
    #[arg(long, default_value_t = 100_000)]
    window: usize,
    /// Newest-20 queries timed on each side.
    #[arg(long, default_value_t = 2_000)]
    queries: usize,
    /// Folder for the SQLite files (default: a temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    backends: Backends,
}

/// The limits a backend's figures must keep.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Ingest beside the backend's plain inserts.
    ingest: f64,
    /// Streaming a window beside the backend's bare read of it.
    stream: f64,
    /// Memory growth, in MiB, while the whole store streams as one window.
    memory_mib: f64,
}

impl Limits {
    fn of(backend: Backend) -> Limits {
        match backend {
            Backend::Sqlite => Limits { ingest: 0.5, stream: 0.7, memory_mib: 64.0 },
            // Measured at 0.78x-0.80x for ingest and 0.57x-0.85x for streaming
            // (README, Benchmarks): ingest keeps SQLite's floor, and
            // streaming's sits a third below the lowest run, the spread of
            // rates between runs on the shared machine.
            Backend::Postgres => Limits { ingest: 0.5, stream: 0.4, memory_mib: 64.0 },
        }
    }
}

/// One backend's store with its tenant, beside its bare client.
struct Side {
    backend: Backend,
    // Before `store`, so the baseline's connection closes before a scratch
    // schema is dropped with the store.
    baseline: Baseline,
    store: Arc<dyn Store>,
    tenant: Uuid,
}

/// What one backend measured.
#[derive(Debug)]
struct Figures {
    ingest: Figure,
    /// Checking and rendering detections before ingest, per second; not part of ingest.
    preparing: f64,
    p50: Figure,
    p99: Figure,
    stream: Figure,
    window_megabytes: f64,
    memory: Figure,
    streamed_whole: usize,
}

pub async fn run(args: StoreBench) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.batch > 0 && args.window >= args.batch,
        "--window must be at least --batch"
    );
    anyhow::ensure!(args.detections >= args.window, "--detections must be at least --window");
    let postgres = args.backends.postgres("store")?;
    let temp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    // Every backend is opened before any is measured, so that a PostgreSQL
    // server that cannot be reached fails the run at once.
    let mut sides = vec![Side::sqlite(temp.path()).await?];
    if let Some(url) = &postgres {
        sides.push(Side::postgres(url).await?);
    }

    let names: Vec<&str> = sides.iter().map(|s| s.backend.name()).collect();
    let mut report = Report::sides(&names);
    report.note(&format!(
        "siemgate store benchmark: {} detections in batches of {}; SQLite files in {}{}\n",
        human(args.detections as f64),
        args.batch,
        temp.path().display(),
        if postgres.is_some() { ", PostgreSQL in a scratch schema dropped at the end" } else { "" }
    ));
    let mut figures = Vec::new();
    for side in sides {
        let (name, started) = (side.backend.name(), Instant::now());
        figures.push(measure(&args, side).await?);
        report.note(&format!("{name}: measured in {:.0} s", started.elapsed().as_secs_f64()));
    }
    report.note("");
    print(&args, &figures, &mut report);
    Ok(report.all_passed)
}

impl Side {
    async fn sqlite(dir: &Path) -> anyhow::Result<Side> {
        let store_file = dir.join("store.db");
        let store = SqliteStore::open(&store_file).await?;
        let tenant = store.create_tenant(bench_tenant()).await?.id;
        let baseline = Baseline::sqlite(&dir.join("baseline.db"), &store_file)?;
        Ok(Side { backend: Backend::Sqlite, baseline, store: Arc::new(store), tenant })
    }

    async fn postgres(url: &str) -> anyhow::Result<Side> {
        let store = scratch_postgres(url).await?;
        let tenant = store.create_tenant(bench_tenant()).await?.id;
        let schema = store.schema().expect("a scratch store names its schema").to_owned();
        let baseline = Baseline::postgres(url, &schema, tenant).await?;
        Ok(Side { backend: Backend::Postgres, baseline, store: Arc::new(store), tenant })
    }
}

fn bench_tenant() -> NewTenant {
    NewTenant { id: Uuid::new_v4(), name: "bench".into(), domains: vec![] }
}

/// Every measurement on one backend, in order; the side is closed after.
async fn measure(args: &StoreBench, mut side: Side) -> anyhow::Result<Figures> {
    let limits = Limits::of(side.backend);
    let (ingest, preparing, stamps) = ingest(args, &mut side).await?;
    side.baseline.settle().await?;
    let (p50, p99) = newest_20(args, &mut side).await?;
    let (stream, window_megabytes) = stream_window(args, &mut side, &stamps).await?;
    let (memory, streamed_whole) = memory(&side).await?;
    Ok(Figures {
        ingest: ingest.floor(limits.ingest),
        preparing,
        p50,
        p99,
        stream: stream.floor(limits.stream),
        window_megabytes,
        memory: memory.ceiling(limits.memory_mib),
        streamed_whole,
    })
}

/// The table: a row per measurement, a column group per backend.
fn print(args: &StoreBench, figures: &[Figures], report: &mut Report) {
    let of = |pick: fn(&Figures) -> Figure| figures.iter().map(pick).collect::<Vec<_>>();
    let first = &figures[0];
    report.row("ingest, detections/s", &of(|f| f.ingest));
    report.row("newest-20, p50 latency", &of(|f| f.p50));
    report.row("newest-20, p99 latency", &of(|f| f.p99));
    let window = human(args.window as f64);
    let name = format!("stream a {window} window ({:.0} MB), detections/s", first.window_megabytes);
    report.row(&name, &of(|f| f.stream));
    let name = format!("memory growth streaming all {}", human(first.streamed_whole as f64));
    report.row(&name, &of(|f| f.memory));
    report.note(&format!(
        "\n(baselines: plain multi-row inserts of the same rows into a table of the same shape, \
         the bare SQL query, the same rows read with no other work; each backend's own client. \
         Ratios read higher-is-better. Checking and rendering before ingest, not counted above: \
         {} detections/s on one core)",
        human(first.preparing)
    ));
}

/// Ingests every batch through the store and, interleaved, through plain
/// inserts; returns both rates, the rate of preparing the detections, and
/// the `LastProcessedTimeUtc` each stored batch received.
async fn ingest(
    args: &StoreBench,
    side: &mut Side,
) -> anyhow::Result<(Figure, f64, Vec<Timestamp>)> {
    let mut simulator = simulator();
    let options = prepare_options();
    let end = Timestamp::parse("2024-05-01T12:00:00Z")?;
    let batches = args.detections / args.batch;
    let step = 86_400 * 10_000_000 / batches as i64;
    let (mut ours, mut theirs, mut prep) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut stamps = Vec::with_capacity(batches);

    for i in 0..batches {
        let from = end.add_ticks(-step * (batches - i) as i64);
        let detections = simulator.batch(args.batch, from, from.add_ticks(step));
        let started = Instant::now();
        let prepared: Vec<Prepared> =
            detections.into_iter().map(|d| prepare(d, &options)).collect::<Result<_, _>>()?;
        prep += started.elapsed();
        let stamp = Timestamp::from_unix_ticks(i as i64);
        let rows: Vec<Row> = prepared.iter().map(|p| Row::of(p, stamp)).collect();

        // Alternate which side goes first so that neither always meets a warm cache.
        if i % 2 == 0 {
            let started = Instant::now();
            side.baseline.insert(&rows).await?;
            theirs += started.elapsed();
        }
        let started = Instant::now();
        let outcome = side.store.ingest(side.tenant, prepared).await?;
        ours += started.elapsed();
        if i % 2 == 1 {
            let started = Instant::now();
            side.baseline.insert(&rows).await?;
            theirs += started.elapsed();
        }
        stamps.push(outcome.processed.ok_or_else(|| anyhow::anyhow!("batch {i} stored nothing"))?);
    }
    let n = (batches * args.batch) as f64;
    let rate = Figure::rate(n / ours.as_secs_f64(), n / theirs.as_secs_f64());
    Ok((rate, n / prep.as_secs_f64(), stamps))
}

/// The simulated fleet every benchmark fills its store from.
pub fn simulator() -> Simulator {
    Simulator::new(2024, FleetOptions { devices: 500, ..FleetOptions::default() })
}

/// How simulated detections are checked and rendered for the store.
pub fn prepare_options() -> PrepareOptions {
    PrepareOptions { portal_url: "https://localhost:8443".into(), keep_processed_time: false }
}

/// The SIEM API's most common request, the newest 20 of the last hour,
/// beside the bare query; the p50 and p99 latencies.
async fn newest_20(args: &StoreBench, side: &mut Side) -> anyhow::Result<(Figure, Figure)> {
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let query = AlertsQuery::from_pairs([("ago", "PT1H"), ("limit", "20")], now)?;
    let (since, until) = (query.window.since.unix_ticks(), query.window.until.unix_ticks());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..args.queries {
        let started = Instant::now();
        let (rows, _) =
            drain(side.store.stream(side.tenant, &query, Framing::JsonArray).await?).await?;
        ours.push(started.elapsed());
        anyhow::ensure!(rows == 20, "newest-20 returned {rows}");

        let started = Instant::now();
        let rows = side.baseline.newest_20(since, until).await?;
        theirs.push(started.elapsed());
        anyhow::ensure!(rows == 20, "the bare newest-20 query returned {rows}");
    }
    ours.sort();
    theirs.sort();
    let at = |q| Figure::time(quantile_us(&ours, q), quantile_us(&theirs, q), "µs");
    Ok((at(0.5), at(0.99)))
}

/// Reads a stream to its end; returns the detections and bytes it carried.
pub async fn drain(mut stream: siemgate_store::DetectionStream) -> anyhow::Result<(usize, usize)> {
    let (mut rows, mut bytes) = (0, 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        rows += chunk.detections;
        bytes += chunk.bytes.len();
    }
    Ok((rows, bytes))
}

/// A window of `--window` detections, through the store and read bare; the
/// rates and the window's size in MB.
async fn stream_window(
    args: &StoreBench,
    side: &mut Side,
    stamps: &[Timestamp],
) -> anyhow::Result<(Figure, f64)> {
    // Each batch has its own stamp, so a window of whole batches holds exactly `--window`.
    let span = args.window / args.batch;
    let first = (stamps.len() / 3).min(stamps.len() - span);
    let since = stamps[first];
    let until = stamps.get(first + span).copied().unwrap_or(stamps[stamps.len() - 1].add_ticks(1));
    let query = AlertsQuery::from_pairs(
        [("sinceTimeUtc", since.to_string()), ("untilTimeUtc", until.to_string())],
        until,
    )?;
    let (mut ours, mut theirs, mut megabytes) = (Vec::new(), Vec::new(), 0.0);
    let bare = async |baseline: &mut Baseline| -> anyhow::Result<f64> {
        let started = Instant::now();
        let (n, bytes) = baseline.read_window(since.unix_ticks(), until.unix_ticks()).await?;
        anyhow::ensure!(n == args.window && bytes > 0, "the bare read found {n} detections");
        Ok(n as f64 / started.elapsed().as_secs_f64())
    };
    // One unmeasured pass brings the window's pages into memory for both
    // sides; then seven rounds, alternating which side reads first.
    bare(&mut side.baseline).await?;
    for round in 0..7 {
        if round % 2 == 1 {
            theirs.push(bare(&mut side.baseline).await?);
        }
        let started = Instant::now();
        let stream = side.store.stream(side.tenant, &query, Framing::JsonArray).await?;
        let (rows, bytes) = drain(stream).await?;
        ours.push(rows as f64 / started.elapsed().as_secs_f64());
        anyhow::ensure!(rows == args.window, "the window held {rows}, not {}", args.window);
        megabytes = bytes as f64 / 1e6;
        if round % 2 == 0 {
            theirs.push(bare(&mut side.baseline).await?);
        }
    }
    Ok((Figure::rate(median(ours), median(theirs)), megabytes))
}

/// Resident memory growth while the whole store streams as one window to a
/// reader that throws it away; the growth and the detections streamed.
async fn memory(side: &Side) -> anyhow::Result<(Figure, usize)> {
    let query = AlertsQuery::from_pairs(
        [("sinceTimeUtc", "0001-01-01"), ("untilTimeUtc", "9999-01-01")],
        Timestamp::MAX,
    )?;
    let before = rss_mib();
    let mut peak = before;
    let mut stream = side.store.stream(side.tenant, &query, Framing::JsonArray).await?;
    let (mut rows, mut chunks) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        rows += chunk?.detections;
        chunks += 1;
        if chunks % 16 == 0 {
            peak = peak.max(rss_mib());
        }
    }
    Ok((Figure::amount(peak - before, "MiB"), rows))
}
