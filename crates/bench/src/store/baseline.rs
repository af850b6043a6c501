//! The bare clients the store's figures are measured against, one per
//! backend: rusqlite on SQLite files and tokio-postgres on the scratch
//! schema, doing the same work on the same rows without the store around it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use futures_util::StreamExt;
use rusqlite::{Connection, params};
use siemgate_model::{Prepared, Timestamp};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Statement};
use uuid::Uuid;

/// The SQLite baseline's table: the store's columns and indexes, nothing else.
const SQLITE_SCHEMA: &str = "
    CREATE TABLE detections (
        tenant_key INTEGER NOT NULL, full_id TEXT NOT NULL, processed INTEGER NOT NULL,
        machine_group TEXT NOT NULL, device_tags TEXT NOT NULL, cloud_tags TEXT NOT NULL,
        body BLOB NOT NULL, alert_id TEXT NOT NULL, device_id TEXT NOT NULL,
        UNIQUE (tenant_key, full_id));
    CREATE INDEX detections_by_window ON detections (tenant_key, processed, full_id);
    CREATE INDEX detections_by_alert ON detections (tenant_key, alert_id);
    CREATE INDEX detections_by_device ON detections (tenant_key, device_id, processed);";

/// The PostgreSQL baseline's table, beside the store's in its schema: the
/// store's columns, collations, key and indexes, without the foreign key.
const POSTGRES_SCHEMA: &str = r#"
    CREATE TABLE {schema}.baseline (
        tenant_key bigint NOT NULL, full_id text COLLATE "C" NOT NULL, processed bigint NOT NULL,
        machine_group text NOT NULL, device_tags text NOT NULL, cloud_tags text NOT NULL,
        alert_id text COLLATE "C" NOT NULL, device_id text NOT NULL, body bytea NOT NULL,
        PRIMARY KEY (tenant_key, full_id));
    CREATE INDEX baseline_by_window ON {schema}.baseline (tenant_key, processed, full_id);
    CREATE INDEX baseline_by_alert ON {schema}.baseline (tenant_key, alert_id);
    CREATE INDEX baseline_by_device ON {schema}.baseline (tenant_key, device_id, processed);"#;

/// Rows per PostgreSQL `INSERT`: as many as the store's own insert carries
/// per round trip, so both sides make the same number of them.
const POSTGRES_ROWS_PER_INSERT: usize = 2_000;

/// One row as the baselines insert it.
#[derive(Debug)]
pub struct Row {
    full_id: String,
    processed: i64,
    group: String,
    device_tags: String,
    cloud_tags: String,
    body: Vec<u8>,
    alert_id: String,
    device_id: String,
}

impl Row {
    pub fn of(p: &Prepared, stamp: Timestamp) -> Row {
        Row {
            full_id: p.full_id.clone(),
            processed: stamp.unix_ticks(),
            group: p.machine_group_key.clone(),
            device_tags: p.device_tags_key.clone(),
            cloud_tags: p.cloud_tags_key.clone(),
            body: p.render(stamp),
            alert_id: p.alert_id.clone(),
            device_id: p.device_id.clone(),
        }
    }

    /// The eight columns after `tenant_key`, in table order.
    fn columns(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.full_id,
            &self.processed,
            &self.group,
            &self.device_tags,
            &self.cloud_tags,
            &self.alert_id,
            &self.device_id,
            &self.body,
        ]
    }
}

/// A backend's bare client.
#[derive(Debug)]
pub enum Baseline {
    Sqlite(SqliteBaseline),
    Postgres(PostgresBaseline),
}

/// Inserts into a file of its own; reads the store's file directly.
#[derive(Debug)]
pub struct SqliteBaseline {
    inserts: Connection,
    store: Connection,
}

/// One connection to the store's scratch schema, with its statements.
#[derive(Debug)]
pub struct PostgresBaseline {
    client: tokio_postgres::Client,
    schema: String,
    tenant_key: i64,
    insert_sql: String,
    /// Prepared inserts by their number of rows.
    inserts: HashMap<usize, Statement>,
    newest_20: Statement,
    window: Statement,
}

impl Baseline {
    /// Plain inserts into `baseline_file`; reads of the store at `store_file`.
    pub fn sqlite(baseline_file: &Path, store_file: &Path) -> anyhow::Result<Baseline> {
        let inserts = Connection::open(baseline_file)?;
        inserts.pragma_update(None, "journal_mode", "WAL")?;
        inserts.pragma_update(None, "synchronous", "FULL")?;
        inserts.execute_batch(SQLITE_SCHEMA)?;
        let store = Connection::open(store_file)?;
        Ok(Baseline::Sqlite(SqliteBaseline { inserts, store }))
    }

    /// Plain inserts into a table of the store's shape beside the store's
    /// in `schema`; reads of the store's own table there, for `tenant`.
    pub async fn postgres(url: &str, schema: &str, tenant: Uuid) -> anyhow::Result<Baseline> {
        let mut config: tokio_postgres::Config = url.parse()?;
        // The scratch schema ends the connections that carry its name when
        // it is dropped, this one included should it still be open.
        config.application_name(schema);
        let (client, connection) =
            config.connect(NoTls).await.context("connecting the baseline to PostgreSQL")?;
        tokio::spawn(connection);
        client.batch_execute(&POSTGRES_SCHEMA.replace("{schema}", schema)).await?;
        let tenant_key: i64 = client
            .query_one(
                &format!("SELECT tenant_key FROM {schema}.tenants WHERE id = $1"),
                &[&tenant],
            )
            .await?
            .get(0);
        let newest_20 = client
            .prepare(&format!(
                "SELECT body FROM {schema}.detections
                 WHERE tenant_key = $1 AND processed >= $2 AND processed < $3
                 ORDER BY processed DESC, full_id DESC LIMIT 20"
            ))
            .await?;
        let window = client
            .prepare(&format!(
                "SELECT body FROM {schema}.detections
                 WHERE tenant_key = $1 AND processed >= $2 AND processed < $3
                 ORDER BY processed, full_id"
            ))
            .await?;
        Ok(Baseline::Postgres(PostgresBaseline {
            client,
            schema: schema.to_owned(),
            tenant_key,
            insert_sql: format!("INSERT INTO {schema}.baseline VALUES "),
            inserts: HashMap::new(),
            newest_20,
            window,
        }))
    }

    /// Gathers PostgreSQL's statistics on the store's table after the load,
    /// as autovacuum would soon after (see `analyze_postgres`); SQLite plans
    /// these queries without any.
    pub async fn settle(&mut self) -> anyhow::Result<()> {
        if let Baseline::Postgres(b) = self {
            b.client.batch_execute(&format!("ANALYZE {}.detections", b.schema)).await?;
        }
        Ok(())
    }

    /// Inserts `rows` in one transaction.
    pub async fn insert(&mut self, rows: &[Row]) -> anyhow::Result<()> {
        match self {
            Baseline::Sqlite(b) => b.insert(rows),
            Baseline::Postgres(b) => b.insert(rows).await,
        }
    }

    /// The newest 20 of `[since, until)` by the bare query; how many came.
    pub async fn newest_20(&mut self, since: i64, until: i64) -> anyhow::Result<usize> {
        match self {
            Baseline::Sqlite(b) => {
                let mut select = b.store.prepare_cached(
                    "SELECT body FROM detections
                     WHERE tenant_key = 1 AND processed >= ?1 AND processed < ?2
                     ORDER BY processed DESC, full_id DESC LIMIT 20",
                )?;
                let bodies: Vec<Vec<u8>> =
                    select.query_map([since, until], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(bodies.len())
            }
            Baseline::Postgres(b) => {
                let rows = b.client.query(&b.newest_20, &[&b.tenant_key, &since, &until]).await?;
                let bodies: Vec<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
                Ok(bodies.len())
            }
        }
    }

    /// Reads the bodies of `[since, until)` in order and does nothing else
    /// with them; the rows and bytes read.
    pub async fn read_window(&mut self, since: i64, until: i64) -> anyhow::Result<(usize, usize)> {
        let (mut n, mut total) = (0, 0);
        match self {
            Baseline::Sqlite(b) => {
                let mut select = b.store.prepare_cached(
                    "SELECT body FROM detections
                     WHERE tenant_key = 1 AND processed >= ?1 AND processed < ?2
                     ORDER BY processed, full_id",
                )?;
                let mut rows = select.query([since, until])?;
                while let Some(row) = rows.next()? {
                    total += row.get_ref(0)?.as_blob()?.len();
                    n += 1;
                }
            }
            Baseline::Postgres(b) => {
                let params: [&(dyn ToSql + Sync); 3] = [&b.tenant_key, &since, &until];
                let rows = b.client.query_raw(&b.window, params).await?;
                let mut rows = std::pin::pin!(rows);
                while let Some(row) = rows.next().await {
                    total += row?.get::<_, &[u8]>(0).len();
                    n += 1;
                }
            }
        }
        Ok((n, total))
    }
}

impl SqliteBaseline {
    fn insert(&self, rows: &[Row]) -> anyhow::Result<()> {
        let tx = self.inserts.unchecked_transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO detections VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for r in rows {
                insert.execute(params![
                    r.full_id,
                    r.processed,
                    r.group,
                    r.device_tags,
                    r.cloud_tags,
                    r.body,
                    r.alert_id,
                    r.device_id
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl PostgresBaseline {
    /// Multi-row `INSERT ... VALUES (...), (...)` statements of up to
    /// [`POSTGRES_ROWS_PER_INSERT`] rows, in one transaction.
    async fn insert(&mut self, rows: &[Row]) -> anyhow::Result<()> {
        for slice in rows.chunks(POSTGRES_ROWS_PER_INSERT) {
            if !self.inserts.contains_key(&slice.len()) {
                let statement = self.client.prepare(&self.values_sql(slice.len())).await?;
                self.inserts.insert(slice.len(), statement);
            }
        }
        let tx = self.client.transaction().await?;
        for slice in rows.chunks(POSTGRES_ROWS_PER_INSERT) {
            let mut values: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(1 + slice.len() * 8);
            values.push(&self.tenant_key);
            values.extend(slice.iter().flat_map(Row::columns));
            tx.execute(&self.inserts[&slice.len()], &values).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `INSERT INTO baseline VALUES ($1, $2, ..., $9), ($1, $10, ...)` for
    /// `rows` rows, all of the tenant `$1`.
    fn values_sql(&self, rows: usize) -> String {
        let mut sql = self.insert_sql.clone();
        for row in 0..rows {
            let first = 2 + row * 8;
            sql.push_str(if row == 0 { "($1" } else { ", ($1" });
            for i in first..first + 8 {
                sql.push_str(&format!(", ${i}"));
            }
            sql.push(')');
        }
        sql
    }
}
