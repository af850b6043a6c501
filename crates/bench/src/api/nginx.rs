//! The baseline web server: nginx serving one file, the very body siemgate
//! answered, from a folder and configuration of its own.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx, stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    prefix: tempfile::TempDir,
    child: Child,
}

/// The configuration: two workers, no access log, every path answered with
/// `alerts.json` as siemgate labels its answers. The temporary-file paths
/// keep nginx out of the system's folders.
fn config(prefix: &Path, port: u16) -> String {
    let p = prefix.display();
    format!(
        "daemon off;
worker_processes 2;
pid {p}/nginx.pid;
error_log {p}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            root {p};
            types {{ }}
            default_type \"application/json; charset=utf-8\";
            try_files /alerts.json =404;
        }}
    }}
}}
"
    )
}

impl Nginx {
    /// Starts nginx serving `body` on a free local port and waits until it
    /// answers with it.
    pub async fn start(body: &[u8], dir: &Path) -> anyhow::Result<Nginx> {
        let prefix = tempfile::tempdir_in(dir)?;
        // When run as root, nginx's workers drop to an unprivileged user
        // that must still read the file.
        std::fs::set_permissions(prefix.path(), std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(prefix.path().join("alerts.json"), body)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        std::fs::write(prefix.path().join("nginx.conf"), config(prefix.path(), port))?;
        let child = Command::new(binary())
            .args(nginx_args(prefix.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(prefix.path().join("stderr.log"))?)
            .spawn()?;
        let nginx = Nginx { base: format!("http://127.0.0.1:{port}"), prefix, child };
        nginx.wait_until_serving(body.len()).await?;
        Ok(nginx)
    }

    async fn wait_until_serving(&self, length: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            if let Ok(answer) = http.get(format!("{}/api/alerts", self.base)).send().await {
                let served = answer.bytes().await?;
                anyhow::ensure!(served.len() == length, "nginx served a different body");
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                let log = std::fs::read_to_string(self.prefix.path().join("stderr.log"))
                    .unwrap_or_default();
                anyhow::bail!("nginx did not start within 10 s: {log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Killing the master alone would leave its workers listening; `-s stop`
        // stops them all.
        let stopped = Command::new(binary())
            .args(nginx_args(self.prefix.path()))
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Where nginx finds its prefix and configuration, and where it complains.
fn nginx_args(prefix: &Path) -> Vec<String> {
    let p = prefix.display();
    ["-e", "stderr", "-p", &p.to_string(), "-c", &format!("{p}/nginx.conf")]
        .map(String::from)
        .into()
}

/// `nginx` from the `PATH`, or where Debian puts it, which is not on every
/// user's `PATH`.
pub fn binary() -> PathBuf {
    let debian = Path::new("/usr/sbin/nginx");
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("nginx").is_file()));
    if !on_path && debian.is_file() { debian.into() } else { "nginx".into() }
}
