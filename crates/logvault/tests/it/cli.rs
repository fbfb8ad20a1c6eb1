//! The administration CLI (`accounts`, `keys`, `--db`) and the initial admin key, including
//! changes made with the CLI while a server runs on the same data directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::http;
use crate::server::{Server, cli, temp_data_dir};

/// Runs a command that must succeed and returns its stdout as JSON.
fn ok_json(args: &[&str]) -> Value {
    let output = cli(args);
    assert!(
        output.status.success(),
        "logvault {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "logvault {args:?} printed non-JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Checks that a command fails with a clear one-line reason and no panic.
fn check_fails(args: &[&str], expected_in_stderr: &str) {
    let output: Output = cli(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "logvault {args:?} should fail but printed {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains(expected_in_stderr),
        "logvault {args:?}: stderr should say {expected_in_stderr:?} but was {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked"),
        "logvault {args:?} panicked: {stderr}"
    );
}

fn dir_arg(data_dir: &Path) -> &str {
    data_dir.to_str().expect("UTF-8 temp path")
}

fn create_account(data_dir: &Path, kind: &str, name: &str, partner: Option<&str>) -> Value {
    let mut args = vec![
        "accounts",
        "create",
        "--kind",
        kind,
        "--name",
        name,
        "--data-dir",
        dir_arg(data_dir),
    ];
    if let Some(partner) = partner {
        args.extend(["--partner", partner]);
    }
    ok_json(&args)
}

fn create_key(data_dir: &Path, role: &str, account: &str, permissions: &str) -> Value {
    ok_json(&[
        "keys",
        "create",
        "--role",
        role,
        "--account",
        account,
        "--permissions",
        permissions,
        "--data-dir",
        dir_arg(data_dir),
    ])
}

fn account_ids(data_dir: &Path) -> Vec<String> {
    let accounts = ok_json(&["accounts", "list", "--data-dir", dir_arg(data_dir)]);
    accounts
        .as_array()
        .expect("accounts list prints an array")
        .iter()
        .map(|account| account["id"].as_str().expect("account id").to_string())
        .collect()
}

#[test]
fn accounts_create_prints_json_and_rejects_bad_input() {
    let (_temp, data_dir) = temp_data_dir();
    let partner = create_account(&data_dir, "partner", "Acme Payments", None);
    let partner_id = partner["id"].as_str().expect("partner id").to_string();
    assert!(partner_id.starts_with("par_"), "{partner}");
    assert_eq!(partner["kind"], "partner", "{partner}");
    assert_eq!(partner["name"], "Acme Payments", "{partner}");
    assert_eq!(partner["partner_id"], Value::Null, "{partner}");

    let merchant = create_account(&data_dir, "merchant", "Acme Shop", Some(&partner_id));
    let merchant_id = merchant["id"].as_str().expect("merchant id").to_string();
    assert!(merchant_id.starts_with("mer_"), "{merchant}");
    assert_eq!(merchant["kind"], "merchant", "{merchant}");
    assert_eq!(merchant["partner_id"], partner_id.as_str(), "{merchant}");

    let direct = create_account(&data_dir, "merchant", "Corner Café", None);
    assert_eq!(direct["kind"], "merchant", "{direct}");
    assert_eq!(direct["partner_id"], Value::Null, "{direct}");
    assert_eq!(direct["name"], "Corner Café", "{direct}");

    let listed_before = account_ids(&data_dir);
    for id in [&partner_id, &merchant_id] {
        assert!(listed_before.contains(id), "{id} not in {listed_before:?}");
    }

    let dir = dir_arg(&data_dir);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--kind",
                "merchant",
                "--name",
                "Sub",
                "--partner",
                &merchant_id,
            ],
            "is not a partner account",
        ),
        (
            vec![
                "--kind",
                "merchant",
                "--name",
                "Lost",
                "--partner",
                "par_nope",
            ],
            "par_nope is not a partner account",
        ),
        (
            vec![
                "--kind",
                "partner",
                "--name",
                "P2",
                "--partner",
                &partner_id,
            ],
            "a partner account cannot have a partner",
        ),
        (vec!["--kind", "merchant", "--name", "  "], "name"),
        (
            vec!["--kind", "merchant", "--name", "Bad", "--id", "has space"],
            "account ids are",
        ),
        (
            vec!["--kind", "partner", "--name", "Dup", "--id", &partner_id],
            "already exists",
        ),
        (vec!["--kind", "platform", "--name", "X"], "platform"),
    ];
    for (case, expected) in cases {
        let mut args = vec!["accounts", "create", "--data-dir", dir];
        args.extend(case);
        check_fails(&args, expected);
    }
    assert_eq!(
        account_ids(&data_dir),
        listed_before,
        "a refused `accounts create` must not create anything"
    );
}

#[test]
fn keys_create_list_revoke_and_never_show_secrets() {
    let (_temp, data_dir) = temp_data_dir();
    let dir = dir_arg(&data_dir);
    let partner = create_account(&data_dir, "partner", "Acme", None);
    let partner_id = partner["id"].as_str().expect("partner id").to_string();
    let merchant = create_account(&data_dir, "merchant", "Shop", Some(&partner_id));
    let merchant_id = merchant["id"].as_str().expect("merchant id").to_string();

    let created = create_key(&data_dir, "merchant", &merchant_id, "ingest,read");
    let token = created["key"].as_str().expect("key").to_string();
    let key_id = created["id"].as_str().expect("id").to_string();
    assert!(
        token.starts_with(&format!("lv_{key_id}_")),
        "key {token} should be lv_<id>_<secret>"
    );
    let secret = &token[format!("lv_{key_id}_").len()..];
    assert!(
        secret.len() >= 64,
        "the secret must carry ≥ 256 bits: {secret}"
    );
    assert_eq!(created["role"], "merchant", "{created}");
    assert_eq!(created["account_id"], merchant_id.as_str(), "{created}");
    assert_eq!(
        created["permissions"],
        json!(["ingest", "read"]),
        "{created}"
    );

    let second = create_key(&data_dir, "partner", &partner_id, "read");
    let second_token = second["key"].as_str().expect("key").to_string();
    let second_id = second["id"].as_str().expect("id").to_string();

    let listed = cli(&["keys", "list", "--data-dir", dir]);
    assert!(listed.status.success());
    let listed_text = String::from_utf8_lossy(&listed.stdout).to_string();
    for secret_text in [&token, &second_token] {
        let secret = secret_text.rsplit('_').next().expect("secret part");
        assert!(
            !listed_text.contains(secret),
            "keys list shows a secret: {listed_text}"
        );
    }
    let listed: Value = serde_json::from_str(&listed_text).expect("keys list prints JSON");
    let find = |listed: &Value, id: &str| -> Value {
        listed
            .as_array()
            .expect("array")
            .iter()
            .find(|key| key["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("key {id} not listed in {listed}"))
    };
    let listed_key = find(&listed, &key_id);
    assert!(listed_key.get("key").is_none(), "{listed_key}");
    assert_eq!(listed_key["revoked_at"], Value::Null, "{listed_key}");
    assert_eq!(listed_key["account_id"], merchant_id.as_str());

    // Revoke by id, then by the whole token; a second revoke of the same key is refused.
    let revoked = ok_json(&["keys", "revoke", &key_id, "--data-dir", dir]);
    assert_eq!(revoked, json!({"id": key_id, "revoked": true}));
    let revoked = ok_json(&["keys", "revoke", &second_token, "--data-dir", dir]);
    assert_eq!(revoked, json!({"id": second_id, "revoked": true}));
    check_fails(
        &["keys", "revoke", &key_id, "--data-dir", dir],
        "no active key",
    );
    check_fails(
        &["keys", "revoke", "0123456789abcdef", "--data-dir", dir],
        "no active key",
    );
    let listed = ok_json(&["keys", "list", "--data-dir", dir]);
    for id in [&key_id, &second_id] {
        let listed_key = find(&listed, id);
        assert!(listed_key["revoked_at"].is_string(), "{listed_key}");
    }

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--role", "admin", "--account", &merchant_id],
            "admins belong to the platform; drop --account",
        ),
        (
            vec![
                "--role",
                "merchant",
                "--account",
                &merchant_id,
                "--permissions",
                "ingest,delete",
            ],
            "unknown permission \"delete\"",
        ),
        (vec!["--role", "merchant"], "merchant roles need --account"),
        (
            vec!["--role", "merchant", "--account", &partner_id],
            "must belong to a merchant account",
        ),
        (
            vec!["--role", "partner", "--account", &merchant_id],
            "must belong to a partner account",
        ),
        (
            vec!["--role", "merchant", "--account", "mer_nope"],
            "account mer_nope does not exist",
        ),
    ];
    let n_keys = listed.as_array().expect("array").len();
    for (case, expected) in cases {
        let mut args = vec!["keys", "create", "--data-dir", dir];
        args.extend(case);
        check_fails(&args, expected);
    }
    let listed = ok_json(&["keys", "list", "--data-dir", dir]);
    assert_eq!(
        listed.as_array().expect("array").len(),
        n_keys,
        "a refused `keys create` must not store a key: {listed}"
    );
}

#[test]
fn cli_changes_apply_at_once_to_a_running_server() {
    let (_temp, data_dir) = temp_data_dir();
    let server = Server::start(&data_dir, &[]);
    // Steady ingest on the same database, so the CLI's writes meet a busy writer.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, addr, admin) = (stop.clone(), server.addr.clone(), server.admin_key());
        std::thread::spawn(move || {
            let authorization = format!("Bearer {admin}");
            let batch: Vec<Value> = (0..200)
                .map(|i| json!({"action": "load.tick", "outcome": "success", "actor": {"id": format!("usr_{i}")}}))
                .collect();
            let body = Value::Array(batch).to_string();
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let response = http::request(
                    &addr,
                    "POST",
                    "/v1/audit-events",
                    &[
                        ("Content-Type", "application/json"),
                        ("Authorization", &authorization),
                    ],
                    Some(body.as_bytes()),
                );
                statuses.push(response.map(|response| response.status).ok());
            }
            statuses
        })
    };
    let partner = create_account(&data_dir, "partner", "Live Partner", None);
    let partner_id = partner["id"].as_str().expect("partner id").to_string();
    let merchant = create_account(&data_dir, "merchant", "Live Shop", Some(&partner_id));
    let merchant_id = merchant["id"].as_str().expect("merchant id").to_string();
    let created = create_key(&data_dir, "merchant", &merchant_id, "ingest,read");
    let key = created["key"].as_str().expect("key").to_string();
    let key_id = created["id"].as_str().expect("id").to_string();

    let event = json!({"id": "live-1", "action": "user.login", "outcome": "success",
        "actor": {"id": "usr_1", "type": "user"}});
    let ingested = server.request("POST", "/v1/audit-events", Some(&key), Some(&event));
    assert_eq!(ingested.status, 201, "{}", ingested.body);
    assert_eq!(
        ingested.json()["data"][0]["account_id"],
        merchant_id.as_str()
    );
    let read = server.get("/v1/audit-events/live-1", &key);
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["actor"]["id"], "usr_1");
    let listed = server.list_all(&key, "audit", "action=user.login");
    assert_eq!(listed.len(), 1, "{listed:?}");

    // A partner key made while the server runs sees its merchant's event at once.
    let partner_key = create_key(&data_dir, "partner", &partner_id, "read");
    let partner_key = partner_key["key"].as_str().expect("key");
    let read = server.get(
        &format!("/v1/audit-events/live-1?account_id={merchant_id}"),
        partner_key,
    );
    assert_eq!(read.status, 200, "{}", read.body);

    let revoked = ok_json(&["keys", "revoke", &key_id, "--data-dir", dir_arg(&data_dir)]);
    assert_eq!(revoked["revoked"], true);
    let event = json!({"id": "live-2", "action": "user.logout", "outcome": "success",
        "actor": {"id": "usr_1"}});
    for (method, path, body) in [
        ("POST", "/v1/audit-events", Some(&event)),
        ("GET", "/v1/audit-events", None),
        ("GET", "/v1/audit-events/live-1", None),
    ] {
        let response = server.request(method, path, Some(&key), body);
        assert_eq!(
            response.status, 401,
            "{method} {path} with a revoked key: {}",
            response.body
        );
        assert!(
            !response.body.contains(&key),
            "the 401 echoes the key: {}",
            response.body
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(response.header("WWW-Authenticate"), Some("Bearer"));
    }
    stop.store(true, Ordering::SeqCst);
    let statuses = load.join().expect("load thread");
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|status| *status == Some(201)),
        "ingest failed while the CLI wrote: {statuses:?}"
    );
    let admin = server.admin_key();
    let missing = server.get(
        &format!("/v1/audit-events/live-2?account_id={merchant_id}"),
        &admin,
    );
    assert_eq!(
        missing.status, 404,
        "an event sent with a revoked key was stored"
    );
}

#[test]
fn first_start_writes_a_private_initial_admin_key() {
    let (_temp, data_dir) = temp_data_dir();
    let mut server = Server::start(&data_dir, &[]);
    let path = data_dir.join("initial-admin-key");
    let mode = std::fs::metadata(&path)
        .expect("initial-admin-key exists after the first start")
        .permissions()
        .mode();
    assert_eq!(
        format!("{:o}", mode & 0o777),
        "600",
        "initial-admin-key mode"
    );
    let key = server.admin_key();
    assert!(key.starts_with("lv_"), "{key}");
    assert!(
        server
            .startup_lines
            .iter()
            .any(|line| line.contains("initial admin key") && line.contains(&key)),
        "the first start prints the key once: {:?}",
        server.startup_lines
    );

    let cases: [(Option<&str>, u16); 4] = [
        (Some(key.as_str()), 200),
        (None, 401),
        (Some("lv_0123456789abcdef_not-a-secret"), 401),
        (Some(&key[..key.len() - 1]), 401),
    ];
    for (bearer, expected) in cases {
        let response = server.request("GET", "/v1/audit-events", bearer, None);
        assert_eq!(response.status, expected, "{bearer:?}: {}", response.body);
    }
    let event = json!({"id": "admin-1", "action": "user.login", "outcome": "success",
        "actor": {"id": "ops"}});
    let ingested = server.request("POST", "/v1/audit-events", Some(&key), Some(&event));
    assert_eq!(ingested.status, 201, "{}", ingested.body);

    let exit = server.terminate(std::time::Duration::from_secs(30));
    assert!(exit.success(), "SIGTERM exit status {exit:?}");
    let server = Server::start(&data_dir, &[]);
    assert!(
        !server
            .startup_lines
            .iter()
            .any(|line| line.contains("initial admin key")),
        "a second start must not make another admin key: {:?}",
        server.startup_lines
    );
    assert_eq!(server.admin_key(), key, "initial-admin-key was rewritten");
    let read = server.get("/v1/audit-events/admin-1", &key);
    assert_eq!(read.status, 200, "{}", read.body);
}

#[test]
fn initial_admin_key_is_private_even_over_a_stale_file() {
    let (_temp, data_dir) = temp_data_dir();
    std::fs::create_dir_all(&data_dir).expect("create the data dir");
    let path = data_dir.join("initial-admin-key");
    // A leftover from an earlier install, or a file someone else planted, readable by all.
    std::fs::write(&path, "stale\n").expect("write a stale key file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let server = Server::start(&data_dir, &[]);
    let key = server.admin_key();
    assert!(
        key.starts_with("lv_"),
        "the key file was not rewritten: {key}"
    );
    let mode = std::fs::metadata(&path)
        .expect("initial-admin-key")
        .permissions()
        .mode();
    assert_eq!(
        format!("{:o}", mode & 0o777),
        "600",
        "the new admin secret was written into a file others can read"
    );
    assert_eq!(server.get("/v1/audit-events", &key).status, 200);
}

#[test]
fn db_url_selects_the_store_and_reports_an_unreachable_postgres_clearly() {
    let (_temp, data_dir) = temp_data_dir();
    let url = format!("sqlite://{}", dir_arg(&data_dir));
    assert!(url.starts_with("sqlite:///"), "{url}");
    let partner = ok_json(&[
        "accounts", "create", "--kind", "partner", "--name", "Via URL", "--id", "par_url", "--db",
        &url,
    ]);
    assert_eq!(partner["id"], "par_url");
    assert!(
        account_ids(&data_dir).contains(&"par_url".to_string()),
        "--db sqlite:///DIR and --data-dir DIR must be the same store"
    );

    let server = Server::start(&data_dir, &["--db", &url]);
    let key = server.admin_key();
    let event = json!({"id": "url-1", "account_id": "par_url", "action": "user.login",
        "outcome": "success", "actor": {"id": "usr_1"}});
    let ingested = server.request("POST", "/v1/audit-events", Some(&key), Some(&event));
    assert_eq!(ingested.status, 201, "{}", ingested.body);
    drop(server);

    // Nothing listens on port 1: PostgreSQL URLs are tried and fail with a clear message.
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "accounts",
                "list",
                "--db",
                "postgres://logvault@127.0.0.1:1/logvault",
            ],
            "cannot connect to PostgreSQL",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--db",
                "postgres://logvault@127.0.0.1:1/db",
            ],
            "cannot connect to PostgreSQL",
        ),
        (
            &["keys", "list", "--db", "postgresql://u@127.0.0.1:1/db"],
            "cannot connect to PostgreSQL",
        ),
        (
            &["accounts", "list", "--db", "mysql://x"],
            "--db must look like sqlite:///path/to/dir",
        ),
    ];
    for (args, expected) in cases {
        check_fails(args, expected);
    }
}
