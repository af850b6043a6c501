//! The store's behaviour as a user meets it: through the `siemgate` binary and
//! a real SQLite file.

mod common;

use common::{Env, ndjson, record, sorted_titles, titles};

#[test]
fn the_reference_sample_round_trips_exactly() {
    let env = Env::new();
    env.add_tenant("contoso");
    let sample = common::reference_sample();
    let out =
        env.ok(&["ingest", "-t", "contoso", "--keep-processed-time", sample.to_str().unwrap()]);
    assert!(out.contains("stored 1, duplicates 0"), "{out}");

    let served =
        env.ok(&["alerts", "-t", "contoso", "--since", "2020-09-30", "--until", "2020-10-01"]);
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sample).unwrap()).unwrap();
    let served: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(served, original);
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v[0].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&served), keys(&original), "key order");
}

#[test]
fn windows_include_since_exclude_until_and_keep_ties() {
    let env = Env::new();
    env.add_tenant("contoso");
    let t1 = "2024-05-01T10:00:00Z";
    let t2 = "2024-05-01T11:00:00.1234567Z";
    let t3 = "2024-05-01T12:00:00Z";
    let file = env.file(
        "window.ndjson",
        &ndjson(&[
            record("a", t1),
            record("b1", t2),
            record("b2", t2),
            record("b3", t2),
            record("c", t3),
        ]),
    );
    env.ok(&["ingest", "-t", "contoso", "--keep-processed-time", &file]);

    let rows = env.alerts("contoso", &["--since", t2, "--until", t3]);
    assert_eq!(sorted_titles(&rows), ["b1", "b2", "b3"]);
    let full_ids: Vec<&str> = rows.iter().map(|r| r["FullId"].as_str().unwrap()).collect();
    assert!(full_ids.is_sorted(), "ties come in FullId order");

    assert_eq!(titles(&env.alerts("contoso", &["--since", t1, "--until", t2])), ["a"]);
    let just_after = "2024-05-01T11:00:00.1234568Z";
    assert_eq!(
        titles(&env.alerts("contoso", &["--since", just_after, "--until", "2024-05-02"])),
        ["c"]
    );
    let all = env.alerts("contoso", &["--since", "2024-05-01 00:00:00", "--until", "2024-05-02"]);
    assert_eq!(all.len(), 5);
    assert_eq!(titles(&all)[0], "a");
    assert_eq!(titles(&all)[4], "c");
}

#[test]
fn limit_returns_the_newest_in_ascending_order() {
    let env = Env::new();
    env.add_tenant("contoso");
    let records: Vec<_> =
        (0..10).map(|i| record(&format!("d{i}"), &format!("2024-05-01T10:{i:02}:00Z"))).collect();
    let file = env.file("ten.ndjson", &ndjson(&records));
    env.ok(&["ingest", "-t", "contoso", "--keep-processed-time", &file]);

    let rows =
        env.alerts("contoso", &["--since", "2024-05-01", "--until", "2024-05-02", "--limit", "3"]);
    assert_eq!(titles(&rows), ["d7", "d8", "d9"]);
    let rows = env.alerts(
        "contoso",
        &["--since", "2024-05-01", "--until", "2024-05-01T10:05:00Z", "--limit", "2"],
    );
    assert_eq!(titles(&rows), ["d3", "d4"], "the newest of the window, not of the store");
}

#[test]
fn machine_groups_and_tags_filter() {
    let env = Env::new();
    env.add_tenant("contoso");
    let with = |title: &str, group: &str, device: &str, cloud: &str| {
        let mut r = record(title, "2024-05-01T10:00:00Z");
        r["MachineGroup"] = group.into();
        r["DeviceCreatedMachineTags"] = device.into();
        r["CloudCreatedMachineTags"] = cloud.into();
        r
    };
    let file = env.file(
        "groups.json",
        &serde_json::to_string(&[
            with("uk", "UKMachines", "VIP;Finance", "Prod"),
            with("fr", "FranceMachines", "Finance", "Test, Prod"),
            with("de", "GermanyMachines", "", "Dev"),
        ])
        .unwrap(),
    );
    env.ok(&["ingest", "-t", "contoso", "--keep-processed-time", &file]);
    let window = ["--since", "2024-05-01", "--until", "2024-05-02"];
    let query = |extra: &[&str]| {
        let mut flags = window.to_vec();
        flags.extend_from_slice(extra);
        sorted_titles(&env.alerts("contoso", &flags))
    };

    assert_eq!(
        query(&["--machine-group", "ukmachines", "--machine-group", "FRANCEMACHINES"]),
        ["fr", "uk"]
    );
    assert_eq!(query(&["--machine-group", "nowhere"]), Vec::<String>::new());
    assert_eq!(query(&["--device-tag", "vip"]), ["uk"]);
    assert_eq!(query(&["--device-tag", "finance"]), ["fr", "uk"]);
    assert_eq!(query(&["--cloud-tag", "dev", "--cloud-tag", "test"]), ["de", "fr"]);
    assert_eq!(query(&["--cloud-tag", "prod", "--machine-group", "UKMachines"]), ["uk"]);
    let err = env.fails(&["alerts", "-t", "contoso", "--device-tag", "a;b"]);
    assert!(err.contains("--device-tag \"a;b\": takes a single tag"), "{err}");
}

#[test]
fn a_tenants_detections_are_never_returned_for_another() {
    let env = Env::new();
    env.add_tenant("contoso");
    env.add_tenant("fabrikam");
    let file = env.file("one.ndjson", &ndjson(&[record("secret", "2024-05-01T10:00:00Z")]));
    env.ok(&["ingest", "-t", "contoso", "--keep-processed-time", &file]);
    let window = ["--since", "2000-01-01", "--until", "2100-01-01"];
    assert_eq!(env.alerts("contoso", &window).len(), 1);
    assert_eq!(env.alerts("fabrikam", &window), Vec::<serde_json::Value>::new());
    assert_eq!(env.ok(&["alerts", "-t", "fabrikam", "--since", "2000-01-01"]).trim(), "[]");
}

#[test]
fn resending_stores_nothing_twice() {
    let env = Env::new();
    env.add_tenant("contoso");
    // No identifiers at all: they are derived from the content, so a resend
    // still finds its duplicates.
    let file =
        env.file("resend.ndjson", &ndjson(&[record("x", ""), record("y", ""), record("z", "")]));
    let first = env.ok(&["ingest", "-t", "contoso", &file]);
    assert!(first.contains("stored 3, duplicates 0"), "{first}");
    let second = env.ok(&["ingest", "-t", "contoso", &file]);
    assert!(second.contains("stored 0, duplicates 3"), "{second}");
    assert_eq!(env.stored_full_ids().len(), 3);
}

#[test]
fn a_bad_record_mid_batch_stores_nothing_of_its_batch() {
    let env = Env::new();
    env.add_tenant("contoso");
    let mut bad = record("bad", "");
    bad["Severity"] = "Critical".into();
    let records = [record("a", ""), record("b", ""), bad, record("d", ""), record("e", "")];
    let file = env.file("bad.ndjson", &ndjson(&records));

    let err = env.fails(&["ingest", "-t", "contoso", &file]);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("record 3 (line 3): Severity must be one of"), "{err}");
    assert!(err.contains("batch 1 (from record 1) was not stored"), "{err}");
    assert!(env.stored_full_ids().is_empty());

    // With batches of two, the first batch is stored and said to be.
    let err = env.fails(&["ingest", "-t", "contoso", "--batch-size", "2", &file]);
    assert!(err.contains("batch 2 (from record 3) was not stored"), "{err}");
    assert!(err.contains("the 1 batch(es) before it were stored"), "{err}");
    assert_eq!(env.stored_full_ids().len(), 2);
}

#[test]
fn bad_files_and_flags_get_one_clear_line() {
    let env = Env::new();
    env.add_tenant("contoso");
    let missing = env.fails(&["ingest", "-t", "contoso", "/no/such/file.json"]);
    assert_eq!(
        missing.trim(),
        "error: cannot read /no/such/file.json: No such file or directory (os error 2)"
    );

    let garbage = env.file("garbage.txt", "hello\n");
    let err = env.fails(&["ingest", "-t", "contoso", &garbage]);
    assert!(err.contains("line 1: expected a JSON array of detections or NDJSON"), "{err}");

    let err = env.fails(&["ingest", "-t", "nobody", &garbage]);
    assert!(err.contains("no tenant \"nobody\""), "{err}");

    let out = env.run(&["alerts", "--tenant", "contoso", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: unexpected argument '--bogus'"), "{stderr}");

    let err = env.fails(&["alerts", "-t", "contoso", "--ago", "P1M"]);
    assert_eq!(
        err.trim(),
        "error: --ago \"P1M\": years and months have no fixed length; give days instead, such as P30D"
    );
    let err = env.fails(&["alerts", "-t", "contoso", "--ago", "PT1H", "--since", "2024-01-01"]);
    assert!(err.contains("cannot be combined"), "{err}");
}

#[test]
fn every_help_page_renders() {
    let env = Env::new();
    let top = env.ok(&["--help"]);
    for command in
        ["demo", "ingest", "simulate", "alerts", "tenant", "purge", "app", "user", "keys"]
    {
        assert!(top.contains(command), "{command} missing from --help");
        let help = env.ok(&[command, "--help"]);
        assert!(help.starts_with(char::is_uppercase), "{command} help: {help}");
    }
    for sub in ["add", "list", "show", "disable", "enable", "delete"] {
        env.ok(&["tenant", sub, "--help"]);
    }
    for sub in ["add", "list", "show", "remove", "secret", "grant", "revoke"] {
        env.ok(&["app", sub, "--help"]);
    }
    for sub in ["add", "list", "remove", "passwd"] {
        env.ok(&["user", sub, "--help"]);
    }
    for sub in ["list", "rotate"] {
        env.ok(&["keys", sub, "--help"]);
    }
}

#[test]
fn tenants_are_administered_and_deletion_keeps_data() {
    let env = Env::new();
    let id = env.ok(&[
        "tenant",
        "add",
        "Contoso Ltd",
        "--domain",
        "contoso.com",
        "--domain",
        "contoso.onmicrosoft.com",
    ]);
    let id = id.trim();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let file = env.file("one.ndjson", &ndjson(&[record("kept", "")]));
    env.ok(&["ingest", "-t", "contoso.com", &file]);

    let shown: serde_json::Value =
        serde_json::from_str(&env.ok(&["tenant", "show", id, "--json"])).unwrap();
    assert_eq!(shown["name"], "Contoso Ltd");
    assert_eq!(shown["domains"], serde_json::json!(["contoso.com", "contoso.onmicrosoft.com"]));
    assert_eq!(shown["detections"], 1);
    assert_eq!(shown["state"], "active");

    assert!(env.ok(&["tenant", "disable", "CONTOSO LTD"]).contains("is now disabled"));
    assert!(env.ok(&["tenant", "delete", "contoso.onmicrosoft.com"]).contains("is now deleted"));
    let list = env.ok(&["tenant", "list"]);
    assert!(list.contains("deleted") && list.contains("Contoso Ltd"), "{list}");
    let err = env.fails(&["ingest", "-t", id, &file]);
    assert!(err.contains("is deleted; `siemgate tenant enable"), "{err}");
    let shown: serde_json::Value =
        serde_json::from_str(&env.ok(&["tenant", "show", id, "--json"])).unwrap();
    assert_eq!(shown["detections"], 1, "deletion keeps the data");

    env.ok(&["tenant", "enable", id]);
    let err = env.fails(&["tenant", "add", "contoso ltd"]);
    assert!(err.contains("already exists"), "{err}");
    let err = env.fails(&["tenant", "add", "other", "--domain", "not a domain"]);
    assert!(err.contains("is not a domain name"), "{err}");
}

#[test]
fn simulate_is_deterministic_for_a_seed_and_fills_the_store() {
    let env = Env::new();
    let args =
        ["simulate", "--stdout", "--count", "300", "--seed", "42", "--end", "2024-05-01T12:00:00Z"];
    let a = env.ok(&args);
    assert_eq!(a, env.ok(&args), "same seed, same output");
    let mut other = args;
    other[5] = "43";
    assert_ne!(a, env.ok(&other));
    let lines: Vec<serde_json::Value> =
        a.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 300);
    assert!(lines.iter().all(|d| d.as_object().unwrap().len() == 50));

    // The simulated stream ingests cleanly, and a second pass is all duplicates.
    env.add_tenant("contoso");
    let file = env.file("sim.ndjson", &a);
    assert!(env.ok(&["ingest", "-t", "contoso", &file]).contains("stored 300, duplicates 0"));
    let out = env.ok(&["simulate", "-t", "contoso", "--count", "500", "--seed", "7"]);
    assert!(out.contains("stored 500, duplicates 0"), "{out}");
    let rows = env.alerts("contoso", &["--ago", "PT1M"]);
    assert_eq!(rows.len(), 800, "both batches were processed within the last minute");
}

#[test]
fn purge_removes_old_detections_only() {
    let env = Env::new();
    env.add_tenant("contoso");
    let file = env.file("old.ndjson", &ndjson(&[record("old", "2020-01-01T00:00:00Z")]));
    env.ok(&["ingest", "-t", "contoso", "--keep-processed-time", &file]);
    env.ok(&["simulate", "-t", "contoso", "--count", "5"]);
    let out = env.ok(&["purge", "--older-than", "P30D"]);
    assert!(out.starts_with("purged 1 detections"), "{out}");
    assert_eq!(env.stored_full_ids().len(), 5);
}

#[test]
fn ingest_reads_standard_input() {
    use std::io::Write;
    let env = Env::new();
    env.add_tenant("contoso");
    let mut child = env
        .command(&["ingest", "-t", "contoso", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let body = serde_json::to_string(&[record("piped", ""), record("too", "")]).unwrap();
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("stdin: batch 1 (records 1-2): stored 2, duplicates 0"), "{stdout}");
}

#[test]
fn simulate_at_a_rate_stops_after_its_duration() {
    let env = Env::new();
    env.add_tenant("contoso");
    let started = std::time::Instant::now();
    let out = env.ok(&["simulate", "-t", "contoso", "--rate", "100", "--duration", "PT2S"]);
    let elapsed = started.elapsed();
    assert!(elapsed >= std::time::Duration::from_secs(2), "stopped early: {elapsed:?}");
    let stored = env.stored_full_ids().len();
    // About 200; the bounds only catch a rate that is off by a wide margin.
    assert!((100..=400).contains(&stored), "{stored} detections in 2 s at 100/s; {out}");
    let rows = env.alerts("contoso", &["--ago", "PT1M"]);
    assert_eq!(rows.len(), stored);
}
