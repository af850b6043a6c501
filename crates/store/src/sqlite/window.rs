//! Reading a window of detections out of SQLite, in order, as stored bytes.
//!
//! The window index `(tenant_key, processed, full_id)` yields rows already in
//! delivery order, so a window is one range scan with no sort. A newest-N
//! request first finds, on the index alone, the key of its oldest row and then
//! scans forward from there; both reads share one snapshot.

use rusqlite::Connection;
use rusqlite::types::Value;
use siemgate_model::AlertsQuery;

use crate::StoreError;
use crate::stream::ChunkWriter;

/// A `WHERE` clause and its parameters.
struct Filter {
    sql: String,
    params: Vec<Value>,
}

impl Filter {
    /// The window and filters of `query`. With `from`, the scan starts at
    /// that `(processed, full_id)` key instead of at the window's start.
    fn new(tenant_key: i64, query: &AlertsQuery, from: Option<(i64, String)>) -> Filter {
        let mut f =
            Filter { sql: "tenant_key = ?".to_owned(), params: vec![Value::Integer(tenant_key)] };
        match from {
            // Written as a row value, the lower bound is one index seek; as
            // `processed >= ? AND (processed > ? OR full_id >= ?)` SQLite would
            // walk every row that ties on the boundary's time.
            Some((processed, full_id)) => {
                f.sql.push_str(" AND (processed, full_id) >= (?, ?)");
                f.params.extend([Value::Integer(processed), Value::Text(full_id)]);
            }
            None => {
                f.sql.push_str(" AND processed >= ?");
                f.params.push(Value::Integer(query.window.since.unix_ticks()));
            }
        }
        f.sql.push_str(" AND processed < ?");
        f.params.push(Value::Integer(query.window.until.unix_ticks()));
        if !query.machine_groups.is_empty() {
            let marks = vec!["?"; query.machine_groups.len()].join(", ");
            f.sql.push_str(&format!(" AND machine_group IN ({marks})"));
            f.params.extend(query.machine_groups.iter().map(|g| Value::Text(g.clone())));
        }
        if let Some(tag) = &query.device_tag {
            f.sql.push_str(" AND instr(device_tags, ?) > 0");
            f.params.push(Value::Text(format!(";{tag};")));
        }
        if !query.cloud_tags.is_empty() {
            let any = vec!["instr(cloud_tags, ?) > 0"; query.cloud_tags.len()].join(" OR ");
            f.sql.push_str(&format!(" AND ({any})"));
            f.params.extend(query.cloud_tags.iter().map(|t| Value::Text(format!(";{t};"))));
        }
        f
    }
}

/// Streams the window into `out`, ending it with an error if reading fails.
pub(crate) fn stream_window(
    conn: &Connection,
    tenant_key: i64,
    query: &AlertsQuery,
    out: ChunkWriter,
) {
    if query.window.is_empty() {
        let _ = out.finish();
        return;
    }
    let mut out = Some(out);
    match write_rows(conn, tenant_key, query, &mut out) {
        Ok(()) => {
            if let Some(out) = out {
                let _ = out.finish();
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a window failed");
            if let Some(out) = out {
                out.fail(e);
            }
        }
    }
}

fn write_rows(
    conn: &Connection,
    tenant_key: i64,
    query: &AlertsQuery,
    out: &mut Option<ChunkWriter>,
) -> Result<(), StoreError> {
    // One read transaction: the boundary and the rows come from one snapshot.
    let tx = conn.unchecked_transaction()?;
    let mut filter = Filter::new(tenant_key, query, None);
    if let Some(limit) = query.limit {
        // The newest N start at the N-th key counted back from the end; find
        // it on the index alone, then scan forward from it.
        let sql = format!(
            "SELECT processed, full_id FROM detections WHERE {}
             ORDER BY processed DESC, full_id DESC LIMIT 1 OFFSET ?",
            filter.sql
        );
        let mut params = filter.params.clone();
        params.push(Value::Integer(i64::from(limit) - 1));
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        if let Some(row) = rows.next()? {
            filter = Filter::new(tenant_key, query, Some((row.get(0)?, row.get(1)?)));
        }
    }

    let sql =
        format!("SELECT body FROM detections WHERE {} ORDER BY processed, full_id", filter.sql);
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(filter.params))?;
    while let Some(row) = rows.next()? {
        let body = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        let Some(writer) = out.as_mut() else { break };
        if writer.push(body).is_err() {
            // The reader went away; there is nobody to finish for.
            *out = None;
            break;
        }
    }
    Ok(())
}
