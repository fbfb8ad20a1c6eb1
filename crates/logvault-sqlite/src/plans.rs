//! The query plans SQLite picks for every read path, for each kind of scope: what the tests
//! check so that a planner change (or a new index) cannot silently bring back a scan whose
//! cost depends on the scope — an admin's lookup by id once walked every event of its kind.

use std::path::Path;

use logvault_core::{EventKind, Micros, Scope};
use logvault_store::{EventQuery, ReadPlan, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use crate::read::Reach;
use crate::{backend, read, schema, search, window};

/// The plan of every read path for an admin, a partner and a merchant, on the database in
/// `dir` (a store's data directory).
pub fn read_plans(dir: &Path) -> StoreResult<Vec<ReadPlan>> {
    let path = dir.join(crate::DB_FILE);
    let connection = schema::open_read_only(&path)?;
    search::attach(&connection, &path)?;
    let scopes = [
        Scope::All,
        Scope::Partner("par_1".into()),
        Scope::Account("mer_1".into()),
    ];
    let mut plans = Vec::new();
    for scope in scopes {
        let page = EventQuery::new(EventKind::Audit, 50);
        let mut filtered = page.clone();
        filtered.outcome = Some("failure".into());
        let mut group = EventQuery::new(EventKind::Threat, 50);
        group.fingerprint = Some(0x0123_4567_89ab_cdef);
        group.before_seq = Some(2_000);
        let mut searched = page.clone();
        searched.text = Some("timed out".into());
        // An export of the last minute: its time window as a range of positions.
        let mut window = EventQuery::new(EventKind::Audit, 1_000);
        window.from = Some(Micros(1_000));
        window.to = Some(Micros(2_000));
        window.before_seq = Some(2_000);
        let statements: Vec<(&'static str, (String, Vec<Value>))> = vec![
            (
                "event by id",
                read::event_sql(&scope, EventKind::Audit, "evt-1", None),
            ),
            (
                "event by id and account",
                read::event_sql(&scope, EventKind::Threat, "evt-1", Some("mer_1")),
            ),
            (
                "page, newest rows",
                read::select_sql(&scope, &filtered, Reach::Walk { floor: 1_000 }, 51),
            ),
            (
                "page, by index",
                read::select_sql(&scope, &page, Reach::Indexed { min_seq: None }, 51),
            ),
            (
                "a group's events",
                read::select_sql(&scope, &group, Reach::Indexed { min_seq: None }, 51),
            ),
            (
                "time window, bisection step",
                (window::PROBE_SQL.to_string(), vec![Value::Integer(500)]),
            ),
            (
                "time window, older rows",
                read::select_sql(
                    &scope,
                    &window,
                    Reach::above(&scope, &window, Some(1_000)),
                    1_001,
                ),
            ),
            (
                "text search, index candidates",
                (
                    search::CANDIDATES_SQL.to_string(),
                    vec![
                        Value::Text("\"timed out\"".into()),
                        Value::Integer(1_000),
                        Value::Integer(2_048),
                    ],
                ),
            ),
            (
                "text search, candidates in scope",
                search::candidates_sql(&scope, &searched, &[3, 2, 1], 51),
            ),
            (
                "text search, walk of the scope",
                search::ScopeWalk::new(&scope, &searched, "timed out", 1_000).step_sql(),
            ),
        ];
        for (name, (sql, values)) in statements {
            plans.push(ReadPlan {
                read: name,
                scope: scope.clone(),
                plan: explain(&connection, &sql, values)?,
            });
        }
    }
    Ok(plans)
}

fn explain(connection: &Connection, sql: &str, values: Vec<Value>) -> StoreResult<Vec<String>> {
    let mut statement = connection
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), |row| row.get::<_, String>(3))
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}
