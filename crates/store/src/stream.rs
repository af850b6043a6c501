//! A window of detections on its way out: stored JSON objects framed as a
//! JSON array or as NDJSON, in chunks of about half a megabyte.
//!
//! The backend reads rows on a worker and hands chunks over a channel of a
//! few slots, so a slow reader holds back the worker instead of letting a
//! million rows pile up in memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::mpsc;

use crate::StoreError;

/// How the stored objects are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `[{...},{...}]`, and `[]` for an empty window: the API's response body.
    JsonArray,
    /// One object per line, each line ending in `\n`.
    Ndjson,
}

/// A piece of the framed output and how many detections it completes.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub bytes: Bytes,
    pub detections: usize,
}

/// Chunks in order; an `Err` item ends the stream and means the output is
/// incomplete and must not be used as if it were whole.
#[derive(Debug)]
pub struct DetectionStream {
    chunks: mpsc::Receiver<Result<Chunk, StoreError>>,
}

impl Stream for DetectionStream {
    type Item = Result<Chunk, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.poll_recv(cx)
    }
}

/// How many chunks may wait between the worker and the reader.
const CHANNEL_SLOTS: usize = 4;

/// A chunk is handed over once it holds this many bytes. Each hand-over
/// wakes the reader, so chunks are large: at 64 KiB the wake-ups cost a fifth
/// of the streaming rate, at 512 KiB a few percent (`siemgate-bench store`).
const CHUNK_BYTES: usize = 512 * 1024;

/// The worker's side: frames rows and sends chunks, blocking while the reader is behind.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    framing: Framing,
    buf: Vec<u8>,
    in_buf: usize,
    written: usize,
    tx: mpsc::Sender<Result<Chunk, StoreError>>,
}

/// The reader went away; the worker should stop reading.
#[derive(Debug)]
pub(crate) struct ReaderGone;

impl ChunkWriter {
    pub(crate) fn channel(framing: Framing) -> (ChunkWriter, DetectionStream) {
        let (tx, rx) = mpsc::channel(CHANNEL_SLOTS);
        let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
        if framing == Framing::JsonArray {
            buf.push(b'[');
        }
        let writer = ChunkWriter { framing, buf, in_buf: 0, written: 0, tx };
        (writer, DetectionStream { chunks: rx })
    }

    /// Appends one stored JSON object.
    pub(crate) fn push(&mut self, object: &[u8]) -> Result<(), ReaderGone> {
        if self.framing == Framing::JsonArray && self.written + self.in_buf > 0 {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(object);
        if self.framing == Framing::Ndjson {
            self.buf.push(b'\n');
        }
        self.in_buf += 1;
        if self.buf.len() >= CHUNK_BYTES { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), ReaderGone> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes =
            Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES + 4096)));
        let chunk = Chunk { bytes, detections: self.in_buf };
        self.written += self.in_buf;
        self.in_buf = 0;
        self.tx.blocking_send(Ok(chunk)).map_err(|_| ReaderGone)
    }

    /// Closes the framing and sends what is left.
    pub(crate) fn finish(mut self) -> Result<(), ReaderGone> {
        if self.framing == Framing::JsonArray {
            self.buf.push(b']');
        }
        self.flush()
    }

    /// Ends the stream with an error so the reader knows its output is incomplete.
    pub(crate) fn fail(self, error: StoreError) {
        let _ = self.tx.blocking_send(Err(error));
    }
}
