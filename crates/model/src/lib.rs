//! The language every other siemgate crate speaks: the 50-key detection
//! record, its times, durations and identifiers, and the SIEM API's query
//! parameters. Nothing here does I/O or reads a clock; callers pass `now` in.

pub mod detection;
pub mod duration;
pub mod ids;
pub mod prepare;
pub mod query;
pub mod records;
pub mod time;

pub use detection::{Detection, KEYS};
pub use duration::Span;
pub use prepare::{PrepareOptions, Prepared, RecordError};
pub use query::{AlertsQuery, QueryError, Window};
pub use time::Timestamp;
