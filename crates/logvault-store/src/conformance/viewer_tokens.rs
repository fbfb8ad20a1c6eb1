//! Viewer tokens and embedding settings: a token is exchanged once (also when exchanges race),
//! never once expired or revoked, its session ends with revocation, lists and lookups keep to
//! the scope, and a partner's settings round-trip and replace each other.

use std::sync::Arc;

use logvault_core::embed::ViewGrant;
use logvault_core::password::token_hash;
use logvault_core::{AccountKind, Micros, Scope};

use super::account;
use crate::Store;
use crate::embed::{EmbedSettings, Redemption, ViewerTokenRecord};

const MINUTE: i64 = 60_000_000;

fn token(id: &str, account_id: &str, secret: &str, now: Micros) -> ViewerTokenRecord {
    ViewerTokenRecord {
        token_id: id.into(),
        token_hash: token_hash(secret).to_vec(),
        account_id: account_id.into(),
        issued_by: "0123456789abcdef".into(),
        actor_id: format!("end-user-of-{account_id}"),
        actor_name: Some("Ada Lovelace".into()),
        grant: ViewGrant {
            audit: true,
            threat: false,
            export: true,
        },
        created_at: now,
        expires_at: Micros(now.0 + 10 * MINUTE),
        redeemed_at: None,
        session_hash: None,
        session_expires_at: None,
        revoked_at: None,
    }
}

pub(super) async fn viewer_tokens(store: &dyn Store) {
    account(store, AccountKind::Partner, "par_embed_a", None).await;
    account(
        store,
        AccountKind::Merchant,
        "mer_embed_a1",
        Some("par_embed_a"),
    )
    .await;
    account(store, AccountKind::Partner, "par_embed_b", None).await;
    account(
        store,
        AccountKind::Merchant,
        "mer_embed_b1",
        Some("par_embed_b"),
    )
    .await;
    let now = Micros::now();
    let session_end = Micros(now.0 + 60 * MINUTE);

    // A token for an account that does not exist is refused.
    let ghost = token("vt_00000000000000ff", "mer_nobody", "ghost", now);
    assert!(store.create_viewer_token(ghost).await.is_err());

    // Stored and read back whole; the exchange marks it used and names the session.
    let first = token("vt_0000000000000001", "mer_embed_a1", "secret-1", now);
    store
        .create_viewer_token(first.clone())
        .await
        .expect("create token");
    let session_1 = token_hash("session-1");
    let redeemed = store
        .redeem_viewer_token(&first.token_hash, &session_1, now, session_end)
        .await
        .expect("redeem");
    let Redemption::Redeemed(record) = redeemed else {
        panic!("a fresh token is redeemed: {redeemed:?}");
    };
    assert_eq!(record.redeemed_at, Some(now));
    assert_eq!(record.session_hash.as_deref(), Some(&session_1[..]));
    assert_eq!(record.session_expires_at, Some(session_end));
    assert_eq!(
        ViewerTokenRecord {
            redeemed_at: None,
            session_hash: None,
            session_expires_at: None,
            ..(*record).clone()
        },
        first,
        "every field round-trips"
    );
    // Once only.
    let again = store
        .redeem_viewer_token(
            &first.token_hash,
            &token_hash("session-2"),
            now,
            session_end,
        )
        .await
        .expect("redeem again");
    assert!(
        matches!(&again, Redemption::Refused(r) if r.session_hash.as_deref() == Some(&session_1[..])),
        "a used token is refused and keeps its first session: {again:?}"
    );
    let unknown = store
        .redeem_viewer_token(
            &token_hash("never-minted"),
            &token_hash("s"),
            now,
            session_end,
        )
        .await
        .expect("redeem unknown");
    assert_eq!(unknown, Redemption::Unknown);
    let by_session = store
        .viewer_session(&session_1)
        .await
        .expect("session")
        .expect("the session is found by its hash");
    assert!(by_session.session_live(now));
    assert!(!by_session.session_live(Micros(session_end.0 + 1)));
    assert_eq!(
        store
            .viewer_session(&token_hash("session-2"))
            .await
            .expect("session"),
        None
    );

    // Expired tokens are refused, and stay unused.
    let expired = ViewerTokenRecord {
        expires_at: Micros(now.0 - 1),
        ..token("vt_0000000000000002", "mer_embed_a1", "secret-2", now)
    };
    store
        .create_viewer_token(expired.clone())
        .await
        .expect("create");
    let refused = store
        .redeem_viewer_token(&expired.token_hash, &token_hash("s2"), now, session_end)
        .await
        .expect("redeem expired");
    assert!(
        matches!(&refused, Redemption::Refused(r) if r.redeemed_at.is_none()),
        "{refused:?}"
    );

    // Racing exchanges of one token: exactly one wins.
    let raced = token("vt_0000000000000003", "mer_embed_a1", "secret-3", now);
    store
        .create_viewer_token(raced.clone())
        .await
        .expect("create");
    let hash = Arc::new(raced.token_hash.clone());
    let attempts = (0..8).map(|i| {
        let hash = hash.clone();
        async move {
            store
                .redeem_viewer_token(&hash, &token_hash(&format!("race-{i}")), now, session_end)
                .await
                .expect("redeem")
        }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, Redemption::Redeemed(_)))
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");

    // Revocation: in scope only, once, and it ends the session.
    let partner_b = Scope::Partner("par_embed_b".into());
    assert!(
        !store
            .revoke_viewer_token(&partner_b, &first.token_id, now)
            .await
            .expect("revoke"),
        "another partner cannot revoke it"
    );
    assert_eq!(
        store
            .viewer_token(&partner_b, &first.token_id)
            .await
            .expect("lookup"),
        None,
        "nor see it"
    );
    let partner_a = Scope::Partner("par_embed_a".into());
    assert!(
        store
            .revoke_viewer_token(&partner_a, &first.token_id, now)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_viewer_token(&partner_a, &first.token_id, now)
            .await
            .expect("revoke twice")
    );
    let revoked = store
        .viewer_token(&partner_a, &first.token_id)
        .await
        .expect("lookup")
        .expect("in scope");
    assert_eq!(revoked.revoked_at, Some(now));
    let session = store
        .viewer_session(&session_1)
        .await
        .expect("session")
        .expect("still found");
    assert!(!session.session_live(now), "revoking ends the session");
    // A revoked, never exchanged token cannot be exchanged.
    let unused = token("vt_0000000000000004", "mer_embed_a1", "secret-4", now);
    store
        .create_viewer_token(unused.clone())
        .await
        .expect("create");
    assert!(
        store
            .revoke_viewer_token(&Scope::All, &unused.token_id, now)
            .await
            .expect("admin revokes")
    );
    let refused = store
        .redeem_viewer_token(&unused.token_hash, &token_hash("s4"), now, session_end)
        .await
        .expect("redeem revoked");
    assert!(matches!(refused, Redemption::Refused(_)), "{refused:?}");

    // Lists keep to the scope, newest first, and honour the limit.
    let other = ViewerTokenRecord {
        created_at: Micros(now.0 + 1),
        ..token("vt_0000000000000005", "mer_embed_b1", "secret-5", now)
    };
    store
        .create_viewer_token(other.clone())
        .await
        .expect("create");
    let ids = |tokens: Vec<ViewerTokenRecord>| -> Vec<String> {
        tokens.into_iter().map(|t| t.token_id).collect()
    };
    let of_a = ids(store.viewer_tokens(&partner_a, 100).await.expect("list"));
    assert_eq!(of_a.len(), 4, "{of_a:?}");
    assert!(!of_a.contains(&other.token_id));
    assert_eq!(
        ids(store.viewer_tokens(&partner_b, 100).await.expect("list")),
        std::slice::from_ref(&other.token_id)
    );
    let merchant = Scope::Account("mer_embed_b1".into());
    assert_eq!(
        ids(store.viewer_tokens(&merchant, 100).await.expect("list")),
        std::slice::from_ref(&other.token_id)
    );
    let all = ids(store.viewer_tokens(&Scope::All, 2).await.expect("list"));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], other.token_id, "newest first");

    // Settings: none, then set, then replaced; only partners have them.
    assert_eq!(
        store.embed_settings("par_embed_a").await.expect("settings"),
        None
    );
    let settings = EmbedSettings {
        partner_id: "par_embed_a".into(),
        frame_origins: vec![
            "https://portal.example.com".into(),
            "http://127.0.0.1:4000".into(),
        ],
        brand_name: Some("Acme Pay".into()),
        brand_colour: Some("#112233".into()),
        brand_background: None,
        updated_at: now,
    };
    store
        .set_embed_settings(settings.clone())
        .await
        .expect("set settings");
    assert_eq!(
        store.embed_settings("par_embed_a").await.expect("settings"),
        Some(settings.clone())
    );
    let replaced = EmbedSettings {
        frame_origins: Vec::new(),
        brand_name: None,
        brand_colour: None,
        brand_background: Some("#ffffff".into()),
        updated_at: Micros(now.0 + 5),
        ..settings
    };
    store
        .set_embed_settings(replaced.clone())
        .await
        .expect("replace settings");
    assert_eq!(
        store.embed_settings("par_embed_a").await.expect("settings"),
        Some(replaced)
    );
    for not_partner in ["mer_embed_a1", "platform", "par_nobody"] {
        let result = store
            .set_embed_settings(EmbedSettings::empty(not_partner, now))
            .await;
        assert!(result.is_err(), "{not_partner}: {result:?}");
    }
}
