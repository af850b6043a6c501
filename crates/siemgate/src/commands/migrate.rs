//! `siemgate migrate`: a whole store copied into an empty one of either
//! backend, then counted on both sides.
//!
//! The copying is `siemgate_store::copy`; this module opens the two stores,
//! refuses what would harm either, turns each way of failing into what the
//! operator should do next, and prints the summary.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use siemgate_store::Store;
use siemgate_store::copy::{Census, CopyError, Progress, copy_store, count, describe_holdings};

use super::{open_store, without_password};
use crate::cli::MigrateArgs;
use crate::output::{say, stderr_text};

/// What to do with a target that holds something, or a partial copy.
const START_AGAIN: &str = "give --to a new SQLite file or an empty PostgreSQL database or \
    schema, or empty this one (delete the SQLite file with its -wal and -shm files, or \
    `DROP SCHEMA ... CASCADE` and create it again), then run migrate again";

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let (from, to) = (without_password(&args.from), without_password(&args.to));
    check_pair(&args.from, &args.to)?;
    let source = open_source(&args.from).await?;
    let target = open_store(&args.to).await?;

    let started = Instant::now();
    let mut progress = ProgressLine::new();
    let copied = copy_store(&*source, &*target, |p| progress.show(p)).await;
    progress.clear();
    let census = match copied {
        Ok(census) => census,
        Err(CopyError::TargetNotEmpty(held)) => bail!(
            "{to} is not empty: it holds {}; migrate copies only into an empty store, so \
             nothing was copied: {START_AGAIN}",
            describe_holdings(&held)
        ),
        Err(CopyError::BeforeWriting(e)) => {
            return Err(e).context(format!("cannot copy {from} to {to}; nothing was written"));
        }
        Err(CopyError::Partial { progress, error }) => bail!(
            "copying {from} to {to} failed after {} of {} detections: {error}; the target now \
             holds a partial copy, which migrate will refuse: {START_AGAIN}",
            progress.detections,
            progress.of
        ),
    };
    let elapsed = started.elapsed();

    check(&census, &*source, &*target).await?;
    summarise(&census, elapsed, &from, &to)?;
    Ok(())
}

/// Refuses a pair that cannot be a copy: a store that vanishes on exit, or
/// the same store twice.
fn check_pair(from: &str, to: &str) -> anyhow::Result<()> {
    for (flag, value) in [("--from", from), ("--to", to)] {
        if matches!(value.trim(), "memory" | ":memory:") {
            bail!(
                "{flag} memory names a store that exists only while one command runs; give a \
                 SQLite file or a postgres:// URL"
            );
        }
    }
    let same = match (sqlite_path(from), sqlite_path(to)) {
        (Some(a), Some(b)) => {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        }
        _ => from.trim() == to.trim(),
    };
    if same {
        bail!("--from and --to name the same store; --to must be another, empty one");
    }
    Ok(())
}

/// The file a `--database` value names, when it names a SQLite file.
fn sqlite_path(database: &str) -> Option<&Path> {
    let database = database.trim();
    let url = siemgate_store::is_postgres_url(database);
    (!url).then(|| Path::new(database.strip_prefix("sqlite:").unwrap_or(database)))
}

/// Opens the source, refusing a SQLite file that is not there: opening it
/// would make an empty store, and copying that is surely a mistyped path.
async fn open_source(database: &str) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(path) = sqlite_path(database)
        && !path.is_file()
    {
        bail!(
            "--from {}: no such SQLite file; give the path of the store to copy, or a \
             postgres:// URL",
            path.display()
        );
    }
    open_store(database).await
}

/// Counts both stores and fails, naming each difference, unless the target
/// holds what the source held and the source did not change meanwhile.
async fn check(census: &Census, source: &dyn Store, target: &dyn Store) -> anyhow::Result<()> {
    let copied = Census::take(target).await.context("copied, but cannot count the target")?;
    let differences = census.differences(&copied);
    if !differences.is_empty() {
        bail!("the copy does not match the source: {}; {START_AGAIN}", differences.join("; "));
    }
    let now = Census::take(source).await.context("copied, but cannot count the source again")?;
    let changed = census.differences(&now);
    if !changed.is_empty() {
        let changed = changed.join("; ").replace("in the target", "now");
        bail!(
            "the source changed while it was copied ({changed}); stop every server and \
             command writing to it, then {START_AGAIN}"
        );
    }
    Ok(())
}

fn summarise(census: &Census, elapsed: Duration, from: &str, to: &str) -> anyhow::Result<()> {
    say!("copied {from} to {to}")?;
    say!(
        "  {}, {}, {}, {}, {}",
        count(census.tenants as u64, "tenant"),
        count(census.apps as u64, "app"),
        count(census.users as u64, "user"),
        count(census.signing_keys as u64, "signing key"),
        count(census.refresh_tokens as u64, "refresh token"),
    )?;
    let detections = census.total_detections();
    let seconds = elapsed.as_secs_f64();
    say!(
        "  {} in {seconds:.1} s ({:.0} detections/s)",
        count(detections, "detection"),
        detections as f64 / seconds.max(1e-3)
    )?;
    say!("counts checked: the target holds what the source holds, tenant by tenant")?;
    Ok(())
}

/// `copied N of M detections` on standard error, rewritten in place a few
/// times a second, only when standard error is a terminal.
struct ProgressLine {
    on: bool,
    last: Option<Instant>,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        ProgressLine { on: std::io::stderr().is_terminal(), last: None }
    }

    fn show(&mut self, progress: Progress) {
        let due = self.last.is_none_or(|at| at.elapsed() >= Duration::from_millis(250));
        if self.on && due {
            stderr_text(&format!("\rcopied {} of {} detections", progress.detections, progress.of));
            self.last = Some(Instant::now());
        }
    }

    fn clear(&self) {
        if self.on && self.last.is_some() {
            stderr_text("\r\x1b[2K");
        }
    }
}
