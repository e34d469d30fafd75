//! Headless Chromium for the browser tests: Debian's `chromium` and its WebDriver server
//! `chromedriver` (package `chromium-driver`) found on this machine, chromedriver started
//! on a free loopback port, the capabilities of a headless session, and the browser's
//! console read back through chromedriver's log endpoint.
//!
//! The WebDriver client itself (fantoccini) is the test's; this module only needs HTTP,
//! so the library does not depend on it. Where the browser is missing a test is skipped
//! with the reason printed; with `CI_REQUIRE_BROWSER` set (`.ci/run` sets it after
//! installing both packages) it fails instead.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// The variable that turns a missing browser from a skip into a failure.
pub const REQUIRE: &str = "CI_REQUIRE_BROWSER";

/// How long chromedriver may take to answer `/status` as ready.
const STARTUP: Duration = Duration::from_secs(30);

/// Why a browser test cannot run here: printed and skipped, or a failure under
/// [`REQUIRE`].
pub fn skip_or_fail(reason: &str) {
    assert!(
        std::env::var_os(REQUIRE).is_none(),
        "{REQUIRE} is set but {reason}"
    );
    eprintln!("skipping: {reason}");
}

/// The two programs a browser test runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The browser (Debian's `/usr/bin/chromium` is a wrapper script; it is what
    /// chromedriver starts).
    pub chromium: PathBuf,
    /// The WebDriver server.
    pub chromedriver: PathBuf,
}

/// `name` on `PATH`, else at `fallback`.
fn program(name: &str, fallback: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from(fallback)).filter(|p| p.is_file()))
}

/// Chromium and chromedriver, or why they cannot be used.
pub fn find_tools() -> Result<Tools, String> {
    let chromedriver = program("chromedriver", "/usr/bin/chromedriver").ok_or(
        "no chromedriver on PATH or at /usr/bin/chromedriver (apt-get install chromium-driver)",
    )?;
    let chromium = program("chromium", "/usr/bin/chromium")
        .ok_or("no chromium on PATH or at /usr/bin/chromium (apt-get install chromium)")?;
    // A driver of another major version than the browser refuses every session; say so
    // here rather than in a session error.
    let major = |program: &Path| -> Result<String, String> {
        let out = Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find_map(|word| {
                let (major, _) = word.split_once('.')?;
                major.parse::<u32>().ok().map(|_| major.to_owned())
            })
            .ok_or_else(|| format!("{} --version said {text:?}", program.display()))
    };
    let (browser, driver) = (major(&chromium)?, major(&chromedriver)?);
    if browser != driver {
        return Err(format!(
            "chromium {browser} and chromedriver {driver} differ in major version"
        ));
    }
    Ok(Tools {
        chromium,
        chromedriver,
    })
}

/// A free port on 127.0.0.1 (bound, read and released: chromedriver cannot be told to
/// pick one and report it).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A chromedriver process on 127.0.0.1, with a profile directory for the browser it
/// starts. Dropping it kills its process group: chromedriver and every Chromium process
/// under it, even when a failing test never closed its session.
#[derive(Debug)]
pub struct Chromedriver {
    child: Child,
    url: String,
    log_path: PathBuf,
    profile: tempfile::TempDir,
    chromium: PathBuf,
}

impl Chromedriver {
    /// Starts chromedriver on a free port, writing its log to `log_path`, and waits
    /// (bounded) until it says it is ready for sessions.
    pub async fn start(tools: &Tools, log_path: &Path) -> Result<Self, String> {
        // Another process may take the port between release and chromedriver's bind;
        // a few tries make that race harmless.
        let mut last = String::new();
        for _ in 0..3 {
            let profile = tempfile::tempdir().map_err(|e| format!("profile directory: {e}"))?;
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            let child = Command::new(&tools.chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log_path.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so Drop can end the browser with it.
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", tools.chromedriver.display()))?;
            let mut driver = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log_path: log_path.to_path_buf(),
                profile,
                chromium: tools.chromium.clone(),
            };
            match driver.wait_ready().await {
                Ok(()) => return Ok(driver),
                // The failed one is killed as it drops.
                Err(why) => last = why,
            }
        }
        Err(format!("chromedriver did not start: {last}"))
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < STARTUP {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited ({status}); {}", self.log()));
            }
            let ready = client
                .get(format!("{}/status", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(response) = ready
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "not ready within {STARTUP:?} at {}; {}",
            self.url,
            self.log()
        ))
    }

    /// The WebDriver endpoint, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Capabilities of a headless Chromium session whose window is `width`×`height`,
    /// keeping every console message for [`Chromedriver::console`].
    pub fn capabilities(&self, width: u32, height: u32) -> Map<String, Value> {
        let args = [
            "--headless=new".to_owned(),
            // Tests run as root in containers, where Chromium's sandbox cannot start.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            // /dev/shm is small in containers; Chromium crashes tabs when it fills.
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-extensions".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", self.profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
            },
        });
        match caps {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The browser console since the last call (chromedriver hands each entry out
    /// once): `{level, source, message}` objects, `level` SEVERE for errors, uncaught
    /// exceptions, CSP violations and failed loads.
    pub async fn console(&self, session: &str) -> Result<Vec<Value>, String> {
        let response = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.url))
            .json(&json!({ "type": "browser" }))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("reading the browser log: {e}"))?;
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("the browser log is not JSON: {e}"))?;
        body["value"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("unexpected browser log answer: {body}"))
    }

    /// chromedriver's own log so far (for failure messages).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        // The end is what explains a failure; the start is the session's capabilities.
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "chromedriver log {} (last lines):\n{}",
            self.log_path.display(),
            tail.join("\n")
        )
    }

    fn kill(&mut self) {
        // SIGKILL to the group: chromedriver would not close its browser on a signal.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.kill();
    }
}
