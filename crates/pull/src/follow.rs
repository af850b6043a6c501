//! Follow mode: one stream (a tenant's detections into one sink) pulled
//! window after window, for as long as the process runs.
//!
//! Each window starts at the checkpoint and ends `lag` before now, on a whole
//! second: a detection is visible to the API some time after the instant the
//! server stamps on it, and the lag is that allowance. Whole seconds make the
//! bounds mean the same to a server that reads fewer fractional digits.
//! A window is delivered, then the sink commits, then the checkpoint moves:
//! a crash anywhere in between means the window is pulled again, and the
//! boundary set and the sink's mark keep that from repeating anything.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use siemgate_model::{Span, Timestamp, time::TICKS_PER_SECOND};
use tokio::sync::watch;

use crate::api::{Api, Filters, Query};
use crate::checkpoint::{Checkpoint, Position};
use crate::error::PullError;
use crate::sink::Sink;
use crate::window::{Backoff, Keep, attempt};

/// How a stream is followed.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Time between polls once the stream has caught up.
    pub interval: Duration,
    /// How far behind now every window ends.
    pub lag: Span,
    /// Where a stream with no checkpoint starts.
    pub start: Timestamp,
    /// The longest window asked for at once; catching up after an outage
    /// takes several.
    pub max_window: Span,
    pub filters: Filters,
    /// The first wait after a failure; it doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Consecutive failures after which each one is logged as an error.
    pub loud_after: u32,
    /// Consecutive failures of one window after which it is halved.
    pub split_after: u32,
    /// Where bodies wait before going to a sink that cannot take them back.
    pub spool_dir: PathBuf,
}

/// Counters of one stream, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct Stats {
    pub delivered: AtomicU64,
    pub windows: AtomicU64,
    pub failures: AtomicU64,
    pub consecutive_failures: AtomicU64,
    pub bytes: AtomicU64,
    /// The checkpoint, in Unix seconds.
    pub position: AtomicI64,
    /// The last successful window's end, in Unix seconds.
    pub last_success: AtomicI64,
}

/// One tenant's detections flowing into one sink.
pub struct Stream {
    pub name: String,
    pub api: Api,
    pub checkpoint: Checkpoint,
    pub sink: Box<dyn Sink>,
    pub options: FollowOptions,
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The wall clock, in the model's ticks.
pub fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// `t` rounded down to a whole second.
fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp::from_unix_ticks(t.unix_ticks().div_euclid(TICKS_PER_SECOND) * TICKS_PER_SECOND)
}

impl Stream {
    /// Follows the stream until `stop` turns true. A window in flight when
    /// it does is abandoned uncommitted, to be pulled again on the next run.
    pub async fn follow(mut self, mut stop: watch::Receiver<bool>) -> Result<(), PullError> {
        let saved = self.checkpoint.load()?;
        self.sink.restore(saved.as_ref().map(|p| &p.sink)).await?;
        let mut position = saved.unwrap_or_else(|| Position {
            since: self.options.start,
            delivered_at_since: Default::default(),
            sink: serde_json::Value::Null,
        });
        tracing::info!(stream = %self.name, since = %position.since, checkpoint = %self.checkpoint.path().display(), "following");
        self.stats.position.store(position.since.unix_seconds(), Ordering::Relaxed);

        let mut backoff = Backoff::new(self.options.first_backoff, self.options.max_backoff);
        let mut span = self.options.max_window.ticks().max(TICKS_PER_SECOND);
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let end = whole_second(now().add_ticks(-self.options.lag.ticks()));
            if end <= position.since {
                if sleep_or_stop(self.options.interval, &mut stop).await {
                    return Ok(());
                }
                continue;
            }
            let until = whole_second(position.since.add_ticks(span)).max(
                // A window always advances by at least a second.
                whole_second(position.since).add_ticks(TICKS_PER_SECOND),
            );
            let until = until.min(end);
            let wait = match self.window(&mut position, until, &mut stop).await {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    backoff.reset();
                    span = (span * 2).min(self.options.max_window.ticks().max(TICKS_PER_SECOND));
                    if until < end {
                        continue;
                    }
                    self.options.interval
                }
                Err(e) => {
                    let wait = backoff.wait(&e);
                    let failures = backoff.failures();
                    self.report(&e, &position, until, failures, wait);
                    let throttled = matches!(e, PullError::Retry { after: Some(_), .. });
                    let width = until.unix_ticks() - position.since.unix_ticks();
                    if !throttled
                        && failures >= self.options.split_after
                        && width >= 2 * TICKS_PER_SECOND
                    {
                        span = width / 2;
                        tracing::warn!(stream = %self.name, seconds = span / TICKS_PER_SECOND, "halving the window after repeated failures");
                    }
                    wait
                }
            };
            if sleep_or_stop(wait, &mut stop).await {
                return Ok(());
            }
        }
    }

    /// Pulls `[position.since, until]`, commits the sink, moves the checkpoint;
    /// false when `stop` turned true before the answer was in.
    async fn window(
        &mut self,
        position: &mut Position,
        until: Timestamp,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, PullError> {
        let query = Query {
            since: position.since,
            until,
            limit: None,
            filters: self.options.filters.clone(),
        };
        let keep = Keep {
            bounds: Some((position.since, until)),
            delivered_at_since: std::mem::take(&mut position.delivered_at_since),
        };
        // A stalled answer can take minutes to fail; stopping must not wait
        // for it. Only the fetch is abandoned, never a commit under way.
        let mut no_progress = |_: &_| {};
        let result = tokio::select! {
            result = attempt(
                &self.api,
                &query,
                &keep,
                self.sink.as_mut(),
                &self.options.spool_dir,
                &mut no_progress,
            ) => result,
            () = stopped(stop) => {
                position.delivered_at_since = keep.delivered_at_since;
                if self.sink.can_roll_back() {
                    self.sink.roll_back().await?;
                }
                return Ok(false);
            }
        };
        let pulled = match result {
            Ok(pulled) => pulled,
            Err(e) => {
                position.delivered_at_since = keep.delivered_at_since;
                return Err(e);
            }
        };
        let mark = match self.sink.commit().await {
            Ok(mark) => mark,
            Err(e) => {
                position.delivered_at_since = keep.delivered_at_since;
                if self.sink.can_roll_back() {
                    self.sink.roll_back().await?;
                }
                return Err(e.into());
            }
        };
        let next = Position {
            since: until,
            delivered_at_since: pulled.delivered_at_until.iter().cloned().collect(),
            sink: mark,
        };
        self.checkpoint.save(&next, now())?;
        *position = next;

        let s = &self.stats;
        s.delivered.fetch_add(pulled.delivered, Ordering::Relaxed);
        s.bytes.fetch_add(pulled.bytes, Ordering::Relaxed);
        s.windows.fetch_add(1, Ordering::Relaxed);
        s.consecutive_failures.store(0, Ordering::Relaxed);
        s.position.store(until.unix_seconds(), Ordering::Relaxed);
        s.last_success.store(now().unix_seconds(), Ordering::Relaxed);
        tracing::info!(
            stream = %self.name,
            since = %query.since,
            until = %until,
            delivered = pulled.delivered,
            skipped = pulled.skipped,
            "window delivered"
        );
        Ok(true)
    }

    fn report(
        &self,
        e: &PullError,
        position: &Position,
        until: Timestamp,
        failures: u32,
        wait: Duration,
    ) {
        let s = &self.stats;
        s.failures.fetch_add(1, Ordering::Relaxed);
        s.consecutive_failures.store(u64::from(failures), Ordering::Relaxed);
        let loud = failures >= self.options.loud_after || !e.is_transient();
        if loud {
            tracing::error!(
                stream = %self.name,
                since = %position.since,
                until = %until,
                failures,
                retry_in_s = wait.as_secs_f64(),
                "the window keeps failing; it will be retried, never skipped: {e}"
            );
        } else {
            tracing::warn!(
                stream = %self.name,
                since = %position.since,
                until = %until,
                failures,
                retry_in_s = wait.as_secs_f64(),
                "window failed, retrying: {e}"
            );
        }
    }
}

/// Returns once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Sleeps for `wait`; true when `stop` turned true meanwhile.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}
