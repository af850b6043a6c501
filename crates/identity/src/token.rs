//! Access tokens: RS256 JSON Web Tokens with Azure AD's claims, issued with a
//! signing key and verified against the keys still published.
//!
//! JWTs are built and checked here rather than through a general JWT library
//! for two reasons. Verification accepts exactly one algorithm, RS256, and
//! never reads a key from the token, which rules out the classic forgeries
//! (`alg: none`, HS256 keyed with the public key) by construction. And the
//! signing key stays parsed in memory; the libraries we looked at re-parse
//! the private key on every signature.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use siemgate_model::Timestamp;

use crate::IdentityError;
use crate::keys::{SigningKey, VerifyingKey};

/// The claims siemgate puts in a token, named as Azure AD names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The tenant's GUID.
    pub tid: String,
    /// The client id, in v1 tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// The client id, in v2 tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    pub oid: String,
    pub sub: String,
    /// Application roles (client-credential tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Delegated scopes (tokens for a signed-in user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// The signed-in user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The signed-in user's sign-in name, in v1 tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// The signed-in user's sign-in name, in v2 tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// `1.0` or `2.0`.
    pub ver: String,
}

impl Claims {
    /// The client the token was issued to, whichever version it is.
    pub fn client_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }
}

/// The claims of an id token: who signed in, for the client (`aud` is its
/// client id), tied to the authorize request by `nonce`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub name: String,
    pub oid: String,
    /// v2 names the sign-in name `preferred_username`; v1 `upn` and `unique_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    pub sub: String,
    pub tid: String,
    pub ver: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

/// Signs `claims` (an access token's [`Claims`] or an id token's
/// [`IdClaims`]) with `key` into a compact JWT.
pub fn issue<C: Serialize>(key: &SigningKey, claims: &C) -> Result<String, IdentityError> {
    let header =
        Header { alg: "RS256".into(), typ: Some("JWT".into()), kid: Some(key.kid().into()) };
    let mut token = encode_part(&header);
    token.push('.');
    token.push_str(&encode_part(claims));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

fn encode_part<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Why a token was refused. Each says what was wrong in words a client
/// developer can act on; none repeats the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JSON Web Token")]
    Malformed,
    #[error("the token is signed with {0:?}; only RS256 tokens from this server are accepted")]
    Algorithm(String),
    #[error("the token's signing key {0:?} is not one this server publishes")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token expired at {0}")]
    Expired(Timestamp),
    #[error("the token is not valid before {0}")]
    NotYetValid(Timestamp),
    #[error("the token is for audience {0:?}, which this API does not accept")]
    Audience(String),
    #[error("the token was issued by {0:?}, which is not this server")]
    Issuer(String),
}

/// The issuer Azure AD writes into v1 tokens.
pub fn v1_issuer(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}

/// The issuer of v2 tokens for `tid` from the server at `public_url`.
pub fn v2_issuer(public_url: &str, tid: &str) -> String {
    format!("{}/{tid}/v2.0", public_url.trim_end_matches('/'))
}

/// How many verified tokens are remembered; beyond this the expired go first.
const CACHE_CAPACITY: usize = 16_384;

/// Checks tokens against the published keys, remembering the ones it has
/// verified until they expire, so that a client presenting the same token on
/// every request pays for one signature check.
#[derive(Debug)]
pub struct Verifier {
    keys: HashMap<String, VerifyingKey>,
    audiences: Vec<String>,
    public_url: String,
    skew_seconds: i64,
    verified: Mutex<HashMap<[u8; 32], Remembered>>,
}

/// A verified token's claims and the key that signed it.
#[derive(Debug, Clone)]
struct Remembered {
    claims: Claims,
    kid: String,
}

impl Verifier {
    /// A verifier for tokens whose audience is one of `audiences`, issued by
    /// the server at `public_url`, allowing clocks to differ by `skew_seconds`.
    pub fn new(
        keys: impl IntoIterator<Item = VerifyingKey>,
        audiences: Vec<String>,
        public_url: &str,
        skew_seconds: i64,
    ) -> Verifier {
        Verifier {
            keys: keys.into_iter().map(|k| (k.kid().to_owned(), k)).collect(),
            audiences,
            public_url: public_url.trim_end_matches('/').to_owned(),
            skew_seconds,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the published keys, after a rotation. Tokens signed with a
    /// key that is gone stop verifying, remembered or not.
    pub fn set_keys(&mut self, keys: impl IntoIterator<Item = VerifyingKey>) {
        self.keys = keys.into_iter().map(|k| (k.kid().to_owned(), k)).collect();
    }

    /// The token's claims if it is genuine, current, for us and from us.
    /// Whether its tenant exists and is enabled is for the caller to check.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        let fingerprint = fingerprint(token);
        let remembered = self.cache().get(&fingerprint).cloned();
        if let Some(Remembered { claims, kid }) = remembered {
            // The signature was checked when it was remembered; the key
            // may have been withdrawn and the clock has moved since.
            if !self.keys.contains_key(&kid) {
                return Err(TokenError::UnknownKey(kid));
            }
            self.check_times(&claims, now)?;
            return Ok(claims);
        }
        let (claims, kid) = self.verify_in_full(token, now)?;
        self.remember(fingerprint, Remembered { claims: claims.clone(), kid }, now);
        Ok(claims)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Remembered>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, fingerprint: [u8; 32], remembered: Remembered, now: Timestamp) {
        let mut cache = self.cache();
        if cache.len() >= CACHE_CAPACITY {
            let now = now.unix_seconds();
            cache.retain(|_, r| r.claims.exp > now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(fingerprint, remembered);
    }

    /// The claims and the signing key's id of a token seen for the first time.
    fn verify_in_full(&self, token: &str, now: Timestamp) -> Result<(Claims, String), TokenError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, claims) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        let header: Header = decode_part(header)?;
        if header.alg != "RS256" {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or_else(|| TokenError::UnknownKey(String::new()))?;
        let Some(key) = self.keys.get(&kid) else { return Err(TokenError::UnknownKey(kid)) };
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
        if !key.verify(signed.as_bytes(), &signature) {
            return Err(TokenError::Signature);
        }
        let claims: Claims = decode_part(claims)?;
        self.check_times(&claims, now)?;
        if !self
            .audiences
            .iter()
            .any(|a| a.trim_end_matches('/') == claims.aud.trim_end_matches('/'))
        {
            return Err(TokenError::Audience(claims.aud));
        }
        let expected = match claims.ver.as_str() {
            "1.0" => v1_issuer(&claims.tid),
            _ => v2_issuer(&self.public_url, &claims.tid),
        };
        if claims.iss != expected {
            return Err(TokenError::Issuer(claims.iss));
        }
        Ok((claims, kid))
    }

    fn check_times(&self, claims: &Claims, now: Timestamp) -> Result<(), TokenError> {
        let now = now.unix_seconds();
        let at = |seconds: i64| Timestamp::from_unix_ticks(seconds.saturating_mul(10_000_000));
        if now >= claims.exp.saturating_add(self.skew_seconds) {
            return Err(TokenError::Expired(at(claims.exp)));
        }
        if now < claims.nbf.saturating_sub(self.skew_seconds) {
            return Err(TokenError::NotYetValid(at(claims.nbf)));
        }
        Ok(())
    }
}

/// The SHA-256 of a token, under which it is remembered: short to keep, and
/// no two tokens share it.
fn fingerprint(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut fingerprint = [0u8; 32];
    fingerprint.copy_from_slice(digest.as_ref());
    fingerprint
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}
