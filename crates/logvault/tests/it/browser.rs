//! End-to-end tests of the Logs page in headless Chromium (WebDriver): the real binary with
//! `serve --demo`, signing in as admin, partner and merchant, filtering, paging, the detail
//! view, export, live tail and what each role can and cannot see. Screenshots of every page
//! go to `target/screenshots/`.

#[path = "browser_support.rs"]
mod browser_support;
#[path = "browser_defences.rs"]
mod defences;
#[path = "browser_embed.rs"]
mod embed;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http;
use crate::server::{Server, temp_data_dir};
use browser_support::{Browser, browser_available, screenshot_dir};

const BURST_IP: &str = "198.51.100.66";

/// One role's expectations: credentials key, the accounts its selector lists (`None`: no
/// selector), and an account it must not reach.
struct RoleCase {
    role: &'static str,
    selector: Option<&'static [&'static str]>,
    foreign: Option<&'static str>,
}

const ROLES: [RoleCase; 3] = [
    RoleCase {
        role: "admin",
        selector: Some(&[
            "mer_acme_food",
            "mer_acme_shop",
            "mer_acme_travel",
            "mer_corner_cafe",
            "mer_globex_books",
            "mer_globex_games",
            "par_acme",
            "par_globex",
            "platform",
        ]),
        foreign: None,
    },
    RoleCase {
        role: "partner",
        selector: Some(&[
            "mer_acme_food",
            "mer_acme_shop",
            "mer_acme_travel",
            "par_acme",
        ]),
        foreign: Some("mer_globex_books"),
    },
    RoleCase {
        role: "merchant",
        selector: None,
        foreign: Some("mer_acme_travel"),
    },
];

/// Every account id of the demo, to look for leaks.
const DEMO_ACCOUNTS: [&str; 8] = [
    "par_acme",
    "par_globex",
    "mer_acme_shop",
    "mer_acme_travel",
    "mer_acme_food",
    "mer_globex_books",
    "mer_globex_games",
    "mer_corner_cafe",
];

fn in_scope(role: &str, account: &str) -> bool {
    match role {
        "admin" => true,
        "partner" => account == "par_acme" || account.starts_with("mer_acme"),
        _ => account == "mer_acme_shop",
    }
}

/// A JSON array of strings the page script returns.
fn strings(value: Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn sign_in(browser: &Browser, base: &str, username: &str, password: &str) {
    browser.goto(&format!("{base}/login"));
    browser.fill("#username", username);
    browser.fill("#password", password);
    browser.click("form[action='/login'] button[type=submit]");
    let home = format!("{base}/");
    assert!(
        browser.wait_until(Duration::from_secs(10), |b| b.url() == home),
        "{username} did not reach the overview: {}",
        browser.url()
    );
}

#[test]
fn the_logs_page_works_in_a_real_browser_for_every_role() {
    if let Err(missing) = browser_available() {
        if std::env::var("LOGVAULT_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("the browser tests must run here (LOGVAULT_TEST_REQUIRE_BROWSER=1): {missing}");
        }
        eprintln!("skipping the browser tests: {missing}");
        return;
    }
    let (_temp, data_dir) = temp_data_dir();
    let server = Server::start(&data_dir, &["--demo"]);
    let credentials: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir.join("demo-credentials.json")).expect("credentials"),
    )
    .expect("credentials JSON");
    let base = format!("http://{}", server.addr);
    let browser = Browser::start();

    browser.goto(&format!("{base}/audit"));
    assert!(
        browser.url().ends_with("/login"),
        "signed out, pages lead to sign-in"
    );
    browser.screenshot("login");
    browser.fill("#username", "demo-admin");
    browser.fill("#password", "not the password");
    browser.click("form[action='/login'] button[type=submit]");
    assert!(
        browser
            .text(".alert")
            .contains("Wrong username or password")
    );

    for case in &ROLES {
        let entry = &credentials[case.role];
        let username = entry["username"].as_str().expect("username");
        let key = entry["key"].as_str().expect("key");
        sign_in(
            &browser,
            &base,
            username,
            entry["password"].as_str().expect("password"),
        );
        assert!(browser.text(".who .user").contains(username));
        assert!(
            !browser.all("svg.chart").is_empty(),
            "{}: overview charts",
            case.role
        );
        browser.screenshot(&format!("{}-overview", case.role));

        // The table, its account selector and what it must not show.
        browser.goto(&format!("{base}/audit"));
        assert_eq!(
            browser.all("#rows tr").len(),
            50,
            "{}: a full first page",
            case.role
        );
        let options: BTreeSet<String> = strings(browser.script(
            "return Array.from(document.querySelectorAll('#f-account option')).map(o => o.value).filter(v => v);",
        ))
        .into_iter()
        .collect();
        let expected: BTreeSet<String> = case
            .selector
            .unwrap_or(&[])
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(options, expected, "{}: account selector", case.role);
        assert_eq!(
            browser.all("#f-account").is_empty(),
            case.selector.is_none()
        );
        for page in ["/audit", "/threat", "/", "/trends"] {
            browser.goto(&format!("{base}{page}"));
            let source = browser.source();
            for account in DEMO_ACCOUNTS.iter().filter(|a| !in_scope(case.role, a)) {
                assert!(
                    !source.contains(*account),
                    "{} {page} shows {account}",
                    case.role
                );
            }
        }
        browser.goto(&format!("{base}/audit"));
        browser.screenshot(&format!("{}-audit", case.role));

        // Filter through the form: the burst of failed sign-ins from one address.
        browser.fill("#f-ip", BURST_IP);
        browser.script("document.getElementById('f-outcome').value = 'failure';");
        browser.click(".filters button[type=submit]");
        assert!(browser.wait_until(Duration::from_secs(5), |b| {
            b.url().contains("outcome=failure")
        }));
        // Empty fields stay out of the shared URL.
        assert!(
            browser
                .url()
                .ends_with("/audit?outcome=failure&ip=198.51.100.66"),
            "{}",
            browser.url()
        );
        let cells = strings(browser.script(
            "return Array.from(document.querySelectorAll('#rows tr')).map(r => r.innerText);",
        ));
        assert!(
            cells.len() >= 20,
            "{}: {} burst rows",
            case.role,
            cells.len()
        );
        assert!(
            cells
                .iter()
                .all(|row| row.contains("failure") && row.contains(BURST_IP)),
            "{cells:?}"
        );
        browser.screenshot(&format!("{}-audit-filtered", case.role));

        // Export of exactly this filter, with the browser's own session.
        let href = browser.attribute("a[data-export=csv]", "href");
        assert!(
            href.contains("outcome=failure") && href.contains("ip=198.51.100.66"),
            "{href}"
        );
        let path = href.trim_start_matches(&base).to_string();
        let cookie = format!(
            "logvault_session={}",
            browser.cookie("logvault_session").expect("session cookie")
        );
        let export = http::request(&server.addr, "GET", &path, &[("Cookie", &cookie)], None)
            .expect("export");
        assert_eq!(export.status, 200, "{}", export.body);
        assert!(
            export
                .header("content-type")
                .unwrap_or("")
                .starts_with("text/csv")
        );
        let lines: Vec<&str> = export.body.lines().collect();
        assert!(
            lines[0].starts_with("seq,") && lines.len() > cells.len(),
            "{}",
            lines.len()
        );
        assert!(
            lines[1..].iter().all(|line| line.contains(BURST_IP)),
            "export rows match the filter"
        );

        // Older pages keep the filter and go back in time.
        browser.goto(&format!("{base}/audit?outcome=failure"));
        let last_seq: u64 = browser
            .attribute("#rows tr:last-child", "data-seq")
            .parse()
            .expect("seq");
        browser.click("#older");
        assert!(browser.wait_until(Duration::from_secs(5), |b| b.url().contains("cursor=")));
        let first_seq: u64 = browser
            .attribute("#rows tr:first-child", "data-seq")
            .parse()
            .expect("seq");
        assert!(first_seq < last_seq, "{first_seq} after {last_seq}");
        assert!(browser.url().contains("outcome=failure"));

        // The detail view of an event.
        browser.click("#rows tr:first-child a");
        assert!(browser.wait_until(Duration::from_secs(5), |b| b.url().contains("/audit/")));
        let detail = browser.text("main");
        for needle in [
            "Leaf hash",
            "leaf hash matches",
            "account_seq",
            "user.login",
            "failure",
        ] {
            assert!(
                detail.contains(needle),
                "{}: detail lacks {needle}",
                case.role
            );
        }
        browser.screenshot(&format!("{}-detail", case.role));

        browser.goto(&format!("{base}/threat"));
        assert_eq!(browser.all("#rows tr").len(), 50);
        browser.screenshot(&format!("{}-threat", case.role));
        browser.goto(&format!(
            "{base}/trends?group_by=version&range=30d&interval=day"
        ));
        assert!(browser.text("#trend-table").contains("ios-sdk 4.3.0"));
        browser.screenshot(&format!("{}-trends", case.role));

        // The Problems page: the demo's threat events as error groups, each with its
        // sparkline, linking to the threat log filtered to the group's events, all in scope.
        browser.goto(&format!("{base}/problems?sort=count"));
        let problems = browser.all("#problems tbody tr");
        assert!(!problems.is_empty(), "{}: no problems listed", case.role);
        assert_eq!(
            browser.all("#problems svg.sparkline").len(),
            problems.len(),
            "{}: a sparkline per problem",
            case.role
        );
        let source = browser.source();
        for account in DEMO_ACCOUNTS.iter().filter(|a| !in_scope(case.role, a)) {
            assert!(
                !source.contains(account),
                "{}: {account} on the Problems page",
                case.role
            );
        }
        browser.screenshot(&format!("{}-problems", case.role));
        browser.click("#problems tbody tr:first-child a.problem");
        assert!(
            browser.wait_until(Duration::from_secs(10), |b| b
                .url()
                .contains("fingerprint=")),
            "{}: the problem's link leads to its events: {}",
            case.role,
            browser.url()
        );
        assert!(
            !browser.all("#rows tr").is_empty(),
            "{}: the problem's events",
            case.role
        );
        let source = browser.source();
        for account in DEMO_ACCOUNTS.iter().filter(|a| !in_scope(case.role, a)) {
            assert!(
                !source.contains(account),
                "{}: {account} among a problem's events",
                case.role
            );
        }
        browser.screenshot(&format!("{}-problem-events", case.role));

        // What this role must not reach looks like nothing at all.
        if let Some(foreign) = case.foreign {
            let admin_key = credentials["admin"]["key"].as_str().expect("admin key");
            let listed = server.get(
                &format!("/v1/audit-events?account_id={foreign}&limit=1"),
                admin_key,
            );
            let id = listed.json()["data"][0]["id"]
                .as_str()
                .expect("an event")
                .to_string();
            for url in [
                format!("{base}/audit/{id}?account_id={foreign}"),
                format!("{base}/audit/{id}"),
                format!("{base}/audit?account_id={foreign}"),
                format!("{base}/audit/no-such-event"),
            ] {
                browser.goto(&url);
                assert_eq!(browser.text("h1"), "Not found", "{}: {url}", case.role);
            }
            browser.screenshot(&format!("{}-not-found", case.role));
        }

        // Live tail: an event ingested now appears without a reload.
        let action = format!("browser.tail.{}", case.role);
        browser.goto(&format!("{base}/audit?action={action}"));
        assert!(!browser.all("#empty").is_empty(), "an empty state first");
        browser.click("#tail-toggle");
        assert!(browser.wait_until(Duration::from_secs(5), |b| {
            b.text("#tail-status").contains("Live tail is on")
        }));
        let event = json!({"id": format!("tail-{}", case.role), "action": action, "outcome": "success",
            "actor": {"id": "usr_tail", "type": "user"}, "origin": {"ip": "192.0.2.10"}});
        let ingested = server.request("POST", "/v1/audit-events", Some(key), Some(&event));
        assert!(ingested.is_success(), "{}", ingested.body);
        assert!(
            browser.wait_until(Duration::from_secs(10), |b| !b.all("#rows tr").is_empty()),
            "{}: the tail never showed the new event",
            case.role
        );
        assert!(browser.text("#rows").contains("192.0.2.10"));
        browser.screenshot(&format!("{}-tail", case.role));

        if case.role == "merchant" {
            browser.resize(390, 844);
            browser.goto(&format!("{base}/"));
            browser.screenshot("merchant-overview-phone");
            browser.goto(&format!("{base}/audit"));
            browser.screenshot("merchant-audit-phone");
            browser.resize(1280, 900);
        }
        browser.click("form[action='/logout'] button");
        assert!(browser.wait_until(Duration::from_secs(5), |b| b.url().ends_with("/login")));
    }
    eprintln!("screenshots in {}", screenshot_dir().display());
}
