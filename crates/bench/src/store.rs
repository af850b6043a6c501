//! The store benchmark: a million simulated detections ingested, queried and
//! streamed through the `Store` trait, each figure beside plain rusqlite
//! doing the same work on the same rows.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use rusqlite::{Connection, params};
use siemgate_model::prepare::prepare;
use siemgate_model::{AlertsQuery, PrepareOptions, Prepared, Timestamp};
use siemgate_simulate::{FleetOptions, Simulator};
use siemgate_store::{Framing, NewTenant, SqliteStore, Store};

use crate::report::{Report, human, median, quantile_us, rss_mib};

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
    /// Folder for the database files (default: a temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The baseline's table: the store's columns and indexes, nothing else.
const BASELINE_SCHEMA: &str = "
    CREATE TABLE detections (
        tenant_key INTEGER NOT NULL, full_id TEXT NOT NULL, processed INTEGER NOT NULL,
        machine_group TEXT NOT NULL, device_tags TEXT NOT NULL, cloud_tags TEXT NOT NULL,
        body BLOB NOT NULL, alert_id TEXT NOT NULL, device_id TEXT NOT NULL,
        UNIQUE (tenant_key, full_id));
    CREATE INDEX detections_by_window ON detections (tenant_key, processed, full_id);
    CREATE INDEX detections_by_alert ON detections (tenant_key, alert_id);
    CREATE INDEX detections_by_device ON detections (tenant_key, device_id, processed);";

pub async fn run(args: StoreBench) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.batch > 0 && args.window >= args.batch,
        "--window must be at least --batch"
    );
    anyhow::ensure!(args.detections >= args.window, "--detections must be at least --window");
    let temp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let store_path = temp.path().join("store.db");
    let store = SqliteStore::open(&store_path).await?;
    let tenant = store
        .create_tenant(NewTenant {
            id: uuid::Uuid::new_v4(),
            name: "bench".into(),
            domains: vec![],
        })
        .await?;
    let baseline = Connection::open(temp.path().join("baseline.db"))?;
    baseline.pragma_update(None, "journal_mode", "WAL")?;
    baseline.pragma_update(None, "synchronous", "FULL")?;
    baseline.execute_batch(BASELINE_SCHEMA)?;

    let mut report = Report::new();
    report.note(&format!(
        "siemgate store benchmark: {} detections in batches of {}, SQLite files in {}\n",
        human(args.detections as f64),
        args.batch,
        temp.path().display()
    ));

    let stamps = ingest(&args, &store, tenant.id, &baseline, &mut report).await?;
    newest_20(&args, &store, tenant.id, &store_path, &mut report).await?;
    stream_window(&args, &store, tenant.id, &store_path, &stamps, &mut report).await?;
    memory(&store, tenant.id, &mut report).await?;
    Ok(report.all_passed)
}

/// Ingests every batch through the store and, interleaved, through plain
/// inserts; returns the `LastProcessedTimeUtc` each stored batch received.
async fn ingest(
    args: &StoreBench,
    store: &SqliteStore,
    tenant: uuid::Uuid,
    baseline: &Connection,
    report: &mut Report,
) -> anyhow::Result<Vec<Timestamp>> {
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
            theirs += plain_insert(baseline, &rows)?;
        }
        let started = Instant::now();
        let outcome = store.ingest(tenant, prepared).await?;
        ours += started.elapsed();
        if i % 2 == 1 {
            theirs += plain_insert(baseline, &rows)?;
        }
        stamps.push(outcome.processed.ok_or_else(|| anyhow::anyhow!("batch {i} stored nothing"))?);
    }
    let n = (batches * args.batch) as f64;
    report.ratio(
        "ingest (detections/s)",
        n / ours.as_secs_f64(),
        n / theirs.as_secs_f64(),
        "/s",
        0.5,
    );
    report.note(&format!(
        "  (checking and rendering before ingest, not counted above: {} detections/s on one core)",
        human(n / prep.as_secs_f64())
    ));
    Ok(stamps)
}

/// The simulated fleet every benchmark fills its store from.
pub fn simulator() -> Simulator {
    Simulator::new(2024, FleetOptions { devices: 500, ..FleetOptions::default() })
}

/// How simulated detections are checked and rendered for the store.
pub fn prepare_options() -> PrepareOptions {
    PrepareOptions { portal_url: "https://localhost:8443".into(), keep_processed_time: false }
}

/// One row as the baseline inserts it.
struct Row {
    full_id: String,
    processed: i64,
    group: String,
    device_tags: String,
    cloud_tags: String,
    body: Vec<u8>,
    alert_id: String,
    device_id: String,
}

impl Row {
    fn of(p: &Prepared, stamp: Timestamp) -> Row {
        Row {
            full_id: p.full_id.clone(),
            processed: stamp.unix_ticks(),
            group: p.machine_group_key.clone(),
            device_tags: p.device_tags_key.clone(),
            cloud_tags: p.cloud_tags_key.clone(),
            body: p.render(stamp),
            alert_id: p.alert_id.clone(),
            device_id: p.device_id.clone(),
        }
    }
}

fn plain_insert(conn: &Connection, rows: &[Row]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let tx = conn.unchecked_transaction()?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO detections VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
        for r in rows {
            insert.execute(params![
                r.full_id,
                r.processed,
                r.group,
                r.device_tags,
                r.cloud_tags,
                r.body,
                r.alert_id,
                r.device_id
            ])?;
        }
    }
    tx.commit()?;
    Ok(started.elapsed())
}

/// The SIEM API's most common request: the newest 20 of the last hour.
async fn newest_20(
    args: &StoreBench,
    store: &SqliteStore,
    tenant: uuid::Uuid,
    store_path: &PathBuf,
    report: &mut Report,
) -> anyhow::Result<()> {
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let query = AlertsQuery::from_pairs([("ago", "PT1H"), ("limit", "20")], now)?;
    let direct = Connection::open(store_path)?;
    let mut select = direct.prepare(
        "SELECT body FROM detections WHERE tenant_key = 1 AND processed >= ?1 AND processed < ?2
         ORDER BY processed DESC, full_id DESC LIMIT 20",
    )?;
    let (since, until) = (query.window.since.unix_ticks(), query.window.until.unix_ticks());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..args.queries {
        let started = Instant::now();
        let (rows, _) = drain(store.stream(tenant, &query, Framing::JsonArray).await?).await?;
        ours.push(started.elapsed());
        anyhow::ensure!(rows == 20, "newest-20 returned {rows}");

        let started = Instant::now();
        let bodies: Vec<Vec<u8>> =
            select.query_map([since, until], |r| r.get(0))?.collect::<Result<_, _>>()?;
        theirs.push(started.elapsed());
        anyhow::ensure!(bodies.len() == 20);
    }
    ours.sort();
    theirs.sort();
    // Latency as a rate (queries/s at that quantile) so the ratio reads the same way as the others.
    for (label, q) in [("newest-20 p50 latency", 0.5), ("newest-20 p99 latency", 0.99)] {
        let (o, t) = (quantile_us(&ours, q), quantile_us(&theirs, q));
        report.note(&format!(
            "{:<44} {:>14} {:>14} {:>6.2}x",
            format!("{label} (µs)"),
            format!("{o:.0} µs"),
            format!("{t:.0} µs"),
            t / o
        ));
    }
    Ok(())
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

/// A window of `--window` detections, through the store and read bare.
async fn stream_window(
    args: &StoreBench,
    store: &SqliteStore,
    tenant: uuid::Uuid,
    store_path: &PathBuf,
    stamps: &[Timestamp],
    report: &mut Report,
) -> anyhow::Result<()> {
    // Each batch has its own stamp, so a window of whole batches holds exactly `--window`.
    let span = args.window / args.batch;
    let first = (stamps.len() / 3).min(stamps.len() - span);
    let since = stamps[first];
    let until = stamps.get(first + span).copied().unwrap_or(stamps[stamps.len() - 1].add_ticks(1));
    let query = AlertsQuery::from_pairs(
        [("sinceTimeUtc", since.to_string()), ("untilTimeUtc", until.to_string())],
        until,
    )?;
    let direct = Connection::open(store_path)?;
    let mut select = direct.prepare(
        "SELECT body FROM detections WHERE tenant_key = 1 AND processed >= ?1 AND processed < ?2
         ORDER BY processed, full_id",
    )?;
    let (mut ours, mut theirs, mut megabytes) = (Vec::new(), Vec::new(), 0.0);
    let bare = |select: &mut rusqlite::Statement<'_>| -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut rows = select.query([since.unix_ticks(), until.unix_ticks()])?;
        let (mut n, mut total) = (0usize, 0usize);
        while let Some(row) = rows.next()? {
            total += row.get_ref(0)?.as_blob()?.len();
            n += 1;
        }
        anyhow::ensure!(n == args.window && total > 0);
        Ok(n as f64 / started.elapsed().as_secs_f64())
    };
    // One unmeasured pass brings the window's pages into memory for both
    // sides; then seven rounds, alternating which side reads first.
    bare(&mut select)?;
    for round in 0..7 {
        if round % 2 == 1 {
            theirs.push(bare(&mut select)?);
        }
        let started = Instant::now();
        let (rows, bytes) = drain(store.stream(tenant, &query, Framing::JsonArray).await?).await?;
        ours.push(rows as f64 / started.elapsed().as_secs_f64());
        anyhow::ensure!(rows == args.window, "the window held {rows}, not {}", args.window);
        megabytes = bytes as f64 / 1e6;
        if round % 2 == 0 {
            theirs.push(bare(&mut select)?);
        }
    }
    let name = format!("stream a {} window ({megabytes:.0} MB)", human(args.window as f64));
    report.ratio(&name, median(ours), median(theirs), "/s", 0.7);
    Ok(())
}

/// Resident memory while the whole store streams as one window to a reader
/// that throws it away.
async fn memory(
    store: &SqliteStore,
    tenant: uuid::Uuid,
    report: &mut Report,
) -> anyhow::Result<()> {
    let query = AlertsQuery::from_pairs(
        [("sinceTimeUtc", "0001-01-01"), ("untilTimeUtc", "9999-01-01")],
        Timestamp::MAX,
    )?;
    let before = rss_mib();
    let mut peak = before;
    let mut stream = store.stream(tenant, &query, Framing::JsonArray).await?;
    let (mut rows, mut chunks) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        rows += chunk?.detections;
        chunks += 1;
        if chunks % 16 == 0 {
            peak = peak.max(rss_mib());
        }
    }
    let name = format!("memory growth streaming all {} (MiB)", human(rows as f64));
    report.ceiling(&name, peak - before, None, "MiB", 64.0);
    Ok(())
}
