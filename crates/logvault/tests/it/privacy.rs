//! Threat logs never expose customer data: secrets sent in events are scrubbed before they
//! reach the database files, the service's own log, or any response.

use std::time::Duration;

use serde_json::{Value, json};

use crate::server::{Server, temp_data_dir};

/// Raw secrets planted in events, and the placeholder kind each must leave behind.
const SECRETS: [(&str, &str); 6] = [
    ("4111 1111 1111 1111", "card"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key"),
    ("jane.doe@example.com", "email"),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt",
    ),
    ("hunter2hunter2", "password"),
    ("+44 20 7946 0958", "phone"),
];

fn contains_secret(haystack: &[u8]) -> Option<&'static str> {
    SECRETS.iter().map(|(secret, _)| *secret).find(|secret| {
        let plain = secret.as_bytes();
        let digits: Vec<u8> = plain.iter().copied().filter(u8::is_ascii_digit).collect();
        let compact_card = secret.starts_with("4111")
            && haystack
                .windows(digits.len())
                .any(|w| w == digits.as_slice());
        compact_card || haystack.windows(plain.len()).any(|w| w == plain)
    })
}

#[test]
fn secrets_never_reach_disk_logs_or_responses() {
    let (_guard, dir) = temp_data_dir();
    let mut server = Server::start(&dir, &[]);
    let key = server.admin_key();
    let event = json!({
        "id": "leak-1", "source": "api", "error_type": "CardError", "error_code": "E_CARD",
        "message": format!("charge failed for card {} (customer {}, phone {})", SECRETS[0].0, SECRETS[2].0, SECRETS[5].0),
        "stacktrace": format!("Authorization: Bearer {}\n  at pay()", SECRETS[3].0),
        "api": {"method": "POST", "path": format!("/v1/charges?api_key={}", SECRETS[1].0), "status": 402},
        "metadata": {"request": {"password": SECRETS[4].0, "note": "retry"}},
    });
    let created = server.request("POST", "/v1/threat-events", Some(&key), Some(&event));
    assert_eq!(created.status, 201, "{}", created.body);
    let audit = json!({"id": "leak-2", "action": "user.login", "outcome": "failure", "actor": {"id": "usr_1"},
        "metadata": {"password": SECRETS[4].0, "email": SECRETS[2].0}});
    assert_eq!(
        server
            .request("POST", "/v1/audit-events", Some(&key), Some(&audit))
            .status,
        201
    );
    // The NDJSON path, with the secrets in other fields.
    let ndjson = format!(
        "{}\n{}\n",
        json!({"id": "leak-4", "source": "sdk", "error_type": SECRETS[1].0, "message": "see metadata",
               "metadata": {"headers": {"cookie": SECRETS[3].0}, "list": [SECRETS[0].0, SECRETS[2].0]}}),
        json!({"id": "leak-5", "source": "sdk", "error_type": "E", "message": SECRETS[5].0, "sdk": {"name": "ios", "platform": "iOS"}})
    );
    let headers = [
        ("Content-Type", "application/x-ndjson"),
        ("Authorization", &*format!("Bearer {key}")),
    ];
    let via_ndjson = crate::http::request(
        &server.addr,
        "POST",
        "/v1/threat-events",
        &headers,
        Some(ndjson.as_bytes()),
    )
    .expect("ndjson");
    assert_eq!(via_ndjson.status, 201, "{}", via_ndjson.body);
    // A secret used as a field name comes back in the problem as a placeholder, not raw.
    let mut bad = event.clone();
    bad["id"] = "leak-3".into();
    bad[SECRETS[1].0] = 1.into();
    let refused = server.request("POST", "/v1/threat-events", Some(&key), Some(&bad));
    assert_eq!(refused.status, 400);

    let stored = server.get("/v1/threat-events/leak-1", &key);
    let stored_json: Value = stored.json();
    let redactions = &stored_json["redactions"];
    for (_, kind) in SECRETS.iter().filter(|(_, kind)| *kind != "password") {
        assert!(
            redactions[*kind].as_u64().unwrap_or(0) >= 1,
            "{kind} not in {redactions}"
        );
    }
    assert_eq!(stored_json["error_code"], "E_CARD", "useful fields survive");
    assert!(
        stored_json["message"]
            .as_str()
            .unwrap_or_default()
            .contains("…1111"),
        "cards keep their last four"
    );
    let responses = [
        created.body,
        refused.body,
        stored.body,
        server.get("/v1/audit-events/leak-2", &key).body,
        server.get("/v1/threat-events?q=charge", &key).body,
        server.get("/v1/audit-events?limit=1000", &key).body,
        server.get("/v1/threat-events?limit=1000", &key).body,
        server.get("/v1/threat-events/export?format=csv", &key).body,
        server
            .get("/v1/threat-events/export?format=ndjson", &key)
            .body,
        server.get("/v1/audit-events/export?format=csv", &key).body,
        via_ndjson.body,
    ];
    for body in &responses {
        assert_eq!(
            contains_secret(body.as_bytes()),
            None,
            "a response leaks: {body}"
        );
    }

    // The raw files while the server runs (the WAL holds the newest pages), then again after a
    // clean stop, together with everything the server wrote to stdout and stderr.
    check_files(&dir, &[]);
    assert!(server.terminate(Duration::from_secs(30)).success());
    let stdout = server.startup_lines.join("\n");
    assert_eq!(
        contains_secret(stdout.as_bytes()),
        None,
        "stdout leaks: {stdout}"
    );
    check_files(&dir, &[dir.with_extension("log")]);
}

/// No file of the data directory (database, WAL, keys) nor any of `extra` holds a secret.
fn check_files(dir: &std::path::Path, extra: &[std::path::PathBuf]) {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .expect("data dir")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("logvault.db")),
        "{files:?}"
    );
    files.extend(extra.iter().cloned());
    for file in files {
        let bytes = std::fs::read(&file).expect("read");
        assert_eq!(
            contains_secret(&bytes),
            None,
            "{} holds a raw secret",
            file.display()
        );
    }
}
