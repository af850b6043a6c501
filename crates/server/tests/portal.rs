//! The portal pages over HTTP, as a browser meets them: the redirect to sign
//! in, the sign-in form with its anti-forgery cookie, the session cookie,
//! the alert and alert-context pages, tenant isolation and escaping,
//! against a real server on a real port with a real SQLite store.

mod portal_fixture;

use std::collections::HashMap;

use portal_fixture::{ALICE, HOSTILE_URL, MALLORY, PASSWORD, Portal, start, text};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// What a browser keeps between requests: its cookies. Redirects are
/// followed by hand, so each one can be checked.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// One response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("")
    }

    /// The value of the hidden or text field `name` of the page's form.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).unwrap_or_else(|| panic!("no {name}: {}", self.body));
        let rest = &self.body[start + marker.len()..];
        unescape(&rest[..rest.find('"').unwrap()])
    }

    fn sets_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Browser {
    fn new(base: &str) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build();
        Browser { base: base.to_owned(), http: http.unwrap(), cookies: HashMap::new() }
    }

    fn url(&self, target: &str) -> String {
        if target.starts_with("http") {
            target.to_owned()
        } else {
            format!("{}{target}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.header("Cookie", self.cookie_header()).send().await.unwrap();
        let reply = Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        };
        for cookie in reply.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        reply
    }

    async fn get(&mut self, target: &str) -> Reply {
        let request = self.http.get(self.url(target));
        self.send(request).await
    }

    async fn post(&mut self, target: &str, form: &[(&str, &str)]) -> Reply {
        let request = self.http.post(self.url(target)).form(form);
        self.send(request).await
    }

    /// Opens the sign-in page at `target` and submits it.
    async fn sign_in_at(&mut self, target: &str, username: &str, password: &str) -> Reply {
        let page = self.get(target).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let (csrf, back) = (page.field("csrf"), page.field("return"));
        let form =
            [("csrf", &*csrf), ("return", &*back), ("username", username), ("password", password)];
        self.post("/portal/signin", &form).await
    }

    /// Signs in and comes back to the portal's home page.
    async fn signed_in(base: &str, username: &str) -> Browser {
        let mut browser = Browser::new(base);
        let reply = browser.sign_in_at("/portal/signin", username, PASSWORD).await;
        assert_eq!((reply.status, reply.location()), (StatusCode::SEE_OTHER, "/portal"));
        browser
    }
}

/// The path and query of one of the server's own links.
fn path_of<'a>(portal: &Portal, link: &'a str) -> &'a str {
    link.strip_prefix(&portal.base).unwrap_or_else(|| panic!("{link} is not on {}", portal.base))
}

#[tokio::test]
async fn a_link_opens_the_sign_in_page_and_then_the_alert() {
    let portal = start().await;
    let link = text(&portal.hostile, "LinkToWDATP");
    let alert_id = text(&portal.hostile, "AlertId");
    assert_eq!(link, format!("{}/alert/{alert_id}", portal.base));

    let mut browser = Browser::new(&portal.base);
    let first = browser.get(link).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let expected = format!("/portal/signin?return=%2Falert%2F{alert_id}");
    assert_eq!(first.location(), expected);

    let signed_in = browser.sign_in_at(first.location(), ALICE, PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location(), format!("/alert/{alert_id}"));
    let cookie = signed_in.sets_cookie("siemgate_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "served over http");

    let page = browser.get(link).await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in [
        "Suspicious PowerShell command line",
        "Detection 1 of 2",
        "Detection 2 of 2",
        "powershell.exe",
        "payload.dll",
        "Trojan:Win32/Fakeload.A",
        "quarantine",
        "a3f5c8e2b1d4f6a7c9e0b2d4f6a8c0e2b4d6f8a1",
        "203.0.113.9",
        "pc1.contoso.com",
        "Finance Laptops",
        text(&portal.hostile, "FullId"),
        text(&portal.hostile_part_1, "FullId"),
        text(&portal.hostile, "LastProcessedTimeUtc"),
    ] {
        assert!(page.body.contains(shown), "the alert page lacks {shown:?}");
    }
    assert!(page.body.find("powershell.exe").unwrap() < page.body.find("payload.dll").unwrap());
    let headers = &page.headers;
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_the_error() {
    let portal = start().await;
    let mut browser = Browser::new(&portal.base);
    let reply =
        browser.sign_in_at("/portal/signin?return=/portal", ALICE, "not the password").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.body.contains("The user name or password is incorrect"), "{}", reply.body);
    assert_eq!(reply.field("username"), ALICE, "the user name stays filled in");
    assert!(reply.sets_cookie("siemgate_session").is_none());

    let unknown = browser.sign_in_at("/portal/signin", "nobody@contoso.onmicrosoft.com", PASSWORD);
    let unknown = unknown.await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let no_tenant = browser.sign_in_at("/portal/signin", "alice@nowhere.example", PASSWORD).await;
    assert_eq!(no_tenant.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_organization_field_finds_the_tenant_of_a_name_without_its_domain() {
    let portal = start().await;
    let mut browser = Browser::new(&portal.base);
    let page = browser.get("/portal/signin").await;
    let csrf = page.field("csrf");
    let form = [
        ("csrf", &*csrf),
        ("return", "/portal"),
        ("username", ALICE),
        ("password", PASSWORD),
        ("organization", "Contoso"),
    ];
    let reply = browser.post("/portal/signin", &form).await;
    assert_eq!((reply.status, reply.location()), (StatusCode::SEE_OTHER, "/portal"));
    let home = browser.get("/portal").await;
    assert!(home.body.contains("Alice Example") && home.body.contains("contoso"));
}

#[tokio::test]
async fn another_tenants_alert_is_the_same_404_as_no_alert() {
    let portal = start().await;
    let mut mallory = Browser::signed_in(&portal.base, MALLORY).await;
    let theirs = mallory.get(path_of(&portal, text(&portal.foreign, "LinkToWDATP"))).await;
    assert_eq!(theirs.status, StatusCode::OK, "Fabrikam's own alert");

    let contoso_id = text(&portal.hostile, "AlertId");
    let foreign = mallory.get(&format!("/alert/{contoso_id}")).await;
    let unknown_id = "da638501004000000000_42";
    let unknown = mallory.get(&format!("/alert/{unknown_id}")).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.body.replace(contoso_id, "ID"), unknown.body.replace(unknown_id, "ID"));
    assert!(!foreign.body.contains("Suspicious PowerShell"));

    let context = mallory.get(&format!("/incidents/byalert?alertId={contoso_id}")).await;
    assert_eq!(context.status, StatusCode::NOT_FOUND);
    for bad in ["/alert/not-an-alert-id", "/alert/%3Cscript%3E", "/incidents/byalert"] {
        let reply = mallory.get(bad).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(!reply.body.contains("<script>"), "{}", reply.body);
    }
}

#[tokio::test]
async fn attacker_text_is_escaped_and_a_url_is_never_a_link() {
    let portal = start().await;
    let mut alice = Browser::signed_in(&portal.base, ALICE).await;
    let page = alice.get(path_of(&portal, text(&portal.hostile, "LinkToWDATP"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("-c &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot; &amp; whoami"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script"), "no markup from a detection survives");
    assert!(page.body.contains(&format!(">{HOSTILE_URL}</td>")), "the URL is shown as text");
    assert!(!page.body.to_lowercase().contains("href=\"javascript"));
    let hrefs: Vec<&str> = page.body.split("href=\"").skip(1).collect();
    assert!(hrefs.iter().all(|h| h.starts_with('/')), "only links to the server's own pages");
}

#[tokio::test]
async fn return_is_only_ever_a_path_on_this_server() {
    let portal = start().await;
    let mut browser = Browser::new(&portal.base);
    for evil in ["https://evil.example", "//evil.example/alert", "/\\evil.example"] {
        let query: String = form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let target = format!("/portal/signin?return={query}");
        let page = browser.get(&target).await;
        assert_eq!(page.field("return"), "/portal", "the form does not carry {evil}");

        let csrf = page.field("csrf");
        let form =
            [("csrf", &*csrf), ("return", evil), ("username", ALICE), ("password", PASSWORD)];
        let reply = browser.post("/portal/signin", &form).await;
        assert_eq!((reply.status, reply.location()), (StatusCode::SEE_OTHER, "/portal"), "{evil}");
    }
}

#[tokio::test]
async fn a_sign_in_without_the_forms_cookie_is_refused() {
    let portal = start().await;
    let mut browser = Browser::new(&portal.base);
    let page = browser.get("/portal/signin").await;
    let csrf = page.field("csrf");

    let forged =
        [("csrf", "A".repeat(43)), ("username", ALICE.into()), ("password", PASSWORD.into())];
    let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = browser.post("/portal/signin", &forged).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("This sign-in form has expired"), "{}", reply.body);
    assert!(reply.sets_cookie("siemgate_session").is_none());

    // Another site's form: the right token, perhaps, but no cookie with it.
    let mut elsewhere = Browser::new(&portal.base);
    let form = [("csrf", &*csrf), ("username", ALICE), ("password", PASSWORD)];
    let reply = elsewhere.post("/portal/signin", &form).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.sets_cookie("siemgate_session").is_none());
}

#[tokio::test]
async fn the_context_page_shows_the_device_and_its_other_alerts() {
    let portal = start().await;
    let mut alice = Browser::signed_in(&portal.base, ALICE).await;
    let link = text(&portal.hostile, "IncidentLinkToWDATP");
    let alert_id = text(&portal.hostile, "AlertId");
    assert_eq!(link, format!("{}/incidents/byalert?alertId={alert_id}&source=SIEM", portal.base));
    let page = alice.get(path_of(&portal, link)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for shown in [
        "Suspicious PowerShell command line",
        "pc1.contoso.com",
        "contoso.com",
        "Finance Laptops",
        "VIP, Laptop",
        "Prod",
        "CONTOSO\\svc-backup",
        "10.1.2.7, 10.1.2.8",
        "fe80::7",
        text(&portal.hostile, "DeviceID"),
        &format!("href=\"/alert/{alert_id}\""),
        "Ransomware behaviour detected",
        &format!("href=\"/alert/{}\"", text(&portal.older, "AlertId")),
    ] {
        assert!(page.body.contains(shown), "the context page lacks {shown:?}");
    }
    assert!(!page.body.contains("Credential theft on another device"), "another device's");
    assert!(!page.body.contains("Fabrikam"), "another tenant's");
    let mtp = alice.get(path_of(&portal, text(&portal.hostile, "IncidentLinkToMTP"))).await;
    assert_eq!(mtp.status, StatusCode::OK);
}

#[tokio::test]
async fn paths_and_parameters_are_matched_in_the_spellings_links_use() {
    let portal = start().await;
    let mut alice = Browser::signed_in(&portal.base, ALICE).await;
    let id = text(&portal.older, "AlertId");
    for target in [
        format!("/Alert/{id}"),
        format!("/alert/{id}?tab=overview"),
        format!("/incidents/byAlert?AlertId={id}&source=SecurityCenter&requestSource=SiemApi"),
    ] {
        let page = alice.get(&target).await;
        assert_eq!(page.status, StatusCode::OK, "{target}");
        assert!(page.body.contains("Ransomware behaviour detected"), "{target}");
    }
}

#[tokio::test]
async fn a_session_works_on_every_server_sharing_the_store_and_nowhere_else() {
    let portal = start().await;
    let alice = Browser::signed_in(&portal.base, ALICE).await;
    let replica = portal.replica().await;
    let mut on_replica = Browser::new(&replica);
    on_replica.cookies = alice.cookies.clone();
    let page = on_replica.get(&format!("/alert/{}", text(&portal.older, "AlertId"))).await;
    assert_eq!(page.status, StatusCode::OK, "a session from one replica is good on another");

    // The session token is no bearer token for the SIEM API.
    let token = &alice.cookies["siemgate_session"];
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let refused = portal.state.authenticate(&headers).await.unwrap_err();
    assert!(refused.to_string().contains("audience"), "{refused}");

    // Nor is anything else a session: a tampered token sends the browser to sign in.
    let mut tampered = Browser::new(&portal.base);
    let (head, rest) = token.split_once('.').unwrap();
    let forged_claims = rest.replacen('e', "f", 1);
    tampered.cookies.insert("siemgate_session".into(), format!("{head}.{forged_claims}"));
    let reply = tampered.get("/portal").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_out_or_losing_the_user_ends_the_session() {
    let portal = start().await;
    let mut alice = Browser::signed_in(&portal.base, ALICE).await;
    let token = alice.cookies["siemgate_session"].clone();
    let out = alice.post("/portal/signout", &[]).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/portal/signin"));
    assert!(out.sets_cookie("siemgate_session").unwrap().contains("Max-Age=0"));
    assert_eq!(alice.get("/portal").await.status, StatusCode::SEE_OTHER);

    let mut kept = Browser::new(&portal.base);
    kept.cookies.insert("siemgate_session".into(), token);
    assert_eq!(kept.get("/portal").await.status, StatusCode::OK, "the token itself lives on");
    portal.store.remove_user(portal.contoso, ALICE).await.unwrap();
    let gone = kept.get("/portal").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "a removed user's session ends");
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled() {
    let portal = start().await;
    let mut browser = Browser::new(&portal.base);
    for _ in 0..10 {
        let reply = browser.sign_in_at("/portal/signin", ALICE, "wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let blocked = browser.sign_in_at("/portal/signin", ALICE, PASSWORD).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(blocked.body.contains("Too many failed sign-ins"), "{}", blocked.body);
    assert!(blocked.sets_cookie("siemgate_session").is_none());
}
