//! Just enough of the W3C WebDriver protocol to drive a headless Chromium
//! through chromedriver: a session, navigation, elements, keys, clicks,
//! text, scripts and dialogs. Dropping the [`Browser`] ends the session and
//! kills chromedriver, so no browser outlives a test, even one that panics.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key WebDriver names an element reference by (W3C WebDriver 12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Flags that keep a headless Chromium quiet on a closed network: no
/// background downloads, component updates, sync or QUIC probes.
const FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// A chromedriver process and one browser session in it.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// A WebDriver error answer, such as `no such alert`.
#[derive(Debug)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session.
    /// Fails, never skips, when either is not installed.
    pub async fn start() -> Browser {
        for (binary, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing; the browser test needs Chromium and chromedriver: \
                 apt-get install chromium chromium-driver (package {package})"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver did not start");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            http: reqwest::Client::new(),
            _profile: profile,
        };
        browser.wait_until_ready().await;
        browser.session = browser.new_session().await;
        browser
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.http.get(format!("{}/status", self.base())).send().await;
            if let Ok(response) = status {
                let body: Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn new_session(&self) -> String {
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", self._profile.path().display()));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            // A dialog a page opens stays open, so a test can see it.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let value = self.call("POST", "/session", Some(capabilities)).await.unwrap();
        value["sessionId"].as_str().expect("no session id").to_owned()
    }

    /// One WebDriver command; `path` is relative to the driver, `{s}` the session.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let url = format!("{}{}", self.base(), path.replace("{s}", &self.session));
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().await.expect("chromedriver stopped answering");
        let ok = response.status().is_success();
        let body: Value = response.json().await.expect("chromedriver answered with no JSON");
        let value = body["value"].clone();
        if ok {
            Ok(value)
        } else {
            let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
            Err(WebDriverError { error: text("error"), message: text("message") })
        }
    }

    pub async fn navigate(&self, url: &str) {
        self.call("POST", "/session/{s}/url", Some(json!({ "url": url }))).await.unwrap();
    }

    pub async fn current_url(&self) -> String {
        let value = self.call("GET", "/session/{s}/url", None).await.unwrap();
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Waits up to `timeout` for the current URL to satisfy `done`.
    pub async fn wait_for_url(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if done(&url) || Instant::now() >= deadline {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> String {
        let query = json!({ "using": "css selector", "value": selector });
        let value = self.call("POST", "/session/{s}/element", Some(query)).await;
        let value = value.unwrap_or_else(|e| panic!("no element {selector:?}: {}", e.message));
        value[ELEMENT].as_str().unwrap().to_owned()
    }

    pub async fn send_keys(&self, element: &str, text: &str) {
        let path = format!("/session/{{s}}/element/{element}/value");
        self.call("POST", &path, Some(json!({ "text": text }))).await.unwrap();
    }

    pub async fn click(&self, element: &str) {
        let path = format!("/session/{{s}}/element/{element}/click");
        self.call("POST", &path, None).await.unwrap();
    }

    /// The text the user sees in `element`, as rendered.
    pub async fn text(&self, element: &str) -> String {
        let path = format!("/session/{{s}}/element/{element}/text");
        let value = self.call("GET", &path, None).await.unwrap();
        value.as_str().unwrap_or_default().to_owned()
    }

    pub async fn source(&self) -> String {
        let value = self.call("GET", "/session/{s}/source", None).await.unwrap();
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Value {
        let body = json!({ "script": script, "args": [] });
        self.call("POST", "/session/{s}/execute/sync", Some(body)).await.unwrap()
    }

    /// The text of the dialog (`alert`, `confirm`) the page has open, if any.
    pub async fn open_dialog(&self) -> Option<String> {
        match self.call("GET", "/session/{s}/alert/text", None).await {
            Ok(text) => Some(text.as_str().unwrap_or_default().to_owned()),
            Err(e) if e.error == "no such alert" => None,
            Err(e) => panic!("asking for a dialog failed: {} {}", e.error, e.message),
        }
    }

    /// A PNG of the window, for looking at a failure.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let value = self.call("GET", "/session/{s}/screenshot", None).await.unwrap();
        base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap()).unwrap()
    }

    /// Ends the session (Chromium exits) and chromedriver.
    pub async fn quit(mut self) {
        let _ = self.call("DELETE", "/session/{s}", None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never reached `quit`: end the session over a
        // plain socket (no runtime is needed), so chromedriver closes
        // Chromium, then kill chromedriver itself.
        if !self.session.is_empty() {
            delete_session(self.port, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
