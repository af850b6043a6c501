//! The pieces of the sign-in flow that are pure computation: one-time codes
//! and refresh tokens drawn at random and kept as hashes, the PKCE check,
//! and the `client_info` MSAL builds its account from.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::IdentityError;

/// Random bytes in a code or refresh token: 256 bits, past any guessing.
const GRANT_BYTES: usize = 32;

/// A bearer string handed to a client once; the store keeps `hash`.
#[derive(Debug)]
pub struct OneTime {
    pub text: String,
    pub hash: Vec<u8>,
}

impl OneTime {
    /// Draws a new one from the system's random source.
    pub fn generate() -> Result<OneTime, IdentityError> {
        let mut bytes = [0u8; GRANT_BYTES];
        SystemRandom::new().fill(&mut bytes).map_err(|_| IdentityError::Random)?;
        let text = URL_SAFE_NO_PAD.encode(bytes);
        Ok(OneTime { hash: hash(&text), text })
    }
}

/// The hash under which a presented code or refresh token is looked up.
pub fn hash(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// PKCE challenge methods (RFC 7636).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMethod {
    S256,
    Plain,
}

impl ChallengeMethod {
    /// The method an authorize request names; RFC 7636 makes `plain` the default.
    pub fn parse(text: Option<&str>) -> Option<ChallengeMethod> {
        match text {
            None | Some("plain") => Some(ChallengeMethod::Plain),
            Some("S256") => Some(ChallengeMethod::S256),
            Some(_) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeMethod::S256 => "S256",
            ChallengeMethod::Plain => "plain",
        }
    }
}

/// True when `verifier`, sent with the code, answers the `challenge` sent
/// with the authorize request. Compared in constant time.
pub fn pkce_matches(method: ChallengeMethod, challenge: &str, verifier: &str) -> bool {
    // RFC 7636 4.1: 43 to 128 characters of [A-Za-z0-9-._~].
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let expected = match method {
        ChallengeMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        ChallengeMethod::Plain => verifier.to_owned(),
    };
    verify_slices_are_equal(expected.as_bytes(), challenge.as_bytes()).is_ok()
}

/// Azure AD's `client_info`: base64url of `{"uid": oid, "utid": tid}`, from
/// which MSAL forms the account's `home_account_id`.
pub fn client_info(oid: &str, tid: &str) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::json!({ "uid": oid, "utid": tid }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_only_its_verifier() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(ChallengeMethod::S256, challenge, verifier));
        assert!(!pkce_matches(ChallengeMethod::S256, challenge, &verifier.replace('d', "e")));
        assert!(!pkce_matches(ChallengeMethod::Plain, challenge, verifier));
        assert!(!pkce_matches(ChallengeMethod::S256, challenge, "short"));
        assert!(pkce_matches(ChallengeMethod::Plain, verifier, verifier));
    }

    #[test]
    fn one_time_strings_are_fresh_and_found_by_hash() {
        let a = OneTime::generate().unwrap();
        let b = OneTime::generate().unwrap();
        assert_ne!(a.text, b.text);
        assert_eq!(a.text.len(), 43);
        assert_eq!(hash(&a.text), a.hash);
        assert_eq!(ChallengeMethod::parse(Some("S384")), None);
    }

    #[test]
    fn client_info_decodes_to_uid_and_utid() {
        let info = client_info("oid-1", "tid-2");
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(info).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"uid": "oid-1", "utid": "tid-2"}));
    }
}
