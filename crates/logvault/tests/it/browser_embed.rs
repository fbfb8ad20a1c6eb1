//! The embedded Logs page in headless Chromium, as a partner would use it: the service serves
//! HTTPS (the embedded cookie is `SameSite=None; Secure`); a partner page served from another
//! loopback origin (`http://localhost:PORT`, another site than `https://127.0.0.1`) frames
//! `/embed?token=…` with a token its backend minted. The merchant's user sees that merchant's
//! logs only, in the partner's name and without the outer navigation; the view's reads are
//! `logs.viewed` by that user; a reused token and a revoked view answer their error pages
//! inside the frame; a page on an origin the partner did not register cannot frame it; a
//! partner cannot mint for another partner's merchant; over plain HTTP the exchange is refused
//! and the token is not spent.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::browser_support::{Browser, browser_available};
use crate::server::{Server, cli, temp_data_dir};

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

/// A self-signed certificate for `127.0.0.1` and `localhost`, as PEM files in `dir`.
fn write_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".into()])
            .expect("certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("write the certificate");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write the key");
    (cert, key)
}

/// One HTTPS request with curl trusting only `cert`: status, headers (lower-case) and body.
fn curl(
    base: &str,
    cert: &Path,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, String, String) {
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--include", "--max-time", "30"])
        .arg("--cacert")
        .arg(cert)
        .args(["--request", method]);
    if let Some(key) = key {
        command.args(["--header", &format!("Authorization: Bearer {key}")]);
    }
    if let Some(body) = body {
        command
            .args(["--header", "Content-Type: application/json"])
            .args(["--data", &body.to_string()]);
    }
    let output = command
        .arg(format!("{base}{path}"))
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn create_key(dir: &str, role: &str, account: &str, permissions: &str) -> String {
    let mut args = vec![
        "keys",
        "create",
        "--role",
        role,
        "--permissions",
        permissions,
        "--data-dir",
        dir,
    ];
    if role != "admin" {
        args.extend(["--account", account]);
    }
    let output = cli(&args);
    assert!(output.status.success(), "{output:?}");
    json_of(&String::from_utf8_lossy(&output.stdout))["key"]
        .as_str()
        .expect("key")
        .to_string()
}

fn create_account(dir: &str, kind: &str, id: &str, partner: Option<&str>) {
    let mut args = vec![
        "accounts",
        "create",
        "--kind",
        kind,
        "--id",
        id,
        "--name",
        id,
        "--data-dir",
        dir,
    ];
    if let Some(partner) = partner {
        args.extend(["--partner", partner]);
    }
    let output = cli(&args);
    assert!(output.status.success(), "{output:?}");
}

/// A partner's web page: plain HTTP on its own port, answering every request with the HTML
/// `page` holds at that moment.
struct PartnerPage {
    origin: String,
    page: Arc<Mutex<String>>,
}

impl PartnerPage {
    fn start() -> PartnerPage {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let page = Arc::new(Mutex::new(String::new()));
        let served = page.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let html = served.lock().expect("page").clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
            }
        });
        PartnerPage {
            origin: format!("http://localhost:{port}"),
            page,
        }
    }

    /// The partner's page framing `src`.
    fn frame(&self, src: &str) {
        *self.page.lock().expect("page") = format!(
            "<!doctype html><title>Partner dashboard</title><h1>Partner dashboard</h1>\
             <iframe id=\"logs\" src=\"{src}\" width=\"1100\" height=\"700\"></iframe>"
        );
    }
}

/// Opens the partner page and enters its frame once it has loaded something.
fn open_framed(browser: &Browser, partner: &PartnerPage, src: &str) {
    partner.frame(src);
    browser.goto(&format!("{}/", partner.origin));
    browser.enter_frame("#logs");
}

#[test]
fn a_partner_page_frames_the_view_of_one_merchant() {
    if !available() {
        return;
    }
    let (_temp, data_dir) = temp_data_dir();
    let (cert, key) = write_certificate(data_dir.parent().expect("parent"));
    let dir = data_dir.to_str().expect("utf-8");
    create_account(dir, "partner", "par_emb_a", None);
    create_account(dir, "merchant", "mer_emb_a1", Some("par_emb_a"));
    create_account(dir, "merchant", "mer_emb_a2", Some("par_emb_a"));
    create_account(dir, "partner", "par_emb_b", None);
    create_account(dir, "merchant", "mer_emb_b1", Some("par_emb_b"));
    let partner_a = create_key(dir, "partner", "par_emb_a", "ingest,read,embed");
    let partner_b = create_key(dir, "partner", "par_emb_b", "read,embed");
    let no_embed = create_key(dir, "partner", "par_emb_a", "read");
    let merchant = create_key(dir, "merchant", "mer_emb_a1", "read,embed");
    let admin = create_key(dir, "admin", "platform", "read");
    let server = Server::start(
        &data_dir,
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
    );
    assert!(server.scheme_is_https());
    let base = format!("https://{}", server.addr);
    let call = |method: &str, path: &str, key: &str, body: Option<Value>| {
        curl(&base, &cert, method, path, Some(key), body.as_ref())
    };

    // Each merchant's own events, with a word only it has.
    for (account, word) in [("mer_emb_a1", "only-a1"), ("mer_emb_a2", "only-a2")] {
        let event = json!({"account_id": account, "action": "payout.created", "outcome": "success",
            "actor": {"id": format!("{word}-actor"), "type": "user"}, "reason": word});
        let (status, _, body) = call("POST", "/v1/audit-events", &partner_a, Some(event));
        assert_eq!(status, 201, "{body}");
    }

    let registered = PartnerPage::start();
    let unregistered = PartnerPage::start();
    let settings = json!({"frame_origins": [registered.origin],
        "brand": {"name": "Acme Pay", "accent": "#FF6600", "background": "#202020"}});
    let (status, _, body) = call(
        "PUT",
        "/v1/embed-settings/par_emb_a",
        &partner_a,
        Some(settings.clone()),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["brand"]["accent"], "#ff6600");
    // Another partner cannot set them, nor can a colour carry CSS.
    let (status, _, _) = call(
        "PUT",
        "/v1/embed-settings/par_emb_a",
        &partner_b,
        Some(settings),
    );
    assert_eq!(status, 404);
    let (status, head, _) = call(
        "PUT",
        "/v1/embed-settings/par_emb_a",
        &partner_a,
        Some(json!({"frame_origins": [], "brand": {"accent": "red;}body{display:none"}})),
    );
    assert_eq!(status, 400);
    assert!(head.contains("application/problem+json"), "{head}");

    let mint = |key: &str, account: &str| {
        call(
            "POST",
            "/v1/viewer-tokens",
            key,
            Some(json!({"account_id": account, "actor_id": "merchant-user-7",
                "actor_name": "Grace Hopper", "view": {"audit": true, "threat": false}})),
        )
    };
    // Minting keeps to the caller's scope and needs the permission.
    for (key, account, expected) in [
        (&partner_b, "mer_emb_a1", 404),
        (&partner_a, "mer_emb_b1", 404),
        (&no_embed, "mer_emb_a1", 403),
        (&merchant, "mer_emb_a1", 403),
    ] {
        let (status, head, body) = mint(key, account);
        assert_eq!(status, expected, "{account}: {body}");
        assert!(head.contains("application/problem+json"), "{head}");
    }
    let (status, _, body) = mint(&partner_a, "mer_emb_a1");
    assert_eq!(status, 201, "{body}");
    let minted = json_of(&body);
    let url = format!("{base}{}", minted["url"].as_str().expect("url"));
    assert_eq!(minted["status"], "unused");

    let browser = Browser::start_with(&["--ignore-certificate-errors"]);
    open_framed(&browser, &registered, &url);
    assert!(
        browser.wait_until(Duration::from_secs(15), |b| b.source().contains("only-a1")),
        "the framed view shows the merchant's events: {}",
        browser.source()
    );
    let source = browser.source();
    assert!(
        !source.contains("only-a2"),
        "another merchant's events leaked"
    );
    assert_eq!(browser.text("#partner-brand"), "Acme Pay");
    assert_eq!(browser.text("#viewer"), "Grace Hopper");
    assert!(
        browser
            .all("a[href='/trends'], a[href='/'], form[action='/logout']")
            .is_empty(),
        "the compact layout has no outer navigation"
    );
    assert!(
        browser.all("a[href='/threat']").is_empty(),
        "threat was not granted"
    );
    assert!(
        browser.all("[data-export]").is_empty(),
        "exports were not granted"
    );
    let background = browser
        .script("return getComputedStyle(document.querySelector('header.top')).backgroundColor;");
    assert_eq!(background, json!("rgb(32, 32, 32)"), "the partner's colour");
    // Inside the view the tabs it does not grant are not there.
    browser.leave_frame();
    browser.screenshot("embed-framed");
    browser.enter_frame("#logs");
    browser.script("location.href = '/threat';");
    assert!(
        browser.wait_until(Duration::from_secs(10), |b| b
            .source()
            .contains("Not found")),
        "{}",
        browser.source()
    );
    browser.leave_frame();
    // The embedded session is not a session outside the partner's page (its cookie is
    // partitioned under the partner's site): a top-level visit must sign in.
    browser.goto(&format!("{base}/audit"));
    assert!(
        browser.url().ends_with("/login"),
        "top-level visit: {}",
        browser.url()
    );

    // The view's reads are recorded with the merchant's user as the actor.
    let viewed = |browser_reads: &str| {
        let (_, _, body) = call(
            "GET",
            &format!(
                "/v1/audit-events?account_id=mer_emb_a1&action=logs.viewed&limit=100&{browser_reads}"
            ),
            &admin,
            None,
        );
        json_of(&body)["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    // Reads are recorded in the background: wait for the view's.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut recorded = viewed("");
    while !recorded
        .iter()
        .any(|e| e["actor"]["id"] == "merchant-user-7")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
        recorded = viewed("");
    }
    let by_user = recorded
        .iter()
        .find(|e| e["actor"]["id"] == "merchant-user-7")
        .unwrap_or_else(|| panic!("no logs.viewed by the end user: {recorded:?}"));
    assert_eq!(by_user["actor"]["name"], "Grace Hopper");
    assert_eq!(by_user["metadata"]["view_id"], minted["id"]);
    let (_, _, body) = call(
        "GET",
        &format!("/v1/viewer-tokens/{}", minted["id"].as_str().expect("id")),
        &partner_a,
        None,
    );
    assert_eq!(json_of(&body)["status"], "exchanged");

    // The same token again: refused, with a page that says why, inside the frame.
    open_framed(&browser, &registered, &url);
    assert!(
        browser.wait_until(Duration::from_secs(10), |b| b
            .source()
            .contains("already used")),
        "a reused token is refused: {}",
        browser.source()
    );
    assert!(!browser.source().contains("only-a1"));
    browser.leave_frame();

    // A page on an origin the partner did not register cannot frame a fresh view.
    let (_, _, body) = mint(&partner_a, "mer_emb_a1");
    let fresh = format!("{base}{}", json_of(&body)["url"].as_str().expect("url"));
    open_framed(&browser, &unregistered, &fresh);
    std::thread::sleep(Duration::from_millis(1500));
    let framed_url = browser.script("return location.href;");
    assert!(
        !browser.source().contains("only-a1"),
        "an unregistered origin framed the view ({framed_url})"
    );
    assert_eq!(
        framed_url,
        json!("chrome-error://chromewebdata/"),
        "Chromium blocked the frame"
    );
    browser.leave_frame();
    let (_, head, _) = curl(&base, &cert, "GET", "/audit", None, None);
    assert!(
        head.contains("frame-ancestors 'none'"),
        "pages outside a view keep frame-ancestors 'none': {head}"
    );

    // Revoking the token ends the view: its next page says so, inside the frame.
    let (_, _, body) = mint(&partner_a, "mer_emb_a1");
    let revocable = json_of(&body);
    let revocable_url = format!("{base}{}", revocable["url"].as_str().expect("url"));
    open_framed(&browser, &registered, &revocable_url);
    assert!(browser.wait_until(Duration::from_secs(10), |b| b.source().contains("only-a1")));
    let (status, _, body) = call(
        "DELETE",
        &format!(
            "/v1/viewer-tokens/{}",
            revocable["id"].as_str().expect("id")
        ),
        &partner_a,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["status"], "revoked");
    browser.script("location.reload();");
    assert!(
        browser.wait_until(Duration::from_secs(10), |b| b
            .source()
            .contains("View ended")),
        "a revoked view ends: {}",
        browser.source()
    );
    assert!(!browser.source().contains("only-a1"));
    browser.leave_frame();

    // Minting and revoking are audit events on the merchant's account.
    let (_, _, body) = call(
        "GET",
        "/v1/audit-events?account_id=mer_emb_a1&action=viewer_token.revoked",
        &partner_a,
        None,
    );
    assert_eq!(json_of(&body)["data"].as_array().map(Vec::len), Some(1));
    let (_, _, body) = call("GET", "/v1/viewer-tokens", &partner_b, None);
    assert_eq!(
        json_of(&body)["data"],
        json!([]),
        "another partner lists none of them"
    );
}

#[test]
fn over_plain_http_the_exchange_is_refused_and_the_token_kept() {
    let (_temp, data_dir) = temp_data_dir();
    let dir = data_dir.to_str().expect("utf-8");
    create_account(dir, "merchant", "mer_plain", None);
    let server = Server::start(&data_dir, &[]);
    let admin = server.admin_key();
    let minted = server.request(
        "POST",
        "/v1/viewer-tokens",
        Some(&admin),
        Some(&json!({"account_id": "mer_plain", "actor_id": "u", "ttl_seconds": 60})),
    );
    assert_eq!(minted.status, 403, "an admin key without embed: {minted:?}");
    let embedder = create_key(dir, "admin", "platform", "read,embed");
    let minted = server.request(
        "POST",
        "/v1/viewer-tokens",
        Some(&embedder),
        Some(&json!({"account_id": "mer_plain", "actor_id": "u", "ttl_seconds": 3601})),
    );
    assert_eq!(minted.status, 400, "past the hour: {minted:?}");
    let minted = server.request(
        "POST",
        "/v1/viewer-tokens",
        Some(&embedder),
        Some(&json!({"account_id": "mer_plain", "actor_id": "u", "ttl_seconds": 60})),
    );
    assert_eq!(minted.status, 201, "{minted:?}");
    let minted = minted.json();
    let page = server.request("GET", minted["url"].as_str().expect("url"), None, None);
    assert_eq!(page.status, 400);
    assert!(page.body.contains("HTTPS"), "{}", page.body);
    assert!(page.header("set-cookie").is_none());
    let token = server.get(
        &format!("/v1/viewer-tokens/{}", minted["id"].as_str().expect("id")),
        &embedder,
    );
    assert_eq!(token.json()["status"], "unused", "the token was not spent");
}

#[test]
fn an_expired_token_answers_its_page_and_cannot_be_exchanged() {
    let (_temp, data_dir) = temp_data_dir();
    let (cert, key) = write_certificate(data_dir.parent().expect("parent"));
    let dir = data_dir.to_str().expect("utf-8");
    create_account(dir, "partner", "par_exp", None);
    create_account(dir, "merchant", "mer_exp", Some("par_exp"));
    let partner = create_key(dir, "partner", "par_exp", "read,embed");
    let server = Server::start(
        &data_dir,
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
    );
    let base = format!("https://{}", server.addr);
    let (status, _, body) = curl(
        &base,
        &cert,
        "POST",
        "/v1/viewer-tokens",
        Some(&partner),
        Some(&json!({"account_id": "mer_exp", "actor_id": "u", "ttl_seconds": 1})),
    );
    assert_eq!(status, 201, "{body}");
    let minted = json_of(&body);
    std::thread::sleep(Duration::from_millis(1300));
    let url = minted["url"].as_str().expect("url");
    let (status, head, body) = curl(&base, &cert, "GET", url, None, None);
    assert_eq!(status, 410, "{head}");
    assert!(body.contains("Link expired"), "{body}");
    assert!(!head.contains("set-cookie"), "{head}");
    let (_, _, body) = curl(
        &base,
        &cert,
        "GET",
        &format!("/v1/viewer-tokens/{}", minted["id"].as_str().expect("id")),
        Some(&partner),
        None,
    );
    assert_eq!(json_of(&body)["status"], "expired");
    // A token this service never issued is not valid either.
    let (status, _, body) = curl(
        &base,
        &cert,
        "GET",
        &format!("/embed?token={}", "ab".repeat(32)),
        None,
        None,
    );
    assert_eq!(status, 404);
    assert!(body.contains("not valid"), "{body}");
}
