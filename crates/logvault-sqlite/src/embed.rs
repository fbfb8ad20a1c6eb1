//! Viewer tokens and partners' embedding settings (migration 6), written on the admin
//! connection, never by the writer.

use logvault_core::embed::ViewGrant;
use logvault_core::{AccountKind, Micros, Scope};
use logvault_store::embed::{EmbedSettings, Redemption, ViewerTokenRecord};
use logvault_store::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::backend;
use crate::read::scope_clause;

const TOKEN_COLUMNS: &str = "token_id, token_hash, account_id, issued_by, actor_id, actor_name, \
     show_audit, show_threat, allow_export, created_at, expires_at, redeemed_at, session_hash, \
     session_expires_at, revoked_at";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<ViewerTokenRecord> {
    Ok(ViewerTokenRecord {
        token_id: row.get(0)?,
        token_hash: row.get(1)?,
        account_id: row.get(2)?,
        issued_by: row.get(3)?,
        actor_id: row.get(4)?,
        actor_name: row.get(5)?,
        grant: ViewGrant {
            audit: row.get(6)?,
            threat: row.get(7)?,
            export: row.get(8)?,
        },
        created_at: Micros(row.get(9)?),
        expires_at: Micros(row.get(10)?),
        redeemed_at: row.get::<_, Option<i64>>(11)?.map(Micros),
        session_hash: row.get(12)?,
        session_expires_at: row.get::<_, Option<i64>>(13)?.map(Micros),
        revoked_at: row.get::<_, Option<i64>>(14)?.map(Micros),
    })
}

pub(crate) fn create_token(
    connection: &mut Connection,
    token: &ViewerTokenRecord,
) -> StoreResult<()> {
    let exists: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)",
            [&token.account_id],
            |row| row.get(0),
        )
        .map_err(backend)?;
    if !exists {
        return Err(StoreError::Invalid(format!(
            "account {} does not exist",
            token.account_id
        )));
    }
    connection
        .execute(
            &format!("INSERT INTO viewer_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
            params![
                token.token_id,
                token.token_hash,
                token.account_id,
                token.issued_by,
                token.actor_id,
                token.actor_name,
                token.grant.audit,
                token.grant.threat,
                token.grant.export,
                token.created_at.0,
                token.expires_at.0,
                token.redeemed_at.map(|at| at.0),
                token.session_hash,
                token.session_expires_at.map(|at| at.0),
                token.revoked_at.map(|at| at.0),
            ],
        )
        .map_err(|error| match error {
            rusqlite::Error::SqliteFailure(e, _)
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::AlreadyExists(format!("viewer token {} already exists", token.token_id))
            }
            other => backend(other),
        })?;
    Ok(())
}

pub(crate) fn redeem(
    connection: &mut Connection,
    token_hash: &[u8],
    session_hash: &[u8],
    now: Micros,
    session_expires_at: Micros,
) -> StoreResult<Redemption> {
    let redeemed = connection
        .prepare_cached(&format!(
            "UPDATE viewer_tokens SET redeemed_at = ?2, session_hash = ?3, session_expires_at = ?4 \
             WHERE token_hash = ?1 AND redeemed_at IS NULL AND revoked_at IS NULL \
             AND expires_at > ?2 RETURNING {TOKEN_COLUMNS}"
        ))
        .map_err(backend)?
        .query_row(
            params![token_hash, now.0, session_hash, session_expires_at.0],
            token_from_row,
        )
        .optional()
        .map_err(backend)?;
    if let Some(record) = redeemed {
        return Ok(Redemption::Redeemed(Box::new(record)));
    }
    let existing = one(connection, "token_hash = ?1", token_hash)?;
    Ok(existing.map_or(Redemption::Unknown, |record| {
        Redemption::Refused(Box::new(record))
    }))
}

fn one(
    connection: &Connection,
    condition: &str,
    value: &[u8],
) -> StoreResult<Option<ViewerTokenRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM viewer_tokens WHERE {condition}"
        ))
        .map_err(backend)?
        .query_row([value], token_from_row)
        .optional()
        .map_err(backend)
}

pub(crate) fn session(
    connection: &Connection,
    session_hash: &[u8],
) -> StoreResult<Option<ViewerTokenRecord>> {
    one(connection, "session_hash = ?1", session_hash)
}

fn scoped(
    connection: &Connection,
    scope: &Scope,
    token_id: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<ViewerTokenRecord>> {
    let mut sql = format!("SELECT {TOKEN_COLUMNS} FROM viewer_tokens WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    scope_clause(scope, "account_id", &mut sql, &mut values);
    if let Some(token_id) = token_id {
        sql.push_str(" AND token_id = ?");
        values.push(Value::Text(token_id.to_string()));
    }
    sql.push_str(" ORDER BY created_at DESC, token_id DESC LIMIT ?");
    values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), token_from_row)
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

pub(crate) fn list(
    connection: &Connection,
    scope: &Scope,
    limit: usize,
) -> StoreResult<Vec<ViewerTokenRecord>> {
    scoped(connection, scope, None, limit)
}

pub(crate) fn token(
    connection: &Connection,
    scope: &Scope,
    token_id: &str,
) -> StoreResult<Option<ViewerTokenRecord>> {
    Ok(scoped(connection, scope, Some(token_id), 1)?.pop())
}

pub(crate) fn revoke(
    connection: &mut Connection,
    scope: &Scope,
    token_id: &str,
    now: Micros,
) -> StoreResult<bool> {
    let mut sql = "UPDATE viewer_tokens SET revoked_at = ? WHERE token_id = ? \
                   AND revoked_at IS NULL"
        .to_string();
    let mut values = vec![Value::Integer(now.0), Value::Text(token_id.to_string())];
    scope_clause(scope, "account_id", &mut sql, &mut values);
    let changed = connection
        .execute(&sql, params_from_iter(values))
        .map_err(backend)?;
    Ok(changed == 1)
}

pub(crate) fn settings(
    connection: &Connection,
    partner_id: &str,
) -> StoreResult<Option<EmbedSettings>> {
    connection
        .prepare_cached(
            "SELECT partner_id, frame_origins, brand_name, brand_colour, brand_background, \
             updated_at FROM embed_settings WHERE partner_id = ?1",
        )
        .map_err(backend)?
        .query_row([partner_id], |row| {
            let origins: String = row.get(1)?;
            Ok(EmbedSettings {
                partner_id: row.get(0)?,
                frame_origins: origins.split_whitespace().map(str::to_string).collect(),
                brand_name: row.get(2)?,
                brand_colour: row.get(3)?,
                brand_background: row.get(4)?,
                updated_at: Micros(row.get(5)?),
            })
        })
        .optional()
        .map_err(backend)
}

pub(crate) fn set_settings(
    connection: &mut Connection,
    settings: &EmbedSettings,
) -> StoreResult<()> {
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let kind: Option<String> = transaction
        .query_row(
            "SELECT kind FROM accounts WHERE id = ?1",
            [&settings.partner_id],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    if kind.as_deref() != Some(AccountKind::Partner.as_str()) {
        return Err(StoreError::Invalid(format!(
            "{} is not a partner account",
            settings.partner_id
        )));
    }
    transaction
        .execute(
            "INSERT INTO embed_settings (partner_id, frame_origins, brand_name, brand_colour, \
             brand_background, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (partner_id) DO UPDATE SET frame_origins = excluded.frame_origins, \
             brand_name = excluded.brand_name, brand_colour = excluded.brand_colour, \
             brand_background = excluded.brand_background, updated_at = excluded.updated_at",
            params![
                settings.partner_id,
                settings.frame_origins.join(" "),
                settings.brand_name,
                settings.brand_colour,
                settings.brand_background,
                settings.updated_at.0,
            ],
        )
        .map_err(backend)?;
    transaction.commit().map_err(backend)
}
