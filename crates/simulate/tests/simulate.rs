//! The simulator through its public API: determinism, the shape of batches,
//! and records the server's `prepare` accepts as they are.

use std::collections::{BTreeMap, BTreeSet};

use siemgate_model::prepare::{PrepareOptions, prepare};
use siemgate_model::{Detection, Timestamp, ids};
use siemgate_simulate::{FleetOptions, Simulator};

fn time(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn day_batch(seed: u64, count: usize) -> Vec<Detection> {
    let mut simulator = Simulator::new(seed, FleetOptions::default());
    simulator.batch(count, time("2024-05-01T00:00:00Z"), time("2024-05-02T00:00:00Z"))
}

fn options() -> PrepareOptions {
    PrepareOptions { portal_url: "https://localhost:8443".into(), keep_processed_time: false }
}

#[test]
fn the_same_seed_gives_the_same_records_and_another_seed_does_not() {
    assert_eq!(day_batch(42, 2_000), day_batch(42, 2_000));
    assert_ne!(day_batch(42, 50), day_batch(43, 50));

    let names = |seed| -> Vec<String> {
        let simulator = Simulator::new(seed, FleetOptions::default());
        simulator.fleet().iter().map(|d| d.device_id.clone()).collect()
    };
    assert_eq!(names(7), names(7));
    assert_ne!(names(7), names(8));
}

#[test]
fn batches_have_the_exact_count_in_order_inside_the_range() {
    let (start, end) = (time("2024-05-01T10:00:00Z"), time("2024-05-01T10:05:00Z"));
    let mut simulator = Simulator::new(1, FleetOptions::default());
    for count in [0, 1, 2, 3, 7, 1_000, 4_999] {
        let batch = simulator.batch(count, start, end);
        assert_eq!(batch.len(), count);
        let times: Vec<Timestamp> = batch.iter().map(|d| d.alert_time.unwrap()).collect();
        assert!(times.iter().all(|t| (start..end).contains(t)), "a time outside the range");
        assert!(times.is_sorted(), "times go backwards");
    }
    let one_instant = simulator.batch(10, start, start);
    assert!(one_instant.iter().all(|d| d.alert_time == Some(start)));
}

#[test]
fn every_record_passes_prepare_with_its_own_ids() {
    for d in day_batch(5, 5_000) {
        let full_id = d.full_id.clone();
        let prepared = prepare(d, &options()).unwrap_or_else(|e| panic!("{full_id}: {e}"));
        assert_eq!(prepared.full_id, full_id, "prepare had to generate the id");
    }
}

#[test]
fn records_have_the_documented_formats() {
    for d in day_batch(6, 5_000) {
        assert!(ids::AlertId::parse(&d.alert_id).is_some(), "{}", d.alert_id);
        assert_eq!(ids::AlertId::parse(&d.alert_id).unwrap().created, d.alert_time.unwrap());
        assert!(ids::is_ioc_unique_id(&d.ioc_unique_id), "{}", d.ioc_unique_id);
        assert_eq!(d.full_id, ids::full_id(&d.alert_id, &d.ioc_unique_id));
        assert!(ids::is_hex(&d.external_id, 40) && d.external_id == d.external_id.to_uppercase());
        assert!(ids::is_hex(&d.device_id, 40) && d.device_id == d.device_id.to_lowercase());
        assert!((1..=i64::from(i32::MAX)).contains(&d.report_id.unwrap()));
        let delay =
            d.last_processed_time_utc.unwrap().unix_ticks() - d.alert_time.unwrap().unix_ticks();
        assert!((10_000_000..=1_200_000_000).contains(&delay), "{delay}");
        assert!(!d.alert_title.is_empty() && d.description.ends_with('.'));
        assert!(["Informational", "Low", "Medium", "High"].contains(&d.severity.as_str()));
        assert!(d.link_to_wdatp.is_empty() && d.incident_link_to_mtp.is_empty());
        if !d.sha1.is_empty() {
            assert!(ids::is_hex(&d.sha1, 40) && ids::is_hex(&d.md5, 32));
            assert!(ids::is_hex(&d.sha256, 64) && d.file_hash == d.sha1);
        }
        if !d.ioa_definition_id.is_empty() {
            assert!(ids::is_guid(&d.ioa_definition_id));
        }
        assert_eq!(d.computer_dns_name, format!("{}.{}", d.machine_name, d.machine_domain));
    }
}

/// Which of the three kinds a detection is, told from its fields.
fn kind(d: &Detection) -> &'static str {
    if !d.threat_name.is_empty() {
        "antivirus"
    } else if !d.ip_address.is_empty() {
        "network"
    } else {
        "behaviour"
    }
}

#[test]
fn all_three_kinds_appear_with_their_indicators() {
    let batch = day_batch(9, 5_000);
    let mut counts = BTreeMap::new();
    for d in &batch {
        *counts.entry(kind(d)).or_insert(0) += 1;
        match kind(d) {
            "antivirus" => {
                assert!(["Antivirus", "Windows Defender AV"].contains(&d.source.as_str()));
                assert!(!d.threat_family.is_empty() && !d.threat_category.is_empty());
                assert!(!d.file_name.is_empty() && d.file_path.starts_with("C:\\"));
            }
            "network" => {
                let documentation = ["192.0.2.", "198.51.100.", "203.0.113."];
                assert!(documentation.iter().any(|p| d.ip_address.starts_with(p)));
                assert!(d.url.is_empty() || d.url.contains(".example"), "{}", d.url);
                assert!(["CommandAndControl", "Exfiltration"].contains(&d.category.as_str()));
                assert!(["EDR", "Network protection"].contains(&d.source.as_str()));
            }
            _ => {
                assert_eq!(d.source, "EDR");
                assert!(!d.command_line.is_empty() && !d.command_line.contains('{'));
                assert!(!d.user_name.is_empty() && !d.user_domain.is_empty());
                assert!(ids::is_guid(&d.ioa_definition_id));
            }
        }
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|&n| n > 300), "{counts:?}");
}

#[test]
fn multi_indicator_alerts_number_their_parts_in_order() {
    let batch = day_batch(11, 5_000);
    let mut alerts: Vec<Vec<&Detection>> = Vec::new();
    for d in &batch {
        match alerts.last_mut() {
            Some(alert) if alert[0].alert_id == d.alert_id => alert.push(d),
            _ => alerts.push(vec![d]),
        }
    }
    let ids: BTreeSet<&str> = alerts.iter().map(|a| a[0].alert_id.as_str()).collect();
    assert_eq!(ids.len(), alerts.len(), "an alert's detections are not adjacent");
    for alert in &alerts {
        let parts: Vec<u32> = alert.iter().map(|d| d.alert_part).collect();
        assert_eq!(parts, (0..alert.len() as u32).collect::<Vec<_>>());
        assert!(alert.len() <= 4);
        assert!(alert.iter().all(|d| d.alert_title == alert[0].alert_title));
        assert!(alert.iter().all(|d| d.device_id == alert[0].device_id));
    }
    let multi = alerts.iter().filter(|a| a.len() > 1).count();
    assert!(multi * 10 > alerts.len(), "{multi} of {} alerts have several parts", alerts.len());
    let full_ids: BTreeSet<&str> = batch.iter().map(|d| d.full_id.as_str()).collect();
    assert_eq!(full_ids.len(), batch.len(), "FullId repeats");
}

#[test]
fn the_fleet_varies_in_groups_tags_and_users() {
    let simulator = Simulator::new(3, FleetOptions { devices: 200, domain: "fabrikam.org".into() });
    let fleet = simulator.fleet();
    assert_eq!(fleet.len(), 200);
    let distinct = |values: Vec<&str>| values.into_iter().collect::<BTreeSet<_>>().len();
    assert!(distinct(fleet.iter().map(|d| d.machine_group.as_str()).collect()) >= 10);
    let tags = fleet.iter().flat_map(|d| &d.device_tags).map(String::as_str).collect();
    assert!(distinct(tags) >= 4);
    let cloud = fleet.iter().flat_map(|d| &d.cloud_tags).map(String::as_str).collect();
    assert!(distinct(cloud) >= 4);
    let users: Vec<&str> = fleet.iter().flat_map(|d| &d.users).map(String::as_str).collect();
    assert!(distinct(users.clone()) >= 50);
    assert!(users.iter().all(|u| u.starts_with("FABRIKAM\\")), "{users:?}");
    assert!(fleet.iter().any(|d| d.device_tags.is_empty()));
    assert!(fleet.iter().all(|d| d.dns_name.ends_with(".fabrikam.org")));
}

#[test]
fn records_carry_their_device() {
    let mut simulator = Simulator::new(12, FleetOptions::default());
    let records = simulator.alert(time("2024-05-01T12:00:00.1234567Z"));
    let device = simulator.fleet().iter().find(|d| d.device_id == records[0].device_id).unwrap();
    let d = &records[0];
    assert_eq!(d.machine_name, device.name);
    assert_eq!(d.machine_group, device.machine_group);
    assert_eq!(d.log_on_users, device.users.join(", "));
    assert_eq!(d.internal_ipv4_list, device.ipv4.join(", "));
    assert_eq!(d.internal_ipv6_list, device.ipv6.join(", "));
    assert_eq!(d.device_created_machine_tags, device.device_tags.join(", "));
    assert_eq!(d.cloud_created_machine_tags, device.cloud_tags.join(", "));
    assert_eq!(d.alert_time, Some(time("2024-05-01T12:00:00.1234567Z")));
}
