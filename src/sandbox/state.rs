//! The sandbox's memory: stored runs, counts, per-key rate windows, issued cursors and
//! the random draws, behind one lock so the counts and the stored runs can never disagree.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value};

use super::body::is_uuid;
use super::page::{Cursor, Listing, page_of};
use super::{Fault, SandboxOptions, SandboxStats, StoredRun, TestCase, User, builtin_test_cases, builtin_users};

/// What `x-tms-api-limit` says when no rate limit is set.
const UNLIMITED_ADVERTISED: u32 = 1000;
const WINDOW: Duration = Duration::from_secs(1);

/// What a request on a served route asks for; each is counted at arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endpoint {
    CreateRun,
    ListRuns,
    GetRun,
    UpdateRun,
    ListTestCases,
    GetTestCase,
    GetProject,
    ListUsers,
    ListStatuses,
}

impl Endpoint {
    /// A GET: what [`SandboxOptions::busy_reads`] refuses.
    fn is_read(self) -> bool {
        !matches!(self, Endpoint::CreateRun | Endpoint::UpdateRun)
    }

    fn count(self, stats: &mut SandboxStats) {
        let counter = match self {
            Endpoint::CreateRun => &mut stats.posts_received,
            Endpoint::ListRuns => &mut stats.run_lists,
            Endpoint::GetRun => &mut stats.run_gets,
            Endpoint::UpdateRun => &mut stats.puts_received,
            Endpoint::ListTestCases => &mut stats.test_case_lists,
            Endpoint::GetTestCase => &mut stats.test_case_gets,
            Endpoint::GetProject => &mut stats.project_gets,
            Endpoint::ListUsers => &mut stats.user_lists,
            Endpoint::ListStatuses => &mut stats.status_lists,
        };
        *counter += 1;
    }
}

/// Why a request was turned away at the gate.
#[derive(Debug, PartialEq)]
pub(super) enum Refusal {
    Unauthorized,
    RateLimited,
}

pub(super) struct AppState {
    pub(super) opts: SandboxOptions,
    pub(super) users: Vec<User>,
    book: Mutex<Book>,
}

/// Everything that changes, behind one lock so counts and stored runs never disagree.
struct Book {
    runs: Vec<StoredRun>,
    stats: SandboxStats,
    /// Arrival times of admitted requests per key, at most one window old.
    windows: HashMap<String, VecDeque<Instant>>,
    /// GET requests refused so far for [`SandboxOptions::busy_reads`].
    busy_reads_refused: u32,
    rng: StdRng,
    /// Per project, the number in the last assigned `<PREFIX>-R-<n>`.
    last_number: HashMap<String, u64>,
    /// Every cursor handed out, by its text. Bounded: one per list position reached.
    cursors: HashMap<String, Cursor>,
}

/// What a create request meets instead of the normal path.
pub(super) enum Disruption {
    Fail(StatusCode),
    Fault(Fault),
}

/// The rate-limit headers' values for one answer.
pub(super) struct Quota {
    pub(super) limit: u32,
    pub(super) remaining: u32,
    pub(super) reset_secs: u64,
}

impl AppState {
    pub(super) fn new(opts: SandboxOptions) -> AppState {
        let rng = match opts.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => rand::make_rng(),
        };
        AppState {
            users: opts.users.clone().unwrap_or_else(builtin_users),
            opts,
            book: Mutex::new(Book {
                runs: Vec::new(),
                stats: SandboxStats::default(),
                windows: HashMap::new(),
                busy_reads_refused: 0,
                rng,
                last_number: HashMap::new(),
                cursors: HashMap::new(),
            }),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic elsewhere cannot leave the book half-written (every update is a
        // few plain assignments), so a poisoned lock is still safe to use.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn runs(&self) -> Vec<StoredRun> {
        self.book().runs.clone()
    }

    pub(super) fn stats(&self) -> SandboxStats {
        self.book().stats
    }

    pub(super) fn count(&self, bump: impl FnOnce(&mut SandboxStats)) {
        bump(&mut self.book().stats);
    }

    pub(super) fn project_exists(&self, id: &str) -> bool {
        match &self.opts.projects {
            Some(known) => known.iter().any(|p| p == id),
            None => is_uuid(id),
        }
    }

    /// Counts the request, then checks the key and the rate limit, at arrival.
    /// `endpoint` is `None` for a request no endpoint counts (a HEAD).
    pub(super) fn admit(&self, key: Option<&str>, endpoint: Option<Endpoint>) -> Result<(), Refusal> {
        let now = Instant::now();
        let mut book = self.book();
        if let Some(endpoint) = endpoint {
            endpoint.count(&mut book.stats);
        }
        let is_read = endpoint.is_some_and(Endpoint::is_read);
        let key = match (key, &self.opts.api_key) {
            (Some(sent), Some(wanted)) if sent == wanted => sent,
            (Some(sent), None) => sent,
            _ => {
                book.stats.unauthorized += 1;
                return Err(Refusal::Unauthorized);
            }
        };
        if is_read && book.busy_reads_refused < self.opts.busy_reads {
            book.busy_reads_refused += 1;
            book.stats.rate_limited += 1;
            return Err(Refusal::RateLimited);
        }
        let window = book.windows.entry(key.to_owned()).or_default();
        prune(window, now);
        if let Some(limit) = self.opts.rate_limit
            && window.len() >= limit as usize
        {
            book.stats.rate_limited += 1;
            return Err(Refusal::RateLimited);
        }
        window.push_back(now);
        Ok(())
    }

    pub(super) fn quota(&self, key: Option<&str>) -> Quota {
        let limit = self.opts.rate_limit.unwrap_or(UNLIMITED_ADVERTISED);
        let now = Instant::now();
        let mut book = self.book();
        let Some(window) = key.and_then(|k| book.windows.get_mut(k)) else {
            return Quota {
                limit,
                remaining: limit,
                reset_secs: 0,
            };
        };
        prune(window, now);
        let used = u32::try_from(window.len()).unwrap_or(u32::MAX);
        let reset = window
            .front()
            .map(|oldest| (*oldest + WINDOW).saturating_duration_since(now))
            .unwrap_or_default();
        Quota {
            limit,
            remaining: limit.saturating_sub(used),
            reset_secs: reset.as_secs() + u64::from(reset.subsec_nanos() > 0),
        }
    }

    /// Draws `fail_rate`, then each fault rule in order; the first hit applies.
    pub(super) fn draw_disruption(&self) -> Option<Disruption> {
        let mut book = self.book();
        let book = &mut *book;
        let drawn = if self.opts.fail_rate > 0.0 && book.rng.random::<f64>() < self.opts.fail_rate {
            // A 503 says the request was not handled; a plain 500 could not say that (see
            // `Fault::ErrorAfterCreate`), so it would not rehearse a failure to retry.
            Some(Disruption::Fail(StatusCode::SERVICE_UNAVAILABLE))
        } else {
            self.opts
                .faults
                .iter()
                .find(|rule| book.rng.random::<f64>() < rule.probability)
                .map(|rule| Disruption::Fault(rule.fault.clone()))
        };
        if drawn.is_some() {
            book.stats.faults_injected += 1;
        }
        drawn
    }

    /// Stores the run and counts it in one step: the invariant tests rely on.
    pub(super) fn create(&self, project_id: &str, body: Map<String, Value>) -> StoredRun {
        let mut book = self.book();
        book.stats.created += 1;
        book.store(project_id, body)
    }

    /// [`AppState::create`] for a run made by something else: counted as seeded.
    pub(super) fn seed(&self, project_id: &str, body: Map<String, Value>) -> StoredRun {
        let mut book = self.book();
        book.stats.seeded += 1;
        book.store(project_id, body)
    }

    /// Keeps a run as it was, ids included: a service's runs across a restart.
    pub(super) fn restore(&self, run: StoredRun) {
        let mut book = self.book();
        let number = run
            .human_id
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let last = book.last_number.entry(run.project_id.clone()).or_insert(0);
        *last = (*last).max(number);
        book.stats.seeded += 1;
        book.runs.push(run);
    }

    /// Replaces the body of the project's run with this id (not human id), counting it.
    pub(super) fn update(&self, project_id: &str, id: &str, body: Map<String, Value>) -> Option<StoredRun> {
        let mut book = self.book();
        let book = &mut *book;
        let run = book
            .runs
            .iter_mut()
            .find(|r| r.project_id == project_id && r.id == id)?;
        run.body = Value::Object(body);
        run.updated_at = chrono::Utc::now().timestamp();
        run.updates += 1;
        book.stats.updated += 1;
        Some(run.clone())
    }

    /// The project's run with this id or human id.
    pub(super) fn find_run(&self, project_id: &str, wanted: &str) -> Option<StoredRun> {
        let book = self.book();
        let found = book
            .runs
            .iter()
            .find(|r| r.project_id == project_id && (r.id == wanted || r.human_id == wanted));
        found.cloned()
    }

    /// One page of the project's runs whose title contains `title_part` (ignoring case),
    /// from position `start` in creation order, and where the next page starts.
    pub(super) fn page_runs(
        &self,
        project_id: &str,
        title_part: &str,
        start: usize,
        size: usize,
    ) -> (Vec<StoredRun>, Option<usize>) {
        let title_part = title_part.to_lowercase();
        let book = self.book();
        let matching = book.runs.iter().enumerate().skip(start).filter(|(_, r)| {
            r.project_id == project_id
                && r.body
                    .get("title")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.to_lowercase().contains(&title_part))
        });
        page_of(matching.map(|(i, r)| (i, r.clone())), size)
    }

    /// The project's test cases, in the order [`SandboxOptions::test_cases`] lists them.
    pub(super) fn test_cases(&self, project_id: &str) -> Vec<TestCase> {
        match &self.opts.test_cases {
            Some(all) => all.iter().filter(|c| c.project_id == project_id).cloned().collect(),
            None => builtin_test_cases(project_id),
        }
    }

    /// The text of a cursor to send back for the next page; remembered, so that
    /// [`AppState::resolve_cursor`] knows it was issued.
    pub(super) fn issue_cursor(&self, cursor: Cursor) -> String {
        let text = cursor.text();
        self.book().cursors.entry(text.clone()).or_insert(cursor);
        text
    }

    /// Where a sent cursor continues: `None` unless the sandbox issued it for this list
    /// of this project.
    pub(super) fn resolve_cursor(&self, listing: Listing, project_id: &str, text: &str) -> Option<usize> {
        let book = self.book();
        let cursor = book.cursors.get(text)?;
        (cursor.listing == listing && cursor.project_id == project_id).then_some(cursor.next)
    }
}

impl Book {
    /// Stores a run with a fresh id and the project's next human id. The caller counts it.
    fn store(&mut self, project_id: &str, body: Map<String, Value>) -> StoredRun {
        let created_at = chrono::Utc::now().timestamp();
        let prefix = human_id_prefix(body.get("human_id").and_then(Value::as_str));
        let number = self.last_number.entry(project_id.to_owned()).or_insert(0);
        *number += 1;
        let run = StoredRun {
            id: uuid::Uuid::new_v4().to_string(),
            human_id: format!("{prefix}-R-{number}"),
            project_id: project_id.to_owned(),
            body: Value::Object(body),
            created_at,
            updated_at: created_at,
            updates: 0,
        };
        self.runs.push(run.clone());
        run
    }
}

fn prune(window: &mut VecDeque<Instant>, now: Instant) {
    while window
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        window.pop_front();
    }
}

/// `DEMO-001` gives `DEMO` (so `DEMO-R-1`, as on the api page); no letters gives `TR`.
fn human_id_prefix(sent: Option<&str>) -> String {
    let first_part = sent.unwrap_or("").split('-').next().unwrap_or("");
    let letters: String = first_part.chars().take_while(char::is_ascii_alphabetic).collect();
    if letters.is_empty() {
        "TR".to_owned()
    } else {
        letters.to_ascii_uppercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_id_prefix_follows_the_api_page() {
        let cases = [
            (Some("DEMO-001"), "DEMO"),
            (Some("run-7"), "RUN"),
            (Some("REG42"), "REG"),
            (Some("2024-Q1"), "TR"),
            (Some(""), "TR"),
            (None, "TR"),
        ];
        for (sent, want) in cases {
            assert_eq!(human_id_prefix(sent), want, "sent {sent:?}");
        }
    }
}
