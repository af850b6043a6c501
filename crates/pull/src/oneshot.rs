//! One-shot pulls: one window, fetched again after a transient failure a
//! few times, then delivered whole or reported as failed.

use std::path::Path;
use std::time::Duration;

use crate::api::{Api, Query};
use crate::error::PullError;
use crate::sink::Sink;
use crate::window::{Backoff, Keep, Pulled, attempt};

/// How hard a one-shot pull tries.
#[derive(Debug, Clone)]
pub struct Tries {
    /// Attempts in all before giving up.
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Tries {
    fn default() -> Tries {
        Tries {
            attempts: 6,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Pulls `query` into `sink` and commits it.
pub async fn pull(
    api: &Api,
    query: &Query,
    sink: &mut dyn Sink,
    spool_dir: &Path,
    tries: &Tries,
    progress: &mut (dyn FnMut(&Pulled) + Send),
) -> Result<Pulled, PullError> {
    let mut backoff = Backoff::new(tries.first_backoff, tries.max_backoff);
    let keep = Keep::default();
    loop {
        let error = match attempt(api, query, &keep, sink, spool_dir, progress).await {
            Ok(pulled) => match sink.commit().await {
                Ok(_) => return Ok(pulled),
                Err(e) => PullError::from(e),
            },
            Err(e) => e,
        };
        if !error.is_transient() || backoff.failures() + 1 >= tries.attempts {
            return Err(error);
        }
        let wait = backoff.wait(&error);
        tracing::warn!(
            attempt = backoff.failures(),
            of = tries.attempts,
            retry_in_s = wait.as_secs_f64(),
            "the pull failed, retrying: {error}"
        );
        tokio::time::sleep(wait).await;
    }
}
