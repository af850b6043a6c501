//! The syslog sink against a real rsyslogd: every detection sent over TCP,
//! TLS and UDP must arrive as one RFC 5424 message whose fields and CEF text
//! rsyslog parses back exactly, hostile values included.
//!
//! rsyslogd runs from a configuration of its own in a temporary directory,
//! so the machine's syslog setup plays no part.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use siemgate_model::Timestamp;
use siemgate_pull::encode::cef;
use siemgate_pull::sink::syslog::{Facility, SyslogConfig, SyslogSink, Transport};
use siemgate_pull::{Record, Sink};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
/// rsyslog's OpenSSL driver, under the architecture's library directory.
const TLS_MODULE: &str = "rsyslog/lmnsd_ossl.so";

/// A running rsyslogd, killed when dropped.
struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    tcp: u16,
    tls: u16,
    udp: u16,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslog {
    fn start() -> Rsyslog {
        let install = "install it with `apt-get install rsyslog rsyslog-openssl`";
        assert!(Path::new(RSYSLOGD).exists(), "{RSYSLOGD} is missing: {install}");
        let tls_module = fs::read_dir("/usr/lib")
            .unwrap()
            .flatten()
            .any(|dir| dir.path().join(TLS_MODULE).exists());
        assert!(tls_module, "rsyslog's TLS driver {TLS_MODULE} is missing: {install}");
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        write_certificates(dir.path());
        let (tcp, tls, udp) = (free_port(), free_port(), free_port());
        let config = dir.path().join("rsyslog.conf");
        fs::write(&config, rsyslog_config(dir.path(), tcp, tls, udp)).unwrap();

        let log = fs::File::create(dir.path().join("rsyslogd.log")).unwrap();
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&config)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rsyslogd starts");
        let mut rsyslog = Rsyslog { child, dir, tcp, tls, udp };
        rsyslog.wait_until_listening();
        rsyslog
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rsyslogd exited with {status}: {}", self.log());
            }
            let up =
                [self.tcp, self.tls].iter().all(|&p| TcpStream::connect(("127.0.0.1", p)).is_ok());
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "rsyslogd is not listening: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("rsyslogd.log")).unwrap_or_default()
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The messages rsyslog wrote for `input`, once `count` have arrived.
    fn received(&self, input: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text =
                fs::read_to_string(self.dir.path().join("received.ndjson")).unwrap_or_default();
            let got: Vec<Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
                .filter(|v: &Value| v["input"] == input)
                .collect();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages arrived over {input}: {}",
                got.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A CA, and a certificate for `localhost` that it signed, with its key.
fn write_certificates(dir: &Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// Three listeners, and every message written as one JSON line holding the
/// RFC 5424 fields as rsyslog parsed them.
fn rsyslog_config(dir: &Path, tcp: u16, tls: u16, udp: u16) -> String {
    let d = dir.display();
    let field = |name: &str, property: &str| {
        format!(
            "constant(value=\"\\\"{name}\\\":\\\"\") property({property} format=\"json\") \
             constant(value=\"\\\",\")\n"
        )
    };
    let fields: String = [
        ("input", r#"name="inputname""#),
        ("pri", r#"name="pri""#),
        ("timestamp", r#"name="timereported" dateFormat="rfc3339""#),
        ("hostname", r#"name="hostname""#),
        ("app", r#"name="app-name""#),
        ("procid", r#"name="procid""#),
        ("msgid", r#"name="msgid""#),
        ("sd", r#"name="structured-data""#),
    ]
    .iter()
    .map(|(name, property)| field(name, property))
    .collect();
    format!(
        r#"global(workDirectory="{d}/work" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{d}/ca.pem"
       defaultNetstreamDriverCertFile="{d}/cert.pem"
       defaultNetstreamDriverKeyFile="{d}/key.pem")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" name="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" name="tls"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imudp" address="127.0.0.1" port="{udp}" name="udp")
template(name="fields" type="list") {{
constant(value="{{")
{fields}constant(value="\"msg\":\"") property(name="msg" format="json") constant(value="\"}}\n")
}}
action(type="omfile" file="{d}/received.ndjson" template="fields")
"#
    )
}

/// `count` detections, every fourth with attacker text in its fields.
fn detections(count: usize) -> Vec<String> {
    let evil = "a=b | c\\d\re\nf act=blocked cs1=x |CEF:0|Ünïcødé 攻击者 <13>1 - \\";
    let severities = ["Informational", "Low", "Medium", "High", "Bogus"];
    (0..count)
        .map(|i| {
            let text = |base: &str| if i % 4 == 3 { format!("{base} {evil}") } else { base.into() };
            json!({
                "AlertTime": "2026-01-02T03:04:05.1234567Z",
                "AlertTitle": text("Suspicious process"),
                "Category": text("Execution"),
                "Severity": severities[i % severities.len()],
                "AlertId": format!("da6390000000000000{i:04}_1"),
                "FileName": text("evil.exe"),
                "FilePath": text("C:\\Users\\me\\Downloads"),
                "UserName": text("me"),
                "RemediationIsSuccess": i % 2 == 0,
                "FullId": format!("da6390000000000000{i:04}_1:id{i}"),
                "LastProcessedTimeUtc": "2026-01-02T03:04:06Z",
                "Unexpected": {"nested": [i]},
            })
            .to_string()
        })
        .collect()
}

fn records(jsons: &[String]) -> Vec<Record<'_>> {
    jsons
        .iter()
        .map(|json| {
            let v: Value = serde_json::from_str(json).unwrap();
            Record {
                json: json.as_bytes(),
                full_id: v["FullId"].as_str().unwrap().to_string().into(),
                processed: Timestamp::parse(v["LastProcessedTimeUtc"].as_str().unwrap()).unwrap(),
            }
        })
        .collect()
}

fn config(port: u16, transport: Transport) -> SyslogConfig {
    let mut config = SyslogConfig::new("127.0.0.1", transport);
    config.port = port;
    config.facility = "local3".parse::<Facility>().unwrap();
    config.app_name = "siemgate-test".into();
    config.hostname = Some("edge-01.example".into());
    config
}

async fn send(config: SyslogConfig, jsons: &[String]) {
    let mut sink = SyslogSink::new(config).unwrap();
    let records = records(jsons);
    for window in records.chunks(64) {
        for slice in window.chunks(10) {
            sink.write(slice).await.unwrap();
        }
        assert_eq!(sink.commit().await.unwrap(), Value::Null);
    }
}

/// Checks that the messages rsyslog parsed are the detections sent, in order.
fn check(received: &[Value], jsons: &[String]) {
    assert_eq!(received.len(), jsons.len());
    for (got, json) in received.iter().zip(jsons) {
        let mut line = Vec::new();
        let severity = cef::encode_with_severity(json.as_bytes(), &mut line).unwrap();
        let pri = 19 * 8 + siemgate_pull::sink::syslog::syslog_severity(severity);
        assert_eq!(got["pri"], pri.to_string());
        assert_eq!(got["hostname"], "edge-01.example");
        assert_eq!(got["app"], "siemgate-test");
        assert_eq!(got["procid"], std::process::id().to_string());
        assert_eq!(got["msgid"], "detection");
        assert_eq!(got["sd"], "-");
        assert!(got["timestamp"].as_str().unwrap().starts_with("20"), "{got}");
        assert_eq!(got["msg"], String::from_utf8(line).unwrap(), "{json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_every_detection_over_tcp_tls_and_udp() {
    let rsyslog = Rsyslog::start();
    let jsons = detections(300);

    send(config(rsyslog.tcp, Transport::Tcp), &jsons).await;
    check(&rsyslog.received("tcp", jsons.len()), &jsons);

    let mut tls = config(rsyslog.tls, Transport::Tls);
    tls.ca_file = Some(rsyslog.ca());
    tls.server_name = Some("localhost".into());
    send(tls, &jsons).await;
    check(&rsyslog.received("tls", jsons.len()), &jsons);

    // Datagrams are sent one at a time with a pause, as nothing would
    // resend one the loopback dropped.
    let mut sink = SyslogSink::new(config(rsyslog.udp, Transport::Udp)).unwrap();
    let few = &jsons[..40];
    for record in records(few).chunks(1) {
        sink.write(record).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sink.commit().await.unwrap();
    check(&rsyslog.received("udp", few.len()), few);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_too_large_is_cut_not_lost() {
    let rsyslog = Rsyslog::start();
    let mut record: Value = serde_json::from_str(&detections(1)[0]).unwrap();
    record["FileName"] = json!(format!("{}攻", "x".repeat(3000)));
    let json = record.to_string();
    let mut config = config(rsyslog.udp, Transport::Udp);
    config.max_datagram = 1000;
    let mut sink = SyslogSink::new(config).unwrap();
    sink.write(&records(std::slice::from_ref(&json))).await.unwrap();

    let got = &rsyslog.received("udp", 1)[0];
    let mut line = Vec::new();
    cef::encode(json.as_bytes(), &mut line).unwrap();
    let msg = got["msg"].as_str().unwrap();
    assert!(msg.len() < 1000 && msg.len() > 800, "{} bytes", msg.len());
    assert!(line.starts_with(msg.as_bytes()), "the message is the start of the CEF line");
}

#[tokio::test]
async fn a_collector_that_is_not_there_fails_the_window_and_a_later_one_is_reached() {
    let port = free_port();
    let mut sink = SyslogSink::new(config(port, Transport::Tcp)).unwrap();
    let jsons = detections(3);
    let err = sink.write(&records(&jsons)).await.and(sink.commit().await.map(drop));
    assert!(err.unwrap_err().to_string().contains(&format!("127.0.0.1:{port}")));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    sink.write(&records(&jsons)).await.unwrap();
    sink.commit().await.unwrap();
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut received = Vec::new();
    drop(sink);
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut received).await.unwrap();
    let text = String::from_utf8(received).unwrap();
    let mut rest = text.as_str();
    for json in &jsons {
        let (length, after) = rest.split_once(' ').expect("an octet count");
        let (message, next) = after.split_at(length.parse().unwrap());
        let mut line = Vec::new();
        cef::encode(json.as_bytes(), &mut line).unwrap();
        assert!(message.starts_with("<"), "{message}");
        assert!(message.ends_with(std::str::from_utf8(&line).unwrap()), "{message}");
        rest = next;
    }
    assert_eq!(rest, "");
}
