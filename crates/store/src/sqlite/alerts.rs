//! Detections read by alert and by device, for the portal pages that a
//! detection's links open. Both reads are keyed by the tenant first, so one
//! tenant's alert ids and devices never reach another's pages.

use rusqlite::{Connection, params};
use siemgate_model::Timestamp;

use crate::{DeviceAlert, StoreError};

/// The stored bodies of the alert's detections, by `AlertPart` then `FullId`.
pub(super) fn alert_detections(
    conn: &Connection,
    tenant_key: i64,
    alert_id: &str,
) -> Result<Vec<Vec<u8>>, StoreError> {
    // An alert has a handful of detections, so reading AlertPart out of the
    // body to order them costs nothing worth a column.
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM detections WHERE tenant_key = ?1 AND alert_id = ?2
         ORDER BY json_extract(CAST(body AS TEXT), '$.AlertPart'), full_id",
    )?;
    let bodies = stmt.query_map(params![tenant_key, alert_id], |r| r.get(0))?;
    Ok(bodies.collect::<Result<_, _>>()?)
}

/// The device's alerts, most recently processed first, at most `limit`.
pub(super) fn device_alerts(
    conn: &Connection,
    tenant_key: i64,
    device_id: &str,
    limit: usize,
) -> Result<Vec<DeviceAlert>, StoreError> {
    if device_id.is_empty() {
        return Ok(Vec::new());
    }
    // With max() in the select list, SQLite takes the bare `body` from the
    // row that holds the maximum: the alert's most recently processed one.
    let mut stmt = conn.prepare_cached(
        "SELECT alert_id, count(*), max(processed) AS latest, body FROM detections
         WHERE tenant_key = ?1 AND device_id = ?2
         GROUP BY alert_id ORDER BY latest DESC, alert_id DESC LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![tenant_key, device_id, limit], |r| {
        Ok(DeviceAlert {
            alert_id: r.get(0)?,
            detections: r.get::<_, i64>(1)?.unsigned_abs(),
            latest: Timestamp::from_unix_ticks(r.get(2)?),
            body: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
