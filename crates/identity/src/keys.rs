//! RSA signing keys: generated here, stored as PKCS#8, held parsed in memory,
//! and published as JSON Web Keys so that clients can check what we sign.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use siemgate_model::Timestamp;

use crate::IdentityError;

/// A private key that signs tokens, with the public half ready for checks.
pub struct SigningKey {
    kid: String,
    created: Timestamp,
    pkcs8: Vec<u8>,
    pair: KeyPair,
    public: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh 2048-bit key, as Azure AD uses.
    pub fn generate(created: Timestamp) -> Result<SigningKey, IdentityError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| IdentityError::Random)?;
        let pkcs8 = pair.as_der().map_err(|_| IdentityError::Random)?.as_ref().to_vec();
        SigningKey::from_pkcs8(&pkcs8, created)
    }

    /// A key as the store keeps it.
    pub fn from_pkcs8(pkcs8: &[u8], created: Timestamp) -> Result<SigningKey, IdentityError> {
        let pair = KeyPair::from_pkcs8(pkcs8).map_err(|e| IdentityError::BadKey(e.to_string()))?;
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let mut public = VerifyingKey::from_components(&components.n, &components.e)?;
        let mut key =
            SigningKey { kid: public.kid.clone(), created, pkcs8: pkcs8.to_vec(), pair, public };
        // Published JWKs carry a certificate for clients that look for `x5c`/`x5t`.
        public = key.public.clone();
        public.certificate = Some(key.self_signed_certificate()?);
        key.public = public;
        Ok(key)
    }

    /// A self-signed X.509 certificate for the key, built only from the key
    /// and its creation time, so every replica that loads the key publishes
    /// the same certificate (and the same `x5t`). RS256 signatures are
    /// deterministic, which makes the whole DER deterministic.
    fn self_signed_certificate(&self) -> Result<Vec<u8>, IdentityError> {
        const SHA256_WITH_RSA: &[u8] =
            &[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
        const RSA_ENCRYPTION: &[u8] =
            &[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
        const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
        const NULL: &[u8] = &[0x05, 0x00];
        let algorithm = |oid: &[u8]| der_tlv(0x30, &[oid, NULL].concat());

        let name = der_tlv(
            0x30,
            &der_tlv(0x31, &der_tlv(0x30, &[COMMON_NAME, &der_tlv(0x0C, CERT_NAME)].concat())),
        );
        let serial: Vec<u8> = Sha256::digest(self.kid.as_bytes())[..16].to_vec();
        let seconds = self.created.unix_seconds();
        let validity = der_tlv(
            0x30,
            &[x509_time(seconds), x509_time(seconds + CERT_YEARS * 365 * 86_400)].concat(),
        );
        let public_key = rsa_public_key_der(&self.public.n, &self.public.e);
        let spki = der_tlv(
            0x30,
            &[algorithm(RSA_ENCRYPTION), der_tlv(0x03, &[&[0u8][..], &public_key].concat())]
                .concat(),
        );
        let version = der_tlv(0xA0, &der_integer(&[2]));
        let tbs = der_tlv(
            0x30,
            &[
                version,
                der_integer(&serial),
                algorithm(SHA256_WITH_RSA),
                name.clone(),
                validity,
                name,
                spki,
            ]
            .concat(),
        );
        let signature = self.sign(&tbs)?;
        let signature = der_tlv(0x03, &[&[0u8][..], &signature].concat());
        Ok(der_tlv(0x30, &[tbs, algorithm(SHA256_WITH_RSA), signature].concat()))
    }

    /// The key's id: its RFC 7638 thumbprint, so the same key always has the same id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// The private key as PKCS#8 DER, for the store and nothing else.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// An RS256 (PKCS#1 v1.5, SHA-256) signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, IdentityError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
            .map_err(|_| IdentityError::Random)?;
        Ok(signature)
    }
}

/// The subject and issuer of the keys' certificates.
const CERT_NAME: &[u8] = b"siemgate token signing";

/// How long a key's certificate claims to be valid; keys rotate long before.
const CERT_YEARS: i64 = 5;

/// An X.509 `Time`: UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
fn x509_time(unix_seconds: i64) -> Vec<u8> {
    let text = Timestamp::from_unix_ticks(unix_seconds * 10_000_000).to_string();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let digits = &digits[..14.min(digits.len())];
    if digits < "2050" {
        der_tlv(0x17, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        der_tlv(0x18, format!("{digits}Z").as_bytes())
    }
}

/// The public half of a signing key, parsed once for fast checks.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
    parsed: ParsedPublicKey,
    /// The key's self-signed certificate (DER), when the private half made one.
    certificate: Option<Vec<u8>>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// The key with modulus `n` and exponent `e`, big-endian.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<VerifyingKey, IdentityError> {
        let significant = n.iter().skip_while(|&&b| b == 0).count() * 8;
        if !(2048..=8192).contains(&significant) {
            return Err(IdentityError::BadKey(format!(
                "an RSA modulus of about {significant} bits; 2048 to 8192 are accepted"
            )));
        }
        let der = rsa_public_key_der(n, e);
        let parsed = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .map_err(|e| IdentityError::BadKey(e.to_string()))?;
        let kid = thumbprint(n, e);
        Ok(VerifyingKey { kid, n: n.to_vec(), e: e.to_vec(), parsed, certificate: None })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// True when `signature` is this key's RS256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }

    /// The key as a JSON Web Key, as a JWKS endpoint lists it.
    pub fn jwk(&self) -> serde_json::Value {
        let mut jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        });
        if let Some(der) = &self.certificate {
            // x5t is the certificate's SHA-1 thumbprint (RFC 7517 4.8); x5c
            // is standard base64, not base64url (4.7).
            jwk["x5t"] = URL_SAFE_NO_PAD.encode(Sha1::digest(der)).into();
            jwk["x5c"] = serde_json::json!([STANDARD.encode(der)]);
        }
        jwk
    }

    /// The key's certificate (DER), if it has one.
    pub fn certificate(&self) -> Option<&[u8]> {
        self.certificate.as_deref()
    }
}

/// The RFC 7638 thumbprint of an RSA key: SHA-256 over its members in a fixed form.
fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(e),
        URL_SAFE_NO_PAD.encode(n)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// DER of a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = der_integer(n);
    body.extend(der_integer(e));
    der_tlv(0x30, &body)
}

fn der_integer(big_endian: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match big_endian.iter().position(|&b| b != 0) {
        Some(start) => &big_endian[start..],
        None => &[0],
    };
    // A leading 1 bit would read as negative; a zero byte keeps it positive.
    let mut value = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        value.push(0);
    }
    value.extend_from_slice(trimmed);
    der_tlv(0x02, &value)
}

fn der_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2024-05-01T12:00:00Z").unwrap()
    }

    #[test]
    fn a_key_survives_the_store_and_verifies_its_own_signatures() {
        let key = SigningKey::generate(now()).unwrap();
        let again = SigningKey::from_pkcs8(key.pkcs8(), now()).unwrap();
        assert_eq!(again.kid(), key.kid());

        let signature = key.sign(b"header.claims").unwrap();
        assert_eq!(signature.len(), 256);
        assert!(again.verifying_key().verify(b"header.claims", &signature));
        assert!(!again.verifying_key().verify(b"header.claimz", &signature));

        let other = SigningKey::generate(now()).unwrap();
        assert_ne!(other.kid(), key.kid());
        assert!(!other.verifying_key().verify(b"header.claims", &signature));
    }

    #[test]
    fn the_jwk_rebuilds_the_same_key() {
        let key = SigningKey::generate(now()).unwrap();
        let jwk = key.verifying_key().jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["e"], "AQAB");
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
        let rebuilt = VerifyingKey::from_components(&n, &e).unwrap();
        assert_eq!(rebuilt.kid(), key.kid());
        let signature = key.sign(b"m").unwrap();
        assert!(rebuilt.verify(b"m", &signature));
    }

    #[test]
    fn the_certificate_is_deterministic_and_carries_the_key() {
        let key = SigningKey::generate(now()).unwrap();
        let der = key.verifying_key().certificate().unwrap().to_vec();
        let again = SigningKey::from_pkcs8(key.pkcs8(), now()).unwrap();
        assert_eq!(again.verifying_key().certificate().unwrap(), der, "same key, same cert");
        // The certificate holds the public key's DER and the validity dates.
        let public = rsa_public_key_der(&key.verifying_key().n, &key.verifying_key().e);
        assert!(der.windows(public.len()).any(|w| w == public));
        assert!(der.windows(13).any(|w| w == b"240501120000Z"));
        assert!(der.windows(13).any(|w| w == b"290430120000Z"), "five years of 365 days");
        let jwk = key.verifying_key().jwk();
        assert_eq!(jwk["x5t"].as_str().unwrap().len(), 27, "SHA-1, base64url");
        assert_eq!(STANDARD.decode(jwk["x5c"][0].as_str().unwrap()).unwrap(), der);
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(matches!(SigningKey::from_pkcs8(b"nope", now()), Err(IdentityError::BadKey(_))));
        assert!(VerifyingKey::from_components(&[1, 2, 3], &[1, 0, 1]).is_err());
    }
}
