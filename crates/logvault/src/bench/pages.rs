//! Logs-page render times: one person per role signs in through the real form (CSRF cookie,
//! argon2id check, session cookie) and loads every page while ingest goes on. The time to
//! the last byte of HTML is taken at the client, so it bounds the server's render time from
//! above.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use hyper::{Method, StatusCode, header};
use logvault_core::Role;
use logvault_store::Store;

use super::client::Client;
use super::report::Latencies;
use super::{stage, workload};
use crate::admin::create_user;

/// A person the benchmark signs in as.
pub(crate) struct Person {
    username: &'static str,
    password: String,
    role: Role,
}

/// Creates one user per role (the partner and the merchant on the busiest accounts) with a
/// fresh random password.
pub(crate) async fn create_people(store: &dyn Store) -> anyhow::Result<Vec<Person>> {
    let people = [
        ("bench-admin", Role::Admin, None),
        (
            "bench-partner",
            Role::Partner,
            Some(workload::partner_id(0)),
        ),
        (
            "bench-merchant",
            Role::Merchant,
            Some(workload::merchant_id(0)),
        ),
    ];
    let mut created = Vec::new();
    for (username, role, account) in people {
        let password = logvault_core::password::new_token()?;
        create_user(store, username, role, account, &password).await?;
        created.push(Person {
            username,
            password,
            role,
        });
    }
    Ok(created)
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
fn set_cookie(headers: &header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next()?.split_once('='))
        .find(|(cookie, value)| *cookie == name && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// Signs `person` in through the sign-in form; the client then carries the session.
pub(super) async fn sign_in(address: SocketAddr, person: &Person) -> anyhow::Result<Client> {
    let mut client = Client::anonymous(address).await?;
    let (status, headers, _) = client.exchange(Method::GET, "/login", None).await?;
    anyhow::ensure!(status == StatusCode::OK, "GET /login: {status}");
    let csrf = set_cookie(&headers, "logvault_login_csrf")
        .ok_or_else(|| anyhow::anyhow!("GET /login set no CSRF cookie"))?;
    // Tokens and generated passwords are URL-safe, so the form needs no escaping.
    let form = format!(
        "csrf={csrf}&username={}&password={}",
        person.username, person.password
    );
    // The form's CSRF token must come back in its cookie too; the client has no other.
    client.use_cookie(format!("logvault_login_csrf={csrf}"));
    let (status, headers, body) = client
        .exchange(
            Method::POST,
            "/login",
            Some(("application/x-www-form-urlencoded", Bytes::from(form))),
        )
        .await?;
    let session = set_cookie(&headers, "logvault_session").ok_or_else(|| {
        anyhow::anyhow!(
            "signing in as {} answered {status}: {}",
            person.username,
            String::from_utf8_lossy(&body)
        )
    })?;
    client.use_cookie(format!("logvault_session={session}"));
    Ok(client)
}

/// The pages timed, by name: what a person opens first and the views that work hardest.
fn pages(detail: &str) -> Vec<(&'static str, String)> {
    vec![
        ("page_overview_24h", "/".into()),
        ("page_overview_30d", "/?range=30d".into()),
        ("page_audit", "/audit".into()),
        (
            "page_audit_failed_sign_ins",
            "/audit?range=7d&action=user.login&outcome=failure".into(),
        ),
        ("page_threat", "/threat".into()),
        ("page_threat_search", "/threat?q=timed%20out".into()),
        (
            "page_trends_30d",
            "/trends?range=30d&group_by=error_type".into(),
        ),
        ("page_problems", "/problems".into()),
        ("page_detail", detail.to_string()),
    ]
}

/// Loads each page `n` times, rotating over the people, and returns the latencies per page.
pub(crate) async fn measure(
    address: SocketAddr,
    people: &[Person],
    n: usize,
) -> anyhow::Result<Vec<(&'static str, Latencies)>> {
    let mut clients = Vec::new();
    for person in people {
        clients.push((person.role, sign_in(address, person).await?));
    }
    // An event every person may open: the busiest merchant's newest audit event.
    let (_, merchant) = clients
        .iter_mut()
        .find(|(role, _)| *role == Role::Merchant)
        .ok_or_else(|| anyhow::anyhow!("no merchant signed in"))?;
    let newest = merchant.get_ok("/audit").await?;
    let newest = String::from_utf8_lossy(&newest);
    // The first row's link, as the template escapes it.
    let detail = newest
        .split("<tr data-seq=")
        .nth(1)
        .and_then(|row| row.split("href=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .map(|href| href.replace("&#x2f;", "/").replace("&amp;", "&"))
        .ok_or_else(|| anyhow::anyhow!("the merchant's audit page lists no event"))?;
    let mut results = Vec::new();
    for (name, path) in pages(&detail) {
        let mut latencies = Latencies::default();
        for i in 0..n {
            let (_, client) = &mut clients[i % people.len()];
            let started = Instant::now();
            client.get_ok(&path).await?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
        stage(&format!(
            "  {name}: p50 {:.2} ms, p99 {:.2} ms",
            latencies.percentile(50.0),
            latencies.percentile(99.0)
        ));
        results.push((name, latencies));
    }
    Ok(results)
}
