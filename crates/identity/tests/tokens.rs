//! Tokens as an attacker would present them: none of the forgeries verifies,
//! and the genuine ones verify whether remembered or not.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use siemgate_identity::token::{v1_issuer, v2_issuer};
use siemgate_identity::{Claims, SigningKey, TokenError, Verifier, issue};
use siemgate_model::Timestamp;

const PUBLIC_URL: &str = "https://gate.test:8443";
const GRAPH: &str = "https://graph.windows.net";
const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn now() -> Timestamp {
    Timestamp::parse("2024-05-01T12:00:00Z").unwrap()
}

fn claims(ver: &str) -> Claims {
    let iat = now().unix_seconds();
    Claims {
        aud: GRAPH.into(),
        iss: if ver == "1.0" { v1_issuer(TID) } else { v2_issuer(PUBLIC_URL, TID) },
        iat,
        nbf: iat,
        exp: iat + 3600,
        tid: TID.into(),
        appid: Some("35e0f735-5fe4-4693-9e68-3de80f1d3745".into()),
        azp: None,
        oid: "0b9b2a51-6c8f-4b3c-9d22-5c2a1f0e9a11".into(),
        sub: "0b9b2a51-6c8f-4b3c-9d22-5c2a1f0e9a11".into(),
        roles: vec!["Alert.Read.All".into()],
        scp: None,
        name: None,
        upn: None,
        preferred_username: None,
        ver: ver.into(),
    }
}

fn verifier(key: &SigningKey) -> Verifier {
    Verifier::new(
        [key.verifying_key().clone()],
        vec![GRAPH.into(), "https://WDATPAlertExport.Seville.onmicrosoft.com".into()],
        PUBLIC_URL,
        60,
    )
}

fn part(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[test]
fn genuine_v1_and_v2_tokens_verify_and_are_remembered() {
    let key = SigningKey::generate(now()).unwrap();
    let v = verifier(&key);
    for ver in ["1.0", "2.0"] {
        let token = issue(&key, &claims(ver)).unwrap();
        assert_eq!(v.verify(&token, now()).unwrap(), claims(ver));
        assert_eq!(v.verify(&token, now()).unwrap(), claims(ver), "from memory");
    }
}

#[test]
fn forgeries_never_verify() {
    let key = SigningKey::generate(now()).unwrap();
    let v = verifier(&key);
    let genuine = issue(&key, &claims("1.0")).unwrap();
    let (header, rest) = genuine.split_once('.').unwrap();
    let (body, _) = rest.split_once('.').unwrap();

    let none = format!("{}.{body}.", part(&serde_json::json!({"alg": "none", "typ": "JWT"})));
    assert_eq!(v.verify(&none, now()), Err(TokenError::Algorithm("none".into())));

    // HS256 keyed with the public key, the classic confusion attack.
    let hs =
        format!("{}.{body}.c2ln", part(&serde_json::json!({"alg": "HS256", "kid": key.kid()})));
    assert_eq!(v.verify(&hs, now()), Err(TokenError::Algorithm("HS256".into())));

    let foreign = SigningKey::generate(now()).unwrap();
    let by_foreign = issue(&foreign, &claims("1.0")).unwrap();
    assert!(matches!(v.verify(&by_foreign, now()), Err(TokenError::UnknownKey(_))));

    // A foreign signature under our key id.
    let (_, foreign_rest) = by_foreign.split_once('.').unwrap();
    let (_, foreign_sig) = foreign_rest.split_once('.').unwrap();
    let swapped = format!("{header}.{body}.{foreign_sig}");
    assert_eq!(v.verify(&swapped, now()), Err(TokenError::Signature));

    // Another tenant's id written into a genuine token breaks its signature.
    let mut other = claims("1.0");
    other.tid = "00000000-0000-0000-0000-000000000001".into();
    let edited = format!(
        "{header}.{}.{}",
        part(&serde_json::to_value(&other).unwrap()),
        genuine.rsplit('.').next().unwrap()
    );
    assert_eq!(v.verify(&edited, now()), Err(TokenError::Signature));

    for junk in ["", "a.b", "a.b.c", "....", &genuine[..genuine.len() - 3]] {
        assert!(v.verify(junk, now()).is_err(), "{junk:?} verified");
    }
}

#[test]
fn times_audience_and_issuer_are_enforced() {
    let key = SigningKey::generate(now()).unwrap();
    let v = verifier(&key);
    let refused = |edit: fn(&mut Claims)| {
        let mut c = claims("1.0");
        edit(&mut c);
        v.verify(&issue(&key, &c).unwrap(), now()).unwrap_err()
    };
    assert!(matches!(refused(|c| c.exp = c.iat - 61), TokenError::Expired(_)));
    assert!(matches!(refused(|c| c.nbf = c.iat + 61), TokenError::NotYetValid(_)));
    assert!(matches!(
        refused(|c| c.aud = "https://management.azure.com".into()),
        TokenError::Audience(_)
    ));
    assert!(matches!(
        refused(|c| c.iss = "https://sts.windows.net/evil/".into()),
        TokenError::Issuer(_)
    ));
    // Within the allowed skew both ways.
    let mut c = claims("1.0");
    c.exp = c.iat - 30;
    assert!(v.verify(&issue(&key, &c).unwrap(), now()).is_ok());
    // The SIEM API's older resource is accepted too.
    let mut c = claims("1.0");
    c.aud = "https://WDATPAlertExport.Seville.onmicrosoft.com".into();
    assert!(v.verify(&issue(&key, &c).unwrap(), now()).is_ok());
}

#[test]
fn remembered_tokens_still_expire_and_die_with_their_key() {
    let key = SigningKey::generate(now()).unwrap();
    let mut v = verifier(&key);
    let token = issue(&key, &claims("2.0")).unwrap();
    v.verify(&token, now()).unwrap();
    let later = now().add_ticks(2 * 3600 * 10_000_000);
    assert!(matches!(v.verify(&token, later), Err(TokenError::Expired(_))));

    let next = SigningKey::generate(now()).unwrap();
    v.set_keys([next.verifying_key().clone()]);
    assert!(matches!(v.verify(&token, now()), Err(TokenError::UnknownKey(_))));
}
