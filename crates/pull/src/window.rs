//! Pulling one window into a sink, all or nothing.
//!
//! A sink that can take back what it was given (a file) receives records
//! while the body arrives, and takes them back if the body breaks off or turns
//! out malformed. Any other sink (syslog, HEC, a terminal) receives nothing
//! until the whole body has arrived and been checked: the body waits in a
//! spool file meanwhile, so memory stays flat whatever the window's size.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::time::Duration;

use siemgate_model::Timestamp;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::api::{Api, Query};
use crate::error::PullError;
use crate::record::{Record, Splitter};
use crate::sink::Sink;
use crate::token::chain;

/// How long a body may go without a byte before the attempt is abandoned.
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Which records of an answer to deliver.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    /// Deliver only records processed in `[since, until]` (both ends
    /// included: a server may treat either bound as inclusive or exclusive,
    /// and the checkpoint's boundary set removes what was already sent).
    pub bounds: Option<(Timestamp, Timestamp)>,
    /// FullIds already delivered whose `LastProcessedTimeUtc` is exactly
    /// `since`: the previous window ended on that instant.
    pub delivered_at_since: HashSet<String>,
}

impl Keep {
    fn wants(&self, record: &Record<'_>) -> bool {
        let Some((since, until)) = self.bounds else {
            return true;
        };
        if record.processed < since || record.processed > until {
            return false;
        }
        !(record.processed == since && self.delivered_at_since.contains(record.full_id.as_ref()))
    }
}

/// What one successful attempt delivered.
#[derive(Debug, Clone, Default)]
pub struct Pulled {
    /// Records the sink received.
    pub delivered: u64,
    /// Records the server sent that were already delivered or fall outside
    /// the window.
    pub skipped: u64,
    /// Bytes of body received.
    pub bytes: u64,
    /// FullIds delivered whose `LastProcessedTimeUtc` equals the window's
    /// end: the next window starts there and must not send them again.
    pub delivered_at_until: Vec<String>,
}

impl Pulled {
    fn count(&mut self, records: &[Record<'_>], until: Option<Timestamp>) {
        self.delivered += records.len() as u64;
        if let Some(until) = until {
            for r in records.iter().filter(|r| r.processed == until) {
                self.delivered_at_until.push(r.full_id.to_string());
            }
        }
    }
}

/// Makes one attempt at `query` and hands the kept records to `sink`,
/// without committing. On failure the sink holds nothing of this attempt
/// (it was rolled back, or never written to).
pub async fn attempt(
    api: &Api,
    query: &Query,
    keep: &Keep,
    sink: &mut dyn Sink,
    spool_dir: &Path,
    progress: &mut (dyn FnMut(&Pulled) + Send),
) -> Result<Pulled, PullError> {
    let response = api.alerts(query).await?;
    if sink.can_roll_back() {
        let result = stream_into(response, keep, sink, progress).await;
        if result.is_err() {
            sink.roll_back().await?;
        }
        result
    } else {
        let mut spool =
            tempfile::tempfile_in(spool_dir).map(tokio::fs::File::from_std).map_err(|e| {
                PullError::io(format!("cannot make a spool file in {}", spool_dir.display()), e)
            })?;
        let bytes = spool_body(response, &mut spool, progress).await?;
        let mut pulled = replay(&mut spool, keep, sink).await?;
        pulled.bytes = bytes;
        Ok(pulled)
    }
}

/// The next piece of a body, or `None` at its end.
async fn next_chunk(response: &mut reqwest::Response) -> Result<Option<bytes::Bytes>, PullError> {
    match tokio::time::timeout(READ_TIMEOUT, response.chunk()).await {
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) => Err(PullError::retry(format!("the answer broke off: {}", chain(&e)), None)),
        Err(_) => Err(PullError::retry(
            format!("the answer stalled: no byte for {} s", READ_TIMEOUT.as_secs()),
            None,
        )),
    }
}

fn malformed(e: crate::record::RecordError) -> PullError {
    PullError::retry(format!("the answer was not usable: {e}"), None)
}

async fn stream_into(
    mut response: reqwest::Response,
    keep: &Keep,
    sink: &mut dyn Sink,
    progress: &mut (dyn FnMut(&Pulled) + Send),
) -> Result<Pulled, PullError> {
    let mut splitter = Splitter::new();
    let mut pulled = Pulled::default();
    while let Some(chunk) = next_chunk(&mut response).await? {
        pulled.bytes += chunk.len() as u64;
        deliver(&mut splitter, &chunk, keep, sink, &mut pulled).await?;
        progress(&pulled);
    }
    splitter.finish().map_err(malformed)?;
    Ok(pulled)
}

/// Writes the whole body to `spool`, checking it on the way; returns its size.
async fn spool_body(
    mut response: reqwest::Response,
    spool: &mut tokio::fs::File,
    progress: &mut (dyn FnMut(&Pulled) + Send),
) -> Result<u64, PullError> {
    let spool_error = |e| PullError::io("cannot write the spool file", e);
    let mut splitter = Splitter::new();
    let mut seen = Pulled::default();
    while let Some(chunk) = next_chunk(&mut response).await? {
        seen.bytes += chunk.len() as u64;
        splitter.push(&chunk).map_err(malformed)?;
        seen.delivered += splitter.take().map_err(malformed)?.len() as u64;
        spool.write_all(&chunk).await.map_err(spool_error)?;
        progress(&seen);
    }
    let bytes = seen.bytes;
    splitter.finish().map_err(malformed)?;
    spool.flush().await.map_err(spool_error)?;
    Ok(bytes)
}

/// Feeds a checked body from the spool to the sink.
async fn replay(
    spool: &mut tokio::fs::File,
    keep: &Keep,
    sink: &mut dyn Sink,
) -> Result<Pulled, PullError> {
    let spool_error = |e| PullError::io("cannot read the spool file", e);
    spool.rewind().await.map_err(spool_error)?;
    let mut splitter = Splitter::new();
    let mut pulled = Pulled::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = spool.read(&mut buf).await.map_err(spool_error)?;
        if n == 0 {
            break;
        }
        deliver(&mut splitter, &buf[..n], keep, sink, &mut pulled).await?;
    }
    Ok(pulled)
}

/// Splits the next piece of a body and hands the records `keep` wants to
/// the sink.
async fn deliver(
    splitter: &mut Splitter,
    piece: &[u8],
    keep: &Keep,
    sink: &mut dyn Sink,
    pulled: &mut Pulled,
) -> Result<(), PullError> {
    splitter.push(piece).map_err(malformed)?;
    let records = splitter.take().map_err(malformed)?;
    let total = records.len() as u64;
    let kept: Vec<Record<'_>> = records.into_iter().filter(|r| keep.wants(r)).collect();
    pulled.skipped += total - kept.len() as u64;
    if !kept.is_empty() {
        sink.write(&kept).await?;
        pulled.count(&kept, keep.bounds.map(|(_, until)| until));
    }
    Ok(())
}

/// Waits between attempts: the server's `Retry-After` when it gave one,
/// else an exponential backoff with jitter, so that many pullers that failed
/// together do not return together.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max, failures: 0 }
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Counts a failure and says how long to wait before the next attempt.
    pub fn wait(&mut self, error: &PullError) -> Duration {
        self.failures += 1;
        if let PullError::Retry { after: Some(after), .. } = error {
            return *after;
        }
        let exp = self.failures.saturating_sub(1).min(20);
        let ceiling = self.first.saturating_mul(1 << exp).min(self.max);
        // Half fixed, half random: never shorter than half the ceiling.
        let half = ceiling / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// A number in `[0, 1)`, from the standard library's randomly keyed hasher.
fn random_fraction() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let transient = PullError::retry("x", None);
        for n in 0..10u32 {
            let ceiling = Duration::from_secs(1 << n.min(6)).min(Duration::from_secs(60));
            let w = b.wait(&transient);
            assert!(w >= ceiling / 2 && w <= ceiling, "failure {n}: {w:?} vs {ceiling:?}");
        }
        let throttled = PullError::retry("429", Some(Duration::from_secs(7)));
        assert_eq!(b.wait(&throttled), Duration::from_secs(7));
        assert_eq!(b.failures(), 11);
        b.reset();
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn keep_drops_what_falls_outside_or_was_delivered() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let keep = Keep {
            bounds: Some((t("2026-01-01T00:00:00Z"), t("2026-01-01T00:01:00Z"))),
            delivered_at_since: ["old".to_string()].into(),
        };
        let r = |id: &'static str, at: &str| Record {
            json: b"{}",
            full_id: id.into(),
            processed: t(at),
        };
        assert!(keep.wants(&r("new", "2026-01-01T00:00:00Z")));
        assert!(!keep.wants(&r("old", "2026-01-01T00:00:00Z")));
        assert!(keep.wants(&r("old", "2026-01-01T00:00:30Z")));
        assert!(keep.wants(&r("x", "2026-01-01T00:01:00Z")));
        assert!(!keep.wants(&r("x", "2026-01-01T00:01:00.0000001Z")));
        assert!(!keep.wants(&r("x", "2025-12-31T23:59:59.9999999Z")));
    }
}
