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
        let ratio = ours / baseline;
        let ok = ratio >= floor;
        self.all_passed &= ok;
        self.line(
            name,
            &format!("{} {unit}", human(ours)),
            &format!("{} {unit}", human(baseline)),
            &format!("{ratio:>6.2}x"),
            &format!("{floor:>6.2}x"),
            if ok { "ok" } else { "BELOW FLOOR" },
        );
    }

    /// Prints a quantity that must stay under a ceiling, beside the
    /// baseline's when there is one.
    pub fn ceiling(
        &mut self,
        name: &str,
        value: f64,
        baseline: Option<f64>,
        unit: &str,
        ceiling: f64,
    ) {
        let ok = value < ceiling;
        self.all_passed &= ok;
        self.line(
            name,
            &format!("{} {unit}", figure(value)),
            &baseline.map(|b| format!("{} {unit}", figure(b))).unwrap_or_default(),
            "",
            &format!("<{ceiling:.0}"),
            if ok { "ok" } else { "ABOVE CEILING" },
        );
    }

    /// Prints a figure beside its baseline's, with no floor to meet.
    pub fn beside(&mut self, name: &str, ours: f64, baseline: f64, unit: &str) {
        let (ours, baseline) = (figure(ours), figure(baseline));
        self.line(name, &format!("{ours} {unit}"), &format!("{baseline} {unit}"), "", "", "");
    }

    /// One row of the table, under a header printed before the first.
    fn line(
        &mut self,
        name: &str,
        ours: &str,
        baseline: &str,
        ratio: &str,
        floor: &str,
        end: &str,
    ) {
        if !self.started {
            self.started = true;
            self.note(&format!(
                "{:<44} {:>14} {:>14} {:>7} {:>7}  result",
                "measurement", "siemgate", "baseline", "ratio", "floor"
            ));
        }
        self.note(&format!("{name:<44} {ours:>14} {baseline:>14} {ratio:>7} {floor:>7}  {end}"));
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

/// A figure to three significant digits or so: `0.65`, `4.20`, `12.3`.
fn figure(x: f64) -> String {
    if x.abs() < 10.0 { format!("{x:.2}") } else { format!("{x:.1}") }
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
    rss_mib_of("self")
}

/// The resident memory in MiB of the process `pid` (a number or `self`),
/// from `/proc/<pid>/status`; 0 when it cannot be read.
pub fn rss_mib_of(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}
