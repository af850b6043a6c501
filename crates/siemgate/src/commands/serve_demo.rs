//! `siemgate serve --demo`: a tenant, an app with the SIEM role and a user,
//! made (or given fresh credentials) at start, and simulated detections
//! flowing into the store while the server runs.

use std::sync::Arc;
use std::time::Duration;

use siemgate_identity::grant::OneTime;
use siemgate_identity::password::hash_password;
use siemgate_identity::roles;
use siemgate_model::prepare::prepare;
use siemgate_model::{PrepareOptions, Prepared, Span, Timestamp};
use siemgate_simulate::{FleetOptions, Simulator};
use siemgate_store::{NewApp, NewTenant, Sealed, Store, Tenant, User};
use uuid::Uuid;

use super::now;

const TENANT: &str = "demo";
const APP: &str = "demo-siem";
const USER: &str = "analyst@demo.onmicrosoft.com";

/// Detections in the store before the server takes its first request.
const BACKFILL: usize = 300;

/// What a newcomer needs to call the demo server.
#[derive(Debug)]
pub struct Demo {
    pub tenant: Tenant,
    pub client_id: Uuid,
    pub secret: String,
    pub username: &'static str,
    pub password: String,
}

/// Makes the demo tenant, app and user, or gives the ones a kept store
/// already has a new secret and password (the old ones were shown once and
/// are not known any more), and fills the last minutes with detections.
pub async fn prepare_demo(store: &dyn Store, public_url: &str) -> anyhow::Result<Demo> {
    let tenant = match store.find_tenant(TENANT).await? {
        Some(tenant) => tenant,
        None => {
            let domains = vec![format!("{TENANT}.onmicrosoft.com")];
            store
                .create_tenant(NewTenant { id: Uuid::new_v4(), name: TENANT.into(), domains })
                .await?
        }
    };
    let (client_id, secret) = demo_app(store, &tenant).await?;
    let password = demo_user(store, &tenant).await?;

    let mut simulator = Simulator::new(now().unix_ticks() as u64, FleetOptions::default());
    let end = now();
    let batch = simulator.batch(BACKFILL, end.add_ticks(-Span::from_hours(1).ticks()), end);
    store.ingest(tenant.id, prepared(batch, public_url)?).await?;
    Ok(Demo { tenant, client_id, secret, username: USER, password })
}

async fn demo_app(store: &dyn Store, tenant: &Tenant) -> anyhow::Result<(Uuid, String)> {
    let (secret, text) = super::app::new_secret(30)?;
    let existing = store.apps(Some(tenant.id)).await?.into_iter().find(|a| a.name == APP);
    let client_id = match existing {
        Some(app) => {
            store.add_app_secret(app.client_id, secret).await?;
            app.client_id
        }
        None => {
            let app = NewApp {
                client_id: Uuid::new_v4(),
                tenant: tenant.id,
                name: APP.into(),
                roles: vec![roles::SIEM_READ.into()],
                redirect_uris: vec!["http://localhost/callback".into()],
                secret,
            };
            store.create_app(app).await?.client_id
        }
    };
    Ok((client_id, text))
}

async fn demo_user(store: &dyn Store, tenant: &Tenant) -> anyhow::Result<String> {
    let password = OneTime::generate()?.text[..20].to_owned();
    let hash = Sealed(hash_password(&password)?.into_bytes());
    if store.find_user(tenant.id, USER).await?.is_some() {
        store.set_user_password(tenant.id, USER, hash).await?;
    } else {
        let user = User {
            id: Uuid::new_v4(),
            tenant: tenant.id,
            username: USER.into(),
            display_name: "Demo Analyst".into(),
            password_hash: hash,
            created: now(),
        };
        store.create_user(user).await?;
    }
    Ok(password)
}

/// Ingests `rate` simulated detections a second, each second, until the
/// task is dropped. A failed batch is logged and the feed goes on.
pub async fn feed(store: Arc<dyn Store>, tenant: Uuid, public_url: String, rate: f64) {
    let mut simulator = Simulator::new(!now().unix_ticks() as u64, FleetOptions::default());
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut owed = 0.0;
    let mut last = now();
    loop {
        ticks.tick().await;
        owed += rate.max(0.0);
        let count = owed.floor() as usize;
        if count == 0 {
            continue;
        }
        owed -= count as f64;
        let end = now();
        let batch = simulator.batch(count, last, end);
        last = end;
        let stored = match prepared(batch, &public_url) {
            Ok(batch) => store.ingest(tenant, batch).await.map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, "a simulated batch was not stored");
        }
    }
}

fn prepared(
    batch: Vec<siemgate_model::Detection>,
    public_url: &str,
) -> anyhow::Result<Vec<Prepared>> {
    let options = PrepareOptions { portal_url: public_url.to_owned(), keep_processed_time: false };
    Ok(batch.into_iter().map(|d| prepare(d, &options)).collect::<Result<_, _>>()?)
}

/// The lines the demo prints: credentials, then curl lines that work as
/// printed (copied into a shell, with the CA file as written).
pub fn instructions(demo: &Demo, https: &str, ca: Option<&std::path::Path>, rate: f64) -> String {
    let tid = demo.tenant.id;
    let cacert = ca.map(|p| format!(" --cacert {}", p.display())).unwrap_or_default();
    let token_request = format!(
        "curl -s{cacert} -X POST {https}/{tid}/oauth2/token -d \
         'resource=https%3A%2F%2Fgraph.windows.net&client_id={}&client_secret={}&grant_type=client_credentials'",
        demo.client_id, demo.secret
    );
    let started: Timestamp = now();
    format!(
        "demo tenant    {name} ({tid}), domain {name}.onmicrosoft.com\n\
         demo app       client id {client}  secret {secret}  (role siem-read)\n\
         demo user      {user}  password {password}  (signs in on the portal and the authorize page)\n\
         portal         {https}/portal  (every LinkToWDATP in the detections opens here)\n\
         detections     {BACKFILL} stored at {started}, {rate} more a second while this runs\n\
         \n\
         a token, with the reference page's request:\n\
         \n  {token_request}\n\
         \n\
         the last ten minutes of detections with it:\n\
         \n  TOKEN=$({token_request} | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')\n  \
         curl -s{cacert} -H \"Authorization: Bearer $TOKEN\" '{https}/api/alerts?ago=PT10M'\n",
        name = demo.tenant.name,
        client = demo.client_id,
        secret = demo.secret,
        user = demo.username,
        password = demo.password,
    )
}
