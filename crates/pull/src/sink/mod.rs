//! Where detections go. A sink receives the records of one window in order,
//! in slices, and is asked to commit at the end of the window; only after a
//! commit does the checkpoint move past those records.

pub mod file;
pub mod hec;
pub mod syslog;

use async_trait::async_trait;

use crate::record::Record;

/// A failure to deliver; the window is retried from its start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Refused(String),
}

impl SinkError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> SinkError {
        SinkError::Io { context: context.into(), source }
    }
}

/// What a sink must remember across a restart, kept inside the checkpoint
/// and written in the same atomic step. A file sink keeps its file and the
/// length it had at the last commit; most sinks keep nothing.
pub type Mark = serde_json::Value;

/// One destination for detections.
#[async_trait]
pub trait Sink: Send {
    /// Returns the sink to the state `mark` describes, as saved at the last
    /// commit before a crash; `None` on a first start.
    async fn restore(&mut self, mark: Option<&Mark>) -> Result<(), SinkError> {
        let _ = mark;
        Ok(())
    }

    /// Takes the next records of the current window.
    async fn write(&mut self, records: &[Record<'_>]) -> Result<(), SinkError>;

    /// Makes everything written since the last commit as durable as the sink
    /// can (flushed, synced, acknowledged) and says what to keep for
    /// [`Sink::restore`].
    async fn commit(&mut self) -> Result<Mark, SinkError>;

    /// True when [`Sink::roll_back`] can take back what was written since the
    /// last commit. Sinks that cannot only ever receive whole, checked
    /// windows.
    fn can_roll_back(&self) -> bool {
        false
    }

    /// Takes back everything written since the last commit.
    async fn roll_back(&mut self) -> Result<(), SinkError> {
        Err(SinkError::Refused("this sink cannot take back what it was sent".into()))
    }
}
pub mod output;
