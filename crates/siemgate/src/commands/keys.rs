//! `siemgate keys`: the RSA keys that sign tokens.
//!
//! One key signs; keys it replaced stay published so that tokens they signed
//! keep verifying until those tokens expire.

use siemgate_identity::SigningKey;
use siemgate_store::{Sealed, StoredKey};

use super::{now, open_store};
use crate::cli::KeysCommand;
use crate::output::say;

pub async fn run(command: KeysCommand, database: &str) -> anyhow::Result<()> {
    let store = open_store(database).await?;
    match command {
        KeysCommand::Rotate => {
            let key = SigningKey::generate(now())?;
            let stored = StoredKey {
                kid: key.kid().to_owned(),
                pkcs8: Sealed(key.pkcs8().to_vec()),
                created: key.created(),
                retired: None,
            };
            store.rotate_signing_key(stored).await?;
            say!("key {} now signs tokens; the keys before it stay published", key.kid())?;
        }
        KeysCommand::List(args) => {
            let keys = store.signing_keys().await?;
            if args.jwks {
                let mut published = Vec::with_capacity(keys.len());
                for k in &keys {
                    let key = SigningKey::from_pkcs8(&k.pkcs8.0, k.created)?;
                    published.push(key.verifying_key().jwk());
                }
                say!("{}", serde_json::json!({ "keys": published }))?;
                return Ok(());
            }
            if keys.is_empty() {
                say!("no signing keys yet; `siemgate keys rotate` makes one")?;
                return Ok(());
            }
            say!("{:<43}  {:<28}  STATE", "KEY ID", "CREATED")?;
            for k in &keys {
                let state = match k.retired {
                    None => "signing".to_owned(),
                    Some(at) => format!("retired {at}"),
                };
                say!("{:<43}  {:<28}  {state}", k.kid, k.created.to_string())?;
            }
        }
    }
    Ok(())
}
