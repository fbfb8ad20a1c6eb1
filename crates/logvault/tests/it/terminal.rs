//! `logvault tail` and `logvault export` against a running server, as a person in a terminal
//! uses them: the key's scope, the API's filters, new events appearing in the tail.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::{Server, cli, command, temp_data_dir};

fn sign_in(server: &Server, key: &str, actor: &str, outcome: &str) {
    let event = json!({"action": "user.login", "outcome": outcome, "actor": {"id": actor}});
    let created = server.request("POST", "/v1/audit-events", Some(key), Some(&event));
    assert_eq!(created.status, 201, "{}", created.body);
}

#[test]
fn export_writes_the_filtered_log_and_refusals_are_clear() {
    let (_guard, dir) = temp_data_dir();
    let server = Server::start(&dir, &[]);
    let key = server.admin_key();
    for i in 0..30 {
        sign_in(
            &server,
            &key,
            &format!("usr_{i}"),
            if i % 3 == 0 { "failure" } else { "success" },
        );
    }
    let url = format!("http://{}", server.addr);
    let out = dir.with_extension("csv");
    let output = cli(&[
        "export",
        "audit",
        "outcome=failure",
        "--format",
        "csv",
        "--url",
        &url,
        "--key",
        &key,
        "-o",
        out.to_str().expect("UTF-8 path"),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Not a terminal: no progress line.
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let csv = std::fs::read_to_string(&out).expect("the export");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1 + 10, "a header and the ten failures:\n{csv}");
    assert!(rows[1..].iter().all(|row| row.contains("failure")), "{csv}");

    let ndjson = cli(&[
        "export",
        "audit",
        "actor_id=usr_4",
        "--url",
        &url,
        "--key",
        &key,
    ]);
    let lines: Vec<Value> = String::from_utf8_lossy(&ndjson.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["actor"]["id"], "usr_4");

    let bad = cli(&[
        "export",
        "audit",
        "ip=not-an-ip",
        "--url",
        &url,
        "--key",
        &key,
    ]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("refused (400"), "{stderr}");
    let wrong_key = cli(&["export", "audit", "--url", &url, "--key", "lv_nope"]);
    assert!(String::from_utf8_lossy(&wrong_key.stderr).contains("401"));
}

#[test]
fn tail_shows_the_last_events_then_new_ones() {
    let (_guard, dir) = temp_data_dir();
    let server = Server::start(&dir, &[]);
    let key = server.admin_key();
    for i in 0..5 {
        sign_in(&server, &key, &format!("usr_{i}"), "failure");
    }
    let url = format!("http://{}", server.addr);
    let mut tail = command()
        .args([
            "tail",
            "audit",
            "action=user.login",
            "-n",
            "3",
            "--json",
            "--interval",
            "1s",
        ])
        .args(["--url", &url, "--key", &key])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("logvault tail");
    let (sender, lines) = mpsc::channel();
    let stdout = tail.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let next = || {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("a line");
        let event: Value = serde_json::from_str(&line).expect("JSON");
        event["actor"]["id"].as_str().expect("actor").to_string()
    };
    assert_eq!(
        [next(), next(), next()],
        ["usr_2", "usr_3", "usr_4"],
        "the last three, oldest first"
    );
    sign_in(&server, &key, "usr_new", "failure");
    assert_eq!(next(), "usr_new");
    let _ = tail.kill();
    let _ = tail.wait();
}
