//! The one helper that runs the real `logvault serve` binary on `127.0.0.1:0`, plus
//! conveniences for talking to it and for running CLI commands beside it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{self, Response};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_logvault");

/// A command for the binary with no `LOGVAULT_*` settings leaking in from the environment.
pub fn command() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("LOGVAULT_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs a CLI command to completion; kills it and fails the test after a minute.
pub fn cli(args: &[&str]) -> Output {
    cli_within(args, Duration::from_secs(60))
}

/// Runs a CLI command to completion; kills it and fails the test after `limit`.
pub fn cli_within(args: &[&str], limit: Duration) -> Output {
    let child = command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the logvault binary");
    let pid = child.id().to_string();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => output.expect("wait for the logvault binary"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("logvault {args:?} did not finish within {limit:?}");
        }
    }
}

/// A running `logvault serve`; killed when dropped.
pub struct Server {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Stdout lines printed before the listening line (initial admin key, demo credentials).
    pub startup_lines: Vec<String>,
    child: Option<Child>,
    https: bool,
}

const LISTENING: &str = "logvault listening on ";

impl Server {
    /// Starts `logvault serve --data-dir DIR --listen 127.0.0.1:0` plus `extra` arguments
    /// and waits until it listens. Stderr goes to `DIR.log` beside the data directory.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        let dir_text = data_dir.to_str().expect("UTF-8 temp path");
        if !extra.contains(&"--db") {
            args.extend(["--data-dir", dir_text]);
        }
        args.extend(extra);
        Server::start_with(data_dir, &args)
    }

    /// Starts the binary with exactly `args` (which must make it serve on `data_dir`).
    pub fn start_with(data_dir: &Path, args: &[&str]) -> Server {
        let log_path = data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the server log");
        let mut child = command()
            .args(args)
            .env("LOGVAULT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn logvault serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        // Keeps draining stdout until the process exits, so it can never block on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut startup_lines = Vec::new();
        let mut server = Server {
            addr: String::new(),
            https: false,
            data_dir: data_dir.to_path_buf(),
            startup_lines: Vec::new(),
            child: Some(child),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(LISTENING) {
                    Some(url) => {
                        let url = url.trim();
                        server.https = url.starts_with("https://");
                        server.addr = url
                            .trim_start_matches("https://")
                            .trim_start_matches("http://")
                            .to_string();
                        break;
                    }
                    None => startup_lines.push(line),
                },
                Err(error) => {
                    server.kill();
                    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let tail: String = log_text
                        .chars()
                        .rev()
                        .take(3000)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    panic!(
                        "logvault {args:?} never said it was listening ({error}); stdout: \
                         {startup_lines:?}; stderr tail:\n{tail}"
                    );
                }
            }
        }
        server.startup_lines = startup_lines;
        server
    }

    /// Whether it serves HTTPS (`--tls-cert`), as its listening line said.
    pub fn scheme_is_https(&self) -> bool {
        self.https
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server still running").id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait (at most `timeout`) for the process to exit; returns its status.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("server still running");
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The key saved in `DATA_DIR/initial-admin-key` on first start.
    pub fn admin_key(&self) -> String {
        read_admin_key(&self.data_dir)
    }

    /// One request with `key` as bearer token (if any).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let authorization = key.map(|key| format!("Bearer {key}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(authorization) = &authorization {
            headers.push(("Authorization", authorization.as_str()));
        }
        let body = body.map(Value::to_string);
        http::request(
            &self.addr,
            method,
            path,
            &headers,
            body.as_deref().map(str::as_bytes),
        )
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    /// `GET path` with `key`.
    pub fn get(&self, path: &str, key: &str) -> Response {
        self.request("GET", path, Some(key), None)
    }

    /// Every event of `kind` (`audit` or `threat`) matching `query`, newest first, paged with
    /// `limit=1000` and the cursor. Checks that `seq` strictly decreases through all pages.
    pub fn list_all(&self, key: &str, kind: &str, query: &str) -> Vec<Value> {
        let mut events: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/{kind}-events?limit=1000");
            if !query.is_empty() {
                path.push('&');
                path.push_str(query);
            }
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let response = self.get(&path, key);
            assert_eq!(response.status, 200, "GET {path}: {}", response.body);
            let page = response.json();
            let data = page["data"].as_array().expect("data array").clone();
            for event in &data {
                let seq = event["seq"].as_u64().expect("seq");
                if let Some(previous) = events.last() {
                    let previous_seq = previous["seq"].as_u64().expect("seq");
                    assert!(
                        seq < previous_seq,
                        "GET {path}: seq {seq} follows {previous_seq}; must strictly decrease"
                    );
                }
                events.push(event.clone());
            }
            match page["next_cursor"].as_str() {
                Some(next) => {
                    assert!(
                        !data.is_empty(),
                        "GET {path}: empty page with a next_cursor"
                    );
                    cursor = Some(next.to_string());
                }
                None => return events,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `DATA_DIR/initial-admin-key`.
pub fn read_admin_key(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("initial-admin-key"))
        .expect("read initial-admin-key")
        .trim()
        .to_string()
}

/// A fresh temporary directory and a `data` path inside it (not yet created).
pub fn temp_data_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("create a temp dir");
    let data_dir = temp.path().join("data");
    (temp, data_dir)
}
