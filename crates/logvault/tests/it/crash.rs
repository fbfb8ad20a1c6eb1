//! The durability promise under fire: concurrent clients ingest while the server is killed
//! with SIGKILL again and again (or stopped with SIGTERM); every acknowledged event must be
//! stored exactly once and unchanged, with `seq` and per-account `account_seq` gapless.
//!
//! The kill times come from a seeded generator; set `LOGVAULT_CRASH_SEED` to replay a run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http;
use crate::server::{Server, cli, temp_data_dir};

/// Client threads ingesting at once.
const N_WORKERS: usize = 4;
/// SIGKILL/restart cycles.
const N_CYCLES: usize = 22;

/// SplitMix64: small, seedable, good enough to pick delays and batch sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn seed() -> u64 {
    let seed = std::env::var("LOGVAULT_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |elapsed| elapsed.as_nanos() as u64)
        });
    eprintln!("crash test seed: LOGVAULT_CRASH_SEED={seed}");
    seed
}

/// One ingest request a worker will send until it is acknowledged.
#[derive(Debug, Clone)]
struct Planned {
    /// `audit` or `threat`.
    kind: &'static str,
    /// The events, exactly as sent.
    events: Vec<Value>,
}

/// The `r`-th request of worker `w`: its ids and content are a pure function of
/// `(prefix, w, r)`, so a retry resends exactly the same thing.
fn plan(prefix: &str, accounts: &[&str], w: usize, r: usize, n_events: usize) -> Planned {
    let kind = if r % 3 == 2 { "threat" } else { "audit" };
    let events = (0..n_events)
        .map(|i| {
            let id = format!("{prefix}-{kind}-w{w}-r{r}-e{i}");
            let account = accounts[(w + r + i) % accounts.len()];
            let occurred_at = format!("2026-01-02T03:04:05.{:06}Z", (r * 10 + i) % 1_000_000);
            let metadata = json!({"worker": w, "request": r, "event": i});
            if kind == "audit" {
                json!({
                    "id": id, "account_id": account, "action": "user.login",
                    "outcome": if i % 2 == 0 { "success" } else { "failure" },
                    "actor": {"id": format!("usr_{w}_{r}"), "type": "user", "name": format!("User {w}/{r}")},
                    "origin": {"ip": format!("203.0.113.{}", r % 250 + 1), "user_agent": "crash-test/1.0"},
                    "request_id": format!("req_{w}_{r}"),
                    "occurred_at": occurred_at,
                    "metadata": metadata,
                })
            } else {
                json!({
                    "id": id, "account_id": account, "source": "sdk",
                    "error_type": "NetworkTimeout", "error_code": "E_TIMEOUT",
                    "message": format!("request {r} of worker {w} timed out after 30s"),
                    "version": "ios-sdk 4.2.1", "environment": "production",
                    "sdk": {"name": "ios", "platform": "iOS 17.2"},
                    "occurred_at": occurred_at,
                    "metadata": metadata,
                })
            }
        })
        .collect();
    Planned { kind, events }
}

/// A request and the response data that acknowledged it.
#[derive(Debug, Clone)]
struct Ack {
    planned: Planned,
    outcomes: Vec<Value>,
    /// Attempts before the ack (1 = acknowledged at the first try).
    attempts: u32,
    /// When the ack arrived.
    at: Instant,
}

/// What the workers saw.
#[derive(Debug, Default)]
struct Record {
    acks: Vec<Ack>,
    /// Requests that were sent but never acknowledged.
    unacked: Vec<Planned>,
    /// Anything that breaks the contract outright (4xx/5xx that should not happen).
    unexpected: Vec<String>,
}

fn post(addr: &str, key: &str, planned: &Planned) -> std::io::Result<http::Response> {
    let authorization = format!("Bearer {key}");
    let body = Value::Array(planned.events.clone()).to_string();
    http::request(
        addr,
        "POST",
        &format!("/v1/{}-events", planned.kind),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &authorization),
        ],
        Some(body.as_bytes()),
    )
}

/// Checks an ack's shape; returns what is wrong with it.
fn check_ack(planned: &Planned, response: &http::Response, first_attempt: bool) -> Option<String> {
    let data = response.json()["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if data.len() != planned.events.len() {
        return Some(format!(
            "ack lists {} events for {} sent: {}",
            data.len(),
            planned.events.len(),
            response.body
        ));
    }
    for (sent, outcome) in planned.events.iter().zip(&data) {
        if outcome["id"] != sent["id"] || outcome["account_id"] != sent["account_id"] {
            return Some(format!(
                "ack {outcome} does not match the event sent {sent}"
            ));
        }
    }
    let duplicates: BTreeSet<bool> = data
        .iter()
        .map(|outcome| outcome["duplicate"].as_bool().unwrap_or(false))
        .collect();
    if duplicates.len() > 1 {
        return Some(format!(
            "a request was half stored (some events duplicate, some new): {}",
            response.body
        ));
    }
    if first_attempt && duplicates.contains(&true) {
        return Some(format!(
            "a first attempt was answered duplicate:true: {}",
            response.body
        ));
    }
    let expected_status = if duplicates.contains(&true) { 200 } else { 201 };
    if response.status != expected_status {
        return Some(format!(
            "status {} for an ack with duplicate={duplicates:?}",
            response.status
        ));
    }
    None
}

/// Sends `planned` until acknowledged (or, once `give_up` is set, until the first failure);
/// returns whether it was acknowledged. `addr` is re-read on every attempt because each
/// restart picks a new port.
fn send_until_acked(
    addr: &RwLock<String>,
    key: &str,
    planned: Planned,
    give_up: &AtomicBool,
    record: &Mutex<Record>,
) -> bool {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let target = addr.read().expect("addr lock").clone();
        let result = post(&target, key, &planned);
        let stale = *addr.read().expect("addr lock") != target;
        match result {
            Ok(response) if response.is_success() => {
                let mut record = record.lock().expect("record lock");
                if let Some(problem) = check_ack(&planned, &response, attempts == 1) {
                    record.unexpected.push(problem);
                }
                let outcomes = response.json()["data"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                record.acks.push(Ack {
                    planned,
                    outcomes,
                    attempts,
                    at: Instant::now(),
                });
                return true;
            }
            // 503 is the documented "busy, retry"; any answer from a port we have since moved
            // away from may come from another test's server.
            Ok(response) if response.status == 503 || stale => {}
            Ok(response) => {
                let mut record = record.lock().expect("record lock");
                record.unexpected.push(format!(
                    "POST {} answered {}: {}",
                    planned.kind, response.status, response.body
                ));
                record.unacked.push(planned);
                return false;
            }
            Err(_) => {}
        }
        if give_up.load(Ordering::SeqCst) {
            record.lock().expect("record lock").unacked.push(planned);
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Creates the accounts the workers write to, before the first start.
fn create_accounts(data_dir: &Path, accounts: &[(&str, &str, Option<&str>)]) {
    let dir = data_dir.to_str().expect("UTF-8 temp path");
    for (id, kind, partner) in accounts {
        let mut args = vec![
            "accounts",
            "create",
            "--kind",
            kind,
            "--name",
            id,
            "--id",
            id,
            "--data-dir",
            dir,
        ];
        if let Some(partner) = partner {
            args.extend(["--partner", partner]);
        }
        let output = cli(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Every stored event, keyed by (kind, account, id); fails on any id stored twice, and
/// checks `seq` is gapless over both kinds, `account_seq` gapless per account in `seq`
/// order, and `received_at` never decreasing along `seq`.
fn stored_events(server: &Server, key: &str) -> BTreeMap<(String, String, String), Value> {
    // Threats first: no threat arrives during the check, while every read adds a
    // `logs.viewed` audit event; the audit snapshot then covers every seq up to its newest.
    let mut all: Vec<(String, Value)> = Vec::new();
    for kind in ["threat", "audit"] {
        for event in server.list_all(key, kind, "") {
            all.push((kind.to_string(), event));
        }
    }
    all.sort_by_key(|(_, event)| event["seq"].as_u64().expect("seq"));
    let mut by_id = BTreeMap::new();
    let mut next_account_seq: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_received_at = String::new();
    for (position, (kind, event)) in all.into_iter().enumerate() {
        let seq = event["seq"].as_u64().expect("seq");
        assert_eq!(
            seq,
            position as u64 + 1,
            "seq is not gapless over audit+threat: {event}"
        );
        let account = event["account_id"]
            .as_str()
            .expect("account_id")
            .to_string();
        let expected = next_account_seq.entry(account.clone()).or_insert(1);
        assert_eq!(
            event["account_seq"].as_u64(),
            Some(*expected),
            "account_seq of {account} is not gapless: {event}"
        );
        *expected += 1;
        let received_at = event["received_at"]
            .as_str()
            .expect("received_at")
            .to_string();
        assert!(
            received_at >= last_received_at,
            "received_at went back along seq: {event}"
        );
        last_received_at = received_at;
        let id = event["id"].as_str().expect("id").to_string();
        if let Some(previous) = by_id.insert((kind, account, id), event.clone()) {
            panic!("an event is stored twice: {previous} and {event}");
        }
    }
    by_id
}

/// Every acknowledged event is stored once, unchanged, where its ack said.
fn check_acks_stored(acks: &[Ack], stored: &BTreeMap<(String, String, String), Value>) {
    for ack in acks {
        for (sent, outcome) in ack.planned.events.iter().zip(&ack.outcomes) {
            let key = (
                ack.planned.kind.to_string(),
                sent["account_id"].as_str().expect("account").to_string(),
                sent["id"].as_str().expect("id").to_string(),
            );
            let Some(event) = stored.get(&key) else {
                panic!("acknowledged event lost: {sent} (ack {outcome})");
            };
            for (field, value) in sent.as_object().expect("object") {
                assert_eq!(
                    &event[field], value,
                    "field {field} changed: sent {sent}, stored {event}"
                );
            }
            for field in ["seq", "account_seq", "leaf_hash"] {
                assert_eq!(
                    event[field], outcome[field],
                    "{field} differs between the ack {outcome} and the stored {event}"
                );
            }
        }
    }
}

/// Whether a never-acknowledged request was stored whole or not at all.
fn check_all_or_nothing(unacked: &[Planned], stored: &BTreeMap<(String, String, String), Value>) {
    for planned in unacked {
        let present: Vec<bool> = planned
            .events
            .iter()
            .map(|sent| {
                stored.contains_key(&(
                    planned.kind.to_string(),
                    sent["account_id"].as_str().expect("account").to_string(),
                    sent["id"].as_str().expect("id").to_string(),
                ))
            })
            .collect();
        assert!(
            present.iter().all(|p| *p) || present.iter().all(|p| !*p),
            "a request was stored in part: {present:?} for {:?}",
            planned.events
        );
    }
}

const CRASH_ACCOUNTS: [(&str, &str, Option<&str>); 4] = [
    ("par_crash", "partner", None),
    ("mer_crash_a", "merchant", Some("par_crash")),
    ("mer_crash_b", "merchant", Some("par_crash")),
    ("mer_crash_direct", "merchant", None),
];

#[test]
fn acknowledged_events_survive_repeated_sigkill() {
    let started = Instant::now();
    let mut rng = Rng(seed());
    let (_temp, data_dir) = temp_data_dir();
    create_accounts(&data_dir, &CRASH_ACCOUNTS);
    let mut server = Server::start(&data_dir, &[]);
    let key = server.admin_key();
    let addr = Arc::new(RwLock::new(server.addr.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let give_up = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(Record::default()));

    let workers: Vec<_> = (0..N_WORKERS)
        .map(|w| {
            let (addr, stop, give_up, record, key) = (
                addr.clone(),
                stop.clone(),
                give_up.clone(),
                record.clone(),
                key.clone(),
            );
            let accounts: Vec<&'static str> = CRASH_ACCOUNTS.iter().map(|(id, _, _)| *id).collect();
            let mut sizes = Rng(rng.next());
            std::thread::spawn(move || {
                let mut r = 0;
                while !stop.load(Ordering::SeqCst) {
                    let n_events = sizes.between(1, 5) as usize;
                    let planned = plan("kill", &accounts, w, r, n_events);
                    send_until_acked(&addr, &key, planned, &give_up, &record);
                    r += 1;
                }
            })
        })
        .collect();

    for _ in 0..N_CYCLES {
        std::thread::sleep(Duration::from_millis(rng.between(50, 400)));
        server.kill();
        server = Server::start(&data_dir, &[]);
        *addr.write().expect("addr lock") = server.addr.clone();
    }
    // Let the last server run a little, then let every worker finish its current request.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    // Retrying forever against a broken server would hang the suite; give up after a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    while workers.iter().any(|worker| !worker.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    give_up.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().expect("worker thread");
    }
    let record = std::mem::take(&mut *record.lock().expect("record lock"));
    assert!(
        record.unexpected.is_empty(),
        "contract broken during the run: {:#?}",
        record.unexpected
    );
    assert!(record.unacked.is_empty(), "{:?}", record.unacked);
    let n_acked_events: usize = record.acks.iter().map(|ack| ack.planned.events.len()).sum();
    let n_retried = record.acks.iter().filter(|ack| ack.attempts > 1).count();
    let n_duplicate_acks = record
        .acks
        .iter()
        .filter(|ack| ack.outcomes.iter().any(|o| o["duplicate"] == true))
        .count();
    eprintln!(
        "crash test: {} requests ({n_acked_events} events) acknowledged, {n_retried} after a \
         retry, {n_duplicate_acks} answered duplicate:true, over {N_CYCLES} kills",
        record.acks.len()
    );
    assert!(
        record.acks.len() >= N_CYCLES * 2,
        "too little traffic to mean anything"
    );
    assert!(
        n_retried > 0,
        "no request was ever interrupted by a kill; the test exercised nothing"
    );

    // One more kill after the traffic, so the final state comes from recovery too.
    server.kill();
    let server = Server::start(&data_dir, &[]);
    let stored = stored_events(&server, &key);
    check_acks_stored(&record.acks, &stored);
    let acked_ids: BTreeSet<(String, String, String)> = record
        .acks
        .iter()
        .flat_map(|ack| {
            ack.planned.events.iter().map(|sent| {
                (
                    ack.planned.kind.to_string(),
                    sent["account_id"].as_str().expect("account").to_string(),
                    sent["id"].as_str().expect("id").to_string(),
                )
            })
        })
        .collect();
    assert_eq!(
        acked_ids.len(),
        n_acked_events,
        "a request was acknowledged twice"
    );
    let unasked: Vec<&Value> = stored
        .iter()
        .filter(|(key, _)| key.2.starts_with("kill-") && !acked_ids.contains(*key))
        .map(|(_, event)| event)
        .collect();
    assert!(
        unasked.is_empty(),
        "test events stored that no acknowledged request holds: {unasked:#?}"
    );

    // Resending acknowledged requests after the restarts: the same result, marked duplicate.
    for ack in record.acks.iter().step_by(7) {
        let response = post(&server.addr, &key, &ack.planned).expect("resend");
        assert_eq!(response.status, 200, "{}", response.body);
        let data = response.json()["data"].as_array().cloned().expect("data");
        for (outcome, original) in data.iter().zip(&ack.outcomes) {
            assert_eq!(outcome["duplicate"], true, "{outcome}");
            assert_eq!(outcome["seq"], original["seq"], "{outcome} vs {original}");
        }
    }
    // The same id with other content is a conflict, and changes nothing.
    let mut changed = record.acks[0].planned.clone();
    changed.events[0]["metadata"] = json!({"tampered": true});
    let response = post(&server.addr, &key, &changed).expect("conflicting resend");
    assert_eq!(response.status, 409, "{}", response.body);
    let after = stored_events(&server, &key);
    check_acks_stored(&record.acks, &after);

    eprintln!("crash test took {:?}", started.elapsed());
}

#[test]
fn sigterm_answers_or_refuses_in_flight_requests_and_exits_zero() {
    let (_temp, data_dir) = temp_data_dir();
    create_accounts(&data_dir, &CRASH_ACCOUNTS);
    let mut server = Server::start(&data_dir, &[]);
    let key = server.admin_key();
    let addr = Arc::new(RwLock::new(server.addr.clone()));
    let terminated = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(Record::default()));

    let workers: Vec<_> = (0..N_WORKERS)
        .map(|w| {
            let (addr, terminated, record, key) = (
                addr.clone(),
                terminated.clone(),
                record.clone(),
                key.clone(),
            );
            let accounts: Vec<&'static str> = CRASH_ACCOUNTS.iter().map(|(id, _, _)| *id).collect();
            std::thread::spawn(move || {
                // Until the first request that is not acknowledged: once SIGTERM is sent,
                // that is the one refused by the stopping server.
                for r in 0.. {
                    // Bigger batches keep commits in flight when the signal lands.
                    let planned = plan("term", &accounts, w, r, 50);
                    if !send_until_acked(&addr, &key, planned, &terminated, &record) {
                        return;
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(700));
    let signalled = Instant::now();
    terminated.store(true, Ordering::SeqCst);
    let status = server.terminate(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(0),
        "logvault must exit 0 after SIGTERM, got {status:?}"
    );
    let shutdown_took = signalled.elapsed();
    for worker in workers {
        worker.join().expect("worker thread");
    }
    let record = std::mem::take(&mut *record.lock().expect("record lock"));
    assert!(
        record.unexpected.is_empty(),
        "contract broken during shutdown: {:#?}",
        record.unexpected
    );
    assert!(
        record.acks.len() >= N_WORKERS,
        "too few acks to mean anything"
    );
    let n_acked_after_signal = record.acks.iter().filter(|ack| ack.at > signalled).count();
    eprintln!(
        "sigterm test: {} acks ({n_acked_after_signal} answered after SIGTERM), {} never \
         acknowledged; shutdown took {shutdown_took:?}",
        record.acks.len(),
        record.unacked.len()
    );

    let server = Server::start(&data_dir, &[]);
    let stored = stored_events(&server, &key);
    check_acks_stored(&record.acks, &stored);
    check_all_or_nothing(&record.unacked, &stored);
}
