//! Small helpers every query uses: a statement builder with numbered parameters, the scope
//! (both the WHERE clause and the row-level-security settings), and typed column reads.

use deadpool_postgres::Transaction;
use logvault_core::{EventKind, Micros, Scope, StoredEvent};
use logvault_store::{StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use crate::backend;

/// The columns [`event_from_row`] reads, in order, from `events e`.
pub(crate) const EVENT_COLUMNS: &str = "e.seq, e.kind, e.account_id, e.account_seq, e.event_id, \
     e.received_at, e.occurred_at, e.nonce, e.leaf_hash, e.body";

/// A statement being built, with its parameters numbered as they are bound.
#[derive(Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            params: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Binds `value` and returns its placeholder (`$n`).
    pub(crate) fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Appends ` AND <column> = <value>` when `value` is set.
    pub(crate) fn equals(&mut self, column: &str, value: &Option<String>) {
        if let Some(value) = value {
            let placeholder = self.bind(value.clone());
            self.push(&format!(" AND {column} = {placeholder}"));
        }
    }

    /// Appends ` AND <column in scope>`: the application's own scope filter. Row-level
    /// security ([`set_scope`]) enforces the same rule again in the database.
    pub(crate) fn scope(&mut self, scope: &Scope, column: &str) {
        match scope {
            Scope::All => {}
            Scope::Account(id) => {
                let placeholder = self.bind(id.clone());
                self.push(&format!(" AND {column} = {placeholder}"));
            }
            Scope::Partner(id) => {
                let accounts = self.partner_accounts(id);
                self.push(&format!(" AND {column} IN ({accounts})"));
            }
        }
    }

    /// Binds `partner` and returns a query of its account ids: its own and its merchants'.
    pub(crate) fn partner_accounts(&mut self, partner: &str) -> String {
        let placeholder = self.bind(partner.to_string());
        format!("SELECT id FROM accounts WHERE id = {placeholder} OR partner_id = {placeholder}")
    }

    pub(crate) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// Runs the statement (prepared once per connection) and returns its rows.
    pub(crate) async fn query(&self, transaction: &Transaction<'_>) -> StoreResult<Vec<Row>> {
        let statement = transaction
            .prepare_cached(&self.text)
            .await
            .map_err(backend)?;
        transaction
            .query(&statement, &self.params())
            .await
            .map_err(backend)
    }
}

/// The row-level-security settings for `scope`: `logvault.scope_kind` (`all`, `partner` or
/// `account`) and `logvault.scope_account`. The policies on the event tables read them; a
/// transaction that sets neither sees no events at all.
pub fn scope_settings(scope: &Scope) -> (&'static str, String) {
    match scope {
        Scope::All => ("all", String::new()),
        Scope::Partner(id) => ("partner", id.clone()),
        Scope::Account(id) => ("account", id.clone()),
    }
}

/// Sets the scope for the rest of the current transaction (`SET LOCAL` semantics).
pub(crate) async fn set_scope(
    transaction: &tokio_postgres::Transaction<'_>,
    scope: &Scope,
) -> StoreResult<()> {
    let (kind, account) = scope_settings(scope);
    transaction
        .execute(
            "SELECT set_config('logvault.scope_kind', $1, true), \
             set_config('logvault.scope_account', $2, true)",
            &[&kind, &account],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// Starts a read-only transaction scoped to `scope`.
pub(crate) async fn begin_scoped<'a>(
    client: &'a mut deadpool_postgres::Client,
    scope: &Scope,
) -> StoreResult<Transaction<'a>> {
    let transaction = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(backend)?;
    set_scope(&transaction, scope).await?;
    Ok(transaction)
}

/// Reads column `index` of `row`, reporting a type mismatch as a backend error.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> StoreResult<T> {
    row.try_get(index)
        .map_err(|e| StoreError::Backend(format!("column {index}: {e}")))
}

/// A stored non-negative integer as `u64`.
pub(crate) fn get_u64(row: &Row, index: usize) -> StoreResult<u64> {
    let value: i64 = get(row, index)?;
    u64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("column {index} is negative: {value}")))
}

/// A position or count as the `BIGINT` the schema stores.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn kind_code(kind: EventKind) -> i16 {
    match kind {
        EventKind::Audit => 0,
        EventKind::Threat => 1,
    }
}

pub(crate) fn hash_from(bytes: Vec<u8>) -> StoreResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend("a stored hash is not 32 bytes".into()))
}

/// Reads the columns of [`EVENT_COLUMNS`], starting at column 0.
pub(crate) fn event_from_row(row: &Row) -> StoreResult<StoredEvent> {
    let kind: i16 = get(row, 1)?;
    let nonce: Vec<u8> = get(row, 7)?;
    Ok(StoredEvent {
        seq: get_u64(row, 0)?,
        kind: if kind == 0 {
            EventKind::Audit
        } else {
            EventKind::Threat
        },
        account_id: get(row, 2)?,
        account_seq: get_u64(row, 3)?,
        event_id: get(row, 4)?,
        received_at: Micros(get(row, 5)?),
        occurred_at: get::<Option<i64>>(row, 6)?.map(Micros),
        // A malformed stored value must be reported by verification, not hide the event.
        nonce: nonce.try_into().unwrap_or_default(),
        leaf_hash: get::<Vec<u8>>(row, 8)?.try_into().unwrap_or_default(),
        body: get(row, 9)?,
    })
}
