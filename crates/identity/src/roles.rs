//! The application roles siemgate grants, as they appear in a token's `roles` claim.

/// Reads detections through `GET /api/alerts`.
pub const SIEM_READ: &str = "siem-read";

/// Sends detections through `POST /api/detections`.
pub const INGEST: &str = "ingest";

/// Every role there is.
pub const ALL: [&str; 2] = [SIEM_READ, INGEST];

/// The role named `name`, or `None` if there is no such role.
pub fn parse(name: &str) -> Option<&'static str> {
    ALL.into_iter().find(|role| role.eq_ignore_ascii_case(name.trim()))
}
