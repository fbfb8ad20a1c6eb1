//! Conformance: a changed password ends every open session of that person, and only theirs.

use logvault_core::Micros;

use crate::{SessionRecord, Store};

fn session(token: u8, user_id: &str) -> SessionRecord {
    SessionRecord {
        token_hash: vec![token; 32],
        user_id: user_id.into(),
        csrf_token: format!("csrf-{token}"),
        created_at: Micros::now(),
        expires_at: Micros(Micros::now().0 + 3_600_000_000),
        ended_at: None,
    }
}

/// Runs after `tenancy::people`, which creates `usr_mia` and `usr_pat`.
pub(super) async fn sign_out_everywhere(store: &dyn Store) {
    for record in [
        session(20, "usr_mia"),
        session(21, "usr_mia"),
        session(22, "usr_pat"),
    ] {
        store.create_session(record).await.expect("create session");
    }
    let changed = store
        .set_password("usr_mia", "$argon2id$v=19$new")
        .await
        .expect("set password");
    assert_eq!(changed, Some(2), "both of mia's open sessions end");
    for (token, ended) in [(20, true), (21, true), (22, false)] {
        let (found, _) = store
            .session(&[token; 32])
            .await
            .expect("find")
            .expect("still there");
        assert_eq!(found.ended_at.is_some(), ended, "session {token}");
    }
    let mia = store.user_by_name("mia").await.expect("find").expect("mia");
    assert_eq!(mia.password_hash, "$argon2id$v=19$new");
    assert_eq!(
        store
            .set_password("usr_mia", "$argon2id$v=19$again")
            .await
            .expect("set again"),
        Some(0),
        "nothing left to end"
    );
    assert_eq!(
        store.set_password("usr_nobody", "x").await.expect("set"),
        None
    );
}
