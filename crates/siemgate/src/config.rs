//! `siemgate serve --config FILE`: the server's settings in TOML.
//!
//! A setting is taken from its flag, else its environment variable (clap
//! reads both), else the file, else the default. A key the file should not
//! have is refused with the keys it may have, so a typo never passes
//! silently as a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Every key a configuration file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileConfig {
    pub database: Option<String>,
    pub https: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_dir: Option<PathBuf>,
    pub tls_names: Option<Vec<String>>,
    /// An ISO 8601 duration such as `P30D`.
    pub retention: Option<String>,
    /// Requests a second each app may make to the SIEM API.
    pub rate_limit: Option<f64>,
    pub max_ingest_bytes: Option<usize>,
    /// An ISO 8601 duration such as `PT30S`.
    pub key_refresh: Option<String>,
}

impl FileConfig {
    /// Reads `path`, or an empty configuration when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end().replace('\n', " "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_reads() {
        let config: FileConfig = toml::from_str(
            r#"
            database = "/var/lib/siemgate/s.db"
            https = "0.0.0.0:8443"
            http = "127.0.0.1:8080"
            public_url = "https://gate.example.com:8443"
            tls_dir = "/var/lib/siemgate/tls"
            tls_names = ["gate.internal"]
            retention = "P30D"
            rate_limit = 5.0
            max_ingest_bytes = 1048576
            "#,
        )
        .unwrap();
        assert_eq!(config.https.unwrap().port(), 8443);
        assert_eq!(config.tls_names.unwrap(), ["gate.internal"]);
        assert_eq!(config.rate_limit, Some(5.0));
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let error = toml::from_str::<FileConfig>("retension = \"P30D\"\n").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("retension"), "{message}");
        assert!(message.contains("retention"), "names the keys there are: {message}");
    }
}
