//! Users of the Logs page and their sessions.

use deadpool_postgres::Client;
use logvault_core::{Micros, Role};
use logvault_store::{SessionRecord, StoreError, StoreResult, UserRecord};
use tokio_postgres::Row;

use crate::accounts::check_binding;
use crate::backend;
use crate::sql::get;

const USER_COLUMNS: &str =
    "users.user_id, username, password_hash, role, account_id, users.created_at, disabled";
const SESSION_COLUMNS: &str =
    "token_hash, sessions.user_id, csrf_token, sessions.created_at, expires_at, ended_at";

fn user_from_row(row: &Row, offset: usize) -> StoreResult<UserRecord> {
    let role: String = get(row, offset + 3)?;
    Ok(UserRecord {
        user_id: get(row, offset)?,
        username: get(row, offset + 1)?,
        password_hash: get(row, offset + 2)?,
        role: Role::parse(&role).unwrap_or(Role::Merchant),
        account_id: get(row, offset + 4)?,
        created_at: Micros(get(row, offset + 5)?),
        disabled: get(row, offset + 6)?,
    })
}

pub(crate) async fn create_user(client: &mut Client, user: &UserRecord) -> StoreResult<()> {
    logvault_store::rules::check_username(&user.username)?;
    let transaction = client.transaction().await.map_err(backend)?;
    check_binding(&*transaction, user.role, &user.account_id, "user").await?;
    let inserted = transaction
        .execute(
            "INSERT INTO users (user_id, username, password_hash, role, account_id, created_at, \
             disabled) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &user.user_id,
                &user.username,
                &user.password_hash,
                &user.role.as_str(),
                &user.account_id,
                &user.created_at.0,
                &user.disabled,
            ],
        )
        .await
        .map_err(backend)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "user {} already exists",
            user.username
        )));
    }
    transaction.commit().await.map_err(backend)
}

pub(crate) async fn user_by_name(
    client: &Client,
    username: &str,
) -> StoreResult<Option<UserRecord>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        ))
        .await
        .map_err(backend)?;
    client
        .query_opt(&statement, &[&username])
        .await
        .map_err(backend)?
        .map(|row| user_from_row(&row, 0))
        .transpose()
}

pub(crate) async fn list_users(client: &Client) -> StoreResult<Vec<UserRecord>> {
    let rows = client
        .query(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username COLLATE \"C\""),
            &[],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(|row| user_from_row(row, 0)).collect()
}

pub(crate) async fn create_session(client: &Client, session: &SessionRecord) -> StoreResult<()> {
    client
        .execute(
            &format!(
                "INSERT INTO sessions ({}) VALUES ($1, $2, $3, $4, $5, $6)",
                SESSION_COLUMNS.replace("sessions.", "")
            ),
            &[
                &session.token_hash,
                &session.user_id,
                &session.csrf_token,
                &session.created_at.0,
                &session.expires_at.0,
                &session.ended_at.map(|at| at.0),
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

pub(crate) async fn session(
    client: &Client,
    token_hash: &[u8],
) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions \
             JOIN users ON users.user_id = sessions.user_id WHERE token_hash = $1"
        ))
        .await
        .map_err(backend)?;
    let Some(row) = client
        .query_opt(&statement, &[&token_hash])
        .await
        .map_err(backend)?
    else {
        return Ok(None);
    };
    let session = SessionRecord {
        token_hash: get(&row, 0)?,
        user_id: get(&row, 1)?,
        csrf_token: get(&row, 2)?,
        created_at: Micros(get(&row, 3)?),
        expires_at: Micros(get(&row, 4)?),
        ended_at: get::<Option<i64>>(&row, 5)?.map(Micros),
    };
    Ok(Some((session, user_from_row(&row, 6)?)))
}

pub(crate) async fn end_session(client: &Client, token_hash: &[u8]) -> StoreResult<bool> {
    let changed = client
        .execute(
            "UPDATE sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL",
            &[&token_hash, &Micros::now().0],
        )
        .await
        .map_err(backend)?;
    Ok(changed == 1)
}

pub(crate) async fn set_password(
    client: &mut Client,
    user_id: &str,
    password_hash: &str,
) -> StoreResult<Option<u64>> {
    let transaction = client.transaction().await.map_err(backend)?;
    let changed = transaction
        .execute(
            "UPDATE users SET password_hash = $2 WHERE user_id = $1",
            &[&user_id, &password_hash],
        )
        .await
        .map_err(backend)?;
    if changed == 0 {
        return Ok(None);
    }
    let ended = transaction
        .execute(
            "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL",
            &[&user_id, &Micros::now().0],
        )
        .await
        .map_err(backend)?;
    transaction.commit().await.map_err(backend)?;
    Ok(Some(ended))
}
