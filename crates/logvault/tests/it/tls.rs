//! `logvault serve --tls-cert/--tls-key` end to end: HTTPS with a certificate made here,
//! cookies marked `Secure`, a certificate that cannot be used stopping the start, and
//! `logvault users set-password` recorded and readable over HTTPS.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::server::{Server, command, temp_data_dir};

/// A self-signed certificate for `localhost`, written as PEM files beside the data directory.
fn write_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("write the certificate");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write the key");
    (cert, key)
}

/// `curl` over HTTPS trusting only `cert`: the response head and body.
fn curl(server: &Server, cert: &Path, path: &str, headers: &[&str]) -> String {
    let port = server.addr.rsplit(':').next().expect("port");
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--include", "--max-time", "30"])
        .arg("--cacert")
        .arg(cert)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    for header in headers {
        command.args(["--header", header]);
    }
    let output = command
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the binary with `stdin` on its standard input; stdout as JSON.
fn with_stdin(args: &[&str], stdin: &str) -> Value {
    let mut child = command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run logvault");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "logvault {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[test]
fn serves_https_with_secure_cookies_and_records_password_changes() {
    let (_tmp, data_dir) = temp_data_dir();
    let (cert, key) = write_certificate(data_dir.parent().expect("parent"));
    let (cert_text, key_text) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
    let server = Server::start(&data_dir, &["--tls-cert", cert_text, "--tls-key", key_text]);
    assert!(
        server.scheme_is_https(),
        "the server says it listens on https://"
    );

    assert!(curl(&server, &cert, "/healthz", &[]).starts_with("HTTP/1.1 200"));
    let login = curl(&server, &cert, "/login", &[]);
    let cookie = login
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {login}"));
    for attribute in ["; Secure", "; HttpOnly", "; SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }

    let dir = data_dir.to_str().expect("utf-8");
    with_stdin(
        &[
            "users",
            "create",
            "--username",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            dir,
        ],
        "first password, long enough\n",
    );
    let changed = with_stdin(
        &[
            "users",
            "set-password",
            "--username",
            "alice",
            "--password-stdin",
            "--data-dir",
            dir,
        ],
        "second password, long enough\n",
    );
    assert_eq!(changed["username"], "alice");
    assert_eq!(changed["sessions_ended"], 0);
    assert!(
        changed.get("password").is_none(),
        "a given password is not printed"
    );
    let generated = with_stdin(
        &[
            "users",
            "set-password",
            "--username",
            "alice",
            "--data-dir",
            dir,
        ],
        "",
    );
    assert!(
        generated["password"]
            .as_str()
            .is_some_and(|p| p.len() >= 12)
    );
    let authorization = format!("Authorization: Bearer {}", server.admin_key());
    let events = curl(
        &server,
        &cert,
        "/v1/audit-events?account_id=platform&action=user.password_changed",
        &[&authorization],
    );
    let body = events.split("\r\n\r\n").nth(1).expect("a body");
    let events: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(events["data"].as_array().map(Vec::len), Some(2), "{events}");
    assert_eq!(events["data"][0]["metadata"]["username"], "alice");
}

#[test]
fn unusable_certificates_and_unknown_users_fail_clearly() {
    let (_tmp, data_dir) = temp_data_dir();
    let dir = data_dir.to_str().expect("utf-8");
    let missing = data_dir.with_extension("missing.pem");
    let missing = missing.to_str().expect("utf-8");
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir,
                "--tls-cert",
                missing,
                "--tls-key",
                missing,
            ],
            "missing.pem",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir,
                "--tls-cert",
                missing,
            ],
            "--tls-key",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir,
                "--frame-ancestors",
                "https://a.example; script-src *",
            ],
            "frame-ancestors",
        ),
        (
            &[
                "users",
                "set-password",
                "--username",
                "nobody",
                "--data-dir",
                dir,
            ],
            "no user is named \"nobody\"",
        ),
    ];
    for (args, expected) in cases {
        let output = command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run logvault");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
