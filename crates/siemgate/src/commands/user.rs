//! `siemgate user`: the people of a tenant who sign in on the authorization page.
//!
//! Passwords never travel as flag values, which any user of the machine can
//! read in the process list: they come from standard input or from the
//! SIEMGATE_PASSWORD variable.

use std::io::BufRead;

use anyhow::Context;
use siemgate_identity::password::hash_password;
use siemgate_store::{Sealed, Store, User};
use uuid::Uuid;

use super::{find_tenant, now, open_store};
use crate::cli::{PasswordArgs, UserAddArgs, UserCommand, UserListArgs};
use crate::output::say;

pub async fn run(command: UserCommand, database: &str) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    let store = &*store;
    match command {
        UserCommand::Add(args) => add(store, args).await,
        UserCommand::List(args) => list(store, args).await,
        UserCommand::Remove(args) => {
            let tenant = find_tenant(store, &args.tenant).await?;
            store.remove_user(tenant.id, &args.username).await?;
            say!("removed user {} of tenant {}", args.username, tenant.name)?;
            Ok(())
        }
        UserCommand::Passwd(args) => {
            let tenant = find_tenant(store, &args.user.tenant).await?;
            let hash = password_hash(&args.password)?;
            store.set_user_password(tenant.id, &args.user.username, hash).await?;
            say!("password of {} changed", args.user.username)?;
            Ok(())
        }
    }
}

/// Reads the password as the flags say and hashes it.
fn password_hash(args: &PasswordArgs) -> anyhow::Result<Sealed> {
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        std::env::var("SIEMGATE_PASSWORD").map_err(|_| {
            anyhow::anyhow!(
                "no password given; pipe it in with --password-stdin or set SIEMGATE_PASSWORD"
            )
        })?
    };
    Ok(Sealed(hash_password(&password)?.into_bytes()))
}

async fn add(store: &dyn Store, args: UserAddArgs) -> anyhow::Result<()> {
    let username = args.username.trim();
    anyhow::ensure!(
        !username.is_empty() && !username.contains(char::is_whitespace),
        "{username:?} is not a sign-in name such as alice@contoso.onmicrosoft.com"
    );
    let tenant = find_tenant(store, &args.tenant).await?;
    let user = User {
        id: Uuid::new_v4(),
        tenant: tenant.id,
        username: username.to_owned(),
        display_name: args.display_name.unwrap_or_else(|| username.to_owned()),
        password_hash: password_hash(&args.password)?,
        created: now(),
    };
    let user = store.create_user(user).await?;
    say!("added user {} ({}) to tenant {}", user.username, user.id, tenant.name)?;
    Ok(())
}

async fn list(store: &dyn Store, args: UserListArgs) -> anyhow::Result<()> {
    let tenant = find_tenant(store, &args.tenant).await?;
    let users = store.users(tenant.id).await?;
    if args.json {
        let all: Vec<_> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "id": u.id.to_string(),
                    "username": u.username,
                    "display_name": u.display_name,
                    "created": u.created.to_string(),
                })
            })
            .collect();
        say!("{}", serde_json::Value::Array(all))?;
        return Ok(());
    }
    if users.is_empty() {
        say!("tenant {} has no users; add one with `siemgate user add`", tenant.name)?;
        return Ok(());
    }
    let width = users.iter().map(|u| u.username.len()).max().unwrap_or(8).max(8);
    say!("{:<36}  {:<width$}  DISPLAY NAME", "ID", "USERNAME")?;
    for u in &users {
        say!("{}  {:<width$}  {}", u.id, u.username, u.display_name)?;
    }
    Ok(())
}
