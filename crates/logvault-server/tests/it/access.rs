//! The access matrix: every principal × every endpoint × every account's resources gets
//! exactly the status the scope rule predicts, and no 2xx answer carries a foreign row.

use std::collections::BTreeSet;

use logvault_core::EventKind;
use serde_json::Value;

use crate::support::{
    ACCOUNTS, GHOST, Reply, Who, World, audit_id, base, encode, event_of, in_scope, scope_of,
    threat_id,
};

/// One request shape of the matrix.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `POST /v1/{kind}-events` with one event for the account.
    Ingest(EventKind, &'static str),
    /// `GET /v1/{kind}-events` without an account filter.
    List(EventKind),
    /// `GET /v1/{kind}-events?account_id=<account>`.
    ListAccount(EventKind, &'static str),
    /// `GET /v1/{kind}-events/{id}` for the account's fixture event.
    Get(EventKind, &'static str),
    /// `GET /v1/{kind}-events/{id}?account_id=<account>` for the account's fixture event.
    GetInAccount(EventKind, &'static str),
    /// `GET /v1/threat-events/trends`.
    Trends,
    /// `GET /v1/threat-events/trends?account_id=<account>`.
    TrendsAccount(&'static str),
}

impl Op {
    fn all() -> Vec<Op> {
        let targets: Vec<&'static str> = ACCOUNTS.into_iter().chain([GHOST]).collect();
        let mut ops = Vec::new();
        for kind in [EventKind::Audit, EventKind::Threat] {
            ops.push(Op::List(kind));
            for account in &targets {
                ops.push(Op::Ingest(kind, account));
                ops.push(Op::ListAccount(kind, account));
                ops.push(Op::Get(kind, account));
                ops.push(Op::GetInAccount(kind, account));
            }
        }
        ops.push(Op::Trends);
        ops.extend(targets.iter().map(|account| Op::TrendsAccount(account)));
        ops
    }

    fn permission(self) -> &'static str {
        match self {
            Op::Ingest(..) => "ingest",
            _ => "read",
        }
    }
}

fn fixture_id(kind: EventKind, account: &str) -> String {
    match kind {
        EventKind::Audit => audit_id(account),
        EventKind::Threat => threat_id(account),
    }
}

/// The status the contract promises for `who` doing `op`.
fn expected_status(who: Who, op: Op) -> u16 {
    if !who.authenticates() {
        return 401;
    }
    if !who.may(op.permission()) {
        return 403;
    }
    match op {
        Op::Ingest(_, account) => {
            if in_scope(who, account) {
                201
            } else {
                403
            }
        }
        Op::List(_) | Op::Trends => 200,
        Op::ListAccount(_, account)
        | Op::Get(_, account)
        | Op::GetInAccount(_, account)
        | Op::TrendsAccount(account) => {
            if in_scope(who, account) {
                200
            } else {
                404
            }
        }
    }
}

fn slug_of(status: u16) -> &'static str {
    match status {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        _ => "",
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_principal_endpoint_and_account_gets_the_scoped_answer() {
    let world = World::new().await;
    let mut failures = Vec::new();
    let mut n_cells = 0;
    for who in Who::ALL {
        for op in Op::all() {
            n_cells += 1;
            if let Err(failure) = check(&world, who, op).await {
                failures.push(format!("{who:?} {op:?}: {failure}"));
            }
        }
    }
    assert!(n_cells > 1000, "the matrix shrank to {n_cells} cells");
    assert!(
        failures.is_empty(),
        "{} of {n_cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Sends `op` as `who` and checks the status, problem type and every returned row.
async fn check(world: &World, who: Who, op: Op) -> Result<(), String> {
    let expected = expected_status(who, op);
    let reply = send(world, who, op).await;
    if reply.status.as_u16() != expected {
        return Err(format!(
            "expected {expected}, got {}: {}",
            reply.status,
            reply.text()
        ));
    }
    let presented = world
        .authorization(who)
        .and_then(|value| value.split_once(' ').map(|(_, token)| token.to_string()));
    if let Some(token) = presented
        && token.len() > 16
        && reply.text().contains(&token)
    {
        return Err("the answer echoes the presented token".into());
    }
    if expected >= 400 {
        if let Some(mismatch) = reply.problem_mismatch(expected, slug_of(expected)) {
            return Err(mismatch);
        }
        if expected == 401 && !reply.headers.contains_key("www-authenticate") {
            return Err("401 without WWW-Authenticate".into());
        }
        if let Op::Ingest(kind, account) = op {
            let id = cell_id(who, kind, account);
            let stored = world.stored(kind, account).await;
            if stored.iter().any(|event| event.event_id == id) {
                return Err(format!("refused ingest stored {id} anyway"));
            }
        }
        return Ok(());
    }
    check_rows(world, who, op, &reply).await
}

fn cell_id(who: Who, kind: EventKind, account: &str) -> String {
    format!("cell-{who:?}-{}-{account}", kind.as_str())
}

async fn send(world: &World, who: Who, op: Op) -> Reply {
    match op {
        Op::Ingest(kind, account) => {
            let event = event_of(kind, &cell_id(who, kind, account), account);
            world.post_json(who, base(kind), &event).await
        }
        Op::List(kind) => world.get(who, &format!("{}?limit=1000", base(kind))).await,
        Op::ListAccount(kind, account) => {
            let uri = format!("{}?limit=1000&account_id={}", base(kind), encode(account));
            world.get(who, &uri).await
        }
        Op::Get(kind, account) => {
            let uri = format!("{}/{}", base(kind), fixture_id(kind, account));
            world.get(who, &uri).await
        }
        Op::GetInAccount(kind, account) => {
            let uri = format!(
                "{}/{}?account_id={}",
                base(kind),
                fixture_id(kind, account),
                encode(account)
            );
            world.get(who, &uri).await
        }
        Op::Trends => world.get(who, "/v1/threat-events/trends").await,
        Op::TrendsAccount(account) => {
            let uri = format!("/v1/threat-events/trends?account_id={}", encode(account));
            world.get(who, &uri).await
        }
    }
}

fn account_of(row: &Value) -> String {
    row["account_id"].as_str().unwrap_or("<none>").to_string()
}

/// Checks the content of a 2xx answer against the scope rule.
async fn check_rows(world: &World, who: Who, op: Op, reply: &Reply) -> Result<(), String> {
    let body = reply.json();
    let scope = scope_of(who);
    match op {
        Op::Ingest(_, account) => {
            let rows = reply.rows();
            if rows.len() != 1 || account_of(&rows[0]) != account {
                return Err(format!("ingest answered {body}"));
            }
        }
        Op::List(kind) => {
            let rows = reply.rows();
            let seen: BTreeSet<String> = rows.iter().map(account_of).collect();
            let wanted: BTreeSet<String> = scope.iter().map(|a| a.to_string()).collect();
            if seen != wanted {
                return Err(format!("rows from {seen:?}, scope is {wanted:?}"));
            }
            if kind == EventKind::Threat {
                // Threat events are not written by reads, so the store's view is exact.
                let mut stored = BTreeSet::new();
                for account in &scope {
                    for event in world.stored(kind, account).await {
                        stored.insert((event.account_id, event.event_id));
                    }
                }
                let listed: BTreeSet<(String, String)> = rows
                    .iter()
                    .map(|row| (account_of(row), row["id"].as_str().unwrap_or("").into()))
                    .collect();
                if listed != stored {
                    return Err(format!(
                        "listed {} threat events, the store holds {} in scope",
                        listed.len(),
                        stored.len()
                    ));
                }
            }
        }
        Op::ListAccount(kind, account) => {
            let rows = reply.rows();
            let foreign: Vec<String> = rows
                .iter()
                .map(account_of)
                .filter(|a| a != account)
                .collect();
            if !foreign.is_empty() {
                return Err(format!("rows from other accounts: {foreign:?}"));
            }
            let wanted = fixture_id(kind, account);
            if !reply.ids().contains(&wanted) {
                return Err(format!("the account's own event {wanted} is missing"));
            }
        }
        Op::Get(kind, account) | Op::GetInAccount(kind, account) => {
            if account_of(&body) != account || body["id"] != fixture_id(kind, account).as_str() {
                return Err(format!("got the wrong event: {body}"));
            }
        }
        Op::Trends | Op::TrendsAccount(_) => {
            let accounts: Vec<&str> = match op {
                Op::TrendsAccount(account) => vec![account],
                _ => scope.iter().copied().collect(),
            };
            let mut n_stored = 0;
            for account in accounts {
                n_stored += world.stored(EventKind::Threat, account).await.len() as u64;
            }
            if body["total"] != n_stored {
                return Err(format!(
                    "trends total {} but {n_stored} threat events in scope",
                    body["total"]
                ));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authorization_header_is_parsed_as_http_defines_it() {
    let world = World::new().await;
    let token = world.token(Who::MerchantA1).expect("token").to_string();
    // RFC 9110 §11.1: the scheme is case-insensitive; RFC 6750 §2.1: `Bearer 1*SP token`.
    let cases = [
        (format!("Bearer {token}"), 200),
        (format!("bearer {token}"), 200),
        (format!("BEARER {token}"), 200),
        (format!("Bearer {token} "), 200),
        (format!("Bearer {token}x"), 401),
        (format!("Bearer x{token}"), 401),
        (format!("Basic {token}"), 401),
        (token.clone(), 401),
        ("Bearer".to_string(), 401),
        ("Bearer ".to_string(), 401),
        (String::new(), 401),
    ];
    let mut failures = Vec::new();
    for (value, status) in cases {
        let request = axum::http::Request::builder()
            .uri("/v1/threat-events")
            .header("authorization", &value)
            .body(axum::body::Body::empty())
            .expect("request");
        let reply = world.send_request(request).await;
        let mismatch = if status == 401 {
            reply.problem_mismatch(401, "unauthorized")
        } else {
            (reply.status.as_u16() != status).then(|| reply.text())
        };
        if let Some(mismatch) = mismatch {
            let shown = value.replace(&token, "<token>");
            failures.push(format!(
                "{shown:?}: expected {status}, got {} {mismatch}",
                reply.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
