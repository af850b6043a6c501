//! `siemgate app`: app registrations, their secrets and their roles.
//!
//! A secret's text is printed once, when it is made, and kept nowhere; the
//! store holds its hash. Listing an app shows each secret's id, first
//! characters and expiry, which is all an operator needs to rotate it.

use anyhow::Context;
use siemgate_identity::{generate_secret, roles};
use siemgate_model::Timestamp;
use siemgate_store::{App, AppSecret, NewApp, Sealed, Store, StoreError};
use uuid::Uuid;

use super::{find_tenant, now, open_store};
use crate::cli::{AppAddArgs, AppCommand, AppListArgs, AppRoleArgs, AppSecretCommand};
use crate::output::say;

const DAY_TICKS: i64 = 86_400 * 10_000_000;

pub async fn run(command: AppCommand, database: &str) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    let store = &*store;
    match command {
        AppCommand::Add(args) => add(store, args).await,
        AppCommand::List(args) => list(store, args).await,
        AppCommand::Show(args) => {
            let app = find_app(store, args.client_id).await?;
            print_app(&app, args.json)
        }
        AppCommand::Remove(args) => {
            store.remove_app(args.client_id).await?;
            say!("removed app {}", args.client_id)?;
            Ok(())
        }
        AppCommand::Secret(AppSecretCommand::Add(args)) => {
            let (secret, text) = new_secret(args.days)?;
            let app = store.add_app_secret(args.client_id, secret.clone()).await?;
            print_secret(&app, &secret, &text, args.json)
        }
        AppCommand::Secret(AppSecretCommand::Remove(args)) => {
            let app = store.remove_app_secret(args.client_id, args.secret_id).await?;
            say!("removed secret {}; {} left", args.secret_id, app.secrets.len())?;
            Ok(())
        }
        AppCommand::Grant(args) => set_role(store, args, true).await,
        AppCommand::Revoke(args) => set_role(store, args, false).await,
    }
}

async fn find_app(store: &dyn Store, client_id: Uuid) -> anyhow::Result<App> {
    store
        .find_app(client_id)
        .await?
        .ok_or_else(|| StoreError::UnknownApp(client_id.to_string()).into())
}

fn role(name: &str) -> anyhow::Result<&'static str> {
    roles::parse(name).with_context(|| {
        format!("there is no role {name:?}; the roles are {}", roles::ALL.join(", "))
    })
}

/// A fresh secret to store, and its text to show once.
pub(super) fn new_secret(days: u32) -> anyhow::Result<(AppSecret, String)> {
    let drawn = generate_secret()?;
    let created = now();
    let secret = AppSecret {
        id: Uuid::new_v4(),
        hash: Sealed(drawn.hash.as_bytes().to_vec()),
        hint: drawn.hint,
        created,
        expires: created.add_ticks(i64::from(days) * DAY_TICKS),
    };
    Ok((secret, drawn.text))
}

async fn add(store: &dyn Store, args: AppAddArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.name.trim().is_empty(), "the app name is empty; give one with --name");
    let tenant = find_tenant(store, &args.tenant).await?;
    let mut granted: Vec<String> = Vec::new();
    for name in if args.roles.is_empty() { vec![roles::SIEM_READ.to_owned()] } else { args.roles } {
        granted.push(role(&name)?.to_owned());
    }
    for uri in &args.redirect_uris {
        anyhow::ensure!(
            uri.starts_with("https://")
                || uri.starts_with("http://localhost")
                || uri.starts_with("http://127.0.0.1"),
            "redirect URI {uri:?} must be https://, or http:// on localhost"
        );
    }
    let (secret, text) = new_secret(args.secret_days)?;
    let app = store
        .create_app(NewApp {
            client_id: Uuid::new_v4(),
            tenant: tenant.id,
            name: args.name.trim().to_owned(),
            roles: granted,
            redirect_uris: args.redirect_uris,
            secret: secret.clone(),
        })
        .await
        .context("cannot register the app")?;
    print_secret(&app, &secret, &text, args.json)
}

/// Prints a secret just made, with what a client needs beside it.
fn print_secret(app: &App, secret: &AppSecret, text: &str, json: bool) -> anyhow::Result<()> {
    if json {
        let value = serde_json::json!({
            "client_id": app.client_id.to_string(),
            "tenant_id": app.tenant.to_string(),
            "client_secret": text,
            "secret_id": secret.id.to_string(),
            "expires": secret.expires.to_string(),
            "roles": app.roles,
        });
        say!("{value}")?;
        return Ok(());
    }
    say!("client id:      {}", app.client_id)?;
    say!("tenant id:      {}", app.tenant)?;
    say!("client secret:  {text}")?;
    say!("secret id:      {} (expires {})", secret.id, secret.expires)?;
    say!("roles:          {}", app.roles.join(", "))?;
    say!("")?;
    say!("the secret is shown this once and kept only as a hash; store it now")?;
    Ok(())
}

async fn list(store: &dyn Store, args: AppListArgs) -> anyhow::Result<()> {
    let tenant = match &args.tenant {
        Some(key) => Some(find_tenant(store, key).await?.id),
        None => None,
    };
    let apps = store.apps(tenant).await?;
    if args.json {
        let all: Vec<_> = apps.iter().map(|a| app_json(a, now())).collect();
        say!("{}", serde_json::Value::Array(all))?;
        return Ok(());
    }
    if apps.is_empty() {
        say!("no apps yet; register one with `siemgate app add --tenant T --name N`")?;
        return Ok(());
    }
    let width = apps.iter().map(|a| a.name.len()).max().unwrap_or(4).max(4);
    say!("{:<36}  {:<width$}  {:<36}  {:<7}  ROLES", "CLIENT ID", "NAME", "TENANT", "SECRETS")?;
    for a in &apps {
        say!(
            "{}  {:<width$}  {}  {:<7}  {}",
            a.client_id,
            a.name,
            a.tenant,
            a.secrets.len(),
            a.roles.join(", ")
        )?;
    }
    Ok(())
}

fn print_app(app: &App, json: bool) -> anyhow::Result<()> {
    let now = now();
    if json {
        say!("{}", app_json(app, now))?;
        return Ok(());
    }
    say!("client id:      {}", app.client_id)?;
    say!("name:           {}", app.name)?;
    say!("tenant id:      {}", app.tenant)?;
    say!("roles:          {}", app.roles.join(", "))?;
    let uris =
        if app.redirect_uris.is_empty() { "none".to_owned() } else { app.redirect_uris.join(", ") };
    say!("redirect URIs:  {uris}")?;
    say!("created:        {}", app.created)?;
    say!("secrets:")?;
    for s in &app.secrets {
        let state = if s.expires <= now { "expired" } else { "valid" };
        say!("  {}  {}...  expires {}  ({state})", s.id, s.hint, s.expires)?;
    }
    Ok(())
}

fn app_json(app: &App, now: Timestamp) -> serde_json::Value {
    let secrets: Vec<_> = app
        .secrets
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id.to_string(),
                "hint": s.hint,
                "created": s.created.to_string(),
                "expires": s.expires.to_string(),
                "expired": s.expires <= now,
            })
        })
        .collect();
    serde_json::json!({
        "client_id": app.client_id.to_string(),
        "name": app.name,
        "tenant_id": app.tenant.to_string(),
        "roles": app.roles,
        "redirect_uris": app.redirect_uris,
        "created": app.created.to_string(),
        "secrets": secrets,
    })
}

async fn set_role(store: &dyn Store, args: AppRoleArgs, granted: bool) -> anyhow::Result<()> {
    let role = role(&args.role)?;
    let app = store.set_app_role(args.client_id, role, granted).await?;
    let roles = if app.roles.is_empty() { "none".to_owned() } else { app.roles.join(", ") };
    say!("app {} now holds: {roles}", app.client_id)?;
    Ok(())
}
