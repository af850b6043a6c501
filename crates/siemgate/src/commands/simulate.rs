//! `siemgate simulate`: a simulated fleet's detections, once or at a rate,
//! into the store or to standard output as NDJSON.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use siemgate_model::prepare::prepare;
use siemgate_model::{Detection, PrepareOptions, Prepared, Timestamp};
use siemgate_simulate::{FleetOptions, Simulator};
use siemgate_store::{Store, Tenant};

use super::{find_tenant, now, open_store};
use crate::cli::SimulateArgs;
use crate::output::say;

/// How often rate mode generates and stores what has come due.
const TICK: Duration = Duration::from_millis(200);

/// Where generated detections go.
enum Target {
    Stdout,
    Store { store: Arc<dyn Store>, tenant: Tenant },
}

pub async fn run(args: SimulateArgs, database: &str) -> anyhow::Result<()> {
    anyhow::ensure!(args.devices > 0, "--devices must be at least 1");
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    let target = if args.stdout {
        Target::Stdout
    } else {
        let store = open_store(database).await?;
        let key = args.tenant.as_deref().unwrap_or_default();
        let tenant = find_tenant(&*store, key).await?;
        Target::Store { store, tenant }
    };
    let options = PrepareOptions {
        portal_url: args.portal.public_url.trim_end_matches('/').to_owned(),
        keep_processed_time: false,
    };
    let fleet = FleetOptions { devices: args.devices, domain: args.domain.clone() };
    let mut simulator = Simulator::new(args.seed, fleet);
    let mut totals = Totals::default();

    if let Some(count) = args.count {
        let end = args.end.unwrap_or_else(now);
        let start = end.add_ticks(-args.spread.ticks());
        let batches = count.div_ceil(args.batch_size).max(1);
        let step = args.spread.ticks() / batches as i64;
        let mut left = count;
        for i in 0..batches {
            let n = left.min(args.batch_size);
            left -= n;
            let from = start.add_ticks(step * i as i64);
            let until = if i + 1 == batches { end } else { from.add_ticks(step) };
            let detections = simulator.batch(n, from, until);
            deliver(&target, detections, &options, &mut totals).await?;
        }
    } else if let Some(rate) = args.rate {
        anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be a positive number");
        let stop_at = args.duration.map(|d| now().add_ticks(d.ticks()));
        run_at_rate(&target, &mut simulator, rate, args.batch_size, stop_at, &options, &mut totals)
            .await?;
    }

    if let Target::Store { tenant, .. } = &target {
        say!(
            "simulated {} detections for tenant {}: stored {}, duplicates {}",
            totals.generated,
            tenant.name,
            totals.stored,
            totals.duplicates
        )?;
    }
    Ok(())
}

/// Generates `rate` detections a second, stamped with the time they come due,
/// until `stop_at` or Ctrl-C.
async fn run_at_rate(
    target: &Target,
    simulator: &mut Simulator,
    rate: f64,
    batch_size: usize,
    stop_at: Option<Timestamp>,
    options: &PrepareOptions,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut last = now();
    let mut interval = tokio::time::interval(TICK);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = &mut ctrl_c => return Ok(()),
        }
        let current = now();
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        let mut n = due.saturating_sub(totals.generated);
        while n > 0 {
            let take = n.min(batch_size);
            n -= take;
            let detections = simulator.batch(take, last, current.max(last.add_ticks(1)));
            deliver(target, detections, options, totals).await?;
            tracing::info!(generated = totals.generated, stored = totals.stored, "simulated");
        }
        last = current;
        if stop_at.is_some_and(|stop| current >= stop) {
            return Ok(());
        }
    }
}

#[derive(Debug, Default)]
struct Totals {
    generated: usize,
    stored: u64,
    duplicates: u64,
}

async fn deliver(
    target: &Target,
    detections: Vec<Detection>,
    options: &PrepareOptions,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    totals.generated += detections.len();
    match target {
        Target::Stdout => {
            let mut out = std::io::stdout().lock();
            for detection in detections {
                let processed = detection.last_processed_time_utc.or(detection.alert_time);
                let prepared = prepare(detection, options)?;
                out.write_all(&prepared.render(processed.unwrap_or_else(now)))?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Target::Store { store, tenant } => {
            let prepared = detections
                .into_iter()
                .map(|d| prepare(d, options))
                .collect::<Result<Vec<Prepared>, _>>()?;
            let report = store.ingest(tenant.id, prepared).await?;
            totals.stored += report.stored;
            totals.duplicates += report.duplicates;
        }
    }
    Ok(())
}
