//! `logvault bench --detections N`: the quality of the security detections, measured. A
//! labelled generator seeds synthetic attack traces (each detection's attack, at three rates
//! or strengths, ten of each) into N benign audit events of the benchmark's workload, feeds
//! the mix in `seq` order to the same detector the service runs
//! (`logvault_core::detect`), and reports per detection: attacks seeded and caught, the time
//! from an attack's last event to its first alert (median and maximum), and alerts that
//! carry no attack event as evidence, per million benign events.
//!
//! Benign traffic is the workload's audit events with one change: the workload draws a
//! fresh random address for every event, which no person does, so here each (account, actor)
//! signs in from a home address of its own (derived from its name); otherwise every sign-in
//! of an actor with a history would be from a new /24. Time is simulated: benign events are
//! `--detect-rate` per second of `received_at`, attack events at their own spacing.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use logvault_core::detect::{Caps, DetectConfig, Detection, Detector, Finding, Observation};
use logvault_core::validate::{Limits, validate_event};
use logvault_core::{EventKind, Micros};
use serde_json::{Value, json};

use super::workload::{self, Zipf};
use super::{BenchArgs, stage};
use crate::rng::Rng;

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;
/// Attacks of each detection at each rate.
const REPEATS: usize = 10;

/// One event of an attack trace (or of the history it needs), before it gets its `seq`.
struct Planned {
    at: Micros,
    /// Index into the attacks; `None` for history that is not itself the attack.
    attack: Option<usize>,
    account: String,
    actor: String,
    actor_type: &'static str,
    action: &'static str,
    outcome: &'static str,
    ip: String,
}

struct Attack {
    detection: Detection,
    variant: String,
    last_at: Micros,
    account: String,
}

/// The home address of a benign actor: 203.0.x.y from its account and name.
fn home(account: &str, actor: &str) -> String {
    let mut hash: u32 = 2_166_136_261;
    for byte in account.bytes().chain([0]).chain(actor.bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(16_777_619);
    }
    Ipv4Addr::new(203, 0, (hash >> 8) as u8, hash as u8).to_string()
}

/// The attacker's /24 of attack `index`: 10.a.b.0, one per attack.
fn attacker_ip(index: usize, host: usize) -> String {
    Ipv4Addr::new(10, (index >> 8) as u8, index as u8, (host % 254 + 1) as u8).to_string()
}

/// The detections' variants: a label and the spacing (or strength) of each.
fn variants(detection: Detection) -> [(String, i64); 3] {
    let spaced = |seconds: [i64; 3]| seconds.map(|s| (format!("{s} s apart"), s * SECOND));
    match detection {
        Detection::BruteForce | Detection::PasswordSpraying => spaced([1, 10, 30]),
        Detection::SuccessAfterFailures | Detection::PrivilegeAfterFailures => spaced([1, 10, 60]),
        Detection::CredentialStuffing => [
            ("10 per s".into(), SECOND / 10),
            ("1 per s".into(), SECOND),
            ("1 per 5 s".into(), 5 * SECOND),
        ],
        Detection::NewAddress => [3, 10, 50].map(|n| (format!("after {n} sign-ins"), n)),
        Detection::ApiKeyNewAddress => [3, 10, 100].map(|n| (format!("after {n} uses"), n)),
        Detection::DormantActor => [31, 90, 365].map(|d| (format!("after {d} days"), d)),
    }
}

/// Plans attack `index` of `detection` starting at `start`: its events, and the history
/// before the benign stream begins at `t0` that it needs.
fn plan(
    rng: &mut Rng,
    index: usize,
    detection: Detection,
    strength: i64,
    start: i64,
    t0: i64,
    events: &mut Vec<Planned>,
) {
    let account = workload::merchant_id(rng.below(workload::N_MERCHANTS));
    let victim = format!("atk_{index}");
    let attack = Some(index);
    let mut push = |at: i64, attack, actor: String, actor_type, action, outcome, ip: String| {
        events.push(Planned {
            at: Micros(at),
            attack,
            account: account.clone(),
            actor,
            actor_type,
            action,
            outcome,
            ip,
        });
    };
    let login = "user.login";
    match detection {
        Detection::BruteForce => {
            for k in 0..12 {
                let at = start + k * strength;
                push(
                    at,
                    attack,
                    victim.clone(),
                    "user",
                    login,
                    "failure",
                    attacker_ip(index, 1),
                );
            }
        }
        Detection::PasswordSpraying => {
            for k in 0..15 {
                let actor = format!("usr_{}", rng.below(100_000));
                push(
                    start + k * strength,
                    attack,
                    actor,
                    "user",
                    login,
                    "failure",
                    attacker_ip(index, 1),
                );
            }
        }
        Detection::CredentialStuffing => {
            for k in 0..80 {
                let actor = format!("usr_{}", rng.below(100_000));
                // One in twenty stolen credentials works.
                let outcome = if k % 20 == 19 { "success" } else { "failure" };
                push(
                    start + k * strength,
                    attack,
                    actor,
                    "user",
                    login,
                    outcome,
                    attacker_ip(index, k as usize % 40),
                );
            }
        }
        Detection::SuccessAfterFailures => {
            for k in 0..6 {
                push(
                    start + k * strength,
                    attack,
                    victim.clone(),
                    "user",
                    login,
                    "failure",
                    attacker_ip(index, 1),
                );
            }
            push(
                start + 6 * strength,
                attack,
                victim.clone(),
                "user",
                login,
                "success",
                attacker_ip(index, 1),
            );
        }
        Detection::PrivilegeAfterFailures => {
            for k in 0..4 {
                push(
                    start + k * strength,
                    attack,
                    victim.clone(),
                    "user",
                    login,
                    "failure",
                    attacker_ip(index, 1),
                );
            }
            // Got in on the fifth try, then disables MFA or grants a role. Four failures
            // then a success: below the success-after-failures threshold of five.
            push(
                start + 4 * strength,
                attack,
                victim.clone(),
                "user",
                login,
                "success",
                attacker_ip(index, 1),
            );
            let action = if index.is_multiple_of(2) {
                "mfa.disabled"
            } else {
                "role.granted"
            };
            push(
                start + 5 * strength,
                attack,
                victim.clone(),
                "user",
                action,
                "success",
                attacker_ip(index, 1),
            );
        }
        Detection::NewAddress => {
            let home_ip = home(&account, &victim);
            for k in 0..strength {
                let at = t0 - 30 * DAY + k * (29 * DAY / strength);
                push(
                    at,
                    None,
                    victim.clone(),
                    "user",
                    login,
                    "success",
                    home_ip.clone(),
                );
            }
            push(
                start,
                attack,
                victim.clone(),
                "user",
                login,
                "success",
                attacker_ip(index, 1),
            );
        }
        Detection::ApiKeyNewAddress => {
            let key = format!("key_{index}");
            let home_ip = home(&account, &key);
            for k in 0..strength {
                let at = t0 - 7 * DAY + k * (6 * DAY / strength);
                push(
                    at,
                    None,
                    key.clone(),
                    "api_key",
                    "payment.created",
                    "success",
                    home_ip.clone(),
                );
            }
            push(
                start,
                attack,
                key.clone(),
                "api_key",
                "payment.created",
                "success",
                attacker_ip(index, 1),
            );
        }
        Detection::DormantActor => {
            let home_ip = home(&account, &victim);
            push(
                start - strength * DAY,
                None,
                victim.clone(),
                "user",
                login,
                "success",
                home_ip.clone(),
            );
            push(
                start,
                attack,
                victim.clone(),
                "user",
                login,
                "success",
                home_ip,
            );
        }
    }
}

fn body(event: &Planned) -> String {
    json!({
        "action": event.action, "outcome": event.outcome,
        "actor": {"id": event.actor, "type": event.actor_type},
        "origin": {"ip": event.ip},
    })
    .to_string()
}

#[derive(Default)]
struct Tally {
    seeded: usize,
    caught: usize,
    latencies: Vec<f64>,
}

impl Tally {
    fn json(&self) -> Value {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len().saturating_sub(1) / 2).copied();
        json!({
            "seeded": self.seeded, "caught": self.caught,
            "detection_rate": if self.seeded == 0 { 0.0 } else { self.caught as f64 / self.seeded as f64 },
            "median_latency_s": median, "max_latency_s": sorted.last().copied(),
        })
    }
}

pub(super) fn run(args: &BenchArgs, n_benign: usize) -> anyhow::Result<()> {
    let result = measure(n_benign, args.detect_rate, args.seed)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    eprintln!("{}", table(&result));
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&result)? + "\n")?;
        stage(&format!("wrote {}", out.display()));
    }
    Ok(())
}

/// The report of `n_benign` benign events at `rate` per second with the attacks seeded.
fn measure(n_benign: usize, rate: u64, seed: u64) -> anyhow::Result<Value> {
    anyhow::ensure!(
        n_benign > 0 && rate > 0,
        "--detections and --detect-rate must be positive"
    );
    let config = DetectConfig::default();
    let t0: i64 = 1_780_000_000 * SECOND;
    let step = SECOND / rate as i64;
    let duration = n_benign as i64 * step;
    // The slowest trace lasts 80 x 5 s.
    anyhow::ensure!(
        duration > 900 * SECOND,
        "--detections / --detect-rate must be over 900 s of traffic for the slowest attacks"
    );
    let mut rng = Rng(seed ^ 0x6465_7465_6374);
    let mut attacks = Vec::new();
    let mut planned = Vec::new();
    for detection in Detection::ALL {
        for (variant, strength) in variants(detection) {
            for _ in 0..REPEATS {
                let index = attacks.len();
                let start = t0 + rng.below((duration - 600 * SECOND) as usize) as i64;
                let before = planned.len();
                plan(
                    &mut rng,
                    index,
                    detection,
                    strength,
                    start,
                    t0,
                    &mut planned,
                );
                let last_at = planned[before..]
                    .iter()
                    .filter(|p| p.attack.is_some())
                    .map(|p| p.at)
                    .max()
                    .unwrap_or(Micros(start));
                attacks.push(Attack {
                    detection,
                    variant: variant.clone(),
                    last_at,
                    account: planned[before].account.clone(),
                });
            }
        }
    }
    planned.sort_by_key(|p| p.at);
    stage(&format!(
        "{} attacks ({} events) in {n_benign} benign audit events at {} events/s",
        attacks.len(),
        planned.len(),
        rate
    ));

    let mut detector = Detector::new(config, Caps::default());
    let mut findings: Vec<Finding> = Vec::new();
    let mut attack_of_seq: HashMap<u64, usize> = HashMap::new();
    let mut benign_rng = Rng(seed);
    let zipf = Zipf::new(workload::N_MERCHANTS);
    let limits = Limits::default();
    let mut seq = 0u64;
    let mut next_planned = 0;
    let mut detect_time = std::time::Duration::ZERO;
    let mut observe =
        |detector: &mut Detector, observation: Observation, findings: &mut Vec<Finding>| {
            let started = Instant::now();
            detector.observe(&observation, findings);
            detect_time += started.elapsed();
        };
    for i in 0..=n_benign {
        let at = t0 + i as i64 * step;
        while next_planned < planned.len() && (planned[next_planned].at.0 <= at || i == n_benign) {
            let event = &planned[next_planned];
            seq += 1;
            if let Some(attack) = event.attack {
                attack_of_seq.insert(seq, attack);
            }
            let observation = Observation::from_body(&event.account, seq, event.at, &body(event))
                .ok_or_else(|| anyhow::anyhow!("an attack event did not parse"))?;
            observe(&mut detector, observation, &mut findings);
            next_planned += 1;
        }
        if i == n_benign {
            break;
        }
        let mut value = workload::event(&mut benign_rng, &zipf, EventKind::Audit);
        let account = value["account_id"].as_str().unwrap_or_default().to_string();
        let actor = value["actor"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        value["origin"]["ip"] = home(&account, &actor).into();
        let event = validate_event(EventKind::Audit, 0, &value, "", &limits)
            .map_err(|_| anyhow::anyhow!("a benign event did not validate"))?;
        seq += 1;
        let observation = Observation::from_body(&event.account_id, seq, Micros(at), &event.body)
            .ok_or_else(|| anyhow::anyhow!("a benign event did not parse"))?;
        observe(&mut detector, observation, &mut findings);
        if (i + 1) % 1_000_000 == 0 {
            stage(&format!("{} benign events", i + 1));
        }
    }

    let mut per_detection: HashMap<Detection, (Tally, usize, usize)> = HashMap::new();
    // The first false alerts of each detection, for whoever tunes a threshold.
    let mut false_samples: Vec<Value> = Vec::new();
    let mut per_variant: HashMap<(Detection, String), Tally> = HashMap::new();
    let mut first_alert: HashMap<usize, Micros> = HashMap::new();
    for finding in &findings {
        // Attacks can share an account and overlap in time: a finding catches every attack
        // of its own detection among its evidence.
        let mut in_evidence: Vec<usize> = finding
            .evidence
            .iter()
            .filter_map(|seq| attack_of_seq.get(seq).copied())
            .collect();
        in_evidence.dedup();
        let entry = per_detection.entry(finding.detection).or_default();
        let own: Vec<usize> = in_evidence
            .iter()
            .copied()
            .filter(|a| attacks[*a].detection == finding.detection)
            .collect();
        if in_evidence.is_empty() {
            entry.1 += 1;
            if entry.1 <= 5 {
                false_samples.push(json!({
                    "detection": finding.detection.as_str(), "account_id": finding.account_id,
                    "subject": finding.subject, "summary": finding.summary,
                    "evidence_events": finding.evidence.len(),
                    "span_s": (finding.at.0 - finding.first_at.0) as f64 / SECOND as f64,
                }));
            }
        } else if own.is_empty() {
            entry.2 += 1;
        }
        for attack in own {
            first_alert.entry(attack).or_insert(finding.at);
        }
    }
    for (index, attack) in attacks.iter().enumerate() {
        let latency = first_alert
            .get(&index)
            .map(|at| (at.0 - attack.last_at.0).max(0) as f64 / SECOND as f64);
        for tally in [
            &mut per_detection.entry(attack.detection).or_default().0,
            per_variant
                .entry((attack.detection, attack.variant.clone()))
                .or_default(),
        ] {
            tally.seeded += 1;
            if let Some(latency) = latency {
                tally.caught += 1;
                tally.latencies.push(latency);
            }
        }
    }
    let detections: Vec<Value> = Detection::ALL
        .iter()
        .map(|detection| {
            let (tally, false_alerts, on_other) =
                per_detection.remove(detection).unwrap_or_default();
            let mut row = tally.json();
            row["detection"] = detection.as_str().into();
            row["false_alerts"] = false_alerts.into();
            row["false_alerts_per_million_benign"] =
                (false_alerts as f64 * 1e6 / n_benign as f64).into();
            row["alerts_on_other_attacks"] = on_other.into();
            row["by_variant"] = variants(*detection)
                .iter()
                .map(|(variant, _)| {
                    let mut row = per_variant
                        .get(&(*detection, variant.clone()))
                        .map(Tally::json)
                        .unwrap_or_default();
                    row["variant"] = variant.clone().into();
                    row
                })
                .collect();
            row
        })
        .collect();
    let missed: Vec<Value> = attacks
        .iter()
        .enumerate()
        .filter(|(index, _)| !first_alert.contains_key(index))
        .map(|(_, attack)| {
            let in_account: Vec<&str> = findings
                .iter()
                .filter(|f| f.account_id == attack.account)
                .map(|f| f.detection.as_str())
                .collect();
            let others: Vec<&str> = attacks
                .iter()
                .filter(|a| a.account == attack.account && !std::ptr::eq(*a, attack))
                .map(|a| a.detection.as_str())
                .collect();
            json!({"detection": attack.detection.as_str(), "variant": attack.variant,
                   "account_id": attack.account, "alerts_in_account": in_account,
                   "other_attacks_in_account": others})
        })
        .collect();
    let total = seq;
    let result = json!({
        "settings": {
            "benign_events": n_benign, "benign_rate_per_s": rate, "seed": seed,
            "attacks": attacks.len(), "attack_events": planned.len(), "defaults": DetectConfig::default(),
        },
        "machine": super::report::machine(),
        "detector": {
            "events": total,
            "events_per_s": total as f64 / detect_time.as_secs_f64(),
            "entries_at_end": detector.entries(),
            "alerts": findings.len(),
        },
        "detections": detections,
        "missed": missed,
        "false_alert_samples": false_samples,
    });
    Ok(result)
}

/// The report as the table `docs/BENCHMARKS.md` shows.
fn table(result: &Value) -> String {
    let mut out = String::from(
        "| detection | seeded | caught | median / max s to alert | false alerts | per 1 M benign |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for row in result["detections"].as_array().into_iter().flatten() {
        let seconds = |v: &Value| v.as_f64().map_or("-".into(), |s| format!("{s:.1}"));
        out += &format!(
            "| {} | {} | {} | {} / {} | {} | {:.2} |\n",
            row["detection"].as_str().unwrap_or_default(),
            row["seeded"],
            row["caught"],
            seconds(&row["median_latency_s"]),
            seconds(&row["max_latency_s"]),
            row["false_alerts"],
            row["false_alerts_per_million_benign"]
                .as_f64()
                .unwrap_or_default(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::measure;

    /// At the defaults every seeded attack is caught, at once, and benign traffic raises
    /// nothing: the figures `docs/BENCHMARKS.md` reports, on a smaller run.
    #[test]
    fn every_attack_is_caught_and_benign_traffic_raises_nothing() {
        let result = measure(20_000, 20, 7).expect("measure");
        let rows = result["detections"].as_array().expect("rows");
        assert_eq!(rows.len(), 8);
        for row in rows {
            assert_eq!(row["seeded"], 30, "{row}");
            assert_eq!(row["caught"], row["seeded"], "{row}");
            assert_eq!(row["false_alerts"], 0, "{row}");
            assert_eq!(row["max_latency_s"], 0.0, "{row}");
        }
        assert_eq!(result["missed"].as_array().map(Vec::len), Some(0));
        assert_eq!(result["detector"]["alerts"], 240, "one alert per attack");
    }
}
