//! A Prometheus endpoint for followed streams: detections delivered,
//! windows, failures (total and in a row), and how far behind each stream is,
//! so that a window that keeps failing shows on a dashboard and can page
//! someone.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::follow::{Stats, now};

/// Binds `addr` and answers every request with the metrics text, in the
/// background.
pub async fn serve(addr: SocketAddr, streams: Vec<(String, Arc<Stats>)>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving metrics");
    let streams = Arc::new(streams);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let streams = streams.clone();
            tokio::spawn(async move {
                // The request itself does not matter; read what came and answer.
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let body = render(&streams);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    Ok(())
}

/// A metric's name, type and help, and how to read it from a stream's
/// counters at a given Unix second.
type Metric = (&'static str, &'static str, &'static str, fn(&Stats, i64) -> i64);

/// The Prometheus text for `streams`.
pub fn render(streams: &[(String, Arc<Stats>)]) -> String {
    let now = now().unix_seconds();
    let mut out = String::new();
    let metrics: [Metric; 6] = [
        (
            "siemgate_pull_detections_total",
            "counter",
            "Detections delivered to the sink.",
            |s, _| s.delivered.load(Ordering::Relaxed) as i64,
        ),
        ("siemgate_pull_bytes_total", "counter", "Bytes of answers received.", |s, _| {
            s.bytes.load(Ordering::Relaxed) as i64
        }),
        (
            "siemgate_pull_windows_total",
            "counter",
            "Windows delivered and checkpointed.",
            |s, _| s.windows.load(Ordering::Relaxed) as i64,
        ),
        ("siemgate_pull_failures_total", "counter", "Failed attempts at a window.", |s, _| {
            s.failures.load(Ordering::Relaxed) as i64
        }),
        (
            "siemgate_pull_consecutive_failures",
            "gauge",
            "Failed attempts at the current window; above 0 for long means it keeps failing.",
            |s, _| s.consecutive_failures.load(Ordering::Relaxed) as i64,
        ),
        (
            "siemgate_pull_behind_seconds",
            "gauge",
            "Seconds between now and the checkpoint.",
            |s, now| now - s.position.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, read) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (stream, stats) in streams {
            let _ = writeln!(out, "{name}{{stream=\"{}\"}} {}", escape(stream), read(stats, now));
        }
    }
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
