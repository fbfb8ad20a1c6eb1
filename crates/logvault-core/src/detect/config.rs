//! The thresholds of every detection: defaults in code, overridden by the deployment's
//! configuration (`[detections]` in the serve configuration) and then by an account's own
//! overrides (a JSON object of the same shape, merged field by field).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::WINDOW_CAP;

/// Seconds in a day, for the dormancy threshold.
const DAY_SECS: u64 = 86_400;

/// Every detection's thresholds. Each section can be switched off with `enabled = false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Audit actions that are sign-ins (their outcome says whether it succeeded).
    pub login_actions: Vec<String>,
    /// N failed sign-ins of one actor within T.
    pub brute_force: BruteForce,
    /// Failed sign-ins of many actors from one address within T.
    pub password_spraying: PasswordSpraying,
    /// Failed sign-ins of many actors from many addresses within T, with a high failure ratio.
    pub credential_stuffing: CredentialStuffing,
    /// A successful sign-in right after a run of failed ones of the same actor.
    pub success_after_failures: SuccessAfterFailures,
    /// A successful sign-in of an actor with a history from a prefix never seen for it.
    pub new_address: NewAddress,
    /// A success of an actor silent for a long time.
    pub dormant_actor: DormantActor,
    /// An API key used from a prefix never seen for it.
    pub api_key_new_address: ApiKeyNewAddress,
    /// A privilege change by an actor right after a run of its failed sign-ins.
    pub privilege_after_failures: PrivilegeAfterFailures,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            login_actions: ["user.login", "auth.login", "session.created", "login"]
                .map(String::from)
                .to_vec(),
            brute_force: BruteForce::default(),
            password_spraying: PasswordSpraying::default(),
            credential_stuffing: CredentialStuffing::default(),
            success_after_failures: SuccessAfterFailures::default(),
            new_address: NewAddress::default(),
            dormant_actor: DormantActor::default(),
            api_key_new_address: ApiKeyNewAddress::default(),
            privilege_after_failures: PrivilegeAfterFailures::default(),
        }
    }
}

/// See [`DetectConfig::brute_force`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForce {
    /// Whether the detection runs.
    pub enabled: bool,
    /// Failed sign-ins of the actor within the window that raise the alert.
    pub failures: u32,
    /// The window, in seconds.
    pub window_secs: u64,
}

impl Default for BruteForce {
    fn default() -> Self {
        BruteForce {
            enabled: true,
            failures: 10,
            window_secs: 600,
        }
    }
}

/// See [`DetectConfig::password_spraying`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordSpraying {
    /// Whether the detection runs.
    pub enabled: bool,
    /// Distinct actors failing from the one address within the window.
    pub actors: u32,
    /// The window, in seconds.
    pub window_secs: u64,
}

impl Default for PasswordSpraying {
    fn default() -> Self {
        PasswordSpraying {
            enabled: true,
            actors: 10,
            window_secs: 900,
        }
    }
}

/// See [`DetectConfig::credential_stuffing`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialStuffing {
    /// Whether the detection runs.
    pub enabled: bool,
    /// Failed sign-ins in the account within the window.
    pub failures: u32,
    /// Distinct actors among them.
    pub actors: u32,
    /// Distinct addresses among them.
    pub addresses: u32,
    /// Failures over all sign-ins of the account from the first of the last `failures`
    /// failures on, at least.
    pub failure_ratio: f64,
    /// The window, in seconds.
    pub window_secs: u64,
}

impl Default for CredentialStuffing {
    fn default() -> Self {
        CredentialStuffing {
            enabled: true,
            failures: 50,
            actors: 20,
            addresses: 10,
            failure_ratio: 0.6,
            window_secs: 900,
        }
    }
}

/// See [`DetectConfig::success_after_failures`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuccessAfterFailures {
    /// Whether the detection runs.
    pub enabled: bool,
    /// Failures since the actor's last success, within the window, before the success.
    pub failures: u32,
    /// The window, in seconds.
    pub window_secs: u64,
}

impl Default for SuccessAfterFailures {
    fn default() -> Self {
        SuccessAfterFailures {
            enabled: true,
            failures: 5,
            window_secs: 900,
        }
    }
}

/// See [`DetectConfig::new_address`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewAddress {
    /// Whether the detection runs.
    pub enabled: bool,
    /// Successful sign-ins seen for the actor before a new prefix is worth an alert.
    pub min_sign_ins: u32,
    /// Bits of an IPv4 address that make its prefix (24: the /24).
    pub ipv4_prefix: u8,
    /// Bits of an IPv6 address that make its prefix (48: the /48).
    pub ipv6_prefix: u8,
}

impl Default for NewAddress {
    fn default() -> Self {
        NewAddress {
            enabled: true,
            min_sign_ins: 3,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    }
}

/// See [`DetectConfig::dormant_actor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DormantActor {
    /// Whether the detection runs.
    pub enabled: bool,
    /// Days without a successful action that make an actor dormant.
    pub idle_days: u32,
}

impl Default for DormantActor {
    fn default() -> Self {
        DormantActor {
            enabled: true,
            idle_days: 30,
        }
    }
}

/// See [`DetectConfig::api_key_new_address`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiKeyNewAddress {
    /// Whether the detection runs.
    pub enabled: bool,
    /// Successful uses seen for the key before a new prefix is worth an alert.
    pub min_uses: u32,
    /// Bits of an IPv4 address that make its prefix.
    pub ipv4_prefix: u8,
    /// Bits of an IPv6 address that make its prefix.
    pub ipv6_prefix: u8,
}

impl Default for ApiKeyNewAddress {
    fn default() -> Self {
        ApiKeyNewAddress {
            enabled: true,
            min_uses: 3,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    }
}

/// See [`DetectConfig::privilege_after_failures`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivilegeAfterFailures {
    /// Whether the detection runs.
    pub enabled: bool,
    /// Failed sign-ins of the actor within the window before the change.
    pub failures: u32,
    /// The window, in seconds.
    pub window_secs: u64,
    /// The audit actions that change privileges.
    pub actions: Vec<String>,
}

impl Default for PrivilegeAfterFailures {
    fn default() -> Self {
        PrivilegeAfterFailures {
            enabled: true,
            failures: 3,
            window_secs: 900,
            actions: [
                "role.granted",
                "user.role_granted",
                "user.role_changed",
                "member.role_changed",
                "mfa.disabled",
                "user.mfa_disabled",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl DetectConfig {
    /// This configuration with `overrides` (an object of the same shape, any subset of the
    /// fields) laid over it, validated.
    pub fn with_overrides(&self, overrides: &Value) -> Result<DetectConfig, String> {
        if !overrides.is_object() {
            return Err("detection overrides must be a JSON object".into());
        }
        let mut merged = serde_json::to_value(self).map_err(|e| e.to_string())?;
        merge(&mut merged, overrides);
        let config: DetectConfig =
            serde_json::from_value(merged).map_err(|e| format!("detection overrides: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every threshold is one the detector can apply.
    pub fn validate(&self) -> Result<(), String> {
        let cap = WINDOW_CAP as u32;
        let counts = [
            ("brute_force.failures", self.brute_force.failures),
            ("password_spraying.actors", self.password_spraying.actors),
            (
                "credential_stuffing.failures",
                self.credential_stuffing.failures,
            ),
            (
                "credential_stuffing.actors",
                self.credential_stuffing.actors,
            ),
            (
                "credential_stuffing.addresses",
                self.credential_stuffing.addresses,
            ),
            (
                "success_after_failures.failures",
                self.success_after_failures.failures,
            ),
            (
                "privilege_after_failures.failures",
                self.privilege_after_failures.failures,
            ),
        ];
        for (name, value) in counts {
            if value == 0 || value > cap {
                return Err(format!("{name} must be between 1 and {cap}"));
            }
        }
        let windows = [
            ("brute_force.window_secs", self.brute_force.window_secs),
            (
                "password_spraying.window_secs",
                self.password_spraying.window_secs,
            ),
            (
                "credential_stuffing.window_secs",
                self.credential_stuffing.window_secs,
            ),
            (
                "success_after_failures.window_secs",
                self.success_after_failures.window_secs,
            ),
            (
                "privilege_after_failures.window_secs",
                self.privilege_after_failures.window_secs,
            ),
        ];
        for (name, value) in windows {
            if value == 0 || value > DAY_SECS {
                return Err(format!("{name} must be between 1 and {DAY_SECS} seconds"));
            }
        }
        let ratio = self.credential_stuffing.failure_ratio;
        // Below 0.25 the capped success window could no longer tell (see `state.rs`).
        if !(0.25..=1.0).contains(&ratio) {
            return Err("credential_stuffing.failure_ratio must be between 0.25 and 1".into());
        }
        if self.dormant_actor.idle_days == 0 || self.dormant_actor.idle_days > 3650 {
            return Err("dormant_actor.idle_days must be between 1 and 3650".into());
        }
        let prefixes = [
            ("new_address.ipv4_prefix", self.new_address.ipv4_prefix, 32),
            ("new_address.ipv6_prefix", self.new_address.ipv6_prefix, 128),
            (
                "api_key_new_address.ipv4_prefix",
                self.api_key_new_address.ipv4_prefix,
                32,
            ),
            (
                "api_key_new_address.ipv6_prefix",
                self.api_key_new_address.ipv6_prefix,
                128,
            ),
        ];
        for (name, value, max) in prefixes {
            if value == 0 || value > max {
                return Err(format!("{name} must be between 1 and {max}"));
            }
        }
        if self.new_address.min_sign_ins == 0 || self.api_key_new_address.min_uses == 0 {
            return Err(
                "new_address.min_sign_ins and api_key_new_address.min_uses must be positive".into(),
            );
        }
        if self.login_actions.is_empty() {
            return Err("login_actions must name at least one action".into());
        }
        Ok(())
    }

    /// The longest time a sign-in failure matters to any detection of one actor.
    pub(crate) fn actor_horizon_secs(&self) -> u64 {
        self.brute_force
            .window_secs
            .max(self.success_after_failures.window_secs)
            .max(self.privilege_after_failures.window_secs)
    }

    /// The longest window of any detection: how far back a restarted detector must replay.
    pub fn longest_window_secs(&self) -> u64 {
        self.actor_horizon_secs()
            .max(self.password_spraying.window_secs)
            .max(self.credential_stuffing.window_secs)
    }

    /// Dormancy threshold in microseconds.
    pub(crate) fn idle_micros(&self) -> i64 {
        i64::from(self.dormant_actor.idle_days) * DAY_SECS as i64 * 1_000_000
    }
}

/// Lays `overrides` over `base` object by object; anything else replaces.
fn merge(base: &mut Value, overrides: &Value) {
    match (base, overrides) {
        (Value::Object(base), Value::Object(overrides)) => {
            for (key, value) in overrides {
                match base.get_mut(key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}
