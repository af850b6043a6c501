//! The authorization-code flow end to end, as a browser and MSAL or ADAL see
//! it: the sign-in page, its form and anti-forgery cookie, the redirect with a
//! code, and the code and refresh-token grants, against a real server on a
//! real port with a real SQLite store.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use siemgate_identity::grant::{OneTime, hash};
use siemgate_identity::password::hash_password;
use siemgate_identity::{Verifier, VerifyingKey, generate_secret};
use siemgate_model::Timestamp;
use siemgate_server::{AppState, Keyring, ServerConfig};
use siemgate_store::{AppSecret, NewApp, NewTenant, Sealed, SqliteStore, Store, User};
use uuid::Uuid;

const REDIRECT: &str = "https://connector.example/signed-in";
const GRAPH: &str = "https://graph.windows.net";
/// What MSAL asks for when a connector signs a user in to the SIEM API.
const MSAL_SCOPE: &str =
    "https://graph.windows.net/user_impersonation offline_access openid profile";
const ALICE: &str = "alice@contoso.onmicrosoft.com";
const BOB: &str = "bob@contoso.onmicrosoft.com";
const PASSWORD: &str = "correct horse battery staple";
const WRONG_PASSWORD: &str = "incorrect horse";

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// An app registration as its operator would hold it: client id and secret.
#[derive(Debug, Clone)]
struct Client {
    id: String,
    secret: String,
}

struct Server {
    base: String,
    store: Arc<dyn Store>,
    tenant: Uuid,
    connector: Client,
    alice: Uuid,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    start_with_app_name("SIEM connector").await
}

async fn start_with_app_name(app_name: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("siemgate.db")).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let tenant = store
        .create_tenant(NewTenant {
            id: Uuid::new_v4(),
            name: "contoso".into(),
            domains: vec!["contoso.onmicrosoft.com".into()],
        })
        .await
        .unwrap()
        .id;
    let redirects = vec![REDIRECT.to_owned(), "http://localhost/callback".to_owned()];
    let connector = register(&*store, tenant, Uuid::new_v4(), app_name, redirects).await;
    let alice = add_user(&*store, tenant, ALICE, "Alice Example").await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig::new(&base);
    let keyring = Keyring::load(&*store, now(), config.key_lifetime()).await.unwrap();
    let state = AppState::new(Arc::clone(&store), keyring, config);
    tokio::spawn(siemgate_server::serve(listener, state, std::future::pending()));
    // A browser's redirects are what is under test, so the client follows none.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build();
    Server { base, store, tenant, connector, alice, http: http.unwrap(), _dir: dir }
}

async fn register(
    store: &dyn Store,
    tenant: Uuid,
    client_id: Uuid,
    name: &str,
    redirect_uris: Vec<String>,
) -> Client {
    let drawn = generate_secret().unwrap();
    store
        .create_app(NewApp {
            client_id,
            tenant,
            name: name.into(),
            roles: vec![],
            redirect_uris,
            secret: AppSecret {
                id: Uuid::new_v4(),
                hash: Sealed(drawn.hash.as_bytes().to_vec()),
                hint: drawn.hint,
                created: now(),
                expires: now().add_ticks(86_400 * 10_000_000),
            },
        })
        .await
        .unwrap();
    Client { id: client_id.to_string(), secret: drawn.text }
}

async fn add_user(store: &dyn Store, tenant: Uuid, username: &str, display_name: &str) -> Uuid {
    let user = User {
        id: Uuid::new_v4(),
        tenant,
        username: username.into(),
        display_name: display_name.into(),
        password_hash: Sealed(hash_password(PASSWORD).unwrap().into_bytes()),
        created: now(),
    };
    store.create_user(user).await.unwrap().id
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn authorize(self, tenant: Uuid) -> String {
        match self {
            Version::V1 => format!("/{tenant}/oauth2/authorize"),
            Version::V2 => format!("/{tenant}/oauth2/v2.0/authorize"),
        }
    }

    fn token(self, tenant: Uuid) -> String {
        match self {
            Version::V1 => format!("/{tenant}/oauth2/token"),
            Version::V2 => format!("/{tenant}/oauth2/v2.0/token"),
        }
    }
}

/// Form fields or query parameters, in order.
type Params = Vec<(String, String)>;

fn param(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_owned(), value.into())
}

/// Replaces `key`'s value, or adds it.
fn set(params: &mut Params, key: &str, value: &str) {
    params.retain(|(k, _)| k != key);
    params.push(param(key, value));
}

fn without(mut params: Params, key: &str) -> Params {
    params.retain(|(k, _)| k != key);
    params
}

/// One authorize request with the secrets its client keeps to itself.
struct Authorize {
    version: Version,
    params: Params,
    verifier: String,
    nonce: String,
    state: String,
}

/// The request MSAL's `initiate_auth_code_flow` builds: PKCE with S256, a
/// nonce and a state, all fresh. On v1 it names a resource instead of scopes.
fn authorize(version: Version, client: &Client) -> Authorize {
    let verifier = OneTime::generate().unwrap().text;
    let challenge = URL_SAFE_NO_PAD.encode(hash(&verifier));
    let nonce = OneTime::generate().unwrap().text;
    let state = OneTime::generate().unwrap().text;
    let mut params: Params = vec![
        param("client_id", &client.id),
        param("response_type", "code"),
        param("redirect_uri", REDIRECT),
        param("state", &state),
        param("nonce", &nonce),
        param("code_challenge", challenge),
        param("code_challenge_method", "S256"),
    ];
    match version {
        Version::V1 => params.push(param("resource", GRAPH)),
        Version::V2 => params.push(param("scope", MSAL_SCOPE)),
    }
    Authorize { version, params, verifier, nonce, state }
}

/// What the browser got back from the authorize endpoint.
#[derive(Debug)]
struct Reply {
    status: u16,
    location: Option<String>,
    /// The anti-forgery cookie as the browser would send it back (`name=value`).
    cookie: Option<String>,
    set_cookie: Option<String>,
    content_type: Option<String>,
    csp: Option<String>,
    body: String,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Reply {
        let header =
            |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let set_cookie = header("set-cookie");
        Reply {
            status: response.status().as_u16(),
            location: header("location"),
            cookie: set_cookie.as_deref().map(|c| c.split(';').next().unwrap().to_owned()),
            set_cookie,
            content_type: header("content-type"),
            csp: header("content-security-policy"),
            body: response.text().await.unwrap(),
        }
    }

    /// The hidden fields of the page's form, unescaped as a browser would.
    fn hidden(&self) -> Params {
        let mut fields = Params::new();
        let mut rest = self.body.as_str();
        while let Some(at) = rest.find("<input type=\"hidden\" name=\"") {
            rest = &rest[at + "<input type=\"hidden\" name=\"".len()..];
            let (name, tail) = rest.split_once("\" value=\"").unwrap();
            let (value, tail) = tail.split_once('"').unwrap();
            fields.push(param(name, unescape(value)));
            rest = tail;
        }
        fields
    }

    fn field(&self, name: &str) -> Option<String> {
        self.hidden().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Where the form posts to.
    fn action(&self) -> String {
        let (_, tail) = self.body.split_once("<form method=\"post\" action=\"").unwrap();
        unescape(tail.split_once('"').unwrap().0)
    }

    /// The query of the redirect, when the reply sends the browser to `uri`.
    fn redirected_to(&self, uri: &str) -> HashMap<String, String> {
        assert_eq!(self.status, 302, "expected a redirect: {self:?}");
        let location = self.location.as_deref().unwrap();
        let (target, query) = location.split_once('?').unwrap();
        assert_eq!(target, uri, "redirected elsewhere: {location}");
        form_urlencoded::parse(query.as_bytes()).into_owned().collect()
    }

    /// The text a person reads in the page's error box.
    fn alert(&self) -> String {
        let (_, tail) = self.body.split_once("role=\"alert\">").expect("the page shows no error");
        unescape(tail.split_once("</p>").unwrap().0)
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

impl Server {
    /// Opens the sign-in page for `request` in a browser with no cookies yet.
    async fn open(&self, request: &Authorize) -> Reply {
        let url = format!("{}{}", self.base, request.version.authorize(self.tenant));
        Reply::from(self.http.get(url).query(&request.params).send().await.unwrap()).await
    }

    /// Posts `fields` to the page's form action with `cookie`, as a browser would.
    async fn post_form(&self, page: &Reply, fields: &Params, cookie: Option<&str>) -> Reply {
        let mut post = self.http.post(format!("{}{}", self.base, page.action())).form(fields);
        if let Some(cookie) = cookie {
            post = post.header("cookie", cookie);
        }
        Reply::from(post.send().await.unwrap()).await
    }

    /// Fills in the page's form with `username` and `password` and submits it.
    async fn submit(&self, page: &Reply, username: &str, password: &str) -> Reply {
        let mut fields = page.hidden();
        set(&mut fields, "username", username);
        set(&mut fields, "password", password);
        self.post_form(page, &fields, page.cookie.as_deref()).await
    }

    /// Signs `username` in for `request` and returns the code from the redirect.
    async fn code_for(&self, request: &Authorize, username: &str) -> String {
        let page = self.open(request).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let back = self.submit(&page, username, PASSWORD).await.redirected_to(REDIRECT);
        assert_eq!(back["state"], request.state);
        back["code"].clone()
    }

    async fn post(&self, path: &str, form: &Params) -> (u16, Value) {
        let response =
            self.http.post(format!("{}{path}", self.base)).form(form).send().await.unwrap();
        let status = response.status().as_u16();
        if status == 200 {
            // RFC 6749 5.1: a response with tokens in it must not be cached.
            assert_eq!(response.headers()["cache-control"], "no-store");
        }
        (status, response.json().await.unwrap())
    }

    /// Redeems `code`, sending what MSAL (v2) or ADAL (v1) sends.
    async fn redeem(&self, request: &Authorize, client: &Client, code: &str) -> (u16, Value) {
        self.post(&request.version.token(self.tenant), &redemption(request, client, code)).await
    }

    /// Signs Alice in to the connector through MSAL's flow and redeems the code.
    async fn tokens(&self) -> Value {
        let request = authorize(Version::V2, &self.connector);
        let code = self.code_for(&request, ALICE).await;
        let (status, body) = self.redeem(&request, &self.connector, &code).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Exchanges a refresh token as MSAL does when it renews silently.
    async fn refresh(&self, client: &Client, refresh_token: &str) -> (u16, Value) {
        let form: Params = vec![
            param("grant_type", "refresh_token"),
            param("client_info", "1"),
            param("client_id", &client.id),
            param("client_secret", &client.secret),
            param("refresh_token", refresh_token),
            param("scope", MSAL_SCOPE),
        ];
        self.post(&Version::V2.token(self.tenant), &form).await
    }

    /// A verifier for tokens whose audience is `audience`, built from the
    /// keys the server publishes, as a resource server would build it.
    async fn verifier(&self, audience: &str) -> Verifier {
        let url = format!("{}/{}/discovery/v2.0/keys", self.base, self.tenant);
        let jwks: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap().iter().map(|k| {
            let decode = |s: &Value| URL_SAFE_NO_PAD.decode(s.as_str().unwrap()).unwrap();
            VerifyingKey::from_components(&decode(&k["n"]), &decode(&k["e"])).unwrap()
        });
        Verifier::new(keys, vec![audience.to_owned()], &self.base, 60)
    }
}

fn redemption(request: &Authorize, client: &Client, code: &str) -> Params {
    let mut form: Params = vec![
        param("grant_type", "authorization_code"),
        param("client_id", &client.id),
        param("client_secret", &client.secret),
        param("code", code),
        param("redirect_uri", REDIRECT),
        param("code_verifier", &request.verifier),
    ];
    match request.version {
        Version::V1 => form.push(param("resource", GRAPH)),
        Version::V2 => {
            form.push(param("client_info", "1"));
            form.push(param("scope", MSAL_SCOPE));
        }
    }
    form
}

/// The claims of a JWT, read without checking anything, as MSAL reads them.
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The AADSTS code of a refusal in Azure AD's shape.
fn aadsts(body: &Value) -> u64 {
    let code = body["error_codes"][0].as_u64().unwrap_or_else(|| panic!("not an error: {body}"));
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    code
}

fn is_digits(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test]
async fn msal_signs_a_user_in_and_gets_tokens_it_can_use() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);

    let page = s.open(&request).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    assert!(page.body.contains("SIEM connector asks you to sign in"), "{}", page.body);
    let set_cookie = page.set_cookie.as_deref().expect("the page sets an anti-forgery cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing from {set_cookie}");
    }
    let cookie = page.cookie.as_deref().unwrap();
    let (name, token) = cookie.split_once('=').unwrap();
    assert_eq!((name, page.field("csrf").as_deref()), ("siemgate_csrf", Some(token)));
    for (key, value) in &request.params {
        assert_eq!(page.field(key).as_ref(), Some(value), "the form carries {key}");
    }
    assert_eq!(page.action(), format!("/{}/oauth2/v2.0/authorize", s.tenant));

    let back = s.submit(&page, ALICE, PASSWORD).await.redirected_to(REDIRECT);
    assert_eq!(back["state"], request.state);
    let code = &back["code"];

    let (status, body) = s.redeem(&request, &s.connector, code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64() && body["ext_expires_in"].is_u64(), "v2 numbers: {body}");
    assert_eq!(body["scope"], "https://graph.windows.net/user_impersonation openid profile");
    assert!(body["refresh_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");

    let access = body["access_token"].as_str().unwrap();
    let claims = s.verifier(GRAPH).await.verify(access, now()).unwrap();
    assert_eq!(claims.aud, GRAPH);
    assert_eq!(claims.scp.as_deref(), Some("user_impersonation"));
    assert_eq!(claims.oid, s.alice.to_string());
    assert_eq!(claims.tid, s.tenant.to_string());
    assert_eq!(claims.azp.as_deref(), Some(s.connector.id.as_str()));
    assert_eq!(claims.preferred_username.as_deref(), Some(ALICE));
    assert!(claims.roles.is_empty(), "a user's token carries scopes, not app roles");
    assert_eq!(claims.ver, "2.0");

    let id_token = body["id_token"].as_str().unwrap();
    let id = s.verifier(&s.connector.id).await.verify(id_token, now()).unwrap();
    assert_eq!(id.aud, s.connector.id);
    assert_eq!(id.oid, s.alice.to_string());
    assert_eq!(payload(id_token)["nonce"], request.nonce.as_str());
    assert_eq!(payload(id_token)["preferred_username"], ALICE);

    let info = URL_SAFE_NO_PAD.decode(body["client_info"].as_str().unwrap()).unwrap();
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info, serde_json::json!({"uid": s.alice.to_string(), "utid": s.tenant.to_string()}));
}

#[tokio::test]
async fn adal_signs_in_on_v1_and_gets_numbers_as_strings() {
    let s = start().await;
    // ADAL sends no PKCE.
    let mut request = authorize(Version::V1, &s.connector);
    request.params = without(without(request.params, "code_challenge"), "code_challenge_method");
    let page = s.open(&request).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.action(), format!("/{}/oauth2/authorize", s.tenant));
    assert_eq!(page.field("resource").as_deref(), Some(GRAPH));
    let code = s.submit(&page, ALICE, PASSWORD).await.redirected_to(REDIRECT)["code"].clone();

    let form = without(redemption(&request, &s.connector, &code), "code_verifier");
    let (status, body) = s.post(&Version::V1.token(s.tenant), &form).await;
    assert_eq!(status, 200, "{body}");
    for key in ["expires_in", "ext_expires_in", "expires_on", "not_before"] {
        assert!(is_digits(&body[key]), "v1 writes {key} as a string of digits: {body}");
    }
    assert_eq!(body["resource"], GRAPH);
    assert_eq!(body["scope"], "user_impersonation");
    assert!(body["refresh_token"].is_string(), "{body}");

    let claims = s.verifier(GRAPH).await.verify(body["access_token"].as_str().unwrap(), now());
    let claims = claims.unwrap();
    assert_eq!(claims.iss, format!("https://sts.windows.net/{}/", s.tenant));
    assert_eq!(claims.appid.as_deref(), Some(s.connector.id.as_str()));
    assert_eq!((claims.oid, claims.upn.as_deref()), (s.alice.to_string(), Some(ALICE)));
    assert_eq!(claims.scp.as_deref(), Some("user_impersonation"));

    let id_token = body["id_token"].as_str().expect("v1 always answers with an id token");
    let id = s.verifier(&s.connector.id).await.verify(id_token, now()).unwrap();
    assert_eq!((id.aud, id.ver.as_str()), (s.connector.id.clone(), "1.0"));
    assert_eq!(payload(id_token)["upn"], ALICE);
    assert_eq!(payload(id_token)["nonce"], request.nonce.as_str());
}

#[tokio::test]
async fn adal_names_the_resource_when_it_redeems_the_code() {
    // The v1 authorize request may leave the resource out; the token request
    // must name it, and the token is for what it names.
    let s = start().await;
    let siem = "https://WDATPAlertExport.Seville.onmicrosoft.com";
    let mut request = authorize(Version::V1, &s.connector);
    request.params = without(request.params, "resource");
    let code = s.code_for(&request, ALICE).await;
    let mut form = redemption(&request, &s.connector, &code);
    set(&mut form, "resource", siem);
    let (status, body) = s.post(&Version::V1.token(s.tenant), &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resource"], siem);
    let claims = s.verifier(siem).await.verify(body["access_token"].as_str().unwrap(), now());
    assert_eq!(claims.unwrap().aud, siem);

    let code = s.code_for(&request, ALICE).await;
    let mut form = redemption(&request, &s.connector, &code);
    set(&mut form, "resource", "https://management.azure.com");
    let (status, body) = s.post(&Version::V1.token(s.tenant), &form).await;
    assert_eq!((status, aadsts(&body)), (400, 500011), "a resource this server does not serve");
    let (status, body) = s.redeem(&request, &s.connector, &code).await;
    assert_eq!(status, 200, "the code was not spent on a malformed request: {body}");
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_was_exchanged_for() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let code = s.code_for(&request, ALICE).await;
    let (status, first) = s.redeem(&request, &s.connector, &code).await;
    assert_eq!(status, 200, "{first}");

    let (status, again) = s.redeem(&request, &s.connector, &code).await;
    assert_eq!((status, aadsts(&again)), (400, 54005));
    assert_eq!(again["error"], "invalid_grant");
    assert!(again.get("access_token").is_none());

    let (status, body) = s.refresh(&s.connector, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, aadsts(&body)), (400, 70000), "a replay revokes the refresh token");
}

#[tokio::test]
async fn a_replayed_code_also_revokes_the_refresh_tokens_renewed_from_it() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let code = s.code_for(&request, ALICE).await;
    let (_, first) = s.redeem(&request, &s.connector, &code).await;
    let (status, renewed) = s.refresh(&s.connector, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{renewed}");

    let (status, body) = s.redeem(&request, &s.connector, &code).await;
    assert_eq!((status, aadsts(&body)), (400, 54005));
    let (status, body) = s.refresh(&s.connector, renewed["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, aadsts(&body)), (400, 70000));
}

#[tokio::test]
async fn a_code_raced_by_two_redemptions_works_once() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let code = s.code_for(&request, ALICE).await;
    let (a, b) = tokio::join!(
        s.redeem(&request, &s.connector, &code),
        s.redeem(&request, &s.connector, &code)
    );
    let (won, lost) = if a.0 == 200 { (a, b) } else { (b, a) };
    assert_eq!(won.0, 200, "{}", won.1);
    assert_eq!((lost.0, aadsts(&lost.1)), (400, 54005));
}

#[tokio::test]
async fn an_unknown_code_is_refused() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let made_up = OneTime::generate().unwrap().text;
    let (status, body) = s.redeem(&request, &s.connector, &made_up).await;
    assert_eq!((status, aadsts(&body)), (400, 70000));
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_code_verifier_is_refused_and_spends_the_code() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let code = s.code_for(&request, ALICE).await;
    let mut form = redemption(&request, &s.connector, &code);
    set(&mut form, "code_verifier", &OneTime::generate().unwrap().text);
    let (status, body) = s.post(&Version::V2.token(s.tenant), &form).await;
    assert_eq!((status, aadsts(&body)), (400, 501481));
    assert!(body.get("access_token").is_none());

    // Whoever guessed at the verifier does not get a second try, nor does the app.
    let (status, body) = s.redeem(&request, &s.connector, &code).await;
    assert_eq!((status, aadsts(&body)), (400, 54005));
}

#[tokio::test]
async fn a_code_needs_its_verifier_when_it_was_asked_for_with_a_challenge() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let code = s.code_for(&request, ALICE).await;
    let form = without(redemption(&request, &s.connector, &code), "code_verifier");
    let (status, body) = s.post(&Version::V2.token(s.tenant), &form).await;
    assert_eq!((status, aadsts(&body)), (400, 900144), "{body}");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_code_is_bound_to_its_redirect_uri() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let code = s.code_for(&request, ALICE).await;
    let mut form = redemption(&request, &s.connector, &code);
    set(&mut form, "redirect_uri", "https://connector.example/other");
    let (status, body) = s.post(&Version::V2.token(s.tenant), &form).await;
    assert_eq!((status, aadsts(&body)), (400, 500112));
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_code_is_refused_to_another_app_of_the_same_tenant() {
    let s = start().await;
    let redirects = vec![REDIRECT.to_owned()];
    let other = register(&*s.store, s.tenant, Uuid::new_v4(), "other", redirects).await;
    let request = authorize(Version::V2, &s.connector);
    let code = s.code_for(&request, ALICE).await;

    let (status, body) = s.redeem(&request, &other, &code).await;
    assert_eq!((status, aadsts(&body)), (400, 70000));
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_loopback_redirect_uri_may_name_any_port() {
    let s = start().await;
    let loopback = "http://localhost:53117/callback";
    let mut request = authorize(Version::V2, &s.connector);
    set(&mut request.params, "redirect_uri", loopback);
    let page = s.open(&request).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let code = s.submit(&page, ALICE, PASSWORD).await.redirected_to(loopback)["code"].clone();

    let mut form = redemption(&request, &s.connector, &code);
    set(&mut form, "redirect_uri", loopback);
    let (status, body) = s.post(&Version::V2.token(s.tenant), &form).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_refresh_token_is_exchanged_once_for_new_tokens() {
    let s = start().await;
    let first = s.tokens().await;
    let old = first["refresh_token"].as_str().unwrap();

    let (status, renewed) = s.refresh(&s.connector, old).await;
    assert_eq!(status, 200, "{renewed}");
    let new = renewed["refresh_token"].as_str().expect("a refresh brings a new refresh token");
    assert_ne!(new, old);
    let access = renewed["access_token"].as_str().unwrap();
    let claims = s.verifier(GRAPH).await.verify(access, now()).unwrap();
    assert_eq!(claims.oid, s.alice.to_string());
    assert_eq!(claims.scp.as_deref(), Some("user_impersonation"));
    assert!(renewed["id_token"].is_string() && renewed["client_info"].is_string(), "{renewed}");

    let (status, body) = s.refresh(&s.connector, old).await;
    assert_eq!((status, aadsts(&body)), (400, 70000), "the old refresh token is spent");
    let (status, body) = s.refresh(&s.connector, new).await;
    assert_eq!(status, 200, "the new one works: {body}");
}

#[tokio::test]
async fn a_refresh_token_is_refused_to_another_app() {
    let s = start().await;
    let redirects = vec![REDIRECT.to_owned()];
    let other = register(&*s.store, s.tenant, Uuid::new_v4(), "other", redirects).await;
    let first = s.tokens().await;
    let (status, body) = s.refresh(&other, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, aadsts(&body)), (400, 70000));
}

#[tokio::test]
async fn removing_the_app_revokes_its_refresh_tokens() {
    let s = start().await;
    let first = s.tokens().await;
    let refresh_token = first["refresh_token"].as_str().unwrap();
    let client_id = Uuid::parse_str(&s.connector.id).unwrap();
    s.store.remove_app(client_id).await.unwrap();

    let (status, body) = s.refresh(&s.connector, refresh_token).await;
    assert_eq!((status, aadsts(&body)), (400, 700016), "the app is gone");

    // Registered again under the same client id, the app still cannot renew
    // the old sign-in: the refresh token went with the app, not just its secret.
    let redirects = vec![REDIRECT.to_owned()];
    let again = register(&*s.store, s.tenant, client_id, "SIEM connector", redirects).await;
    let (status, body) = s.refresh(&again, refresh_token).await;
    assert_eq!((status, aadsts(&body)), (400, 70000));
}

#[tokio::test]
async fn a_new_password_or_removing_the_user_revokes_refresh_tokens() {
    let s = start().await;
    let first = s.tokens().await;
    let new_hash = Sealed(hash_password("a brand new password").unwrap().into_bytes());
    s.store.set_user_password(s.tenant, ALICE, new_hash).await.unwrap();
    let (status, body) = s.refresh(&s.connector, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, aadsts(&body)), (400, 70000), "a new password ends old sign-ins");

    let new_hash = Sealed(hash_password(PASSWORD).unwrap().into_bytes());
    s.store.set_user_password(s.tenant, ALICE, new_hash).await.unwrap();
    let second = s.tokens().await;
    s.store.remove_user(s.tenant, ALICE).await.unwrap();
    let (status, body) = s.refresh(&s.connector, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, aadsts(&body)), (400, 70000), "a removed user's sign-ins end");
}

#[tokio::test]
async fn a_wrong_password_shows_the_page_again_with_an_error() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let page = s.open(&request).await;

    let refused = s.submit(&page, ALICE, WRONG_PASSWORD).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.location, None, "no redirect, so no code");
    assert!(refused.alert().contains("the user name or the password is wrong"), "{}", refused.body);
    assert!(refused.body.contains(&format!("value=\"{ALICE}\"")), "the user name stays filled in");
    assert!(!refused.body.contains(WRONG_PASSWORD), "the password is never echoed");
    assert_eq!(refused.field("state"), Some(request.state.clone()));

    let unknown = s.submit(&page, "mallory@contoso.onmicrosoft.com", PASSWORD).await;
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.alert(),
        refused.alert(),
        "an unknown user reads the same as a bad password"
    );

    // The page shown again is a working form: the right password now goes through.
    let back = s.submit(&refused, ALICE, PASSWORD).await.redirected_to(REDIRECT);
    assert_eq!(back["state"], request.state);
    assert!(!back["code"].is_empty());
}

#[tokio::test]
async fn a_sign_in_without_the_forms_cookie_is_refused() {
    let s = start().await;
    let request = authorize(Version::V2, &s.connector);
    let page = s.open(&request).await;
    let mut fields = page.hidden();
    set(&mut fields, "username", ALICE);
    set(&mut fields, "password", PASSWORD);

    let forged = format!("siemgate_csrf={}", OneTime::generate().unwrap().text);
    for cookie in [None, Some(forged.as_str())] {
        let refused = s.post_form(&page, &fields, cookie).await;
        assert_eq!(refused.status, 403, "cookie {cookie:?}: {}", refused.body);
        assert_eq!(refused.location, None, "no code without the cookie");
        assert!(refused.alert().contains("sign-in form has expired"), "{}", refused.body);
    }
    let missing_field = without(fields.clone(), "csrf");
    let refused = s.post_form(&page, &missing_field, page.cookie.as_deref()).await;
    assert_eq!((refused.status, refused.location), (403, None));

    // The refusal hands out a fresh form and cookie, so a person can go on.
    let fresh = s.post_form(&page, &fields, None).await;
    assert_ne!(fresh.cookie, page.cookie);
    s.submit(&fresh, ALICE, PASSWORD).await.redirected_to(REDIRECT);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_shown_and_never_followed() {
    let s = start().await;
    let evil = "https://evil.example/<script>steal()</script>";
    let mut request = authorize(Version::V2, &s.connector);
    set(&mut request.params, "redirect_uri", evil);
    let page = s.open(&request).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(page.location, None);
    assert!(page.alert().contains(&format!("'{evil}' is not registered")), "{}", page.body);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(!page.body.contains("<form"), "nothing to sign in to");

    // Nor does a form tampered with after the page was served redirect there.
    let good = s.open(&authorize(Version::V2, &s.connector)).await;
    let mut fields = good.hidden();
    set(&mut fields, "redirect_uri", evil);
    set(&mut fields, "username", ALICE);
    set(&mut fields, "password", PASSWORD);
    let refused = s.post_form(&good, &fields, good.cookie.as_deref()).await;
    assert_eq!((refused.status, refused.location), (400, None), "{}", refused.body);
}

#[tokio::test]
async fn markup_in_the_app_name_and_login_hint_stays_text() {
    let s = start_with_app_name("<script>alert('app')</script>").await;
    let mut request = authorize(Version::V2, &s.connector);
    request.params.push(param("login_hint", "\"><script>alert('hint')</script>"));
    set(&mut request.params, "state", "<b>state</b>");
    let page = s.open(&request).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("<script"), "markup got into the page: {}", page.body);
    assert!(!page.body.contains("<b>"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(&#39;app&#39;)&lt;/script&gt; asks you"));
    assert!(
        page.body
            .contains("value=\"&quot;&gt;&lt;script&gt;alert(&#39;hint&#39;)&lt;/script&gt;\""),
        "{}",
        page.body
    );
    assert_eq!(page.field("state").as_deref(), Some("<b>state</b>"), "escaped, not altered");
    let csp = page.csp.as_deref().unwrap();
    assert!(csp.contains("default-src 'none'"), "and no script would run anyway: {csp}");
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_known_go_back_to_the_app() {
    let s = start().await;
    let mut request = authorize(Version::V2, &s.connector);
    set(&mut request.params, "response_type", "token");
    let back = s.open(&request).await.redirected_to(REDIRECT);
    assert_eq!(back["error"], "unsupported_response_type");
    assert!(back["error_description"].starts_with("AADSTS70005: "), "{back:?}");
    assert_eq!(back["state"], request.state);
    assert!(!back.contains_key("code"));

    let mut request = authorize(Version::V2, &s.connector);
    request.params.push(param("prompt", "none"));
    let back = s.open(&request).await.redirected_to(REDIRECT);
    assert_eq!(back["error"], "login_required");
    assert_eq!(back["state"], request.state);
    assert!(!back.contains_key("code"));
}

#[tokio::test]
async fn repeated_wrong_passwords_for_one_user_are_throttled() {
    let s = start().await;
    add_user(&*s.store, s.tenant, BOB, "Bob Example").await;
    let request = authorize(Version::V2, &s.connector);
    let page = s.open(&request).await;

    // The throttle allows ten failures a minute for one user name.
    for attempt in 1..=10 {
        let refused = s.submit(&page, ALICE, WRONG_PASSWORD).await;
        assert_eq!(refused.status, 401, "attempt {attempt}: {}", refused.body);
    }
    // However the name is spelled, and even with the right password.
    let locked = s.submit(&page, &ALICE.to_uppercase(), PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert_eq!(locked.location, None);
    assert!(locked.alert().contains("Too many failed sign-ins"), "{}", locked.body);

    let back = s.submit(&page, BOB, PASSWORD).await.redirected_to(REDIRECT);
    assert!(!back["code"].is_empty(), "another user of the tenant is not held up");
}
