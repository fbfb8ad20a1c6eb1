//! Bad input: every malformed request gets the right status and problem `type` as
//! `application/problem+json`, never echoes a secret, and the server keeps serving.

use axum::body::Body;
use axum::http::{Method, header};
use logvault_core::EventKind;
use serde_json::{Value, json};

use crate::support::{MER_A1, Reply, Who, World, audit_event, base};

/// One malformed request and the answer the contract promises.
struct Case {
    name: &'static str,
    method: Method,
    uri: String,
    /// `Content-Type`, if sent.
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// Extra headers.
    headers: Vec<(&'static str, String)>,
    status: u16,
    slug: &'static str,
    /// Text the problem must contain (e.g. the offending field's name).
    mentions: Option<&'static str>,
}

impl Case {
    fn new(name: &'static str, method: Method, uri: impl Into<String>) -> Case {
        Case {
            name,
            method,
            uri: uri.into(),
            content_type: None,
            body: Vec::new(),
            headers: Vec::new(),
            status: 0,
            slug: "",
            mentions: None,
        }
    }

    fn get(name: &'static str, uri: impl Into<String>) -> Case {
        Case::new(name, Method::GET, uri)
    }

    fn post(name: &'static str, uri: &str, content_type: &'static str, body: Vec<u8>) -> Case {
        Case {
            content_type: Some(content_type),
            body,
            ..Case::new(name, Method::POST, uri)
        }
    }

    fn post_json(name: &'static str, uri: &str, body: &Value) -> Case {
        Case::post(name, uri, "application/json", body.to_string().into_bytes())
    }

    fn expect(self, status: u16, slug: &'static str) -> Case {
        Case {
            status,
            slug,
            ..self
        }
    }

    fn mentioning(self, text: &'static str) -> Case {
        Case {
            mentions: Some(text),
            ..self
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.push((name, value.into()));
        self
    }
}

const AUDIT: &str = "/v1/audit-events";
const THREAT: &str = "/v1/threat-events";

fn audit() -> Value {
    audit_event("bad-input-ok", MER_A1)
}

fn with(mut event: Value, field: &str, value: Value) -> Value {
    event[field] = value;
    event
}

fn cases(token: &str) -> Vec<Case> {
    let secret = token.to_string();
    let many: Vec<Value> = (0..1001)
        .map(|n| audit_event(&format!("many-{n}"), MER_A1))
        .collect();
    let many_ndjson: String = many.iter().map(|event| format!("{event}\n")).collect();
    // A valid event padded past 1 MiB with whitespace, so only the size is wrong.
    let mut oversize = audit().to_string().into_bytes();
    oversize.extend(std::iter::repeat_n(b' ', 1024 * 1024));
    vec![
        Case::post(
            "malformed JSON",
            AUDIT,
            "application/json",
            b"{\"action\": ".to_vec(),
        )
        .expect(400, "malformed-body"),
        Case::post(
            "malformed JSON carrying the token",
            AUDIT,
            "application/json",
            format!("{{\"action\": \"{secret}\" ,,").into_bytes(),
        )
        .expect(400, "malformed-body"),
        Case::post(
            "NDJSON line that is not JSON",
            AUDIT,
            "application/x-ndjson",
            format!("{}\n{{nope\n", audit()).into_bytes(),
        )
        .expect(400, "malformed-body")
        .mentioning("line 2"),
        Case::post("empty array", AUDIT, "application/json", b"[]".to_vec())
            .expect(400, "malformed-body"),
        Case::post("empty body", AUDIT, "application/json", Vec::new())
            .expect(400, "malformed-body"),
        Case::post(
            "invalid UTF-8",
            AUDIT,
            "application/json",
            b"{\"action\": \"\xff\xfe\"}".to_vec(),
        )
        .expect(400, "malformed-body"),
        Case {
            body: audit().to_string().into_bytes(),
            ..Case::new("missing content type", Method::POST, AUDIT)
        }
        .expect(415, "unsupported-media-type"),
        Case::post(
            "text/plain",
            AUDIT,
            "text/plain",
            audit().to_string().into_bytes(),
        )
        .expect(415, "unsupported-media-type"),
        Case::post(
            "form encoded",
            THREAT,
            "application/x-www-form-urlencoded",
            b"a=b".to_vec(),
        )
        .expect(415, "unsupported-media-type"),
        Case::post_json(
            "unknown top-level field",
            AUDIT,
            &with(audit(), "colour", json!("red")),
        )
        .expect(400, "invalid-events")
        .mentioning("colour"),
        Case::post_json(
            "unknown nested field",
            AUDIT,
            &with(audit(), "actor", json!({"id": "u", "shoe": 42})),
        )
        .expect(400, "invalid-events")
        .mentioning("actor.shoe"),
        // Found by schemathesis: a whole number written with a fraction (`504.0`) is taken,
        // a real fraction is not.
        Case::post_json(
            "fractional API status",
            THREAT,
            &json!({"source": "api", "error_type": "E", "message": "m", "api": {"status": 504.5}}),
        )
        .expect(400, "invalid-events")
        .mentioning("api.status"),
        Case {
            content_type: Some("application/json"),
            body: br#"{"days": 35.5}"#.to_vec(),
            ..Case::new(
                "fractional retention days",
                Method::PUT,
                format!("/v1/retention/{MER_A1}/audit"),
            )
        }
        .expect(400, "invalid-setting")
        .mentioning("days"),
        Case::post_json(
            "unknown threat field",
            THREAT,
            &json!({"source": "sdk", "error_type": "E", "message": "m", "card_number": "4111"}),
        )
        .expect(400, "invalid-events")
        .mentioning("card_number"),
        Case::post_json(
            "bad outcome carrying the token",
            AUDIT,
            &with(audit(), "outcome", json!(secret)),
        )
        .expect(400, "invalid-events")
        .mentioning("outcome"),
        Case::post_json(
            "bad IP carrying the token",
            AUDIT,
            &with(audit(), "origin", json!({"ip": secret})),
        )
        .expect(400, "invalid-events")
        .mentioning("origin.ip"),
        Case::post_json(
            "string over 8 KiB",
            THREAT,
            &json!({"source": "sdk", "error_type": "E", "message": "x".repeat(8 * 1024 + 1)}),
        )
        .expect(400, "invalid-events")
        .mentioning("message"),
        Case::post_json(
            "metadata nested too deep",
            AUDIT,
            &with(
                audit(),
                "metadata",
                json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}),
            ),
        )
        .expect(400, "invalid-events")
        .mentioning("metadata"),
        Case::post(
            "body over 1 MiB",
            AUDIT,
            "application/json",
            oversize.clone(),
        )
        .expect(413, "payload-too-large"),
        Case::post("NDJSON body over 1 MiB", THREAT, "application/x-ndjson", {
            let mut body = Vec::new();
            while body.len() <= 1024 * 1024 {
                body.extend(
                    json!({"source": "sdk", "error_type": "E", "message": "x".repeat(4000)})
                        .to_string()
                        .bytes(),
                );
                body.push(b'\n');
            }
            body
        })
        .expect(413, "payload-too-large"),
        Case::post(
            "Content-Length over the limit with a tiny body",
            AUDIT,
            "application/json",
            audit().to_string().into_bytes(),
        )
        .header("content-length", (64 * 1024 * 1024).to_string())
        .expect(413, "payload-too-large"),
        Case::post_json("1001 events as an array", AUDIT, &Value::Array(many))
            .expect(413, "too-many-events"),
        Case::post(
            "1001 events as NDJSON",
            AUDIT,
            "application/x-ndjson",
            many_ndjson.into_bytes(),
        )
        .expect(413, "too-many-events"),
        Case::get("garbage cursor", format!("{AUDIT}?cursor=zzz")).expect(400, "invalid-cursor"),
        Case::get("token as cursor", format!("{THREAT}?cursor={secret}"))
            .expect(400, "invalid-cursor"),
        Case::get("unknown query parameter", format!("{AUDIT}?colour=red"))
            .expect(400, "invalid-query")
            .mentioning("colour"),
        Case::get("limit 0", format!("{AUDIT}?limit=0")).expect(400, "invalid-query"),
        Case::get("limit 1001", format!("{AUDIT}?limit=1001")).expect(400, "invalid-query"),
        Case::get("limit not a number", format!("{THREAT}?limit=ten")).expect(400, "invalid-query"),
        Case::get("token as limit", format!("{THREAT}?limit={secret}"))
            .expect(400, "invalid-query"),
        Case::get("bad from", format!("{AUDIT}?from=yesterday")).expect(400, "invalid-query"),
        Case::get("token as from", format!("{AUDIT}?from={secret}")).expect(400, "invalid-query"),
        Case::get(
            "from after to",
            format!("{AUDIT}?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"),
        )
        .expect(400, "invalid-query"),
        Case::get("bad ip", format!("{AUDIT}?ip=300.1.1.1")).expect(400, "invalid-query"),
        Case::get("bad CIDR prefix", format!("{AUDIT}?ip=10.0.0.0/33"))
            .expect(400, "invalid-query"),
        Case::get("token as ip", format!("{AUDIT}?ip={secret}")).expect(400, "invalid-query"),
        Case::get("bad outcome filter", format!("{AUDIT}?outcome=maybe"))
            .expect(400, "invalid-query"),
        Case::get(
            "threat filter on audit",
            format!("{AUDIT}?error_type=Timeout"),
        )
        .expect(400, "invalid-query")
        .mentioning("error_type"),
        Case::get(
            "audit filter on threat",
            format!("{THREAT}?action=user.login"),
        )
        .expect(400, "invalid-query")
        .mentioning("action"),
        Case::get("ip filter on threat", format!("{THREAT}?ip=10.0.0.1"))
            .expect(400, "invalid-query"),
        Case::get(
            "unknown parameter on get",
            format!("{AUDIT}/aud-mer_a1?colour=1"),
        )
        .expect(400, "invalid-query"),
        Case::get(
            "bad trends grouping",
            "/v1/threat-events/trends?group_by=colour",
        )
        .expect(400, "invalid-query"),
        Case::get(
            "bad trends interval",
            "/v1/threat-events/trends?interval=week",
        )
        .expect(400, "invalid-query"),
        Case::get(
            "unknown trends parameter",
            "/v1/threat-events/trends?action=x",
        )
        .expect(400, "invalid-query"),
        Case::new("DELETE a list", Method::DELETE, AUDIT).expect(405, "method-not-allowed"),
        Case::new("PUT an event", Method::PUT, format!("{THREAT}/thr-mer_a1"))
            .expect(405, "method-not-allowed"),
        Case::new(
            "DELETE an event",
            Method::DELETE,
            format!("{AUDIT}/aud-mer_a1"),
        )
        .expect(405, "method-not-allowed"),
        Case::new("POST trends", Method::POST, "/v1/threat-events/trends")
            .expect(405, "method-not-allowed"),
        Case::get("unknown path", "/v1/nothing-here").expect(404, "not-found"),
        // No event id is invalid UTF-8, so none can be found.
        Case::get("id that is not UTF-8", format!("{AUDIT}/%FF%FE")).expect(404, "not-found"),
        Case::get("id with a slash", format!("{THREAT}/thr-mer_a1%2Fx")).expect(404, "not-found"),
        Case::get("unknown version", "/v2/audit-events").expect(404, "not-found"),
        Case::get("too deep a path", format!("{AUDIT}/a/b")).expect(404, "not-found"),
        Case::get("token in an unknown path", format!("/v1/{secret}")).expect(404, "not-found"),
        Case::get("bad credentials", AUDIT)
            .header("authorization", format!("Bearer {secret}x"))
            .expect(401, "unauthorized"),
        Case::get("token under another scheme", AUDIT)
            .header("authorization", format!("Basic {secret}"))
            .expect(401, "unauthorized"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_problem_and_the_server_keeps_serving() {
    let world = World::new().await;
    let token = world.token(Who::MerchantA1).expect("token").to_string();
    let (_, secret) = token.rsplit_once('_').expect("token shape");
    let mut failures = Vec::new();
    let all = cases(&token);
    let n_cases = all.len();
    for (n, case) in all.into_iter().enumerate() {
        let reply = send(&world, &case).await;
        let mut problems = Vec::new();
        if let Some(mismatch) = reply.problem_mismatch(case.status, case.slug) {
            problems.push(mismatch);
        }
        if let Some(text) = case.mentions
            && !reply.text().contains(text)
        {
            problems.push(format!(
                "the problem does not name {text:?}: {}",
                reply.text()
            ));
        }
        if case.status == 405 && !reply.headers.contains_key("allow") {
            problems.push("405 without an Allow header (RFC 9110 §15.5.6)".to_string());
        }
        if reply.text().contains(secret) {
            problems.push(format!(
                "the body echoes the key's secret: {}",
                reply.text()
            ));
        }
        if let Err(problem) = still_serving(&world, n).await {
            problems.push(format!("afterwards: {problem}"));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n_cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn send(world: &World, case: &Case) -> Reply {
    let has_authorization = case
        .headers
        .iter()
        .any(|(name, _)| *name == "authorization");
    let who = if has_authorization {
        Who::Anonymous
    } else {
        Who::MerchantA1
    };
    let mut builder = world.request(who, case.method.clone(), &case.uri);
    if let Some(content_type) = case.content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in &case.headers {
        builder = builder.header(*name, value);
    }
    let request = builder
        .body(Body::from(case.body.clone()))
        .expect("request");
    world.send_request(request).await
}

/// A good write and a good read both still work, and the refused request stored nothing.
async fn still_serving(world: &World, n: usize) -> Result<(), String> {
    let id = format!("after-bad-input-{n}");
    let reply = world
        .post_json(
            Who::MerchantA1,
            base(EventKind::Audit),
            &audit_event(&id, MER_A1),
        )
        .await;
    if reply.status.as_u16() != 201 {
        return Err(format!("ingest answered {} {}", reply.status, reply.text()));
    }
    let reply = world.get(Who::MerchantA1, &format!("{AUDIT}/{id}")).await;
    if reply.status.as_u16() != 200 {
        return Err(format!("read answered {} {}", reply.status, reply.text()));
    }
    let stored = world.stored(EventKind::Audit, MER_A1).await;
    if let Some(event) = stored
        .iter()
        .find(|event| event.event_id == "bad-input-ok" || event.event_id.starts_with("many-"))
    {
        return Err(format!("a refused request stored {}", event.event_id));
    }
    Ok(())
}

/// Found by schemathesis: JSON Schema's integers include `504.0` and `35.0`, so the API
/// takes them as the whole numbers they are.
#[tokio::test(flavor = "multi_thread")]
async fn whole_numbers_written_with_a_fraction_are_taken() {
    let world = World::new().await;
    let event = json!({"id": "whole-status", "source": "api", "error_type": "E", "message": "m",
                       "api": {"status": 504.0}});
    world
        .ingest(Who::MerchantA1, EventKind::Threat, event)
        .await;
    let stored = world
        .get(Who::MerchantA1, "/v1/threat-events/whole-status")
        .await;
    stored.assert_status(200);
    assert_eq!(
        stored.json()["api"]["status"],
        json!(504),
        "stored as an integer"
    );

    let request = world
        .request(
            Who::Admin,
            Method::PUT,
            &format!("/v1/retention/{MER_A1}/audit"),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"days": 35.0}"#))
        .expect("request");
    let reply = world.send_request(request).await;
    reply.assert_status(200);
    assert_eq!(
        reply.json()["data"][0]["audit"]["days"],
        json!(35),
        "{}",
        reply.text()
    );
}

/// Found by schemathesis: a text search with a cursor far past the end of the log (a forged
/// `c7fff…`, which decodes like any other) walked down from it step by step, holding a reader for ever; a few
/// such requests left no reader for anyone. It now starts where the log ends.
#[test]
fn a_text_search_from_a_cursor_past_the_log_answers_at_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(async {
        let world = World::new().await;
        let far = format!("c{:016x}", i64::MAX - 1);
        for who in [Who::Admin, Who::PartnerA, Who::MerchantA1] {
            for kind in [EventKind::Audit, EventKind::Threat] {
                for q in ["a", "ab", "abc"] {
                    let uri = format!("{}?q={q}&cursor={far}", base(kind));
                    let limit = std::time::Duration::from_secs(10);
                    match tokio::time::timeout(limit, world.get(who, &uri)).await {
                        Ok(reply) if reply.status == 200 => {}
                        Ok(reply) => {
                            return Err(format!(
                                "{who:?} {uri}: {} {}",
                                reply.status,
                                reply.text()
                            ));
                        }
                        Err(_) => return Err(format!("{who:?} {uri}: no answer within {limit:?}")),
                    }
                }
            }
        }
        Ok(())
    });
    // A walk that never ends must fail this test, not hang it waiting for the reader.
    runtime.shutdown_background();
    if let Err(problem) = outcome {
        panic!("{problem}");
    }
}
