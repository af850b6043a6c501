//! Building the detections of one alert: the fields every detection carries
//! from its alert and device, then the indicator of each kind (a file the
//! antivirus engine caught, a process the EDR sensor flagged, a connection).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use siemgate_model::ids::{self, AlertId};
use siemgate_model::time::TICKS_PER_SECOND;
use siemgate_model::{Detection, Timestamp};

use crate::Device;
use crate::catalog::{self, Behaviour, Connection, Kind, Threat};
use crate::fleet::DeviceText;
use crate::rng::Rng;
use crate::template::Expander;

/// Where and when an alert happens.
#[derive(Debug)]
pub(crate) struct Scene<'a> {
    pub at: Timestamp,
    pub device: &'a Device,
    pub text: &'a DeviceText,
    /// The whole fleet, for indicators that name another device.
    pub fleet: &'a [Device],
    /// The simulator's seed, which fixes the hashes of well-known programs.
    pub seed: u64,
}

/// Appends the `parts` detections of one alert of `kind` to `out`, numbered from 0.
pub(crate) fn alert(
    rng: &mut Rng,
    scene: &Scene<'_>,
    kind: Kind,
    parts: u32,
    out: &mut Vec<Detection>,
) {
    let common = common(rng, scene);
    match kind {
        Kind::Antivirus => antivirus(rng, scene, common, parts, out),
        Kind::Behaviour => behaviour(rng, scene, common, parts, out),
        Kind::Network => network(rng, scene, common, parts, out),
    }
}

/// The fields all detections of the alert share: its time, id, severity and device.
fn common(rng: &mut Rng, scene: &Scene<'_>) -> Detection {
    let id = AlertId { created: scene.at, discriminator: rng.next_u64() as i32 };
    let (device, text) = (scene.device, scene.text);
    Detection {
        alert_time: Some(scene.at),
        alert_id: id.to_string(),
        severity: rng.weighted(&catalog::SEVERITIES).to_string(),
        actor: if rng.percent(4) { rng.pick(&catalog::ACTORS).to_string() } else { String::new() },
        computer_dns_name: device.dns_name.clone(),
        machine_name: device.name.clone(),
        machine_domain: device.domain.clone(),
        device_id: device.device_id.clone(),
        machine_group: device.machine_group.clone(),
        device_created_machine_tags: text.device_tags.clone(),
        cloud_created_machine_tags: text.cloud_tags.clone(),
        log_on_users: text.log_on_users.clone(),
        internal_ipv4_list: text.ipv4.clone(),
        internal_ipv6_list: text.ipv6.clone(),
        ..Detection::default()
    }
}

/// Appends `parts` detections made from `common` to `out`, each numbered,
/// given identifiers of its own and then its indicator by `indicate`.
///
/// `parts` is at least one. The last part takes `common` itself rather than
/// a copy: most alerts have one part, and copying a record's twenty-odd
/// strings showed up high in profiles of large batches.
fn push_parts(
    rng: &mut Rng,
    common: Detection,
    parts: u32,
    out: &mut Vec<Detection>,
    mut indicate: impl FnMut(&mut Rng, &mut Detection),
) {
    debug_assert!(parts > 0, "an alert has at least one detection");
    for part in 0..parts.saturating_sub(1) {
        let mut d = common.clone();
        identify(rng, &mut d, part);
        indicate(rng, &mut d);
        out.push(d);
    }
    let mut d = common;
    identify(rng, &mut d, parts.saturating_sub(1));
    indicate(rng, &mut d);
    out.push(d);
}

/// Numbers `d` as indicator `part` and gives it the identifiers of its own.
fn identify(rng: &mut Rng, d: &mut Detection, part: u32) {
    d.alert_part = part;
    d.ioc_unique_id = BASE64.encode(rng.bytes::<32>());
    d.full_id = ids::full_id(&d.alert_id, &d.ioc_unique_id);
    d.external_id = rng.hex(40, true);
    d.report_id = Some(rng.between(1, i64::from(i32::MAX) + 1));
    let delay = rng.between(TICKS_PER_SECOND, 120 * TICKS_PER_SECOND + 1);
    d.last_processed_time_utc = d.alert_time.map(|at| at.add_ticks(delay));
}

/// The account the activity ran as, split into domain and name.
fn account(rng: &mut Rng, device: &Device) -> (String, String) {
    if device.users.is_empty() {
        return ("NT AUTHORITY".to_owned(), "SYSTEM".to_owned());
    }
    let user = rng.pick(&device.users);
    let (domain, name) = user.split_once('\\').unwrap_or(("", user));
    (domain.to_owned(), name.to_owned())
}

/// SHA-1, MD5 and SHA-256 as lower-case hex, all drawn from `rng`.
fn set_hashes(rng: &mut Rng, d: &mut Detection) {
    d.sha1 = rng.hex(40, false);
    d.md5 = rng.hex(32, false);
    d.sha256 = rng.hex(64, false);
    d.file_hash = d.sha1.clone();
}

/// Hashes for a well-known program: the same file name has the same hashes
/// on every device of a fleet, as `powershell.exe` does in a real one.
fn set_program_hashes(seed: u64, file_name: &str, d: &mut Detection) {
    set_hashes(&mut Rng::new(seed ^ fnv1a(file_name)), d);
}

/// A detection rule's id, fixed by its title so that it never changes.
fn rule_id(title: &str) -> String {
    let mut bytes = Rng::new(fnv1a(title)).bytes::<16>();
    // Version 4, RFC 4122 variant: the GUIDs Windows itself generates.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = ids::hex(&bytes, false);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// FNV-1a, to turn a name into a seed.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn antivirus(
    rng: &mut Rng,
    scene: &Scene<'_>,
    mut common: Detection,
    parts: u32,
    out: &mut Vec<Detection>,
) {
    let threat = rng.weighted(&catalog::THREATS);
    let action = *rng.weighted(&catalog::REMEDIATIONS);
    let success = match action {
        "" => None,
        _ => *rng.weighted(&[(Some(true), 85), (Some(false), 10), (None, 5)]),
    };
    let executing = *rng.weighted(&[(Some(false), 60), (Some(true), 15), (None, 25)]);
    common.alert_title = threat_title(threat, success, executing);
    common.description = threat_description(threat, action, success);
    common.category = threat.category.to_owned();
    common.source = rng.pick(&["Antivirus", "Windows Defender AV"]).to_string();
    common.threat_name = threat.name.to_owned();
    common.threat_family = threat.family.to_owned();
    common.threat_category = threat.threat_category.to_owned();
    common.remediation_action = action.to_owned();
    common.remediation_is_success = success;
    common.was_executing_while_detected = executing;

    let user = account(rng, scene.device).1;
    let user = if user == "SYSTEM" { "Administrator".to_owned() } else { user };
    push_parts(rng, common, parts, out, |rng, d| {
        let mut expander = Expander::new(&user, &scene.device.domain, scene.fleet);
        d.file_name = rng.pick(threat.files).to_string();
        let folder = *rng.pick(&catalog::THREAT_FOLDERS);
        d.file_path = expander.expand(rng, folder);
        set_hashes(rng, d);
    });
}

fn threat_title(threat: &Threat, success: Option<bool>, executing: Option<bool>) -> String {
    let (family, noun) = (threat.family, threat.noun);
    match (success, executing) {
        (Some(true), _) => format!("'{family}' {noun} was prevented"),
        (_, Some(true)) => format!("An active '{family}' {noun} was detected"),
        _ => format!("'{family}' {noun} was detected"),
    }
}

fn threat_description(threat: &Threat, action: &str, success: Option<bool>) -> String {
    let outcome = match (action, success) {
        ("", _) => "reported it without taking action".to_owned(),
        (action, Some(false)) => format!("could not complete the {} action", action.to_lowercase()),
        ("Quarantine", _) => "quarantined the file".to_owned(),
        ("Remove", _) => "removed the file".to_owned(),
        (_, _) => "blocked the file from running".to_owned(),
    };
    format!(
        "Microsoft Defender Antivirus found {} of the {} family and {outcome}.",
        threat.name, threat.family
    )
}

fn behaviour(
    rng: &mut Rng,
    scene: &Scene<'_>,
    mut common: Detection,
    parts: u32,
    out: &mut Vec<Detection>,
) {
    let behaviour: &Behaviour = rng.weighted(&catalog::BEHAVIOURS);
    common.alert_title = behaviour.title.to_owned();
    common.category = behaviour.category.to_owned();
    common.description = behaviour.description.to_owned();
    common.source = "EDR".to_owned();
    common.ioa_definition_id = rule_id(behaviour.title);
    (common.user_domain, common.user_name) = account(rng, scene.device);

    let creator = rng.percent(60).then(|| rng.pick(behaviour.parents).to_string());
    let user = common.user_name.clone();
    push_parts(rng, common, parts, out, |rng, d| {
        let mut expander = Expander::new(&user, &scene.device.domain, scene.fleet);
        let command = *rng.pick(behaviour.commands);
        d.command_line = expander.expand(rng, command);
        d.file_name = behaviour.file_name.to_owned();
        d.file_path = expander.expand(rng, behaviour.folder);
        set_program_hashes(scene.seed, behaviour.file_name, d);
        if let Some(parent) = &creator {
            d.creator_ioc_name = "ProcessName".to_owned();
            d.creator_ioc_value.clone_from(parent);
        }
    });
}

fn network(
    rng: &mut Rng,
    scene: &Scene<'_>,
    mut common: Detection,
    parts: u32,
    out: &mut Vec<Detection>,
) {
    let connection: &Connection = rng.weighted(&catalog::CONNECTIONS);
    common.alert_title = connection.title.to_owned();
    common.category = connection.category.to_owned();
    common.description = connection.description.to_owned();
    common.source = connection.source.to_owned();
    if connection.source == "EDR" {
        common.ioa_definition_id = rule_id(connection.title);
    }
    (common.user_domain, common.user_name) = account(rng, scene.device);
    common.file_name = connection.file_name.to_owned();
    common.file_path = connection.folder.to_owned();
    set_program_hashes(scene.seed, connection.file_name, &mut common);

    let user = common.user_name.clone();
    push_parts(rng, common, parts, out, |rng, d| {
        let mut expander = Expander::new(&user, &scene.device.domain, scene.fleet);
        d.ip_address = expander.ip(rng);
        // Some connections are seen only at the IP layer.
        if rng.percent(80) {
            d.url = expander.url(rng);
            (d.ioc_name, d.ioc_value) = ("Url".to_owned(), d.url.clone());
        } else {
            (d.ioc_name, d.ioc_value) = ("IpAddress".to_owned(), d.ip_address.clone());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_fixed_guids() {
        let id = rule_id("Suspicious PowerShell command line");
        assert!(ids::is_guid(&id), "{id}");
        assert_eq!(id, rule_id("Suspicious PowerShell command line"));
        assert_ne!(id, rule_id("Credential dumping activity"));
        assert_eq!(&id[14..15], "4");
    }
}
