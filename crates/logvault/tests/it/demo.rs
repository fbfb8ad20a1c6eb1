//! `serve --demo`: private credentials, ≥ 50,000 events across partners, scoped keys, the
//! failed-login burst and the SDK error spike, and no second seeding on restart.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::server::{Server, cli, temp_data_dir};

/// The demo's attacking address (see `src/demo.rs`).
const BURST_IP: &str = "198.51.100.66";
const SPIKE_VERSION: &str = "ios-sdk 4.3.0";

/// Every audit and threat event `key` can read.
fn all_events(server: &Server, key: &str) -> Vec<Value> {
    let mut events = server.list_all(key, "threat", "");
    events.extend(server.list_all(key, "audit", ""));
    events
}

fn account_of(event: &Value) -> String {
    event["account_id"]
        .as_str()
        .expect("account_id")
        .to_string()
}

#[test]
fn demo_seeds_once_with_scoped_credentials_and_stories() {
    let (_temp, data_dir) = temp_data_dir();
    let mut server = Server::start(&data_dir, &["--demo"]);

    let path = data_dir.join("demo-credentials.json");
    let mode = std::fs::metadata(&path)
        .expect("demo-credentials.json exists")
        .permissions()
        .mode();
    assert_eq!(
        format!("{:o}", mode & 0o777),
        "600",
        "demo-credentials.json mode"
    );
    let credentials_text = std::fs::read_to_string(&path).expect("read credentials");
    let credentials: Value = serde_json::from_str(&credentials_text).expect("credentials JSON");
    let expected_accounts = [
        ("admin", "platform"),
        ("partner", "par_acme"),
        ("merchant", "mer_acme_shop"),
    ];
    for (role, account) in expected_accounts {
        let entry = &credentials[role];
        assert_eq!(entry["account_id"], account, "{role}: {entry}");
        let key = entry["key"].as_str().unwrap_or_default();
        assert!(key.starts_with("lv_"), "{role}: {entry}");
    }
    let key = |role: &str| credentials[role]["key"].as_str().expect("key").to_string();

    // Which partner owns which account, from the CLI.
    let listed = cli(&[
        "accounts",
        "list",
        "--data-dir",
        data_dir.to_str().expect("UTF-8"),
    ]);
    assert!(listed.status.success());
    let accounts: Value = serde_json::from_slice(&listed.stdout).expect("accounts JSON");
    let partner_of: BTreeMap<String, Option<String>> = accounts
        .as_array()
        .expect("array")
        .iter()
        .map(|account| {
            (
                account["id"].as_str().expect("id").to_string(),
                account["partner_id"].as_str().map(str::to_string),
            )
        })
        .collect();

    // Admin: everything, across both partners and the platform-direct merchant.
    let admin_events = all_events(&server, &key("admin"));
    let n_admin = admin_events.len();
    assert!(n_admin >= 50_000, "the demo holds only {n_admin} events");
    let admin_accounts: BTreeSet<String> = admin_events.iter().map(account_of).collect();
    let partners_seen: BTreeSet<&String> = admin_accounts
        .iter()
        .filter_map(|account| partner_of.get(account).and_then(Option::as_ref))
        .collect();
    assert!(
        partners_seen.len() >= 2,
        "admin sees merchants of {partners_seen:?} only"
    );
    assert!(
        admin_accounts
            .iter()
            .any(|account| account.starts_with("mer_") && partner_of.get(account) == Some(&None)),
        "admin sees no platform-direct merchant: {admin_accounts:?}"
    );

    // Partner: par_acme and its merchants only — but all of theirs.
    let acme_family = |account: &String| {
        account == "par_acme" || partner_of.get(account) == Some(&Some("par_acme".to_string()))
    };
    let partner_events = all_events(&server, &key("partner"));
    let partner_accounts: BTreeSet<String> = partner_events.iter().map(account_of).collect();
    let outside: Vec<&String> = partner_accounts
        .iter()
        .filter(|a| !acme_family(a))
        .collect();
    assert!(outside.is_empty(), "the partner key reads {outside:?}");
    let n_acme_merchant_events = admin_events
        .iter()
        .filter(|event| account_of(event).starts_with("mer_") && acme_family(&account_of(event)))
        .count();
    let n_partner_merchant_events = partner_events
        .iter()
        .filter(|event| account_of(event).starts_with("mer_"))
        .count();
    assert_eq!(
        n_partner_merchant_events, n_acme_merchant_events,
        "the partner key must see every event of its merchants"
    );
    assert!(partner_accounts.len() >= 3, "{partner_accounts:?}");

    // Merchant: mer_acme_shop only.
    let merchant_events = all_events(&server, &key("merchant"));
    let merchant_accounts: BTreeSet<String> = merchant_events.iter().map(account_of).collect();
    assert_eq!(
        merchant_accounts,
        BTreeSet::from(["mer_acme_shop".to_string()]),
        "the merchant key reads other accounts"
    );
    assert!(merchant_events.len() >= 10_000, "{}", merchant_events.len());

    // Out-of-scope accounts look like missing ones.
    for (role, account) in [
        ("partner", "mer_globex_books"),
        ("partner", "mer_corner_cafe"),
        ("merchant", "mer_acme_travel"),
        ("merchant", "par_acme"),
        ("partner", "platform"),
    ] {
        let response = server.get(
            &format!("/v1/audit-events?account_id={account}"),
            &key(role),
        );
        assert_eq!(
            response.status, 404,
            "{role} reading {account}: {}",
            response.body
        );
    }

    // The credential-stuffing story: many failed logins from one address.
    for role in ["admin", "partner", "merchant"] {
        let burst = server.list_all(
            &key(role),
            "audit",
            &format!("outcome=failure&ip={BURST_IP}"),
        );
        assert!(
            burst.len() >= 20,
            "{role}: only {} failed logins",
            burst.len()
        );
        for event in &burst {
            assert_eq!(event["outcome"], "failure", "{event}");
            assert_eq!(event["origin"]["ip"], BURST_IP, "{event}");
            assert_eq!(event["action"], "user.login", "{event}");
        }
    }

    // The SDK release story: ios-sdk 4.3.0 appears late and dominates daily errors.
    let trends = server.get(
        "/v1/threat-events/trends?group_by=version&interval=day",
        &key("admin"),
    );
    assert_eq!(trends.status, 200, "{}", trends.body);
    let trends = trends.json();
    let series = trends["series"].as_array().expect("series");
    let peak = |version: &str| -> u64 {
        series
            .iter()
            .filter(|line| line["key"] == version)
            .flat_map(|line| line["points"].as_array().cloned().unwrap_or_default())
            .map(|point| point["count"].as_u64().unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    let spike = peak(SPIKE_VERSION);
    let days_with_spike = series
        .iter()
        .filter(|line| line["key"] == SPIKE_VERSION)
        .map(|line| line["points"].as_array().map_or(0, Vec::len))
        .sum::<usize>();
    assert!(spike > 0, "no {SPIKE_VERSION} in the trends: {trends}");
    assert!(
        (5..=15).contains(&days_with_spike),
        "{SPIKE_VERSION} should appear in the last ~10 days only, not {days_with_spike}"
    );
    for line in series {
        let version = line["key"].as_str().unwrap_or_default();
        if version != SPIKE_VERSION {
            assert!(
                peak(version) < spike,
                "{version} peaks at {} ≥ the {SPIKE_VERSION} spike {spike}",
                peak(version)
            );
        }
    }

    // A second start does not seed again, and keeps the credentials.
    let exit = server.terminate(std::time::Duration::from_secs(30));
    assert!(exit.success(), "SIGTERM exit status {exit:?}");
    let server = Server::start(&data_dir, &["--demo"]);
    assert!(
        !server
            .startup_lines
            .iter()
            .any(|line| line.contains("demo credentials")),
        "{:?}",
        server.startup_lines
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read credentials"),
        credentials_text,
        "a second --demo start rewrote the credentials"
    );
    let n_again = all_events(&server, &key("admin")).len();
    // Only the `logs.viewed` events of the reads above may have been added.
    assert!(
        n_again >= n_admin && n_again < n_admin + 1_000,
        "events went from {n_admin} to {n_again} after a second --demo start"
    );
}
