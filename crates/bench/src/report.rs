//! Printing figures: a row per measurement with, for each side measured (one
//! store backend, or siemgate alone), the figure, its baseline, the ratio and
//! the limit it must keep.

use std::io::Write;
use std::time::Duration;

/// What a figure is, which decides how it prints and which way is better.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Something per second: higher is better.
    Rate,
    /// A latency in `unit`: lower is better.
    Time(&'static str),
    /// An amount in `unit` (memory) with no baseline: it only has to stay small.
    Amount(&'static str),
}

/// The limit a figure must keep.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    None,
    /// The ratio to the baseline must reach this.
    Floor(f64),
    /// The figure itself must stay under this.
    Ceiling(f64),
}

/// One side's figure for one measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    value: f64,
    baseline: Option<f64>,
    kind: Kind,
    limit: Limit,
}

impl Figure {
    /// A rate beside its baseline's.
    pub fn rate(value: f64, baseline: f64) -> Figure {
        Figure { value, baseline: Some(baseline), kind: Kind::Rate, limit: Limit::None }
    }

    /// A latency in `unit` beside its baseline's.
    pub fn time(value: f64, baseline: f64, unit: &'static str) -> Figure {
        Figure { value, baseline: Some(baseline), kind: Kind::Time(unit), limit: Limit::None }
    }

    /// An amount in `unit` with no baseline, such as a memory growth.
    pub fn amount(value: f64, unit: &'static str) -> Figure {
        Figure { value, baseline: None, kind: Kind::Amount(unit), limit: Limit::None }
    }

    /// The ratio to the baseline must reach `floor`.
    pub fn floor(self, floor: f64) -> Figure {
        Figure { limit: Limit::Floor(floor), ..self }
    }

    /// The figure must stay under `ceiling`.
    pub fn ceiling(self, ceiling: f64) -> Figure {
        Figure { limit: Limit::Ceiling(ceiling), ..self }
    }

    /// How fast this is beside its baseline, written so that higher is
    /// better for rates and latencies alike.
    fn ratio(&self) -> Option<f64> {
        faster(self.kind, self.value, self.baseline?)
    }

    fn passed(&self) -> bool {
        match self.limit {
            Limit::None => true,
            Limit::Floor(floor) => self.ratio().is_some_and(|r| r >= floor),
            Limit::Ceiling(ceiling) => self.value < ceiling,
        }
    }

    fn show(&self, value: f64) -> String {
        match self.kind {
            Kind::Rate => format!("{}/s", human(value)),
            Kind::Time(unit) | Kind::Amount(unit) => format!("{} {unit}", figure(value)),
        }
    }
}

/// How much faster `value` is than `reference`, both of `kind`: their
/// quotient for rates, its inverse for latencies; none for amounts.
fn faster(kind: Kind, value: f64, reference: f64) -> Option<f64> {
    match kind {
        Kind::Rate => Some(value / reference),
        Kind::Time(_) => Some(reference / value),
        Kind::Amount(_) => None,
    }
}

/// Collects rows and whether every figure kept its limit.
#[derive(Debug)]
pub struct Report {
    pub all_passed: bool,
    /// The sides compared, in column order: `siemgate` alone, or the backends.
    sides: Vec<&'static str>,
    started: bool,
}

/// Column widths: measurement name, then per side figure, baseline, ratio,
/// limit and result.
const NAME: usize = 46;
const SIDE: [usize; 5] = [11, 11, 7, 7, 4];

impl Report {
    /// A report of siemgate's figures alone.
    pub fn new() -> Report {
        Report::sides(&["siemgate"])
    }

    /// A report with a column group per side, and when there are two, a
    /// last column with the second side's figure beside the first's.
    pub fn sides(sides: &[&'static str]) -> Report {
        Report { all_passed: true, sides: sides.to_vec(), started: false }
    }

    /// Prints a free-form line (a heading or a note).
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(std::io::stdout(), "{text}");
    }

    /// Prints a measured rate beside its baseline's and checks `ours / baseline >= floor`.
    pub fn ratio(&mut self, name: &str, ours: f64, baseline: f64, floor: f64) {
        self.row(name, &[Figure::rate(ours, baseline).floor(floor)]);
    }

    /// Prints an amount that must stay under a ceiling.
    pub fn ceiling(&mut self, name: &str, value: f64, unit: &'static str, ceiling: f64) {
        self.row(name, &[Figure::amount(value, unit).ceiling(ceiling)]);
    }

    /// Prints one measurement: a figure per side, in the order of the sides.
    pub fn row(&mut self, name: &str, figures: &[Figure]) {
        assert_eq!(figures.len(), self.sides.len(), "one figure per side");
        if !self.started {
            self.started = true;
            self.header();
        }
        let mut line = format!("{name:<NAME$}");
        for f in figures {
            let passed = f.passed();
            self.all_passed &= passed;
            let limit = match f.limit {
                Limit::None => String::new(),
                Limit::Floor(floor) => format!("{floor:.2}x"),
                Limit::Ceiling(ceiling) => format!("<{ceiling:.0}"),
            };
            let cells = [
                f.show(f.value),
                f.baseline.map(|b| f.show(b)).unwrap_or_default(),
                f.ratio().map(|r| format!("{r:.2}x")).unwrap_or_default(),
                limit,
                match (f.limit, passed) {
                    (Limit::None, _) => String::new(),
                    (_, true) => "ok".into(),
                    (_, false) => "MISS".into(),
                },
            ];
            push_cells(&mut line, &cells);
        }
        if let [first, second] = figures {
            let across = faster(first.kind, second.value, first.value);
            line.push_str(&format!(
                " {:>16}",
                across.map(|r| format!("{r:.2}x")).unwrap_or_default()
            ));
        }
        self.note(line.trim_end());
    }

    fn header(&mut self) {
        let mut line = format!("{:<NAME$}", "measurement");
        for side in self.sides.clone() {
            push_cells(&mut line, &[side, "baseline", "ratio", "limit", ""].map(String::from));
        }
        if let [first, second] = self.sides[..] {
            line.push_str(&format!(" {:>16}", format!("{second} vs {first}")));
        }
        self.note(line.trim_end());
    }
}

/// Appends one side's cells, right-aligned to their widths, the result left-aligned.
fn push_cells(line: &mut String, cells: &[String; 5]) {
    for (cell, width) in cells[..4].iter().zip(SIDE) {
        line.push_str(&format!(" {cell:>width$}"));
    }
    line.push_str(&format!("  {:<w$}", cells[4], w = SIDE[4]));
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

/// A figure to three significant digits or so: `0.65`, `4.20`, `12.3`, `1234`.
fn figure(x: f64) -> String {
    match x.abs() {
        a if a < 10.0 => format!("{x:.2}"),
        a if a < 100.0 => format!("{x:.1}"),
        _ => format!("{x:.0}"),
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
