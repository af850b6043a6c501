//! Printing figures: a line per measurement, its baseline, the ratio and the
//! floor it must clear.

use std::io::Write;
use std::time::Duration;

/// Collects results and whether every floor was met.
#[derive(Debug, Default)]
pub struct Report {
    pub all_passed: bool,
    started: bool,
}

impl Report {
    pub fn new() -> Report {
        Report { all_passed: true, started: false }
    }

    /// Prints a free-form line (a heading or a note).
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(std::io::stdout(), "{text}");
    }

    /// Prints a measured rate beside its baseline's and checks `ours / baseline >= floor`.
    pub fn ratio(&mut self, name: &str, ours: f64, baseline: f64, unit: &str, floor: f64) {
        if !self.started {
            self.started = true;
            self.note(&format!(
                "{:<44} {:>14} {:>14} {:>7} {:>7}  result",
                "measurement", "siemgate", "baseline", "ratio", "floor"
            ));
        }
        let ratio = ours / baseline;
        let ok = ratio >= floor;
        self.all_passed &= ok;
        self.note(&format!(
            "{:<44} {:>14} {:>14} {:>6.2}x {:>6.2}x  {}",
            name,
            format!("{} {unit}", human(ours)),
            format!("{} {unit}", human(baseline)),
            ratio,
            floor,
            if ok { "ok" } else { "BELOW FLOOR" }
        ));
    }

    /// Prints a quantity that must stay under a ceiling.
    pub fn ceiling(&mut self, name: &str, value: f64, unit: &str, ceiling: f64) {
        let ok = value < ceiling;
        self.all_passed &= ok;
        self.note(&format!(
            "{:<44} {:>14} {:>14} {:>7} {:>7}  {}",
            name,
            format!("{value:.1} {unit}"),
            "",
            "",
            format!("<{ceiling:.0}"),
            if ok { "ok" } else { "ABOVE CEILING" }
        ));
    }
}

/// `1234567.0` as `1.23M`.
pub fn human(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2}G", x / 1e9),
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.1}"),
    }
}

/// The `q`-quantile (0..=1) of sorted durations, in microseconds.
pub fn quantile_us(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

/// The median of a few measurements.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// This process's resident memory in MiB, from `/proc/self/status`.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}
