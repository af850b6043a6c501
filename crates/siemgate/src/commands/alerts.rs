//! `siemgate alerts`: a tenant's detections straight from the store, framed
//! exactly as `GET /api/alerts` frames them.

use futures_util::StreamExt;
use siemgate_model::AlertsQuery;
use siemgate_store::Framing;
use tokio::io::AsyncWriteExt;

use super::{find_tenant, now, open_store};
use crate::cli::{AlertsArgs, AlertsFormat};

/// The SIEM API's parameter names, and the flags that carry them here.
const FLAGS: [(&str, &str); 6] = [
    ("sinceTimeUtc", "--since"),
    ("untilTimeUtc", "--until"),
    ("ago", "--ago"),
    ("limit", "--limit"),
    ("DeviceCreatedMachineTags", "--device-tag"),
    ("CloudCreatedMachineTags", "--cloud-tag"),
];

pub async fn run(args: AlertsArgs, database: &str) -> anyhow::Result<()> {
    let query = query(&args)?;
    let store = open_store(database).await?;
    let tenant = find_tenant(&*store, &args.tenant).await?;
    let framing = match args.format {
        AlertsFormat::Json => Framing::JsonArray,
        AlertsFormat::Ndjson => Framing::Ndjson,
    };
    let mut stream = store.stream(tenant.id, &query, framing).await?;
    let mut out = tokio::io::stdout();
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?.bytes).await?;
    }
    if framing == Framing::JsonArray {
        out.write_all(b"\n").await?;
    }
    out.flush().await?;
    Ok(())
}

/// The flags as the API's query parameters, checked by the same rules.
fn query(args: &AlertsArgs) -> anyhow::Result<AlertsQuery> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let single = [
        ("sinceTimeUtc", &args.since),
        ("untilTimeUtc", &args.until),
        ("ago", &args.ago),
        ("limit", &args.limit),
        ("DeviceCreatedMachineTags", &args.device_tag),
    ];
    for (name, value) in single {
        pairs.extend(value.iter().map(|v| (name, v.clone())));
    }
    pairs.extend(args.machine_groups.iter().map(|g| ("machinegroups", g.clone())));
    pairs.extend(args.cloud_tags.iter().map(|t| ("CloudCreatedMachineTags", t.clone())));
    AlertsQuery::from_pairs(pairs, now()).map_err(|e| {
        let flag = FLAGS.iter().find(|(p, _)| *p == e.parameter).map_or(e.parameter, |(_, f)| *f);
        anyhow::anyhow!("{flag} {:?}: {}", e.value, e.problem)
    })
}
