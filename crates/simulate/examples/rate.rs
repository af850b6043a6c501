//! Measures how fast the simulator generates detections:
//! `cargo run --release -p siemgate-simulate --example rate [COUNT]`.
//!
//! It reports two rates: one batch of COUNT records held in memory at once
//! (the cost includes the kernel handing the process a few gigabytes of fresh
//! pages), and the same number made in batches of 10,000 that are dropped as
//! they go, as a loader that streams records into a store would do.

// An example's whole job is to print its measurement.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use siemgate_model::Timestamp;
use siemgate_simulate::{FleetOptions, Simulator};

const CHUNK: usize = 10_000;

fn main() {
    let count = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let start = Timestamp::from_unix_ticks(17_000_000_000_000_000);
    let day = 86_400 * 10_000_000;
    let options = FleetOptions { devices: 5_000, ..FleetOptions::default() };

    let mut simulator = Simulator::new(1, options.clone());
    let began = Instant::now();
    let batch = simulator.batch(count, start, start.add_ticks(day));
    report("in one batch", batch.len(), began);
    drop(batch);

    let mut simulator = Simulator::new(1, options);
    let began = Instant::now();
    let mut made = 0;
    while made < count {
        let size = CHUNK.min(count - made);
        let from = start.add_ticks(day * made as i64 / count as i64);
        made += simulator.batch(size, from, from.add_ticks(day / 100)).len();
    }
    report("in batches of 10,000", made, began);
}

fn report(how: &str, count: usize, began: Instant) {
    let seconds = began.elapsed().as_secs_f64();
    let rate = count as f64 / seconds;
    println!("{count} detections {how} in {seconds:.3} s: {rate:.0} per second");
}
