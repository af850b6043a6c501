//! The puller benchmark: a window of detections pulled into an NDJSON file
//! by the puller, taking turns with curl fetching the same window into a
//! file, against one server process; and the puller's peak memory for that
//! window and for a window several times larger.
//!
//! The puller runs as a process of its own (this benchmark started again with
//! the hidden `pull-client` command, which makes the same library calls as
//! `siemgate pull --format ndjson --output FILE`), so its memory is its own
//! and both sides pay for starting a process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use siemgate_model::Timestamp;
use siemgate_pull::api::{Api, Filters, Query};
use siemgate_pull::endpoint::{DEFAULT_RESOURCE, Endpoint, TokenVersion};
use siemgate_pull::oneshot::{self, Tries};
use siemgate_pull::sink::output::{FileOutput, Format};
use siemgate_pull::token::Tokens;
use siemgate_store::SqliteStore;

use crate::api::server::{ServerProcess, ServerStore};
use crate::api::{fill, require, token};
use crate::backends::Backend;
use crate::report::{Report, human, median};

#[derive(Debug, Args)]
pub struct PullBench {
    /// Detections in the window pulled for the rate.
    #[arg(long, default_value_t = 100_000)]
    window: usize,
    /// Detections in the store; all of them are pulled once, as one window,
    /// to show that the puller's memory does not grow with the window.
    #[arg(long, default_value_t = 400_000)]
    detections: usize,
    /// Detections per ingested batch while filling.
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
    /// Pulls on each side; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Folder for the store and the output files (default: a temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// What the `pull-client` process is told.
#[derive(Debug, Args)]
pub struct ClientArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    since: String,
    #[arg(long)]
    until: String,
    #[arg(long)]
    output: PathBuf,
}

pub async fn run(args: PullBench) -> anyhow::Result<bool> {
    require("curl", "curl")?;
    anyhow::ensure!(
        args.batch > 0
            && args.window.is_multiple_of(args.batch)
            && args.detections.is_multiple_of(args.batch)
            && args.detections >= args.window,
        "--window and --detections must be multiples of --batch, and --detections at least --window"
    );
    let temp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let store_path = temp.path().join("store.db");
    let store = SqliteStore::open(&store_path).await?;
    let mut report = Report::new();
    report.note(&format!(
        "siemgate puller benchmark: a {} window, server on 127.0.0.1, files in {}\n",
        human(args.window as f64),
        temp.path().display()
    ));
    let filled = fill(Backend::Sqlite, args.detections, args.batch, &store, &mut report).await?;
    drop(store);
    let server = ServerProcess::start(&ServerStore::sqlite(&store_path)).await?;
    let http = reqwest::Client::new();
    let bearer = token(&http, &server.base, &filled).await?;

    let span = args.window / args.batch;
    let first = (filled.stamps.len() - span) / 2;
    let since = filled.stamps[first];
    let until = filled.stamps[first + span - 1].add_ticks(1);
    let client = |since: Timestamp, until: Timestamp, output: &Path| {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("pull-client")
            .args(["--url", &server.base, "--tenant", &filled.tenant.to_string()])
            .args(["--client-id", &filled.client_id.to_string()])
            .args(["--since", &since.to_string(), "--until", &until.to_string()])
            .arg("--output")
            .arg(output)
            .env("SIEMGATE_BENCH_SECRET", &filled.secret)
            .stderr(Stdio::inherit());
        anyhow::Ok(cmd)
    };
    let url = format!("{}/api/alerts?sinceTimeUtc={since}&untilTimeUtc={until}", server.base);
    let curl_file = temp.path().join("curl.json");
    let pulled_file = temp.path().join("pulled.ndjson");

    let (mut ours, mut theirs, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds + 1 {
        for puller_turn in [round % 2 == 0, round % 2 == 1] {
            let started = Instant::now();
            if puller_turn {
                let out = client(since, until, &pulled_file)?.output()?;
                anyhow::ensure!(out.status.success(), "the puller failed");
                let seconds = started.elapsed().as_secs_f64();
                let (records, peak) = client_report(&out.stdout)?;
                anyhow::ensure!(
                    records == args.window,
                    "the puller delivered {records}, not {}",
                    args.window
                );
                // The first round warms the page cache for both sides and is not counted.
                if round > 0 {
                    ours.push(args.window as f64 / seconds);
                    peaks.push(peak);
                }
            } else {
                curl(&url, &bearer, &curl_file)?;
                if round > 0 {
                    theirs.push(args.window as f64 / started.elapsed().as_secs_f64());
                }
            }
        }
    }
    let lines = count_lines(&pulled_file)?;
    anyhow::ensure!(lines == args.window, "the NDJSON file holds {lines} lines");
    let size = std::fs::metadata(&curl_file)?.len();
    let name = format!(
        "pull a {} window ({:.0} MB) into a file, detections/s",
        human(args.window as f64),
        size as f64 / 1e6
    );
    report.ratio(&name, median(ours), median(theirs), 0.8);
    report.note("  (baseline: curl writing the same window's body to a file; both uncompressed)");
    report.ceiling(
        &format!("puller peak memory, {} window", human(args.window as f64)),
        median(peaks),
        "MiB",
        64.0,
    );

    let whole =
        client(filled.started, Timestamp::MAX, &temp.path().join("whole.ndjson"))?.output()?;
    anyhow::ensure!(whole.status.success(), "the puller failed on the whole store");
    let (records, peak) = client_report(&whole.stdout)?;
    anyhow::ensure!(records == args.detections, "the whole store gave {records} detections");
    report.ceiling(
        &format!("puller peak memory, {} window", human(args.detections as f64)),
        peak,
        "MiB",
        64.0,
    );
    Ok(report.all_passed)
}

/// `curl` writing the answer to `file`, as the reference page's scripts do.
fn curl(url: &str, bearer: &str, file: &Path) -> anyhow::Result<()> {
    let status = Command::new("curl")
        .args(["-sS", "--fail", "-o"])
        .arg(file)
        .args(["-H", &format!("Authorization: Bearer {bearer}"), url])
        .status()?;
    anyhow::ensure!(status.success(), "curl failed: {status}");
    Ok(())
}

fn count_lines(path: &Path) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.iter().filter(|b| **b == b'\n').count())
}

/// The `records peak_mib` line the client prints.
fn client_report(stdout: &[u8]) -> anyhow::Result<(usize, f64)> {
    let text = String::from_utf8_lossy(stdout);
    let mut words = text.split_whitespace();
    let records = words.next().context("the puller printed nothing")?.parse()?;
    let peak = words.next().context("the puller printed no memory figure")?.parse()?;
    Ok((records, peak))
}

/// The puller: one window into an NDJSON file, then its count and its peak
/// resident memory (VmHWM) on stdout.
pub async fn client(args: ClientArgs) -> anyhow::Result<()> {
    let endpoint = Endpoint {
        tenant: args.tenant.clone(),
        client_id: args.client_id,
        client_secret: std::env::var("SIEMGATE_BENCH_SECRET")?,
        alerts_url: format!("{}/api/alerts", args.url),
        token_url: format!("{}/{}/oauth2/token", args.url, args.tenant),
        resource: DEFAULT_RESOURCE.into(),
        token_version: TokenVersion::V1,
        ca_file: None,
        proxy: None,
        gzip: false,
    };
    let http = siemgate_pull::http::client(&endpoint)?;
    let api = Api::new(http.clone(), Tokens::new(http, endpoint.clone()), endpoint.alerts_url);
    let query = Query {
        since: Timestamp::parse(&args.since)?,
        until: Timestamp::parse(&args.until)?,
        limit: None,
        filters: Filters::default(),
    };
    let mut sink = FileOutput::create(&args.output, Format::Ndjson)?;
    let pulled = oneshot::pull(
        &api,
        &query,
        &mut sink,
        &std::env::temp_dir(),
        &Tries::default(),
        &mut |_| {},
    )
    .await?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    use std::io::Write;
    writeln!(std::io::stdout(), "{} {:.1}", pulled.delivered, peak_kib / 1024.0)?;
    Ok(())
}
