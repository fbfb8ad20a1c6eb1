//! `serve --demo`: on an empty store, seed accounts, keys and a month of realistic audit
//! and threat events (a failed-login burst from one address, an error spike after an SDK
//! release) so a newcomer has something to look at.

use std::path::Path;

use logvault_core::account::NewAccount;
use logvault_core::validate::{Limits, validate_event};
use logvault_core::{AccountKind, EventKind, Micros, NewEvent, Permissions, Role};
use logvault_store::Store;
use serde_json::{Value, json};

use crate::admin::{create_key, create_user};
use crate::rng::Rng;
use crate::serve::write_secret_file;

/// Events seeded by `--demo`.
const N_EVENTS: usize = 60_000;
const DAY: i64 = 86_400_000_000;
const CREDENTIALS_FILE: &str = "demo-credentials.json";

const PARTNERS: [(&str, &str); 2] = [
    ("par_acme", "Acme Payments"),
    ("par_globex", "Globex Commerce"),
];
const MERCHANTS: [(&str, Option<&str>, &str); 6] = [
    ("mer_acme_shop", Some("par_acme"), "Acme Shop"),
    ("mer_acme_travel", Some("par_acme"), "Acme Travel"),
    ("mer_acme_food", Some("par_acme"), "Acme Food"),
    ("mer_globex_books", Some("par_globex"), "Globex Books"),
    ("mer_globex_games", Some("par_globex"), "Globex Games"),
    ("mer_corner_cafe", None, "Corner Café"),
];

/// Seeds demo data unless the log already holds events (demo events are back-dated over the
/// last 30 days, which is only possible at the start of the log).
pub(crate) async fn seed_if_empty(store: &dyn Store, data_dir: &Path) -> anyhow::Result<()> {
    if store.log_size().await? > 0 {
        tracing::info!("--demo: the store already holds events; not seeding again");
        return Ok(());
    }
    for (id, name) in PARTNERS {
        let new = NewAccount {
            kind: AccountKind::Partner,
            partner_id: None,
            name: name.into(),
            id: Some(id.into()),
        };
        store.create_account(new).await?;
    }
    for (id, partner, name) in MERCHANTS {
        let new = NewAccount {
            kind: AccountKind::Merchant,
            partner_id: partner.map(str::to_string),
            name: name.into(),
            id: Some(id.into()),
        };
        store.create_account(new).await?;
    }
    let now = Micros::now();
    let start = Micros(now.0 - 30 * DAY);
    let mut rng = Rng(0x5EED_1065);
    let limits = Limits::default();
    let mut batch: Vec<NewEvent> = Vec::with_capacity(1000);
    for i in 0..N_EVENTS {
        let at = Micros(start.0 + (i as i64) * (30 * DAY) / N_EVENTS as i64);
        let (kind, value) = if rng.chance(67) {
            (EventKind::Audit, audit(&mut rng, at, start))
        } else {
            (EventKind::Threat, threat(&mut rng, at, start))
        };
        let account = value["account_id"]
            .as_str()
            .unwrap_or("mer_acme_shop")
            .to_string();
        let mut event = validate_event(kind, 0, &value, &account, &limits)
            .map_err(|problems| anyhow::anyhow!("demo event does not validate: {problems:?}"))?;
        event.demo_received_at = Some(at);
        batch.push(event);
        if batch.len() == 1000 {
            store.ingest(std::mem::take(&mut batch)).await?;
            eprint!("\rseeding demo events: {}/{N_EVENTS}", i + 1);
        }
    }
    if !batch.is_empty() {
        store.ingest(batch).await?;
    }
    eprintln!("\rseeded {N_EVENTS} demo events over the last 30 days");
    let permissions = Permissions::parse("ingest,read").map_err(anyhow::Error::msg)?;
    let mut credentials = serde_json::Map::new();
    for (role, account) in [
        (Role::Admin, None),
        (Role::Partner, Some("par_acme")),
        (Role::Merchant, Some("mer_acme_shop")),
    ] {
        let label = format!("demo {}", role.as_str());
        let (record, token) = create_key(
            store,
            role,
            account.map(str::to_string),
            permissions,
            Some(label),
        )
        .await?;
        let username = format!("demo-{}", role.as_str());
        let password = logvault_core::password::generate_password()?;
        create_user(
            store,
            &username,
            role,
            account.map(str::to_string),
            &password,
        )
        .await?;
        credentials.insert(
            role.as_str().into(),
            json!({"key": token, "key_id": record.key_id, "account_id": record.account_id,
                   "username": username, "password": password}),
        );
    }
    let credentials = Value::Object(credentials);
    let path = data_dir.join(CREDENTIALS_FILE);
    write_secret_file(&path, &serde_json::to_string_pretty(&credentials)?)?;

    println!(
        "demo credentials (also in {}):\n{}",
        path.display(),
        serde_json::to_string_pretty(&credentials)?
    );
    Ok(())
}

/// Merchant activity is skewed: the first merchants are much busier.
fn merchant(rng: &mut Rng) -> &'static str {
    let weights = [40, 20, 12, 12, 8, 8];
    let mut roll = rng.below(100);
    for (weight, (id, _, _)) in weights.iter().zip(MERCHANTS) {
        if roll < *weight {
            return id;
        }
        roll -= weight;
    }
    MERCHANTS[0].0
}

const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "merchant-backend/2.3 (+python-requests/2.32)",
];

fn audit(rng: &mut Rng, at: Micros, start: Micros) -> Value {
    // Day 25, 02:00-03:00: a credential-stuffing burst against one merchant from one address.
    let burst_start = start.0 + 25 * DAY + 2 * 3_600_000_000;
    if (burst_start..burst_start + 3_600_000_000).contains(&at.0) && rng.chance(80) {
        return json!({
            "account_id": "mer_acme_shop", "action": "user.login", "outcome": "failure",
            "reason": "bad_password",
            "actor": {"id": format!("usr_{}", 1000 + rng.below(400)), "type": "user"},
            "origin": {"ip": "198.51.100.66", "user_agent": "python-requests/2.31"},
            "request_id": format!("req_{:016x}", rng.next()),
        });
    }
    let account = merchant(rng);
    let user = format!("usr_{}", rng.below(300));
    let ip = format!("203.0.113.{}", 1 + rng.below(200));
    let (action, outcome, reason) = match rng.below(100) {
        0..=54 => ("user.login", "success", None),
        55..=69 => (
            "user.login",
            "failure",
            Some(*rng.pick(&["bad_password", "unknown_user", "mfa_failed", "locked_out"])),
        ),
        70..=84 => ("user.logout", "success", None),
        85..=89 => ("user.password_changed", "success", None),
        90..=93 => ("user.mfa_enabled", "success", None),
        94..=96 => ("api_key.created", "success", None),
        97..=98 => ("user.role_changed", "success", None),
        _ => ("api_key.revoked", "success", None),
    };
    let mut event = json!({
        "account_id": account, "action": action, "outcome": outcome,
        "actor": {"id": user, "type": "user"},
        "origin": {"ip": ip, "user_agent": *rng.pick(&USER_AGENTS)},
        "request_id": format!("req_{:016x}", rng.next()),
        "occurred_at": Micros(at.0 - 1000 * rng.below(800) as i64).to_rfc3339(),
        "metadata": {"mfa": rng.chance(60), "session": format!("web-{}", rng.below(5))},
    });
    if let Some(reason) = reason {
        event["reason"] = reason.into();
    }
    event
}

fn threat(rng: &mut Rng, at: Micros, start: Micros) -> Value {
    let account = merchant(rng);
    // ios-sdk 4.3.0 ships on day 20 and brings a spike of decoding errors.
    let released = at.0 >= start.0 + 20 * DAY;
    if released && rng.chance(45) {
        return json!({
            "account_id": account, "source": "sdk", "error_type": "ResponseDecodingError",
            "error_code": "E_DECODE", "message": "could not decode PaymentIntent: missing field `next_action`",
            "version": "ios-sdk 4.3.0", "environment": *rng.pick(&["production", "production", "sandbox"]),
            "sdk": {"name": "ios", "platform": "iOS 17.2"},
            "stacktrace": "PaymentSheet.confirm(_:) + 412\nAPIClient.decode<A>(_:) + 88",
        });
    }
    let (source, error_type, code, message) = *rng.pick(&[
        (
            "sdk",
            "NetworkTimeout",
            "E_TIMEOUT",
            "request timed out after 30s",
        ),
        (
            "sdk",
            "InvalidRequestError",
            "E_PARAM",
            "amount must be a positive integer",
        ),
        (
            "api",
            "AuthenticationError",
            "E_AUTH",
            "Invalid API key provided",
        ),
        (
            "api",
            "RateLimitError",
            "E_RATE",
            "too many requests; retry after 1s",
        ),
        (
            "api",
            "IdempotencyError",
            "E_IDEMPOTENCY",
            "keys for idempotent requests can only be used with the same parameters",
        ),
        (
            "sdk",
            "CardValidationError",
            "E_CARD",
            "card number failed validation",
        ),
    ]);
    let version = if source == "api" {
        *rng.pick(&["API 2024-06-01", "API 2025-03-15"])
    } else {
        *rng.pick(&[
            "ios-sdk 4.2.1",
            "android-sdk 3.10.0",
            "android-sdk 3.9.2",
            "web-sdk 2.1.0",
        ])
    };
    let mut event = json!({
        "account_id": account, "source": source, "error_type": error_type, "error_code": code,
        "message": message, "version": version,
        "environment": *rng.pick(&["production", "production", "sandbox"]),
        "occurred_at": Micros(at.0 - 1000 * rng.below(2000) as i64).to_rfc3339(),
    });
    if source == "api" {
        event["api"] = json!({"method": *rng.pick(&["POST", "GET"]), "path": *rng.pick(&["/v1/payments", "/v1/refunds", "/v1/customers"]), "status": *rng.pick(&[400, 401, 429, 504])});
    } else {
        event["sdk"] = json!({"name": version.split('-').next().unwrap_or("sdk"), "platform": *rng.pick(&["iOS 17.2", "Android 14", "Chrome 131"])});
    }
    event
}
