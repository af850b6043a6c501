//! A window of detections on its way out: stored JSON objects framed as a
//! JSON array or as NDJSON, in chunks of half a megabyte.
//!
//! The backend reads rows on a worker (a blocking thread for SQLite, an async
//! task for PostgreSQL) and hands chunks over a channel of a few slots, so a slow reader holds back the worker instead of letting a
//! million rows pile up in memory.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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

/// What the worker sends: chunks, then exactly one of `End` or `Failed`.
#[derive(Debug)]
enum Message {
    Chunk(Chunk),
    End,
    Failed(StoreError),
}

/// Chunks in order. An `Err` item ends the stream and means the output is
/// incomplete and must not be used as if it were whole; a worker that stops
/// without saying it finished (a panic, say) shows up as such an error too.
#[derive(Debug)]
pub struct DetectionStream {
    messages: mpsc::Receiver<Message>,
    done: bool,
}

impl Stream for DetectionStream {
    type Item = Result<Chunk, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let message = std::task::ready!(self.messages.poll_recv(cx));
        Poll::Ready(match message {
            Some(Message::Chunk(chunk)) => Some(Ok(chunk)),
            Some(Message::End) => {
                self.done = true;
                None
            }
            Some(Message::Failed(error)) => {
                self.done = true;
                Some(Err(error))
            }
            None => {
                self.done = true;
                Some(Err(StoreError::Worker("the window's reader stopped before the end".into())))
            }
        })
    }
}

/// How many chunks may wait between the worker and the reader.
const CHANNEL_SLOTS: usize = 4;

/// A chunk is handed over once it holds this many bytes. Each hand-over
/// wakes the reader; at this size a 100,000-detection window takes a few
/// hundred wake-ups, and the chunks in flight stay within a few megabytes.
const CHUNK_BYTES: usize = 512 * 1024;

/// The first buffer's capacity.
const FIRST_BUFFER_BYTES: usize = 64 * 1024;

/// Chunk buffers handed back by the reader once it has dropped them, so a
/// long window cycles through a few warm buffers instead of asking the
/// allocator (and, for buffers this large, the kernel) for fresh ones.
type Pool = Arc<Mutex<Vec<Vec<u8>>>>;

/// A chunk's bytes; dropping it returns the buffer to the writer's pool.
struct Pooled {
    buf: Vec<u8>,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < CHANNEL_SLOTS + 2 {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            pool.push(buf);
        }
    }
}

/// The worker's side: frames rows and sends chunks, blocking while the reader is behind.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    framing: Framing,
    buf: Vec<u8>,
    pool: Pool,
    in_buf: usize,
    written: usize,
    tx: mpsc::Sender<Message>,
}

/// The reader went away; the worker should stop reading.
#[derive(Debug)]
pub(crate) struct ReaderGone;

impl ChunkWriter {
    pub(crate) fn channel(framing: Framing) -> (ChunkWriter, DetectionStream) {
        let (tx, rx) = mpsc::channel(CHANNEL_SLOTS);
        // Small at first: most requests (`limit=20`) never fill more, and a
        // half-megabyte allocation per request measured as a cost of its
        // own; a long window grows it once and then cycles it through the pool.
        let mut buf = Vec::with_capacity(FIRST_BUFFER_BYTES);
        if framing == Framing::JsonArray {
            buf.push(b'[');
        }
        let pool = Pool::default();
        let writer = ChunkWriter { framing, buf, pool, in_buf: 0, written: 0, tx };
        (writer, DetectionStream { messages: rx, done: false })
    }

    /// Appends one stored JSON object.
    pub(crate) fn push(&mut self, object: &[u8]) -> Result<(), ReaderGone> {
        if self.append(object) { self.flush() } else { Ok(()) }
    }

    /// [`push`](Self::push) for a worker that is an async task, which must
    /// wait for a free slot without blocking its runtime thread.
    pub(crate) async fn push_async(&mut self, object: &[u8]) -> Result<(), ReaderGone> {
        if !self.append(object) {
            return Ok(());
        }
        match self.take_chunk() {
            Some(chunk) => self.tx.send(chunk).await.map_err(|_| ReaderGone),
            None => Ok(()),
        }
    }

    /// Frames `object` into the buffer; true when the buffer is full enough to hand over.
    fn append(&mut self, object: &[u8]) -> bool {
        if self.framing == Framing::JsonArray && self.written + self.in_buf > 0 {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(object);
        if self.framing == Framing::Ndjson {
            self.buf.push(b'\n');
        }
        self.in_buf += 1;
        self.buf.len() >= CHUNK_BYTES
    }

    fn flush(&mut self) -> Result<(), ReaderGone> {
        match self.take_chunk() {
            Some(chunk) => self.tx.blocking_send(chunk).map_err(|_| ReaderGone),
            None => Ok(()),
        }
    }

    /// The buffered bytes as a chunk message, with a fresh buffer in their place.
    fn take_chunk(&mut self) -> Option<Message> {
        if self.buf.is_empty() {
            return None;
        }
        let recycled = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let next = recycled.unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES + 4096));
        let full = std::mem::replace(&mut self.buf, next);
        let bytes = Bytes::from_owner(Pooled { buf: full, pool: Arc::clone(&self.pool) });
        let chunk = Chunk { bytes, detections: self.in_buf };
        self.written += self.in_buf;
        self.in_buf = 0;
        Some(Message::Chunk(chunk))
    }

    /// Closes the framing and sends what is left.
    pub(crate) fn finish(mut self) -> Result<(), ReaderGone> {
        self.close_framing();
        self.flush()?;
        self.tx.blocking_send(Message::End).map_err(|_| ReaderGone)
    }

    /// [`finish`](Self::finish) for an async worker.
    pub(crate) async fn finish_async(mut self) -> Result<(), ReaderGone> {
        self.close_framing();
        if let Some(chunk) = self.take_chunk() {
            self.tx.send(chunk).await.map_err(|_| ReaderGone)?;
        }
        self.tx.send(Message::End).await.map_err(|_| ReaderGone)
    }

    fn close_framing(&mut self) {
        if self.framing == Framing::JsonArray {
            self.buf.push(b']');
        }
    }

    /// Ends the stream with an error so the reader knows its output is incomplete.
    pub(crate) fn fail(self, error: StoreError) {
        let _ = self.tx.blocking_send(Message::Failed(error));
    }

    /// [`fail`](Self::fail) for an async worker.
    pub(crate) async fn fail_async(self, error: StoreError) {
        let _ = self.tx.send(Message::Failed(error)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(mut stream: DetectionStream) -> Vec<Result<(String, usize), String>> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut items = Vec::new();
            while let Some(item) =
                std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await
            {
                items.push(
                    item.map(|c| (String::from_utf8(c.bytes.to_vec()).unwrap(), c.detections))
                        .map_err(|e| e.to_string()),
                );
            }
            items
        })
    }

    #[test]
    fn frames_an_array_and_an_empty_one() {
        let (mut writer, stream) = ChunkWriter::channel(Framing::JsonArray);
        let worker = std::thread::spawn(move || {
            writer.push(b"{\"a\":1}").unwrap();
            writer.push(b"{\"b\":2}").unwrap();
            writer.finish().unwrap();
        });
        assert_eq!(collect(stream), [Ok(("[{\"a\":1},{\"b\":2}]".to_owned(), 2))]);
        worker.join().unwrap();

        let (writer, stream) = ChunkWriter::channel(Framing::JsonArray);
        std::thread::spawn(move || writer.finish().unwrap());
        assert_eq!(collect(stream), [Ok(("[]".to_owned(), 0))]);
    }

    #[test]
    fn a_worker_that_stops_without_finishing_is_an_error() {
        let (mut writer, stream) = ChunkWriter::channel(Framing::Ndjson);
        std::thread::spawn(move || {
            writer.push(b"{}").unwrap();
            drop(writer);
        });
        let items = collect(stream);
        assert_eq!(items.len(), 1, "{items:?}");
        assert!(items[0].as_ref().unwrap_err().contains("stopped before the end"));
    }
}
