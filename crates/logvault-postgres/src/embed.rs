//! Viewer tokens and partners' embedding settings (migration 7). The exchange is one
//! conditional `UPDATE … RETURNING`: under READ COMMITTED a second exchange racing the first
//! waits for its row lock, re-checks the condition on the updated row and matches nothing.

use deadpool_postgres::Client;
use logvault_core::embed::ViewGrant;
use logvault_core::{AccountKind, Micros, Scope};
use logvault_store::embed::{EmbedSettings, Redemption, ViewerTokenRecord};
use logvault_store::{StoreError, StoreResult};
use tokio_postgres::Row;

use crate::backend;
use crate::sql::{Sql, get};

const TOKEN_COLUMNS: &str = "token_id, token_hash, account_id, issued_by, actor_id, actor_name, \
     show_audit, show_threat, allow_export, created_at, expires_at, redeemed_at, session_hash, \
     session_expires_at, revoked_at";

fn token_from_row(row: &Row) -> StoreResult<ViewerTokenRecord> {
    Ok(ViewerTokenRecord {
        token_id: get(row, 0)?,
        token_hash: get(row, 1)?,
        account_id: get(row, 2)?,
        issued_by: get(row, 3)?,
        actor_id: get(row, 4)?,
        actor_name: get(row, 5)?,
        grant: ViewGrant {
            audit: get(row, 6)?,
            threat: get(row, 7)?,
            export: get(row, 8)?,
        },
        created_at: Micros(get(row, 9)?),
        expires_at: Micros(get(row, 10)?),
        redeemed_at: get::<Option<i64>>(row, 11)?.map(Micros),
        session_hash: get(row, 12)?,
        session_expires_at: get::<Option<i64>>(row, 13)?.map(Micros),
        revoked_at: get::<Option<i64>>(row, 14)?.map(Micros),
    })
}

pub(crate) async fn create_token(client: &Client, token: &ViewerTokenRecord) -> StoreResult<()> {
    let exists = client
        .query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&token.account_id])
        .await
        .map_err(backend)?
        .is_some();
    if !exists {
        return Err(StoreError::Invalid(format!(
            "account {} does not exist",
            token.account_id
        )));
    }
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO viewer_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING"
        ))
        .await
        .map_err(backend)?;
    let inserted = client
        .execute(
            &statement,
            &[
                &token.token_id,
                &token.token_hash,
                &token.account_id,
                &token.issued_by,
                &token.actor_id,
                &token.actor_name,
                &token.grant.audit,
                &token.grant.threat,
                &token.grant.export,
                &token.created_at.0,
                &token.expires_at.0,
                &token.redeemed_at.map(|at| at.0),
                &token.session_hash,
                &token.session_expires_at.map(|at| at.0),
                &token.revoked_at.map(|at| at.0),
            ],
        )
        .await
        .map_err(backend)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "viewer token {} already exists",
            token.token_id
        )));
    }
    Ok(())
}

pub(crate) async fn redeem(
    client: &Client,
    token_hash: &[u8],
    session_hash: &[u8],
    now: Micros,
    session_expires_at: Micros,
) -> StoreResult<Redemption> {
    let statement = client
        .prepare_cached(&format!(
            "UPDATE viewer_tokens SET redeemed_at = $2, session_hash = $3, \
             session_expires_at = $4 WHERE token_hash = $1 AND redeemed_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 RETURNING {TOKEN_COLUMNS}"
        ))
        .await
        .map_err(backend)?;
    let redeemed = client
        .query_opt(
            &statement,
            &[&token_hash, &now.0, &session_hash, &session_expires_at.0],
        )
        .await
        .map_err(backend)?;
    if let Some(row) = redeemed {
        return Ok(Redemption::Redeemed(Box::new(token_from_row(&row)?)));
    }
    Ok(match one(client, "token_hash", token_hash).await? {
        Some(record) => Redemption::Refused(Box::new(record)),
        None => Redemption::Unknown,
    })
}

async fn one(
    client: &Client,
    column: &str,
    value: &[u8],
) -> StoreResult<Option<ViewerTokenRecord>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM viewer_tokens WHERE {column} = $1"
        ))
        .await
        .map_err(backend)?;
    client
        .query_opt(&statement, &[&value])
        .await
        .map_err(backend)?
        .map(|row| token_from_row(&row))
        .transpose()
}

pub(crate) async fn session(
    client: &Client,
    session_hash: &[u8],
) -> StoreResult<Option<ViewerTokenRecord>> {
    one(client, "session_hash", session_hash).await
}

async fn scoped(
    client: &Client,
    scope: &Scope,
    token_id: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<ViewerTokenRecord>> {
    let mut sql = Sql::new(&format!(
        "SELECT {TOKEN_COLUMNS} FROM viewer_tokens WHERE true"
    ));
    sql.scope(scope, "account_id");
    sql.equals("token_id", &token_id.map(str::to_string));
    let limit = sql.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    sql.push(&format!(
        " ORDER BY created_at DESC, token_id DESC LIMIT {limit}"
    ));
    let statement = client.prepare_cached(&sql.text).await.map_err(backend)?;
    client
        .query(&statement, &sql.params())
        .await
        .map_err(backend)?
        .iter()
        .map(token_from_row)
        .collect()
}

pub(crate) async fn list(
    client: &Client,
    scope: &Scope,
    limit: usize,
) -> StoreResult<Vec<ViewerTokenRecord>> {
    scoped(client, scope, None, limit).await
}

pub(crate) async fn token(
    client: &Client,
    scope: &Scope,
    token_id: &str,
) -> StoreResult<Option<ViewerTokenRecord>> {
    Ok(scoped(client, scope, Some(token_id), 1).await?.pop())
}

pub(crate) async fn revoke(
    client: &Client,
    scope: &Scope,
    token_id: &str,
    now: Micros,
) -> StoreResult<bool> {
    let mut sql = Sql::new("UPDATE viewer_tokens SET revoked_at = ");
    let at = sql.bind(now.0);
    sql.push(&at);
    let id = sql.bind(token_id.to_string());
    sql.push(&format!(" WHERE token_id = {id} AND revoked_at IS NULL"));
    sql.scope(scope, "account_id");
    let statement = client.prepare_cached(&sql.text).await.map_err(backend)?;
    let changed = client
        .execute(&statement, &sql.params())
        .await
        .map_err(backend)?;
    Ok(changed == 1)
}

pub(crate) async fn settings(
    client: &Client,
    partner_id: &str,
) -> StoreResult<Option<EmbedSettings>> {
    let statement = client
        .prepare_cached(
            "SELECT partner_id, frame_origins, brand_name, brand_colour, brand_background, \
             updated_at FROM embed_settings WHERE partner_id = $1",
        )
        .await
        .map_err(backend)?;
    let Some(row) = client
        .query_opt(&statement, &[&partner_id])
        .await
        .map_err(backend)?
    else {
        return Ok(None);
    };
    Ok(Some(EmbedSettings {
        partner_id: get(&row, 0)?,
        frame_origins: get(&row, 1)?,
        brand_name: get(&row, 2)?,
        brand_colour: get(&row, 3)?,
        brand_background: get(&row, 4)?,
        updated_at: Micros(get(&row, 5)?),
    }))
}

pub(crate) async fn set_settings(client: &Client, settings: &EmbedSettings) -> StoreResult<()> {
    let kind: Option<String> = client
        .query_opt(
            "SELECT kind FROM accounts WHERE id = $1",
            &[&settings.partner_id],
        )
        .await
        .map_err(backend)?
        .map(|row| get(&row, 0))
        .transpose()?;
    if kind.as_deref() != Some(AccountKind::Partner.as_str()) {
        return Err(StoreError::Invalid(format!(
            "{} is not a partner account",
            settings.partner_id
        )));
    }
    let statement = client
        .prepare_cached(
            "INSERT INTO embed_settings (partner_id, frame_origins, brand_name, brand_colour, \
             brand_background, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (partner_id) DO UPDATE SET frame_origins = excluded.frame_origins, \
             brand_name = excluded.brand_name, brand_colour = excluded.brand_colour, \
             brand_background = excluded.brand_background, updated_at = excluded.updated_at",
        )
        .await
        .map_err(backend)?;
    client
        .execute(
            &statement,
            &[
                &settings.partner_id,
                &settings.frame_origins,
                &settings.brand_name,
                &settings.brand_colour,
                &settings.brand_background,
                &settings.updated_at.0,
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}
