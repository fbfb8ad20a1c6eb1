//! Ingest semantics: body shapes, whole-request validation, idempotency, per-account ids,
//! server time, sequencing, permissions and overload.

use std::collections::{BTreeMap, BTreeSet};

use logvault_core::{EventKind, Micros};
use logvault_sqlite::SqliteConfig;
use serde_json::{Value, json};

use crate::support::{
    ACCOUNTS, MER_A1, MER_A2, MER_B1, MER_P0, PAR_A, Who, World, audit_event, base, threat_event,
};

#[tokio::test(flavor = "multi_thread")]
async fn single_object_array_and_ndjson_are_accepted() {
    let world = World::new().await;
    let ids = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i}")).collect()
    };
    let ndjson = |ids: &[String], account: &str| -> Vec<u8> {
        ids.iter()
            .map(|id| format!("{}\n\n", audit_event(id, account)))
            .collect::<String>()
            .into_bytes()
    };
    let array = |ids: &[String], account: &str| -> Vec<u8> {
        let events: Vec<Value> = ids.iter().map(|id| audit_event(id, account)).collect();
        Value::Array(events).to_string().into_bytes()
    };
    let cases: Vec<(&str, &str, Vec<String>)> = vec![
        ("single object", "application/json", ids("one", 1)),
        ("array", "application/json", ids("arr", 3)),
        (
            "json with charset",
            "application/json; charset=utf-8",
            ids("cs", 2),
        ),
        ("ndjson", "application/x-ndjson", ids("nd", 4)),
        ("ndjson alias", "application/ndjson", ids("nd2", 2)),
    ];
    for (name, content_type, ids) in cases {
        let body = match (content_type.contains("ndjson"), ids.len()) {
            (true, _) => ndjson(&ids, MER_A1),
            (false, 1) => audit_event(&ids[0], MER_A1).to_string().into_bytes(),
            (false, _) => array(&ids, MER_A1),
        };
        let reply = world
            .post_raw(Who::MerchantA1, base(EventKind::Audit), content_type, body)
            .await;
        assert_eq!(reply.status.as_u16(), 201, "{name}: {}", reply.text());
        assert_eq!(reply.ids(), ids, "{name}: answer in request order");
        let stored: BTreeSet<String> = world
            .stored(EventKind::Audit, MER_A1)
            .await
            .into_iter()
            .map(|event| event.event_id)
            .collect();
        for id in &ids {
            assert!(stored.contains(id), "{name}: {id} not stored");
        }
    }
    // Events without an id or account get a server id and the key's account.
    let rows = world
        .ingest(
            Who::MerchantA1,
            EventKind::Threat,
            json!({"source": "sdk", "error_type": "E", "message": "m"}),
        )
        .await;
    assert_eq!(rows[0]["account_id"], MER_A1);
    let id = rows[0]["id"].as_str().expect("an assigned id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(&id[14..15], "7", "a UUIDv7: {id}");
}

/// `(index, field)` of every problem a refused request must report.
type ProblemFields = Vec<(u64, &'static str)>;

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requests_list_every_problem_and_store_nothing() {
    let world = World::new().await;
    let good = |id: &str| audit_event(id, MER_A1);
    let cases: Vec<(&str, Value, ProblemFields)> = vec![
        (
            "two bad events around a good one",
            json!([
                {"id": "v-0", "action": "user login", "outcome": "maybe", "actor": {"id": "u"}},
                good("v-1"),
                {"id": "v-2", "outcome": "success", "actor": {"id": 7, "kind": "x"},
                 "origin": {"ip": "999.1.1.1"}, "occurred_at": "yesterday", "extra": true},
            ]),
            vec![
                (0, "action"),
                (0, "outcome"),
                (2, "action"),
                (2, "actor.id"),
                (2, "actor.kind"),
                (2, "extra"),
                (2, "occurred_at"),
                (2, "origin.ip"),
            ],
        ),
        (
            "a non-object and a bad account id",
            json!([good("v-3"), 42, {"id": "v-4", "account_id": "no spaces allowed",
                "action": "a", "outcome": "success", "actor": {"id": "u"}}]),
            vec![(1, ""), (2, "account_id")],
        ),
        (
            "missing required fields",
            json!({"id": "v-5"}),
            vec![(0, "action"), (0, "actor"), (0, "outcome")],
        ),
    ];
    for (name, body, expected) in cases {
        let reply = world
            .post_json(Who::MerchantA1, base(EventKind::Audit), &body)
            .await;
        reply.assert_problem(400, "invalid-events");
        let errors = reply.json()["errors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut found: Vec<(u64, String)> = errors
            .iter()
            .map(|error| {
                assert!(
                    error["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{name}: every problem has a message: {error}"
                );
                (
                    error["index"].as_u64().unwrap_or(u64::MAX),
                    error["field"].as_str().unwrap_or("?").to_string(),
                )
            })
            .collect();
        found.sort();
        let expected: Vec<(u64, String)> = expected
            .into_iter()
            .map(|(index, field)| (index, field.to_string()))
            .collect();
        assert_eq!(found, expected, "{name}: {}", reply.text());
    }
    let stored: Vec<String> = world
        .stored(EventKind::Audit, MER_A1)
        .await
        .into_iter()
        .map(|event| event.event_id)
        .filter(|id| id.starts_with("v-"))
        .collect();
    assert_eq!(stored, Vec::<String>::new(), "nothing of a refused request");
}

/// One step of an idempotency scenario: what to send and what must come back.
struct Step {
    name: &'static str,
    who: Who,
    body: Value,
    status: u16,
    /// Per event: `Some(step)` when it must repeat the outcome of an earlier step's first
    /// event (a duplicate), `None` when it must be new.
    same_as: Vec<Option<usize>>,
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_are_idempotent_within_an_account_and_independent_across_accounts() {
    let world = World::new().await;
    let original = json!({"id": "idem-1", "action": "user.login", "outcome": "success",
        "actor": {"id": "usr_1"}, "occurred_at": "2026-01-01T00:00:00Z", "metadata": {"a": 1, "b": 2}});
    // The same content with keys in another order is the same event.
    let reordered = json!({"metadata": {"b": 2, "a": 1}, "occurred_at": "2026-01-01T00:00:00Z",
        "actor": {"id": "usr_1"}, "outcome": "success", "action": "user.login", "id": "idem-1",
        "account_id": MER_A1});
    let mut changed = original.clone();
    changed["outcome"] = json!("failure");
    let mut other_time = original.clone();
    other_time["occurred_at"] = json!("2026-01-01T00:00:01Z");
    let steps = vec![
        Step {
            name: "first write",
            who: Who::MerchantA1,
            body: original.clone(),
            status: 201,
            same_as: vec![None],
        },
        Step {
            name: "same id and content",
            who: Who::MerchantA1,
            body: original.clone(),
            status: 200,
            same_as: vec![Some(0)],
        },
        Step {
            name: "same content, keys reordered",
            who: Who::MerchantA1,
            body: reordered,
            status: 200,
            same_as: vec![Some(0)],
        },
        Step {
            name: "a duplicate next to a new event",
            who: Who::MerchantA1,
            body: json!([audit_event("idem-2", MER_A1), original.clone()]),
            status: 201,
            same_as: vec![None, Some(0)],
        },
        Step {
            name: "same id, other content",
            who: Who::MerchantA1,
            body: changed.clone(),
            status: 409,
            same_as: vec![],
        },
        Step {
            name: "same id, other occurred_at",
            who: Who::MerchantA1,
            body: other_time,
            status: 409,
            same_as: vec![],
        },
        Step {
            name: "a conflict after a new event refuses both",
            who: Who::MerchantA1,
            body: json!([audit_event("idem-never", MER_A1), changed.clone()]),
            status: 409,
            same_as: vec![],
        },
        Step {
            name: "a conflict inside one request",
            who: Who::MerchantA1,
            body: json!([
                audit_event("idem-twice", MER_A1),
                threat_like_audit("idem-twice")
            ]),
            status: 409,
            same_as: vec![],
        },
        Step {
            name: "the same id in another account is a new event",
            who: Who::MerchantB1,
            body: changed.clone(),
            status: 201,
            same_as: vec![None],
        },
        Step {
            name: "partner writes the id into its two merchants",
            who: Who::PartnerA,
            body: json!([audit_event("twin", MER_A1), audit_event("twin", MER_A2)]),
            status: 201,
            same_as: vec![None, None],
        },
    ];
    let mut firsts: Vec<Value> = Vec::new();
    for step in &steps {
        let reply = world
            .post_json(step.who, base(EventKind::Audit), &step.body)
            .await;
        if step.status == 409 {
            reply.assert_problem(409, "id-conflict");
            firsts.push(Value::Null);
            continue;
        }
        assert_eq!(
            reply.status.as_u16(),
            step.status,
            "{}: {}",
            step.name,
            reply.text()
        );
        let rows = reply.rows();
        assert_eq!(rows.len(), step.same_as.len(), "{}", step.name);
        for (row, same_as) in rows.iter().zip(&step.same_as) {
            match same_as {
                Some(earlier) => {
                    let first = &firsts[*earlier];
                    assert_eq!(row["duplicate"], true, "{}: {row}", step.name);
                    for field in ["seq", "account_seq", "received_at", "leaf_hash", "id"] {
                        assert_eq!(row[field], first[field], "{}: {field}", step.name);
                    }
                }
                None => assert_eq!(row["duplicate"], false, "{}: {row}", step.name),
            }
        }
        firsts.push(rows.first().cloned().unwrap_or(Value::Null));
    }
    let ids_in = |events: Vec<logvault_core::StoredEvent>| -> Vec<String> {
        events.into_iter().map(|event| event.event_id).collect()
    };
    let a1 = ids_in(world.stored(EventKind::Audit, MER_A1).await);
    for (id, n_expected) in [
        ("idem-1", 1),
        ("idem-2", 1),
        ("twin", 1),
        ("idem-never", 0),
        ("idem-twice", 0),
    ] {
        let n_found = a1.iter().filter(|stored| *stored == id).count();
        assert_eq!(n_found, n_expected, "copies of {id} in {MER_A1}");
    }
    let stored_a1 = world.stored(EventKind::Audit, MER_A1).await;
    let original_stored = stored_a1
        .iter()
        .find(|event| event.event_id == "idem-1")
        .expect("idem-1");
    assert!(
        original_stored.body.contains("success"),
        "the first content is kept: {}",
        original_stored.body
    );
    let b1 = ids_in(world.stored(EventKind::Audit, MER_B1).await);
    assert!(
        b1.contains(&"idem-1".to_string()),
        "{MER_B1} has its own idem-1"
    );
    let a2 = ids_in(world.stored(EventKind::Audit, MER_A2).await);
    assert!(
        a2.contains(&"twin".to_string()),
        "{MER_A2} has its own twin"
    );
}

/// An audit event with `id` that differs from [`audit_event`]'s content.
fn threat_like_audit(id: &str) -> Value {
    let mut event = audit_event(id, MER_A1);
    event["action"] = json!("something.else");
    event
}

#[tokio::test(flavor = "multi_thread")]
async fn received_at_is_server_time_and_occurred_at_is_kept_apart() {
    let world = World::new().await;
    let cases = [
        (
            "a claimed time in the past",
            Some("2001-02-03T04:05:06Z"),
            Some("2001-02-03T04:05:06.000000Z"),
        ),
        (
            "a claimed time in the future",
            Some("2099-01-01T00:00:00+02:00"),
            Some("2098-12-31T22:00:00.000000Z"),
        ),
        ("no claimed time", None, None),
    ];
    for (n, (name, occurred_at, kept)) in cases.into_iter().enumerate() {
        let id = format!("time-{n}");
        let mut event = audit_event(&id, MER_P0);
        if let Some(occurred_at) = occurred_at {
            event["occurred_at"] = json!(occurred_at);
        }
        let before = Micros::now();
        let rows = world.ingest(Who::MerchantP0, EventKind::Audit, event).await;
        let after = Micros::now();
        let received_at = rows[0]["received_at"].as_str().expect("received_at");
        let received = Micros::parse_rfc3339(received_at).expect("RFC 3339");
        assert!(
            before <= received && received <= after,
            "{name}: received_at {received_at} is not the server's clock"
        );
        let reply = world
            .get(Who::MerchantP0, &format!("/v1/audit-events/{id}"))
            .await;
        reply.assert_status(200);
        let stored = reply.json();
        assert_eq!(stored["received_at"], received_at, "{name}");
        assert_eq!(stored["occurred_at"].as_str(), kept, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seq_increases_and_account_seq_is_gapless_per_account() {
    let world = World::new().await;
    let mut last_seq = 0;
    // RFC 3339 with exactly six fractional digits: text order is time order.
    let mut last_received_at = String::new();
    let writers = [
        (Who::MerchantA1, MER_A1),
        (Who::PartnerA, MER_A2),
        (Who::PartnerA, PAR_A),
        (Who::Admin, MER_B1),
        (Who::MerchantP0, MER_P0),
    ];
    for round in 0..4 {
        for (n, (who, account)) in writers.iter().enumerate() {
            let kind = if (round + n) % 2 == 0 {
                EventKind::Audit
            } else {
                EventKind::Threat
            };
            let events: Vec<Value> = (0..=n)
                .map(|i| {
                    let id = format!("seq-{round}-{n}-{i}");
                    match kind {
                        EventKind::Audit => audit_event(&id, account),
                        EventKind::Threat => threat_event(&id, account),
                    }
                })
                .collect();
            for row in world.ingest(*who, kind, Value::Array(events)).await {
                let seq = row["seq"].as_u64().expect("seq");
                assert!(seq > last_seq, "seq {seq} after {last_seq}");
                last_seq = seq;
                let received_at = row["received_at"].as_str().expect("received_at");
                assert!(
                    received_at >= last_received_at.as_str(),
                    "received_at {received_at} went back from {last_received_at}"
                );
                last_received_at = received_at.to_string();
            }
        }
    }
    for account in ACCOUNTS {
        let mut by_seq: BTreeMap<u64, u64> = BTreeMap::new();
        for kind in [EventKind::Threat, EventKind::Audit] {
            for event in world.stored(kind, account).await {
                by_seq.insert(event.seq, event.account_seq);
            }
        }
        let account_seqs: Vec<u64> = by_seq.values().copied().collect();
        let gapless: Vec<u64> = (1..=account_seqs.len() as u64).collect();
        assert_eq!(
            account_seqs, gapless,
            "{account}: account_seq follows seq without gaps"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_need_the_matching_permission() {
    let world = World::new().await;
    let cases = [
        (Who::ReadOnlyA1, "POST", "/v1/audit-events", 403),
        (Who::ReadOnlyA1, "POST", "/v1/threat-events", 403),
        (Who::ReadOnlyA1, "GET", "/v1/audit-events", 200),
        (Who::ReadOnlyA1, "GET", "/v1/threat-events/thr-mer_a1", 200),
        (Who::IngestOnlyA2, "GET", "/v1/audit-events", 403),
        (Who::IngestOnlyA2, "GET", "/v1/threat-events", 403),
        (Who::IngestOnlyA2, "GET", "/v1/audit-events/aud-mer_a2", 403),
        (
            Who::IngestOnlyA2,
            "GET",
            "/v1/threat-events/thr-mer_a2",
            403,
        ),
        (Who::IngestOnlyA2, "GET", "/v1/threat-events/trends", 403),
        (Who::IngestOnlyA2, "POST", "/v1/audit-events", 201),
        (Who::IngestOnlyA2, "POST", "/v1/threat-events", 201),
    ];
    for (n, (who, method, uri, status)) in cases.into_iter().enumerate() {
        let id = format!("perm-{n}");
        let account = who.account().expect("an account");
        let reply = if method == "POST" {
            let event = if uri.contains("audit") {
                audit_event(&id, account)
            } else {
                threat_event(&id, account)
            };
            world.post_json(who, uri, &event).await
        } else {
            world.get(who, uri).await
        };
        if status == 403 {
            reply.assert_problem(403, "forbidden");
        } else {
            assert_eq!(
                reply.status.as_u16(),
                status,
                "{who:?} {method} {uri}: {}",
                reply.text()
            );
        }
        if method == "POST" {
            let kind = if uri.contains("audit") {
                EventKind::Audit
            } else {
                EventKind::Threat
            };
            let stored = world.stored(kind, account).await;
            let was_stored = stored.iter().any(|event| event.event_id == id);
            assert_eq!(was_stored, status == 201, "{who:?} {uri}: stored?");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_with_retry_after() {
    let config = SqliteConfig {
        max_queued_events: 1,
        ..SqliteConfig::default()
    };
    let world = World::with_config(config, false).await;
    let two = json!([audit_event("busy-1", MER_A1), audit_event("busy-2", MER_A1)]);
    let reply = world
        .post_json(Who::MerchantA1, base(EventKind::Audit), &two)
        .await;
    reply.assert_problem(503, "overloaded");
    let retry_after = reply
        .headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|seconds| seconds >= 1),
        "Retry-After: {retry_after:?}"
    );
    assert!(
        world.stored(EventKind::Audit, MER_A1).await.is_empty(),
        "nothing of an overloaded request is stored"
    );
    let one = world
        .post_json(
            Who::MerchantA1,
            base(EventKind::Audit),
            &audit_event("fits", MER_A1),
        )
        .await;
    one.assert_status(201);
}

/// A key over its rate limit gets 429 with Retry-After and nothing stored; other keys go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_its_rate_limit_answers_429() {
    let server = logvault_server::ServerConfig {
        rate_limit: Some(logvault_server::RateLimit {
            per_second: 0.5,
            burst: 2.0,
        }),
        ..logvault_server::ServerConfig::default()
    };
    let world = World::with_configs(SqliteConfig::default(), server, false).await;
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for i in 0..3 {
            let event = json!(audit_event(&format!("rate-{i}"), MER_A1));
            let reply = world
                .post_json(Who::MerchantA1, base(EventKind::Audit), &event)
                .await;
            statuses.push(reply.status.as_u16());
            if i == 2 {
                reply.assert_problem(429, "rate-limited");
                let retry_after = reply
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok());
                assert_eq!(
                    retry_after,
                    Some("2"),
                    "half a request per second: retry in 2 s"
                );
            }
        }
        statuses
    };
    assert_eq!(statuses, [201, 201, 429]);
    let ids: Vec<String> = world
        .stored(EventKind::Audit, MER_A1)
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert!(
        !ids.contains(&"rate-2".to_string()),
        "the refused request stored nothing: {ids:?}"
    );
    let other = world
        .post_json(
            Who::MerchantA2,
            base(EventKind::Audit),
            &json!(audit_event("rate-a2", MER_A2)),
        )
        .await;
    assert_eq!(other.status.as_u16(), 201, "another key has its own budget");
}
