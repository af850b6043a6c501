//! `siemgate ingest`: detections from files into the store, batch by batch.
//!
//! A blocking thread reads and prepares records while the store commits the
//! previous batch. Each batch is stored whole or not at all; the line printed
//! for it is its acknowledgement. A bad record stops the command: its batch is
//! not stored, the batches before it are, and a rerun after the fix counts
//! those as duplicates.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use siemgate_model::prepare::prepare;
use siemgate_model::records::RecordReader;
use siemgate_model::{PrepareOptions, Prepared};
use siemgate_store::TenantState;
use tokio::sync::mpsc;

use super::{find_tenant, open_store};
use crate::cli::IngestArgs;
use crate::output::say;

/// A batch read from one input.
struct Batch {
    source: String,
    number: usize,
    first_record: usize,
    records: Vec<Prepared>,
}

/// Why reading stopped, and in which batch (none when the input could not be opened).
struct Refusal {
    source: String,
    batch: Option<(usize, usize)>,
    error: anyhow::Error,
}

pub async fn run(args: IngestArgs, database: &str) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    let tenant = find_tenant(&*store, &args.tenant).await?;
    anyhow::ensure!(
        tenant.state != TenantState::Deleted,
        "tenant {} is deleted; `siemgate tenant enable {}` restores it",
        tenant.name,
        tenant.id
    );
    let options = PrepareOptions {
        portal_url: args.portal.public_url.trim_end_matches('/').to_owned(),
        keep_processed_time: args.keep_processed_time,
    };

    let (tx, mut rx) = mpsc::channel(2);
    let batch_size = args.batch_size as usize;
    let files = args.files.clone();
    let reader = tokio::task::spawn_blocking(move || {
        for file in &files {
            if let Err(refusal) = read_file(file, batch_size, &options, &tx) {
                let _ = tx.blocking_send(Err(refusal));
                return;
            }
        }
    });

    let (mut stored, mut duplicates, mut batches) = (0u64, 0u64, 0usize);
    while let Some(item) = rx.recv().await {
        let batch = match item {
            Ok(batch) => batch,
            Err(Refusal { error, batch: None, .. }) => return Err(error),
            Err(Refusal { source, error, batch: Some((number, first_record)) }) => {
                let before = if batches == 0 {
                    String::new()
                } else {
                    format!(
                        "; the {batches} batch(es) before it were stored ({stored} new, \
                         {duplicates} duplicates) and count as duplicates when sent again"
                    )
                };
                anyhow::bail!(
                    "{source}: {error:#}; batch {number} (from record {first_record}) \
                     was not stored{before}"
                );
            }
        };
        let last_record = batch.first_record + batch.records.len() - 1;
        let report = store
            .ingest(tenant.id, batch.records)
            .await
            .with_context(|| format!("{}: batch {} was not stored", batch.source, batch.number))?;
        say!(
            "{}: batch {} (records {}-{}): stored {}, duplicates {}",
            batch.source,
            batch.number,
            batch.first_record,
            last_record,
            report.stored,
            report.duplicates
        )?;
        stored += report.stored;
        duplicates += report.duplicates;
        batches += 1;
    }
    reader.await?;
    say!("ingested into tenant {}: stored {stored}, duplicates {duplicates}", tenant.name)?;
    Ok(())
}

fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 18, file)))
}

/// Reads one input into batches and hands them over; stops at the first bad record.
fn read_file(
    path: &PathBuf,
    batch_size: usize,
    options: &PrepareOptions,
    tx: &mpsc::Sender<Result<Batch, Refusal>>,
) -> Result<(), Refusal> {
    let source =
        if path == Path::new("-") { "stdin".to_owned() } else { path.display().to_string() };
    let input =
        open(path).map_err(|error| Refusal { source: source.clone(), batch: None, error })?;

    let mut batch =
        Batch { source: source.clone(), number: 1, first_record: 1, records: Vec::new() };
    for item in RecordReader::new(input) {
        let record = match item {
            Ok((at, detection)) => prepare(detection, options).map_err(|e| anyhow!("{at}: {e}")),
            Err(e) => Err(e.into()),
        };
        let record = record.map_err(|error| Refusal {
            source: source.clone(),
            batch: Some((batch.number, batch.first_record)),
            error,
        })?;
        batch.records.push(record);
        if batch.records.len() == batch_size {
            let next = Batch {
                source: source.clone(),
                number: batch.number + 1,
                first_record: batch.first_record + batch_size,
                records: Vec::with_capacity(batch_size),
            };
            let full = std::mem::replace(&mut batch, next);
            if tx.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.records.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}
