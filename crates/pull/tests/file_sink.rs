//! The file sink against real files: what a commit keeps, what a crash or a
//! roll-back takes back, rotation, and the errors a user sees.
//!
//! Two tests re-run this binary as a child process (selected by an
//! environment variable): one to kill a writer with SIGKILL mid-window, one
//! to lose root's privileges so that a directory can refuse a write.

use std::borrow::Cow;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use siemgate_model::Timestamp;
use siemgate_pull::sink::file::{FileSink, FileSinkConfig};
use siemgate_pull::{Mark, Record, Sink};

const NAME: &str = "detections.ndjson";

/// The JSON of detection `n`, padded so that a window spans many buffers.
fn detection(n: u64, pad: usize) -> String {
    format!(
        r#"{{"FullId":"d-{n}","LastProcessedTimeUtc":"2026-01-01T00:00:00Z","N":{n},"Pad":"{}"}}"#,
        "x".repeat(pad)
    )
}

fn as_records(jsons: &[String]) -> Vec<Record<'_>> {
    let processed = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    jsons
        .iter()
        .enumerate()
        .map(|(i, json)| Record {
            json: json.as_bytes(),
            full_id: Cow::Owned(format!("d-{i}")),
            processed,
        })
        .collect()
}

/// Writes detections `from..to`, a few at a time as the puller does.
async fn write(sink: &mut FileSink, from: u64, to: u64) {
    let jsons: Vec<String> = (from..to).map(|n| detection(n, 40)).collect();
    for slice in jsons.chunks(7) {
        sink.write(&as_records(slice)).await.unwrap();
    }
}

async fn window(sink: &mut FileSink, from: u64, to: u64) -> Mark {
    write(sink, from, to).await;
    sink.commit().await.unwrap()
}

fn sink(config: FileSinkConfig) -> FileSink {
    FileSink::new(config).unwrap()
}

/// The files in `dir` by name (rotated ones sort before the active one).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// The `N` of every line of `name`, checking each line is a JSON object.
fn numbers_in(path: &Path) -> Vec<u64> {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{} ends mid-line", path.display());
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {e}: {line:?}", path.display()));
            value["N"].as_u64().unwrap()
        })
        .collect()
}

/// The `N` of every line of every file in `dir`, in file-name order.
fn numbers(dir: &Path) -> Vec<u64> {
    files(dir).iter().flat_map(|name| numbers_in(&dir.join(name))).collect()
}

fn upto(end: u64) -> Vec<u64> {
    (0..end).collect()
}

#[tokio::test]
async fn a_restore_keeps_what_was_committed_and_drops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    let mut first = sink(FileSinkConfig::new(&path));
    first.restore(None).await.unwrap();
    let mark = window(&mut first, 0, 100).await;
    write(&mut first, 100, 150).await;
    drop(first);
    assert_eq!(numbers(dir.path()), upto(150), "the crash left the uncommitted lines behind");

    let mut second = sink(FileSinkConfig::new(&path));
    second.restore(Some(&mark)).await.unwrap();
    assert_eq!(numbers(dir.path()), upto(100));
    window(&mut second, 100, 200).await;
    assert_eq!(numbers(dir.path()), upto(200));
}

#[tokio::test]
async fn a_crash_before_the_first_commit_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    let mut first = sink(FileSinkConfig::new(&path));
    first.restore(None).await.unwrap();
    let empty = first.commit().await.unwrap();
    write(&mut first, 0, 30).await;
    drop(first);

    let mut second = sink(FileSinkConfig::new(&path));
    second.restore(Some(&empty)).await.unwrap();
    window(&mut second, 0, 10).await;
    assert_eq!(numbers(dir.path()), upto(10));
}

/// Windows of tens of megabytes are synced in the background as they are
/// written; what a crash leaves of the next one still goes.
#[tokio::test]
async fn a_large_window_commits_and_its_successor_is_taken_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    let big: Vec<String> = (0..60_000).map(|n| detection(n, 1_200)).collect();
    let mut first = sink(FileSinkConfig::new(&path));
    first.restore(None).await.unwrap();
    for slice in big[..30_000].chunks(500) {
        first.write(&as_records(slice)).await.unwrap();
    }
    let mark = first.commit().await.unwrap();
    for slice in big[30_000..].chunks(500) {
        first.write(&as_records(slice)).await.unwrap();
    }
    drop(first);
    assert!(fs::metadata(&path).unwrap().len() > 70_000_000);

    sink(FileSinkConfig::new(&path)).restore(Some(&mark)).await.unwrap();
    assert_eq!(numbers(dir.path()), upto(30_000));
}

#[tokio::test]
async fn roll_back_takes_back_what_followed_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(FileSinkConfig::new(dir.path().join(NAME)));
    assert!(sink.can_roll_back());
    sink.restore(None).await.unwrap();
    window(&mut sink, 0, 20).await;
    // More than the sink buffers, so that some of it reached the file.
    write(&mut sink, 20, 20_000).await;
    sink.roll_back().await.unwrap();
    window(&mut sink, 20, 40).await;
    write(&mut sink, 40, 45).await;
    sink.roll_back().await.unwrap();
    sink.commit().await.unwrap();
    assert_eq!(numbers(dir.path()), upto(40));
}

#[tokio::test]
async fn rotation_by_size_splits_only_between_windows() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        FileSinkConfig { rotate_size: Some(2_000), ..FileSinkConfig::new(dir.path().join(NAME)) };
    let mut sink = sink(config);
    sink.restore(None).await.unwrap();
    for w in 0..30 {
        window(&mut sink, w * 10, w * 10 + 10).await;
    }
    let names = files(dir.path());
    assert!(names.len() > 5, "{names:?}");
    assert_eq!(names.last().unwrap(), NAME);
    for name in &names[..names.len() - 1] {
        let numbers = numbers_in(&dir.path().join(name));
        assert!(name.starts_with("detections-") && name.ends_with(".ndjson"), "{name}");
        assert!(
            numbers.len().is_multiple_of(10) && numbers[0].is_multiple_of(10),
            "{name} splits a window"
        );
        assert!(fs::metadata(dir.path().join(name)).unwrap().len() >= 2_000, "{name}");
    }
    assert_eq!(numbers(dir.path()), upto(300));
}

#[tokio::test]
async fn rotation_by_age_rotates_files_with_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let age = Duration::from_millis(500);
    let config =
        FileSinkConfig { rotate_age: Some(age), ..FileSinkConfig::new(dir.path().join(NAME)) };
    let mut sink = sink(config);
    sink.restore(None).await.unwrap();
    window(&mut sink, 0, 5).await;
    window(&mut sink, 5, 10).await;
    assert_eq!(files(dir.path()), [NAME], "rotated too early");
    tokio::time::sleep(age).await;
    window(&mut sink, 10, 15).await;
    assert_eq!(files(dir.path()).len(), 2);

    // Quiet windows leave the empty file alone and restart its clock.
    tokio::time::sleep(age).await;
    sink.commit().await.unwrap();
    assert_eq!(files(dir.path()).len(), 2);
    window(&mut sink, 15, 20).await;
    assert_eq!(files(dir.path()).len(), 2, "the clock did not restart");
    tokio::time::sleep(age).await;
    window(&mut sink, 20, 25).await;
    assert_eq!(files(dir.path()).len(), 3);
    assert_eq!(numbers(dir.path()), upto(25));
}

#[tokio::test]
async fn keep_deletes_the_oldest_rotated_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("detections-notes.ndjson");
    fs::write(&other, "mine\n").unwrap();
    let config = FileSinkConfig {
        rotate_size: Some(1),
        keep: Some(2),
        ..FileSinkConfig::new(dir.path().join(NAME))
    };
    let mut sink = sink(config);
    sink.restore(None).await.unwrap();
    for w in 0..6 {
        window(&mut sink, w * 10, w * 10 + 10).await;
    }
    assert_eq!(fs::read_to_string(&other).unwrap(), "mine\n");
    fs::remove_file(&other).unwrap();
    let names = files(dir.path());
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(numbers(dir.path()), (40..60).collect::<Vec<_>>());
}

#[tokio::test]
async fn rotated_names_never_overwrite_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        FileSinkConfig { rotate_size: Some(1), ..FileSinkConfig::new(dir.path().join(NAME)) };
    let mut sink = sink(config);
    sink.restore(None).await.unwrap();
    let mark = window(&mut sink, 0, 10).await;
    // Someone takes the name the next rotation would use.
    let taken = dir.path().join(mark["rotate_as"].as_str().unwrap());
    fs::write(&taken, "taken\n").unwrap();
    window(&mut sink, 10, 20).await;
    window(&mut sink, 20, 30).await;
    assert_eq!(fs::read_to_string(&taken).unwrap(), "taken\n");
    fs::remove_file(&taken).unwrap();
    assert_eq!(numbers(dir.path()), upto(30));
}

/// Rotation renames the file before the checkpoint takes the new mark; a
/// crash in between must cut the rotated file back, and a crash after it
/// must empty the new active file.
#[tokio::test]
async fn a_crash_around_a_rotation_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    let config = FileSinkConfig { rotate_size: Some(2_000), ..FileSinkConfig::new(&path) };

    let mut first = sink(config.clone());
    first.restore(None).await.unwrap();
    let before = window(&mut first, 0, 10).await;
    window(&mut first, 10, 30).await; // rotates; this mark is never saved
    write(&mut first, 30, 35).await;
    drop(first);
    assert_eq!(files(dir.path()).len(), 2);

    let mut second = sink(config.clone());
    second.restore(Some(&before)).await.unwrap();
    assert_eq!(numbers(dir.path()), upto(10));
    let rotated = window(&mut second, 10, 30).await;
    assert_eq!(files(dir.path()).len(), 3);
    write(&mut second, 30, 35).await;
    drop(second);

    let mut third = sink(config);
    third.restore(Some(&rotated)).await.unwrap();
    assert_eq!(numbers(dir.path()), upto(30));
    window(&mut third, 30, 40).await;
    assert_eq!(numbers(dir.path()), upto(40));
}

#[tokio::test]
async fn a_crash_rotating_a_file_empty_at_the_checkpoint_leaves_no_litter() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        FileSinkConfig { rotate_size: Some(1), ..FileSinkConfig::new(dir.path().join(NAME)) };
    let mut first = sink(config.clone());
    first.restore(None).await.unwrap();
    let empty = first.commit().await.unwrap();
    window(&mut first, 0, 10).await; // rotates; this mark is never saved
    drop(first);
    assert_eq!(files(dir.path()).len(), 2);

    sink(config).restore(Some(&empty)).await.unwrap();
    assert_eq!(files(dir.path()), [NAME]);
    assert_eq!(numbers(dir.path()), upto(0));
}

#[tokio::test]
async fn line_breaks_inside_a_record_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    let pretty =
        "{\r\n  \"FullId\": \"a\",\r\n  \"N\": 7,\n  \"Url\": \"x\\r\\ny\"\r\n}".to_string();
    let plain = detection(8, 0);
    let mut sink = sink(FileSinkConfig::new(&path));
    sink.restore(None).await.unwrap();
    sink.write(&as_records(&[pretty.clone(), plain.clone()])).await.unwrap();
    sink.commit().await.unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let expected =
        "{  \"FullId\": \"a\",  \"N\": 7,  \"Url\": \"x\\r\\ny\"}\n".to_string() + &plain + "\n";
    assert_eq!(text, expected);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first, serde_json::from_str::<Value>(&pretty).unwrap());
}

#[tokio::test]
async fn a_file_already_there_is_refused_on_a_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    fs::write(&path, "{\"older\":1}\n").unwrap();
    let mut sink = sink(FileSinkConfig::new(&path));
    let err = sink.restore(None).await.unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()) && err.contains("move it aside"), "{err}");
    assert!(sink.write(&as_records(&[detection(0, 0)])).await.is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"older\":1}\n");

    // An empty file holds nothing to lose or repeat.
    fs::write(&path, "").unwrap();
    sink.restore(None).await.unwrap();
    window(&mut sink, 0, 3).await;
    assert_eq!(numbers(dir.path()), upto(3));
}

#[tokio::test]
async fn a_file_shorter_than_its_mark_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    let mut first = sink(FileSinkConfig::new(&path));
    first.restore(None).await.unwrap();
    let mark = window(&mut first, 0, 10).await;
    drop(first);
    fs::write(&path, "{\"N\":0}\n").unwrap();
    let err = sink(FileSinkConfig::new(&path)).restore(Some(&mark)).await.unwrap_err();
    assert!(err.to_string().contains("changed outside siemgate"), "{err}");
}

/// A checkpoint written for another path: the old file is cut back to its
/// committed length and the new one starts empty.
#[tokio::test]
async fn a_new_path_leaves_the_old_file_as_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    fs::create_dir(&old).unwrap();
    fs::create_dir(&new).unwrap();
    let mut first = sink(FileSinkConfig::new(old.join(NAME)));
    first.restore(None).await.unwrap();
    let mark = window(&mut first, 0, 10).await;
    write(&mut first, 10, 15).await;
    drop(first);

    let mut second = sink(FileSinkConfig::new(new.join(NAME)));
    second.restore(Some(&mark)).await.unwrap();
    window(&mut second, 10, 20).await;
    assert_eq!(numbers(&old), upto(10));
    assert_eq!(numbers(&new), (10..20).collect::<Vec<_>>());
}

#[cfg(unix)]
const UNPRIVILEGED_CHILD: &str = "SIEMGATE_TEST_FILE_SINK_LOCKED_DIR";

#[cfg(unix)]
#[tokio::test]
async fn a_directory_without_write_permission_gives_a_clear_error() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    if let Ok(locked) = env::var(UNPRIVILEGED_CHILD) {
        return expect_permission_denied(Path::new(&locked)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    if fs::metadata(&locked).unwrap().uid() != 0 {
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
        return expect_permission_denied(&locked).await;
    }

    // Root writes anywhere, so the check runs in a child as `nobody`.
    use std::os::unix::process::CommandExt;
    let out = Command::new(env::current_exe().unwrap())
        .args(["--exact", "a_directory_without_write_permission_gives_a_clear_error"])
        .args(["--nocapture", "--test-threads=1"])
        .env(UNPRIVILEGED_CHILD, &locked)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{output}");
    assert!(output.contains("1 passed"), "{output}");
}

#[cfg(unix)]
async fn expect_permission_denied(locked: &Path) {
    let path = locked.join(NAME);
    let mut sink = sink(FileSinkConfig::new(&path));
    let err = sink.restore(None).await.unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("Permission denied") && err.contains("let the user"), "{err}");
}

const KILLED_CHILD: &str = "SIEMGATE_TEST_FILE_SINK_KILLED_DIR";
const PER_WINDOW: u64 = 40;

/// A writer killed at random points, rotation included, and then finished by
/// another: every detection ends up in the files once, in order.
#[tokio::test]
async fn a_writer_killed_mid_window_loses_and_repeats_nothing() {
    if let Ok(dir) = env::var(KILLED_CHILD) {
        return write_until_killed(Path::new(&dir)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("out")).unwrap();
    for round in 1..=4u64 {
        let mut child = Command::new(env::current_exe().unwrap())
            .args(["--exact", "a_writer_killed_mid_window_loses_and_repeats_nothing"])
            .args(["--nocapture", "--test-threads=1"])
            .env(KILLED_CHILD, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while checkpoint(dir.path()).0 < round * 5 {
            assert!(Instant::now() < deadline, "the child wrote too slowly");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(round * 3));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    let (next, mark) = checkpoint(dir.path());
    let mut sink = sink(killed_config(dir.path()));
    sink.restore(mark.as_ref()).await.unwrap();
    window(&mut sink, next * PER_WINDOW, (next + 1) * PER_WINDOW).await;
    let out = dir.path().join("out");
    assert!(files(&out).len() > 3, "no rotation happened: {:?}", files(&out));
    assert_eq!(numbers(&out), upto((next + 1) * PER_WINDOW));
}

fn killed_config(dir: &Path) -> FileSinkConfig {
    FileSinkConfig { rotate_size: Some(40_000), ..FileSinkConfig::new(dir.join("out").join(NAME)) }
}

/// The next window to write and the sink's mark, as the puller's checkpoint
/// would keep them.
fn checkpoint(dir: &Path) -> (u64, Option<Mark>) {
    match fs::read(dir.join("checkpoint.json")) {
        Ok(bytes) => {
            let saved: Value = serde_json::from_slice(&bytes).unwrap();
            (saved["next"].as_u64().unwrap(), Some(saved["mark"].clone()))
        }
        Err(_) => (0, None),
    }
}

fn save_checkpoint(dir: &Path, next: u64, mark: &Mark) {
    let temporary = dir.join("checkpoint.tmp");
    let body = serde_json::json!({ "next": next, "mark": mark });
    fs::write(&temporary, body.to_string()).unwrap();
    fs::File::open(&temporary).unwrap().sync_all().unwrap();
    fs::rename(&temporary, dir.join("checkpoint.json")).unwrap();
}

/// The child's part: windows of padded detections, each committed and then
/// checkpointed, until it is killed (or, if nobody kills it, for a while).
async fn write_until_killed(dir: &Path) {
    let (mut next, mark) = checkpoint(dir);
    let mut sink = sink(killed_config(dir));
    sink.restore(mark.as_ref()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let jsons: Vec<String> =
            (next * PER_WINDOW..(next + 1) * PER_WINDOW).map(|n| detection(n, 500)).collect();
        for slice in jsons.chunks(3) {
            sink.write(&as_records(slice)).await.unwrap();
        }
        let mark = sink.commit().await.unwrap();
        next += 1;
        save_checkpoint(dir, next, &mark);
    }
}

#[test]
fn a_config_that_cannot_work_is_refused() {
    let bad = |config: FileSinkConfig| FileSink::new(config).unwrap_err().to_string();
    let path = PathBuf::from("/tmp/x.ndjson");
    assert!(bad(FileSinkConfig { keep: Some(0), ..FileSinkConfig::new(&path) }).contains("keep"));
    assert!(
        bad(FileSinkConfig { rotate_size: Some(0), ..FileSinkConfig::new(&path) }).contains("size")
    );
    assert!(bad(FileSinkConfig::new("/")).contains("does not name a file"));
}
