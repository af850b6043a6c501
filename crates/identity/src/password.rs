//! Passwords of tenant users, who sign in on the authorization page.
//!
//! People choose passwords, so they get argon2id with its default cost: slow
//! on purpose, so that a stolen store does not give them up.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::IdentityError;

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Hashes `password` into a PHC string (`$argon2id$v=19$...`) with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, IdentityError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(IdentityError::WeakPassword);
    }
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| IdentityError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| IdentityError::Random)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| IdentityError::Random)
}

/// True when `password` is the one `phc` was made from. A malformed stored
/// hash matches nothing.
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horsE"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(hash_password("correct horse").unwrap(), phc, "salted");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(hash_password("short"), Err(IdentityError::WeakPassword)));
    }
}
