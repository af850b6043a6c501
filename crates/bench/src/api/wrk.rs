//! Driving `wrk`, the HTTP load generator, and reading the figures it prints.

use std::process::Command;

/// What one `wrk --latency` run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers that were not 2xx or 3xx; a run with any measured an error page.
    pub failed: u64,
    /// wrk's `Socket errors:` line, when it printed one.
    pub socket_errors: Option<String>,
}

/// How hard `wrk` pushes.
#[derive(Debug, Clone, Copy)]
pub struct Pressure {
    pub connections: usize,
    pub threads: usize,
    pub seconds: u64,
}

/// Runs `wrk` against `url` with `token` as the bearer; blocks for the run.
pub fn run(url: &str, token: &str, pressure: Pressure) -> anyhow::Result<Load> {
    let output = Command::new("wrk")
        .args(["-t", &pressure.threads.to_string()])
        .args(["-c", &pressure.connections.to_string()])
        .args(["-d", &format!("{}s", pressure.seconds)])
        .arg("--latency")
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "wrk failed ({}): {}{}",
        output.status,
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    let load = parse(&text)?;
    anyhow::ensure!(load.failed == 0, "{} answers from {url} were errors, not alerts", load.failed);
    Ok(load)
}

/// Reads requests/s, the 50% and 99% latencies, failed answers and socket
/// errors from wrk's report.
pub fn parse(output: &str) -> anyhow::Result<Load> {
    let field = |prefix: &str| {
        output.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix)).map(str::trim)
    };
    let missing = |what: &str| anyhow::anyhow!("wrk printed no {what}; its output was:\n{output}");
    let requests_per_second =
        field("Requests/sec:").ok_or_else(|| missing("Requests/sec"))?.parse::<f64>()?;
    let p50_ms = milliseconds(field("50%").ok_or_else(|| missing("50% latency (--latency)"))?)?;
    let p99_ms = milliseconds(field("99%").ok_or_else(|| missing("99% latency (--latency)"))?)?;
    let failed = field("Non-2xx or 3xx responses:").map_or(Ok(0), str::parse::<u64>)?;
    let socket_errors = field("Socket errors:").map(str::to_owned);
    Ok(Load { requests_per_second, p50_ms, p99_ms, failed, socket_errors })
}

/// wrk's durations (`651.00us`, `4.20ms`, `1.01s`, `1.50m`) in milliseconds.
fn milliseconds(text: &str) -> anyhow::Result<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => anyhow::bail!("wrk printed a duration in an unknown unit: {text:?}"),
    };
    Ok(number.parse::<f64>()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wrk -t2 -c64 -d2s --latency` against nginx on this machine.
    const CLEAN: &str = "\
Running 2s test @ http://127.0.0.1:18931/api/alerts?limit=20
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.91ms    0.91ms  13.20ms   89.08%
    Req/Sec    39.27k     4.43k   58.16k    82.93%
  Latency Distribution
     50%  651.00us
     75%    1.16ms
     90%    1.90ms
     99%    4.20ms
  160358 requests in 2.10s, 40.83MB read
Requests/sec:  76353.83
Transfer/sec:     19.44MB
";

    #[test]
    fn reads_rate_and_percentiles() {
        let load = parse(CLEAN).unwrap();
        assert_eq!(load.requests_per_second, 76353.83);
        assert!((load.p50_ms - 0.651).abs() < 1e-9);
        assert_eq!(load.p99_ms, 4.2);
        assert_eq!(load.failed, 0);
        assert_eq!(load.socket_errors, None);
    }

    /// The same command against an nginx that answers every request with 401.
    const REFUSED: &str = "\
Running 1s test @ http://127.0.0.1:18931/api/alerts?limit=20
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.96ms    1.03ms  11.17ms   90.02%
    Req/Sec    36.44k    10.10k   64.76k    80.00%
  Latency Distribution
     50%  810.00us
     75%    1.23ms
     90%    1.98ms
     99%    4.89ms
  72444 requests in 1.00s, 23.28MB read
  Non-2xx or 3xx responses: 72444
Requests/sec:  72225.23
Transfer/sec:     23.21MB
";

    #[test]
    fn counts_error_answers() {
        let load = parse(REFUSED).unwrap();
        assert_eq!(load.failed, 72444);
        assert_eq!(load.requests_per_second, 72225.23);
    }

    #[test]
    fn reads_units_up_to_hours() {
        assert_eq!(milliseconds("1.50s").unwrap(), 1500.0);
        assert_eq!(milliseconds("2.00m").unwrap(), 120_000.0);
        assert!(milliseconds("3.0xs").is_err());
    }

    #[test]
    fn a_run_without_latency_is_refused() {
        let without: Vec<&str> = CLEAN.lines().filter(|l| !l.contains('%')).collect();
        let without = without.join("\n");
        assert!(parse(&without).unwrap_err().to_string().contains("50% latency"));
    }
}
