//! Who may call siemgate, and how they prove it: client secrets kept as
//! hashes, user passwords kept as argon2 hashes, RSA signing keys, and the
//! RS256 access tokens signed with them and verified against them.
//!
//! Nothing here does I/O beyond drawing random bytes; the store keeps what
//! must persist and the server speaks HTTP.

pub mod grant;
pub mod keys;
pub mod password;
pub mod roles;
pub mod secret;
pub mod token;

pub use keys::{SigningKey, VerifyingKey};
pub use secret::{NewSecret, SecretHash, generate_secret};
pub use token::{Claims, IdClaims, TokenError, Verifier, issue};

/// Failures of the primitives themselves; refusals of a token are [`TokenError`].
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the system's random source failed")]
    Random,
    #[error("not a usable RSA key: {0}")]
    BadKey(String),
    #[error("a password needs at least {} characters", password::MIN_PASSWORD_CHARS)]
    WeakPassword,
}
