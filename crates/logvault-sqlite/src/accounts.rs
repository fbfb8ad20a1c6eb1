//! Accounts and API keys: the only mutable tables, changed through the admin connection.

use logvault_core::account::NewAccount;
use logvault_core::{Account, AccountKind, Micros, Permissions, Role, Scope};
use logvault_store::{KeyRecord, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::backend;
use crate::read::scope_clause;

const ACCOUNT_COLUMNS: &str = "id, kind, partner_id, name, disabled, created_at";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let kind: String = row.get(1)?;
    Ok(Account {
        id: row.get(0)?,
        kind: AccountKind::parse(&kind).unwrap_or(AccountKind::Merchant),
        partner_id: row.get(2)?,
        name: row.get(3)?,
        disabled: row.get(4)?,
        created_at: Micros(row.get(5)?),
    })
}

pub(crate) fn create_account(connection: &mut Connection, new: NewAccount) -> StoreResult<Account> {
    let id = logvault_store::rules::new_account_id(&new)?;
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    if let Some(partner_id) = &new.partner_id {
        let partner_kind: Option<String> = transaction
            .query_row(
                "SELECT kind FROM accounts WHERE id = ?1",
                [partner_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)?;
        logvault_store::rules::check_partner(partner_id, partner_kind.as_deref())?;
    }
    let account = logvault_store::rules::new_account(id, new);
    let inserted = transaction
        .execute(
            "INSERT INTO accounts (id, kind, partner_id, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO NOTHING",
            params![account.id, account.kind.as_str(), account.partner_id, account.name, account.created_at.0],
        )
        .map_err(backend)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "account {} already exists",
            account.id
        )));
    }
    transaction.commit().map_err(backend)?;
    Ok(account)
}

/// Accounts in `scope`, optionally only those among `ids`.
pub(crate) fn list(
    connection: &Connection,
    scope: &Scope,
    ids: Option<&[String]>,
) -> StoreResult<Vec<Account>> {
    let mut sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    scope_clause(scope, "id", &mut sql, &mut values);
    if let Some(ids) = ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(" AND id IN (");
        for (i, id) in ids.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            values.push(Value::Text(id.clone()));
        }
        sql.push(')');
    }
    sql.push_str(" ORDER BY id");
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), account_from_row)
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

const KEY_COLUMNS: &str =
    "key_id, secret_hash, role, account_id, permissions, name, created_at, revoked_at";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    let role: String = row.get(2)?;
    let permissions: String = row.get(4)?;
    Ok(KeyRecord {
        key_id: row.get(0)?,
        secret_hash: row.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Merchant),
        account_id: row.get(3)?,
        permissions: Permissions::parse(&permissions).unwrap_or_default(),
        name: row.get(5)?,
        created_at: Micros(row.get(6)?),
        revoked_at: row.get::<_, Option<i64>>(7)?.map(Micros),
    })
}

/// A role must be bound to an account of the matching kind: admin to the platform, partner
/// to a partner account, merchant to a merchant account.
pub(crate) fn check_binding(
    connection: &Connection,
    role: Role,
    account_id: &str,
    what: &str,
) -> StoreResult<()> {
    let kind: Option<String> = connection
        .query_row(
            "SELECT kind FROM accounts WHERE id = ?1",
            [account_id],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    logvault_store::rules::check_binding(role, account_id, kind.as_deref(), what)
}

pub(crate) fn create_key(connection: &mut Connection, key: &KeyRecord) -> StoreResult<()> {
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    check_binding(&transaction, key.role, &key.account_id, "key")?;
    transaction
        .execute(
            &format!(
                "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)"
            ),
            params![
                key.key_id,
                key.secret_hash,
                key.role.as_str(),
                key.account_id,
                key.permissions.to_string(),
                key.name,
                key.created_at.0
            ],
        )
        .map_err(backend)?;
    transaction.commit().map_err(backend)
}

pub(crate) fn key(connection: &Connection, key_id: &str) -> StoreResult<Option<KeyRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?1"
        ))
        .map_err(backend)?
        .query_row([key_id], key_from_row)
        .optional()
        .map_err(backend)
}

pub(crate) fn list_keys(connection: &Connection) -> StoreResult<Vec<KeyRecord>> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, key_id"
        ))
        .map_err(backend)?;
    let rows = statement.query_map([], key_from_row).map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

pub(crate) fn revoke_key(connection: &mut Connection, key_id: &str) -> StoreResult<bool> {
    let changed = connection
        .execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at IS NULL",
            params![key_id, Micros::now().0],
        )
        .map_err(backend)?;
    Ok(changed == 1)
}
