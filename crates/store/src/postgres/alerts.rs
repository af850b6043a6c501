//! Detections read by alert and by device, for the portal pages that a
//! detection's links open. Both reads are keyed by the tenant first, so one
//! tenant's alert ids and devices never reach another's pages.

use deadpool_postgres::GenericClient;
use siemgate_model::Timestamp;

use crate::{DeviceAlert, StoreError};

/// The stored bodies of the alert's detections, by `AlertPart` then `FullId`.
pub(super) async fn alert_detections<C: GenericClient>(
    client: &C,
    tenant_key: i64,
    alert_id: &str,
) -> Result<Vec<Vec<u8>>, StoreError> {
    // An alert has a handful of detections, so reading AlertPart out of the
    // body to order them costs nothing worth a column.
    let rows = client
        .query(
            "SELECT body FROM detections WHERE tenant_key = $1 AND alert_id = $2
             ORDER BY (convert_from(body, 'UTF8')::jsonb ->> 'AlertPart')::bigint, full_id",
            &[&tenant_key, &alert_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The device's alerts, most recently processed first, at most `limit`.
pub(super) async fn device_alerts<C: GenericClient>(
    client: &C,
    tenant_key: i64,
    device_id: &str,
    limit: usize,
) -> Result<Vec<DeviceAlert>, StoreError> {
    if device_id.is_empty() {
        return Ok(Vec::new());
    }
    // The body shown for an alert is that of its most recently processed
    // detection on the device, as on the SQLite side.
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "WITH alerts AS (
                SELECT alert_id, count(*) AS detections, max(processed) AS latest
                FROM detections WHERE tenant_key = $1 AND device_id = $2
                GROUP BY alert_id ORDER BY latest DESC, alert_id DESC LIMIT $3)
             SELECT a.alert_id, a.detections, a.latest,
                    (SELECT d.body FROM detections d
                     WHERE d.tenant_key = $1 AND d.device_id = $2 AND d.alert_id = a.alert_id
                     ORDER BY d.processed DESC, d.full_id DESC LIMIT 1)
             FROM alerts a ORDER BY a.latest DESC, a.alert_id DESC",
            &[&tenant_key, &device_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| DeviceAlert {
            alert_id: r.get(0),
            detections: r.get::<_, i64>(1).unsigned_abs(),
            latest: Timestamp::from_unix_ticks(r.get(2)),
            body: r.get(3),
        })
        .collect())
}
