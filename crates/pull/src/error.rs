//! What can go wrong while pulling, sorted by what to do about it: try
//! again (after a wait the server may name), or stop and tell the user.

use std::time::Duration;

use crate::sink::SinkError;

/// A failed step of a pull.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The credentials were refused; trying again will not help.
    #[error("{0}")]
    Auth(String),
    /// The server refused the request itself (400, 403, 404): a setting is
    /// wrong, and trying again will not help.
    #[error("{0}")]
    Refused(String),
    /// Worth another try: throttling, a server error, a network failure, a
    /// body cut short or malformed. `after` is the wait the server asked for.
    #[error("{reason}")]
    Retry { reason: String, after: Option<Duration> },
    /// The sink did not take the window; it is tried again.
    #[error("the sink failed: {0}")]
    Sink(#[from] SinkError),
    /// A local file (checkpoint, spool) could not be read or written.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl PullError {
    pub fn retry(reason: impl Into<String>, after: Option<Duration>) -> PullError {
        PullError::Retry { reason: reason.into(), after }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> PullError {
        PullError::Io { context: context.into(), source }
    }

    /// True when trying the same thing again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, PullError::Retry { .. } | PullError::Sink(_))
    }
}
