//! The simulated endpoints: names, groups, tags, users and addresses, drawn
//! once per seed so that every detection of a device tells the same story.

use crate::catalog::{self, Role};
use crate::rng::Rng;
use crate::{Device, FleetOptions};

/// A device's list fields joined as the record carries them, built once so
/// that detections only copy them.
#[derive(Debug, Clone)]
pub(crate) struct DeviceText {
    pub device_tags: String,
    pub cloud_tags: String,
    pub log_on_users: String,
    pub ipv4: String,
    pub ipv6: String,
}

impl DeviceText {
    pub fn of(device: &Device) -> DeviceText {
        DeviceText {
            device_tags: device.device_tags.join(", "),
            cloud_tags: device.cloud_tags.join(", "),
            log_on_users: device.users.join(", "),
            ipv4: device.ipv4.join(", "),
            ipv6: device.ipv6.join(", "),
        }
    }
}

/// `options.devices` endpoints (at least one) in `options.domain`.
pub(crate) fn generate(rng: &mut Rng, options: &FleetOptions) -> Vec<Device> {
    let netbios = netbios_name(&options.domain);
    let ula_prefix =
        format!("fd{:02x}:{:04x}:{:04x}", rng.below(256), rng.below(1 << 16), rng.below(1 << 16));
    // Asset numbers start somewhere in the middle, as in a fleet with history,
    // and count up so that every name is unique.
    let first_number = 1 + rng.index(900);
    (0..options.devices.max(1))
        .map(|i| {
            let names =
                Names { number: first_number + i, domain: &options.domain, netbios: &netbios };
            device(rng, &names, &ula_prefix)
        })
        .collect()
}

/// What a device's names are made of.
struct Names<'a> {
    number: usize,
    domain: &'a str,
    netbios: &'a str,
}

fn device(rng: &mut Rng, names: &Names<'_>, ula_prefix: &str) -> Device {
    let role = *rng.weighted(&catalog::ROLES);
    let site = rng.weighted(&catalog::SITES);
    let department = rng.weighted(&catalog::DEPARTMENTS);
    let (name, machine_group) = match role {
        Role::Server => (
            format!("{}-srv-{:04}", rng.pick(&catalog::SERVER_FUNCTIONS), names.number),
            format!("{} Servers", site.name),
        ),
        _ => (
            format!("{}-{}-{:04}", department.code, role_code(role), names.number),
            format!("{} {}", site.name, department.name),
        ),
    };
    Device {
        dns_name: format!("{name}.{}", names.domain),
        name,
        domain: names.domain.to_owned(),
        device_id: rng.hex(40, false),
        machine_group,
        device_tags: device_tags(rng, role, department.code),
        cloud_tags: cloud_tags(rng, role),
        users: users(rng, role, names.netbios),
        ipv4: ipv4(rng, role, site.ipv4_prefix),
        ipv6: ipv6(rng, role, ula_prefix),
    }
}

fn role_code(role: Role) -> &'static str {
    match role {
        Role::Laptop => "lt",
        Role::Desktop => "ws",
        Role::VirtualDesktop => "vd",
        Role::Server => "srv",
    }
}

/// The pre-Windows-2000 domain name users sign in with: the first label,
/// upper-cased, at most 15 characters.
fn netbios_name(domain: &str) -> String {
    let label = domain.split('.').next().unwrap_or(domain);
    label.chars().take(15).collect::<String>().to_uppercase()
}

/// Up to two distinct items of `table`, none at all `1 - percent` of the time.
fn some_of(rng: &mut Rng, table: &[&str], percent: u64) -> Vec<String> {
    let mut items = Vec::new();
    if rng.percent(percent) {
        items.push(rng.pick(table).to_string());
        let second = *rng.pick(table);
        if rng.percent(30) && items[0] != second {
            items.push(second.to_owned());
        }
    }
    items
}

fn device_tags(rng: &mut Rng, role: Role, department: &str) -> Vec<String> {
    let mut tags = match role {
        Role::Server => Vec::new(),
        _ => some_of(rng, &catalog::DEVICE_TAGS, 30),
    };
    if department == "exec" && !tags.iter().any(|t| t == "VIP") {
        tags.insert(0, "VIP".to_owned());
    }
    tags
}

fn cloud_tags(rng: &mut Rng, role: Role) -> Vec<String> {
    let mut tags = some_of(rng, &catalog::CLOUD_TAGS, 50);
    if role == Role::Server && rng.percent(25) {
        tags.push("Tier0".to_owned());
    }
    tags
}

/// A person's account name, such as `jdoe`.
fn person(rng: &mut Rng) -> String {
    let first = rng.pick(&catalog::FIRST_NAMES);
    let last = rng.pick(&catalog::LAST_NAMES);
    format!("{}{last}", &first[..1])
}

/// Who signs in: owners on workstations, several people on virtual desktops,
/// administrators and service accounts on servers.
fn users(rng: &mut Rng, role: Role, netbios: &str) -> Vec<String> {
    let accounts: Vec<String> = match role {
        Role::Laptop | Role::Desktop => {
            let count = if rng.percent(20) { 2 } else { 1 };
            (0..count).map(|_| person(rng)).collect()
        }
        Role::VirtualDesktop => (0..1 + rng.index(3)).map(|_| person(rng)).collect(),
        Role::Server => (0..rng.index(3))
            .map(|_| {
                if rng.percent(50) {
                    format!("adm-{}", person(rng))
                } else {
                    rng.pick(&catalog::SERVICE_ACCOUNTS).to_string()
                }
            })
            .collect(),
    };
    let mut users: Vec<String> =
        accounts.into_iter().map(|account| format!("{netbios}\\{account}")).collect();
    users.dedup();
    users
}

fn ipv4(rng: &mut Rng, role: Role, prefix: &str) -> Vec<String> {
    // Servers sit in the low subnets of their site, clients above them.
    let subnet = match role {
        Role::Server => rng.below(8),
        _ => 16 + rng.below(200),
    };
    let mut addresses = vec![format!("{prefix}.{subnet}.{}", 1 + rng.below(254))];
    if role == Role::Laptop && rng.percent(25) {
        // A laptop on the VPN also holds an address from the VPN pool.
        addresses.push(format!("10.250.{}.{}", rng.below(64), 1 + rng.below(254)));
    }
    addresses
}

fn ipv6(rng: &mut Rng, role: Role, ula_prefix: &str) -> Vec<String> {
    let mut addresses = Vec::new();
    if rng.percent(65) {
        let [a, b, c, d] = [(); 4].map(|()| rng.below(1 << 16));
        addresses.push(format!("fe80::{a:x}:{b:x}:{c:x}:{d:x}"));
    }
    if role == Role::Server && rng.percent(40) {
        addresses.push(format!("{ula_prefix}:{:x}::{:x}", rng.below(16), 1 + rng.below(1 << 12)));
    }
    addresses
}

#[cfg(test)]
mod tests {
    use siemgate_model::ids;

    use super::*;

    #[test]
    fn netbios_name_is_the_first_label_upper_cased() {
        assert_eq!(netbios_name("contoso.com"), "CONTOSO");
        assert_eq!(netbios_name("averyveryverylongname.example"), "AVERYVERYVERYLO");
        assert_eq!(netbios_name("local"), "LOCAL");
    }

    #[test]
    fn names_are_unique_and_addresses_internal() {
        let options = FleetOptions { devices: 300, ..FleetOptions::default() };
        let fleet = generate(&mut Rng::new(3), &options);
        let mut names: Vec<&str> = fleet.iter().map(|d| d.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 300);
        for device in &fleet {
            assert_eq!(device.dns_name, format!("{}.contoso.com", device.name));
            assert!(ids::is_hex(&device.device_id, 40));
            for address in &device.ipv4 {
                let internal = ["10.", "172.16.", "172.17.", "192.168."];
                assert!(internal.iter().any(|p| address.starts_with(p)), "{address}");
            }
            for address in &device.ipv6 {
                assert!(address.starts_with("fe80::") || address.starts_with("fd"), "{address}");
            }
        }
    }
}
