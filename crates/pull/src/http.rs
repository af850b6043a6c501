//! The HTTP client every request of a stream shares: TLS through rustls,
//! the operator's CA file and proxy, and timeouts that turn a dead
//! connection into a retry rather than a hang.

use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::error::PullError;

/// Builds the client for `endpoint`.
pub fn client(endpoint: &Endpoint) -> Result<reqwest::Client, PullError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("siemgate-pull/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .gzip(endpoint.gzip);
    if let Some(path) = &endpoint.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| PullError::io(format!("cannot read the CA file {}", path.display()), e))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            PullError::Refused(format!(
                "the CA file {} holds no PEM certificate: {e}",
                path.display()
            ))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(proxy) = &endpoint.proxy {
        let proxy = reqwest::Proxy::all(proxy)
            .map_err(|e| PullError::Refused(format!("the proxy {proxy:?} is not a URL: {e}")))?;
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|e| PullError::Refused(format!("cannot set up HTTPS: {e}")))
}
