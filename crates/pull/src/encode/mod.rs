//! Turning the API's JSON records into what a sink writes.
pub mod csv;
