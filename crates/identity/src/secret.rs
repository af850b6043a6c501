//! Client secrets: drawn at random, shown once, kept only as a hash.
//!
//! A secret carries 240 random bits, so guessing it is hopeless whatever the
//! hash; a plain SHA-256 is enough and costs ~70 ns, where argon2 would cost
//! ~17 ms on every token request. Passwords, chosen by people, are another
//! matter (see `password`).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::IdentityError;

/// Random bytes in a secret; 30 bytes are 40 characters of base64url.
const SECRET_BYTES: usize = 30;

/// A secret just drawn: its text, to show once, and what the store keeps.
#[derive(Debug)]
pub struct NewSecret {
    /// The secret itself. Show it to the operator once and drop it.
    pub text: String,
    /// What the store keeps to recognise the secret later.
    pub hash: SecretHash,
    /// The first three characters, kept so an operator can tell secrets apart.
    pub hint: String,
}

/// SHA-256 of a secret's text.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even a hash of a secret has no business in a log line.
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    /// The hash of `text`.
    pub fn of(text: &str) -> SecretHash {
        SecretHash(Sha256::digest(text.as_bytes()).into())
    }

    /// Rebuilds a stored hash from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<SecretHash> {
        bytes.try_into().ok().map(SecretHash)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True when `presented` is the secret this hash was made from. The
    /// comparison takes the same time wherever the hashes first differ.
    pub fn matches(&self, presented: &str) -> bool {
        verify_slices_are_equal(&SecretHash::of(presented).0, &self.0).is_ok()
    }
}

/// True when `a` and `b` are equal, taking the same time wherever they
/// first differ (their lengths are not hidden).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    verify_slices_are_equal(a, b).is_ok()
}

/// Draws a new secret from the system's random source.
pub fn generate_secret() -> Result<NewSecret, IdentityError> {
    let mut bytes = [0u8; SECRET_BYTES];
    SystemRandom::new().fill(&mut bytes).map_err(|_| IdentityError::Random)?;
    let text = URL_SAFE_NO_PAD.encode(bytes);
    Ok(NewSecret { hash: SecretHash::of(&text), hint: text[..3].to_owned(), text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_its_hash_and_nothing_else() {
        let secret = generate_secret().unwrap();
        assert_eq!(secret.text.len(), 40);
        assert!(secret.text.starts_with(&secret.hint));
        assert!(secret.hash.matches(&secret.text));
        assert!(!secret.hash.matches(&secret.text[1..]));
        assert!(!secret.hash.matches(""));
        let stored = SecretHash::from_bytes(secret.hash.as_bytes()).unwrap();
        assert!(stored.matches(&secret.text));
        assert_ne!(generate_secret().unwrap().text, secret.text);
    }

    #[test]
    fn hashes_stay_out_of_debug_output() {
        let secret = generate_secret().unwrap();
        let shown = format!("{:?}", secret.hash);
        assert_eq!(shown, "SecretHash(..)");
    }
}
