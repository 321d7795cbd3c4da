//! Sends the planned requests: the client's one pacer (governor, burst 1, shared with the
//! read-only calls) so no one-second window ever holds more than `--rate` requests, at
//! most `--concurrency` in flight,
//! one retry layer, and exactly one outcome per row. Per-row failures are values handed
//! to the sink, never early returns: only a refused key or a redirect stops the run.

mod health;
mod row;
mod signals;
mod stop;

pub use signals::watch_signals;
pub use stop::{StopReason, StopSignal};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;

use self::row::RowContext;
use crate::report::ReportRow;
use crate::service::ApiClient;

/// One row to send.
#[derive(Debug, Clone)]
pub struct UploadJob {
    /// Position in the run's report rows.
    pub index: usize,
    pub row: usize,
    pub project_id: String,
    pub body: Arc<Vec<u8>>,
    /// What the ledger records of the request's fields once it is done.
    pub fields: String,
    pub idempotency_key: String,
    pub title: String,
    pub human_id: Option<String>,
    /// The run to update (`PUT`) instead of creating one.
    pub update_of: Option<String>,
    /// The row's (scope, key) in the ledger, when there is one.
    pub ledger_key: Option<(String, String)>,
}

/// How rows are sent. The pace (`--rate`) is the client's: see [`ApiClient::paced`].
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub concurrency: usize,
    pub max_retries: u32,
}

/// Where rows go as they are sent and as they finish: the ledger, the report, progress.
pub trait UploadSink: Send + Sync {
    /// Called just before a row's first request. An error stops the run: a row must not
    /// be sent unless the ledger can say so.
    fn before_send(&self, job: &UploadJob) -> Result<(), String>;
    /// Called once per row, with its final report line.
    fn finished(&self, job: &UploadJob, row: ReportRow);
}

/// What the pacer saw, for the summary and the benchmarks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadStats {
    pub requests_sent: usize,
    pub rate_limited: usize,
    pub elapsed: Duration,
    /// The pacer's rate at the end, in requests per second.
    pub final_rate: f64,
    /// From the first request sent to the last.
    pub send_span: Duration,
}

impl UploadStats {
    /// The pace requests actually left at: n requests span n-1 intervals.
    pub fn send_rate(&self) -> f64 {
        let secs = self.send_span.as_secs_f64();
        if self.requests_sent < 2 || secs <= 0.0 {
            0.0
        } else {
            (self.requests_sent - 1) as f64 / secs
        }
    }
}

/// Sends every job and hands each row's outcome to the sink. Returns when every job has
/// an outcome, or the run was stopped (rows not started are then `not_sent`). Jobs are
/// taken from `jobs` as places free up, so they need not all be made at once.
pub async fn upload(
    client: Arc<ApiClient>,
    jobs: impl Iterator<Item = UploadJob> + Send,
    settings: &UploadSettings,
    sink: Arc<dyn UploadSink>,
    stop: StopSignal,
) -> UploadStats {
    let started = Instant::now();
    let ctx = Arc::new(RowContext {
        client,
        sink,
        stop,
        sent: AtomicUsize::new(0),
        rate_limited: AtomicUsize::new(0),
        created_any: AtomicBool::new(false),
        answered_any: AtomicBool::new(false),
        down: Mutex::default(),
        sends: Mutex::new(None),
        max_retries: settings.max_retries,
    });
    futures::stream::iter(jobs)
        .map(|job| {
            let ctx = ctx.clone();
            async move {
                let row = ctx.send_row(&job).await;
                ctx.sink.finished(&job, row);
            }
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect::<()>()
        .await;

    UploadStats {
        requests_sent: ctx.sent.load(Ordering::SeqCst),
        rate_limited: ctx.rate_limited.load(Ordering::SeqCst),
        elapsed: started.elapsed(),
        final_rate: ctx.client.pacer().rate(),
        send_span: ctx
            .sends
            .lock()
            .ok()
            .and_then(|s| s.map(|(first, last)| last - first))
            .unwrap_or_default(),
    }
}
