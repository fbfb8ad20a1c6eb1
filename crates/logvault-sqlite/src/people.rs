//! Users of the Logs page and their sessions.

use logvault_core::{Micros, Role};
use logvault_store::{SessionRecord, StoreError, StoreResult, UserRecord};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::accounts::check_binding;
use crate::backend;

const USER_COLUMNS: &str =
    "users.user_id, username, password_hash, role, account_id, users.created_at, disabled";
const SESSION_COLUMNS: &str =
    "token_hash, sessions.user_id, csrf_token, sessions.created_at, expires_at, ended_at";

fn user_from_row(row: &Row<'_>, offset: usize) -> rusqlite::Result<UserRecord> {
    let role: String = row.get(offset + 3)?;
    Ok(UserRecord {
        user_id: row.get(offset)?,
        username: row.get(offset + 1)?,
        password_hash: row.get(offset + 2)?,
        role: Role::parse(&role).unwrap_or(Role::Merchant),
        account_id: row.get(offset + 4)?,
        created_at: Micros(row.get(offset + 5)?),
        disabled: row.get(offset + 6)?,
    })
}

pub(crate) fn create_user(connection: &mut Connection, user: &UserRecord) -> StoreResult<()> {
    logvault_store::rules::check_username(&user.username)?;
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    check_binding(&transaction, user.role, &user.account_id, "user")?;
    let inserted = transaction
        .execute(
            "INSERT INTO users (user_id, username, password_hash, role, account_id, created_at, disabled) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            params![
                user.user_id,
                user.username,
                user.password_hash,
                user.role.as_str(),
                user.account_id,
                user.created_at.0,
                user.disabled
            ],
        )
        .map_err(backend)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "user {} already exists",
            user.username
        )));
    }
    transaction.commit().map_err(backend)
}

pub(crate) fn user_by_name(
    connection: &Connection,
    username: &str,
) -> StoreResult<Option<UserRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
        ))
        .map_err(backend)?
        .query_row([username], |row| user_from_row(row, 0))
        .optional()
        .map_err(backend)
}

pub(crate) fn list_users(connection: &Connection) -> StoreResult<Vec<UserRecord>> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ))
        .map_err(backend)?;
    let rows = statement
        .query_map([], |row| user_from_row(row, 0))
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

pub(crate) fn create_session(
    connection: &mut Connection,
    session: &SessionRecord,
) -> StoreResult<()> {
    connection
        .execute(
            &format!(
                "INSERT INTO sessions ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                SESSION_COLUMNS.replace("sessions.", "")
            ),
            params![
                session.token_hash,
                session.user_id,
                session.csrf_token,
                session.created_at.0,
                session.expires_at.0,
                session.ended_at.map(|at| at.0)
            ],
        )
        .map_err(backend)?;
    Ok(())
}

pub(crate) fn session(
    connection: &Connection,
    token_hash: &[u8],
) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
    connection
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions \
             JOIN users ON users.user_id = sessions.user_id WHERE token_hash = ?1"
        ))
        .map_err(backend)?
        .query_row([token_hash], |row| {
            let session = SessionRecord {
                token_hash: row.get(0)?,
                user_id: row.get(1)?,
                csrf_token: row.get(2)?,
                created_at: Micros(row.get(3)?),
                expires_at: Micros(row.get(4)?),
                ended_at: row.get::<_, Option<i64>>(5)?.map(Micros),
            };
            Ok((session, user_from_row(row, 6)?))
        })
        .optional()
        .map_err(backend)
}

pub(crate) fn end_session(connection: &mut Connection, token_hash: &[u8]) -> StoreResult<bool> {
    let changed = connection
        .execute(
            "UPDATE sessions SET ended_at = ?2 WHERE token_hash = ?1 AND ended_at IS NULL",
            params![token_hash, Micros::now().0],
        )
        .map_err(backend)?;
    Ok(changed == 1)
}

pub(crate) fn set_password(
    connection: &mut Connection,
    user_id: &str,
    password_hash: &str,
) -> StoreResult<Option<u64>> {
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let changed = transaction
        .execute(
            "UPDATE users SET password_hash = ?2 WHERE user_id = ?1",
            params![user_id, password_hash],
        )
        .map_err(backend)?;
    if changed == 0 {
        return Ok(None);
    }
    let ended = transaction
        .execute(
            "UPDATE sessions SET ended_at = ?2 WHERE user_id = ?1 AND ended_at IS NULL",
            params![user_id, Micros::now().0],
        )
        .map_err(backend)?;
    transaction.commit().map_err(backend)?;
    Ok(Some(ended as u64))
}
