//! Reading a window of detections out of PostgreSQL, in order, as stored bytes.
//!
//! A window first waits for the batch being ingested, if any (the fence
//! described in the documentation of the `postgres` module), then runs in
//! one read-only REPEATABLE READ transaction, so a newest-N request's
//! boundary and its rows come from one snapshot. Rows
//! arrive through a portal a few hundred at a time and go straight into the
//! chunk channel; when the reader falls behind, the task waits before
//! fetching more, and when the reader goes away the transaction is dropped
//! (rolled back) and the connection goes back to the pool.

use deadpool_postgres::Client;
use siemgate_model::AlertsQuery;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use crate::StoreError;
use crate::stream::{ChunkWriter, ReaderGone};

/// Rows fetched from the portal per round trip: about half a megabyte of
/// stored JSON, the size of one chunk.
const ROWS_PER_FETCH: i32 = 256;

/// Waits for the batch being ingested, if any; see the module documentation.
const FENCE: &str = "SELECT pg_advisory_xact_lock_shared($1)";

/// The largest `limit` answered by one statement, its rows held in memory
/// at once (about half a megabyte); larger ones go through a portal.
const SMALL_LIMIT: u32 = ROWS_PER_FETCH as u32;

type Param = Box<dyn ToSql + Sync + Send>;

/// A `WHERE` clause and its parameters, numbered `$1`, `$2`, ... in order.
struct Filter {
    sql: String,
    params: Vec<Param>,
}

impl Filter {
    /// Adds a parameter and returns its placeholder.
    fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// The window and filters of `query`. With `from`, the scan starts at
    /// that `(processed, full_id)` key instead of at the window's start.
    fn new(tenant_key: i64, query: &AlertsQuery, from: Option<(i64, String)>) -> Filter {
        let mut f = Filter { sql: String::new(), params: Vec::new() };
        let tenant = f.bind(Box::new(tenant_key));
        f.sql = format!("tenant_key = {tenant}");
        match from {
            Some((processed, full_id)) => {
                // A row comparison is one index seek on (processed, full_id).
                let (p, id) = (f.bind(Box::new(processed)), f.bind(Box::new(full_id)));
                f.sql.push_str(&format!(" AND (processed, full_id) >= ({p}, {id})"));
            }
            None => {
                let since = f.bind(Box::new(query.window.since.unix_ticks()));
                f.sql.push_str(&format!(" AND processed >= {since}"));
            }
        }
        let until = f.bind(Box::new(query.window.until.unix_ticks()));
        f.sql.push_str(&format!(" AND processed < {until}"));
        if !query.machine_groups.is_empty() {
            let groups = f.bind(Box::new(query.machine_groups.clone()));
            f.sql.push_str(&format!(" AND machine_group = ANY({groups}::text[])"));
        }
        if let Some(tag) = &query.device_tag {
            let tag = f.bind(Box::new(format!(";{tag};")));
            f.sql.push_str(&format!(" AND strpos(device_tags, {tag}) > 0"));
        }
        if !query.cloud_tags.is_empty() {
            let tags: Vec<String> = query.cloud_tags.iter().map(|t| format!(";{t};")).collect();
            let tags = f.bind(Box::new(tags));
            f.sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM unnest({tags}::text[]) AS t WHERE strpos(cloud_tags, t) > 0)"
            ));
        }
        f
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
    }
}

/// Streams the window into `out`, ending it with an error if reading fails.
/// Runs as its own task; `client` goes back to the pool when it ends.
pub(super) async fn stream_window(
    mut client: Client,
    tenant_key: i64,
    ingest_lock: i64,
    query: AlertsQuery,
    mut out: ChunkWriter,
) {
    if query.window.is_empty() {
        let _ = out.finish_async().await;
        return;
    }
    match write_rows(&mut client, tenant_key, ingest_lock, &query, &mut out).await {
        Ok(Ok(())) => {
            let _ = out.finish_async().await;
        }
        // The reader went away; there is nobody to finish for.
        Ok(Err(ReaderGone)) => {}
        Err(e) => {
            tracing::error!(error = %e, "reading a window failed");
            out.fail_async(e).await;
        }
    }
}

async fn write_rows(
    client: &mut Client,
    tenant_key: i64,
    ingest_lock: i64,
    query: &AlertsQuery,
    out: &mut ChunkWriter,
) -> Result<Result<(), ReaderGone>, StoreError> {
    // Taken and released in a statement of its own: it waits for a batch
    // holding the lock to commit, and holds up none that comes after.
    let fence = client.prepare_cached(FENCE).await?;
    if let Some(limit) = query.limit.filter(|&n| n <= SMALL_LIMIT) {
        return newest(client, &fence, tenant_key, ingest_lock, query, limit, out).await;
    }
    client.execute(&fence, &[&ingest_lock]).await?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut filter = Filter::new(tenant_key, query, None);
    if let Some(limit) = query.limit {
        // The newest N start at the N-th key counted back from the end; find
        // it on the index alone, then scan forward from it.
        let offset = filter.bind(Box::new(i64::from(limit) - 1));
        let sql = format!(
            "SELECT processed, full_id FROM detections WHERE {}
             ORDER BY processed DESC, full_id DESC LIMIT 1 OFFSET {offset}",
            filter.sql
        );
        let boundary = tx.prepare_cached(&sql).await?;
        if let Some(row) = tx.query_opt(&boundary, &filter.refs()).await? {
            filter = Filter::new(tenant_key, query, Some((row.get(0), row.get(1))));
        } else {
            filter.params.pop();
        }
    }

    let sql =
        format!("SELECT body FROM detections WHERE {} ORDER BY processed, full_id", filter.sql);
    let statement = tx.prepare_cached(&sql).await?;
    let portal = tx.bind(&statement, &filter.refs()).await?;
    loop {
        let rows = tx.query_portal(&portal, ROWS_PER_FETCH).await?;
        for row in &rows {
            let body: &[u8] = row.get(0);
            if let Err(gone) = out.push_async(body).await {
                return Ok(Err(gone));
            }
        }
        if rows.len() < ROWS_PER_FETCH as usize {
            break;
        }
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// The newest `limit` rows of a window in one statement, sent right behind
/// the fence: one round trip where the portal takes five. A single
/// statement reads one snapshot, so no transaction is needed.
async fn newest(
    client: &Client,
    fence: &tokio_postgres::Statement,
    tenant_key: i64,
    ingest_lock: i64,
    query: &AlertsQuery,
    limit: u32,
    out: &mut ChunkWriter,
) -> Result<Result<(), ReaderGone>, StoreError> {
    let mut filter = Filter::new(tenant_key, query, None);
    let n = filter.bind(Box::new(i64::from(limit)));
    let sql = format!(
        "SELECT body FROM (
             SELECT processed, full_id, body FROM detections WHERE {}
             ORDER BY processed DESC, full_id DESC LIMIT {n}
         ) newest ORDER BY processed, full_id",
        filter.sql
    );
    let statement = client.prepare_cached(&sql).await?;
    // Sent together; the server runs the query, and takes its snapshot, only
    // once the fence has passed.
    let lock = [&ingest_lock as &(dyn ToSql + Sync)];
    let params = filter.refs();
    let (_, rows) =
        tokio::try_join!(client.execute(fence, &lock), client.query(&statement, &params))?;
    for row in &rows {
        let body: &[u8] = row.get(0);
        if let Err(gone) = out.push_async(body).await {
            return Ok(Err(gone));
        }
    }
    Ok(Ok(()))
}
