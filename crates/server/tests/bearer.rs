//! The resource side: tokens from the real token endpoint are accepted for
//! their own tenant only, forgeries and stale tokens are refused with a
//! `WWW-Authenticate` challenge, a disabled or deleted tenant gets 403, and
//! a key rotated in the store is taken up without a restart.

mod common;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Server, now};
use siemgate_identity::token::v1_issuer;
use siemgate_identity::{Claims, SigningKey, TokenError, issue};
use siemgate_server::AppState;
use siemgate_server::bearer::{BearerError, TENANT_CACHE_TTL};
use siemgate_store::{Sealed, Store, StoredKey, TenantState};
use uuid::Uuid;

struct Fixture {
    server: Server,
    state: AppState,
    store: Arc<dyn Store>,
    base: String,
    tenant: Uuid,
    client_id: Uuid,
    secret: String,
}

async fn start() -> Fixture {
    let server = Server::start().await;
    let tenant = server.tenant("contoso").await;
    let app = server.app(tenant, "splunk", &["siem-read"]).await;
    Fixture {
        state: server.state.clone(),
        store: Arc::clone(&server.store),
        base: server.base.clone(),
        tenant,
        client_id: app.client_id,
        secret: app.secret,
        server,
    }
}

impl Fixture {
    /// A token from the token endpoint, v1 (`/oauth2/token`) or v2.
    async fn token(&self, client_id: Uuid, secret: &str, tenant: Uuid, v2: bool) -> String {
        let client_id = client_id.to_string();
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret),
        ];
        let path = if v2 {
            form.push(("scope", "https://graph.windows.net/.default"));
            format!("{}/{tenant}/oauth2/v2.0/token", self.base)
        } else {
            form.push(("resource", "https://graph.windows.net"));
            format!("{}/{tenant}/oauth2/token", self.base)
        };
        let answer: serde_json::Value = reqwest::Client::new()
            .post(path)
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap_or_else(|| panic!("no token: {answer}")).to_owned()
    }

    async fn present(
        &self,
        authorization: &str,
    ) -> Result<siemgate_server::bearer::Caller, BearerError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        self.state.authenticate(&headers).await
    }

    /// Claims as the server writes them for this fixture's app, for editing.
    fn claims(&self) -> Claims {
        let iat = now().unix_seconds();
        let tid = self.tenant.to_string();
        Claims {
            aud: "https://graph.windows.net".into(),
            iss: v1_issuer(&tid),
            iat,
            nbf: iat - 300,
            exp: iat + 3599,
            tid,
            appid: Some(self.client_id.to_string()),
            azp: None,
            oid: self.client_id.to_string(),
            sub: self.client_id.to_string(),
            roles: vec!["siem-read".into()],
            scp: None,
            name: None,
            upn: None,
            preferred_username: None,
            ver: "1.0".into(),
        }
    }

    /// `claims` signed with the server's own key.
    fn signed(&self, claims: &Claims) -> String {
        format!("Bearer {}", issue(&self.state.keyring().signer(), claims).unwrap())
    }
}

fn part(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[tokio::test]
async fn tokens_from_the_endpoint_name_their_tenant_and_roles() {
    let f = start().await;
    for v2 in [false, true] {
        let token = f.token(f.client_id, &f.secret, f.tenant, v2).await;
        for _ in 0..2 {
            // The second presentation is answered from the verifier's memory.
            let caller = f.present(&format!("Bearer {token}")).await.unwrap();
            assert_eq!(caller.tenant.id, f.tenant);
            assert!(caller.has_role("siem-read") && !caller.has_role("ingest"));
        }
        assert!(f.present(&format!("bearer   {token}")).await.is_ok(), "scheme in any case");
    }
}

#[tokio::test]
async fn no_token_or_another_scheme_is_a_401_with_a_challenge() {
    let f = start().await;
    let missing = f.state.authenticate(&HeaderMap::new()).await.unwrap_err();
    assert!(matches!(missing, BearerError::Missing));
    let response = missing.into_response();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"siemgate\"");
    let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "Unauthorized");
    assert!(body["error"]["message"].as_str().unwrap().contains("Authorization: Bearer"));

    let basic = f.present("Basic dXNlcjpwYXNz").await.unwrap_err();
    assert!(matches!(basic, BearerError::NotBearer));
}

#[tokio::test]
async fn forged_stale_and_foreign_tokens_are_refused() {
    let f = start().await;
    let genuine = f.token(f.client_id, &f.secret, f.tenant, false).await;
    let (_, rest) = genuine.split_once('.').unwrap();
    let (body, _) = rest.split_once('.').unwrap();

    let none = format!("Bearer {}.{body}.", part(&serde_json::json!({"alg": "none"})));
    let kid = f.state.keyring().signer().kid().to_owned();
    let hs256 =
        format!("Bearer {}.{body}.c2ln", part(&serde_json::json!({"alg": "HS256", "kid": kid})));
    let foreign_key = SigningKey::generate(now()).unwrap();
    let foreign = format!("Bearer {}", issue(&foreign_key, &f.claims()).unwrap());
    let mut expired = f.claims();
    (expired.iat, expired.nbf, expired.exp) =
        (expired.iat - 7200, expired.iat - 7200, expired.iat - 3600);
    let mut early = f.claims();
    early.nbf = early.iat + 600;
    let mut audience = f.claims();
    audience.aud = "https://management.azure.com".into();
    let mut issuer = f.claims();
    issuer.iss = "https://sts.windows.net/evil/".into();

    let cases = [
        ("alg none", none, "InvalidToken"),
        ("HS256 with the public key", hs256, "InvalidToken"),
        ("a foreign key", foreign, "InvalidToken"),
        ("expired", f.signed(&expired), "ExpiredToken"),
        ("not yet valid", f.signed(&early), "InvalidToken"),
        ("another audience", f.signed(&audience), "InvalidToken"),
        ("another issuer", f.signed(&issuer), "InvalidToken"),
        ("a truncated token", format!("Bearer {}", &genuine[..genuine.len() - 4]), "InvalidToken"),
    ];
    for (what, token, code) in cases {
        let refused = f.present(&token).await.expect_err(what);
        assert_eq!(refused.code(), code, "{what}: {refused}");
        let response = refused.into_response();
        assert_eq!(response.status(), 401, "{what}");
        let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
    }
    assert!(f.present(&format!("Bearer {genuine}")).await.is_ok(), "the genuine one still works");
}

#[tokio::test]
async fn a_token_is_only_ever_its_own_tenants() {
    let f = start().await;
    let fabrikam = f.server.tenant("fabrikam").await;
    let other = f.server.app(fabrikam, "splunk", &["siem-read"]).await;
    let theirs = f.token(other.client_id, &other.secret, fabrikam, true).await;
    let caller = f.present(&format!("Bearer {theirs}")).await.unwrap();
    assert_eq!(caller.tenant.id, fabrikam, "never contoso");

    // A genuine signature over a tenant this server does not have.
    let mut unknown = f.claims();
    unknown.tid = Uuid::new_v4().to_string();
    unknown.iss = v1_issuer(&unknown.tid);
    let refused = f.present(&f.signed(&unknown)).await.unwrap_err();
    assert!(matches!(refused, BearerError::UnknownTenant(_)), "{refused}");
    // A tenant named by its domain rather than its GUID is not a tenant id.
    let mut by_domain = f.claims();
    by_domain.tid = "contoso.onmicrosoft.com".into();
    by_domain.iss = v1_issuer(&by_domain.tid);
    assert!(matches!(f.present(&f.signed(&by_domain)).await, Err(BearerError::UnknownTenant(_))));
}

#[tokio::test]
async fn a_disabled_or_deleted_tenant_is_forbidden_until_enabled() {
    let f = start().await;
    let token = format!("Bearer {}", f.token(f.client_id, &f.secret, f.tenant, false).await);
    for state in [TenantState::Disabled, TenantState::Deleted] {
        f.store.set_tenant_state(f.tenant, state).await.unwrap();
        // A tenant read from the store is trusted for a moment, then read again.
        tokio::time::sleep(TENANT_CACHE_TTL).await;
        let refused = f.present(&token).await.unwrap_err();
        assert!(refused.to_string().contains(state.as_str()), "{refused}");
        let response = refused.into_response();
        assert_eq!(response.status(), 403);
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
    f.store.set_tenant_state(f.tenant, TenantState::Active).await.unwrap();
    tokio::time::sleep(TENANT_CACHE_TTL).await;
    assert!(f.present(&token).await.is_ok());
}

#[tokio::test]
async fn a_rotation_in_the_store_is_taken_up_and_old_tokens_keep_working() {
    let f = start().await;
    let before = format!("Bearer {}", f.token(f.client_id, &f.secret, f.tenant, false).await);
    let old_kid = f.state.keyring().signer().kid().to_owned();

    // What `siemgate keys rotate` does, from another process.
    let next = SigningKey::generate(now()).unwrap();
    let stored = StoredKey {
        kid: next.kid().to_owned(),
        pkcs8: Sealed(next.pkcs8().to_vec()),
        created: now(),
        retired: None,
    };
    f.store.rotate_signing_key(stored).await.unwrap();
    assert!(f.state.refresh_keys().await.unwrap(), "the rotation is noticed");
    assert!(!f.state.refresh_keys().await.unwrap(), "and only once");

    assert_eq!(f.state.keyring().signer().kid(), next.kid(), "new tokens use the new key");
    let jwks = f.state.keyring().jwks();
    let kids: Vec<&str> =
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&next.kid()), "{kids:?}");
    assert!(f.present(&before).await.is_ok(), "a token of the retired key still verifies");
    let after = format!("Bearer {}", f.token(f.client_id, &f.secret, f.tenant, true).await);
    assert!(f.present(&after).await.is_ok());

    // A key this server never published stays refused after the refresh.
    let stranger = SigningKey::generate(now()).unwrap();
    let forged = format!("Bearer {}", issue(&stranger, &f.claims()).unwrap());
    assert!(matches!(f.present(&forged).await, Err(BearerError::Token(TokenError::UnknownKey(_)))));
}
