//! Services as child processes on 127.0.0.1 port 0: started with JSON logs, their
//! address read from the log line that announces it, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::bins::binary;

/// A running service process.
#[derive(Debug)]
pub struct Service {
    name: String,
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts binary `bin` with `args` and extra environment `env`, and waits until it
    /// logs the address it listens on. Panics (with the log) when it exits first.
    pub fn start(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let path = binary(bin);
        let mut command = Command::new(&path);
        command
            .args(args)
            .env("HOSTBRIDGE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // The tests set every variable a service reads; none leaks in from outside.
            .env_remove("USE_IB_HOST_SERVICE")
            .env_remove("USE_TRAINING_HOST_SERVICE")
            .env_remove("IB_HOST_SERVICE_URL")
            .env_remove("TRAINING_HOST_SERVICE_URL")
            .env_remove("HOSTBRIDGE_API_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", path.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                let seen = log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .join("\n");
                panic!("{bin} {args:?} exited before listening; log:\n{seen}");
            };
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.clone());
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(addr) = entry["fields"]["addr"].as_str() {
                break addr.to_owned();
            }
        };
        // Keep draining so the child never blocks on a full pipe; keep the text for
        // failure messages.
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        Self {
            name: bin.to_owned(),
            child,
            addr,
            log,
        }
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// Waits until its log holds `needle` (at most `limit`); panics with the log.
    pub fn wait_for_log(&self, needle: &str, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while !self.log().contains(needle) {
            assert!(
                started.elapsed() < limit,
                "{} never logged {needle:?} within {limit:?}; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process dies without any chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit (bounded by polls; SIGKILL if it never exits).
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..400 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        eprintln!("{} ignored SIGTERM; killing it", self.name);
        self.kill();
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The repository's sample store.
pub fn sample_data() -> std::path::PathBuf {
    crate::bins::workspace_root().join("data")
}

/// The repository's strategies.
pub fn strategies() -> std::path::PathBuf {
    crate::bins::workspace_root().join("strategies")
}

/// `path` as a `&str` argument (test paths are UTF-8).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
