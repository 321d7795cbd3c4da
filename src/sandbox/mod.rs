//! The local stand-in for the Testsigma Test Management API: an in-memory server on
//! 127.0.0.1 that answers like the real service and rehearses its bad days on demand:
//! rate limiting, random failures, lost connections, cut-short or odd bodies,
//! `Retry-After` and redirects.
//!
//! Every endpoint it serves, below `/api/v1` (API-NOTES.md has the shapes):
//!
//! | request | answer |
//! |---|---|
//! | `POST /projects/{pid}/test_runs` | creates a run: `{"message":"","data":{"test_run":{...}}}`; faults apply here only |
//! | `GET /projects/{pid}/test_runs?page_size=N&cursor=C&title__CONTAINS=T` | the project's runs in creation order, paged: `{"message":"","data":[...],"next_cursor":"..."\|null}` |
//! | `GET /projects/{pid}/test_runs/{id or human id}` | `{"message":"","data":{"test_run":{...}}}` |
//! | `PUT /projects/{pid}/test_runs/{id}` | replaces the run's body (checked like a create's); answered like the create |
//! | `GET /projects/{pid}/test_cases?page_size=N&cursor=C` | the project's test cases, paged like runs |
//! | `GET /projects/{pid}/test_cases/{id or human id}` | `{"message":"","data":{"test_case":{"id","human_id","title","project_id"}}}` |
//! | `GET /projects/{pid}` | the project, or 404 |
//! | `GET /users` | `{"message":"","data":[{"id","email","first_name","last_name"}]}` |
//! | `GET /test_runs/statuses` | `{"message":"","data":["ACTIVE","CLOSED"]}` |
//!
//! Anything else is a plain 404 `{"code":404,"message":"Not Found"}`, as is an unknown
//! project, run or test case. Every served request needs the bearer key and counts against
//! the rate limit, GETs included. Paging: 20 a page unless `page_size` says otherwise, at
//! most 100 (more is served as 100; `0` or a non-number is a 400); `next_cursor` is opaque
//! and `null` on the last page, and a cursor the sandbox did not issue (or issued for
//! another list or project) is a 400. `title__CONTAINS` matches case-insensitively, so a
//! client that needs an exact title must compare titles itself. Reads show a run's stored
//! body whole (including `static_selection_filters`, so a client can compare); the create
//! and update answers show the api page's fields, which leave the filters out.
//!
//! It never counts a run as created that it did not store, and stores exactly the runs
//! it counts, so tests can compare an importer's report with [`Sandbox::runs`].

mod body;
mod conn;
mod fault;
mod lookup;
mod page;
mod routes;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub use fault::{Fault, FaultRule, FaultSpecError, parse_fault};

/// The path every endpoint lives under, as on the real service.
pub const API_ROOT: &str = "/api/v1";

/// How the sandbox behaves. `Default` is a well-behaved service that accepts any key.
#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    /// `None`: any non-empty bearer key is accepted; `Some(k)`: only `k`.
    pub api_key: Option<String>,
    /// Added before every answer (after the request was handled).
    pub latency: Duration,
    /// Requests per second per key (sliding one-second window, counted at arrival).
    /// Over it: HTTP 500 `{"message":"rate limit exceeded"}`; refused requests do not
    /// use up the window.
    pub rate_limit: Option<u32>,
    /// Probability of a random 500 or 503 on create, without creating the run.
    pub fail_rate: f64,
    /// Faults for the create endpoint; the first rule whose draw hits applies.
    pub faults: Vec<FaultRule>,
    /// For `GET /users`; `None`: [`builtin_users`].
    pub users: Option<Vec<User>>,
    /// Known project ids; `None`: every well-formed UUID is a project.
    pub projects: Option<Vec<String>>,
    /// Makes `fail_rate` and `faults` draw the same sequence on every run.
    pub seed: Option<u64>,
    /// The first this many GET requests are refused with the rate-limit 500, as when another
    /// client has just used up the window.
    pub busy_reads: u32,
    /// The test cases `GET .../test_cases` serves, each in its `project_id`'s list;
    /// `None`: every project has [`builtin_test_cases`].
    pub test_cases: Option<Vec<TestCase>>,
}

/// A user as `GET /users` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// The users `GET /users` lists when [`SandboxOptions::users`] is `None`.
pub fn builtin_users() -> Vec<User> {
    [
        ("5f0c8a52-0d7e-4c36-9a55-3c1f4f2b9e01", "ada", "Ada", "Lovelace"),
        ("8b1d2e6f-4a3c-4f7d-8e21-6d9b0c7a5f02", "grace", "Grace", "Hopper"),
        ("c3e4f5a6-7b8c-4d9e-a0f1-2b3c4d5e6f03", "alan", "Alan", "Turing"),
    ]
    .into_iter()
    .map(|(id, name, first, last)| User {
        id: id.to_owned(),
        email: format!("{name}@example.com"),
        first_name: first.to_owned(),
        last_name: last.to_owned(),
    })
    .collect()
}

/// A test case as `GET /projects/{pid}/test_cases/{id}` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    pub id: String,
    /// The service's human id, e.g. `TC-12`.
    pub human_id: String,
    pub title: String,
    pub project_id: String,
}

/// How many test cases every project has when [`SandboxOptions::test_cases`] is `None`.
pub const BUILTIN_TEST_CASES: u32 = 30;

/// The test cases a project has when [`SandboxOptions::test_cases`] is `None`: `TC-1` to
/// `TC-30`, titled `Sandbox test case N`, with the ids [`builtin_test_case_id`] gives.
pub fn builtin_test_cases(project_id: &str) -> Vec<TestCase> {
    (1..=BUILTIN_TEST_CASES)
        .map(|number| TestCase {
            id: builtin_test_case_id(project_id, number),
            human_id: format!("TC-{number}"),
            title: format!("Sandbox test case {number}"),
            project_id: project_id.to_owned(),
        })
        .collect()
}

/// The id of built-in test case `TC-<number>` in a project: a UUID (version 8) made from
/// a SHA-256 of the project id and the number, so it is the same in every sandbox and
/// differs between projects.
pub fn builtin_test_case_id(project_id: &str, number: u32) -> String {
    let digest = Sha256::digest(format!("testsigma-import sandbox test case {project_id} TC-{number}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
}

/// A run the sandbox created (or a test seeded) and stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredRun {
    pub id: String,
    /// The human id the sandbox assigned (`<PREFIX>-R-<n>`), not the one sent.
    pub human_id: String,
    pub project_id: String,
    /// The request body exactly as received (it passed validation); after an update,
    /// the update's body.
    pub body: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: `created_at` until an update.
    pub updated_at: i64,
    /// How many times `PUT` replaced the body.
    pub updates: u32,
}

/// What the sandbox has seen and done so far. The `*_received`, `*_lists` and `*_gets`
/// counts are requests that reached a served route, counted at arrival whatever became of
/// them (refused for the key or the rate limit included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SandboxStats {
    /// Every `POST .../test_runs`, whatever became of it.
    pub posts_received: u64,
    /// Runs stored by `POST`; `created + seeded` always equals `runs().len()`.
    pub created: u64,
    /// Runs stored by [`Sandbox::insert_run`].
    pub seeded: u64,
    /// Every `PUT .../test_runs/{id}`, whatever became of it.
    pub puts_received: u64,
    /// Runs whose body a `PUT` replaced.
    pub updated: u64,
    /// `GET .../test_runs` (one per page).
    pub run_lists: u64,
    /// `GET .../test_runs/{id}`.
    pub run_gets: u64,
    /// `GET .../test_cases` (one per page).
    pub test_case_lists: u64,
    /// `GET .../test_cases/{id}`.
    pub test_case_gets: u64,
    /// `GET /users`.
    pub user_lists: u64,
    /// `GET /projects/{pid}`.
    pub project_gets: u64,
    /// `GET /test_runs/statuses`.
    pub status_lists: u64,
    /// Requests refused by the rate limit (any endpoint).
    pub rate_limited: u64,
    /// Create requests that met `fail_rate` or a fault rule.
    pub faults_injected: u64,
    /// Requests refused for a missing, empty or wrong key (any endpoint).
    pub unauthorized: u64,
    /// Requests refused with 400 or 422: a bad create or update body, page size or cursor.
    pub invalid: u64,
    /// Requests answered 404 (unknown route, project, run or test case).
    pub not_found: u64,
}

impl SandboxStats {
    /// Every GET received on a served route: the lookups a client made.
    pub fn reads(&self) -> u64 {
        self.run_lists
            + self.run_gets
            + self.test_case_lists
            + self.test_case_gets
            + self.user_lists
            + self.project_gets
            + self.status_lists
    }
}

impl fmt::Display for SandboxStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} POSTs received, {} runs created, {} PUTs received, {} runs updated, \
             {} GETs received, {} rate-limited, {} faults injected, {} unauthorized, \
             {} invalid, {} not found",
            self.posts_received,
            self.created,
            self.puts_received,
            self.updated,
            self.reads(),
            self.rate_limited,
            self.faults_injected,
            self.unauthorized,
            self.invalid,
            self.not_found
        )
    }
}

/// Why [`Sandbox::insert_run`] stored nothing.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SeedError {
    #[error("project {0} is not one the sandbox serves")]
    UnknownProject(String),
    #[error("the run's body does not have the contract's shape: {0}")]
    InvalidBody(String),
}

/// Options that cannot describe a service.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("fail rate {0} must be a probability from 0 to 1")]
    FailRate(f64),
    #[error("fault `{0}`: its probability must be from 0 to 1")]
    FaultProbability(String),
    #[error("rate limit must be at least 1 request per second (leave it out for no limit)")]
    RateLimitZero,
    #[error("the sandbox's API key must not be empty (leave it out to accept any key)")]
    EmptyApiKey,
}

fn check_options(opts: &SandboxOptions) -> Result<(), OptionsError> {
    let probability = |p: f64| (0.0..=1.0).contains(&p);
    if !probability(opts.fail_rate) {
        return Err(OptionsError::FailRate(opts.fail_rate));
    }
    if let Some(rule) = opts.faults.iter().find(|r| !probability(r.probability)) {
        return Err(OptionsError::FaultProbability(rule.to_string()));
    }
    if opts.rate_limit == Some(0) {
        return Err(OptionsError::RateLimitZero);
    }
    if opts.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        return Err(OptionsError::EmptyApiKey);
    }
    Ok(())
}

/// A running sandbox. Dropping it stops the server too; [`Sandbox::shutdown`] also
/// waits until the port is released.
pub struct Sandbox {
    addr: SocketAddr,
    state: Arc<state::AppState>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Binds 127.0.0.1:`port` (0 picks a free port) and starts serving.
    pub async fn start(opts: SandboxOptions, port: u16) -> io::Result<Sandbox> {
        check_options(&opts).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(state::AppState::new(opts));
        let router = routes::router(state.clone());
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(accept_loop(listener, router, stopped));
        Ok(Sandbox {
            addr,
            state,
            stop: Some(stop),
            server: Some(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/api/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}{API_ROOT}", self.addr)
    }

    /// Every run stored (created or seeded), in creation order, as updates left them.
    pub fn runs(&self) -> Vec<StoredRun> {
        self.state.runs()
    }

    /// Stores a run as if something other than the client under test had created it
    /// (the web app, another import): no request is made and nothing counts against the
    /// rate limit. The body is checked like a create's, so it must have the contract's
    /// shape and name `project_id` in its `project_id`; the run gets the next human id in
    /// its project, like a created one, and is counted in [`SandboxStats::seeded`].
    pub fn insert_run(&self, project_id: &str, body: serde_json::Value) -> Result<StoredRun, SeedError> {
        if !self.state.project_exists(project_id) {
            return Err(SeedError::UnknownProject(project_id.to_owned()));
        }
        let raw = body.to_string();
        let body = body::check_body(project_id, raw.as_bytes()).map_err(|e| SeedError::InvalidBody(e.to_string()))?;
        Ok(self.state.seed(project_id, body))
    }

    /// Keeps runs as another sandbox stored them, ids and human ids included, as a service
    /// keeps its runs across a restart (or a change of how it behaves). Counted as seeded.
    pub fn restore(&self, runs: Vec<StoredRun>) {
        for run in runs {
            self.state.restore(run);
        }
    }

    pub fn stats(&self) -> SandboxStats {
        self.state.stats()
    }

    /// Stops accepting, drops every open connection (answers in flight are lost) and
    /// waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves on 127.0.0.1:`port` until Ctrl-C. Prints `sandbox listening on <base URL>`
/// on stdout first (scripts wait for it), and the counts on stderr at the end.
pub async fn serve_until_ctrl_c(opts: SandboxOptions, port: u16) -> io::Result<()> {
    let sandbox = Sandbox::start(opts, port).await?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "sandbox listening on {}", sandbox.base_url())?;
        out.flush()?;
    }
    tokio::signal::ctrl_c().await?;
    let stats = sandbox.stats();
    sandbox.shutdown().await;
    crate::ui::say(&format!("sandbox stopped: {stats}"));
    Ok(())
}

async fn accept_loop(listener: TcpListener, router: axum::Router, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(conn::serve(stream, router.clone()));
                }
                // Out of file descriptors and the like: pause instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}
