//! This node's single writer: it drains every request waiting in the queue into one
//! transaction (group commit), so one durable commit acknowledges many requests.
//!
//! The transaction first locks the `log_head` row (`SELECT … FOR UPDATE`): that lock is the
//! sequencer shared by every node, so `seq`, `received_at` and the Merkle frontier advance
//! one writer at a time, and each writer reads what the previous one committed. It then reads
//! the ids the batch reuses and locks the accounts it writes to, decides every request in
//! memory (duplicate, conflict, unknown account), and inserts each accepted request with
//! multi-row `INSERT … SELECT FROM unnest(…)` inside its own SAVEPOINT, so a request the
//! database refuses fails alone. Callers are answered only after COMMIT returns.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use logvault_core::merkle::{Frontier, completed_subtree_root};
use logvault_core::{Micros, NewEvent, StoredEvent};
use logvault_store::groups::GroupCounts;
use logvault_store::queue::{WriteJob, answer, take_batch};
use logvault_store::retention::RetentionWrite;
use logvault_store::trends::TrendCounts;
use logvault_store::{IngestOutcome, StoreError, StoreMetrics, StoreResult};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement, Transaction};

use crate::sql::{EVENT_COLUMNS, event_from_row, get, get_u64, kind_code, to_i64};
use crate::tree::{BLOCK_LEAVES, BLOCK_LEVELS};
use crate::{backend, retention, schema};

/// The log head as the writer advances it inside a transaction.
#[derive(Debug, Clone)]
struct Head {
    size: u64,
    last_received_at: Micros,
    frontier: Frontier,
}

const INSERT_EVENTS: &str = "INSERT INTO events (seq, kind, account_id, account_seq, event_id, \
     received_at, occurred_at, nonce, leaf_hash, action, outcome, actor_id, ip, request_id, \
     error_type, source, version, environment, search_text, body) \
     SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::bigint[], $5::text[], \
     $6::bigint[], $7::bigint[], $8::bytea[], $9::bytea[], $10::text[], $11::text[], \
     $12::text[], $13::bytea[], $14::text[], $15::text[], $16::text[], $17::text[], \
     $18::text[], $19::text[], $20::text[])";
const INSERT_IDS: &str = "INSERT INTO event_ids (event_id, account_id, kind, seq, received_at) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bigint[], $5::bigint[])";
const INSERT_BLOCKS: &str =
    "INSERT INTO merkle_blocks (block, root) SELECT * FROM unnest($1::bigint[], $2::bytea[])";

/// Statements prepared once per connection. Prepared statements also keep the pipelined
/// statements of one request in order (an unprepared one would need a round trip first).
struct Statements {
    insert_events: Statement,
    insert_ids: Statement,
    insert_blocks: Statement,
}

struct Connection {
    client: Client,
    statements: Statements,
}

pub(crate) struct Writer {
    config: tokio_postgres::Config,
    connection: Option<Connection>,
    /// The first connection, checked by `PgStore::connect`; prepared on first use.
    fresh: Option<Client>,
    max_batch_events: usize,
    metrics: Arc<StoreMetrics>,
    /// Months (`YYYY-MM`) whose partitions this node knows exist, with the month after.
    partitions: HashSet<String>,
}

impl Writer {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        client: Client,
        max_batch_events: usize,
        metrics: Arc<StoreMetrics>,
    ) -> Self {
        Writer {
            config,
            connection: None,
            fresh: Some(client),
            max_batch_events,
            metrics,
            partitions: HashSet::new(),
        }
    }

    /// Creates this month's and next month's partitions before the first insert.
    pub(crate) async fn prepare_partitions(&mut self) -> StoreResult<()> {
        self.ensure_partitions(&[Micros::now()]).await
    }

    /// Runs until every sender is gone and the queue is empty.
    pub(crate) async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<WriteJob>) {
        while let Some(first) = receiver.recv().await {
            let jobs = take_batch(first, &mut receiver, self.max_batch_events, &self.metrics);
            let started = Instant::now();
            let results = match self.commit(&jobs).await {
                Ok(results) => results,
                Err(error) => {
                    tracing::error!(%error, n_jobs = jobs.len(), "group commit failed; batch rolled back");
                    if self
                        .connection
                        .as_ref()
                        .is_some_and(|connection| connection.client.is_closed())
                    {
                        self.connection = None;
                    }
                    jobs.iter().map(|_| Err(clone_error(&error))).collect()
                }
            };
            answer(jobs, results, started, &self.metrics);
        }
    }

    /// The open connection, reconnecting (and re-checking durability) when it was lost.
    async fn connection(&mut self) -> StoreResult<&mut Connection> {
        if self
            .connection
            .as_ref()
            .is_some_and(|connection| connection.client.is_closed())
        {
            self.connection = None;
        }
        if self.connection.is_none() {
            let client = match self.fresh.take() {
                Some(client) => client,
                None => {
                    let client = schema::connect(&self.config).await?;
                    schema::check_durability(&client).await?;
                    client
                }
            };
            client
                .batch_execute(crate::search::WRITER_PENDING_LIMIT)
                .await
                .map_err(backend)?;
            let statements = Statements {
                insert_events: client.prepare(INSERT_EVENTS).await.map_err(backend)?,
                insert_ids: client.prepare(INSERT_IDS).await.map_err(backend)?,
                insert_blocks: client.prepare(INSERT_BLOCKS).await.map_err(backend)?,
            };
            self.connection = Some(Connection { client, statements });
        }
        self.connection
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no writer connection".into()))
    }

    /// Makes sure the months of `times` (and the month after each) have partitions, in
    /// their own short transactions before the batch's, once per month per node.
    async fn ensure_partitions(&mut self, times: &[Micros]) -> StoreResult<()> {
        let missing: Vec<(String, Micros)> = times
            .iter()
            .map(|at| (at.to_rfc3339().chars().take(7).collect::<String>(), *at))
            .filter(|(month, _)| !self.partitions.contains(month))
            .collect::<HashMap<_, _>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for (month, at) in missing {
            self.connection()
                .await?
                .client
                .execute("SELECT logvault_ensure_partitions($1)", &[&at.0])
                .await
                .map_err(backend)?;
            self.partitions.insert(month);
        }
        Ok(())
    }

    /// Appends every job in one transaction and commits it durably.
    async fn commit(
        &mut self,
        jobs: &[WriteJob],
    ) -> StoreResult<Vec<StoreResult<Vec<IngestOutcome>>>> {
        let mut times = vec![Micros::now()];
        times.extend(
            jobs.iter()
                .flat_map(|job| job.events.iter().filter_map(|event| event.demo_received_at)),
        );
        self.ensure_partitions(&times).await?;
        let connection = self.connection().await?;
        let statements = &connection.statements;
        let transaction = connection.client.transaction().await.map_err(backend)?;
        // The writer reads and checks ids across every account: it acts in the widest scope.
        crate::sql::set_scope(&transaction, &logvault_core::Scope::All).await?;
        let mut head = read_head(&transaction).await?;
        // One clock reading per batch, taken under the lock; never behind the last one
        // handed out by any node.
        let now = Micros::now().max(head.last_received_at);
        let existing = existing_events(&transaction, jobs).await?;
        let mut accounts = lock_accounts(&transaction, jobs).await?;
        let mut batch_ids: HashMap<(String, String), StoredEvent> = HashMap::new();
        let mut trends = TrendCounts::default();
        let mut groups = GroupCounts::default();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let mut plan = Plan::new(&head);
            let decided = plan.decide(&job.events, &existing, &batch_ids, &accounts, now);
            let outcomes = match decided {
                Ok(outcomes) => outcomes,
                Err(error) => {
                    results.push(Err(error));
                    continue;
                }
            };
            // A retention write and the event recording it happen together or not at all.
            let savepoint = if job.retention.is_some() {
                transaction
                    .batch_execute("SAVEPOINT retention")
                    .await
                    .map_err(backend)?;
                "retention"
            } else {
                "job"
            };
            let mut inserted = if plan.rows.is_empty() {
                Ok(())
            } else {
                plan.insert(&transaction, statements, &job.events).await
            };
            if let (Ok(()), Some(write)) = (&inserted, &job.retention) {
                let record_seq = outcomes.last().map_or(0, |outcome| outcome.seq);
                inserted = match write {
                    RetentionWrite::Change(change) => {
                        retention::change(&transaction, change, now).await
                    }
                    RetentionWrite::Purge(batch) => {
                        retention::purge(&transaction, batch, record_seq).await
                    }
                };
                if inserted.is_ok() {
                    transaction
                        .batch_execute("RELEASE SAVEPOINT retention")
                        .await
                        .map_err(backend)?;
                }
            }
            if let Err(error) = inserted {
                // The database refused this request; undo it alone.
                transaction
                    .batch_execute(&format!(
                        "ROLLBACK TO SAVEPOINT {savepoint}; RELEASE SAVEPOINT {savepoint}"
                    ))
                    .await
                    .map_err(backend)?;
                tracing::warn!(%error, "one request of the batch was refused by PostgreSQL");
                results.push(Err(error));
                continue;
            }
            head = plan.head;
            accounts.extend(plan.account_seqs);
            for (stored, index) in &plan.rows {
                trends.add(&job.events[*index], stored.received_at);
                groups.add(&job.events[*index], stored.seq, stored.received_at);
            }
            for stored in plan.rows.into_iter().map(|(stored, _)| stored) {
                batch_ids.insert((stored.account_id.clone(), stored.event_id.clone()), stored);
            }
            results.push(Ok(outcomes));
        }
        let (ids, seqs): (Vec<&str>, Vec<i64>) = accounts
            .iter()
            .filter(|(_, seq)| seq.touched)
            .map(|(id, seq)| (id.as_str(), to_i64(seq.last)))
            .unzip();
        if !ids.is_empty() {
            transaction
                .execute(
                    "UPDATE accounts SET last_account_seq = c.last \
                     FROM unnest($1::text[], $2::bigint[]) AS c(id, last) WHERE accounts.id = c.id",
                    &[&ids, &seqs],
                )
                .await
                .map_err(backend)?;
        }
        write_trends(&transaction, &trends).await?;
        crate::groups::write(&transaction, &groups).await?;
        transaction
            .execute(
                "UPDATE log_head SET size = $1, last_received_at = $2, frontier = $3 WHERE id = 1",
                &[
                    &to_i64(head.size),
                    &head.last_received_at.0,
                    &head.frontier.to_bytes(),
                ],
            )
            .await
            .map_err(backend)?;
        transaction.commit().await.map_err(backend)?;
        Ok(results)
    }
}

/// The rows of `trends` as the columns `unnest` takes: dimension, account, hour, key, count.
pub(crate) type TrendColumns<'a> = (Vec<i16>, Vec<&'a str>, Vec<i64>, Vec<&'a str>, Vec<i64>);

pub(crate) fn trend_columns(trends: &TrendCounts) -> TrendColumns<'_> {
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (dimension, account, hour, key, count) in trends.rows() {
        columns.0.push(dimension);
        columns.1.push(account);
        columns.2.push(hour);
        columns.3.push(key);
        columns.4.push(to_i64(count));
    }
    columns
}

/// Adds a transaction's trend counts to `event_trends` in one statement.
async fn write_trends(transaction: &Transaction<'_>, trends: &TrendCounts) -> StoreResult<()> {
    let columns = trend_columns(trends);
    if columns.0.is_empty() {
        return Ok(());
    }
    transaction
        .execute(
            "INSERT INTO event_trends (dimension, account_id, hour, key, count) \
             SELECT * FROM unnest($1::smallint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[]) \
             ON CONFLICT (dimension, account_id, hour, key) \
             DO UPDATE SET count = event_trends.count + excluded.count",
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

fn clone_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// The highest `account_seq` of a writable account, as this batch advances it.
#[derive(Debug, Clone, Copy)]
struct AccountSeq {
    last: u64,
    touched: bool,
}

/// One request's rows, decided in memory against the batch's state.
struct Plan {
    head: Head,
    account_seqs: HashMap<String, AccountSeq>,
    rows: Vec<(StoredEvent, usize)>,
    blocks: Vec<(u64, [u8; 32])>,
}

impl Plan {
    fn new(head: &Head) -> Self {
        Plan {
            head: head.clone(),
            account_seqs: HashMap::new(),
            rows: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Sequences the request, or rejects it as a whole with the first problem by index.
    fn decide(
        &mut self,
        events: &[NewEvent],
        existing: &HashMap<(String, String), StoredEvent>,
        batch_ids: &HashMap<(String, String), StoredEvent>,
        accounts: &HashMap<String, AccountSeq>,
        now: Micros,
    ) -> StoreResult<Vec<IngestOutcome>> {
        let mut nonces = vec![0u8; 16 * events.len()];
        getrandom::fill(&mut nonces).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut own_ids: HashMap<(String, String), usize> = HashMap::new();
        for (index, (event, nonce)) in events.iter().zip(nonces.chunks_exact(16)).enumerate() {
            let key = (event.account_id.clone(), event.event_id.clone());
            // A server-assigned UUIDv7 is new by construction; only client ids can repeat.
            let earlier = if event.id_from_client {
                own_ids
                    .get(&key)
                    .map(|&row| &self.rows[row].0)
                    .or_else(|| batch_ids.get(&key))
                    .or_else(|| existing.get(&key))
            } else {
                None
            };
            if let Some(earlier) = earlier {
                if earlier.kind != event.kind
                    || earlier.body != event.body
                    || earlier.occurred_at != event.occurred_at
                {
                    return Err(StoreError::IdConflict {
                        index,
                        event_id: event.event_id.clone(),
                    });
                }
                outcomes.push(IngestOutcome::of(earlier, true));
                continue;
            }
            let account_seq = match self
                .account_seqs
                .get(&event.account_id)
                .or_else(|| accounts.get(&event.account_id))
            {
                Some(seq) => seq.last + 1,
                None => return Err(StoreError::AccountNotWritable { index }),
            };
            self.account_seqs.insert(
                event.account_id.clone(),
                AccountSeq {
                    last: account_seq,
                    touched: true,
                },
            );
            let received_at = event
                .demo_received_at
                .map_or(now, |at| at.max(self.head.last_received_at));
            self.head.size += 1;
            self.head.last_received_at = received_at;
            let stored = event.stored(
                self.head.size,
                account_seq,
                received_at,
                nonce.try_into().unwrap_or_default(),
            );
            if let Some(root) =
                completed_subtree_root(&self.head.frontier, &stored.leaf_hash, BLOCK_LEVELS)
            {
                self.blocks.push((stored.seq / BLOCK_LEAVES - 1, root));
            }
            self.head.frontier.push(stored.leaf_hash);
            outcomes.push(IngestOutcome::of(&stored, false));
            own_ids.insert(key, self.rows.len());
            self.rows.push((stored, index));
        }
        Ok(outcomes)
    }

    /// Inserts the request's rows inside `SAVEPOINT job`, pipelined in one round trip.
    async fn insert(
        &self,
        transaction: &Transaction<'_>,
        statements: &Statements,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let rows = &self.rows;
        let index = |row: &(StoredEvent, usize)| &events[row.1].index;
        let seq: Vec<i64> = rows.iter().map(|(e, _)| to_i64(e.seq)).collect();
        let kind: Vec<i16> = rows.iter().map(|(e, _)| kind_code(e.kind)).collect();
        let account_id: Vec<&str> = rows.iter().map(|(e, _)| e.account_id.as_str()).collect();
        let account_seq: Vec<i64> = rows.iter().map(|(e, _)| to_i64(e.account_seq)).collect();
        let event_id: Vec<&str> = rows.iter().map(|(e, _)| e.event_id.as_str()).collect();
        let received_at: Vec<i64> = rows.iter().map(|(e, _)| e.received_at.0).collect();
        let occurred_at: Vec<Option<i64>> = rows
            .iter()
            .map(|(e, _)| e.occurred_at.map(|at| at.0))
            .collect();
        let nonce: Vec<&[u8]> = rows.iter().map(|(e, _)| &e.nonce[..]).collect();
        let leaf_hash: Vec<&[u8]> = rows.iter().map(|(e, _)| &e.leaf_hash[..]).collect();
        let text = |field: fn(&logvault_core::event::IndexFields) -> &Option<String>| {
            rows.iter()
                .map(|row| field(index(row)).as_deref())
                .collect::<Vec<Option<&str>>>()
        };
        let action = text(|i| &i.action);
        let outcome = text(|i| &i.outcome);
        let actor_id = text(|i| &i.actor_id);
        let ip: Vec<Option<&[u8]>> = rows
            .iter()
            .map(|row| index(row).ip.as_ref().map(|ip| &ip[..]))
            .collect();
        let request_id = text(|i| &i.request_id);
        let error_type = text(|i| &i.error_type);
        let source = text(|i| &i.source);
        let version = text(|i| &i.version);
        let environment = text(|i| &i.environment);
        let search_text: Vec<&str> = rows
            .iter()
            .map(|row| index(row).search_text.as_str())
            .collect();
        let body: Vec<&str> = rows.iter().map(|(e, _)| e.body.as_str()).collect();
        let block: Vec<i64> = self.blocks.iter().map(|(b, _)| to_i64(*b)).collect();
        let root: Vec<&[u8]> = self.blocks.iter().map(|(_, r)| &r[..]).collect();

        let savepoint = transaction.batch_execute("SAVEPOINT job");
        let event_params: [&(dyn ToSql + Sync); 20] = [
            &seq,
            &kind,
            &account_id,
            &account_seq,
            &event_id,
            &received_at,
            &occurred_at,
            &nonce,
            &leaf_hash,
            &action,
            &outcome,
            &actor_id,
            &ip,
            &request_id,
            &error_type,
            &source,
            &version,
            &environment,
            &search_text,
            &body,
        ];
        let id_params: [&(dyn ToSql + Sync); 5] =
            [&event_id, &account_id, &kind, &seq, &received_at];
        let block_params: [&(dyn ToSql + Sync); 2] = [&block, &root];
        let insert_events = transaction.execute(&statements.insert_events, &event_params);
        let insert_ids = transaction.execute(&statements.insert_ids, &id_params);
        let insert_blocks = transaction.execute(&statements.insert_blocks, &block_params);
        let release = transaction.batch_execute("RELEASE SAVEPOINT job");
        // Polled in order, so the statements go out in order, in one round trip.
        let (savepoint, insert_events, insert_ids, insert_blocks, release) =
            futures_util::future::join5(
                savepoint,
                insert_events,
                insert_ids,
                insert_blocks,
                release,
            )
            .await;
        savepoint.map_err(backend)?;
        insert_events.map_err(backend)?;
        insert_ids.map_err(backend)?;
        insert_blocks.map_err(backend)?;
        release.map_err(backend)?;
        Ok(())
    }
}

/// Locks and reads the log head, checking that the frontier agrees with the size.
async fn read_head(transaction: &Transaction<'_>) -> StoreResult<Head> {
    let row = transaction
        .query_one(
            "SELECT size, last_received_at, frontier FROM log_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(backend)?;
    let size = get_u64(&row, 0)?;
    let frontier: Vec<u8> = get(&row, 2)?;
    let frontier = Frontier::from_bytes(&frontier)
        .ok()
        .filter(|frontier| frontier.size() == size)
        .ok_or_else(|| StoreError::Backend("log_head.frontier does not match size".into()))?;
    Ok(Head {
        size,
        last_received_at: Micros(get(&row, 1)?),
        frontier,
    })
}

/// The stored events whose (account, client id) the batch reuses.
async fn existing_events(
    transaction: &Transaction<'_>,
    jobs: &[WriteJob],
) -> StoreResult<HashMap<(String, String), StoredEvent>> {
    let (accounts, ids): (Vec<&str>, Vec<&str>) = jobs
        .iter()
        .flat_map(|job| job.events.iter())
        .filter(|event| event.id_from_client)
        .map(|event| (event.account_id.as_str(), event.event_id.as_str()))
        .unzip();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = transaction
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM event_ids i \
                 JOIN events e ON e.seq = i.seq AND e.received_at = i.received_at \
                 WHERE (i.account_id, i.event_id) IN \
                 (SELECT * FROM unnest($1::text[], $2::text[]))"
            ),
            &[&accounts, &ids],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let event = event_from_row(row)?;
            Ok(((event.account_id.clone(), event.event_id.clone()), event))
        })
        .collect()
}

/// Locks the enabled accounts the batch writes to and reads their last `account_seq`.
async fn lock_accounts(
    transaction: &Transaction<'_>,
    jobs: &[WriteJob],
) -> StoreResult<HashMap<String, AccountSeq>> {
    let mut ids: Vec<&str> = jobs
        .iter()
        .flat_map(|job| job.events.iter().map(|event| event.account_id.as_str()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = transaction
        .query(
            "SELECT id, last_account_seq FROM accounts WHERE id = ANY($1) AND NOT disabled \
             ORDER BY id FOR UPDATE",
            &[&ids],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| {
            Ok((
                get(row, 0)?,
                AccountSeq {
                    last: get_u64(row, 1)?,
                    touched: false,
                },
            ))
        })
        .collect()
}
