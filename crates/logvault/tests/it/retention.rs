//! Retention end to end: policies and holds over the API and the CLI, a purge that archives
//! first, `archive verify` and `archive show` on what it wrote, and `verify` on the purged log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{Server, cli, temp_data_dir};

fn run_ok(args: &[&str]) -> String {
    let output = cli(args);
    assert!(
        output.status.success(),
        "logvault {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn dir(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// The single archive file the purge wrote for `account`.
fn archive_file(data_dir: &Path, account: &str) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("archive").join(account))
        .expect("the archive directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".ndjson.zst"))
        .collect();
    assert_eq!(files.len(), 1, "one month, one file: {files:?}");
    files[0].clone()
}

#[test]
fn policies_holds_purge_and_archive_through_the_api_and_the_cli() {
    let (_temp, data_dir) = temp_data_dir();
    let server = Server::start(
        &data_dir,
        &[
            "--retention-floor-days",
            "7",
            "--checkpoint-interval",
            "200ms",
        ],
    );
    let admin = server.admin_key();
    let d = dir(&data_dir);
    run_ok(&[
        "accounts",
        "create",
        "--kind",
        "partner",
        "--name",
        "P",
        "--id",
        "par_r",
        "--data-dir",
        d,
    ]);
    run_ok(&[
        "accounts",
        "create",
        "--kind",
        "merchant",
        "--name",
        "M",
        "--id",
        "mer_r",
        "--partner",
        "par_r",
        "--data-dir",
        d,
    ]);
    let merchant_key = serde_json::from_str::<Value>(&run_ok(&[
        "keys",
        "create",
        "--role",
        "merchant",
        "--account",
        "mer_r",
        "--permissions",
        "read,ingest",
        "--data-dir",
        d,
    ]))
    .expect("key json")["key"]
        .as_str()
        .expect("key")
        .to_string();

    let ingest = |n: usize| -> Vec<Value> {
        let events: Vec<Value> = (0..n)
            .map(|i| json!({"action": "user.login", "outcome": if i % 2 == 0 { "failure" } else { "success" },
                "actor": {"id": format!("usr_{i}"), "type": "user"}, "origin": {"ip": "198.51.100.7"}}))
            .collect();
        let reply = server.request(
            "POST",
            "/v1/audit-events",
            Some(&merchant_key),
            Some(&json!(events)),
        );
        assert!(reply.is_success(), "ingest: {}", reply.body);
        reply.json()["data"].as_array().expect("outcomes").clone()
    };
    let old = ingest(5);
    let last_old = old[4]["received_at"].as_str().expect("received_at");
    let instant = logvault_core::Micros::parse_rfc3339(last_old)
        .expect("time")
        .0
        + 1;
    let instant = logvault_core::Micros(instant).to_rfc3339();
    std::thread::sleep(Duration::from_millis(5));
    ingest(2);

    // Below the floor: a clear 400. Only an admin key changes policies; everyone reads them.
    let policy = |key: &str, body: Value| {
        server.request("PUT", "/v1/retention/par_r/audit", Some(key), Some(&body))
    };
    let low = policy(&admin, json!({"days": 3}));
    assert_eq!(low.status, 400, "{}", low.body);
    assert_eq!(low.json()["type"], "urn:logvault:problem:invalid-setting");
    assert_eq!(policy(&merchant_key, json!({"days": 30})).status, 403);
    let bad = policy(&admin, json!({"days": "soon"}));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let set = policy(&admin, json!({"days": 30, "archive": true}));
    assert!(set.is_success(), "{}", set.body);
    assert_eq!(set.json()["data"][0]["audit"]["source"], "account:par_r");
    let own = server.get("/v1/retention", &merchant_key).json();
    let own = own["data"].as_array().expect("data");
    assert_eq!(own.len(), 1, "a merchant sees its own account only");
    assert_eq!(own[0]["audit"]["days"], 30, "inherited from its partner");
    assert_eq!(
        server
            .request(
                "PUT",
                "/v1/retention/mer_nobody/hold",
                Some(&admin),
                Some(&json!({"reason": "x"}))
            )
            .status,
        404
    );

    // A hold stops the purge; lifting it lets the policy apply.
    let hold = server.request(
        "PUT",
        "/v1/retention/par_r/hold",
        Some(&admin),
        Some(&json!({"reason": "case 9"})),
    );
    assert!(hold.is_success(), "{}", hold.body);
    let purge = [
        "retention",
        "purge",
        "--now",
        &instant,
        "--retention-floor-days",
        "0",
        "--data-dir",
        d,
    ];
    // The CLI purges with a zero-day policy as of `instant`: exactly what came before it.
    run_ok(&[
        "retention",
        "set",
        "mer_r",
        "--kind",
        "audit",
        "--days",
        "0",
        "--archive",
        "--retention-floor-days",
        "0",
        "--data-dir",
        d,
    ]);
    assert!(run_ok(&purge).contains("purged 0 events"), "held");
    let lift = server.request("DELETE", "/v1/retention/par_r/hold", Some(&admin), None);
    assert!(lift.is_success(), "{}", lift.body);
    let again = server.request("DELETE", "/v1/retention/par_r/hold", Some(&admin), None);
    assert_eq!(again.status, 409, "no hold to lift: {}", again.body);
    let purged = run_ok(&purge);
    // The account's creation, its key's creation and the five sign-ins.
    assert!(purged.contains("purged 7 events"), "{purged}");

    let logins = server.list_all(&admin, "audit", "account_id=mer_r&action=user.login");
    assert_eq!(logins.len(), 2, "the two newer sign-ins stay");
    let shown = server.get("/v1/retention", &merchant_key).json();
    assert_eq!(shown["data"][0]["audit"]["purged_events"], 7);
    let changes = server.list_all(
        &admin,
        "audit",
        "account_id=par_r&action=retention.hold_placed",
    );
    assert_eq!(changes.len(), 1, "a hold is an audit event");

    // The archive proves itself against the log, and reads back with the API's filters.
    let file = archive_file(&data_dir, "mer_r");
    let file_arg = file.to_str().expect("UTF-8");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = cli(&["archive", "verify", file_arg, "--data-dir", d]);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            assert!(stdout.contains("OK: 7 events"), "{stdout}");
            assert!(stdout.contains("signature checked"), "{stdout}");
            break;
        }
        // Until a checkpoint covers the purged events.
        assert!(
            Instant::now() < deadline,
            "archive verify: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let failures = run_ok(&["archive", "show", file_arg, "--filter", "outcome=failure"]);
    assert_eq!(failures.lines().count(), 3);
    let text = zstd::decode_all(std::fs::File::open(&file).expect("open")).expect("zstd");
    let changed = String::from_utf8(text)
        .expect("utf-8")
        .replacen("usr_0", "usr_9", 1);
    let forged = file.with_file_name("forged.ndjson.zst");
    std::fs::write(
        &forged,
        zstd::encode_all(changed.as_bytes(), 3).expect("zstd"),
    )
    .expect("write");
    std::fs::copy(
        PathBuf::from(format!("{}.manifest.json", file.display())),
        PathBuf::from(format!("{}.manifest.json", forged.display())),
    )
    .expect("manifest");
    let output = cli(&[
        "archive",
        "verify",
        forged.to_str().expect("UTF-8"),
        "--data-dir",
        d,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success() && stdout.contains("line 3 (seq 5): the event no longer hashes"),
        "{stdout}"
    );

    let verified = run_ok(&["verify", "--data-dir", d]);
    assert!(verified.starts_with("OK"), "{verified}");
    assert!(
        verified.contains("purged by policy: mer_r audit: 7 events"),
        "{verified}"
    );
}

/// `--config FILE` (or `LOGVAULT_CONFIG`) sets deployment defaults; an environment variable
/// overrides the file and a flag overrides both; a setting no command knows is refused.
#[test]
fn a_config_file_sets_defaults_that_variables_and_flags_override() {
    let (temp, data_dir) = temp_data_dir();
    let config = temp.path().join("logvault.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[retention]\nthreat_days = 45\n",
            dir(&data_dir)
        ),
    )
    .expect("write config");
    let config_arg = config.to_str().expect("UTF-8");
    run_ok(&[
        "accounts", "create", "--kind", "merchant", "--name", "M", "--id", "mer_c", "--config",
        config_arg,
    ]);
    let threat_days = |env: Option<&str>, extra: &[&str]| -> Value {
        let mut command = crate::server::command();
        command
            .args(["retention", "show", "--account", "mer_c"])
            .args(extra);
        command.env("LOGVAULT_CONFIG", config_arg);
        if let Some(days) = env {
            command.env("LOGVAULT_RETENTION_THREAT_DAYS", days);
        }
        let output = command.output().expect("run");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let shown: Value = serde_json::from_slice(&output.stdout).expect("json");
        shown[0]["threat"]["days"].clone()
    };
    assert_eq!(
        threat_days(None, &[]),
        45,
        "from the file, which also named the data directory"
    );
    assert_eq!(
        threat_days(Some("50"), &[]),
        50,
        "the variable beats the file"
    );
    assert_eq!(
        threat_days(Some("50"), &["--retention-threat-days", "60"]),
        60,
        "the flag beats both"
    );

    std::fs::write(&config, "[retention]\nthreat_dayz = 45\n").expect("write config");
    let output = cli(&["retention", "show", "--config", config_arg]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("no setting retention_threat_dayz"),
        "{stderr}"
    );
}
