//! Several stateless nodes on one PostgreSQL: ingest through all of them, SIGKILL one
//! mid-ingest, and check that every acknowledged event is stored exactly once, `seq` and
//! every `account_seq` are gapless, `logvault verify` passes, every node answers the same,
//! and the live tail of one node shows what another ingested.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http;
use crate::pg_cluster;
use crate::server::{Server, cli, read_admin_key};

const ACCOUNTS: [&str; 3] = ["mer_n1", "mer_n2", "mer_n3"];

/// Sends numbered batches through `server` until `stop` or the node fails, remembering
/// acknowledged ids and the batch that was in flight when it failed.
fn ingest_until(
    addr: String,
    key: String,
    node: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, Value>>>,
    pending: Arc<Mutex<Vec<Value>>>,
) {
    let mut batch_no = 0;
    while !stop.load(Ordering::Relaxed) {
        let events: Vec<Value> = (0..5)
            .map(|i| {
                json!({"id": format!("n{node}-{batch_no}-{i}"), "account_id": ACCOUNTS[(batch_no + i) % 3],
                       "action": "user.login", "outcome": "success", "actor": {"id": format!("usr_{node}")}})
            })
            .collect();
        batch_no += 1;
        let body = Value::Array(events.clone()).to_string();
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", &*format!("Bearer {key}")),
        ];
        match crate::http::request(
            &addr,
            "POST",
            "/v1/audit-events",
            &headers,
            Some(body.as_bytes()),
        ) {
            Ok(response) if response.status == 201 || response.status == 200 => {
                let mut acked = acked.lock().expect("lock");
                for event in events {
                    acked.insert(event["id"].as_str().expect("id").to_string(), event);
                }
            }
            // The node is gone (or failing): keep the unacknowledged batch for a retry
            // elsewhere and stop using this node.
            _ => {
                pending.lock().expect("lock").push(Value::Array(events));
                return;
            }
        }
    }
}

/// The harness hands out libpq key=value strings; the binary takes `postgres://` URLs.
pub(crate) fn url_of(conninfo: &str) -> String {
    let config: tokio_postgres::Config = conninfo.parse().expect("conninfo");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("the test cluster listens on TCP, not {other:?}"),
    };
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!(
        "postgres://{}{password}@{host}:{}/{}",
        config.get_user().expect("user"),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().expect("dbname")
    )
}

#[test]
fn nodes_share_one_log_and_survive_a_sigkill() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(mut db) = runtime.block_on(pg_cluster::database()) else {
        return;
    };
    db.app_url = url_of(&db.app_url);
    let root = tempfile::tempdir().expect("tempdir");
    let key_file = root.path().join("checkpoint-key");
    let key_arg = key_file.to_str().expect("utf-8");
    let dirs: Vec<_> = (0..3)
        .map(|i| root.path().join(format!("node{i}")))
        .collect();
    let start = |i: usize| {
        let dir = dirs[i].to_str().expect("utf-8");
        Server::start_with(
            &dirs[i],
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--db",
                &db.app_url,
                "--data-dir",
                dir,
                "--checkpoint-key",
                key_arg,
                "--checkpoint-interval",
                "500ms",
            ],
        )
    };
    // The first node creates the admin key; the others find it.
    let first = start(0);
    let admin = read_admin_key(&dirs[0]);
    let mut nodes = [first, start(1), start(2)];
    for account in ACCOUNTS {
        let output = cli(&[
            "accounts",
            "create",
            "--kind",
            "merchant",
            "--name",
            account,
            "--id",
            account,
            "--db",
            &db.app_url,
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let pending = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let (addr, key, stop, acked, pending) = (
                node.addr.clone(),
                admin.clone(),
                stop.clone(),
                acked.clone(),
                pending.clone(),
            );
            std::thread::spawn(move || ingest_until(addr, key, i, stop, acked, pending))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    nodes[1].kill();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker");
    }
    // Requests that were never acknowledged are retried with the same ids on a live node.
    for batch in pending.lock().expect("lock").drain(..) {
        let response = nodes[0].request("POST", "/v1/audit-events", Some(&admin), Some(&batch));
        assert!(
            response.status == 201 || response.status == 200,
            "{}",
            response.body
        );
        for event in batch.as_array().expect("array") {
            acked
                .lock()
                .expect("lock")
                .insert(event["id"].as_str().expect("id").to_string(), event.clone());
        }
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 100,
        "too little traffic to mean anything: {}",
        acked.len()
    );

    // Every node sees the same log: exactly the acknowledged events, once each.
    let views: Vec<Vec<Value>> = [0, 2]
        .iter()
        .map(|&i| nodes[i].list_all(&admin, "audit", "action=user.login"))
        .collect();
    assert_eq!(views[0], views[1], "nodes 0 and 2 answer the same");
    let ingested: Vec<&Value> = views[0]
        .iter()
        .filter(|e| e["id"].as_str().is_some_and(|id| id.starts_with('n')))
        .collect();
    let ids: BTreeSet<&str> = ingested
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), ingested.len(), "no event is stored twice");
    assert_eq!(
        ids,
        acked.keys().map(String::as_str).collect(),
        "exactly the acknowledged events"
    );

    // seq is gapless over the whole log, and account_seq per account.
    let mut all = nodes[0].list_all(&admin, "audit", "");
    all.extend(nodes[0].list_all(&admin, "threat", ""));
    let mut seqs: Vec<u64> = all
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seq is gapless"
    );
    let mut per_account: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for event in &all {
        per_account
            .entry(event["account_id"].as_str().expect("account"))
            .or_default()
            .push(event["account_seq"].as_u64().expect("account_seq"));
    }
    for (account, mut account_seqs) in per_account {
        account_seqs.sort_unstable();
        assert_eq!(
            account_seqs,
            (1..=account_seqs.len() as u64).collect::<Vec<_>>(),
            "{account}"
        );
    }

    live_tail_sees_other_nodes(&nodes[2], &nodes[0], &admin, &db.app_url);

    // Stop the survivors (each signs a final checkpoint), then verify the whole log.
    for i in [0, 2] {
        assert!(nodes[i].terminate(Duration::from_secs(30)).success());
    }
    let verify = cli(&["verify", "--db", &db.app_url, "--checkpoint-key", key_arg]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && report.starts_with("OK"),
        "{report}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    drop(db);
}

/// Signs in to `node`'s Logs page through the form and returns the session cookie.
fn sign_in(node: &Server, username: &str, password: &str) -> String {
    let form = http::request(&node.addr, "GET", "/login", &[], None).expect("GET /login");
    let csrf = form.cookie("logvault_login_csrf").expect("CSRF cookie");
    let cookie = format!("logvault_login_csrf={csrf}");
    let body = format!("csrf={csrf}&username={username}&password={password}");
    let headers = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let signed_in = http::request(
        &node.addr,
        "POST",
        "/login",
        &headers,
        Some(body.as_bytes()),
    )
    .expect("POST /login");
    let session = signed_in
        .cookie("logvault_session")
        .unwrap_or_else(|| panic!("sign-in refused: {} {}", signed_in.status, signed_in.body));
    format!("logvault_session={session}")
}

/// The live tail of one node shows an event ingested through another: the tail reads the
/// shared store, not the node's own writes.
fn live_tail_sees_other_nodes(watcher: &Server, writer: &Server, admin: &str, db_url: &str) {
    let created = cli(&[
        "users",
        "create",
        "--username",
        "tail-watcher",
        "--role",
        "admin",
        "--db",
        db_url,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).expect("user JSON");
    let password = created["password"].as_str().expect("generated password");
    let cookie = sign_in(watcher, "tail-watcher", password);
    let id = "tail-across-nodes";
    let watching = {
        let (addr, cookie) = (watcher.addr.clone(), cookie.clone());
        std::thread::spawn(move || {
            let headers = [("Cookie", cookie.as_str()), ("Accept", "text/event-stream")];
            http::stream_until(&addr, "/tail/audit", &headers, id, Duration::from_secs(20))
        })
    };
    // Give the stream time to open and take its starting point before the event exists.
    std::thread::sleep(Duration::from_millis(1500));
    let event = json!({"id": id, "account_id": ACCOUNTS[0], "action": "user.login",
        "outcome": "success", "actor": {"id": "usr_tail", "type": "user"}});
    let response = writer.request("POST", "/v1/audit-events", Some(admin), Some(&event));
    assert_eq!(response.status, 201, "{}", response.body);
    let seen = watching.join().expect("tail thread").expect("tail stream");
    assert!(
        seen,
        "the tail on one node shows an event ingested on another"
    );
}
