//! Durability under SIGKILL: an ingest killed at random moments, again and
//! again, never loses a batch it acknowledged and never leaves half a batch.

// The seed and the kill count go to the test's output, to repeat a failing run.
#![allow(clippy::print_stderr)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;

const BATCH: usize = 150;
const BATCHES: usize = 60;
const KILLS: usize = 15;

/// A small deterministic generator for kill delays; the seed is printed so a
/// failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Batch numbers the ingest printed as stored ("...: batch 7 (records ...): stored ...").
fn acknowledged(stdout: &str) -> Vec<usize> {
    stdout
        .lines()
        .filter_map(|l| l.split(": batch ").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn sigkill_during_ingest_loses_no_acknowledged_batch_and_splits_none() {
    let env = Env::new();
    env.add_tenant("contoso");
    let count = (BATCH * BATCHES).to_string();
    let sim = env.ok(&[
        "simulate",
        "--stdout",
        "--count",
        &count,
        "--seed",
        "5",
        "--end",
        "2024-05-01T12:00:00Z",
    ]);
    let file = env.file("fleet.ndjson", &sim);

    // Which batch each FullId belongs to, by its position in the file.
    let batch_of: HashMap<String, usize> = sim
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (v["FullId"].as_str().unwrap().to_owned(), i / BATCH + 1)
        })
        .collect();
    assert_eq!(batch_of.len(), BATCH * BATCHES, "simulated FullIds are unique");

    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64;
    eprintln!("kill-delay seed {seed}");
    let mut rng = Lcg(seed);
    let mut ever_acknowledged = HashSet::new();
    let (mut kills, mut completed, mut kills_mid_ingest) = (0, false, 0);

    while kills < KILLS {
        let mut child = env
            .command(&["ingest", "-t", "contoso", "--batch-size", &BATCH.to_string(), &file])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(30 + rng.below(700));
        let started = Instant::now();
        while started.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let mut stdout = String::new();
        child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        let acked_now = acknowledged(&stdout);
        if !finished && !acked_now.is_empty() && acked_now.len() < BATCHES {
            kills_mid_ingest += 1;
        }
        ever_acknowledged.extend(acked_now);

        let mut present: HashMap<usize, usize> = HashMap::new();
        for full_id in env.stored_full_ids() {
            *present.entry(batch_of[&full_id]).or_default() += 1;
        }
        for (batch, n) in &present {
            assert_eq!(*n, BATCH, "batch {batch} is present in part after kill {kills}");
        }
        for batch in &ever_acknowledged {
            assert_eq!(
                present.get(batch),
                Some(&BATCH),
                "acknowledged batch {batch} lost after kill {kills}"
            );
        }
        if finished {
            completed = true;
            // Start over in a fresh store so the next runs are killed mid-way again.
            assert_eq!(present.len(), BATCHES, "a finished ingest stored every batch");
            std::fs::remove_file(&env.db).unwrap();
            let _ = std::fs::remove_file(env.db.with_extension("db-wal"));
            let _ = std::fs::remove_file(env.db.with_extension("db-shm"));
            env.add_tenant("contoso");
            ever_acknowledged.clear();
        }
    }
    eprintln!("{kills} kills ({kills_mid_ingest} between batches), a run completed: {completed}");
    assert!(kills_mid_ingest >= KILLS / 3, "too few kills landed mid-ingest to mean anything");

    // Whatever the kills left, one more run completes the set exactly once.
    let out = env.ok(&["ingest", "-t", "contoso", "--batch-size", &BATCH.to_string(), &file]);
    assert!(out.contains(&format!("stored {}", BATCH * BATCHES - env_count_before(&out))), "{out}");
    let stored: HashSet<String> = env.stored_full_ids().into_iter().collect();
    assert_eq!(stored.len(), BATCH * BATCHES);
}

/// Duplicates reported by the final summary line, i.e. what earlier runs had stored.
fn env_count_before(summary: &str) -> usize {
    let last = summary.lines().last().unwrap();
    last.rsplit("duplicates ").next().unwrap().trim().parse().unwrap()
}
