//! `siemgate serve` as an operator and a SIEM engineer meet it: the demo's
//! printed curl lines and the reference page's Bash scripts run as written,
//! request logs that name the caller and never a secret, settings from a
//! TOML file, and retention in the background.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, Served, ndjson, record};

/// The word after `label` on the printed line that starts with `line`.
fn printed_word(served: &Served, line: &str, label: &str) -> String {
    let line = served.printed.iter().find(|l| l.starts_with(line)).unwrap();
    let mut words = line.split_whitespace();
    words.find(|w| *w == label).unwrap();
    words.next().unwrap().to_owned()
}

/// The demo tenant's id: `demo tenant    demo (GUID), ...`.
fn demo_tenant(served: &Served) -> String {
    let line = served.printed.iter().find(|l| l.starts_with("demo tenant")).unwrap();
    line.split(['(', ')']).nth(1).unwrap().to_owned()
}

fn bash(script: &str, dir: &std::path::Path, ca: &std::path::Path) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        // curl's own way to trust a CA, so the scripts stay as written.
        .env("CURL_CA_BUNDLE", ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_demo_prints_curl_lines_that_work_as_printed() {
    let env = Env::new();
    let tls = env.dir.path().join("tls");
    let served = env.serve(&["--demo", "--tls-dir", tls.to_str().unwrap()]);
    let lines: Vec<&str> = served
        .printed
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl ") || l.starts_with("TOKEN="))
        .collect();
    assert_eq!(lines.len(), 3, "{:#?}", served.printed);
    let ca = served.ca_file.clone().unwrap();

    let token_answer: serde_json::Value =
        serde_json::from_str(&bash(lines[0], env.dir.path(), &ca)).unwrap();
    assert_eq!(token_answer["token_type"], "Bearer");
    let alerts = bash(&format!("{}\n{}", lines[1], lines[2]), env.dir.path(), &ca);
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&alerts).unwrap();
    assert!(alerts.len() >= 300, "the demo's detections: {}", alerts.len());
    let link = alerts[0]["LinkToWDATP"].as_str().unwrap();
    assert!(link.starts_with(&format!("{}/alert/da", served.https)), "{link}");
}

#[test]
fn the_reference_pages_bash_scripts_print_alerts_from_the_demo() {
    let env = Env::new();
    let tls = env.dir.path().join("tls");
    let served = env.serve(&["--demo", "--tls-dir", tls.to_str().unwrap()]);
    let tenant = demo_tenant(&served);
    let client_id = printed_word(&served, "demo app", "id");
    let secret = printed_word(&served, "demo app", "secret");

    // The page's first script, with its blanks and its URL filled in.
    let get_token = r#"tenantId='TENANT' ### Paste your tenant ID here
appId='APP' ### Paste your Application ID here
appSecret='SECRET' ### Paste your Application secret here
resourceAppIdUri='https://graph.windows.net'
oAuthUri="BASE/$tenantId/oauth2/token"
scriptDir=$(pwd)

apiResponse=$(curl -s X POST "$oAuthUri" -d "resource=$resourceAppIdUri&client_id=$appId&client_secret=$appSecret&\
        grant_type=client_credentials"|cut -d "{" -f2|cut -d "}" -f1)
IFS=","
apiResponseArr=($apiResponse)
IFS=":"
tokenArr=(${apiResponseArr[6]})
echo ${tokenArr[1]}|cut -d "\"" -f2|cut -d "\"" -f1 >> $scriptDir/LatestSIEM-token.txt
"#
    .replace("TENANT", &tenant)
    .replace("APP", &client_id)
    .replace("SECRET", &secret)
    .replace("BASE", &served.https);
    let ca = served.ca_file.clone().unwrap();
    bash(&get_token, env.dir.path(), &ca);
    let token = std::fs::read_to_string(env.dir.path().join("LatestSIEM-token.txt")).unwrap();
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    // The page's second script, with its URL pointed here.
    let get_alerts = r#"#Get current working directory
scriptDir=$(pwd)

#get the token
token=$(<$scriptDir/LatestSIEM-token.txt)

#test the SIEM API, get alerts since 1/1/2020
url='BASE/api/alerts?limit=20&sinceTimeUtc=2020-01-01T00:00:00.000'

#send web requst to API and echo JSON content
apiResponse=$(curl -s X GET "$url" -H "Content-Type: application/json" -H "Accept: application/json"\
         -H "Authorization: Bearer $token"|cut -d "[" -f2|cut -d "]" -f1)
echo "If you see Alert info in JSON format, congratulations you accessed the MDATP SIEM API!"
echo
echo $apiResponse
"#
    .replace("BASE", &served.https);
    let out = bash(&get_alerts, env.dir.path(), &ca);
    assert!(out.contains("congratulations"), "{out}");
    let printed = out.lines().last().unwrap();
    assert!(printed.starts_with("{\"AlertTime\":"), "alerts as JSON: {printed}");
    assert!(printed.matches("\"AlertTitle\":").count() >= 1, "{printed}");
}

/// A v1 token for the app `app add --json` printed, fetched with curl.
fn token(base: &str, tenant: &str, app: &serde_json::Value) -> String {
    let (id, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());
    common::client_token(base, tenant, id, secret).unwrap()
}

fn curl_alerts(base: &str, token: &str, query: &str) -> Vec<serde_json::Value> {
    let out = Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{base}/api/alerts{query}"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn add_app(env: &Env, tenant: &str) -> serde_json::Value {
    let out = env.ok(&["app", "add", "-t", tenant, "--name", "splunk", "--json"]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn request_logs_name_route_tenant_and_app_and_never_a_secret_or_token() {
    let env = Env::new();
    let tenant = env.add_tenant("contoso");
    let app = add_app(&env, "contoso");
    let served = env.serve(&["--http", "127.0.0.1:0", "--log", "info", "--log-format", "json"]);
    let base = served.http.clone().unwrap();
    let token = token(&base, &tenant, &app);
    assert!(curl_alerts(&base, &token, "?ago=PT1H").is_empty());

    let log = served.log_text();
    let answered: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "answered")
        .collect();
    let api = answered
        .iter()
        .find(|l| l["span"]["route"] == "/api/alerts")
        .unwrap_or_else(|| panic!("no request line for /api/alerts in\n{log}"));
    assert_eq!(api["fields"]["status"], 200);
    assert!(api["fields"]["latency_ms"].is_number());
    assert_eq!(api["span"]["tenant"], tenant.as_str());
    assert_eq!(api["span"]["app"], app["client_id"]);
    assert!(answered.iter().any(|l| l["span"]["route"] == "/{tenant}/oauth2/token"));
    assert!(!log.contains(app["client_secret"].as_str().unwrap()), "the secret was logged");
    assert!(!log.contains(&token), "the token was logged");
    assert!(!log.contains(token.split('.').nth(2).unwrap()), "the token's signature was logged");
}

#[test]
fn settings_come_from_a_toml_file_under_flags_and_unknown_keys_are_refused() {
    let env = Env::new();
    let config = env.file(
        "siemgate.toml",
        "public_url = \"https://gate.example.com:8443\"\nrate_limit = 5.0\n",
    );
    let served = env.serve(&["--config", &config]);
    assert!(served.printed[0].ends_with("(public URL https://gate.example.com:8443)"));
    drop(served);
    let served = env.serve(&["--config", &config, "--public-url", "https://flag.example.com"]);
    assert!(served.printed[0].ends_with("(public URL https://flag.example.com)"), "flags win");
    drop(served);

    let bad = env.file("bad.toml", "retension = \"P30D\"\n");
    let error = env.fails(&["serve", "--https", "127.0.0.1:0", "--config", &bad]);
    assert!(error.contains("bad.toml"), "{error}");
    assert!(error.contains("unknown field `retension`"), "{error}");
    assert!(error.contains("retention"), "names the keys there are: {error}");
    let bad = env.file("bad2.toml", "rate_limit = \"fast\"\n");
    let error = env.fails(&["serve", "--https", "127.0.0.1:0", "--config", &bad]);
    assert!(error.contains("rate_limit"), "{error}");
}

#[test]
fn retention_purges_old_detections_in_the_background() {
    let env = Env::new();
    env.add_tenant("contoso");
    let old = Command::new("date")
        .args(["-u", "-d", "40 days ago", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    let old = String::from_utf8(old.stdout).unwrap();
    let file = env.file(
        "mixed.ndjson",
        &ndjson(&[record("old", old.trim()), record("recent", "2099-01-01T00:00:00Z")]),
    );
    env.ok(&["ingest", "-t", "contoso", "--keep-processed-time", &file]);
    assert_eq!(env.stored_full_ids().len(), 2);

    let _served = env.serve(&["--retention", "P30D"]);
    let started = Instant::now();
    while env.stored_full_ids().len() == 2 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = env.alerts("contoso", &["--since", "2000-01-01", "--until", "2100-01-01"]);
    assert_eq!(common::titles(&left), ["recent"]);
}
