//! The checkpoint: where a followed stream resumes, kept in one small JSON
//! file that is replaced atomically (written beside, synced, renamed, the
//! directory synced), so a crash leaves either the old state or the new one.
//!
//! It holds the start of the next window, the FullIds already delivered at
//! exactly that instant, and the sink's own mark, so that the sink's output
//! and the position move in the same single step.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use siemgate_model::Timestamp;

use crate::error::PullError;
use crate::sink::Mark;

/// The version written; a file of a later version is refused.
const VERSION: u32 = 1;

/// A stream's position.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The next window starts here, inclusively.
    pub since: Timestamp,
    /// FullIds already delivered whose `LastProcessedTimeUtc` is `since`.
    pub delivered_at_since: HashSet<String>,
    /// What the sink needs to resume; `null` for most sinks.
    pub sink: Mark,
}

#[derive(Debug, Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    /// The API the position belongs to, so one is never read for another.
    api: String,
    since: String,
    delivered_at_since: Vec<String>,
    #[serde(default)]
    sink: Mark,
    /// When this was written, for people reading the file.
    written: String,
}

/// One stream's checkpoint file, locked for as long as this value lives so
/// that two pullers never follow the same stream.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    api: String,
    _lock: File,
}

impl Checkpoint {
    /// Takes the checkpoint at `path` for the stream of `api` (the alerts
    /// URL and tenant, as one string).
    pub fn open(path: &Path, api: &str) -> Result<Checkpoint, PullError> {
        let lock_path = sibling(path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| PullError::io(format!("cannot open {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(PullError::Refused(format!(
                    "another siemgate pull is following the checkpoint {}; \
                     run one puller per checkpoint",
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(PullError::io(format!("cannot lock {}", lock_path.display()), e));
            }
        }
        Ok(Checkpoint { path: path.to_path_buf(), api: api.to_string(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved position, or `None` when the stream has never moved.
    pub fn load(&self) -> Result<Option<Position>, PullError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(PullError::io(format!("cannot read {}", self.path.display()), e));
            }
        };
        let unreadable = |why: String| {
            PullError::Refused(format!(
                "the checkpoint {} cannot be read ({why}); it was not changed. Move it \
                 aside and give --since to start again from a chosen time",
                self.path.display()
            ))
        };
        let disk: OnDisk = serde_json::from_slice(&text).map_err(|e| unreadable(e.to_string()))?;
        if disk.version > VERSION {
            return Err(unreadable(format!(
                "version {} is newer than this siemgate",
                disk.version
            )));
        }
        if disk.api != self.api {
            return Err(PullError::Refused(format!(
                "the checkpoint {} belongs to {}, not {}; give each stream its own checkpoint",
                self.path.display(),
                disk.api,
                self.api
            )));
        }
        let since = Timestamp::parse(&disk.since).map_err(|e| unreadable(e.to_string()))?;
        Ok(Some(Position {
            since,
            delivered_at_since: disk.delivered_at_since.into_iter().collect(),
            sink: disk.sink,
        }))
    }

    /// Replaces the saved position with `position`, durably.
    pub fn save(&self, position: &Position, now: Timestamp) -> Result<(), PullError> {
        let mut ids: Vec<String> = position.delivered_at_since.iter().cloned().collect();
        ids.sort();
        let disk = OnDisk {
            version: VERSION,
            api: self.api.clone(),
            since: position.since.to_string(),
            delivered_at_since: ids,
            sink: position.sink.clone(),
            written: now.to_string(),
        };
        let mut text = serde_json::to_vec_pretty(&disk).expect("a checkpoint always serializes");
        text.push(b'\n');
        write_atomically(&self.path, &text)
    }
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the
/// old file or the new one, whole.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PullError> {
    let temp = sibling(path, ".tmp");
    let failed = |what: &str, e| PullError::io(format!("cannot {what} {}", temp.display()), e);
    let mut file = File::create(&temp).map_err(|e| failed("create", e))?;
    file.write_all(bytes).map_err(|e| failed("write", e))?;
    file.sync_all().map_err(|e| failed("sync", e))?;
    drop(file);
    std::fs::rename(&temp, path)
        .map_err(|e| PullError::io(format!("cannot replace {}", path.display()), e))?;
    sync_parent(path)
}

/// Makes a rename or a new file in `path`'s directory durable.
pub fn sync_parent(path: &Path) -> Result<(), PullError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PullError::io(format!("cannot sync the directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let cp = Checkpoint::open(&path, "https://x/api/alerts t").unwrap();
        assert_eq!(cp.load().unwrap(), None);
        let position = Position {
            since: Timestamp::parse("2026-01-01T00:00:00.1234567Z").unwrap(),
            delivered_at_since: ["a".to_string(), "b".to_string()].into(),
            sink: serde_json::json!({"file": "out.ndjson", "length": 12}),
        };
        cp.save(&position, Timestamp::parse("2026-01-02").unwrap()).unwrap();
        assert_eq!(cp.load().unwrap(), Some(position));
        assert!(!sibling(&path, ".tmp").exists());
    }

    #[test]
    fn a_second_puller_on_one_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let _first = Checkpoint::open(&path, "a").unwrap();
        let err = Checkpoint::open(&path, "a").unwrap_err().to_string();
        assert!(err.contains("another siemgate pull"), "{err}");
    }

    #[test]
    fn a_damaged_or_foreign_checkpoint_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = Checkpoint::open(&path, "a").unwrap().load().unwrap_err().to_string();
        assert!(err.contains("cannot be read") && err.contains("--since"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");

        let cp = Checkpoint::open(&dir.path().join("b.json"), "api one").unwrap();
        let position = Position {
            since: Timestamp::parse("2026-01-01").unwrap(),
            delivered_at_since: HashSet::new(),
            sink: Mark::Null,
        };
        cp.save(&position, position.since).unwrap();
        drop(cp);
        let err = Checkpoint::open(&dir.path().join("b.json"), "api two")
            .unwrap()
            .load()
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to api one"), "{err}");
    }
}
