//! A simulated Defender for Endpoint fleet: endpoints in a domain and the
//! detections they raise (antivirus finds, EDR behaviours, suspicious
//! connections, alerts of one to four indicators), as
//! [`siemgate_model::Detection`] records.
//!
//! Everything follows from a seed: the same seed and the same calls give the
//! same fleet and the same records, byte for byte, in every release. Nothing
//! here reads a clock or does I/O; callers say when each alert happens.

mod catalog;
mod detections;
mod fleet;
mod rng;
mod template;

use siemgate_model::{Detection, Timestamp};

use crate::detections::Scene;
use crate::fleet::DeviceText;
use crate::rng::Rng;

/// How big and what kind of fleet to simulate.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// How many endpoints; at least one is simulated whatever this says.
    pub devices: usize,
    /// The DNS domain the endpoints are joined to, such as `contoso.com`.
    pub domain: String,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions { devices: 50, domain: "contoso.com".to_owned() }
    }
}

/// One simulated endpoint.
#[derive(Debug, Clone)]
pub struct Device {
    /// `MachineName`, such as `fin-lt-0042` or `sql-srv-0107`.
    pub name: String,
    /// `ComputerDnsName`: the name followed by `.` and the domain.
    pub dns_name: String,
    /// `MachineDomain`.
    pub domain: String,
    /// `DeviceID`: 40 lower-case hexadecimal digits.
    pub device_id: String,
    /// `MachineGroup`, such as `UK Finance` or `France Servers`.
    pub machine_group: String,
    /// The items of `DeviceCreatedMachineTags`; may be empty.
    pub device_tags: Vec<String>,
    /// The items of `CloudCreatedMachineTags`; may be empty.
    pub cloud_tags: Vec<String>,
    /// Users who log on, as `DOMAIN\account`; empty on some servers.
    pub users: Vec<String>,
    /// Internal IPv4 addresses, in 10/8, 172.16/12 or 192.168/16.
    pub ipv4: Vec<String>,
    /// Internal IPv6 addresses, link-local or unique-local; may be empty.
    pub ipv6: Vec<String>,
}

/// Generates the fleet once, then alerts on demand.
#[derive(Debug)]
pub struct Simulator {
    seed: u64,
    rng: Rng,
    fleet: Vec<Device>,
    /// The list fields of each device of `fleet`, already joined.
    texts: Vec<DeviceText>,
}

impl Simulator {
    /// A fleet drawn from `seed`.
    pub fn new(seed: u64, options: FleetOptions) -> Simulator {
        let mut rng = Rng::new(seed);
        let fleet = fleet::generate(&mut rng, &options);
        let texts = fleet.iter().map(DeviceText::of).collect();
        Simulator { seed, rng, fleet, texts }
    }

    /// The simulated endpoints.
    pub fn fleet(&self) -> &[Device] {
        &self.fleet
    }

    /// One alert raised at `at`: 1..=4 detections (most alerts have 1, some 2-4)
    /// sharing one AlertId, AlertPart 0, 1, 2, ... in order.
    pub fn alert(&mut self, at: Timestamp) -> Vec<Detection> {
        let mut out = Vec::with_capacity(4);
        self.raise(at, u32::MAX, &mut out);
        out
    }

    /// Exactly `count` detections whose alert times fall in [start, end), in
    /// non-decreasing AlertTime order (the last alert may be cut short).
    ///
    /// Alerts are spread evenly over the range with jitter. When `end` is not
    /// after `start`, every alert is raised at `start`.
    pub fn batch(&mut self, count: usize, start: Timestamp, end: Timestamp) -> Vec<Detection> {
        let span = u128::try_from(end.unix_ticks() - start.unix_ticks()).unwrap_or(0);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            // The alert starting at detection k takes a time in the k-th of
            // `count` equal slices of the range, so times never go backwards
            // and the last slice still ends before `end`. With 32 bits of
            // jitter the product stays far inside u128 for any batch that fits
            // in memory.
            let slot = ((out.len() as u128) << 32) | u128::from(self.rng.next_u64() >> 32);
            let offset = span * slot / ((count as u128) << 32);
            let room = u32::try_from(count - out.len()).unwrap_or(u32::MAX);
            self.raise(start.add_ticks(offset as i64), room, &mut out);
        }
        out
    }

    /// Appends one alert raised at `at` to `out`, keeping at most `room` of its parts.
    fn raise(&mut self, at: Timestamp, room: u32, out: &mut Vec<Detection>) {
        let index = self.noisy_device();
        let kind = *self.rng.weighted(&catalog::KINDS);
        let parts = *self.rng.weighted(&catalog::PARTS);
        let scene = Scene {
            at,
            device: &self.fleet[index],
            text: &self.texts[index],
            fleet: &self.fleet,
            seed: self.seed,
        };
        detections::alert(&mut self.rng, &scene, kind, parts.min(room), out);
    }

    /// A device index, skewed so that low indices raise more alerts: real
    /// fleets have a few noisy machines and many quiet ones.
    fn noisy_device(&mut self) -> usize {
        let len = self.fleet.len();
        self.rng.index(len).min(self.rng.index(len))
    }
}
