//! The timed API reads: every read kind as each role (admin, partner, merchant), each with
//! its own API key and connection, because one role's figure says nothing about another's
//! path through the store.
//!
//! The kinds, each read as `--queries` requests per role (a role stops short of them once it
//! has made 10 and spent `--query-seconds` waiting for that kind's answers, so a slow path
//! cannot stretch the run; the report gives the samples taken):
//!
//! | kind | request |
//! |---|---|
//! | `audit_first_page` | `GET /v1/audit-events` (50 events) |
//! | `threat_first_page` | `GET /v1/threat-events` |
//! | `filtered` | audit `?outcome=failure` and threat `?error_type=NetworkTimeout` in turn |
//! | `page_20` | page 20 of the audit list (`limit=50`) by its cursor |
//! | `page_200` | page 200 of the audit list by its cursor |
//! | `search_common` | `GET /v1/threat-events?q=timed%20out` |
//! | `search_rare` | `q=` a term in the messages of [`workload::N_RARE`] threat events |
//! | `search_absent` | `q=` a term in no threat event |
//! | `trends` | `GET /v1/threat-events/trends?group_by=version&interval=hour` |
//! | `threat_groups` | `GET /v1/threat-groups` and `?sort=count&environment=production` in turn |
//! | `group_events` | `GET /v1/threat-events?fingerprint=…` of a group the role sees |
//! | `by_id` | `GET /v1/audit-events/{id}` of an event in scope, without `account_id=` |
//! | `proof` | `GET /v1/proofs/inclusion?event_id=…` of the same events |
//!
//! The cursors of pages 20 and 200 are reached once per role by following `next_cursor`
//! from the first page; the samples then time the request for that one page, the way a
//! reader who keeps paging asks for it. Where a role's audit list is shorter, the deepest
//! page whose cursor the walk holds is timed and the report says which page that was.
//! `by_id` and `proof` look up the first event of each page walked (up to 200 events, none
//! newer than the latest signed checkpoint).
//!
//! Searches run on the threat list because every read is recorded as a `logs.viewed` audit
//! event that quotes its query: on the audit list the rare and absent terms would not stay
//! rare or absent.
//!
//! Every sample must be a 200 with the answer it asks for (a page with results, exactly
//! the rare events, no events for the absent term, the event asked for by id, a proof for
//! it), so a broken path fails the benchmark instead of producing a fast figure. The roles
//! take turns sample by sample, so they share the same log size and background load.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::Value;

use super::client::Client;
use super::report::{Latencies, QueryFigures, RoleFigure};
use super::workload::{self, SearchTerms};
use super::{Keys, stage};

/// The roles every kind is read as, in the order of the report.
pub(crate) const ROLES: [&str; 3] = ["admin", "partner", "merchant"];

/// Events per page in the cursor walk.
const PAGE_SIZE: usize = 50;
/// The page `page_200` times.
const DEEP_PAGE: usize = 200;

/// What a sample's answer must hold for its time to count.
#[derive(Debug, Clone)]
enum Expect {
    /// A list page with at least one event.
    Events,
    /// A list page with exactly this many events.
    Exactly(usize),
    /// A JSON object (trends).
    Object,
    /// A list of groups with at least one group.
    Groups,
    /// The event with this id.
    Event(String),
    /// An inclusion proof for the event with this id.
    Proof(String),
}

impl Expect {
    fn check(&self, path: &str, body: &[u8]) -> anyhow::Result<()> {
        let answer: Value = serde_json::from_slice(body)?;
        let n_events = answer["data"].as_array().map(Vec::len);
        let ok = match self {
            Expect::Events => n_events.is_some_and(|n| n > 0),
            Expect::Exactly(expected) => n_events == Some(*expected),
            Expect::Object => answer.is_object(),
            Expect::Groups => n_events.is_some_and(|n| n > 0),
            Expect::Event(id) => answer["id"].as_str() == Some(id),
            Expect::Proof(id) => {
                answer["event_id"].as_str() == Some(id) && answer["proof"].is_array()
            }
        };
        anyhow::ensure!(
            ok,
            "GET {path}: expected {self:?}, got {}",
            String::from_utf8_lossy(body)
        );
        Ok(())
    }
}

/// One request of a kind, as one role.
type Request = (String, Expect);

/// What one role reads: its connection and, per kind, the requests its samples cycle through.
struct Reader {
    role: &'static str,
    client: Client,
    /// The page numbers `page_20` and `page_200` really reached.
    pages: (usize, usize),
    requests: Vec<(&'static str, Vec<Request>)>,
}

/// Where the walk along a role's audit list got to.
struct Walk {
    /// Page numbers (of [`PAGE_SIZE`] events) whose cursor the walk reached, with the path
    /// that asks for that page; page 1 first.
    starts: Vec<(usize, String)>,
    /// The first event of every page walked: its id and `seq`.
    events: Vec<(String, u64)>,
}

impl Walk {
    /// The `seq` of the oldest event to look up.
    fn oldest_seq(&self) -> u64 {
        self.events.iter().map(|(_, seq)| *seq).min().unwrap_or(0)
    }

    /// The path of `page`, or of the deepest page reached before it, and its number.
    fn page(&self, page: usize) -> (usize, String) {
        let reached = self.starts.iter().rev().find(|(number, _)| *number <= page);
        reached.or(self.starts.first()).cloned().unwrap_or_default()
    }
}

/// Follows `next_cursor` along the audit list from the start to the cursor of page
/// `pages.last()` (pages of [`PAGE_SIZE`]). A cursor is the position after the last event
/// of a page, so the walk asks for up to 1,000 events at a time in multiples of
/// [`PAGE_SIZE`]: it lands on the same cursors as paging 50 at a time, in a tenth of the
/// requests.
async fn walk(client: &mut Client, pages: &[usize]) -> anyhow::Result<Walk> {
    let list = |limit: usize, cursor: &str| {
        let cursor = if cursor.is_empty() {
            String::new()
        } else {
            format!("&cursor={cursor}")
        };
        format!("/v1/audit-events?limit={limit}{cursor}")
    };
    let mut walked = Walk {
        starts: vec![(1, list(PAGE_SIZE, ""))],
        events: Vec::new(),
    };
    let (mut position, mut cursor) = (0, String::new());
    while let Some(target) = pages
        .iter()
        .map(|page| (page - 1) * PAGE_SIZE)
        .find(|t| *t > position)
    {
        let limit = (target - position).min(1000);
        let answer: Value = serde_json::from_slice(&client.get_ok(&list(limit, &cursor)).await?)?;
        let events = answer["data"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if events.is_empty() && position > 0 {
            // The previous cursor led to an empty page: it starts no page.
            walked.starts.pop();
        }
        for event in events.iter().step_by(PAGE_SIZE) {
            let id = event["id"].as_str().unwrap_or_default().to_string();
            walked.events.push((id, event["seq"].as_u64().unwrap_or(0)));
        }
        position += events.len();
        match answer["next_cursor"].as_str() {
            Some(next) if events.len() == limit => {
                cursor = next.to_string();
                walked
                    .starts
                    .push((position / PAGE_SIZE + 1, list(PAGE_SIZE, &cursor)));
            }
            _ => break,
        }
    }
    anyhow::ensure!(
        !walked.events.is_empty(),
        "the audit list has no events to look up"
    );
    Ok(walked)
}

/// The requests of every kind as the role whose walk this is.
fn requests(
    walked: &Walk,
    terms: &SearchTerms,
    group: &str,
) -> (Vec<(&'static str, Vec<Request>)>, usize, usize) {
    let (page_20, path_20) = walked.page(20);
    let (page_200, path_200) = walked.page(DEEP_PAGE);
    let one = |path: String, expect: Expect| vec![(path, expect)];
    let ids = walked.events.iter().map(|(id, _)| id);
    let kinds = vec![
        (
            "audit_first_page",
            one("/v1/audit-events".into(), Expect::Events),
        ),
        (
            "threat_first_page",
            one("/v1/threat-events".into(), Expect::Events),
        ),
        (
            "filtered",
            vec![
                ("/v1/audit-events?outcome=failure".into(), Expect::Events),
                (
                    "/v1/threat-events?error_type=NetworkTimeout".into(),
                    Expect::Events,
                ),
            ],
        ),
        ("page_20", one(path_20, Expect::Events)),
        ("page_200", one(path_200, Expect::Events)),
        (
            "search_common",
            one("/v1/threat-events?q=timed%20out".into(), Expect::Events),
        ),
        (
            "search_rare",
            one(
                format!("/v1/threat-events?q={}", terms.rare),
                Expect::Exactly(workload::N_RARE),
            ),
        ),
        (
            "search_absent",
            one(
                format!("/v1/threat-events?q={}", terms.absent),
                Expect::Exactly(0),
            ),
        ),
        (
            "trends",
            one(
                "/v1/threat-events/trends?group_by=version&interval=hour".into(),
                Expect::Object,
            ),
        ),
        (
            "threat_groups",
            vec![
                ("/v1/threat-groups".into(), Expect::Groups),
                (
                    "/v1/threat-groups?sort=count&environment=production".into(),
                    Expect::Groups,
                ),
            ],
        ),
        (
            "group_events",
            one(
                format!("/v1/threat-events?fingerprint={group}"),
                Expect::Events,
            ),
        ),
        (
            "by_id",
            ids.clone()
                .map(|id| (format!("/v1/audit-events/{id}"), Expect::Event(id.clone())))
                .collect(),
        ),
        (
            "proof",
            ids.map(|id| {
                (
                    format!("/v1/proofs/inclusion?event_id={id}"),
                    Expect::Proof(id.clone()),
                )
            })
            .collect(),
        ),
    ];
    (kinds, page_20, page_200)
}

/// The fingerprint of the largest error group the role sees, whose events `group_events`
/// lists.
async fn largest_group(client: &mut Client) -> anyhow::Result<String> {
    let answer: Value = serde_json::from_slice(
        &client
            .get_ok("/v1/threat-groups?sort=count&limit=1")
            .await?,
    )?;
    answer["data"][0]["fingerprint"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("GET /v1/threat-groups: the role sees no group"))
}

/// The tree size of the latest signed checkpoint, if there is one.
async fn checkpointed(client: &mut Client) -> anyhow::Result<u64> {
    let (status, note) = client
        .send(Method::GET, "/v1/checkpoints/latest", None)
        .await?;
    if status == StatusCode::NOT_FOUND {
        return Ok(0);
    }
    anyhow::ensure!(
        status == StatusCode::OK,
        "GET /v1/checkpoints/latest: {status}"
    );
    // The note's second line is the tree size.
    let size = String::from_utf8_lossy(&note)
        .lines()
        .nth(1)
        .and_then(|line| line.parse().ok());
    size.ok_or_else(|| anyhow::anyhow!("the latest checkpoint has no tree size"))
}

/// Requests a role makes of one kind whatever its time budget. With fewer than a hundred
/// the p99 is the slowest sample, but a path that takes seconds per request would otherwise
/// stretch a small run by minutes (and grow the log under the background ingest), and its
/// p50 already says what matters.
const MIN_SAMPLES: usize = 10;

/// When a role stops sampling a kind.
struct Quota {
    /// `--queries`.
    n: usize,
    /// `--query-seconds` of request time, if limited.
    budget: Option<Duration>,
}

impl Quota {
    fn is_met(&self, cell: &Cell) -> bool {
        let samples = cell.latencies.len();
        samples >= self.n
            || (samples >= MIN_SAMPLES && self.budget.is_some_and(|b| cell.spent >= b))
    }
}

/// The samples of one kind as one role.
#[derive(Debug, Default, Clone)]
struct Cell {
    latencies: Latencies,
    spent: Duration,
}

impl Cell {
    fn record(&mut self, elapsed: Duration) {
        self.latencies.push(elapsed.as_secs_f64() * 1e3);
        self.spent += elapsed;
    }
}

/// Measures every kind as every role, `n` samples each (fewer past `seconds` of request
/// time, unless 0, and past [`MIN_SAMPLES`]), and returns the figures by kind.
pub(super) async fn measure(
    address: SocketAddr,
    keys: &Keys,
    terms: &SearchTerms,
    n: usize,
    seconds: f64,
) -> anyhow::Result<Vec<QueryFigures>> {
    let mut walks = Vec::new();
    for (role, key) in ROLES
        .into_iter()
        .zip([&keys.admin, &keys.partner, &keys.merchant])
    {
        let mut client = Client::connect(address, key).await?;
        let walked = walk(&mut client, &[20, DEEP_PAGE]).await?;
        let (deepest, _) = walked.page(DEEP_PAGE);
        if deepest < DEEP_PAGE {
            stage(&format!(
                "  {role}: the audit list ends before page {DEEP_PAGE} (of {PAGE_SIZE}); \
                 page {deepest} is timed instead"
            ));
        }
        let group = largest_group(&mut client).await?;
        walks.push((role, client, walked, group));
    }
    // A proof needs a signed checkpoint that covers the event: look up only events that
    // one covers, waiting for the next one if it covers none of a role's.
    let waited = Instant::now();
    let covered = loop {
        let size = checkpointed(&mut walks[0].1).await?;
        let oldest = walks
            .iter()
            .map(|(_, _, walked, _)| walked.oldest_seq())
            .max();
        if oldest.is_some_and(|seq| seq <= size) {
            break size;
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(60),
            "no checkpoint covers the events to look up after a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut readers: Vec<Reader> = walks
        .into_iter()
        .map(|(role, client, mut walked, group)| {
            walked.events.retain(|(_, seq)| *seq <= covered);
            let (requests, page_20, page_200) = requests(&walked, terms, &group);
            Reader {
                role,
                client,
                pages: (page_20, page_200),
                requests,
            }
        })
        .collect();

    let quota = Quota {
        n,
        budget: (seconds > 0.0).then(|| Duration::from_secs_f64(seconds)),
    };
    let kinds: Vec<&'static str> = readers[0].requests.iter().map(|(kind, _)| *kind).collect();
    let mut figures = Vec::new();
    for (k, kind) in kinds.into_iter().enumerate() {
        let mut cells = vec![Cell::default(); readers.len()];
        // Round by round, one request per role that has not met its quota yet.
        for round in 0.. {
            let mut sampled = false;
            for (reader, cell) in readers.iter_mut().zip(&mut cells) {
                if quota.is_met(cell) {
                    continue;
                }
                let requests = &reader.requests[k].1;
                let (path, expect) = &requests[round % requests.len()];
                let started = Instant::now();
                let (status, body) = reader.client.send(Method::GET, path, None).await?;
                let elapsed = started.elapsed();
                anyhow::ensure!(
                    status == StatusCode::OK,
                    "GET {path} as {}: {status}: {}",
                    reader.role,
                    String::from_utf8_lossy(&body)
                );
                expect.check(path, &body)?;
                cell.record(elapsed);
                sampled = true;
            }
            if !sampled {
                break;
            }
        }
        let latencies = cells.into_iter().map(|cell| cell.latencies);
        let roles: Vec<RoleFigure> = readers
            .iter()
            .zip(latencies)
            .map(|(reader, latencies)| RoleFigure {
                role: reader.role,
                page: match kind {
                    "page_20" => Some(reader.pages.0),
                    "page_200" => Some(reader.pages.1),
                    _ => None,
                },
                latencies,
            })
            .collect();
        let summary: Vec<String> = roles
            .iter()
            .map(|figure| {
                let samples = figure.latencies.len();
                let short = if samples < n {
                    format!(" ({samples} samples)")
                } else {
                    String::new()
                };
                format!(
                    "{} {:.2}/{:.2}{short}",
                    figure.role,
                    figure.latencies.percentile(50.0),
                    figure.latencies.percentile(99.0)
                )
            })
            .collect();
        stage(&format!("  {kind} p50/p99 ms: {}", summary.join(", ")));
        figures.push(QueryFigures { kind, roles });
    }
    Ok(figures)
}
