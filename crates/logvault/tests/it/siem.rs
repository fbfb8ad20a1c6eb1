//! SIEM out: the OCSF export checked against the OCSF schema (from the `ocsf-json-schema`
//! package, with `jsonschema`), and syslog, CEF and OCSF streams received by a real rsyslog
//! across a graceful restart and a kill -9 of logvault: every event arrives, none twice after
//! SIGTERM, and after kill -9 only the one batch that was in flight may come twice.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::peers;
use crate::server::{Server, cli, temp_data_dir};

/// The most events a stream writes at once (`siem::stream::BATCH_EVENTS`).
const BATCH_EVENTS: usize = 500;

fn ingest(server: &Server, key: &str, kind: &str, events: &[Value]) {
    let body = Value::Array(events.to_vec());
    let response = server.request(
        "POST",
        &format!("/v1/{kind}-events"),
        Some(key),
        Some(&body),
    );
    assert_eq!(response.status, 201, "{}", response.body);
}

fn audit(id: &str, account: &str, extra: Value) -> Value {
    let mut event = json!({"id": id, "account_id": account, "action": "user.login",
        "outcome": "success", "actor": {"id": "usr_1", "type": "user"}});
    if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
        event.extend(extra);
    }
    event
}

fn create_merchant(data_dir: &Path, id: &str) {
    let dir = data_dir.to_str().expect("UTF-8 path");
    let output = cli(&[
        "accounts",
        "create",
        "--data-dir",
        dir,
        "--kind",
        "merchant",
        "--name",
        id,
        "--id",
        id,
    ]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn ocsf_export_validates_against_the_ocsf_schema() {
    let Some(python) = peers::python() else {
        return;
    };
    let (temp, dir) = temp_data_dir();
    create_merchant(&dir, "mer_ocsf");
    let server = Server::start(&dir, &[]);
    let key = server.admin_key();
    let account = "mer_ocsf";
    ingest(
        &server,
        &key,
        "audit",
        &[
            audit(
                "a1",
                account,
                json!({"origin": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
                "metadata": {"mfa": true}, "occurred_at": "2026-11-25T10:00:00Z", "request_id": "req_1"}),
            ),
            audit(
                "a2",
                account,
                json!({"outcome": "failure", "reason": "bad_password",
                "origin": {"ip": "2001:db8::1"}, "actor": {"id": "usr_2", "type": "user", "name": "Ann"}}),
            ),
            audit("a3", account, json!({"action": "user.logout"})),
            audit(
                "a4",
                account,
                json!({"action": "api_key.created", "actor": {"id": "key_1", "type": "api_key"}}),
            ),
            audit(
                "a5",
                account,
                json!({"action": "retention.policy_set", "actor": {"id": "sys", "type": "system"}}),
            ),
        ],
    );
    ingest(
        &server,
        &key,
        "threat",
        &[
            json!({"id": "t1", "account_id": account, "source": "sdk", "error_type": "NetworkTimeout",
                "error_code": "E_TIMEOUT", "message": "request timed out", "version": "ios-sdk 4.2.1",
                "environment": "production", "sdk": {"name": "ios", "platform": "iOS 17.2"},
                "stacktrace": "at a\nat b"}),
            json!({"id": "t2", "account_id": account, "source": "api", "error_type": "Upstream",
                "message": "gateway timeout", "version": "API 2024-06-01", "environment": "sandbox",
                "api": {"method": "POST", "path": "/v1/payments", "status": 504}}),
        ],
    );
    // A read first, so the audit export also holds a logs.viewed event of the platform.
    assert_eq!(server.get("/v1/audit-events", &key).status, 200);
    let mut files = Vec::new();
    for kind in ["audit", "threat"] {
        let response = server.get(&format!("/v1/{kind}-events/export?format=ocsf"), &key);
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(
            response.header("content-type"),
            Some("application/x-ndjson")
        );
        let lines: Vec<Value> = response
            .body
            .lines()
            .map(|line| serde_json::from_str(line).expect("OCSF JSON line"))
            .collect();
        let expected_class = if kind == "audit" { 3002 } else { 0 };
        assert!(
            lines
                .iter()
                .all(|event| event["class_uid"] == expected_class),
            "{kind}: {lines:#?}"
        );
        let path = temp.path().join(format!("{kind}.ocsf.ndjson"));
        std::fs::write(&path, &response.body).expect("write the export");
        files.push(path);
    }
    let output = Command::new(&python)
        .arg(peers::script("ocsf_validate.py"))
        .args(&files)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.code() == Some(3) && !required("LOGVAULT_TEST_REQUIRE_PYTHON") {
        eprintln!("skipping: the venv lacks the OCSF packages; run scripts/test.sh");
        return;
    }
    assert!(
        output.status.success(),
        "OCSF schema validation failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("validator prints JSON");
    assert_eq!(report["classes"]["0"], 2, "{report}");
    assert!(report["classes"]["3002"].as_u64() >= Some(6), "{report}");
}

fn required(variable: &str) -> bool {
    std::env::var(variable).as_deref() == Ok("1")
}

/// Debian's rsyslogd, or `None` (the test skips) when it is not installed outside the suite.
fn rsyslogd() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/sbin/rsyslogd");
    if path.exists() {
        return Some(path);
    }
    assert!(
        !required("LOGVAULT_TEST_REQUIRE_RSYSLOG"),
        "rsyslogd must run here (LOGVAULT_TEST_REQUIRE_RSYSLOG=1): install Debian's rsyslog"
    );
    eprintln!("skipping: no /usr/sbin/rsyslogd (scripts/test.sh installs rsyslog)");
    None
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// An rsyslogd in the foreground with its own configuration: one imtcp input per stream,
/// each writing the raw messages it receives to a file of its own. Killed when dropped.
struct Rsyslog {
    child: Child,
    /// Input port and output file, by input name.
    inputs: BTreeMap<&'static str, (u16, PathBuf)>,
}

impl Rsyslog {
    fn start(rsyslogd: &Path, dir: &Path, names: &[&'static str]) -> Rsyslog {
        Rsyslog::start_with(rsyslogd, dir, names, None)
    }

    /// [`Rsyslog::start`], over TLS (rsyslog's `ossl` driver) with `cert` and `key` when
    /// given.
    fn start_with(
        rsyslogd: &Path,
        dir: &Path,
        names: &[&'static str],
        tls: Option<(&Path, &Path)>,
    ) -> Rsyslog {
        std::fs::create_dir_all(dir).expect("rsyslog dir");
        let (tls_global, tls_module) = match tls {
            Some((cert, key)) => (
                format!(
                    " DefaultNetstreamDriverCAFile=\"{cert}\" DefaultNetstreamDriverCertFile=\"{cert}\" \
                     DefaultNetstreamDriverKeyFile=\"{key}\"",
                    cert = cert.display(),
                    key = key.display()
                ),
                " StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\"",
            ),
            None => (String::new(), ""),
        };
        let mut config = format!(
            "global(workDirectory=\"{}\" maxMessageSize=\"256k\"{tls_global})\n\
             module(load=\"imtcp\"{tls_module})\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n",
            dir.display()
        );
        let mut inputs = BTreeMap::new();
        for name in names {
            let (port, file) = (free_port(), dir.join(format!("{name}.log")));
            config.push_str(&format!(
                "ruleset(name=\"{name}\") {{ action(type=\"omfile\" file=\"{}\" template=\"raw\") }}\n\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"{name}\")\n",
                file.display()
            ));
            inputs.insert(*name, (port, file));
        }
        let config_path = dir.join("rsyslog.conf");
        std::fs::write(&config_path, config).expect("write rsyslog.conf");
        let child = Command::new(rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(&config_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        let rsyslog = Rsyslog { child, inputs };
        let deadline = Instant::now() + Duration::from_secs(20);
        for (port, _) in rsyslog.inputs.values() {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "rsyslogd never listened on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        rsyslog
    }

    /// Sends rsyslogd `SIGSTOP` or `SIGCONT`.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    fn port(&self, name: &str) -> u16 {
        self.inputs[name].0
    }

    /// The lines rsyslog wrote for input `name` so far.
    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(&self.inputs[name].1)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The event id in one received line of `format`.
fn event_id(format: &str, line: &str) -> Option<String> {
    let between = |start: &str, end: char| {
        let from = line.find(start)? + start.len();
        let rest = &line[from..];
        Some(rest[..rest.find(end).unwrap_or(rest.len())].to_string())
    };
    match format {
        "syslog" => between("[logvault@32473 id=\"", '"'),
        "cef" => between("externalId=", ' '),
        _ => {
            let event: Value = serde_json::from_str(line).ok()?;
            event["metadata"]["uid"].as_str().map(str::to_string)
        }
    }
}

/// How often each event id arrived on input `name`.
fn arrivals(rsyslog: &Rsyslog, name: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut cut_off = 0;
    for line in rsyslog.lines(name) {
        match event_id(name, &line) {
            Some(id) => *counts.entry(id).or_insert(0) += 1,
            // The message a kill -9 cut off in the middle (its event is sent again).
            None => cut_off += 1,
        }
    }
    assert!(cut_off <= 1, "{name}: {cut_off} lines without an event id");
    counts
}

/// Waits until every id of `ids` arrived on every input.
fn wait_for(rsyslog: &Rsyslog, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in rsyslog.inputs.keys() {
        loop {
            let counts = arrivals(rsyslog, name);
            let missing = ids.iter().filter(|id| !counts.contains_key(*id)).count();
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {missing} of {} events never arrived",
                ids.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

fn ingest_ids(server: &Server, key: &str, ids: &[String]) {
    for chunk in ids.chunks(1000) {
        let events: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let outcome = if i % 3 == 0 { "failure" } else { "success" };
                // Values CEF and syslog must escape, on every event.
                audit(
                    id,
                    "mer_siem",
                    json!({"outcome": outcome,
                    "reason": "a|b\\c=d\ne]\"f", "origin": {"ip": "198.51.100.4"}}),
                )
            })
            .collect();
        ingest(server, key, "audit", &events);
    }
}

#[test]
fn rsyslog_receives_streams_across_restarts_and_kill_9() {
    let Some(rsyslogd) = rsyslogd() else {
        return;
    };
    let (temp, dir) = temp_data_dir();
    let rsyslog = Rsyslog::start(
        &rsyslogd,
        &temp.path().join("rsyslog"),
        &["syslog", "cef", "ocsf"],
    );
    create_merchant(&dir, "mer_siem");
    create_merchant(&dir, "mer_other");
    // Every stream reads only mer_siem, like a reader of that account: the admin's own
    // logs.viewed events on the platform account and mer_other's events stay out.
    // The streams come from the config file's [[siem.streams]] tables.
    let mut config = String::new();
    for format in ["syslog", "cef", "ocsf"] {
        config.push_str(&format!(
            "[[siem.streams]]\nname = \"test-{format}\"\nformat = \"{format}\"\n\
             address = \"127.0.0.1:{}\"\naccount = \"mer_siem\"\nhost = \"lv-test\"\n",
            rsyslog.port(format)
        ));
    }
    let config_path = temp.path().join("logvault.toml");
    std::fs::write(&config_path, config).expect("write the config file");
    let args = ["--config", config_path.to_str().expect("UTF-8 path")];

    // Events stored before the first start are sent once the stream starts.
    let mut server = Server::start(&dir, &args);
    let key = server.admin_key();
    let mut sent = ids("e", 0..300);
    ingest_ids(&server, &key, &sent);
    ingest(
        &server,
        &key,
        "audit",
        &[audit("other-1", "mer_other", json!({}))],
    );
    wait_for(&rsyslog, &sent);
    let metrics = server.get("/metrics", &key).body;
    assert!(
        metrics.contains("logvault_siem_sent_total{stream=\"test-syslog\"} 301"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logvault_siem_connected{stream=\"test-cef\"} 1"),
        "{metrics}"
    );

    // A graceful restart repeats nothing and loses nothing; events stored while the
    // stream is down follow after it.
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let down = Server::start(&dir, &[]);
    let more = ids("down", 0..200);
    ingest_ids(&down, &key, &more);
    drop(down);
    sent.extend(more);
    let mut server = Server::start(&dir, &args);
    let live = ids("live", 0..100);
    ingest_ids(&server, &key, &live);
    sent.extend(live);
    wait_for(&rsyslog, &sent);
    for name in rsyslog.inputs.keys() {
        let counts = arrivals(&rsyslog, name);
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{name}: sent again after SIGTERM: {twice:?}"
        );
        // And the record of the account's creation, its first event.
        assert_eq!(
            counts.len(),
            sent.len() + 1,
            "{name}: only mer_siem's events"
        );
    }

    // kill -9 while a stream is busy: after the restart every event is there, and only the
    // batch that was written but not yet recorded may have come twice.
    // rsyslog stops reading meanwhile, so batches are still in flight (in the socket
    // buffers, or a write blocked) when logvault dies; ingest is answered all the same.
    rsyslog.signal("STOP");
    let burst = ids("burst", 0..6000);
    ingest_ids(&server, &key, &burst);
    std::thread::sleep(Duration::from_millis(300));
    server.kill();
    rsyslog.signal("CONT");
    sent.extend(burst);
    let _server = Server::start(&dir, &args);
    wait_for(&rsyslog, &sent);
    for name in rsyslog.inputs.keys() {
        let counts = arrivals(&rsyslog, name);
        assert_eq!(
            counts.len(),
            sent.len() + 1,
            "{name}: every event, no other"
        );
        let twice = counts.values().filter(|n| **n > 1).count();
        eprintln!("{name}: {twice} events arrived twice after kill -9");
        assert!(
            twice <= BATCH_EVENTS,
            "{name}: {twice} events sent again after kill -9; at most one batch may be"
        );
        assert!(
            counts.values().all(|n| *n <= 2),
            "{name}: an event came three times"
        );
    }

    // What rsyslog received is each format as specified.
    let first = |name: &str| {
        rsyslog
            .lines(name)
            .into_iter()
            .find(|line| event_id(name, line).as_deref() == Some("e-0"))
            .unwrap_or_else(|| panic!("{name}: no e-0"))
    };
    let syslog = [first("syslog")];
    assert!(
        syslog[0].starts_with("<108>1 ")
            && syslog[0].contains(" lv-test logvault - audit [logvault@32473 "),
        "{}",
        syslog[0]
    );
    assert!(syslog[0].contains(r#"reason="a|b\\c=d"#), "{}", syslog[0]);
    let cef = [first("cef")];
    assert!(cef[0].contains(" - CEF:0|logvault|logvault|"), "{}", cef[0]);
    assert!(cef[0].contains("reason=a|b\\\\c\\=d\\ne]\"f"), "{}", cef[0]);
    let ocsf: Value = serde_json::from_str(&first("ocsf")).expect("OCSF line");
    assert_eq!(ocsf["class_uid"], 3002);
}

/// rsyslog's OpenSSL driver (Debian's `rsyslog-openssl`), or `None` (the test skips) when it
/// is not installed outside the suite.
fn rsyslog_tls_driver() -> Option<()> {
    let installed = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| entry.path().join("rsyslog/lmnsd_ossl.so").exists());
    if installed {
        return Some(());
    }
    assert!(
        !required("LOGVAULT_TEST_REQUIRE_RSYSLOG"),
        "rsyslog's TLS driver must be here (LOGVAULT_TEST_REQUIRE_RSYSLOG=1): install \
         Debian's rsyslog-openssl"
    );
    eprintln!("skipping: no rsyslog-openssl (scripts/test.sh installs it)");
    None
}

#[test]
fn a_tls_stream_reaches_rsyslog_trusting_only_its_ca() {
    let (Some(rsyslogd), Some(())) = (rsyslogd(), rsyslog_tls_driver()) else {
        return;
    };
    let (temp, dir) = temp_data_dir();
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, key) = (temp.path().join("cert.pem"), temp.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("write the certificate");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write the key");
    let rsyslog = Rsyslog::start_with(
        &rsyslogd,
        &temp.path().join("rsyslog"),
        &["syslog"],
        Some((&cert, &key)),
    );
    create_merchant(&dir, "mer_siem");
    let stream = format!(
        "name=tls,format=syslog,address=127.0.0.1:{},tls=true,tls_ca={},tls_name=localhost",
        rsyslog.port("syslog"),
        cert.display()
    );
    let server = Server::start(&dir, &["--siem-stream", &stream]);
    let key = server.admin_key();
    let sent = ids("tls", 0..50);
    ingest_ids(&server, &key, &sent);
    wait_for(&rsyslog, &sent);
    let metrics = server.get("/metrics", &key).body;
    assert!(
        metrics.contains("logvault_siem_errors_total{stream=\"tls\"} 0"),
        "{metrics}"
    );
}

#[test]
fn a_partner_stream_carries_the_partner_tree_and_nothing_else() {
    let Some(rsyslogd) = rsyslogd() else {
        return;
    };
    let (temp, dir) = temp_data_dir();
    let rsyslog = Rsyslog::start(&rsyslogd, &temp.path().join("rsyslog"), &["cef"]);
    let dir_text = dir.to_str().expect("UTF-8 path");
    for args in [
        ["--kind", "partner", "--id", "par_s", "--name", "P"].as_slice(),
        &[
            "--kind",
            "merchant",
            "--partner",
            "par_s",
            "--id",
            "mer_in",
            "--name",
            "In",
        ],
        &["--kind", "merchant", "--id", "mer_out", "--name", "Out"],
    ] {
        let mut command = vec!["accounts", "create", "--data-dir", dir_text];
        command.extend(args);
        let output = cli(&command);
        assert!(output.status.success(), "{output:?}");
    }
    let stream = format!(
        "name=partner,format=cef,address=127.0.0.1:{},account=par_s",
        rsyslog.port("cef")
    );
    let server = Server::start(&dir, &["--siem-stream", &stream]);
    let key = server.admin_key();
    let mut inside = Vec::new();
    for (account, prefix) in [("par_s", "p"), ("mer_in", "in"), ("mer_out", "out")] {
        let events: Vec<Value> = (0..20)
            .map(|i| audit(&format!("{prefix}-{i}"), account, json!({})))
            .collect();
        ingest(&server, &key, "audit", &events);
        if account != "mer_out" {
            inside.extend(
                events
                    .iter()
                    .map(|event| event["id"].as_str().unwrap_or_default().to_string()),
            );
        }
    }
    wait_for(&rsyslog, &inside);
    // The stream is caught up once it has passed the other account's events too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .get("/metrics", &key)
        .body
        .contains("logvault_siem_lag{stream=\"partner\"} 0")
    {
        assert!(Instant::now() < deadline, "the stream never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let counts = arrivals(&rsyslog, "cef");
    assert!(
        counts.keys().all(|id| !id.starts_with("out-")),
        "{counts:?}"
    );
    assert!(
        inside.iter().all(|id| counts.get(id) == Some(&1)),
        "{counts:?}"
    );
}
