//! The detector's memory and the rules of each detection over it. Everything here is
//! bounded (see the module documentation of `detect`) and deterministic: maps are only ever
//! iterated to sweep them, by a touch counter that is unique per entry.
//!
//! Re-alerting: each window remembers the `seq` up to which its events were used by an alert
//! (`consumed`) and a quiet period after it (the window's length), so an attack that goes on
//! raises one alert per window, not one per event.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

use super::{
    Caps, DetectConfig, Detection, Finding, Observation, Outcome, Subject, WINDOW_CAP, prefix_of,
};
use crate::{AccountId, Micros};

/// Prefixes remembered per actor or key (the newest).
const PREFIXES_KEPT: usize = 8;
/// Sign-in successes an account's window keeps for the failure ratio: four times the failure
/// window, so a saturated success window means a ratio below 1/5 whatever the failures.
const SUCCESS_CAP: usize = 4 * WINDOW_CAP;
const MICROS: i64 = 1_000_000;

/// Every account's state.
#[derive(Default)]
pub(super) struct Profiles {
    accounts: HashMap<AccountId, Account>,
    /// Hands out touch stamps, one per touch, so every stamp is unique.
    clock: u64,
    entries: usize,
}

#[derive(Default)]
struct Account {
    touched: u64,
    actors: Bounded<String, Actor>,
    addresses: Bounded<u128, Address>,
    keys: Bounded<String, Key>,
    logins: Logins,
}

impl Account {
    fn entries(&self) -> usize {
        1 + self.actors.map.len() + self.addresses.map.len() + self.keys.map.len()
    }
}

/// Set in an entry's rank once it was touched by a second event: entries seen once (most of
/// a busy log's actors) are forgotten before any entry seen twice, the way a 2Q cache keeps
/// a scan from flushing it, so an actor under a slow attack or with a history outlives the
/// flood of actors seen once.
const PROTECTED: u64 = 1 << 63;

/// An entry's rank after a touch by the event of `stamp`: protected from its second event on.
fn rank_after(rank: u64, stamp: u64) -> u64 {
    if rank & !PROTECTED == stamp {
        rank
    } else {
        stamp | PROTECTED
    }
}

/// A map that, when full, forgets its lower-ranked half (see [`PROTECTED`]).
struct Bounded<K, V> {
    map: HashMap<K, (u64, V)>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded {
            map: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Default> Bounded<K, V> {
    fn touch(&mut self, key: &K, stamp: u64, cap: usize) -> &mut V {
        if !self.map.contains_key(key) && self.map.len() >= cap.max(1) {
            sweep(&mut self.map, |(touched, _)| *touched);
        }
        match self.map.entry(key.clone()) {
            Entry::Occupied(entry) => {
                let slot = entry.into_mut();
                slot.0 = rank_after(slot.0, stamp);
                &mut slot.1
            }
            Entry::Vacant(entry) => &mut entry.insert((stamp, V::default())).1,
        }
    }
}

/// Removes the lower-ranked entries of `map` by the rank `touched` gives.
fn sweep<K, V>(map: &mut HashMap<K, V>, touched: impl Fn(&V) -> u64) {
    let mut ranks: Vec<u64> = map.values().map(&touched).collect();
    if let Some(threshold) = threshold(&mut ranks) {
        map.retain(|_, value| touched(value) >= threshold);
    }
}

/// The rank below which a sweep forgets: every entry seen once, up to half of all entries,
/// and at least a quarter of them (so a sweep is rare: its cost is spread over the
/// insertions that filled the room it makes).
fn threshold(ranks: &mut [u64]) -> Option<u64> {
    if ranks.is_empty() {
        return None;
    }
    let seen_once = ranks.iter().filter(|rank| **rank & PROTECTED == 0).count();
    let n_forget = seen_once.min(ranks.len() / 2).max(ranks.len() / 4).max(1);
    if n_forget >= ranks.len() {
        return Some(u64::MAX);
    }
    Some(*ranks.select_nth_unstable(n_forget).1)
}

#[derive(Default)]
struct Actor {
    /// Failed sign-ins: (`received_at`, `seq`), oldest first.
    failures: VecDeque<(Micros, u64)>,
    brute_consumed: u64,
    brute_quiet_until: i64,
    /// The last success: a run of failures ends there.
    run_start: u64,
    privilege_consumed: u64,
    sign_ins: u32,
    /// Prefixes signed in from, with the `seq` of the latest sign-in from each; newest last.
    prefixes: Vec<(u128, u64)>,
    /// The last successful action.
    last_active: Option<(Micros, u64)>,
}

#[derive(Default)]
struct Address {
    /// Failed sign-ins from the address: (`received_at`, `seq`, actor hash).
    failures: VecDeque<(Micros, u64, u64)>,
    consumed: u64,
    quiet_until: i64,
}

#[derive(Default)]
struct Key {
    uses: u32,
    prefixes: Vec<(u128, u64)>,
}

#[derive(Default)]
struct Logins {
    /// The account's failed sign-ins: (`received_at`, `seq`, actor hash, address hash).
    failures: VecDeque<(Micros, u64, u64, u64)>,
    successes: VecDeque<(Micros, u64)>,
    consumed: u64,
    quiet_until: i64,
}

/// FNV-1a: a fixed, fast hash for counting distinct actors and addresses in a window.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn address_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Drops what is older than `horizon` before `now`, and the oldest past the cap.
fn trim<T>(
    window: &mut VecDeque<T>,
    now: Micros,
    horizon_secs: u64,
    cap: usize,
    at: fn(&T) -> Micros,
) {
    let oldest = Micros(now.0 - horizon_secs as i64 * MICROS);
    while window.front().is_some_and(|entry| at(entry) < oldest) {
        window.pop_front();
    }
    while window.len() > cap {
        window.pop_front();
    }
}

/// The newest entries of `window` after `consumed` and within `window_secs` of `now`.
fn recent<T>(
    window: &VecDeque<T>,
    now: Micros,
    window_secs: u64,
    consumed: u64,
    key: fn(&T) -> (Micros, u64),
) -> impl Iterator<Item = &T> {
    let oldest = Micros(now.0 - window_secs as i64 * MICROS);
    let start = window.partition_point(|entry| {
        let (at, seq) = key(entry);
        at < oldest || seq <= consumed
    });
    window.range(start..)
}

impl Profiles {
    pub(super) fn entries(&self) -> usize {
        self.entries
    }

    /// Forgets the lower-ranked half of every entry across all accounts: first the entries
    /// seen once, least recently touched first, then the least recently touched of the rest
    /// (an account itself ranks as seen twice, since its windows hold what stuffing needs).
    fn sweep_all(&mut self) {
        let mut stamps: Vec<u64> = Vec::with_capacity(self.entries);
        for account in self.accounts.values() {
            stamps.push(account.touched | PROTECTED);
            stamps.extend(account.actors.map.values().map(|v| v.0));
            stamps.extend(account.addresses.map.values().map(|v| v.0));
            stamps.extend(account.keys.map.values().map(|v| v.0));
        }
        let Some(threshold) = threshold(&mut stamps) else {
            return;
        };
        self.accounts.retain(|_, account| {
            account.actors.map.retain(|_, v| v.0 >= threshold);
            account.addresses.map.retain(|_, v| v.0 >= threshold);
            account.keys.map.retain(|_, v| v.0 >= threshold);
            account.touched | PROTECTED >= threshold
        });
        self.entries = self.accounts.values().map(Account::entries).sum();
    }

    pub(super) fn observe(
        &mut self,
        config: &DetectConfig,
        caps: &Caps,
        event: &Observation,
        findings: &mut Vec<Finding>,
    ) {
        self.clock += 1;
        let stamp = self.clock;
        let account = self.accounts.entry(event.account_id.clone()).or_default();
        let before = account.entries();
        account.touched = stamp;
        let mut raise = |detection: Detection,
                         evidence: Vec<u64>,
                         first_at: Micros,
                         subject: Subject,
                         summary: String| {
            findings.push(Finding {
                detection,
                account_id: event.account_id.clone(),
                trigger_seq: event.seq,
                at: event.at,
                evidence,
                first_at,
                subject,
                summary,
            });
        };
        let is_login = config.login_actions.contains(&event.action);
        let is_key = event.actor_type.as_deref() == Some("api_key");
        let actor_subject = || Subject {
            actor_id: event.actor_id.clone(),
            ip: event.ip.map(|ip| ip.to_string()),
            prefix: None,
        };

        if is_login && event.outcome == Outcome::Failure {
            let actor_hash = fnv(event.actor_id.as_deref().unwrap_or("").as_bytes());
            let address_hash = event.ip.map_or(0, |ip| fnv(&address_key(ip).to_be_bytes()));
            if let Some(actor_id) = &event.actor_id {
                let actor = account
                    .actors
                    .touch(actor_id, stamp, caps.actors_per_account);
                actor.failures.push_back((event.at, event.seq));
                trim(
                    &mut actor.failures,
                    event.at,
                    config.actor_horizon_secs(),
                    WINDOW_CAP,
                    |e| e.0,
                );
                let rule = &config.brute_force;
                if rule.enabled && event.at.0 >= actor.brute_quiet_until {
                    let run: Vec<(Micros, u64)> = recent(
                        &actor.failures,
                        event.at,
                        rule.window_secs,
                        actor.brute_consumed,
                        |e| *e,
                    )
                    .copied()
                    .collect();
                    if run.len() >= rule.failures as usize {
                        actor.brute_consumed = event.seq;
                        actor.brute_quiet_until = event.at.0 + rule.window_secs as i64 * MICROS;
                        raise(
                            Detection::BruteForce,
                            run.iter().map(|e| e.1).collect(),
                            run[0].0,
                            actor_subject(),
                            format!(
                                "{} failed sign-ins of {actor_id} within {} s",
                                run.len(),
                                rule.window_secs
                            ),
                        );
                    }
                }
            }
            if let Some(ip) = event.ip {
                let address =
                    account
                        .addresses
                        .touch(&address_key(ip), stamp, caps.addresses_per_account);
                address
                    .failures
                    .push_back((event.at, event.seq, actor_hash));
                trim(
                    &mut address.failures,
                    event.at,
                    config.password_spraying.window_secs,
                    WINDOW_CAP,
                    |e| e.0,
                );
                let rule = &config.password_spraying;
                if rule.enabled && event.at.0 >= address.quiet_until {
                    let run: Vec<(Micros, u64, u64)> = recent(
                        &address.failures,
                        event.at,
                        rule.window_secs,
                        address.consumed,
                        |e| (e.0, e.1),
                    )
                    .copied()
                    .collect();
                    if run.len() >= rule.actors as usize {
                        let actors: HashSet<u64> = run.iter().map(|e| e.2).collect();
                        if actors.len() >= rule.actors as usize {
                            address.consumed = event.seq;
                            address.quiet_until = event.at.0 + rule.window_secs as i64 * MICROS;
                            raise(
                                Detection::PasswordSpraying,
                                run.iter().map(|e| e.1).collect(),
                                run[0].0,
                                Subject {
                                    actor_id: None,
                                    ip: Some(ip.to_string()),
                                    prefix: None,
                                },
                                format!(
                                    "failed sign-ins of {} actors from {ip} within {} s",
                                    actors.len(),
                                    rule.window_secs
                                ),
                            );
                        }
                    }
                }
            }
            let logins = &mut account.logins;
            let rule = &config.credential_stuffing;
            logins
                .failures
                .push_back((event.at, event.seq, actor_hash, address_hash));
            trim(
                &mut logins.failures,
                event.at,
                rule.window_secs,
                WINDOW_CAP,
                |e| e.0,
            );
            if rule.enabled && event.at.0 >= logins.quiet_until {
                let failures: Vec<(Micros, u64, u64, u64)> = recent(
                    &logins.failures,
                    event.at,
                    rule.window_secs,
                    logins.consumed,
                    |e| (e.0, e.1),
                )
                .copied()
                .collect();
                if failures.len() >= rule.failures as usize {
                    // Judged over the span of the last N failures, not the whole window: a
                    // burst of failures in a quiet account is not diluted by the successes
                    // of the quarter of an hour before it.
                    let failures = &failures[failures.len() - rule.failures as usize..];
                    let start = failures[0].0;
                    let consumed = logins.consumed;
                    let successes = logins.successes.len()
                        - logins
                            .successes
                            .partition_point(|(at, seq)| *at < start || *seq <= consumed);
                    let ratio = failures.len() as f64 / (failures.len() + successes) as f64;
                    if ratio >= rule.failure_ratio {
                        let actors: HashSet<u64> = failures.iter().map(|e| e.2).collect();
                        let addresses: HashSet<u64> =
                            failures.iter().map(|e| e.3).filter(|h| *h != 0).collect();
                        if actors.len() >= rule.actors as usize
                            && addresses.len() >= rule.addresses as usize
                        {
                            logins.consumed = event.seq;
                            logins.quiet_until = event.at.0 + rule.window_secs as i64 * MICROS;
                            raise(
                                Detection::CredentialStuffing,
                                failures.iter().map(|e| e.1).collect(),
                                start,
                                Subject::default(),
                                format!(
                                    "{} failed sign-ins of {} actors from {} addresses within {} s ({:.0} % failed)",
                                    failures.len(),
                                    actors.len(),
                                    addresses.len(),
                                    rule.window_secs,
                                    ratio * 100.0
                                ),
                            );
                        }
                    }
                }
            }
        }

        if is_login && event.outcome == Outcome::Success {
            let logins = &mut account.logins;
            logins.successes.push_back((event.at, event.seq));
            trim(
                &mut logins.successes,
                event.at,
                config.credential_stuffing.window_secs,
                SUCCESS_CAP,
                |e| e.0,
            );
            if let Some(actor_id) = &event.actor_id {
                let actor = account
                    .actors
                    .touch(actor_id, stamp, caps.actors_per_account);
                let rule = &config.success_after_failures;
                if rule.enabled {
                    let run: Vec<(Micros, u64)> = recent(
                        &actor.failures,
                        event.at,
                        rule.window_secs,
                        actor.run_start,
                        |e| *e,
                    )
                    .copied()
                    .collect();
                    if run.len() >= rule.failures as usize {
                        let mut evidence: Vec<u64> = run.iter().map(|e| e.1).collect();
                        evidence.push(event.seq);
                        raise(
                            Detection::SuccessAfterFailures,
                            evidence,
                            run[0].0,
                            actor_subject(),
                            format!(
                                "{actor_id} signed in after {} failed sign-ins within {} s",
                                run.len(),
                                rule.window_secs
                            ),
                        );
                    }
                }
                actor.run_start = event.seq;
                if let (Some(ip), false) = (event.ip, is_key) {
                    let rule = &config.new_address;
                    let (prefix, text) = prefix_of(ip, rule.ipv4_prefix, rule.ipv6_prefix);
                    let last = actor.prefixes.last().copied();
                    if let Some((_, last_seq)) = last
                        && rule.enabled
                        && actor.sign_ins >= rule.min_sign_ins
                        && !actor.prefixes.iter().any(|(p, _)| *p == prefix)
                    {
                        raise(
                            Detection::NewAddress,
                            vec![last_seq, event.seq],
                            event.at,
                            Subject {
                                actor_id: Some(actor_id.clone()),
                                ip: Some(ip.to_string()),
                                prefix: Some(text.clone()),
                            },
                            format!(
                                "{actor_id} signed in from {text}, never seen for it in {} sign-ins",
                                actor.sign_ins
                            ),
                        );
                    }
                    remember(&mut actor.prefixes, prefix, event.seq);
                    actor.sign_ins = actor.sign_ins.saturating_add(1);
                }
            }
        }

        if event.outcome == Outcome::Success
            && let Some(actor_id) = &event.actor_id
        {
            let actor = account
                .actors
                .touch(actor_id, stamp, caps.actors_per_account);
            if let Some((last_at, last_seq)) = actor.last_active
                && config.dormant_actor.enabled
                && event.at.0 - last_at.0 >= config.idle_micros()
            {
                let days = (event.at.0 - last_at.0) / (86_400 * MICROS);
                raise(
                    Detection::DormantActor,
                    vec![last_seq, event.seq],
                    last_at,
                    actor_subject(),
                    format!(
                        "{actor_id} acted ({}) after {days} days without activity",
                        event.action
                    ),
                );
            }
            actor.last_active = Some((event.at, event.seq));
        }

        if is_key
            && event.outcome == Outcome::Success
            && let (Some(key_id), Some(ip)) = (&event.actor_id, event.ip)
        {
            let rule = &config.api_key_new_address;
            let key = account.keys.touch(key_id, stamp, caps.keys_per_account);
            let (prefix, text) = prefix_of(ip, rule.ipv4_prefix, rule.ipv6_prefix);
            if let Some((_, last_seq)) = key.prefixes.last().copied()
                && rule.enabled
                && key.uses >= rule.min_uses
                && !key.prefixes.iter().any(|(p, _)| *p == prefix)
            {
                raise(
                    Detection::ApiKeyNewAddress,
                    vec![last_seq, event.seq],
                    event.at,
                    Subject {
                        actor_id: Some(key_id.clone()),
                        ip: Some(ip.to_string()),
                        prefix: Some(text.clone()),
                    },
                    format!(
                        "API key {key_id} used from {text}, never seen for it in {} uses",
                        key.uses
                    ),
                );
            }
            remember(&mut key.prefixes, prefix, event.seq);
            key.uses = key.uses.saturating_add(1);
        }

        let rule = &config.privilege_after_failures;
        if rule.enabled
            && event.outcome != Outcome::Failure
            && rule.actions.contains(&event.action)
            && let Some(actor_id) = &event.actor_id
        {
            let actor = account
                .actors
                .touch(actor_id, stamp, caps.actors_per_account);
            let run: Vec<(Micros, u64)> = recent(
                &actor.failures,
                event.at,
                rule.window_secs,
                actor.privilege_consumed,
                |e| *e,
            )
            .copied()
            .collect();
            if run.len() >= rule.failures as usize {
                actor.privilege_consumed = event.seq;
                let mut evidence: Vec<u64> = run.iter().map(|e| e.1).collect();
                evidence.push(event.seq);
                raise(
                    Detection::PrivilegeAfterFailures,
                    evidence,
                    run[0].0,
                    actor_subject(),
                    format!(
                        "{actor_id}: {} after {} failed sign-ins within {} s",
                        event.action,
                        run.len(),
                        rule.window_secs
                    ),
                );
            }
        }

        let after = account.entries();
        self.entries = self.entries + after - before;
        if self.entries > caps.total_entries {
            self.sweep_all();
        }
    }
}

/// Records a sign-in from `prefix` at `seq`: moves it to the end, keeping the newest few.
fn remember(prefixes: &mut Vec<(u128, u64)>, prefix: u128, seq: u64) {
    prefixes.retain(|(p, _)| *p != prefix);
    prefixes.push((prefix, seq));
    if prefixes.len() > PREFIXES_KEPT {
        prefixes.remove(0);
    }
}
