//! The file sink: detections as NDJSON, one JSON object a line, delivered
//! exactly once across crashes together with the puller's checkpoint.
//!
//! The sink writes to one active file and, at commits only, may rename it to
//! a rotated name and start a new one. A commit syncs the data and returns a
//! mark saying how long the active file was and which name it will be rotated
//! to; the puller saves that mark in its checkpoint. Because the rotated name
//! is chosen before any window is written into the file, a restore can always
//! tell whether the file it was told about has been rotated since, and cut
//! whichever file holds it back to the committed length. Everything after
//! that length belongs to a window the puller will fetch again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, ErrorKind, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use siemgate_model::Timestamp;

use super::{Mark, Sink, SinkError};
use crate::record::Record;

/// Bytes gathered before one `write` system call; large enough that the
/// syscalls cost nothing next to the copy, small enough to be a rounding
/// error in memory.
const BUFFER: usize = 1 << 20;

/// Bytes written between background syncs during a window.
const EARLY_SYNC: u64 = 32 << 20;

/// What the CLI configures for the file sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkConfig {
    /// The active file. Rotated files go beside it, named
    /// `<stem>-<UTC start time>-<seq>.<extension>` so that they sort in the
    /// order they were written.
    pub path: PathBuf,
    /// Rotate at the first commit after the active file reaches this many
    /// bytes. A window is never split between files, so a file can exceed
    /// this by up to one window.
    pub rotate_size: Option<u64>,
    /// Rotate at the first commit after the active file has been in use
    /// this long (counted from when it was started, or from the last commit
    /// that found it empty).
    pub rotate_age: Option<Duration>,
    /// How many rotated files to keep; older ones are deleted after each
    /// rotation. `None` keeps them all.
    pub keep: Option<usize>,
}

impl FileSinkConfig {
    /// A configuration writing to `path` without rotation.
    pub fn new(path: impl Into<PathBuf>) -> FileSinkConfig {
        FileSinkConfig { path: path.into(), rotate_size: None, rotate_age: None, keep: None }
    }
}

/// Writes detections to an NDJSON file, with optional rotation.
///
/// The sink owns its files: it cuts the active file back to the last
/// committed length on a restore, so nothing else should write to it or
/// truncate it (rotate with this sink's options, not an outside tool's
/// copy-and-truncate). On a first start, with no mark, it refuses an active
/// file that already holds data: nothing says which of its bytes were
/// delivered, so appending could repeat detections and overwriting would
/// destroy them.
///
/// A rotated file is only renamed, never rewritten, so it can be shipped or
/// read as soon as it appears.
///
/// File I/O runs on the calling task rather than a blocking pool: the
/// puller's task has nothing else to do while its sink writes, and handing
/// every megabyte to another thread would cost a copy for no gain.
#[derive(Debug)]
pub struct FileSink {
    config: FileSinkConfig,
    layout: Layout,
    /// The open active file; `None` before the first use and after a failure,
    /// so that the next use starts again from `saved`.
    active: Option<Active>,
    /// The state as of the last commit: what the checkpoint holds.
    saved: Option<Saved>,
}

/// The open active file.
#[derive(Debug)]
struct Active {
    out: BufWriter<File>,
    /// The file's length counting bytes still in the buffer.
    len: u64,
    /// The file was created since its directory was last synced.
    dir_dirty: bool,
    /// `len` when the last background sync started.
    synced_at: u64,
    /// The background sync, if one was started.
    syncing: Option<JoinHandle<io::Result<()>>>,
}

/// The sink's mark: the active file at the last commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    /// The active file's path.
    file: String,
    /// Its committed length.
    len: u64,
    /// When it was started, for rotation by age.
    started: String,
    /// The file name (in the same directory) it will be rotated to.
    rotate_as: String,
}

/// The directory and the parts of the active file's name that rotated
/// names are built from.
#[derive(Debug, Clone)]
struct Layout {
    dir: PathBuf,
    stem: String,
    /// The extension with its dot, or empty.
    extension: String,
}

impl FileSink {
    /// A sink for `config`. It touches no file until [`Sink::restore`] or the
    /// first write.
    pub fn new(config: FileSinkConfig) -> Result<FileSink, SinkError> {
        let layout = Layout::of(&config.path)?;
        if config.rotate_size == Some(0) {
            return Err(SinkError::Refused("the rotation size must be more than 0 bytes".into()));
        }
        if config.keep == Some(0) {
            return Err(SinkError::Refused(
                "the count of rotated files to keep must be at least 1; leave it unset to keep all"
                    .into(),
            ));
        }
        Ok(FileSink { config, layout, active: None, saved: None })
    }

    /// The open active file, opened from the last saved state if it is not.
    fn ensure_open(&mut self) -> Result<&mut Active, SinkError> {
        if self.active.is_none() {
            let active = self.open()?;
            self.active = Some(active);
        }
        Ok(self.active.as_mut().expect("opened just above"))
    }

    /// Closes the active file without writing what is still buffered.
    fn discard(&mut self) {
        if let Some(active) = self.active.take() {
            let _unwritten = active.out.into_parts();
        }
    }

    /// Brings the files back to the saved state and opens the active file.
    fn open(&mut self) -> Result<Active, SinkError> {
        if let Some(saved) = self.saved.clone() {
            let intact = repair(&saved)?;
            if intact && Path::new(&saved.file) == self.config.path {
                return self.reopen(&saved);
            }
        }
        self.first_start()
    }

    /// Opens the active file the saved state describes, already cut to its
    /// committed length.
    fn reopen(&self, saved: &Saved) -> Result<Active, SinkError> {
        let path = &self.config.path;
        let mut file =
            OpenOptions::new().write(true).open(path).map_err(|e| io_error("open", path, e))?;
        file.seek(SeekFrom::Start(saved.len)).map_err(|e| io_error("seek in", path, e))?;
        Ok(Active::new(file, saved.len, false))
    }

    /// Starts the active file afresh: nothing saved names it.
    ///
    /// A file already there with data in it is refused rather than appended
    /// to or overwritten. With no mark, nothing says which of its bytes were
    /// delivered: it may be the output of a run that crashed before its first
    /// commit, whose records the puller is about to fetch again, so appending
    /// could repeat them, and overwriting would destroy what the user has.
    fn first_start(&mut self) -> Result<Active, SinkError> {
        let path = &self.config.path;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_error("open for writing", path, e))?;
        let len = file.metadata().map_err(|e| io_error("read the size of", path, e))?.len();
        if len > 0 {
            return Err(SinkError::Refused(format!(
                "{} already holds {len} bytes that no checkpoint accounts for (perhaps a run that \
                 stopped before its first commit); move it aside or choose another path, then \
                 start again",
                path.display()
            )));
        }
        let now = now();
        self.saved = Some(Saved {
            file: path.to_string_lossy().into_owned(),
            len: 0,
            started: now.to_string(),
            rotate_as: self.layout.choose_name(now)?,
        });
        Ok(Active::new(file, 0, true))
    }

    /// Flushes and syncs the active file (and its directory if the file is
    /// new), and returns the state to save.
    fn sync(&mut self) -> Result<Saved, SinkError> {
        let path = &self.config.path;
        let active = self.active.as_mut().expect("commit opens the file first");
        active.out.flush().map_err(|e| io_error("write", path, e))?;
        active.wait_for_sync().map_err(|e| io_error("sync", path, e))?;
        active.out.get_ref().sync_data().map_err(|e| io_error("sync", path, e))?;
        if active.dir_dirty {
            sync_dir(&self.layout.dir)?;
            active.dir_dirty = false;
        }
        let mut saved = self.saved.clone().expect("opening the file saves its state");
        saved.len = active.len;
        Ok(saved)
    }

    /// Commits, rotating if it is time; the caller saves the result.
    fn commit_now(&mut self) -> Result<Saved, SinkError> {
        self.ensure_open()?;
        let saved = self.sync()?;
        let now = now();
        let old = age(&saved, now) >= self.config.rotate_age.unwrap_or(Duration::MAX);
        let big = saved.len >= self.config.rotate_size.unwrap_or(u64::MAX);
        if saved.len == 0 && old {
            // Nothing arrived while the clock ran; start it again so that
            // the file's age counts from about its first record.
            let rotate_as = self.layout.choose_name(now)?;
            return Ok(Saved { started: now.to_string(), rotate_as, ..saved });
        }
        if saved.len > 0 && (old || big) {
            return self.rotate(saved, now);
        }
        Ok(saved)
    }

    /// Renames the synced active file to its rotated name and starts a new
    /// one.
    fn rotate(&mut self, saved: Saved, now: Timestamp) -> Result<Saved, SinkError> {
        let target = self.layout.dir.join(&saved.rotate_as);
        if fs::symlink_metadata(&target).is_ok() {
            // Not ours: never overwrite it. Pick a free name and rotate at
            // the next commit, once a checkpoint holds the new name.
            tracing::warn!(file = %target.display(), "a file already has the rotated name");
            let rotate_as = self.layout.choose_name(now)?;
            return Ok(Saved { rotate_as, ..saved });
        }

        let path = &self.config.path;
        self.active = None;
        fs::rename(path, &target).map_err(|e| io_error("rotate", path, e))?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_error("create", path, e))?;
        sync_dir(&self.layout.dir)?;
        self.active = Some(Active::new(file, 0, false));
        tracing::info!(file = %target.display(), bytes = saved.len, "rotated");

        self.prune();
        Ok(Saved {
            file: saved.file,
            len: 0,
            started: now.to_string(),
            rotate_as: self.layout.choose_name(now)?,
        })
    }

    /// Deletes the oldest rotated files beyond the count to keep. A failure
    /// here delays nothing: it is logged and retried at the next rotation.
    fn prune(&self) {
        let Some(keep) = self.config.keep else { return };
        let mut names = match self.layout.rotated() {
            Ok(names) => names,
            Err(error) => {
                tracing::warn!(error = %error, "cannot list rotated files to delete old ones");
                return;
            }
        };
        names.sort();
        let excess = names.len().saturating_sub(keep);
        for (_, _, name) in names.into_iter().take(excess) {
            let path = self.layout.dir.join(&name);
            match fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "deleted an old rotated file"),
                Err(error) => {
                    tracing::warn!(file = %path.display(), error = %error, "cannot delete")
                }
            }
        }
    }
}

#[async_trait]
impl Sink for FileSink {
    /// Cuts the files back to what `mark` says was committed, wherever the
    /// crash left them, and opens the active file. With no mark, an existing
    /// active file must be empty.
    async fn restore(&mut self, mark: Option<&Mark>) -> Result<(), SinkError> {
        self.discard();
        self.saved = match mark {
            None | Some(Mark::Null) => None,
            Some(mark) => Some(serde_json::from_value(mark.clone()).map_err(|e| {
                SinkError::Refused(format!(
                    "the checkpoint's mark for the file sink is unreadable ({e}); was the \
                     checkpoint written for another sink?"
                ))
            })?),
        };
        let active = self.open()?;
        self.active = Some(active);
        Ok(())
    }

    async fn write(&mut self, records: &[Record<'_>]) -> Result<(), SinkError> {
        let result = {
            let active = self.ensure_open()?;
            records.iter().try_for_each(|record| active.put(record.json))
        };
        result.map_err(|e| {
            self.discard();
            io_error("write", &self.config.path, e)
        })
    }

    async fn commit(&mut self) -> Result<Mark, SinkError> {
        match self.commit_now() {
            Ok(saved) => {
                let mark = serde_json::to_value(&saved).expect("the mark is plain JSON");
                self.saved = Some(saved);
                Ok(mark)
            }
            Err(error) => {
                // The checkpoint keeps the previous mark, and so does the
                // sink: the next use cuts back to it.
                self.discard();
                Err(error)
            }
        }
    }

    fn can_roll_back(&self) -> bool {
        true
    }

    async fn roll_back(&mut self) -> Result<(), SinkError> {
        self.discard();
        let active = self.open()?;
        self.active = Some(active);
        Ok(())
    }
}

impl Active {
    fn new(file: File, len: u64, dir_dirty: bool) -> Active {
        let out = BufWriter::with_capacity(BUFFER, file);
        Active { out, len, dir_dirty, synced_at: len, syncing: None }
    }

    /// Starts syncing what has reached the file on another thread, so that
    /// the disk works while the window is still arriving and the commit's
    /// sync finds little left to do: a large window otherwise leaves
    /// hundreds of megabytes dirty for the commit to wait on. (A 180 MB
    /// window arriving over half a second: the commit took 60-80 ms without
    /// this, 15-25 ms with it, on an SSD; slower disks gain more.)
    fn sync_early(&mut self) -> io::Result<()> {
        self.synced_at = self.len;
        if self.syncing.as_ref().is_some_and(|s| !s.is_finished()) {
            return Ok(());
        }
        // A failure must reach the commit: the kernel reports a failed
        // write-back once, to whichever sync asks first.
        self.wait_for_sync()?;
        let file = self.out.get_ref().try_clone()?;
        self.syncing = Some(std::thread::spawn(move || file.sync_data()));
        Ok(())
    }

    /// Waits for the background sync and passes on its failure.
    fn wait_for_sync(&mut self) -> io::Result<()> {
        match self.syncing.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the background sync panicked")),
        }
    }

    /// Appends one record as a line. JSON allows CR and LF only as
    /// whitespace between tokens, so dropping them changes nothing but the
    /// layout; most servers send none, and then the record is copied whole.
    fn put(&mut self, json: &[u8]) -> io::Result<()> {
        if memchr::memchr2(b'\r', b'\n', json).is_none() {
            self.out.write_all(json)?;
            self.len += json.len() as u64;
        } else {
            let mut from = 0;
            for at in memchr::memchr2_iter(b'\r', b'\n', json).chain([json.len()]) {
                self.out.write_all(&json[from..at])?;
                self.len += (at - from) as u64;
                from = at + 1;
            }
        }
        self.out.write_all(b"\n")?;
        self.len += 1;
        if self.len - self.synced_at >= EARLY_SYNC {
            self.sync_early()?;
        }
        Ok(())
    }
}

impl Layout {
    fn of(path: &Path) -> Result<Layout, SinkError> {
        let bad = || SinkError::Refused(format!("{} does not name a file", path.display()));
        let stem = path.file_stem().ok_or_else(bad)?.to_string_lossy().into_owned();
        let extension = match path.extension() {
            Some(extension) => format!(".{}", extension.to_string_lossy()),
            None => String::new(),
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Layout { dir, stem, extension })
    }

    /// A rotated name for a file started at `started`, free in the directory
    /// and sorting after every rotated name with the same second.
    fn choose_name(&self, started: Timestamp) -> Result<String, SinkError> {
        let stamp = compact(started);
        let next = self
            .rotated()?
            .into_iter()
            .filter(|(s, _, _)| *s == stamp)
            .map(|(_, seq, _)| seq + 1)
            .max()
            .unwrap_or(0);
        Ok(format!("{}-{stamp}-{next:04}{}", self.stem, self.extension))
    }

    /// The rotated files in the directory as (time stamp, sequence, name).
    fn rotated(&self) -> Result<Vec<(String, u64, String)>, SinkError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error("list", &self.dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.dir, e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if let Some((stamp, seq)) = self.parse_rotated(&name) {
                found.push((stamp.to_string(), seq, name));
            }
        }
        Ok(found)
    }

    /// Reads `<stem>-YYYYMMDDTHHMMSSZ-<seq><extension>`; `None` for any other
    /// name, so that files the sink did not rotate are never deleted.
    fn parse_rotated<'n>(&self, name: &'n str) -> Option<(&'n str, u64)> {
        let middle = name.strip_prefix(&self.stem)?.strip_prefix('-')?;
        let middle = middle.strip_suffix(&self.extension)?;
        let (stamp, seq) = middle.split_once('-')?;
        let stamp_ok = stamp.len() == 16
            && stamp.bytes().enumerate().all(|(i, b)| match i {
                8 => b == b'T',
                15 => b == b'Z',
                _ => b.is_ascii_digit(),
            });
        let seq_ok = seq.len() >= 4 && seq.bytes().all(|b| b.is_ascii_digit());
        if !stamp_ok || !seq_ok {
            return None;
        }
        Some((stamp, seq.parse().ok()?))
    }
}

/// Cuts back whatever the saved state's file has become to its committed
/// length. Returns true when the active file itself is intact and cut back;
/// false when it is gone or was rotated since, and a new one must start.
fn repair(saved: &Saved) -> Result<bool, SinkError> {
    let file = Path::new(&saved.file);
    let rotated = file.with_file_name(&saved.rotate_as);
    if fs::symlink_metadata(&rotated).is_ok() {
        // The crash came after the rotation but before the checkpoint took
        // the new mark: the rotated file holds the window being committed,
        // and anything at the active path is newer still. Cut back to
        // nothing, the rotated file would only be litter.
        if saved.len == 0 {
            fs::remove_file(&rotated).map_err(|e| io_error("remove", &rotated, e))?;
        } else {
            cut(&rotated, saved.len)?;
        }
        match fs::remove_file(file) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(io_error("remove", file, e)),
            _ => {}
        }
        sync_dir(file.parent().unwrap_or(Path::new(".")))?;
        return Ok(false);
    }
    match fs::metadata(file) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if saved.len > 0 {
                tracing::warn!(file = %file.display(), "the file was moved away; starting a new one");
            }
            Ok(false)
        }
        Err(e) => Err(io_error("read the size of", file, e)),
        Ok(_) => cut(file, saved.len).map(|()| true),
    }
}

/// Truncates `path` to `len` bytes and syncs it.
fn cut(path: &Path, len: u64) -> Result<(), SinkError> {
    let file = OpenOptions::new().write(true).open(path).map_err(|e| io_error("open", path, e))?;
    let now = file.metadata().map_err(|e| io_error("read the size of", path, e))?.len();
    if now < len {
        return Err(SinkError::Refused(format!(
            "{} holds {now} bytes, fewer than the {len} committed to it: it was changed outside \
             siemgate; move it aside, then start again",
            path.display()
        )));
    }
    if now > len {
        file.set_len(len).map_err(|e| io_error("truncate", path, e))?;
        file.sync_data().map_err(|e| io_error("sync", path, e))?;
    }
    Ok(())
}

/// Makes a rename or a new file in `dir` survive a power cut.
fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync the directory", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// How long the saved file has been in use; zero if its start is unreadable
/// or in the future (the clock moved back).
fn age(saved: &Saved, now: Timestamp) -> Duration {
    let Ok(started) = Timestamp::parse(&saved.started) else { return Duration::ZERO };
    let ticks = now.unix_ticks().saturating_sub(started.unix_ticks()).max(0);
    Duration::from_nanos((ticks as u64).saturating_mul(100))
}

/// `2026-01-31T12:34:56.789Z` as `20260131T123456Z`, for file names.
fn compact(time: Timestamp) -> String {
    let text = time.to_string();
    let mut out: String = text[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    out.push('Z');
    out
}

/// An I/O failure on `path`, with what the user can do about it.
fn io_error(action: &str, path: &Path, error: io::Error) -> SinkError {
    let hint = match error.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            " (let the user siemgate runs as write there, or choose another path)"
        }
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            " (free some space or choose another disk; the window will be fetched again)"
        }
        ErrorKind::NotFound => " (create the directory or correct the path)",
        ErrorKind::NotADirectory => " (part of the path is a file, not a directory)",
        _ => "",
    };
    SinkError::io(format!("cannot {action} {}{hint}", path.display()), error)
}
