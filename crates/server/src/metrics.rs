//! What `/metrics` reports, in Prometheus' text format (version 0.0.4):
//! requests by route and status, their latency, detections stored and
//! served, tokens issued.
//!
//! A handful of counters and one histogram do not earn a metrics crate; the
//! exposition format is a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Counters of one server process. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests and their latency, by route: one lock per request, and no
    /// allocation once a route has been seen.
    routes: Mutex<BTreeMap<String, RouteStats>>,
    detections_stored: AtomicU64,
    detections_duplicate: AtomicU64,
    detections_served: AtomicU64,
    tokens_issued: AtomicU64,
    rate_limited: AtomicU64,
}

#[derive(Debug, Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    latency: Histogram,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Counts one answered request of `route` with `status` after `latency`.
    pub fn request(&self, route: &str, status: u16, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let mut routes = lock(&self.routes);
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteStats::default());
        }
        let Some(stats) = routes.get_mut(route) else { return };
        *stats.by_status.entry(status).or_default() += 1;
        let histogram = &mut stats.latency;
        histogram.count += 1;
        histogram.sum += seconds;
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
    }

    pub fn stored(&self, stored: u64, duplicates: u64) {
        self.detections_stored.fetch_add(stored, Ordering::Relaxed);
        self.detections_duplicate.fetch_add(duplicates, Ordering::Relaxed);
    }

    pub fn served(&self, detections: u64) {
        self.detections_served.fetch_add(detections, Ordering::Relaxed);
    }

    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_requests(&mut out);
        self.render_latency(&mut out);
        for (name, help, value) in [
            ("siemgate_detections_stored_total", "Detections stored.", &self.detections_stored),
            (
                "siemgate_detections_duplicate_total",
                "Detections received whose FullId the tenant already had.",
                &self.detections_duplicate,
            ),
            (
                "siemgate_detections_served_total",
                "Detections sent by /api/alerts.",
                &self.detections_served,
            ),
            ("siemgate_tokens_issued_total", "Access tokens issued.", &self.tokens_issued),
            (
                "siemgate_rate_limited_total",
                "Requests refused by a per-app rate limit.",
                &self.rate_limited,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }

    fn render_requests(&self, out: &mut String) {
        let name = "siemgate_http_requests_total";
        let _ = writeln!(out, "# HELP {name} HTTP requests answered, by route and status.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (route, stats) in lock(&self.routes).iter() {
            for (status, count) in &stats.by_status {
                let _ = writeln!(out, "{name}{{route=\"{route}\",status=\"{status}\"}} {count}");
            }
        }
    }

    fn render_latency(&self, out: &mut String) {
        let name = "siemgate_http_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time to the response's head, by route.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (route, stats) in lock(&self.routes).iter() {
            let h = &stats.latency;
            for (count, bound) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", h.count);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_counts_add_up() {
        let m = Metrics::default();
        m.request("/api/alerts", 200, Duration::from_micros(800));
        m.request("/api/alerts", 200, Duration::from_millis(30));
        m.request("/api/alerts", 401, Duration::from_millis(2));
        let text = m.render();
        assert!(
            text.contains("siemgate_http_requests_total{route=\"/api/alerts\",status=\"200\"} 2")
        );
        assert!(
            text.contains("siemgate_http_requests_total{route=\"/api/alerts\",status=\"401\"} 1")
        );
        let bucket = |le: &str| {
            let key = format!("_bucket{{route=\"/api/alerts\",le=\"{le}\"}} ");
            let line = text.lines().find(|l| l.contains(&key)).unwrap();
            line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        };
        assert_eq!(bucket("0.001"), 1);
        assert_eq!(bucket("0.0025"), 2);
        assert_eq!(bucket("0.05"), 3);
        assert_eq!(bucket("+Inf"), 3);
    }
}
