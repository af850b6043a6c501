//! Behaviour every `Store` backend must show, written once against the trait
//! and run against each backend: SQLite, and PostgreSQL at the server that
//! `SIEMGATE_TEST_POSTGRES` names (default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`, as `.ci/run` sets
//! it up). Without that server the PostgreSQL half fails, saying how to start
//! it; it is never skipped.
//!
//! Each test takes a freshly opened store (for PostgreSQL, in a schema of its
//! own, dropped afterwards) whose clock the test moves by hand, so the
//! `LastProcessedTimeUtc` of every batch is known exactly.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use futures_util::StreamExt;
use siemgate_model::prepare::{PrepareOptions, prepare};
use siemgate_model::{AlertsQuery, Detection, Prepared, Timestamp};
use siemgate_store::copy::{Census, CopyError, copy_store};
use siemgate_store::{
    AppSecret, AuthCode, Clock, CodeRedemption, DetectionKey, DetectionRow, Framing, NewApp,
    NewTenant, PostgresStore, RefreshGrant, ScratchSchema, Sealed, SqliteStore, Store, StoreError,
    StoredKey, TenantState, User,
};
use uuid::Uuid;

/// Instantiates each behaviour once per backend, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! store_suite {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(super::Fixture::sqlite().await).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(super::Fixture::postgres().await).await;
                }
            )*
        }
    };
}

store_suite!(
    window_is_since_inclusive_until_exclusive_with_ties_kept_together,
    limit_keeps_the_newest_and_delivers_them_oldest_first,
    limit_cuts_a_tie_by_full_id,
    a_large_limit_cuts_like_a_small_one,
    filters_on_groups_and_tags,
    resending_a_batch_stores_nothing_twice,
    tenants_never_see_each_others_detections,
    an_alerts_detections_come_by_part_and_only_to_their_tenant,
    a_devices_alerts_come_newest_first_bounded_and_per_tenant,
    processed_time_never_goes_back_when_the_clock_does,
    purge_removes_only_what_is_older_than_the_cutoff,
    tenants_are_found_by_id_domain_or_name_and_change_state,
    ndjson_framing_and_an_abandoned_stream,
    an_archive_import_keeps_its_times_and_leaves_the_clock_alone,
    apps_keep_roles_redirects_and_several_secrets,
    users_are_per_tenant_and_found_ignoring_case,
    an_authorization_code_is_spent_once_and_a_replay_revokes_its_tokens,
    a_refresh_token_is_taken_once_and_dies_with_its_app_user_or_password,
    rotating_keys_retires_the_signing_one,
    a_copy_reads_back_the_same_registry_windows_and_stamps,
    pages_of_detections_come_in_delivery_order_and_the_last_is_short,
    a_store_that_is_not_empty_refuses_an_import,
    imported_stamps_move_the_last_stamp_up_to_the_clock_only,
);

/// The server the PostgreSQL half runs against.
fn postgres_url() -> String {
    std::env::var("SIEMGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// Fails the test with what to do when the PostgreSQL server is missing.
fn no_postgres(e: StoreError) -> ! {
    panic!(
        "the PostgreSQL half of the store suite needs a server: {e}\n\
         start one with `pg_ctlcluster 15 main start` as root (`.ci/run` does this and sets \
         the postgres user's password to `postgres`), or point SIEMGATE_TEST_POSTGRES at \
         another server"
    )
}

/// A clock the test moves by hand, starting at 2024-05-01T10:00:00Z.
fn hand_clock() -> (Arc<AtomicI64>, Clock) {
    let hand = Arc::new(AtomicI64::new(t("2024-05-01T10:00:00Z").unix_ticks()));
    let reader = Arc::clone(&hand);
    (hand, Arc::new(move || Timestamp::from_unix_ticks(reader.load(Ordering::SeqCst))))
}

/// A store and the hand on its clock.
struct Fixture {
    store: Arc<dyn Store>,
    clock: Arc<AtomicI64>,
    tenant: Uuid,
    backend: Backend,
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A new, empty store of `backend` whose clock reads `hand`.
async fn empty_store(backend: Backend, hand: &Arc<AtomicI64>) -> Arc<dyn Store> {
    let reader = Arc::clone(hand);
    let clock: Clock = Arc::new(move || Timestamp::from_unix_ticks(reader.load(Ordering::SeqCst)));
    match backend {
        Backend::Sqlite => Arc::new(SqliteStore::ephemeral_with_clock(clock).await.unwrap()),
        Backend::Postgres => Arc::new(
            PostgresStore::scratch_with_clock(&postgres_url(), clock)
                .await
                .unwrap_or_else(|e| no_postgres(e)),
        ),
    }
}

impl Fixture {
    async fn sqlite() -> Fixture {
        Fixture::with(Backend::Sqlite).await
    }

    async fn postgres() -> Fixture {
        Fixture::with(Backend::Postgres).await
    }

    async fn with(backend: Backend) -> Fixture {
        let (hand, _) = hand_clock();
        let store = empty_store(backend, &hand).await;
        let tenant = add_tenant(&*store, "contoso").await;
        Fixture { store, clock: hand, tenant, backend }
    }

    /// Another new, empty store of the fixture's backend, on the same clock.
    async fn empty_twin(&self) -> Arc<dyn Store> {
        empty_store(self.backend, &self.clock).await
    }

    fn set_clock(&self, at: &str) {
        self.clock.store(t(at).unix_ticks(), Ordering::SeqCst);
    }

    async fn ingest_at(&self, at: &str, batch: Vec<Prepared>) -> (u64, u64) {
        self.set_clock(at);
        let report = self.store.ingest(self.tenant, batch).await.unwrap();
        (report.stored, report.duplicates)
    }

    async fn window(&self, pairs: &[(&str, &str)]) -> Vec<serde_json::Value> {
        fetch(&*self.store, self.tenant, pairs).await
    }
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

async fn add_tenant(store: &dyn Store, name: &str) -> Uuid {
    let new = NewTenant {
        id: Uuid::new_v4(),
        name: name.into(),
        domains: vec![format!("{name}.onmicrosoft.com")],
    };
    store.create_tenant(new).await.unwrap().id
}

async fn fetch(store: &dyn Store, tenant: Uuid, pairs: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let query = AlertsQuery::from_pairs(pairs.iter().copied(), t("2024-05-02T00:00:00Z")).unwrap();
    let mut stream = store.stream(tenant, &query, Framing::JsonArray).await.unwrap();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap().bytes);
    }
    serde_json::from_slice(&body).unwrap()
}

/// A detection titled `title`, with optional group and tags.
fn detection(title: &str, group: &str, device_tags: &str, cloud_tags: &str) -> Prepared {
    let d = Detection {
        alert_time: Some(t("2024-05-01T09:00:00Z")),
        alert_title: title.into(),
        severity: "Medium".into(),
        computer_dns_name: "pc1.contoso.com".into(),
        machine_group: group.into(),
        device_created_machine_tags: device_tags.into(),
        cloud_created_machine_tags: cloud_tags.into(),
        ..Detection::default()
    };
    let options =
        PrepareOptions { portal_url: "https://gate.test".into(), keep_processed_time: false };
    prepare(d, &options).unwrap()
}

fn titles(rows: &[serde_json::Value]) -> Vec<&str> {
    rows.iter().map(|r| r["AlertTitle"].as_str().unwrap()).collect()
}

fn plain(title: &str) -> Prepared {
    detection(title, "", "", "")
}

async fn window_is_since_inclusive_until_exclusive_with_ties_kept_together(f: Fixture) {
    f.ingest_at("2024-05-01T10:00:00Z", vec![plain("a1")]).await;
    f.ingest_at("2024-05-01T11:00:00Z", vec![plain("b1"), plain("b2"), plain("b3")]).await;
    f.ingest_at("2024-05-01T12:00:00Z", vec![plain("c1")]).await;

    let rows = f
        .window(&[
            ("sinceTimeUtc", "2024-05-01T11:00:00Z"),
            ("untilTimeUtc", "2024-05-01T12:00:00Z"),
        ])
        .await;
    let mut got = titles(&rows);
    got.sort();
    assert_eq!(got, ["b1", "b2", "b3"], "the tie at `since` is in, `until` is out");
    for row in &rows {
        assert_eq!(row["LastProcessedTimeUtc"], "2024-05-01T11:00:00Z");
    }
    let full_ids: Vec<&str> = rows.iter().map(|r| r["FullId"].as_str().unwrap()).collect();
    assert!(full_ids.is_sorted(), "ties are ordered by FullId");

    let rows = f
        .window(&[
            ("sinceTimeUtc", "2024-05-01T11:00:00.0000001Z"),
            ("untilTimeUtc", "2024-05-01T12:00:00.0000001Z"),
        ])
        .await;
    assert_eq!(titles(&rows), ["c1"]);
}

async fn limit_keeps_the_newest_and_delivers_them_oldest_first(f: Fixture) {
    for (i, at) in ["10:00", "10:01", "10:02", "10:03", "10:04"].iter().enumerate() {
        f.ingest_at(&format!("2024-05-01T{at}:00Z"), vec![plain(&format!("d{i}"))]).await;
    }
    let rows = f.window(&[("sinceTimeUtc", "2024-05-01"), ("limit", "2")]).await;
    assert_eq!(titles(&rows), ["d3", "d4"]);
    let rows = f.window(&[("sinceTimeUtc", "2024-05-01"), ("limit", "50")]).await;
    assert_eq!(titles(&rows), ["d0", "d1", "d2", "d3", "d4"]);
}

async fn limit_cuts_a_tie_by_full_id(f: Fixture) {
    f.ingest_at("2024-05-01T10:00:00Z", (0..6).map(|i| plain(&format!("t{i}"))).collect()).await;
    let all = f.window(&[("sinceTimeUtc", "2024-05-01")]).await;
    let rows = f.window(&[("sinceTimeUtc", "2024-05-01"), ("limit", "4")]).await;
    assert_eq!(rows, all[2..], "the newest four are the last four in FullId order");
}

/// Limits on either side of 256, which PostgreSQL answers in one statement
/// up to and through a portal beyond, cut the same way.
async fn a_large_limit_cuts_like_a_small_one(f: Fixture) {
    f.ingest_at("2024-05-01T10:00:00Z", (0..200).map(|i| plain(&format!("a{i:03}"))).collect())
        .await;
    f.ingest_at("2024-05-01T10:01:00Z", (0..200).map(|i| plain(&format!("b{i:03}"))).collect())
        .await;
    let all = f.window(&[("sinceTimeUtc", "2024-05-01")]).await;
    assert_eq!(all.len(), 400);
    for limit in [255, 256, 257, 300, 399, 400, 401] {
        let text = limit.to_string();
        let rows = f.window(&[("sinceTimeUtc", "2024-05-01"), ("limit", &text)]).await;
        assert_eq!(rows, all[400 - limit.min(400)..], "limit {limit}");
    }
}

async fn filters_on_groups_and_tags(f: Fixture) {
    let batch = vec![
        detection("uk", "UK Machines", "VIP, Finance", "Prod"),
        detection("fr", "France Machines", "Finance", "Test"),
        detection("de", "Germany", "", "Prod;Test"),
    ];
    f.ingest_at("2024-05-01T10:00:00Z", batch).await;
    let sorted = |rows: Vec<serde_json::Value>| {
        let mut got: Vec<String> = titles(&rows).into_iter().map(String::from).collect();
        got.sort();
        got
    };
    let since = ("sinceTimeUtc", "2024-05-01");
    let q = f
        .window(&[since, ("machinegroups", "uk machines"), ("MachineGroups", "FRANCE MACHINES")])
        .await;
    assert_eq!(sorted(q), ["fr", "uk"]);
    assert_eq!(sorted(f.window(&[since, ("DeviceCreatedMachineTags", "vip")]).await), ["uk"]);
    assert_eq!(
        sorted(f.window(&[since, ("DeviceCreatedMachineTags", "Fin")]).await),
        Vec::<String>::new()
    );
    assert_eq!(sorted(f.window(&[since, ("CloudCreatedMachineTags", "test")]).await), ["de", "fr"]);
    let q =
        f.window(&[since, ("CloudCreatedMachineTags", "Prod"), ("machinegroups", "Germany")]).await;
    assert_eq!(sorted(q), ["de"]);
}

async fn resending_a_batch_stores_nothing_twice(f: Fixture) {
    let batch = vec![plain("x"), plain("y"), plain("x")];
    assert_eq!(f.ingest_at("2024-05-01T10:00:00Z", batch.clone()).await, (2, 1));
    assert_eq!(f.ingest_at("2024-05-01T10:05:00Z", batch).await, (0, 3));
    assert_eq!(f.store.detection_count(f.tenant).await.unwrap(), 2);
    let rows = f.window(&[("sinceTimeUtc", "2024-05-01")]).await;
    assert!(rows.iter().all(|r| r["LastProcessedTimeUtc"] == "2024-05-01T10:00:00Z"));
}

async fn tenants_never_see_each_others_detections(f: Fixture) {
    let other = add_tenant(&*f.store, "fabrikam").await;
    f.ingest_at("2024-05-01T10:00:00Z", vec![plain("mine")]).await;
    f.store.ingest(other, vec![plain("theirs"), plain("mine")]).await.unwrap();
    assert_eq!(titles(&f.window(&[("sinceTimeUtc", "2024-05-01")]).await), ["mine"]);
    let theirs = fetch(&*f.store, other, &[("sinceTimeUtc", "2024-05-01")]).await;
    assert_eq!(theirs.len(), 2, "the same FullId in another tenant is not a duplicate");
}

/// Indicator `part` of alert `alert_id`, raised on the machine `device`.
fn indicator(alert_id: &str, part: u32, device: &str) -> Prepared {
    let d = Detection {
        alert_time: Some(t("2024-05-01T09:00:00Z")),
        alert_title: format!("alert {alert_id}"),
        severity: "High".into(),
        alert_id: alert_id.into(),
        alert_part: part,
        file_name: format!("part{part}.exe"),
        computer_dns_name: format!("{device}.contoso.com"),
        ..Detection::default()
    };
    let options =
        PrepareOptions { portal_url: "https://gate.test".into(), keep_processed_time: false };
    prepare(d, &options).unwrap()
}

fn parsed(bodies: &[Vec<u8>]) -> Vec<serde_json::Value> {
    bodies.iter().map(|b| serde_json::from_slice(b).unwrap()).collect()
}

const ALERT_A: &str = "da638501004000000000_1";
const ALERT_B: &str = "da638501004000000000_2";
const ALERT_C: &str = "da638501004000000000_3";

async fn an_alerts_detections_come_by_part_and_only_to_their_tenant(f: Fixture) {
    let batch = vec![indicator(ALERT_A, 2, "pc1"), indicator(ALERT_A, 0, "pc1")];
    f.ingest_at("2024-05-01T10:00:00Z", batch).await;
    f.ingest_at("2024-05-01T10:01:00Z", vec![indicator(ALERT_A, 1, "pc1")]).await;
    f.ingest_at("2024-05-01T10:02:00Z", vec![indicator(ALERT_B, 0, "pc1")]).await;

    let rows = parsed(&f.store.alert_detections(f.tenant, ALERT_A).await.unwrap());
    let parts: Vec<_> = rows.iter().map(|r| r["AlertPart"].as_u64().unwrap()).collect();
    assert_eq!(parts, [0, 1, 2]);
    assert!(rows.iter().all(|r| r["AlertId"] == ALERT_A));
    assert_eq!(rows[1]["LinkToWDATP"], format!("https://gate.test/alert/{ALERT_A}"));

    let other = add_tenant(&*f.store, "fabrikam").await;
    assert!(f.store.alert_detections(other, ALERT_A).await.unwrap().is_empty());
    assert!(f.store.alert_detections(f.tenant, ALERT_C).await.unwrap().is_empty());
    assert!(f.store.alert_detections(f.tenant, "").await.unwrap().is_empty());
}

async fn a_devices_alerts_come_newest_first_bounded_and_per_tenant(f: Fixture) {
    f.ingest_at("2024-05-01T10:00:00Z", vec![indicator(ALERT_A, 0, "pc1")]).await;
    f.ingest_at("2024-05-01T10:01:00Z", vec![indicator(ALERT_B, 0, "pc1")]).await;
    f.ingest_at("2024-05-01T10:02:00Z", vec![indicator(ALERT_C, 0, "pc2")]).await;
    f.ingest_at("2024-05-01T10:03:00Z", vec![indicator(ALERT_A, 1, "pc1")]).await;
    let device = indicator(ALERT_A, 0, "pc1").device_id;

    let alerts = f.store.device_alerts(f.tenant, &device, 10).await.unwrap();
    let ids: Vec<&str> = alerts.iter().map(|a| a.alert_id.as_str()).collect();
    assert_eq!(ids, [ALERT_A, ALERT_B], "A has the newest detection; C is another device's");
    assert_eq!(alerts[0].detections, 2);
    assert_eq!(alerts[0].latest, t("2024-05-01T10:03:00Z"));
    let body: serde_json::Value = serde_json::from_slice(&alerts[0].body).unwrap();
    assert_eq!(
        (body["AlertId"].as_str(), body["DeviceID"].as_str()),
        (Some(ALERT_A), Some(&*device))
    );

    let newest = f.store.device_alerts(f.tenant, &device, 1).await.unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].alert_id, ALERT_A);

    let other = add_tenant(&*f.store, "fabrikam").await;
    assert!(f.store.device_alerts(other, &device, 10).await.unwrap().is_empty());
    assert!(f.store.device_alerts(f.tenant, "", 10).await.unwrap().is_empty());
}

async fn processed_time_never_goes_back_when_the_clock_does(f: Fixture) {
    f.ingest_at("2024-05-01T12:00:00Z", vec![plain("first")]).await;
    f.ingest_at("2024-05-01T11:00:00Z", vec![plain("second")]).await;
    f.ingest_at("2024-05-01T11:00:00Z", vec![plain("third")]).await;
    let rows = f.window(&[("sinceTimeUtc", "2024-05-01")]).await;
    assert_eq!(titles(&rows), ["first", "second", "third"]);
    let stamps: Vec<Timestamp> =
        rows.iter().map(|r| t(r["LastProcessedTimeUtc"].as_str().unwrap())).collect();
    assert!(stamps[0] < stamps[1] && stamps[1] < stamps[2], "{stamps:?}");
}

async fn purge_removes_only_what_is_older_than_the_cutoff(f: Fixture) {
    f.ingest_at("2024-05-01T10:00:00Z", vec![plain("old1"), plain("old2")]).await;
    f.ingest_at("2024-05-01T12:00:00Z", vec![plain("new")]).await;
    assert_eq!(f.store.purge_before(t("2024-05-01T12:00:00Z")).await.unwrap(), 2);
    assert_eq!(titles(&f.window(&[("sinceTimeUtc", "2024-05-01")]).await), ["new"]);
}

async fn tenants_are_found_by_id_domain_or_name_and_change_state(f: Fixture) {
    let by_id = f.store.find_tenant(&f.tenant.to_string()).await.unwrap().unwrap();
    let by_domain = f.store.find_tenant("CONTOSO.onmicrosoft.com").await.unwrap().unwrap();
    let by_name = f.store.find_tenant("Contoso").await.unwrap().unwrap();
    assert_eq!(by_id, by_domain);
    assert_eq!(by_id, by_name);
    assert!(f.store.find_tenant("nobody").await.unwrap().is_none());

    let deleted = f.store.set_tenant_state(f.tenant, TenantState::Deleted).await.unwrap();
    assert_eq!(deleted.state, TenantState::Deleted);
    let dup = NewTenant { id: Uuid::new_v4(), name: "CONTOSO".into(), domains: vec![] };
    assert!(matches!(f.store.create_tenant(dup).await, Err(StoreError::TenantExists(_))));
}

async fn ndjson_framing_and_an_abandoned_stream(f: Fixture) {
    f.ingest_at("2024-05-01T10:00:00Z", (0..3000).map(|i| plain(&format!("n{i}"))).collect()).await;
    let query =
        AlertsQuery::from_pairs([("sinceTimeUtc", "2024-05-01")], t("2024-05-02T00:00:00Z"))
            .unwrap();

    let mut stream = f.store.stream(f.tenant, &query, Framing::Ndjson).await.unwrap();
    let (mut body, mut counted) = (Vec::new(), 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        counted += chunk.detections;
        body.extend_from_slice(&chunk.bytes);
    }
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!((lines.len(), counted), (3000, 3000));

    // A reader that walks away mid-window must not wedge the store.
    let mut stream = f.store.stream(f.tenant, &query, Framing::JsonArray).await.unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let report = f.store.ingest(f.tenant, vec![plain("after")]).await.unwrap();
    assert_eq!(report.stored, 1);
}

async fn an_archive_import_keeps_its_times_and_leaves_the_clock_alone(f: Fixture) {
    let far_future = Detection {
        alert_time: Some(t("2024-05-01T09:00:00Z")),
        alert_title: "archived".into(),
        severity: "Low".into(),
        last_processed_time_utc: Some(t("9000-01-01T00:00:00Z")),
        ..Detection::default()
    };
    let keep = PrepareOptions { portal_url: "https://gate.test".into(), keep_processed_time: true };
    let archived = prepare(far_future, &keep).unwrap();
    let report = f.store.ingest(f.tenant, vec![archived]).await.unwrap();
    assert_eq!((report.stored, report.processed), (1, None));

    f.ingest_at("2024-05-01T10:00:00Z", vec![plain("live")]).await;
    let rows = fetch(
        &*f.store,
        f.tenant,
        &[("sinceTimeUtc", "2024-01-01"), ("untilTimeUtc", "9999-01-01")],
    )
    .await;
    assert_eq!(titles(&rows), ["live", "archived"]);
    assert_eq!(
        rows[0]["LastProcessedTimeUtc"], "2024-05-01T10:00:00Z",
        "the live stamp was not dragged"
    );
    assert_eq!(rows[1]["LastProcessedTimeUtc"], "9000-01-01T00:00:00Z");
}

fn secret(hint: &str, created: &str) -> AppSecret {
    AppSecret {
        id: Uuid::new_v4(),
        hash: Sealed(vec![7; 32]),
        hint: hint.into(),
        created: t(created),
        expires: t("2030-01-01T00:00:00Z"),
    }
}

async fn apps_keep_roles_redirects_and_several_secrets(f: Fixture) {
    let client_id = Uuid::new_v4();
    let new = NewApp {
        client_id,
        tenant: f.tenant,
        name: "splunk".into(),
        roles: vec!["siem-read".into()],
        redirect_uris: vec!["https://localhost/cb".into()],
        secret: secret("abc", "2024-05-01T10:00:00Z"),
    };
    let app = f.store.create_app(new.clone()).await.unwrap();
    assert_eq!((app.tenant, app.name.as_str()), (f.tenant, "splunk"));
    assert_eq!(app.roles, ["siem-read"]);
    assert_eq!(app.redirect_uris, ["https://localhost/cb"]);
    assert_eq!(app.secrets.len(), 1);

    let again = NewApp { client_id: Uuid::new_v4(), name: "SPLUNK".into(), ..new };
    assert!(matches!(f.store.create_app(again).await, Err(StoreError::AppExists(_))));

    let second = secret("xyz", "2024-05-02T10:00:00Z");
    let app = f.store.add_app_secret(client_id, second.clone()).await.unwrap();
    assert_eq!(app.secrets.iter().map(|s| s.hint.as_str()).collect::<Vec<_>>(), ["abc", "xyz"]);
    let first = app.secrets[0].id;
    let app = f.store.remove_app_secret(client_id, first).await.unwrap();
    assert_eq!(app.secrets, [second]);
    assert!(matches!(
        f.store.remove_app_secret(client_id, first).await,
        Err(StoreError::UnknownSecret(_))
    ));

    let app = f.store.set_app_role(client_id, "ingest", true).await.unwrap();
    assert_eq!(app.roles, ["ingest", "siem-read"]);
    let app = f.store.set_app_role(client_id, "siem-read", false).await.unwrap();
    assert_eq!(app.roles, ["ingest"]);
    assert_eq!(f.store.apps(Some(f.tenant)).await.unwrap(), std::slice::from_ref(&app));
    assert_eq!(f.store.find_app(client_id).await.unwrap(), Some(app));

    f.store.remove_app(client_id).await.unwrap();
    assert_eq!(f.store.find_app(client_id).await.unwrap(), None);
    assert!(matches!(f.store.remove_app(client_id).await, Err(StoreError::UnknownApp(_))));
    assert!(f.store.apps(None).await.unwrap().is_empty());
}

async fn users_are_per_tenant_and_found_ignoring_case(f: Fixture) {
    let other = add_tenant(&*f.store, "fabrikam").await;
    let user = |tenant, name: &str| User {
        id: Uuid::new_v4(),
        tenant,
        username: name.into(),
        display_name: "Alice".into(),
        password_hash: Sealed(b"$argon2id$v=19$...".to_vec()),
        created: t("2024-05-01T10:00:00Z"),
    };
    let alice = f.store.create_user(user(f.tenant, "alice@contoso.com")).await.unwrap();
    f.store.create_user(user(other, "alice@contoso.com")).await.unwrap();
    assert!(matches!(
        f.store.create_user(user(f.tenant, "ALICE@contoso.com")).await,
        Err(StoreError::UserExists(_))
    ));
    assert_eq!(
        f.store.find_user(f.tenant, "Alice@Contoso.com").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(f.store.users(f.tenant).await.unwrap(), std::slice::from_ref(&alice));

    f.store
        .set_user_password(f.tenant, "alice@contoso.com", Sealed(b"new".to_vec()))
        .await
        .unwrap();
    let changed = f.store.find_user(f.tenant, "alice@contoso.com").await.unwrap().unwrap();
    assert_eq!(changed.password_hash, Sealed(b"new".to_vec()));

    f.store.remove_user(f.tenant, "alice@contoso.com").await.unwrap();
    assert!(f.store.users(f.tenant).await.unwrap().is_empty());
    assert_eq!(f.store.users(other).await.unwrap().len(), 1, "the other tenant's alice stays");
    assert!(matches!(
        f.store.remove_user(f.tenant, "alice@contoso.com").await,
        Err(StoreError::UnknownUser(_))
    ));
}

/// An app and a user of the fixture's tenant, for the sign-in grants.
async fn app_and_user(f: &Fixture) -> (Uuid, User) {
    let client_id = Uuid::new_v4();
    let new = NewApp {
        client_id,
        tenant: f.tenant,
        name: "portal".into(),
        roles: vec![],
        redirect_uris: vec!["https://localhost/cb".into()],
        secret: secret("abc", "2024-05-01T10:00:00Z"),
    };
    f.store.create_app(new).await.unwrap();
    let user = User {
        id: Uuid::new_v4(),
        tenant: f.tenant,
        username: "alice@contoso.com".into(),
        display_name: "Alice".into(),
        password_hash: Sealed(b"$argon2id$v=19$...".to_vec()),
        created: t("2024-05-01T10:00:00Z"),
    };
    let user = f.store.create_user(user).await.unwrap();
    (client_id, user)
}

fn code(client_id: Uuid, user: Uuid, hash: u8) -> AuthCode {
    AuthCode {
        hash: Sealed(vec![hash; 32]),
        client_id,
        user,
        redirect_uri: "https://localhost/cb".into(),
        scope: "https://graph.windows.net/user_impersonation openid".into(),
        resource: "https://graph.windows.net".into(),
        nonce: Some("n-0S6".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        challenge_method: Some("S256".into()),
        issued: t("2024-05-01T10:00:00Z"),
        expires: t("2024-05-01T10:05:00Z"),
    }
}

fn refresh(client_id: Uuid, user: Uuid, hash: u8) -> RefreshGrant {
    RefreshGrant {
        hash: Sealed(vec![hash; 32]),
        client_id,
        user,
        scope: "https://graph.windows.net/user_impersonation".into(),
        resource: "https://graph.windows.net".into(),
        issued: t("2024-05-01T10:00:00Z"),
        expires: t("2024-07-30T10:00:00Z"),
    }
}

async fn an_authorization_code_is_spent_once_and_a_replay_revokes_its_tokens(f: Fixture) {
    let (client_id, alice) = app_and_user(&f).await;
    let issued = code(client_id, alice.id, 1);
    f.store.save_auth_code(issued.clone()).await.unwrap();
    f.store.save_refresh_token(refresh(client_id, alice.id, 9)).await.unwrap();

    assert_eq!(
        f.store.redeem_auth_code(vec![1; 32]).await.unwrap(),
        CodeRedemption::Fresh(Box::new(issued))
    );
    assert_eq!(f.store.redeem_auth_code(vec![1; 32]).await.unwrap(), CodeRedemption::Reused);
    assert_eq!(f.store.redeem_auth_code(vec![2; 32]).await.unwrap(), CodeRedemption::Unknown);
    assert_eq!(
        f.store.take_refresh_token(vec![9; 32]).await.unwrap(),
        None,
        "a replayed code revokes the refresh tokens the app holds for the user"
    );
    assert_eq!(f.store.find_user_by_id(alice.id).await.unwrap(), Some(alice));
    assert_eq!(f.store.find_user_by_id(Uuid::new_v4()).await.unwrap(), None);
}

async fn a_refresh_token_is_taken_once_and_dies_with_its_app_user_or_password(f: Fixture) {
    let (client_id, alice) = app_and_user(&f).await;
    let grant = refresh(client_id, alice.id, 1);
    f.store.save_refresh_token(grant.clone()).await.unwrap();
    assert_eq!(f.store.take_refresh_token(vec![1; 32]).await.unwrap(), Some(grant));
    assert_eq!(f.store.take_refresh_token(vec![1; 32]).await.unwrap(), None, "used up");

    f.store.save_refresh_token(refresh(client_id, alice.id, 2)).await.unwrap();
    f.store
        .set_user_password(f.tenant, "alice@contoso.com", Sealed(b"new".to_vec()))
        .await
        .unwrap();
    assert_eq!(f.store.take_refresh_token(vec![2; 32]).await.unwrap(), None, "new password");

    f.store.save_refresh_token(refresh(client_id, alice.id, 3)).await.unwrap();
    f.store.save_auth_code(code(client_id, alice.id, 4)).await.unwrap();
    f.store.remove_user(f.tenant, "alice@contoso.com").await.unwrap();
    assert_eq!(f.store.take_refresh_token(vec![3; 32]).await.unwrap(), None, "user removed");
    assert_eq!(f.store.redeem_auth_code(vec![4; 32]).await.unwrap(), CodeRedemption::Unknown);

    let (client_id, bob) = {
        let user = User { username: "bob@contoso.com".into(), id: Uuid::new_v4(), ..alice };
        (client_id, f.store.create_user(user).await.unwrap())
    };
    f.store.save_refresh_token(refresh(client_id, bob.id, 5)).await.unwrap();
    f.store.remove_app(client_id).await.unwrap();
    assert_eq!(f.store.take_refresh_token(vec![5; 32]).await.unwrap(), None, "app removed");
    assert!(matches!(
        f.store.save_refresh_token(refresh(client_id, bob.id, 6)).await,
        Err(StoreError::UnknownApp(_))
    ));
}

async fn rotating_keys_retires_the_signing_one(f: Fixture) {
    assert!(f.store.signing_keys().await.unwrap().is_empty());
    let key = |kid: &str, at: &str| StoredKey {
        kid: kid.into(),
        pkcs8: Sealed(vec![1, 2, 3]),
        created: t(at),
        retired: None,
    };
    f.store.rotate_signing_key(key("first", "2024-05-01T10:00:00Z")).await.unwrap();
    f.store.rotate_signing_key(key("second", "2024-05-02T10:00:00Z")).await.unwrap();
    let keys = f.store.signing_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(keys[0].retired, Some(t("2024-05-02T10:00:00Z")));
    assert_eq!(keys[1].retired, None, "the newest signs");
}

/// Fills the fixture's store with one of everything a copy must carry: a
/// second tenant, disabled; an app with two secrets, roles and redirect
/// URIs; users; a retired and a signing key; refresh tokens saved out of
/// the order they were issued in; live detections in three batches (one
/// tie) and an archived one stamped far in the future.
async fn fill(f: &Fixture) {
    let other = add_tenant(&*f.store, "fabrikam").await;
    f.store.set_tenant_state(other, TenantState::Disabled).await.unwrap();
    let (client_id, alice) = app_and_user(f).await;
    f.store.add_app_secret(client_id, secret("xyz", "2024-05-02T10:00:00Z")).await.unwrap();
    f.store.set_app_role(client_id, "siem-read", true).await.unwrap();
    let bob = User {
        id: Uuid::new_v4(),
        tenant: other,
        username: "bob@fabrikam.com".into(),
        ..alice.clone()
    };
    f.store.create_user(bob).await.unwrap();
    for (kid, at) in [("first", "2024-04-01T00:00:00Z"), ("second", "2024-04-20T00:00:00Z")] {
        let key = StoredKey {
            kid: kid.into(),
            pkcs8: Sealed(vec![4, 5, 6]),
            created: t(at),
            retired: None,
        };
        f.store.rotate_signing_key(key).await.unwrap();
    }
    f.store.save_refresh_token(refresh(client_id, alice.id, 7)).await.unwrap();
    let earlier =
        RefreshGrant { issued: t("2024-04-30T10:00:00Z"), ..refresh(client_id, alice.id, 8) };
    f.store.save_refresh_token(earlier).await.unwrap();

    f.ingest_at("2024-05-01T10:00:00Z", vec![plain("a1"), plain("a2")]).await;
    f.ingest_at("2024-05-01T11:00:00Z", vec![detection("b", "UK", "VIP", "Prod")]).await;
    f.store.ingest(other, vec![plain("theirs")]).await.unwrap();
    let archived = Detection {
        alert_time: Some(t("2024-05-01T09:00:00Z")),
        alert_title: "archived".into(),
        severity: "Low".into(),
        last_processed_time_utc: Some(t("9000-01-01T00:00:00Z")),
        ..Detection::default()
    };
    let keep = PrepareOptions { portal_url: "https://gate.test".into(), keep_processed_time: true };
    f.store.ingest(f.tenant, vec![prepare(archived, &keep).unwrap()]).await.unwrap();
}

/// Every detection of the tenant, as stored, through pages of `page` rows.
async fn all_rows(store: &dyn Store, tenant: Uuid, page: usize) -> Vec<DetectionRow> {
    let (mut rows, mut after) = (Vec::new(), None::<DetectionKey>);
    loop {
        let got = store.export_detections(tenant, after.take(), page).await.unwrap();
        let end = got.len() < page;
        after = got.last().map(DetectionRow::key);
        rows.extend(got);
        if end {
            return rows;
        }
    }
}

const EVERYTHING: [(&str, &str); 2] =
    [("sinceTimeUtc", "2000-01-01"), ("untilTimeUtc", "9999-01-01")];

async fn a_copy_reads_back_the_same_registry_windows_and_stamps(f: Fixture) {
    fill(&f).await;
    let twin = f.empty_twin().await;
    let mut pages = Vec::new();
    let census = copy_store(&*f.store, &*twin, |p| pages.push(p)).await.unwrap();
    assert_eq!(census.total_detections(), 5);
    assert_eq!(pages.last().map(|p| (p.detections, p.of)), Some((5, 5)));

    let registry = f.store.export_registry().await.unwrap();
    assert_eq!(twin.export_registry().await.unwrap(), registry, "ids, states, hashes, keys, times");
    assert_eq!((registry.tenants.len(), registry.apps.len(), registry.users.len()), (2, 1, 2));
    assert_eq!(registry.apps[0].secrets.len(), 2);
    assert_eq!((registry.signing_keys.len(), registry.refresh_tokens.len()), (2, 2));
    assert_eq!(registry.tenants[1].state, TenantState::Disabled);
    assert_eq!(Census::take(&*twin).await.unwrap(), census);
    for tenant in registry.tenants.iter().map(|t| t.id) {
        assert_eq!(all_rows(&*twin, tenant, 100).await, all_rows(&*f.store, tenant, 100).await);
        assert_eq!(
            fetch(&*twin, tenant, &EVERYTHING).await,
            fetch(&*f.store, tenant, &EVERYTHING).await
        );
    }
    let since_b = [("sinceTimeUtc", "2024-05-01T11:00:00Z"), ("machinegroups", "uk")];
    assert_eq!(
        titles(&fetch(&*twin, f.tenant, &since_b).await),
        ["b"],
        "filters read the copied columns"
    );

    // The clock has gone back: the twin still stamps after everything live
    // it was given, and the archived stamp did not drag it to the year 9000.
    f.set_clock("2024-05-01T09:00:00Z");
    let report = twin.ingest(f.tenant, vec![plain("new")]).await.unwrap();
    assert_eq!(
        report.processed,
        Some(t("2024-05-01T11:00:00.0000002Z")),
        "fabrikam's was .0000001"
    );
    assert_eq!(f.store.detection_count(f.tenant).await.unwrap(), 4, "the source is untouched");
}

async fn pages_of_detections_come_in_delivery_order_and_the_last_is_short(f: Fixture) {
    f.ingest_at("2024-05-01T10:00:00Z", vec![plain("a")]).await;
    f.ingest_at("2024-05-01T11:00:00Z", (0..4).map(|i| plain(&format!("tie{i}"))).collect()).await;
    let one_page = f.store.export_detections(f.tenant, None, 100).await.unwrap();
    assert_eq!(one_page.len(), 5);
    let keys: Vec<DetectionKey> = one_page.iter().map(DetectionRow::key).collect();
    assert!(keys.is_sorted() && keys.windows(2).all(|w| w[0] != w[1]), "{keys:?}");
    let delivered = f.window(&[("sinceTimeUtc", "2024-05-01")]).await;
    let bodies: Vec<serde_json::Value> =
        one_page.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert_eq!(bodies, delivered, "the stored bodies, in the API's order");

    // Pages of two cut the tie at 11:00 and lose nothing at the cuts.
    let first = f.store.export_detections(f.tenant, None, 2).await.unwrap();
    let second = f.store.export_detections(f.tenant, Some(first[1].key()), 2).await.unwrap();
    let third = f.store.export_detections(f.tenant, Some(second[1].key()), 2).await.unwrap();
    assert_eq!(third.len(), 1, "the last page is short");
    assert_eq!([first, second, third].concat(), one_page);
    assert!(
        f.store.export_detections(f.tenant, Some(one_page[4].key()), 2).await.unwrap().is_empty()
    );
    assert!(matches!(
        f.store.export_detections(Uuid::new_v4(), None, 2).await,
        Err(StoreError::UnknownTenant(_))
    ));
}

async fn a_store_that_is_not_empty_refuses_an_import(f: Fixture) {
    fill(&f).await;
    let registry = f.store.export_registry().await.unwrap();
    assert!(matches!(
        f.store.import_registry(&registry).await,
        Err(StoreError::NotEmpty { tenants: 2, signing_keys: 2 })
    ));

    let twin = f.empty_twin().await;
    add_tenant(&*twin, "northwind").await;
    let before = Census::take(&*twin).await.unwrap();
    let refused = copy_store(&*f.store, &*twin, |_| {}).await.unwrap_err();
    let CopyError::TargetNotEmpty(held) = &refused else { panic!("{refused}") };
    assert_eq!(held, &before);
    assert!(refused.to_string().contains("1 tenant (northwind) with 0 detections"), "{refused}");
    assert_eq!(Census::take(&*twin).await.unwrap(), before, "nothing was written");

    // A store whose only content is a signing key (a server ran on it) is not empty either.
    let keyed = f.empty_twin().await;
    keyed.rotate_signing_key(registry.signing_keys[0].clone()).await.unwrap();
    let refused = copy_store(&*f.store, &*keyed, |_| {}).await.unwrap_err();
    assert!(refused.to_string().ends_with("it holds 1 signing key"), "{refused}");
}

async fn imported_stamps_move_the_last_stamp_up_to_the_clock_only(f: Fixture) {
    f.ingest_at("2024-05-01T12:00:00Z", vec![plain("x"), plain("y")]).await;
    let rows = f.store.export_detections(f.tenant, None, 10).await.unwrap();
    let twin = f.empty_twin().await;
    let tenant = add_tenant(&*twin, "contoso").await;
    let mut future = rows[1].clone();
    future.processed = t("9000-01-01T00:00:00Z");
    future.full_id.push_str("-archived");

    f.set_clock("2024-05-01T13:00:00Z");
    assert_eq!(
        twin.import_detections(tenant, vec![rows[0].clone(), future.clone()]).await.unwrap(),
        2
    );
    f.set_clock("2024-05-01T10:00:00Z");
    assert_eq!(
        twin.import_detections(tenant, vec![rows[0].clone()]).await.unwrap(),
        0,
        "a FullId the tenant has is skipped"
    );
    let report = twin.ingest(tenant, vec![plain("later")]).await.unwrap();
    assert_eq!(
        report.processed,
        Some(t("2024-05-01T12:00:00.0000001Z")),
        "after the imported stamp, not the clock's 10:00 nor the year 9000 (later than the clock at import)"
    );
    let stored = all_rows(&*twin, tenant, 10).await;
    assert_eq!(stored[0], rows[0], "kept as it was, body and stamp");
    assert_eq!(stored.last(), Some(&future));
}

/// A store copied from SQLite to PostgreSQL and back reads the same as it
/// did: registry, stored rows and windows.
#[tokio::test]
async fn a_store_copied_to_postgres_and_back_reads_the_same() {
    let f = Fixture::sqlite().await;
    fill(&f).await;
    let postgres = empty_store(Backend::Postgres, &f.clock).await;
    let back = empty_store(Backend::Sqlite, &f.clock).await;
    let census = copy_store(&*f.store, &*postgres, |_| {}).await.unwrap();
    assert_eq!(copy_store(&*postgres, &*back, |_| {}).await.unwrap(), census);

    let registry = f.store.export_registry().await.unwrap();
    for store in [&postgres, &back] {
        assert_eq!(store.export_registry().await.unwrap(), registry);
        for tenant in registry.tenants.iter().map(|t| t.id) {
            assert_eq!(all_rows(&**store, tenant, 2).await, all_rows(&*f.store, tenant, 2).await);
            assert_eq!(
                fetch(&**store, tenant, &EVERYTHING).await,
                fetch(&*f.store, tenant, &EVERYTHING).await
            );
        }
    }
}

#[test]
fn sealed_bytes_never_show_in_debug_output() {
    let key = StoredKey {
        kid: "k".into(),
        pkcs8: Sealed(b"PRIVATE".to_vec()),
        created: t("2024-05-01T10:00:00Z"),
        retired: None,
    };
    let shown = format!("{key:?}");
    assert!(shown.contains("Sealed(..)") && !shown.contains("80, 82"), "{shown}");
}

/// Two PostgreSQL stores on one database stand for two server replicas.
/// They start at the same moment (so the second waits on the first's
/// migration), their clocks disagree by an hour, and they ingest
/// overlapping batches from several tasks while a reader polls the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_store_each_full_id_once_and_commit_in_stamp_order() {
    let url = postgres_url();
    let schema = ScratchSchema::create(&url).await.unwrap_or_else(|e| no_postgres(e));
    let now = || Timestamp::from_system_time(std::time::SystemTime::now());
    let ahead: Clock = Arc::new(now);
    let hour_behind: Clock =
        Arc::new(move || Timestamp::from_unix_ticks(now().unix_ticks() - 3_600 * 10_000_000));
    let (a, b) = tokio::join!(
        PostgresStore::open_with(&url, Some(schema.name()), Some(ahead)),
        PostgresStore::open_with(&url, Some(schema.name()), Some(hour_behind)),
    );
    let replicas: [Arc<dyn Store>; 2] = [Arc::new(a.unwrap()), Arc::new(b.unwrap())];
    let tenant = add_tenant(&*replicas[0], "contoso").await;

    // Worker w sends five batches of 40 from the 200 detections, starting
    // at 25w + 10r: neighbouring workers overlap, and together they cover all.
    let all: Vec<Prepared> = (0..200).map(|i| plain(&format!("r{i}"))).collect();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = Arc::clone(&replicas[w % 2]);
        let batches: Vec<Vec<Prepared>> = (0..5)
            .map(|r| (0..40).map(|k| all[(25 * w + 10 * r + k) % 200].clone()).collect())
            .collect();
        workers.spawn(async move {
            let mut reports = Vec::new();
            for batch in batches {
                reports.push(store.ingest(tenant, batch).await.unwrap());
            }
            reports
        });
    }

    // The promise to readers: once a detection stamped T has been seen, no
    // new detection stamped T or earlier ever shows up.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (Arc::clone(&replicas[1]), Arc::clone(&done));
        tokio::spawn(async move {
            let (mut seen, mut high) = (HashSet::new(), None::<Timestamp>);
            let (mut polls, mut last) = (0, false);
            while !last {
                last = done.load(Ordering::SeqCst);
                let range = [("sinceTimeUtc", "2000-01-01"), ("untilTimeUtc", "2100-01-01")];
                let rows = fetch(&*store, tenant, &range).await;
                for row in &rows {
                    let id = row["FullId"].as_str().unwrap().to_owned();
                    let stamp = t(row["LastProcessedTimeUtc"].as_str().unwrap());
                    if let Some(high) = high.filter(|_| !seen.contains(&id)) {
                        assert!(
                            stamp > high,
                            "{id} stamped {stamp} appeared after {high} was seen"
                        );
                    }
                    seen.insert(id);
                }
                high = rows.iter().map(|r| t(r["LastProcessedTimeUtc"].as_str().unwrap())).max();
                polls += 1;
            }
            (seen, polls)
        })
    };

    let mut reports = Vec::new();
    while let Some(done) = workers.join_next().await {
        reports.extend(done.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let (seen, polls) = reader.await.unwrap();

    assert!(reports.iter().all(|r| r.stored + r.duplicates == 40));
    assert_eq!(reports.iter().map(|r| r.stored).sum::<u64>(), 200, "each FullId stored once");
    assert_eq!(seen.len(), 200);
    assert!(polls > 1, "the reader polled while the batches went in");
    for store in &replicas {
        assert_eq!(store.detection_count(tenant).await.unwrap(), 200);
    }
    let stamps: Vec<Timestamp> = reports.iter().filter_map(|r| r.processed).collect();
    let distinct: HashSet<_> = stamps.iter().collect();
    assert_eq!(distinct.len(), stamps.len(), "every storing batch has a stamp of its own");
    drop(replicas);
}

/// A follower with no lag at all, reading window after window, each ending
/// at the present and the next starting where it ended, while several tasks
/// ingest large batches through `stores` (two replicas, or one store twice).
/// It must still get every detection exactly once: a batch stamped before a
/// window's end cannot commit after the window was read.
async fn a_follower_with_no_lag_misses_nothing(stores: [Arc<dyn Store>; 2]) {
    let tenant = add_tenant(&*stores[0], "contoso").await;
    const WORKERS: usize = 6;
    const BATCHES: usize = 8;
    const BATCH: usize = 400;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let store = Arc::clone(&stores[w % 2]);
        workers.spawn(async move {
            for r in 0..BATCHES {
                let batch = (0..BATCH).map(|k| plain(&format!("w{w}-b{r}-{k}"))).collect();
                store.ingest(tenant, batch).await.unwrap();
            }
        });
    }

    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let (store, done) = (Arc::clone(&stores[1]), Arc::clone(&done));
        tokio::spawn(async move {
            let mut since = t("2000-01-01T00:00:00Z");
            let (mut seen, mut windows) = (HashSet::new(), 0);
            let mut last = false;
            while !last {
                last = done.load(Ordering::SeqCst);
                let until = Timestamp::from_system_time(std::time::SystemTime::now());
                let (from, to) = (since.to_string(), until.to_string());
                let range = [("sinceTimeUtc", from.as_str()), ("untilTimeUtc", to.as_str())];
                for row in fetch(&*store, tenant, &range).await {
                    let id = row["FullId"].as_str().unwrap().to_owned();
                    assert!(seen.insert(id.clone()), "{id} was delivered twice");
                }
                since = until;
                windows += 1;
            }
            (seen, windows)
        })
    };
    while let Some(finished) = workers.join_next().await {
        finished.unwrap();
    }
    // The follower's next window starts after every batch has committed.
    done.store(true, Ordering::SeqCst);
    let (seen, windows) = follower.await.unwrap();
    assert!(windows > 2, "the follower read while the batches went in ({windows} windows)");
    assert_eq!(seen.len(), WORKERS * BATCHES * BATCH, "every detection reached the follower");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_no_lag_misses_nothing_one_sqlite_store_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("siemgate.db")).await.unwrap());
    a_follower_with_no_lag_misses_nothing([Arc::clone(&store), store]).await;
}

/// The same with two PostgreSQL replicas stamping with the database's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_no_lag_misses_nothing_two_postgres_replicas_commit() {
    let url = postgres_url();
    let schema = ScratchSchema::create(&url).await.unwrap_or_else(|e| no_postgres(e));
    let (a, b) = tokio::join!(
        PostgresStore::open_with(&url, Some(schema.name()), None),
        PostgresStore::open_with(&url, Some(schema.name()), None),
    );
    a_follower_with_no_lag_misses_nothing([Arc::new(a.unwrap()), Arc::new(b.unwrap())]).await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_with_what_to_check() {
    let err =
        siemgate_store::open("postgres://siemgate:secret@127.0.0.1:1/siemgate").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::PostgresUnreachable { .. }), "{text}");
    assert!(text.contains("127.0.0.1:1/siemgate"), "{text}");
    assert!(text.contains("pg_ctlcluster"), "{text}");
    assert!(!text.contains("secret"), "the password stays out of messages: {text}");
}
