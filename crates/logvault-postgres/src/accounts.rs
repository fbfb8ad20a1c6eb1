//! Accounts and API keys: mutable tables, changed through pooled connections.

use deadpool_postgres::Client;
use logvault_core::account::NewAccount;
use logvault_core::{Account, AccountKind, Micros, Permissions, Role, Scope};
use logvault_store::{KeyRecord, StoreError, StoreResult};
use tokio_postgres::{GenericClient, Row};

use crate::backend;
use crate::sql::{Sql, get};

const ACCOUNT_COLUMNS: &str = "id, kind, partner_id, name, disabled, created_at";

fn account_from_row(row: &Row) -> StoreResult<Account> {
    let kind: String = get(row, 1)?;
    Ok(Account {
        id: get(row, 0)?,
        kind: AccountKind::parse(&kind).unwrap_or(AccountKind::Merchant),
        partner_id: get(row, 2)?,
        name: get(row, 3)?,
        disabled: get(row, 4)?,
        created_at: Micros(get(row, 5)?),
    })
}

pub(crate) async fn create_account(client: &mut Client, new: NewAccount) -> StoreResult<Account> {
    let id = logvault_store::rules::new_account_id(&new)?;
    let transaction = client.transaction().await.map_err(backend)?;
    if let Some(partner_id) = &new.partner_id {
        let partner_kind: Option<String> = transaction
            .query_opt("SELECT kind FROM accounts WHERE id = $1", &[partner_id])
            .await
            .map_err(backend)?
            .map(|row| get(&row, 0))
            .transpose()?;
        logvault_store::rules::check_partner(partner_id, partner_kind.as_deref())?;
    }
    let account = logvault_store::rules::new_account(id, new);
    let inserted = transaction
        .execute(
            "INSERT INTO accounts (id, kind, partner_id, name, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            &[
                &account.id,
                &account.kind.as_str(),
                &account.partner_id,
                &account.name,
                &account.created_at.0,
            ],
        )
        .await
        .map_err(backend)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "account {} already exists",
            account.id
        )));
    }
    transaction.commit().await.map_err(backend)?;
    Ok(account)
}

/// Accounts in `scope`, optionally only those among `ids`, by id (byte order, like SQLite).
pub(crate) async fn list(
    client: &Client,
    scope: &Scope,
    ids: Option<&[String]>,
) -> StoreResult<Vec<Account>> {
    let mut sql = Sql::new(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE true"
    ));
    sql.scope(scope, "id");
    if let Some(ids) = ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholder = sql.bind(ids.to_vec());
        sql.push(&format!(" AND id = ANY({placeholder})"));
    }
    sql.push(" ORDER BY id COLLATE \"C\"");
    let statement = client.prepare_cached(&sql.text).await.map_err(backend)?;
    let rows = client
        .query(&statement, &sql.params())
        .await
        .map_err(backend)?;
    rows.iter().map(account_from_row).collect()
}

const KEY_COLUMNS: &str =
    "key_id, secret_hash, role, account_id, permissions, name, created_at, revoked_at";

fn key_from_row(row: &Row) -> StoreResult<KeyRecord> {
    let role: String = get(row, 2)?;
    let permissions: String = get(row, 4)?;
    Ok(KeyRecord {
        key_id: get(row, 0)?,
        secret_hash: get(row, 1)?,
        role: Role::parse(&role).unwrap_or(Role::Merchant),
        account_id: get(row, 3)?,
        permissions: Permissions::parse(&permissions).unwrap_or_default(),
        name: get(row, 5)?,
        created_at: Micros(get(row, 6)?),
        revoked_at: get::<Option<i64>>(row, 7)?.map(Micros),
    })
}

/// A role must be bound to an account of the matching kind: admin to the platform, partner
/// to a partner account, merchant to a merchant account.
pub(crate) async fn check_binding(
    client: &impl GenericClient,
    role: Role,
    account_id: &str,
    what: &str,
) -> StoreResult<()> {
    let kind: Option<String> = client
        .query_opt("SELECT kind FROM accounts WHERE id = $1", &[&account_id])
        .await
        .map_err(backend)?
        .map(|row| get(&row, 0))
        .transpose()?;
    logvault_store::rules::check_binding(role, account_id, kind.as_deref(), what)
}

pub(crate) async fn create_key(client: &mut Client, key: &KeyRecord) -> StoreResult<()> {
    let transaction = client.transaction().await.map_err(backend)?;
    check_binding(&*transaction, key.role, &key.account_id, "key").await?;
    transaction
        .execute(
            &format!(
                "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)"
            ),
            &[
                &key.key_id,
                &key.secret_hash,
                &key.role.as_str(),
                &key.account_id,
                &key.permissions.to_string(),
                &key.name,
                &key.created_at.0,
            ],
        )
        .await
        .map_err(backend)?;
    transaction.commit().await.map_err(backend)
}

pub(crate) async fn key(client: &Client, key_id: &str) -> StoreResult<Option<KeyRecord>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1"
        ))
        .await
        .map_err(backend)?;
    client
        .query_opt(&statement, &[&key_id])
        .await
        .map_err(backend)?
        .as_ref()
        .map(key_from_row)
        .transpose()
}

pub(crate) async fn list_keys(client: &Client) -> StoreResult<Vec<KeyRecord>> {
    let rows = client
        .query(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, key_id COLLATE \"C\""
            ),
            &[],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(key_from_row).collect()
}

pub(crate) async fn revoke_key(client: &Client, key_id: &str) -> StoreResult<bool> {
    let changed = client
        .execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL",
            &[&key_id, &Micros::now().0],
        )
        .await
        .map_err(backend)?;
    Ok(changed == 1)
}
