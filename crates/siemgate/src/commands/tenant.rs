//! `siemgate tenant add|list|show|disable|enable|delete`.

use anyhow::Context;
use siemgate_store::{NewTenant, Store, Tenant, TenantState};

use super::{find_tenant, open_store};
use crate::cli::{TenantAddArgs, TenantCommand, TenantRefArgs};
use crate::output::say;

pub async fn run(command: TenantCommand, database: &str) -> anyhow::Result<()> {
    match command {
        TenantCommand::Add(args) => add(args, database).await,
        TenantCommand::List(args) => {
            let store = open_store(database).await?;
            list(&*store, args.json).await
        }
        TenantCommand::Show(args) => show(args, database).await,
        TenantCommand::Disable(args) => set_state(args, database, TenantState::Disabled).await,
        TenantCommand::Enable(args) => set_state(args, database, TenantState::Active).await,
        TenantCommand::Delete(args) => set_state(args, database, TenantState::Deleted).await,
    }
}

/// `<name>.onmicrosoft.com`, with the name reduced to what a host label allows.
pub fn default_domain(name: &str) -> String {
    let label: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("{}.onmicrosoft.com", label.trim_matches('-'))
}

fn check_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.trim().is_empty(),
        "the tenant name is empty; give a name such as contoso"
    );
    anyhow::ensure!(
        uuid::Uuid::parse_str(name).is_err(),
        "the tenant name {name:?} is a GUID; give a name, and the GUID with --id"
    );
    Ok(())
}

fn check_domain(domain: &str) -> anyhow::Result<()> {
    let valid = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    anyhow::ensure!(valid, "{domain:?} is not a domain name such as contoso.onmicrosoft.com");
    Ok(())
}

async fn add(args: TenantAddArgs, database: &str) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let domains = if args.domains.is_empty() {
        vec![default_domain(&args.name)]
    } else {
        args.domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect()
    };
    for domain in &domains {
        check_domain(domain)?;
    }
    let store = open_store(database).await?;
    let new = NewTenant {
        id: args.id.unwrap_or_else(uuid::Uuid::new_v4),
        name: args.name.trim().to_owned(),
        domains,
    };
    let tenant = store.create_tenant(new).await.context("cannot add the tenant")?;
    if args.json {
        say!("{}", to_json(&tenant, None))?;
    } else {
        say!("{}", tenant.id)?;
    }
    Ok(())
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let tenants = store.tenants().await?;
    if json {
        let all: Vec<_> = tenants.iter().map(|t| to_json(t, None)).collect();
        say!("{}", serde_json::Value::Array(all))?;
        return Ok(());
    }
    if tenants.is_empty() {
        say!("no tenants yet; add one with `siemgate tenant add NAME`")?;
        return Ok(());
    }
    let width = tenants.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    say!("{:<36}  {:<width$}  {:<8}  DOMAINS", "ID", "NAME", "STATE")?;
    for t in &tenants {
        say!("{}  {:<width$}  {:<8}  {}", t.id, t.name, t.state, t.domains.join(", "))?;
    }
    Ok(())
}

async fn show(args: TenantRefArgs, database: &str) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    let tenant = find_tenant(&*store, &args.tenant).await?;
    let count = store.detection_count(tenant.id).await?;
    if args.json {
        say!("{}", to_json(&tenant, Some(count)))?;
        return Ok(());
    }
    say!("id:          {}", tenant.id)?;
    say!("name:        {}", tenant.name)?;
    say!("state:       {}", tenant.state)?;
    say!("domains:     {}", tenant.domains.join(", "))?;
    say!("created:     {}", tenant.created)?;
    say!("detections:  {count}")?;
    Ok(())
}

async fn set_state(args: TenantRefArgs, database: &str, state: TenantState) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    let tenant = find_tenant(&*store, &args.tenant).await?;
    let tenant = store.set_tenant_state(tenant.id, state).await?;
    if args.json {
        say!("{}", to_json(&tenant, None))?;
    } else {
        say!("tenant {} ({}) is now {}", tenant.name, tenant.id, tenant.state)?;
    }
    Ok(())
}

fn to_json(tenant: &Tenant, detections: Option<u64>) -> serde_json::Value {
    let mut value = serde_json::json!({
        "id": tenant.id.to_string(),
        "name": tenant.name,
        "state": tenant.state.as_str(),
        "domains": tenant.domains,
        "created": tenant.created.to_string(),
    });
    if let Some(n) = detections {
        value["detections"] = n.into();
    }
    value
}
