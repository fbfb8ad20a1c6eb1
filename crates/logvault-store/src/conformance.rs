//! The conformance suite every backend runs: `run_all(store)` on a fresh, empty store.
//! Backends call it from their own tests so they cannot drift apart.

use std::collections::BTreeMap;

use logvault_core::account::NewAccount;
use logvault_core::validate::{Limits, validate_event};
use logvault_core::{
    AccountKind, EventKind, Micros, NewEvent, Permissions, Role, Scope, key, merkle,
};
use serde_json::{Value, json};

use crate::{
    EventQuery, IpRange, KeyRecord, Lookup, Store, StoreError, TrendGroup, TrendInterval,
    TrendQuery,
};

/// Runs every check against `store`, which must be freshly created and empty.
pub async fn run_all(store: &dyn Store) {
    accounts(store).await;
    keys(store).await;
    people(store).await;
    ingest_sequences(store).await;
    idempotency(store).await;
    rejected_requests_store_nothing(store).await;
    scoped_queries(store).await;
    filters(store).await;
    pagination(store).await;
    lookups(store).await;
    trends(store).await;
    concurrent_ingest(store).await;
    merkle_log(store).await;
}

/// An audit event for `account` with optional client id and extra fields.
pub fn audit(account: &str, id: Option<&str>, extra: Value) -> NewEvent {
    let mut value = json!({"account_id": account, "action": "user.login", "outcome": "success",
        "actor": {"id": "usr_1", "type": "user"}});
    merge(&mut value, id, extra);
    validate_event(EventKind::Audit, 0, &value, account, &Limits::default())
        .expect("valid audit event")
}

/// A threat event for `account` with optional client id and extra fields.
pub fn threat(account: &str, id: Option<&str>, extra: Value) -> NewEvent {
    let mut value = json!({"account_id": account, "source": "sdk", "error_type": "NetworkTimeout",
        "message": "request timed out", "version": "ios-sdk 4.2.1", "environment": "production"});
    merge(&mut value, id, extra);
    validate_event(EventKind::Threat, 0, &value, account, &Limits::default())
        .expect("valid threat event")
}

fn merge(value: &mut Value, id: Option<&str>, extra: Value) {
    if let Some(id) = id {
        value["id"] = id.into();
    }
    if let (Some(target), Value::Object(extra)) = (value.as_object_mut(), extra) {
        target.extend(extra);
    }
}

async fn account(store: &dyn Store, kind: AccountKind, id: &str, partner: Option<&str>) {
    let new = NewAccount {
        kind,
        partner_id: partner.map(str::to_string),
        name: format!("{id} name"),
        id: Some(id.into()),
    };
    store.create_account(new).await.expect("create account");
}

fn ids(accounts: &[logvault_core::Account]) -> Vec<&str> {
    accounts.iter().map(|account| account.id.as_str()).collect()
}

async fn accounts(store: &dyn Store) {
    account(store, AccountKind::Partner, "par_a", None).await;
    account(store, AccountKind::Partner, "par_b", None).await;
    account(store, AccountKind::Merchant, "mer_a1", Some("par_a")).await;
    account(store, AccountKind::Merchant, "mer_a2", Some("par_a")).await;
    account(store, AccountKind::Merchant, "mer_b1", Some("par_b")).await;
    account(store, AccountKind::Merchant, "mer_p0", None).await;
    let generated = store
        .create_account(NewAccount {
            kind: AccountKind::Merchant,
            partner_id: None,
            name: "generated".into(),
            id: None,
        })
        .await
        .expect("generated id");
    assert!(generated.id.starts_with("mer_"), "{}", generated.id);

    let all = store.list_accounts(&Scope::All).await.expect("list");
    assert_eq!(all.len(), 8, "platform + 7 created");
    let partner_a = store
        .list_accounts(&Scope::Partner("par_a".into()))
        .await
        .expect("list");
    assert_eq!(ids(&partner_a), ["mer_a1", "mer_a2", "par_a"]);
    let merchant = store
        .list_accounts(&Scope::Account("mer_b1".into()))
        .await
        .expect("list");
    assert_eq!(ids(&merchant), ["mer_b1"]);
    let wanted: Vec<String> = ["mer_a1", "mer_b1", "nope"].map(String::from).to_vec();
    let in_scope = store
        .accounts_in_scope(&Scope::Partner("par_a".into()), &wanted)
        .await
        .expect("scope");
    assert_eq!(ids(&in_scope), ["mer_a1"]);

    let refused = [
        NewAccount {
            kind: AccountKind::Merchant,
            partner_id: Some("mer_a1".into()),
            name: "x".into(),
            id: None,
        },
        NewAccount {
            kind: AccountKind::Merchant,
            partner_id: Some("par_zz".into()),
            name: "x".into(),
            id: None,
        },
        NewAccount {
            kind: AccountKind::Partner,
            partner_id: Some("par_a".into()),
            name: "x".into(),
            id: None,
        },
        NewAccount {
            kind: AccountKind::Platform,
            partner_id: None,
            name: "x".into(),
            id: None,
        },
        NewAccount {
            kind: AccountKind::Merchant,
            partner_id: None,
            name: "x".into(),
            id: Some("bad id".into()),
        },
        NewAccount {
            kind: AccountKind::Merchant,
            partner_id: None,
            name: " ".into(),
            id: None,
        },
    ];
    for new in refused {
        let result = store.create_account(new.clone()).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{new:?} gave {result:?}"
        );
    }
    let duplicate = NewAccount {
        kind: AccountKind::Merchant,
        partner_id: None,
        name: "x".into(),
        id: Some("mer_a1".into()),
    };
    assert!(matches!(
        store.create_account(duplicate).await,
        Err(StoreError::AlreadyExists(_))
    ));
}

fn key_record(role: Role, account: &str) -> KeyRecord {
    let generated = key::generate().expect("randomness");
    KeyRecord {
        key_id: generated.key_id,
        secret_hash: generated.secret_hash.to_vec(),
        role,
        account_id: account.into(),
        permissions: Permissions::parse("ingest,read").expect("permissions"),
        name: Some("conformance".into()),
        created_at: Micros::now(),
        revoked_at: None,
    }
}

async fn keys(store: &dyn Store) {
    let good = [
        (Role::Admin, "platform"),
        (Role::Partner, "par_a"),
        (Role::Merchant, "mer_a1"),
    ];
    for (role, account) in good {
        let record = key_record(role, account);
        store.create_key(record.clone()).await.expect("create key");
        assert_eq!(store.key(&record.key_id).await.expect("find"), Some(record));
    }
    let mismatched = [
        (Role::Admin, "par_a"),
        (Role::Partner, "mer_a1"),
        (Role::Merchant, "par_a"),
        (Role::Merchant, "mer_none"),
    ];
    for (role, account) in mismatched {
        let result = store.create_key(key_record(role, account)).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{role:?} on {account}: {result:?}"
        );
    }
    let keys = store.list_keys().await.expect("list keys");
    assert_eq!(keys.len(), 3);
    let victim = &keys[0].key_id;
    assert!(store.revoke_key(victim).await.expect("revoke"));
    assert!(
        !store.revoke_key(victim).await.expect("revoke twice"),
        "second revoke reports nothing to do"
    );
    assert!(
        !store
            .revoke_key("0000000000000000")
            .await
            .expect("revoke unknown")
    );
    let revoked = store
        .key(victim)
        .await
        .expect("find")
        .expect("still listed");
    assert!(revoked.revoked_at.is_some());
    assert_eq!(store.key("ffffffffffffffff").await.expect("find"), None);
}

fn user(name: &str, role: Role, account: &str) -> crate::UserRecord {
    crate::UserRecord {
        user_id: format!("usr_{name}"),
        username: name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        role,
        account_id: account.into(),
        created_at: Micros::now(),
        disabled: false,
    }
}

async fn people(store: &dyn Store) {
    let users = [
        user("ada", Role::Admin, "platform"),
        user("pat", Role::Partner, "par_a"),
        user("mia", Role::Merchant, "mer_a1"),
    ];
    for record in &users {
        store
            .create_user(record.clone())
            .await
            .expect("create user");
    }
    let duplicate = store
        .create_user(user("ada", Role::Admin, "platform"))
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::AlreadyExists(_))),
        "{duplicate:?}"
    );
    for bad in [
        user("bob", Role::Merchant, "par_a"),
        user("bad name", Role::Admin, "platform"),
        user("", Role::Admin, "platform"),
    ] {
        let result = store.create_user(bad.clone()).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{bad:?}: {result:?}"
        );
    }
    assert_eq!(
        store.user_by_name("pat").await.expect("find").as_ref(),
        Some(&users[1])
    );
    let names: Vec<String> = store
        .list_users()
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["ada", "mia", "pat"]);
    assert_eq!(store.user_by_name("nobody").await.expect("find"), None);

    let session = crate::SessionRecord {
        token_hash: vec![7; 32],
        user_id: "usr_mia".into(),
        csrf_token: "csrf".into(),
        created_at: Micros::now(),
        expires_at: Micros(Micros::now().0 + 3_600_000_000),
        ended_at: None,
    };
    store
        .create_session(session.clone())
        .await
        .expect("create session");
    let (found, owner) = store
        .session(&[7; 32])
        .await
        .expect("find")
        .expect("exists");
    assert_eq!((found.clone(), owner.username.as_str()), (session, "mia"));
    assert!(store.end_session(&[7; 32]).await.expect("end"));
    assert!(
        !store.end_session(&[7; 32]).await.expect("end twice"),
        "already ended"
    );
    let (ended, _) = store
        .session(&[7; 32])
        .await
        .expect("find")
        .expect("still there");
    assert!(ended.ended_at.is_some());
    assert_eq!(store.session(&[8; 32]).await.expect("find"), None);
}

async fn ingest_sequences(store: &dyn Store) {
    let before = store.log_size().await.expect("size");
    assert_eq!(before, 0, "the suite needs an empty log");
    let batch = vec![
        audit("mer_a1", None, json!({})),
        threat("mer_a1", None, json!({})),
        audit("mer_a2", None, json!({})),
        audit("mer_a1", None, json!({})),
    ];
    let outcomes = store.ingest(batch).await.expect("ingest");
    let seqs: Vec<u64> = outcomes.iter().map(|o| o.seq).collect();
    let account_seqs: Vec<u64> = outcomes.iter().map(|o| o.account_seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(account_seqs, [1, 2, 1, 3]);
    assert!(outcomes.iter().all(|o| !o.duplicate));
    assert!(
        outcomes
            .windows(2)
            .all(|w| w[0].received_at <= w[1].received_at)
    );
    let later = store
        .ingest(vec![audit("mer_a2", None, json!({}))])
        .await
        .expect("ingest");
    assert_eq!((later[0].seq, later[0].account_seq), (5, 2));
    assert!(
        later[0].received_at >= outcomes[3].received_at,
        "received_at never decreases along seq"
    );
    assert_eq!(store.log_size().await.expect("size"), 5);

    // The stored event hashes to what the ingest reported, and occurred_at stays apart.
    let claimed = "2020-01-01T00:00:00.000000Z";
    let stamped = store
        .ingest(vec![audit(
            "mer_a1",
            Some("claimed"),
            json!({"occurred_at": claimed}),
        )])
        .await
        .expect("ingest");
    let Lookup::Found(event) = store
        .event(&Scope::All, EventKind::Audit, "claimed", None)
        .await
        .expect("lookup")
    else {
        panic!("the event just stored is not found");
    };
    assert_eq!(event.leaf_hash, stamped[0].leaf_hash);
    assert_eq!(event.compute_leaf_hash(), event.leaf_hash);
    assert_eq!(
        event.occurred_at.map(Micros::to_rfc3339).as_deref(),
        Some(claimed)
    );
    assert!(event.received_at > Micros::parse_rfc3339("2026-01-01T00:00:00Z").expect("time"));
}

async fn idempotency(store: &dyn Store) {
    let first = store
        .ingest(vec![threat("mer_a1", Some("same"), json!({}))])
        .await
        .expect("first");
    let again = store
        .ingest(vec![threat("mer_a1", Some("same"), json!({}))])
        .await
        .expect("again");
    assert!(again[0].duplicate);
    assert_eq!(again[0].seq, first[0].seq);
    assert_eq!(again[0].leaf_hash, first[0].leaf_hash);
    let size = store.log_size().await.expect("size");
    let conflict = store
        .ingest(vec![threat(
            "mer_a1",
            Some("same"),
            json!({"message": "different"}),
        )])
        .await;
    assert!(
        matches!(conflict, Err(StoreError::IdConflict { index: 0, .. })),
        "{conflict:?}"
    );
    // Ids are per account: another account may use the same id.
    let other = store
        .ingest(vec![threat("mer_b1", Some("same"), json!({}))])
        .await
        .expect("other account");
    assert!(!other[0].duplicate);
    assert_eq!(store.log_size().await.expect("size"), size + 1);
    // The same id twice in one request: the second is a duplicate of the first.
    let twice = store
        .ingest(vec![
            audit("mer_a2", Some("twice"), json!({})),
            audit("mer_a2", Some("twice"), json!({})),
        ])
        .await
        .expect("twice");
    assert_eq!((twice[0].duplicate, twice[1].duplicate), (false, true));
    assert_eq!(twice[0].seq, twice[1].seq);
}

async fn rejected_requests_store_nothing(store: &dyn Store) {
    let size = store.log_size().await.expect("size");
    let cases: Vec<(Vec<NewEvent>, &str)> = vec![
        (
            vec![
                audit("mer_a1", Some("fresh-1"), json!({})),
                threat("mer_a1", Some("same"), json!({"message": "changed"})),
            ],
            "conflict at index 1",
        ),
        (
            vec![
                audit("mer_a1", Some("fresh-2"), json!({})),
                audit("mer_nowhere", None, json!({})),
            ],
            "unknown account at index 1",
        ),
    ];
    for (batch, case) in cases {
        let result = store.ingest(batch).await;
        match (case, &result) {
            ("conflict at index 1", Err(StoreError::IdConflict { index: 1, .. })) => {}
            ("unknown account at index 1", Err(StoreError::AccountNotWritable { index: 1 })) => {}
            _ => panic!("{case}: {result:?}"),
        }
        assert_eq!(
            store.log_size().await.expect("size"),
            size,
            "{case}: nothing stored"
        );
    }
    for id in ["fresh-1", "fresh-2"] {
        let lookup = store
            .event(&Scope::All, EventKind::Audit, id, None)
            .await
            .expect("lookup");
        assert_eq!(lookup, Lookup::NotFound, "{id} must not be stored");
    }
    // A later request still gets the next seq: the rejected ones left no gap.
    let next = store
        .ingest(vec![audit("mer_p0", None, json!({}))])
        .await
        .expect("ingest");
    assert_eq!(next[0].seq, size + 1);
}

async fn all_events(
    store: &dyn Store,
    scope: &Scope,
    query: EventQuery,
) -> Vec<logvault_core::StoredEvent> {
    let mut query = query;
    let mut events = Vec::new();
    loop {
        let page = store.query(scope, &query).await.expect("query");
        events.extend(page.events);
        match page.next_before_seq {
            Some(next) => query.before_seq = Some(next),
            None => return events,
        }
    }
}

async fn scoped_queries(store: &dyn Store) {
    store
        .ingest(vec![
            audit("par_b", None, json!({})),
            audit("platform", None, json!({})),
        ])
        .await
        .expect("ingest");
    let cases: Vec<(Scope, &[&str])> = vec![
        (
            Scope::All,
            &["mer_a1", "mer_a2", "mer_b1", "mer_p0", "par_b", "platform"],
        ),
        (Scope::Partner("par_a".into()), &["mer_a1", "mer_a2"]),
        (Scope::Partner("par_b".into()), &["mer_b1", "par_b"]),
        (Scope::Account("mer_a2".into()), &["mer_a2"]),
        (Scope::Account("mer_p0".into()), &["mer_p0"]),
    ];
    for (scope, expected) in cases {
        let mut seen: Vec<String> = Vec::new();
        for kind in [EventKind::Audit, EventKind::Threat] {
            let events = all_events(store, &scope, EventQuery::new(kind, 1000)).await;
            assert!(
                events.iter().all(|e| e.kind == kind),
                "{scope:?}: only {kind:?}"
            );
            seen.extend(events.into_iter().map(|e| e.account_id));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen, expected, "{scope:?}");
        // Naming a foreign account inside a scope yields nothing.
        let mut foreign = EventQuery::new(EventKind::Threat, 1000);
        foreign.account_id = Some("mer_b1".into());
        let page = store.query(&scope, &foreign).await.expect("query");
        let visible = expected.contains(&"mer_b1");
        assert_eq!(
            !page.events.is_empty(),
            visible,
            "{scope:?} filtering mer_b1"
        );
    }
}

async fn filters(store: &dyn Store) {
    let start = Micros::now();
    let batch = vec![
        audit(
            "mer_b1",
            Some("f-1"),
            json!({"action": "user.logout", "outcome": "failure", "actor": {"id": "usr_f"},
            "origin": {"ip": "198.51.100.7"}, "request_id": "req_f", "metadata": {"note": "Needle in a haystack"}}),
        ),
        audit(
            "mer_b1",
            Some("f-2"),
            json!({"origin": {"ip": "2001:db8::1"}, "metadata": {"note": "Überweisung \"hart\""}}),
        ),
        threat(
            "mer_b1",
            Some("f-3"),
            json!({"source": "api", "error_type": "RateLimit", "version": "API 2024-06-01", "environment": "sandbox"}),
        ),
    ];
    store.ingest(batch).await.expect("ingest");
    let scope = Scope::Account("mer_b1".into());
    fn range(low: &str, high: &str) -> Option<IpRange> {
        let bytes = |text: &str| logvault_core::validate::ip_bytes(text.parse().expect("ip"));
        Some(IpRange {
            low: bytes(low),
            high: bytes(high),
        })
    }
    type Edit = Box<dyn Fn(&mut EventQuery)>;
    let cases: Vec<(EventKind, Edit, Vec<&str>)> = vec![
        (
            EventKind::Audit,
            Box::new(|q| q.action = Some("user.logout".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.outcome = Some("failure".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.actor_id = Some("usr_f".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.request_id = Some("req_f".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.ip = range("198.51.100.0", "198.51.100.255")),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.ip = range("2001:db8::", "2001:db8::ffff")),
            vec!["f-2"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.text = Some("needle IN A".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.text = Some("ÜBERWEISUNG".into())),
            vec!["f-2"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.text = Some("\"hart\"".into())),
            vec!["f-2"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.text = Some("actor".into())),
            vec![],
        ),
        (
            EventKind::Threat,
            Box::new(|q| q.error_type = Some("RateLimit".into())),
            vec!["f-3"],
        ),
        (
            EventKind::Threat,
            Box::new(|q| q.source = Some("api".into())),
            vec!["f-3"],
        ),
        (
            EventKind::Threat,
            Box::new(|q| q.version = Some("API 2024-06-01".into())),
            vec!["f-3"],
        ),
        (
            EventKind::Threat,
            Box::new(|q| q.environment = Some("sandbox".into())),
            vec!["f-3"],
        ),
        (
            EventKind::Audit,
            Box::new(move |q| q.from = Some(start)),
            vec!["f-2", "f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(move |q| q.to = Some(start)),
            vec![],
        ),
    ];
    for (index, (kind, edit, expected)) in cases.into_iter().enumerate() {
        let mut query = EventQuery::new(kind, 1000);
        query.account_id = Some("mer_b1".into());
        edit(&mut query);
        let events = all_events(store, &scope, query.clone()).await;
        let mut found: Vec<&str> = events
            .iter()
            .map(|e| e.event_id.as_str())
            .filter(|id| id.starts_with("f-"))
            .collect();
        if query.from.is_none() && query.to.is_none() {
            found.retain(|id| expected.contains(id));
            assert_eq!(
                events.len(),
                expected.len(),
                "case {index}: {query:?} returned {events:?}"
            );
        }
        assert_eq!(found, expected, "case {index}: {query:?}");
    }
}

async fn pagination(store: &dyn Store) {
    let batch: Vec<NewEvent> = (0..25)
        .map(|i| audit("mer_a2", Some(&format!("page-{i}")), json!({})))
        .collect();
    store.ingest(batch).await.expect("ingest");
    let scope = Scope::Account("mer_a2".into());
    let mut query = EventQuery::new(EventKind::Audit, 10);
    let first = store.query(&scope, &query).await.expect("page 1");
    assert_eq!(first.events.len(), 10);
    // New events arriving between pages do not shift later pages.
    store
        .ingest(vec![audit("mer_a2", Some("late"), json!({}))])
        .await
        .expect("ingest");
    let mut seen: Vec<u64> = first.events.iter().map(|e| e.seq).collect();
    query.before_seq = first.next_before_seq;
    while query.before_seq.is_some() {
        let page = store.query(&scope, &query).await.expect("page");
        seen.extend(page.events.iter().map(|e| e.seq));
        query.before_seq = page.next_before_seq;
    }
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    let everything = all_events(store, &scope, EventQuery::new(EventKind::Audit, 1000)).await;
    assert_eq!(
        seen.len() + 1,
        everything.len(),
        "every event once, plus the late one"
    );
}

async fn lookups(store: &dyn Store) {
    store
        .ingest(vec![
            audit("mer_a1", Some("shared"), json!({})),
            audit("mer_a2", Some("shared"), json!({})),
        ])
        .await
        .expect("ingest");
    let found = |lookup: Lookup| match lookup {
        Lookup::Found(event) => format!("found {}", event.account_id),
        Lookup::NotFound => "not found".into(),
        Lookup::Ambiguous => "ambiguous".into(),
    };
    let cases: Vec<(Scope, EventKind, &str, Option<&str>, &str)> = vec![
        (Scope::All, EventKind::Audit, "shared", None, "ambiguous"),
        (
            Scope::Partner("par_a".into()),
            EventKind::Audit,
            "shared",
            None,
            "ambiguous",
        ),
        (
            Scope::Partner("par_a".into()),
            EventKind::Audit,
            "shared",
            Some("mer_a2"),
            "found mer_a2",
        ),
        (
            Scope::Account("mer_a1".into()),
            EventKind::Audit,
            "shared",
            None,
            "found mer_a1",
        ),
        (
            Scope::Account("mer_a1".into()),
            EventKind::Audit,
            "shared",
            Some("mer_a2"),
            "not found",
        ),
        (
            Scope::Partner("par_b".into()),
            EventKind::Audit,
            "shared",
            None,
            "not found",
        ),
        (Scope::All, EventKind::Threat, "shared", None, "not found"),
        (
            Scope::All,
            EventKind::Audit,
            "no-such-id",
            None,
            "not found",
        ),
    ];
    for (scope, kind, id, account, expected) in cases {
        let lookup = store
            .event(&scope, kind, id, account)
            .await
            .expect("lookup");
        assert_eq!(
            found(lookup),
            expected,
            "{scope:?} {kind:?} {id} {account:?}"
        );
    }
}

async fn trends(store: &dyn Store) {
    let batch = vec![
        threat("mer_p0", None, json!({"version": "v1"})),
        threat("mer_p0", None, json!({"version": "v1"})),
        threat(
            "mer_p0",
            None,
            json!({"version": "v2", "environment": "sandbox"}),
        ),
    ];
    store.ingest(batch).await.expect("ingest");
    let now = Micros::now();
    let query = |group_by| TrendQuery {
        account_id: None,
        from: Micros(now.0 - 3_600_000_000),
        to: Micros(now.0 + 1),
        group_by,
        interval: TrendInterval::Day,
    };
    let count = |rows: Vec<crate::TrendRow>| {
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for row in rows {
            assert_eq!(
                row.bucket.0 % TrendInterval::Day.micros(),
                0,
                "buckets start on the interval"
            );
            *totals.entry(row.key).or_default() += row.count;
        }
        totals
    };
    let scope = Scope::Account("mer_p0".into());
    let by_version = count(
        store
            .trends(&scope, &query(TrendGroup::Version))
            .await
            .expect("trends"),
    );
    assert_eq!(
        by_version,
        BTreeMap::from([("v1".to_string(), 2), ("v2".to_string(), 1)])
    );
    let by_environment = count(
        store
            .trends(&scope, &query(TrendGroup::Environment))
            .await
            .expect("trends"),
    );
    assert_eq!(
        by_environment,
        BTreeMap::from([("production".to_string(), 2), ("sandbox".to_string(), 1)])
    );
    let foreign = count(
        store
            .trends(
                &Scope::Account("mer_a1".into()),
                &query(TrendGroup::Version),
            )
            .await
            .expect("trends"),
    );
    assert!(
        !foreign.contains_key("v1") && !foreign.contains_key("v2"),
        "{foreign:?}"
    );
}

async fn concurrent_ingest(store: &dyn Store) {
    let size = store.log_size().await.expect("size");
    let requests = (0..16).map(|i| {
        let batch: Vec<NewEvent> = (0..10)
            .map(|j| {
                audit(
                    if i % 2 == 0 { "mer_a1" } else { "mer_b1" },
                    Some(&format!("c-{i}-{j}")),
                    json!({}),
                )
            })
            .collect();
        store.ingest(batch)
    });
    let results = futures_join_all(requests).await;
    let mut seqs: Vec<u64> = results
        .into_iter()
        .flat_map(|r| r.expect("ingest"))
        .map(|o| o.seq)
        .collect();
    seqs.sort_unstable();
    let expected: Vec<u64> = (size + 1..=size + 160).collect();
    assert_eq!(
        seqs, expected,
        "concurrent requests get distinct, gapless seqs"
    );
}

async fn merkle_log(store: &dyn Store) {
    // Cross several 256-leaf blocks so stored block roots are used by proofs.
    for chunk in 0..3 {
        let batch: Vec<NewEvent> = (0..300)
            .map(|i| {
                threat(
                    if i % 3 == 0 { "mer_a1" } else { "mer_b1" },
                    Some(&format!("m-{chunk}-{i}")),
                    json!({}),
                )
            })
            .collect();
        store.ingest(batch).await.expect("ingest");
    }
    let mut leaves = Vec::new();
    loop {
        let scanned = store
            .scan(&Scope::All, leaves.len() as u64, 500)
            .await
            .expect("scan");
        if scanned.is_empty() {
            break;
        }
        for item in scanned {
            assert_eq!(
                item.event.seq,
                leaves.len() as u64 + 1,
                "scan is gapless and ordered"
            );
            assert_eq!(item.event.compute_leaf_hash(), item.event.leaf_hash);
            leaves.push(item.event.leaf_hash);
        }
    }
    let head = store.log_head().await.expect("head");
    assert_eq!(head.size, leaves.len() as u64);
    assert_eq!(
        head.root,
        merkle::root_of(&leaves),
        "the head's root covers every leaf"
    );
    let blocks = store.merkle_blocks(0, 1000).await.expect("blocks");
    assert_eq!(blocks.len(), leaves.len() / 256);
    for (block, root) in &blocks {
        let start = *block as usize * 256;
        assert_eq!(
            *root,
            merkle::root_of(&leaves[start..start + 256]),
            "block {block}"
        );
    }

    let n = leaves.len() as u64;
    let sizes = [1, 2, 255, 256, 257, 511, 512, 700, n - 1, n];
    for tree_size in sizes {
        let root = merkle::root_of(&leaves[..tree_size as usize]);
        for seq in [1, tree_size / 2 + 1, tree_size] {
            let proof = store
                .inclusion_proof(&Scope::All, seq, tree_size)
                .await
                .expect("proof")
                .expect("in scope");
            merkle::verify_inclusion(&leaves[seq as usize - 1], seq - 1, tree_size, &proof, &root)
                .unwrap_or_else(|e| panic!("inclusion of {seq} in {tree_size}: {e}"));
        }
        for old_size in [1, tree_size / 3 + 1, tree_size] {
            let old_root = merkle::root_of(&leaves[..old_size as usize]);
            let proof = store
                .consistency_proof(old_size, tree_size)
                .await
                .expect("proof");
            merkle::verify_consistency(old_size, tree_size, &old_root, &root, &proof)
                .unwrap_or_else(|e| panic!("consistency {old_size} -> {tree_size}: {e}"));
        }
    }
    // Proofs are scoped like reads, and sizes beyond the log are refused.
    let foreign_seq = store
        .scan(&Scope::Account("mer_b1".into()), 0, 1)
        .await
        .expect("scan")[0]
        .event
        .seq;
    let as_merchant = store
        .inclusion_proof(&Scope::Account("mer_a1".into()), foreign_seq, n)
        .await
        .expect("proof");
    assert_eq!(as_merchant, None, "no proof for another account's event");
    assert!(matches!(
        store.inclusion_proof(&Scope::All, 1, n + 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.consistency_proof(1, n + 1).await,
        Err(StoreError::Invalid(_))
    ));

    // Checkpoints: one root per size, forever.
    assert_eq!(store.latest_checkpoint().await.expect("latest"), None);
    let checkpoint = |size: u64, root: merkle::Hash| crate::StoredCheckpoint {
        size,
        root,
        note: format!("note {size}"),
        signed_at: Micros::now(),
    };
    store
        .add_checkpoint(checkpoint(10, merkle::root_of(&leaves[..10])))
        .await
        .expect("add");
    store
        .add_checkpoint(checkpoint(n, head.root))
        .await
        .expect("add");
    store
        .add_checkpoint(checkpoint(n, head.root))
        .await
        .expect("the same checkpoint again is fine");
    let conflicting = store.add_checkpoint(checkpoint(10, head.root)).await;
    assert!(
        matches!(conflicting, Err(StoreError::AlreadyExists(_))),
        "{conflicting:?}"
    );
    assert_eq!(
        store
            .latest_checkpoint()
            .await
            .expect("latest")
            .map(|c| c.size),
        Some(n)
    );
    let sizes: Vec<u64> = store
        .checkpoints()
        .await
        .expect("all")
        .iter()
        .map(|c| c.size)
        .collect();
    assert_eq!(sizes, [10, n]);
}

/// Awaits every future concurrently (a tiny join_all, to avoid a dependency for tests).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
