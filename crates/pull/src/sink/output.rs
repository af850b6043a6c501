//! The one-shot outputs: a JSON array (as the API answers), NDJSON or CSV,
//! written to standard output or to a file that appears only when complete.
//!
//! A file is written under a temporary name in its own directory and renamed
//! over the target at commit, so a reader never sees half a pull and a failed
//! pull leaves any earlier file as it was.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::record::Record;
use crate::sink::{Mark, Sink, SinkError};

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array, as `GET /api/alerts` answers.
    Json,
    /// One JSON object a line.
    Ndjson,
    /// A header of the 50 keys, then one row a record (RFC 4180).
    Csv,
}

/// Encodes records in a format, keeping what comes between them.
#[derive(Debug)]
struct Encoder {
    format: Format,
    started: bool,
    records: u64,
}

impl Encoder {
    fn new(format: Format) -> Encoder {
        Encoder { format, started: false, records: 0 }
    }

    fn begin(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        match self.format {
            Format::Json => out.push(b'['),
            Format::Ndjson => {}
            Format::Csv => crate::encode::csv::header(out),
        }
    }

    fn record(&mut self, record: &Record<'_>, out: &mut Vec<u8>) -> Result<(), SinkError> {
        match self.format {
            Format::Json => {
                if self.records > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(record.json);
            }
            Format::Ndjson => {
                one_line(record.json, out);
                out.push(b'\n');
            }
            Format::Csv => crate::encode::csv::row(record.json, out)
                .map_err(|e| SinkError::Refused(format!("cannot write CSV: {e}")))?,
        }
        self.records += 1;
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.begin(out);
        if self.format == Format::Json {
            out.extend_from_slice(b"]\n");
        }
    }
}

/// `json` without CR or LF: in valid JSON they can only be whitespace
/// between tokens (inside strings they are escaped), so a pretty-printed
/// record becomes one line without any change of meaning.
pub fn one_line(json: &[u8], out: &mut Vec<u8>) {
    if memchr::memchr2(b'\n', b'\r', json).is_none() {
        out.extend_from_slice(json);
    } else {
        out.extend(json.iter().copied().filter(|b| !matches!(b, b'\n' | b'\r')));
    }
}

/// A file written whole or not at all.
#[derive(Debug)]
pub struct FileOutput {
    path: PathBuf,
    temp: Option<tempfile::NamedTempFile>,
    encoder: Encoder,
    buf: Vec<u8>,
}

impl FileOutput {
    /// Prepares to write `path`; fails early when its directory is not writable.
    pub fn create(path: &Path, format: Format) -> Result<FileOutput, SinkError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".siemgate-pull-")
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|e| SinkError::io(format!("cannot write in {}", dir.display()), e))?;
        Ok(FileOutput {
            path: path.to_path_buf(),
            temp: Some(temp),
            encoder: Encoder::new(format),
            buf: Vec::with_capacity(1 << 20),
        })
    }

    fn temp(&mut self) -> &mut tempfile::NamedTempFile {
        self.temp.as_mut().expect("the file output is used after its commit")
    }

    fn flush_buf(&mut self) -> Result<(), SinkError> {
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.temp().write_all(&buf);
        buf.clear();
        self.buf = buf;
        result.map_err(|e| SinkError::io(format!("cannot write {}", self.path.display()), e))
    }
}

#[async_trait]
impl Sink for FileOutput {
    async fn write(&mut self, records: &[Record<'_>]) -> Result<(), SinkError> {
        self.encoder.begin(&mut self.buf);
        for record in records {
            self.encoder.record(record, &mut self.buf)?;
        }
        if self.buf.len() >= 1 << 20 {
            self.flush_buf()?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<Mark, SinkError> {
        self.encoder.end(&mut self.buf);
        self.flush_buf()?;
        let path = self.path.clone();
        let failed =
            |e: std::io::Error| SinkError::io(format!("cannot write {}", path.display()), e);
        let temp = self.temp.take().expect("the file output is committed once");
        temp.as_file().sync_all().map_err(failed)?;
        temp.persist(&path).map_err(|e| failed(e.error))?;
        crate::checkpoint::sync_parent(&path).map_err(|e| SinkError::Refused(e.to_string()))?;
        Ok(Mark::Null)
    }

    fn can_roll_back(&self) -> bool {
        true
    }

    async fn roll_back(&mut self) -> Result<(), SinkError> {
        self.buf.clear();
        self.encoder = Encoder::new(self.encoder.format);
        let path = self.path.clone();
        let file = self.temp().as_file_mut();
        file.set_len(0)
            .and_then(|_| file.rewind())
            .map_err(|e| SinkError::io(format!("cannot start {} again", path.display()), e))
    }
}

/// Standard output: records go out only once a whole body has been checked.
#[derive(Debug)]
pub struct StdoutOutput {
    out: tokio::io::BufWriter<tokio::io::Stdout>,
    encoder: Encoder,
    buf: Vec<u8>,
    /// Whether a window's end closes the output (one-shot) or the stream
    /// goes on (following to standard output, always NDJSON).
    one_shot: bool,
}

impl StdoutOutput {
    pub fn new(format: Format, one_shot: bool) -> StdoutOutput {
        StdoutOutput {
            out: tokio::io::BufWriter::with_capacity(1 << 20, tokio::io::stdout()),
            encoder: Encoder::new(format),
            buf: Vec::with_capacity(1 << 16),
            one_shot,
        }
    }
}

fn stdout_error(e: std::io::Error) -> SinkError {
    SinkError::io("cannot write to standard output", e)
}

#[async_trait]
impl Sink for StdoutOutput {
    async fn write(&mut self, records: &[Record<'_>]) -> Result<(), SinkError> {
        self.buf.clear();
        self.encoder.begin(&mut self.buf);
        for record in records {
            self.encoder.record(record, &mut self.buf)?;
        }
        self.out.write_all(&self.buf).await.map_err(stdout_error)
    }

    async fn commit(&mut self) -> Result<Mark, SinkError> {
        if self.one_shot {
            self.buf.clear();
            self.encoder.end(&mut self.buf);
            self.out.write_all(&self.buf).await.map_err(stdout_error)?;
        }
        self.out.flush().await.map_err(stdout_error)?;
        Ok(Mark::Null)
    }
}
