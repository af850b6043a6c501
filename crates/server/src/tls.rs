//! HTTPS: the server's certificate, given by the operator or generated, and
//! a listener that hands axum connections once their TLS handshake is done.
//!
//! ADAL, MSAL and azure-identity refuse any authority that is not `https`,
//! so a server with no certificate of its own makes one: a local CA, kept in
//! the TLS folder so that a client trusts it once (`REQUESTS_CA_BUNDLE`,
//! `SSL_CERT_FILE`), and a server certificate for the names it serves,
//! signed by that CA afresh at every start.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// The file the generated CA is written to, for clients to trust.
pub const CA_FILE: &str = "ca.pem";

/// The generated CA's private key, beside it, readable by its owner only.
const CA_KEY_FILE: &str = "ca-key.pem";

/// A handshake that has not finished in this time is dropped, so a client
/// that connects and says nothing holds no task for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server has no usable certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} holds no PEM certificate; give the server's certificate chain, leaf first")]
    NoCertificate { path: PathBuf },
    #[error(
        "{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1); give the key of the certificate"
    )]
    NoKey { path: PathBuf },
    #[error("the certificate and key cannot be used together: {0}")]
    Mismatch(rustls::Error),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The certificate the server presents.
#[derive(Debug, Clone)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
    /// Where the generated CA was written, when the certificate is generated.
    ca_file: Option<PathBuf>,
}

impl Tls {
    /// The operator's certificate chain (leaf first) and private key, in PEM.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read { path: path.into(), source })
        };
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&read(cert)?).filter_map(Result::ok).collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: cert.into() });
        }
        let key = PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|_| TlsError::NoKey { path: key.into() })?;
        Ok(Tls { config: server_config(chain, key)?, ca_file: None })
    }

    /// A certificate for `names` (DNS names or IP addresses), signed by the
    /// CA kept in `dir`, which is created with a new CA on first use.
    pub fn generate(dir: &Path, names: &[String]) -> Result<Tls, TlsError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| TlsError::Write { path: dir.into(), source })?;
        let ca_key = load_or_make_ca(dir)?;
        let issuer = Issuer::new(ca_params(), &ca_key);

        let mut params = CertificateParams::default();
        params.distinguished_name = named("siemgate server");
        params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // OpenSSL's strict mode, the default of newer Pythons, wants the
        // leaf to name its issuer's key.
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = validity(1, 397);
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;

        let chain = vec![cert.der().clone()];
        let key = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|_| TlsError::NoKey { path: dir.into() })?;
        Ok(Tls { config: server_config(chain, key)?, ca_file: Some(dir.join(CA_FILE)) })
    }

    /// The CA file clients should trust, when the certificate was generated.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Starts accepting TLS connections on `listener`.
    pub fn listen(&self, listener: TcpListener) -> io::Result<TlsListener> {
        TlsListener::start(listener, TlsAcceptor::from(self.config.clone()))
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Mismatch)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CA's parameters. They are the same at every start, so a server
/// certificate signed today chains to the CA certificate written on the
/// first day: the issuer name and key identifier both follow from them and
/// from the kept key.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = named("siemgate local CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn load_or_make_ca(dir: &Path) -> Result<KeyPair, TlsError> {
    let key_path = dir.join(CA_KEY_FILE);
    let cert_path = dir.join(CA_FILE);
    if key_path.exists() && cert_path.exists() {
        let pem = std::fs::read_to_string(&key_path)
            .map_err(|source| TlsError::Read { path: key_path.clone(), source })?;
        return KeyPair::from_pem(&pem).map_err(|_| TlsError::NoKey { path: key_path });
    }
    let key = KeyPair::generate()?;
    let mut params = ca_params();
    let (not_before, not_after) = validity(1, 3650);
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.self_signed(&key)?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem())
        .map_err(|source| TlsError::Write { path: cert_path, source })?;
    Ok(key)
}

/// Writes a secret file that only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = |path: &Path| options.open(path)?.write_all(bytes);
    write(path).map_err(|source| TlsError::Write { path: path.into(), source })
}

fn named(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn san(name: &str) -> Result<SanType, rcgen::Error> {
    match name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => Ok(SanType::DnsName(name.try_into()?)),
    }
}

/// From `days_before` days ago to `days_after` days from now.
fn validity(days_before: i64, days_after: i64) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - time::Duration::days(days_before), now + time::Duration::days(days_after))
}

/// Accepts TCP connections and finishes their handshakes on tasks of their
/// own, so one slow client never holds up the next; axum takes the
/// connections that made it through.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, then go on.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if sender.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task only ends once this listener is dropped,
            // so the channel cannot close while it is still asked.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = Tls::generate(dir.path(), &names).unwrap();
        let ca = std::fs::read(first.ca_file().unwrap()).unwrap();
        Tls::generate(dir.path(), &names).unwrap();
        assert_eq!(std::fs::read(dir.path().join(CA_FILE)).unwrap(), ca, "same CA on restart");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE)).unwrap().permissions();
            assert_eq!(mode.mode() & 0o077, 0, "the CA key is private");
        }
    }

    #[test]
    fn files_without_pem_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = Tls::from_pem_files(&junk, &junk).unwrap_err().to_string();
        assert!(err.contains("junk.pem") && err.contains("no PEM certificate"), "{err}");
        let missing = Tls::from_pem_files(&dir.path().join("nope.pem"), &junk).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read"), "{missing}");
    }
}
