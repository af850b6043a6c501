//! The connector half of siemgate: it gets and renews tokens, pulls windows
//! of detections without losing or repeating one, keeps a checkpoint, and
//! hands detections to sinks (files, stdout, syslog, Splunk HEC).
//!
//! It speaks to the server only over HTTP; the record it handles is the raw
//! JSON object the API sent, with the two fields it needs (`FullId` and
//! `LastProcessedTimeUtc`) read out of it.

pub mod api;
pub mod checkpoint;
pub mod encode;
pub mod endpoint;
pub mod error;
pub mod follow;
pub mod http;
pub mod metrics;
pub mod oneshot;
pub mod record;
pub mod sink;
pub mod token;
pub mod window;

pub use error::PullError;
pub use record::{Record, RecordError, Splitter};
pub use sink::{Mark, Sink, SinkError};
