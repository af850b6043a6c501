//! A sink that sends each detection as one CEF message in an RFC 5424 syslog
//! frame, over UDP (RFC 5426), TCP with octet counting (RFC 6587) or TLS
//! (RFC 5425), the transports SIEM collectors listen on.
//!
//! Syslog has no acknowledgement: a commit means the bytes were handed to the
//! network, not that the collector kept them. A connection error drops the
//! connection and fails the call, so the window is sent again on a fresh one;
//! the collector may then see part of a window twice, never a gap.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use siemgate_model::Timestamp;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::{Mark, Sink, SinkError};
use crate::encode::cef::{self, Severity};
use crate::record::Record;

/// How long a connect, a write or a flush may take before the sink gives up
/// on the connection, so a collector that stops reading cannot hang a pull.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes of framed messages held before they are written out mid-window.
const BUFFER: usize = 64 * 1024;

/// How messages reach the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram per message (RFC 5426); nothing tells us of a loss.
    Udp,
    /// A TCP stream, each message prefixed by its length (RFC 6587).
    Tcp,
    /// TCP inside TLS (RFC 5425), framed as over TCP.
    Tls,
}

impl Transport {
    /// The port collectors listen on by default for this transport.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 514,
            Transport::Tls => 6514,
        }
    }
}

/// A syslog facility, 0 (`kern`) to 23 (`local7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(u8);

/// Facility names in code order (RFC 5424 table 1).
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

impl Facility {
    /// `local0`, the default: the local facilities are the ones RFC 5424
    /// leaves to a site, so a collector can route detections by it without
    /// mixing them with the system's own `user` messages.
    pub const LOCAL0: Facility = Facility(16);

    /// The facility's code.
    pub fn code(self) -> u8 {
        self.0
    }
}

impl FromStr for Facility {
    type Err = String;

    /// Reads a name (`local0`, `user`, ...) or a code (0-23).
    fn from_str(text: &str) -> Result<Facility, String> {
        let code = match FACILITIES.iter().position(|name| name.eq_ignore_ascii_case(text)) {
            Some(code) => Some(code),
            None => text.parse::<usize>().ok().filter(|&code| code < FACILITIES.len()),
        };
        match code {
            Some(code) => Ok(Facility(code as u8)),
            None => Err(format!("unknown syslog facility {text:?}; use local0-local7, user, ...")),
        }
    }
}

/// Where and how to send detections; the CLI fills it from flags and the
/// configuration file. [`SyslogConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct SyslogConfig {
    /// The collector's host name or IP address.
    pub host: String,
    /// The collector's port.
    pub port: u16,
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// PEM file of the CA certificates a TLS collector's certificate must
    /// chain to; without it, the public web roots built into siemgate.
    pub ca_file: Option<PathBuf>,
    /// The name the TLS collector's certificate must carry; `host` by default.
    pub server_name: Option<String>,
    /// The facility of every message.
    pub facility: Facility,
    /// The APP-NAME field: printable ASCII, no spaces, at most 48 bytes.
    pub app_name: String,
    /// The HOSTNAME field; this machine's name by default. Printable ASCII,
    /// no spaces, at most 255 bytes.
    pub hostname: Option<String>,
    /// The largest UDP datagram sent; a longer message is cut to fit (at a
    /// character boundary, never inside a CEF escape) and a warning logged.
    /// RFC 5426 only promises 480 bytes, most collectors take 8 KiB (the
    /// default), and IPv4 can carry at most 65,507.
    pub max_datagram: usize,
}

impl SyslogConfig {
    /// The defaults for `host` over `transport`: its usual port, facility
    /// `local0`, app name `siemgate`, this machine's host name, the web
    /// roots, 8 KiB datagrams.
    pub fn new(host: impl Into<String>, transport: Transport) -> SyslogConfig {
        SyslogConfig {
            host: host.into(),
            port: transport.default_port(),
            transport,
            ca_file: None,
            server_name: None,
            facility: Facility::LOCAL0,
            app_name: "siemgate".into(),
            hostname: None,
            max_datagram: 8192,
        }
    }
}

/// The open connection, if any.
enum Connection {
    Udp(UdpSocket),
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
}

/// Sends detections to a syslog collector; see the module docs.
pub struct SyslogSink {
    config: SyslogConfig,
    /// The frame between the timestamp and the message:
    /// ` HOSTNAME APP-NAME PROCID MSGID - `.
    fields: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connection: Option<Connection>,
    /// Framed messages not yet written to the stream.
    pending: Vec<u8>,
    /// The message being built.
    message: Vec<u8>,
}

impl fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyslogSink")
            .field("config", &self.config)
            .field("connected", &self.connection.is_some())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl SyslogSink {
    /// Checks the configuration and, for TLS, reads the CA file; nothing is
    /// connected until the first write.
    pub fn new(config: SyslogConfig) -> Result<SyslogSink, SinkError> {
        let hostname = match &config.hostname {
            Some(name) => name.clone(),
            None => local_hostname(),
        };
        header_field("hostname", &hostname, 255)?;
        header_field("app name", &config.app_name, 48)?;
        let fields = format!(" {hostname} {} {} detection - ", config.app_name, std::process::id());
        let tls = match config.transport {
            Transport::Tls => Some(tls_connector(&config)?),
            Transport::Udp | Transport::Tcp => None,
        };
        Ok(SyslogSink {
            config,
            fields,
            tls,
            connection: None,
            pending: Vec::with_capacity(BUFFER * 2),
            message: Vec::with_capacity(4096),
        })
    }

    /// Builds one record's syslog message in `self.message`.
    fn build(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        let mut cef_line = std::mem::take(&mut self.message);
        cef_line.clear();
        let severity = cef::encode_with_severity(record.json, &mut cef_line)
            .map_err(|e| SinkError::Refused(e.to_string()))?;
        let pri = u16::from(self.config.facility.code()) * 8 + syslog_severity(severity);

        let mut message = Vec::with_capacity(cef_line.len() + 96);
        message.extend_from_slice(format!("<{pri}>1 {}", now_rfc5424()).as_bytes());
        message.extend_from_slice(self.fields.as_bytes());
        message.extend_from_slice(&cef_line);
        self.message = message;
        Ok(())
    }

    async fn connection(&mut self) -> io::Result<&mut Connection> {
        if self.connection.is_none() {
            let connection = timeout(connect(&self.config, self.tls.as_ref())).await?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected just above"))
    }

    /// Sends the message in `self.message`, or queues it on a stream.
    async fn send(&mut self, full_id: &str) -> io::Result<()> {
        if self.config.transport != Transport::Udp {
            let length = self.message.len().to_string();
            self.pending.extend_from_slice(length.as_bytes());
            self.pending.push(b' ');
            self.pending.extend_from_slice(&self.message);
            if self.pending.len() >= BUFFER {
                self.write_pending(false).await?;
            }
            return Ok(());
        }
        let max = self.config.max_datagram;
        let size = self.message.len();
        if cut_to_fit(&mut self.message, max) {
            tracing::warn!(full_id, size, max, "syslog message cut to fit one UDP datagram");
        }
        let message = std::mem::take(&mut self.message);
        let result = match self.connection().await? {
            Connection::Udp(socket) => timeout(socket.send(&message)).await.map(drop),
            Connection::Stream(_) => unreachable!("UDP has no stream"),
        };
        self.message = message;
        result
    }

    /// Writes the queued frames, and flushes them when `flush`.
    async fn write_pending(&mut self, flush: bool) -> io::Result<()> {
        if self.pending.is_empty() && !flush {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let result = match self.connection().await? {
            Connection::Stream(stream) => {
                let written = timeout(stream.write_all(&pending)).await;
                match written {
                    Ok(()) if flush => timeout(stream.flush()).await,
                    other => other,
                }
            }
            Connection::Udp(_) => Ok(()),
        };
        self.pending = pending;
        self.pending.clear();
        result
    }

    /// Forgets the connection and what was queued on it, so that the retried
    /// window starts on a fresh connection.
    fn fail(&mut self, context: &str, error: io::Error) -> SinkError {
        self.connection = None;
        self.pending.clear();
        let target = format!("{}:{}", self.config.host, self.config.port);
        SinkError::io(format!("syslog {context} {target}"), error)
    }
}

#[async_trait]
impl Sink for SyslogSink {
    async fn write(&mut self, records: &[Record<'_>]) -> Result<(), SinkError> {
        for record in records {
            self.build(record)?;
            if let Err(e) = self.send(&record.full_id).await {
                return Err(self.fail("sending to", e));
            }
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<Mark, SinkError> {
        if self.config.transport != Transport::Udp
            && let Err(e) = self.write_pending(true).await
        {
            return Err(self.fail("flushing to", e));
        }
        Ok(Mark::Null)
    }
}

/// Opens a connection; a free function so that the future borrows only what
/// it needs, which is `Sync`, and stays `Send`.
async fn connect(
    config: &SyslogConfig,
    tls: Option<&(TlsConnector, ServerName<'static>)>,
) -> io::Result<Connection> {
    let address = (config.host.as_str(), config.port);
    if config.transport == Transport::Udp {
        let peer = tokio::net::lookup_host(address)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let local = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(peer).await?;
        return Ok(Connection::Udp(socket));
    }
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    match tls {
        None => Ok(Connection::Stream(Box::new(tcp))),
        Some((connector, name)) => {
            let tls = connector.connect(name.clone(), tcp).await?;
            Ok(Connection::Stream(Box::new(tls)))
        }
    }
}

/// The syslog severity of a detection: High is critical, Medium an error,
/// Low a warning, Informational informational; a level the API does not
/// name is a notice, between the two.
pub fn syslog_severity(severity: Severity) -> u16 {
    match severity {
        Severity::High => 2,
        Severity::Medium => 3,
        Severity::Low => 4,
        Severity::Unknown => 5,
        Severity::Informational => 6,
    }
}

/// Now, as RFC 5424 writes it: UTC, at most six fractional digits.
fn now_rfc5424() -> String {
    let ticks = Timestamp::from_system_time(SystemTime::now()).unix_ticks();
    // Display drops trailing zeros, so whole microseconds print six digits at most.
    Timestamp::from_unix_ticks(ticks - ticks.rem_euclid(10)).to_string()
}

/// This machine's name, or the nil value when it cannot be read.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// Checks a header field against RFC 5424: printable ASCII without spaces.
fn header_field(what: &str, value: &str, max: usize) -> Result<(), SinkError> {
    let printable = value.bytes().all(|b| (33..=126).contains(&b));
    if value.is_empty() || value.len() > max || !printable {
        return Err(SinkError::Refused(format!(
            "syslog {what} {value:?} must be 1 to {max} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

fn tls_connector(config: &SyslogConfig) -> Result<(TlsConnector, ServerName<'static>), SinkError> {
    let roots = match &config.ca_file {
        Some(path) => read_roots(path)?,
        None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Refused(format!("syslog TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = config.server_name.clone().unwrap_or_else(|| config.host.clone());
    let name = ServerName::try_from(name.clone())
        .map_err(|_| SinkError::Refused(format!("syslog TLS server name {name:?} is not valid")))?;
    Ok((TlsConnector::from(Arc::new(client)), name))
}

fn read_roots(path: &PathBuf) -> Result<RootCertStore, SinkError> {
    let context = || format!("reading the syslog CA file {}", path.display());
    let pem = std::fs::read(path).map_err(|e| SinkError::io(context(), e))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| SinkError::Refused(format!("{}: {e}", context())))?;
        roots.add(cert).map_err(|e| SinkError::Refused(format!("{}: {e}", context())))?;
    }
    if roots.is_empty() {
        return Err(SinkError::Refused(format!("{}: no PEM certificate in it", context())));
    }
    Ok(roots)
}

/// Cuts `message` to at most `max` bytes without splitting a UTF-8 character
/// or leaving half of a CEF `\` escape at the end; true when it cut.
fn cut_to_fit(message: &mut Vec<u8>, max: usize) -> bool {
    if message.len() <= max {
        return false;
    }
    let mut end = max;
    while end > 0 && message[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    let backslashes = message[..end].iter().rev().take_while(|&&b| b == b'\\').count();
    if backslashes % 2 == 1 {
        end -= 1;
    }
    message.truncate(end);
    true
}

async fn timeout<T>(future: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(IO_TIMEOUT, future).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no progress in 30 s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_message_keeps_whole_characters_and_escapes() {
        let mut message = "ab\\\\cd".as_bytes().to_vec();
        assert!(cut_to_fit(&mut message, 3));
        assert_eq!(message, b"ab");
        let mut message = "ab\\\\cd".as_bytes().to_vec();
        assert!(cut_to_fit(&mut message, 4));
        assert_eq!(message, b"ab\\\\");
        let mut message = "a攻击".as_bytes().to_vec();
        assert!(cut_to_fit(&mut message, 5));
        assert_eq!(message, "a攻".as_bytes());
        let mut message = b"short".to_vec();
        assert!(!cut_to_fit(&mut message, 5));
        assert_eq!(message, b"short");
    }

    #[test]
    fn facilities_read_by_name_or_code() {
        assert_eq!("local0".parse(), Ok(Facility::LOCAL0));
        assert_eq!("USER".parse::<Facility>().map(Facility::code), Ok(1));
        assert_eq!("23".parse::<Facility>().map(Facility::code), Ok(23));
        assert!("24".parse::<Facility>().is_err());
        assert!("local8".parse::<Facility>().unwrap_err().contains("local8"));
    }

    #[test]
    fn header_fields_that_would_break_the_frame_are_refused() {
        for (name, app) in [("edge 01", "siemgate"), ("edge", "sïemgate"), ("edge", "")] {
            let mut config = SyslogConfig::new("localhost", Transport::Tcp);
            config.hostname = Some(name.into());
            config.app_name = app.into();
            let err = SyslogSink::new(config).unwrap_err().to_string();
            assert!(err.contains("printable ASCII"), "{err}");
        }
    }

    #[test]
    fn the_timestamp_has_at_most_six_fractional_digits() {
        let now = now_rfc5424();
        let fraction = now.split_once('.').map_or("Z", |(_, f)| f);
        assert!(fraction.len() <= 7 && fraction.ends_with('Z'), "{now}");
    }
}
