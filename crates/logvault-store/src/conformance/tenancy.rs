//! Conformance: accounts, API keys, users and sessions.

use logvault_core::account::NewAccount;
use logvault_core::{AccountKind, Micros, Permissions, Role, Scope, key};

use crate::{KeyRecord, Store, StoreError};

use super::{account, ids};

pub(super) async fn accounts(store: &dyn Store) {
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

pub(super) async fn keys(store: &dyn Store) {
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

pub(super) async fn people(store: &dyn Store) {
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
