//! The signing keys in memory: the one that signs, parsed once, and the ones
//! still published for verification.
//!
//! The store is the source of truth; a server loads the keys at start and
//! makes the first one if the store has none.

use std::sync::{Arc, RwLock};

use siemgate_identity::{IdentityError, SigningKey, VerifyingKey};
use siemgate_model::{Span, Timestamp};
use siemgate_store::{Sealed, Store, StoreError, StoredKey};

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a signing key in the store is unusable: {0}")]
    Key(#[from] IdentityError),
}

/// The signing key and the published keys.
#[derive(Debug)]
pub struct Keyring {
    keys: RwLock<Keys>,
}

#[derive(Debug)]
struct Keys {
    signing: Arc<SigningKey>,
    published: Vec<VerifyingKey>,
}

impl Keyring {
    /// Loads the keys from `store`, making a first key if there is none. A
    /// retired key is published while tokens it signed can still be valid:
    /// for `token_lifetime` after its retirement.
    pub async fn load(
        store: &dyn Store,
        now: Timestamp,
        token_lifetime: Span,
    ) -> Result<Keyring, KeyringError> {
        let keys = read_keys(store, now, token_lifetime).await?;
        Ok(Keyring { keys: RwLock::new(keys) })
    }

    /// Reads the keys again, so that a rotation made by `siemgate keys
    /// rotate` (or by another server on the same store) is taken up, and a
    /// retired key is withdrawn once its last token has expired. True when
    /// the keys changed.
    pub async fn reload(
        &self,
        store: &dyn Store,
        now: Timestamp,
        token_lifetime: Span,
    ) -> Result<bool, KeyringError> {
        let keys = read_keys(store, now, token_lifetime).await?;
        let mut current = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let kids = |k: &Keys| {
            let mut kids: Vec<String> = k.published.iter().map(|v| v.kid().to_owned()).collect();
            kids.push(k.signing.kid().to_owned());
            kids
        };
        let changed = kids(&current) != kids(&keys);
        *current = keys;
        Ok(changed)
    }

    /// The key that signs new tokens.
    pub fn signer(&self) -> Arc<SigningKey> {
        Arc::clone(&self.read().signing)
    }

    /// The keys tokens may be verified with.
    pub fn published(&self) -> Vec<VerifyingKey> {
        self.read().published.clone()
    }

    /// The published keys as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.read().published.iter().map(VerifyingKey::jwk).collect();
        serde_json::json!({ "keys": keys })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The signing key and the keys still published, from the store; makes the
/// first key when there is none.
async fn read_keys(
    store: &dyn Store,
    now: Timestamp,
    token_lifetime: Span,
) -> Result<Keys, KeyringError> {
    let mut stored = store.signing_keys().await?;
    if !stored.iter().any(|k| k.retired.is_none()) {
        let key = SigningKey::generate(now)?;
        let new = StoredKey {
            kid: key.kid().to_owned(),
            pkcs8: Sealed(key.pkcs8().to_vec()),
            created: now,
            retired: None,
        };
        store.rotate_signing_key(new).await?;
        tracing::info!(kid = key.kid(), "made the first token-signing key");
        stored = store.signing_keys().await?;
    }
    let mut signing = None;
    let mut published = Vec::new();
    for k in &stored {
        let still_valid = k.retired.is_none_or(|at| at.add_ticks(token_lifetime.ticks()) > now);
        if !still_valid {
            continue;
        }
        let key = SigningKey::from_pkcs8(&k.pkcs8.0, k.created)?;
        published.push(key.verifying_key().clone());
        if k.retired.is_none() {
            signing = Some(Arc::new(key));
        }
    }
    let signing = signing.ok_or_else(|| {
        StoreError::Worker("the store has no signing key after making one".into())
    })?;
    Ok(Keys { signing, published })
}
