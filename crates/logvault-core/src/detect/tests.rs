//! Table-driven tests of every detection: a script of events and the findings it must raise
//! (detection and the index of the event that raises it), nothing more and nothing less.

use serde_json::json;

use super::*;

/// One scripted event: seconds from the start, actor, action, outcome, address.
#[derive(Clone)]
struct Step {
    secs: i64,
    account: &'static str,
    actor: &'static str,
    actor_type: &'static str,
    action: &'static str,
    outcome: Outcome,
    ip: &'static str,
}

const T0: i64 = 1_780_000_000 * 1_000_000;

fn step(
    secs: i64,
    actor: &'static str,
    action: &'static str,
    outcome: Outcome,
    ip: &'static str,
) -> Step {
    Step {
        secs,
        account: "mer_1",
        actor,
        actor_type: "user",
        action,
        outcome,
        ip,
    }
}

fn fail(secs: i64, actor: &'static str, ip: &'static str) -> Step {
    step(secs, actor, "user.login", Outcome::Failure, ip)
}

fn ok(secs: i64, actor: &'static str, ip: &'static str) -> Step {
    step(secs, actor, "user.login", Outcome::Success, ip)
}

fn key_use(secs: i64, key: &'static str, ip: &'static str) -> Step {
    Step {
        actor_type: "api_key",
        ..step(secs, key, "payment.created", Outcome::Success, ip)
    }
}

fn observations(steps: &[Step]) -> Vec<Observation> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| Observation {
            account_id: s.account.into(),
            seq: i as u64 + 1,
            at: Micros(T0 + s.secs * 1_000_000),
            action: s.action.into(),
            outcome: s.outcome,
            actor_id: (!s.actor.is_empty()).then(|| s.actor.into()),
            actor_type: Some(s.actor_type.into()),
            ip: s.ip.parse().ok(),
        })
        .collect()
}

fn run(config: &DetectConfig, caps: Caps, steps: &[Step]) -> Vec<Finding> {
    let mut detector = Detector::new(config.clone(), caps);
    let mut findings = Vec::new();
    for event in observations(steps) {
        detector.observe(&event, &mut findings);
    }
    findings
}

/// Runs `steps` at the defaults and checks the findings: (detection, 0-based index of the
/// raising step).
fn check(name: &str, steps: &[Step], expected: &[(Detection, usize)]) {
    let findings = run(&DetectConfig::default(), Caps::default(), steps);
    let got: Vec<(Detection, usize)> = findings
        .iter()
        .map(|f| (f.detection, f.trigger_seq as usize - 1))
        .collect();
    assert_eq!(got, expected, "{name}");
    for finding in &findings {
        assert_eq!(
            finding.evidence.last(),
            Some(&finding.trigger_seq),
            "{name}: trigger last"
        );
        assert!(
            finding.evidence.windows(2).all(|w| w[0] < w[1]),
            "{name}: ascending"
        );
        assert!(!finding.summary.is_empty());
    }
}

fn repeat(n: usize, f: impl Fn(usize) -> Step) -> Vec<Step> {
    (0..n).map(f).collect()
}

#[test]
fn brute_force_needs_n_failures_within_the_window() {
    use Detection::BruteForce;
    let ten = repeat(10, |i| fail(i as i64 * 10, "usr_1", "198.51.100.9"));
    check("ten failures in 90 s", &ten, &[(BruteForce, 9)]);
    check("nine", &ten[..9], &[]);
    let spread = repeat(10, |i| fail(i as i64 * 70, "usr_1", "198.51.100.9"));
    check(
        "ten failures over 630 s, past the 600 s window",
        &spread,
        &[],
    );
    // Ten of ten actors is not brute force on one.
    let many: Vec<Step> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
        .iter()
        .enumerate()
        .map(|(i, actor)| fail(i as i64, actor, ""))
        .collect();
    check("ten actors once each", &many, &[]);
    // An ongoing attack: one alert per window, not one per failure.
    let long = repeat(60, |i| fail(i as i64 * 5, "usr_1", "198.51.100.9"));
    let mut expected = vec![(BruteForce, 9)];
    // Quiet for 600 s after the first (at 45 s), so the next at the first failure from 645 s.
    expected.extend((0..60).filter(|i| i * 5 == 645).map(|i| (BruteForce, i)));
    check("a 300 s attack", &long, &expected);
    let longer = repeat(130, |i| fail(i as i64 * 5, "usr_1", "198.51.100.9"));
    check(
        "a 650 s attack",
        &longer,
        &[(BruteForce, 9), (BruteForce, 129)],
    );
}

#[test]
fn password_spraying_counts_distinct_actors_from_one_address() {
    use Detection::PasswordSpraying;
    let actors = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"];
    let spray: Vec<Step> = actors
        .iter()
        .enumerate()
        .map(|(i, actor)| fail(i as i64 * 30, actor, "192.0.2.50"))
        .collect();
    check(
        "ten actors from one address",
        &spray[..10],
        &[(PasswordSpraying, 9)],
    );
    let spread: Vec<Step> = actors
        .iter()
        .enumerate()
        .map(|(i, actor)| {
            fail(
                i as i64,
                actor,
                if i % 2 == 0 {
                    "192.0.2.50"
                } else {
                    "192.0.2.51"
                },
            )
        })
        .collect();
    check("split over two addresses", &spread, &[]);
    let same: Vec<Step> = repeat(12, |i| {
        fail(i as i64, if i % 2 == 0 { "a" } else { "b" }, "192.0.2.50")
    });
    check(
        "two actors twelve times: brute force of neither",
        &same,
        &[],
    );
}

#[test]
fn credential_stuffing_needs_many_actors_addresses_and_a_high_failure_ratio() {
    use Detection::CredentialStuffing;
    const ACTORS: [&str; 60] = [
        "u00", "u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u09", "u10", "u11", "u12",
        "u13", "u14", "u15", "u16", "u17", "u18", "u19", "u20", "u21", "u22", "u23", "u24", "u25",
        "u26", "u27", "u28", "u29", "u30", "u31", "u32", "u33", "u34", "u35", "u36", "u37", "u38",
        "u39", "u40", "u41", "u42", "u43", "u44", "u45", "u46", "u47", "u48", "u49", "u50", "u51",
        "u52", "u53", "u54", "u55", "u56", "u57", "u58", "u59",
    ];
    const IPS: [&str; 12] = [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
        "198.51.100.5",
        "198.51.100.6",
        "198.51.100.7",
        "198.51.100.8",
        "198.51.100.9",
        "198.51.100.10",
        "198.51.100.11",
        "198.51.100.12",
    ];
    let stuffing = repeat(50, |i| fail(i as i64, ACTORS[i], IPS[i % 12]));
    check(
        "fifty failures, fifty actors, twelve addresses",
        &stuffing,
        &[(CredentialStuffing, 49)],
    );
    let few_addresses = repeat(50, |i| fail(i as i64, ACTORS[i], IPS[i % 5]));
    // Ten actors from each of five addresses: spraying from each, not stuffing.
    let sprays: Vec<_> = (45..50).map(|i| (Detection::PasswordSpraying, i)).collect();
    check("five addresses only", &few_addresses, &sprays);
    // As many successes as failures: a busy account, not an attack.
    let mut busy = Vec::new();
    for i in 0..60 {
        busy.push(fail(i as i64, ACTORS[i], IPS[i % 12]));
        busy.push(ok(i as i64, ACTORS[(i + 7) % 60], "203.0.113.1"));
    }
    check("half the sign-ins succeed", &busy, &[]);
}

#[test]
fn success_after_failures_ends_a_run_of_failures() {
    use Detection::{BruteForce, SuccessAfterFailures};
    let mut steps = repeat(5, |i| fail(i as i64 * 60, "usr_1", "192.0.2.7"));
    steps.push(ok(400, "usr_1", "192.0.2.7"));
    check(
        "five failures then success",
        &steps,
        &[(SuccessAfterFailures, 5)],
    );
    let mut four = repeat(4, |i| fail(i as i64 * 60, "usr_1", "192.0.2.7"));
    four.push(ok(300, "usr_1", "192.0.2.7"));
    check("four failures then success", &four, &[]);
    // A success in between ends the run: 3 + 3 failures are two short runs.
    let mut broken = repeat(3, |i| fail(i as i64, "usr_1", "192.0.2.7"));
    broken.push(ok(5, "usr_1", "192.0.2.7"));
    broken.extend(repeat(3, |i| fail(10 + i as i64, "usr_1", "192.0.2.7")));
    broken.push(ok(20, "usr_1", "192.0.2.7"));
    check("two short runs", &broken, &[]);
    let mut brute = repeat(10, |i| fail(i as i64, "usr_1", "192.0.2.7"));
    brute.push(ok(20, "usr_1", "192.0.2.7"));
    check(
        "brute force that got in",
        &brute,
        &[(BruteForce, 9), (SuccessAfterFailures, 10)],
    );
    let mut other = repeat(5, |i| fail(i as i64, "usr_1", "192.0.2.7"));
    other.push(ok(20, "usr_2", "192.0.2.7"));
    check("another actor's success", &other, &[]);
}

#[test]
fn new_address_needs_a_history_and_a_new_prefix() {
    use Detection::NewAddress;
    let day = 86_400;
    let mut history = repeat(3, |i| ok(i as i64 * day, "usr_1", "203.0.113.5"));
    let mut same_24 = history.clone();
    same_24.push(ok(4 * day, "usr_1", "203.0.113.77"));
    check("same /24", &same_24, &[]);
    let mut fresh = history.clone();
    fresh.push(ok(4 * day, "usr_1", "198.51.100.1"));
    fresh.push(ok(5 * day, "usr_1", "198.51.100.2"));
    check("a new /24, then again from it", &fresh, &[(NewAddress, 3)]);
    let mut short = history[..2].to_vec();
    short.push(ok(4 * day, "usr_1", "198.51.100.1"));
    check("two sign-ins are no history", &short, &[]);
    history.push(ok(4 * day, "usr_1", "2001:db8:1:2::9"));
    history.push(ok(5 * day, "usr_1", "2001:db8:1:ffff::1"));
    history.push(ok(6 * day, "usr_1", "2001:db8:2::1"));
    check("IPv6 by /48", &history, &[(NewAddress, 3), (NewAddress, 5)]);
    let mut failed = repeat(3, |i| ok(i as i64 * day, "usr_1", "203.0.113.5"));
    failed.push(fail(4 * day, "usr_1", "198.51.100.1"));
    check(
        "a failure from a new address is not a sign-in",
        &failed,
        &[],
    );
    let findings = run(&DetectConfig::default(), Caps::default(), &fresh);
    assert_eq!(
        findings[0].subject.prefix.as_deref(),
        Some("198.51.100.0/24")
    );
    assert_eq!(findings[0].evidence, vec![3, 4]);
}

#[test]
fn dormant_actor_acting_again() {
    use Detection::DormantActor;
    let day = 86_400;
    let steps = vec![
        ok(0, "usr_1", "203.0.113.5"),
        ok(29 * day, "usr_1", "203.0.113.5"),
        fail(70 * day, "usr_1", "203.0.113.5"),
        ok(60 * day + 1 + 29 * day, "usr_1", "203.0.113.5"),
        step(
            150 * day,
            "usr_1",
            "user.password_changed",
            Outcome::Success,
            "203.0.113.5",
        ),
    ];
    check(
        "29 days, then 60 with a failure between, then 60 again",
        &steps,
        &[(DormantActor, 3), (DormantActor, 4)],
    );
}

#[test]
fn api_key_from_a_new_address() {
    use Detection::ApiKeyNewAddress;
    let mut steps = repeat(3, |i| key_use(i as i64, "key_1", "10.1.2.3"));
    steps.push(key_use(10, "key_1", "10.1.2.200"));
    steps.push(key_use(20, "key_1", "10.9.9.9"));
    steps.push(key_use(30, "key_2", "10.9.9.9"));
    check(
        "same /24, new /24, another key",
        &steps,
        &[(ApiKeyNewAddress, 4)],
    );
    // A key's new address is not a person's new address.
    let people = repeat(5, |i| {
        let mut s = key_use(
            i as i64,
            "key_1",
            if i < 4 { "10.1.2.3" } else { "10.200.0.1" },
        );
        s.action = "user.login";
        s
    });
    check("a key signing in", &people, &[(ApiKeyNewAddress, 4)]);
}

#[test]
fn privilege_change_right_after_failures() {
    use Detection::{PrivilegeAfterFailures, SuccessAfterFailures};
    let mut steps = repeat(3, |i| fail(i as i64 * 10, "usr_1", "192.0.2.7"));
    steps.push(ok(40, "usr_1", "192.0.2.7"));
    steps.push(step(
        60,
        "usr_1",
        "mfa.disabled",
        Outcome::Success,
        "192.0.2.7",
    ));
    steps.push(step(
        70,
        "usr_1",
        "role.granted",
        Outcome::Success,
        "192.0.2.7",
    ));
    check(
        "MFA disabled after three failures, then a role",
        &steps,
        &[(PrivilegeAfterFailures, 4)],
    );
    let mut late = repeat(3, |i| fail(i as i64, "usr_1", "192.0.2.7"));
    late.push(step(
        1000,
        "usr_1",
        "mfa.disabled",
        Outcome::Success,
        "192.0.2.7",
    ));
    check("long after", &late, &[]);
    let mut refused = repeat(5, |i| fail(i as i64, "usr_1", "192.0.2.7"));
    refused.push(step(
        10,
        "usr_1",
        "role.granted",
        Outcome::Failure,
        "192.0.2.7",
    ));
    refused.push(ok(20, "usr_1", "192.0.2.7"));
    check("a refused change", &refused, &[(SuccessAfterFailures, 6)]);
}

#[test]
fn accounts_are_apart_and_config_is_per_account() {
    use Detection::BruteForce;
    let mut steps = repeat(10, |i| Step {
        account: if i % 2 == 0 { "mer_1" } else { "mer_2" },
        ..fail(i as i64, "usr_1", "192.0.2.7")
    });
    check("five in each of two accounts", &steps, &[]);
    let strict = DetectConfig::default()
        .with_overrides(&json!({"brute_force": {"failures": 5}}))
        .expect("override");
    assert_eq!(strict.brute_force.window_secs, 600, "other fields kept");
    let mut detector = Detector::new(DetectConfig::default(), Caps::default());
    detector.set_account_config("mer_2", Some(strict));
    let mut findings = Vec::new();
    for event in observations(&steps) {
        detector.observe(&event, &mut findings);
    }
    let got: Vec<_> = findings
        .iter()
        .map(|f| (f.detection, f.account_id.as_str()))
        .collect();
    assert_eq!(got, vec![(BruteForce, "mer_2")]);
    steps.truncate(0);
    let off = DetectConfig::default()
        .with_overrides(&json!({"brute_force": {"enabled": false}}))
        .expect("override");
    let findings = run(
        &off,
        Caps::default(),
        &repeat(20, |i| fail(i as i64, "usr_1", "")),
    );
    assert!(findings.is_empty());
}

#[test]
fn bad_overrides_are_refused() {
    let defaults = DetectConfig::default();
    for bad in [
        json!({"brute_force": {"failures": 0}}),
        json!({"brute_force": {"failures": 1000}}),
        json!({"brute_force": {"window": 5}}),
        json!({"credential_stuffing": {"failure_ratio": 0.1}}),
        json!({"new_address": {"ipv4_prefix": 33}}),
        json!({"dormant_actor": {"idle_days": "thirty"}}),
        json!({"nonsense": true}),
        json!([1]),
    ] {
        assert!(defaults.with_overrides(&bad).is_err(), "{bad}");
    }
    assert_eq!(defaults.with_overrides(&json!({})), Ok(defaults.clone()));
}

#[test]
fn memory_stays_within_the_caps_and_forgetting_invents_nothing() {
    let caps = Caps {
        actors_per_account: 150,
        addresses_per_account: 150,
        keys_per_account: 10,
        total_entries: 10_000,
    };
    let mut detector = Detector::new(DetectConfig::default(), caps);
    let unlimited = Caps {
        actors_per_account: usize::MAX,
        addresses_per_account: usize::MAX,
        keys_per_account: usize::MAX,
        total_entries: usize::MAX,
    };
    let mut unbounded = Detector::new(DetectConfig::default(), unlimited);
    let (mut findings, mut all_findings) = (Vec::new(), Vec::new());
    let mut seq = 0;
    for round in 0..5u64 {
        for account in 0..40u64 {
            // 100 returning actors (twice in the first round), each round from a new /24,
            // then a flood of 200 actors seen once, more than the account's cap.
            let returning = (0..100u64).chain(if round == 0 { 0..100 } else { 0..0 });
            let actors = returning
                .map(|a| (format!("usr_{a}"), a))
                .chain((0..200u64).map(|a| (format!("once_{round}_{a}"), a)));
            for (actor, n) in actors {
                seq += 1;
                let event = Observation {
                    account_id: format!("mer_{account}"),
                    seq,
                    at: Micros(T0 + seq as i64 * 1_000_000),
                    action: "user.login".into(),
                    outcome: Outcome::Success,
                    actor_id: Some(actor),
                    actor_type: Some("user".into()),
                    ip: Some(IpAddr::from([10, (n % 200) as u8, round as u8, 1])),
                };
                detector.observe(&event, &mut findings);
                unbounded.observe(&event, &mut all_findings);
                assert!(detector.entries() <= caps.total_entries + caps.actors_per_account + 1);
            }
        }
    }
    // A returning actor has its history of three sign-ins by the second round, so its
    // sign-ins from a new /24 in rounds 2, 3 and 4 raise findings. Forgetting may lose
    // findings, never add one; and since actors seen by two events are forgotten after
    // those seen once, the flood loses none here (a least-recently-used cap would keep only
    // the flood and lose them all).
    assert_eq!(all_findings.len(), 40 * 100 * 3);
    assert!(findings.iter().all(|f| all_findings.contains(f)));
    assert_eq!(
        findings.len(),
        all_findings.len(),
        "returning actors are kept"
    );
}

#[test]
fn the_same_events_give_the_same_findings_and_ids() {
    let mut steps = repeat(12, |i| fail(i as i64, "usr_1", "192.0.2.7"));
    steps.push(ok(20, "usr_1", "192.0.2.7"));
    let first = run(&DetectConfig::default(), Caps::default(), &steps);
    let second = run(&DetectConfig::default(), Caps::default(), &steps);
    assert_eq!(first, second);
    let ids: Vec<String> = first.iter().map(Finding::alert_id).collect();
    assert_eq!(
        ids,
        second.iter().map(Finding::alert_id).collect::<Vec<_>>()
    );
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[0].len(), 36);
    assert_eq!(alert_id(Detection::BruteForce, "mer_1", 10), ids[0]);
    assert_ne!(alert_id(Detection::BruteForce, "mer_2", 10), ids[0]);
}

#[test]
fn observations_come_from_stored_audit_bodies() {
    let body = r#"{"action":"user.login","actor":{"id":"usr_1","type":"user"},"origin":{"ip":"2001:db8::1"},"outcome":"failure"}"#;
    let observation = Observation::from_body("mer_1", 7, Micros(5), body).expect("audit");
    assert_eq!(observation.outcome, Outcome::Failure);
    assert_eq!(observation.actor_id.as_deref(), Some("usr_1"));
    assert_eq!(observation.ip, "2001:db8::1".parse().ok());
    assert!(Observation::from_body("mer_1", 7, Micros(5), r#"{"message":"x"}"#).is_none());
    assert!(
        Observation::from_body("mer_1", 7, Micros(5), "").is_none(),
        "a purged body"
    );
    for name in Detection::ALL.map(Detection::as_str) {
        assert_eq!(Detection::parse(name).map(Detection::as_str), Some(name));
    }
}

#[test]
fn stuffing_trace_of_the_benchmark() {
    let mut detector = Detector::new(DetectConfig::default(), Caps::default());
    let mut findings = Vec::new();
    for k in 0..80u64 {
        let event = Observation {
            account_id: "mer_1".into(),
            seq: k + 1,
            at: Micros(T0 + k as i64 * 100_000),
            action: "user.login".into(),
            outcome: if k % 20 == 19 {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            actor_id: Some(format!("usr_{}", k * 7919 % 100_000)),
            actor_type: Some("user".into()),
            ip: Some(IpAddr::from([10, 0, 5, (k % 40 + 1) as u8])),
        };
        detector.observe(&event, &mut findings);
    }
    let got: Vec<_> = findings
        .iter()
        .map(|f| (f.detection, f.trigger_seq))
        .collect();
    assert_eq!(
        got,
        vec![(Detection::CredentialStuffing, 52)],
        "the 50th failure"
    );
}

/// What a restarted detector must do: resume after its cursor having replayed a look-back
/// of twice the longest window, and raise exactly the window detections' findings the
/// uninterrupted run raised after the cursor (same ids), whatever the cursor.
#[test]
fn a_replay_from_twice_the_longest_window_raises_the_same_findings() {
    let config = DetectConfig::default();
    let mut steps = Vec::new();
    let actors = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    let mut t = 0;
    for round in 0..30i64 {
        // A brute-force run, a spray and a run that ends in a success and an MFA change,
        // with quiet gaps of varying length between them.
        for k in 0..11 {
            steps.push(fail(t + k * 20, "usr_1", "192.0.2.7"));
        }
        t += 11 * 20 + round * 37;
        for (k, actor) in actors.iter().enumerate() {
            steps.push(fail(t + k as i64 * 15, actor, "192.0.2.99"));
        }
        t += 200 + (round % 7) * 120;
        for k in 0..6 {
            steps.push(fail(t + k * 30, "usr_2", "198.51.100.4"));
        }
        steps.push(ok(t + 200, "usr_2", "198.51.100.4"));
        steps.push(step(
            t + 230,
            "usr_2",
            "mfa.disabled",
            Outcome::Success,
            "198.51.100.4",
        ));
        t += 300 + (round % 5) * 400;
    }
    let events = observations(&steps);
    let windowed = |f: &Finding| {
        !matches!(
            f.detection,
            Detection::NewAddress | Detection::DormantActor | Detection::ApiKeyNewAddress
        )
    };
    let full = run(&config, Caps::default(), &steps);
    assert!(full.len() > 60, "{}", full.len());
    let look_back = 2 * config.longest_window_secs() as i64 * 1_000_000;
    for cursor in (0..events.len()).step_by(13) {
        let cursor_at = events[cursor].at.0;
        let start = events.partition_point(|e| e.at.0 < cursor_at - look_back);
        let mut detector = Detector::new(config.clone(), Caps::default());
        let mut replayed = Vec::new();
        for event in &events[start..] {
            detector.observe(event, &mut replayed);
        }
        let cursor_seq = events[cursor].seq;
        let after = |findings: &[Finding]| -> Vec<String> {
            findings
                .iter()
                .filter(|f| f.trigger_seq > cursor_seq && windowed(f))
                .map(Finding::alert_id)
                .collect()
        };
        assert_eq!(after(&replayed), after(&full), "cursor at seq {cursor_seq}");
    }
}
