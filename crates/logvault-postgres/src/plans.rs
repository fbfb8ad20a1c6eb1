//! The plans PostgreSQL makes for every read path, for each kind of scope: what the tests
//! check so that no read's cost comes to depend on the scope (an admin's lookup by id must
//! use the id table's key like a merchant's). Planned with sequential scans disabled: on a
//! test-sized table a sequential scan is always cheapest, and what matters is that an index
//! path exists for the statement's shape and scope clause.

use logvault_core::{EventKind, Micros, Scope};
use logvault_store::{EventQuery, ReadPlan, StoreResult};

use crate::sql::{Sql, begin_scoped, get};
use crate::{PgStore, backend, read};

impl PgStore {
    /// The plan of every read path for an admin, a partner (`par_1`) and a merchant (`mer_1`).
    pub async fn read_plans(&self) -> StoreResult<Vec<ReadPlan>> {
        let mut plans = Vec::new();
        for scope in [
            Scope::All,
            Scope::Partner("par_1".into()),
            Scope::Account("mer_1".into()),
        ] {
            let page = EventQuery::new(EventKind::Audit, 50);
            let mut failures = page.clone();
            failures.outcome = Some("failure".into());
            let mut errors = EventQuery::new(EventKind::Threat, 50);
            errors.error_type = Some("NetworkTimeout".into());
            let mut group = EventQuery::new(EventKind::Threat, 50);
            group.fingerprint = Some(0x0123_4567_89ab_cdef);
            group.before_seq = Some(2_000);
            let mut searched = page.clone();
            searched.text = Some("timed out".into());
            // An export of the last minute, one page of it.
            let mut window = EventQuery::new(EventKind::Audit, 1_000);
            window.from = Some(Micros(1_000));
            window.to = Some(Micros(2_000));
            let statements: Vec<(&'static str, Sql)> = vec![
                (
                    "event by id",
                    read::event_sql(&scope, EventKind::Audit, "evt-1", None),
                ),
                (
                    "event by id and account",
                    read::event_sql(&scope, EventKind::Audit, "evt-1", Some("mer_1")),
                ),
                ("first page", read::query_sql(&scope, &page, self.trigram)),
                (
                    "page of failures",
                    read::query_sql(&scope, &failures, self.trigram),
                ),
                (
                    "page of one error type",
                    read::query_sql(&scope, &errors, self.trigram),
                ),
                (
                    "text search",
                    read::query_sql(&scope, &searched, self.trigram),
                ),
                (
                    "a group's events",
                    read::query_sql(&scope, &group, self.trigram),
                ),
                (
                    "time window",
                    read::query_sql(&scope, &window, self.trigram),
                ),
            ];
            let mut client = self.client().await?;
            let transaction = begin_scoped(&mut client, &scope).await?;
            transaction
                .batch_execute("SET LOCAL enable_seqscan = off")
                .await
                .map_err(backend)?;
            for (name, mut statement) in statements {
                statement.text.insert_str(0, "EXPLAIN ");
                let plan = statement
                    .query(&transaction)
                    .await?
                    .iter()
                    .map(|row| get::<String>(row, 0))
                    .collect::<StoreResult<Vec<_>>>()?;
                plans.push(ReadPlan {
                    read: name,
                    scope: scope.clone(),
                    plan,
                });
            }
            transaction.commit().await.map_err(backend)?;
        }
        Ok(plans)
    }
}
