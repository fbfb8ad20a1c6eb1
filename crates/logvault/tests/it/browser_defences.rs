//! The page's defences in headless Chromium: event text carrying markup and script stays
//! text on every page and in the live tail, the Content-Security-Policy stops inline handlers
//! even if markup got into the page, and framing is refused unless `--frame-ancestors`
//! allows it.

use std::time::Duration;

use serde_json::{Value, json};

use super::browser_support::{Browser, browser_available};
use crate::server::{Server, temp_data_dir};

/// Each sets `window.__ran` if it ever executes.
const HOSTILE: [&str; 3] = [
    "<img src=x onerror=\"window.__ran='img'\">",
    "<script>window.__ran='script'</script>",
    "<svg onload=\"window.__ran='svg'\"></svg>",
];

/// Whether the browser tests can run here; fails instead when they are required.
fn available() -> bool {
    match browser_available() {
        Ok(()) => true,
        Err(missing) if std::env::var("LOGVAULT_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("the browser tests must run here (LOGVAULT_TEST_REQUIRE_BROWSER=1): {missing}")
        }
        Err(missing) => {
            eprintln!("skipping the browser tests: {missing}");
            false
        }
    }
}

fn sign_in_merchant(browser: &Browser, base: &str, credentials: &Value) {
    let merchant = &credentials["merchant"];
    browser.goto(&format!("{base}/login"));
    browser.fill(
        "#username",
        merchant["username"].as_str().expect("username"),
    );
    browser.fill(
        "#password",
        merchant["password"].as_str().expect("password"),
    );
    browser.click("form[action='/login'] button[type=submit]");
    let home = format!("{base}/");
    assert!(browser.wait_until(Duration::from_secs(10), |b| b.url() == home));
}

fn nothing_ran(browser: &Browser) -> bool {
    browser.script("return window.__ran === undefined;") == json!(true)
}

#[test]
fn hostile_event_text_stays_text_and_framing_is_refused() {
    if !available() {
        return;
    }
    let (_temp, data_dir) = temp_data_dir();
    let server = Server::start(&data_dir, &["--demo"]);
    let credentials: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir.join("demo-credentials.json")).expect("credentials"),
    )
    .expect("credentials JSON");
    let key = credentials["merchant"]["key"].as_str().expect("key");
    let [img, script, svg] = HOSTILE;
    let threat = json!({"id": "evt-hostile-threat", "source": "sdk", "error_type": img, "message": script,
        "version": svg, "environment": img});
    let audit = json!({"id": "evt-hostile-audit", "action": "user.login", "outcome": "failure",
        "reason": script, "actor": {"id": "usr_x", "type": "user", "name": svg},
        "origin": {"ip": "192.0.2.99", "user_agent": img}});
    for (path, event) in [("/v1/threat-events", &threat), ("/v1/audit-events", &audit)] {
        let ingested = server.request("POST", path, Some(key), Some(event));
        assert!(ingested.is_success(), "{}", ingested.body);
    }

    let base = format!("http://{}", server.addr);
    let browser = Browser::start();
    sign_in_merchant(&browser, &base, &credentials);
    for page in [
        "/",
        "/threat",
        "/threat/evt-hostile-threat",
        "/audit",
        "/audit/evt-hostile-audit",
        "/trends?group_by=version",
        "/trends?group_by=environment",
        "/trends?group_by=error_type",
    ] {
        browser.goto(&format!("{base}{page}"));
        assert!(nothing_ran(&browser), "{page}: hostile text ran");
        let text = browser.text("main");
        assert!(
            HOSTILE.iter().any(|markup| text.contains(markup)),
            "{page} shows the markup as text: {text}"
        );
    }

    // In the live tail, rows arrive as HTML from the server and are inserted by the script.
    browser.goto(&format!("{base}/audit?action=user.login&outcome=failure"));
    browser.click("#tail-toggle");
    assert!(browser.wait_until(Duration::from_secs(5), |b| {
        b.text("#tail-status").contains("Live tail is on")
    }));
    let live = json!({"action": "user.login", "outcome": "failure", "reason": img,
        "actor": {"id": "usr_live", "type": "user"}, "origin": {"ip": "192.0.2.100"}});
    let ingested = server.request("POST", "/v1/audit-events", Some(key), Some(&live));
    assert!(ingested.is_success(), "{}", ingested.body);
    assert!(
        browser.wait_until(Duration::from_secs(10), |b| b
            .text("#rows")
            .contains("192.0.2.100")),
        "the tail never showed the new event"
    );
    assert!(nothing_ran(&browser), "the tail ran hostile text");

    // Even markup put into the page by other means cannot run: no inline handlers allowed.
    browser.script(
        "document.body.insertAdjacentHTML('beforeend', '<img src=\"/nope\" onerror=\"window.__ran=1\">');",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        nothing_ran(&browser),
        "an inline handler ran despite the policy"
    );

    // The page refuses to be framed, even by itself, unless the deployment allows it.
    let framed = |browser: &Browser, base: &str| -> bool {
        browser.goto(&format!("{base}/login"));
        browser.script(
            "const f = document.createElement('iframe'); f.id = 'framed'; \
             f.src = '/login'; document.body.appendChild(f);",
        );
        std::thread::sleep(Duration::from_millis(1500));
        browser.script(
            "const d = document.getElementById('framed').contentDocument; \
             return !!(d && d.getElementById('username'));",
        ) == json!(true)
    };
    assert!(
        !framed(&browser, &base),
        "framed with frame-ancestors 'none'"
    );
    let (_other_temp, other_dir) = temp_data_dir();
    let allowing = Server::start(&other_dir, &["--frame-ancestors", "'self'"]);
    assert!(
        framed(&browser, &format!("http://{}", allowing.addr)),
        "not framed with frame-ancestors 'self'"
    );
}
