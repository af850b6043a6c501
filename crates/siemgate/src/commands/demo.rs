//! `siemgate demo`: a store with a tenant and simulated detections in one
//! command, to see what siemgate holds before wiring anything to it.

use futures_util::StreamExt;
use siemgate_model::prepare::prepare;
use siemgate_model::{AlertsQuery, PrepareOptions, Prepared};
use siemgate_simulate::{FleetOptions, Simulator};
use siemgate_store::{Framing, NewTenant, Store};

use super::{now, open_store, without_password};
use crate::cli::DemoArgs;
use crate::output::say;

const TENANT: &str = "demo";

pub async fn run(args: DemoArgs, database: Option<&str>) -> anyhow::Result<()> {
    let database = database.unwrap_or("memory");
    let store = open_store(database).await?;
    let tenant = match store.find_tenant(TENANT).await? {
        Some(tenant) => tenant,
        None => {
            let new = NewTenant {
                id: uuid::Uuid::new_v4(),
                name: TENANT.into(),
                domains: vec![format!("{TENANT}.onmicrosoft.com")],
            };
            store.create_tenant(new).await?
        }
    };

    let end = now();
    let start = end.add_ticks(-siemgate_model::duration::Span::from_hours(2).ticks());
    let mut simulator = Simulator::new(end.unix_ticks() as u64, FleetOptions::default());
    let options =
        PrepareOptions { portal_url: "https://localhost:8443".into(), keep_processed_time: false };
    let prepared = simulator
        .batch(args.count, start, end)
        .into_iter()
        .map(|d| prepare(d, &options))
        .collect::<Result<Vec<Prepared>, _>>()?;
    let report = store.ingest(tenant.id, prepared).await?;

    say!(
        "tenant {} ({}) now holds {} detections",
        tenant.name,
        tenant.id,
        store.detection_count(tenant.id).await?
    )?;
    say!(
        "stored {} just now from a simulated fleet of 50 devices; the newest five:",
        report.stored
    )?;
    say!("")?;
    print_newest(&*store, tenant.id).await?;
    say!("")?;
    if database == "memory" {
        say!(
            "this store lived in memory and is gone; keep one with --database siemgate.db, then:"
        )?;
        say!("  siemgate alerts --database siemgate.db --tenant demo --ago PT2H --limit 5")?;
    } else {
        say!("query it again with:")?;
        let database = without_password(database);
        say!("  siemgate alerts --database {database} --tenant demo --ago PT2H --limit 5")?;
    }
    Ok(())
}

async fn print_newest(store: &dyn Store, tenant: uuid::Uuid) -> anyhow::Result<()> {
    let query = AlertsQuery::from_pairs([("ago", "PT3H"), ("limit", "5")], now())?;
    let mut stream = store.stream(tenant, &query, Framing::Ndjson).await?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?.bytes);
    }
    let newest: Vec<serde_json::Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect::<Result<_, _>>()?;
    for d in &newest {
        say!(
            "  {:<29} {:<13} {:<24} {}",
            d["LastProcessedTimeUtc"].as_str().unwrap_or_default(),
            d["Severity"].as_str().unwrap_or_default(),
            d["ComputerDnsName"].as_str().unwrap_or_default(),
            d["AlertTitle"].as_str().unwrap_or_default(),
        )?;
    }
    if let Some(last) = newest.last() {
        say!("\nthe newest in full, as GET /api/alerts returns it:\n")?;
        say!("{}", serde_json::to_string_pretty(last)?)?;
    }
    Ok(())
}
