//! The connector half of siemgate: it gets and renews tokens, pulls windows
//! of detections without losing or repeating one, keeps a checkpoint, and
//! hands detections to sinks (files, stdout, syslog, Splunk HEC).
//!
//! It speaks to the server only over HTTP; the record it handles is the raw
//! JSON object the API sent, with the two fields it needs (`FullId` and
//! `LastProcessedTimeUtc`) read out of it.

pub mod encode;
pub mod record;
pub mod sink;

pub use record::{Record, RecordError, Splitter};
pub use sink::{Mark, Sink, SinkError};
