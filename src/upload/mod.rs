//! Sends the planned requests: one shared pacer (governor, burst 1) so no one-second
//! window ever holds more than `--rate` requests, at most `--concurrency` in flight,
//! one retry layer, and exactly one outcome per row. Per-row failures are values handed
//! to the sink, never early returns: only a refused key or a redirect stops the run.

mod signals;

pub use signals::watch_signals;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use rand::RngExt;

use crate::report::{Outcome, ReportRow};
use crate::service::{Answer, ApiClient, Redirect};

/// One row to send.
#[derive(Debug, Clone)]
pub struct UploadJob {
    /// Position in the run's report rows.
    pub index: usize,
    pub row: usize,
    pub project_id: String,
    pub body: Arc<Vec<u8>>,
    pub idempotency_key: String,
    pub title: String,
    pub human_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub rate: f64,
    pub concurrency: usize,
    pub max_retries: u32,
    /// Calls just made to the same service (e.g. `GET /users`): they count against its
    /// rate limit too, so they take the first turns of the pace.
    pub prior_requests: usize,
}

/// Where rows go as they are sent and as they finish: the ledger, the report, progress.
pub trait UploadSink: Send + Sync {
    /// Called just before a row's first request. An error stops the run: a row must not
    /// be sent unless the ledger can say so.
    fn before_send(&self, job: &UploadJob) -> Result<(), String>;
    /// Called once per row, with its final report line.
    fn finished(&self, job: &UploadJob, row: ReportRow);
}

/// Why the run stopped before every row was tried.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    Interrupted,
    KeyRefused {
        status: u16,
        message: String,
    },
    Redirected(Redirect),
    Ledger(String),
    /// No connection to the service was ever made: a row ran out of retries, and not
    /// one request of the run got any answer. The base URL or the network is wrong.
    Unreachable {
        base_url: String,
        error: String,
    },
}

/// A handle that stops the upload: no new request starts, and rows waiting for their turn
/// or for a retry stop waiting; those in flight finish. Halting also gives up on the
/// answers in flight, whose rows become `unknown`.
#[derive(Clone)]
pub struct StopSignal {
    stopped: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<StopReason>>>,
    level: Arc<tokio::sync::watch::Sender<Level>>,
}

/// How far a run has been stopped, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Running,
    Stopped,
    Halted,
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal {
            stopped: Arc::default(),
            reason: Arc::default(),
            level: Arc::new(tokio::sync::watch::Sender::new(Level::Running)),
        }
    }
}

impl StopSignal {
    pub fn stop(&self, reason: StopReason) {
        if let Ok(mut slot) = self.reason.lock()
            && slot.is_none()
        {
            *slot = Some(reason);
        }
        self.stopped.store(true, Ordering::SeqCst);
        self.raise(Level::Stopped);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Stops, and gives up waiting: answers in flight are no longer awaited, so the run
    /// ends now with every row accounted for.
    pub fn halt(&self, reason: StopReason) {
        self.stop(reason);
        self.raise(Level::Halted);
    }

    fn raise(&self, to: Level) {
        self.level.send_if_modified(|level| {
            let raised = *level < to;
            *level = (*level).max(to);
            raised
        });
    }

    /// Runs `work` to its end, or until the run is stopped: `None` then. For waits that
    /// a stop makes pointless (a turn, a retry's pause).
    async fn unless_stopped<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        self.unless(Level::Stopped, work).await
    }

    /// Runs `work` to its end, or until [`StopSignal::halt`] is called: `None` then. For
    /// answers in flight, which a plain stop still waits for.
    async fn unless_halted<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        self.unless(Level::Halted, work).await
    }

    async fn unless<T>(&self, level: Level, work: impl std::future::Future<Output = T>) -> Option<T> {
        let mut watch = self.level.subscribe();
        tokio::select! {
            done = work => Some(done),
            // The sender lives as long as `self`, so this cannot fail while awaited.
            _ = watch.wait_for(|now| *now >= level) => None,
        }
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }
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

/// The pace of the whole uploader, in two layers. The hard bound is one governor limiter
/// at `--rate` with burst 1, which nothing ever loosens. Over it, an adaptive pace: it
/// starts at `--rate`; when the service signals its rate limit it slows down for every
/// row (not just the one refused), then climbs back towards the highest pace that drew
/// no refusal. The adaptive layer only ever adds waits, so adapting can never break
/// the bound.
struct Pacer {
    max_rate: f64,
    /// On the OS monotonic clock: governor's default TSC clock is calibrated at start-up,
    /// and on a virtual machine an early miscalibration spaced requests too closely.
    limiter: RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>,
    state: Mutex<PacerState>,
}

struct PacerState {
    rate: f64,
    /// The next free send slot at the adaptive pace.
    next_slot: tokio::time::Instant,
    /// The rate at which the service last refused us; the climb stays under it.
    ceiling: Option<f64>,
    /// The last change of pace, either way: climbs are a second apart at least.
    changed_at: Instant,
    /// The last slow-down: refusals of requests sent within a window after it do not count.
    slowed_at: Instant,
    /// The last refusal, counted or not: no climb within a second of one.
    refused_at: Option<Instant>,
    paused_until: Option<tokio::time::Instant>,
}

const MIN_RATE: f64 = 0.2;

/// How long the service's rate-limit window is taken to be: a request sent less than this
/// after a slow-down may be refused for those sent before it, still in the window.
const LIMIT_WINDOW: Duration = Duration::from_secs(1);

/// Requests leave at most `rate / 1.015` per second: 15 ms of arrival jitter per second
/// of window is absorbed, for 1.5% of the pace.
const SPACING_MARGIN: f64 = 1.015;

impl Pacer {
    fn new(rate: f64) -> Pacer {
        let rate = rate.max(MIN_RATE);
        // Spaced a little wider than 1/rate: requests reach the service with some jitter,
        // and at exactly 1/rate two of them arriving 1 ms apart from their slots put
        // rate+1 into one second of the service's window (seen against the sandbox).
        let period = Duration::from_secs_f64(SPACING_MARGIN / rate);
        // Burst 1: requests are spaced evenly, so no window of one second holds more than `rate`.
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
        Pacer {
            max_rate: rate,
            limiter: RateLimiter::direct_with_clock(quota.allow_burst(NonZeroU32::MIN), MonotonicClock),
            state: Mutex::new(PacerState {
                rate,
                next_slot: tokio::time::Instant::now(),
                ceiling: None,
                changed_at: Instant::now(),
                // As if a window ago: the first refusal counts at once.
                slowed_at: Instant::now().checked_sub(LIMIT_WINDOW).unwrap_or_else(Instant::now),
                refused_at: None,
                paused_until: None,
            }),
        }
    }

    /// Waits for this request's turn.
    async fn acquire(&self) {
        loop {
            let slot = {
                let Ok(mut s) = self.state.lock() else { break };
                let now = tokio::time::Instant::now();
                if s.rate >= self.max_rate && s.paused_until.is_none_or(|until| until <= now) {
                    // At full pace the governor alone spaces requests.
                    break;
                }
                let mut slot = s.next_slot.max(now);
                if let Some(until) = s.paused_until {
                    slot = slot.max(until);
                }
                s.next_slot = slot + Duration::from_secs_f64(SPACING_MARGIN / s.rate);
                slot
            };
            tokio::time::sleep_until(slot).await;
            // A Retry-After may have come while we slept: then take a new slot after it.
            let paused = self.state.lock().ok().and_then(|s| s.paused_until);
            if paused.is_none_or(|until| until <= tokio::time::Instant::now()) {
                break;
            }
        }
        self.limiter.until_ready().await;
    }

    fn rate(&self) -> f64 {
        self.state.lock().map(|s| s.rate).unwrap_or(self.max_rate)
    }

    /// The service refused a request sent at `sent_at` for its rate limit.
    fn on_rate_limited(&self, sent_at: Instant, retry_after: Option<Duration>) {
        if let Some(wait) = retry_after {
            self.pause(wait);
        }
        let Ok(mut s) = self.state.lock() else { return };
        s.refused_at = Some(Instant::now());
        // Answers to requests sent before the last slow-down, or so soon after it that the
        // service's window still held the faster ones, say nothing about the new pace:
        // counting them cut 20/s to 2/s in half a second against a limit of 5/s.
        if sent_at < s.slowed_at + LIMIT_WINDOW {
            return;
        }
        s.ceiling = Some(s.rate);
        s.rate = (s.rate * 0.75).max(MIN_RATE);
        s.changed_at = Instant::now();
        s.slowed_at = s.changed_at;
        tracing::warn!(
            rate = s.rate,
            ceiling = s.ceiling,
            "rate limited by the service: slowing down"
        );
    }

    /// A `Retry-After` asks everyone to wait, not just the row that got it.
    fn pause(&self, wait: Duration) {
        let Ok(mut s) = self.state.lock() else { return };
        let until = tokio::time::Instant::now() + wait.min(Duration::from_secs(300));
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// A request went through: after a quiet second, climb back.
    fn on_success(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        let second = Duration::from_secs(1);
        if s.rate >= self.max_rate
            || s.changed_at.elapsed() < second
            || s.refused_at.is_some_and(|at| at.elapsed() < second)
        {
            return;
        }
        let quiet_for = s.refused_at.map_or(s.changed_at.elapsed(), |at| at.elapsed());
        let target = match s.ceiling {
            // Probe above the last refusal only after a long quiet spell: limits do rise.
            Some(c) if quiet_for < Duration::from_secs(20) => c * 0.97,
            Some(c) => {
                s.ceiling = Some(c * 1.05);
                c * 1.05
            }
            None => self.max_rate,
        };
        let next = (s.rate * 1.1).max(s.rate + 0.1).min(target).min(self.max_rate);
        if next > s.rate {
            tracing::info!(rate = next, "no refusals for a while: speeding up");
            s.rate = next;
            s.changed_at = Instant::now();
        }
    }
}

/// How many times one row may be refused for the rate limit before it fails. Those
/// refusals do not count against `--max-retries`: the service said "later", not "no".
const MAX_RATE_LIMITED: u32 = 50;

/// Sends every job and hands each row's outcome to the sink. Returns when every job has
/// an outcome, or the run was stopped (rows not started are then `not_sent`).
pub async fn upload(
    client: Arc<ApiClient>,
    jobs: Vec<UploadJob>,
    settings: &UploadSettings,
    sink: Arc<dyn UploadSink>,
    stop: StopSignal,
) -> UploadStats {
    let started = Instant::now();
    let ctx = Arc::new(RowContext {
        client,
        pacer: Pacer::new(settings.rate),
        sink,
        stop,
        sent: AtomicUsize::new(0),
        rate_limited: AtomicUsize::new(0),
        created_any: AtomicBool::new(false),
        answered_any: AtomicBool::new(false),
        sends: Mutex::new(None),
        max_retries: settings.max_retries,
    });
    for _ in 0..settings.prior_requests {
        ctx.pacer.limiter.until_ready().await;
    }
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
        final_rate: ctx.pacer.rate(),
        send_span: ctx
            .sends
            .lock()
            .ok()
            .and_then(|s| s.map(|(first, last)| last - first))
            .unwrap_or_default(),
    }
}

/// What every row's task shares.
struct RowContext {
    client: Arc<ApiClient>,
    pacer: Pacer,
    sink: Arc<dyn UploadSink>,
    stop: StopSignal,
    sent: AtomicUsize,
    rate_limited: AtomicUsize,
    created_any: AtomicBool,
    /// Some request got an HTTP answer, of any kind: the service is there.
    answered_any: AtomicBool,
    /// The first and the latest send, for the pace actually achieved.
    sends: Mutex<Option<(Instant, Instant)>>,
    max_retries: u32,
}

impl RowContext {
    async fn send_row(&self, job: &UploadJob) -> ReportRow {
        let mut report = ReportRow {
            row: job.row,
            outcome: Outcome::NotSent,
            title: Some(job.title.clone()),
            human_id: job.human_id.clone(),
            ..ReportRow::default()
        };
        if self.stop.is_stopped() {
            report.error = Some(not_sent_reason(&self.stop));
            return report;
        }
        let mut retries = 0u32;
        let mut refusals = 0u32;
        loop {
            self.stop.unless_stopped(self.pacer.acquire()).await;
            if self.stop.is_stopped() {
                return self.stopped_before_sending(report);
            }
            // Recorded as late as possible, so a crash while waiting for a turn leaves the
            // row unsent rather than `unknown` on the next run.
            if report.attempts == 0
                && let Err(e) = self.sink.before_send(job)
            {
                self.stop.stop(StopReason::Ledger(e.clone()));
                report.error = Some(format!("not sent: {e}"));
                return report;
            }
            let sent_at = Instant::now();
            if let Ok(mut span) = self.sends.lock() {
                *span = Some(span.map_or((sent_at, sent_at), |(first, _)| (first, sent_at)));
            }
            report.attempts += 1;
            self.sent.fetch_add(1, Ordering::SeqCst);
            let request = self
                .client
                .create_test_run(&job.project_id, job.body.to_vec(), &job.idempotency_key);
            let answer = self
                .stop
                .unless_halted(request)
                .await
                .unwrap_or_else(|| Answer::Unknown {
                    status: None,
                    error: "the run was stopped at once before the answer came; the run may exist".to_owned(),
                    request_id: None,
                });
            tracing::info!(row = job.row, attempt = report.attempts, answer = ?AnswerKind(&answer), "answer");
            // A connection never made sent no request: the summary counts requests sent.
            if answer.never_connected() {
                self.sent.fetch_sub(1, Ordering::SeqCst);
            }
            if answer.status().is_some() {
                self.answered_any.store(true, Ordering::SeqCst);
            }
            match answer {
                Answer::Created {
                    id,
                    human_id,
                    status,
                    request_id,
                } => {
                    self.created_any.store(true, Ordering::SeqCst);
                    self.pacer.on_success();
                    report.outcome = Outcome::Created;
                    report.test_run_id = Some(id);
                    report.test_run_human_id = human_id;
                    report.http_status = Some(status);
                    report.request_id = request_id;
                    report.error = None;
                    return report;
                }
                Answer::Retry {
                    status,
                    error,
                    retry_after,
                    rate_limited,
                    request_id,
                } => {
                    report.http_status = status;
                    report.request_id = request_id;
                    report.error = Some(error);
                    report.outcome = Outcome::Failed;
                    let wait = if rate_limited {
                        self.rate_limited.fetch_add(1, Ordering::SeqCst);
                        self.pacer.on_rate_limited(sent_at, retry_after);
                        refusals += 1;
                        if refusals > MAX_RATE_LIMITED {
                            report.error = report
                                .error
                                .map(|e| format!("{e} ({MAX_RATE_LIMITED} rate-limit refusals)"));
                            return report;
                        }
                        // The pacer has slowed everyone down; a little jitter spreads the retries.
                        jitter(Duration::from_millis(250))
                    } else {
                        retries += 1;
                        if retries > self.max_retries {
                            if status.is_none() && !self.answered_any.load(Ordering::SeqCst) {
                                // Every other row would wait through its retries the same way.
                                self.stop.stop(StopReason::Unreachable {
                                    base_url: self.client.base_url().to_owned(),
                                    error: report.error.clone().unwrap_or_default(),
                                });
                            }
                            report.error = report.error.map(|e| format!("{e}{}", gave_up(self.max_retries)));
                            return report;
                        }
                        if let Some(wait) = retry_after {
                            self.pacer.pause(wait);
                        }
                        retry_after.unwrap_or_else(|| backoff(retries))
                    };
                    tracing::debug!(row = job.row, wait_ms = wait.as_millis() as u64, error = ?report.error, "retrying");
                    self.stop.unless_stopped(tokio::time::sleep(wait)).await;
                    if self.stop.is_stopped() {
                        report.error = report.error.map(|e| format!("{e}; interrupted before the next retry"));
                        return report;
                    }
                }
                Answer::Rejected {
                    status,
                    error,
                    request_id,
                } => {
                    report.outcome = Outcome::Failed;
                    report.http_status = Some(status).filter(|s| *s != 0);
                    report.error = Some(error);
                    report.request_id = request_id;
                    return report;
                }
                Answer::KeyRefused {
                    status,
                    error,
                    request_id,
                } => {
                    // A 401 always means the key is wrong; a 403 after runs were created may
                    // be one project's permissions, so only a 403 before any success stops.
                    if status == 401 || !self.created_any.load(Ordering::SeqCst) {
                        self.stop.stop(StopReason::KeyRefused {
                            status,
                            message: error.clone(),
                        });
                    }
                    report.outcome = Outcome::Failed;
                    report.http_status = Some(status);
                    report.error = Some(error);
                    report.request_id = request_id;
                    return report;
                }
                Answer::Unknown {
                    status,
                    error,
                    request_id,
                } => {
                    report.outcome = Outcome::Unknown;
                    report.http_status = status;
                    report.error = Some(error);
                    report.request_id = request_id;
                    return report;
                }
                Answer::Redirected(redirect) => {
                    report.outcome = Outcome::Failed;
                    report.http_status = Some(redirect.status);
                    report.error = Some(redirect.to_string());
                    self.stop.stop(StopReason::Redirected(redirect));
                    return report;
                }
            }
        }
    }

    /// Stopped while waiting for a turn: never sent, or sent and certainly refused before.
    fn stopped_before_sending(&self, mut report: ReportRow) -> ReportRow {
        if report.attempts == 0 {
            report.outcome = Outcome::NotSent;
            report.error = Some(not_sent_reason(&self.stop));
        } else {
            report.error = report.error.map(|e| format!("{e}; interrupted before the next retry"));
        }
        report
    }
}

/// An answer as a log field: its kind and status, nothing of the body.
struct AnswerKind<'a>(&'a Answer);

impl std::fmt::Debug for AnswerKind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Answer::Created {
                status, id, request_id, ..
            } => {
                write!(
                    f,
                    "created {status} id={id} request_id={}",
                    request_id.as_deref().unwrap_or("-")
                )
            }
            Answer::Retry { status, error, .. } => write!(f, "retry {status:?}: {error}"),
            Answer::Rejected { status, error, .. } => write!(f, "rejected {status}: {error}"),
            Answer::KeyRefused { status, .. } => write!(f, "key refused {status}"),
            Answer::Unknown { status, error, .. } => write!(f, "unknown {status:?}: {error}"),
            Answer::Redirected(r) => write!(f, "redirected {}", r.status),
        }
    }
}

fn not_sent_reason(stop: &StopSignal) -> String {
    match stop.reason() {
        Some(StopReason::Interrupted) => "not sent: the run was interrupted".to_string(),
        Some(StopReason::KeyRefused { status, .. }) => format!("not sent: the service refused the key (HTTP {status})"),
        Some(StopReason::Redirected(r)) => format!("not sent: {r}"),
        Some(StopReason::Ledger(e)) => format!("not sent: {e}"),
        Some(StopReason::Unreachable { .. }) => "not sent: the service could not be reached".to_string(),
        None => "not sent".to_string(),
    }
}

/// Added to an error when the retries ran out.
pub(crate) fn gave_up(retries: u32) -> String {
    format!(" (gave up after {retries} retries, --max-retries)")
}

/// Exponential backoff with full jitter: a random wait up to 0.5 s × 2^n, capped at 30 s.
pub(crate) fn backoff(retry: u32) -> Duration {
    let cap = Duration::from_millis(500)
        .saturating_mul(1u32 << retry.min(6))
        .min(Duration::from_secs(30));
    jitter(cap)
}

fn jitter(max: Duration) -> Duration {
    let millis = max.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        for retry in 0..20 {
            assert!(backoff(retry) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn the_pacer_slows_down_once_per_signal_and_climbs_back_under_the_ceiling() {
        let pacer = Pacer::new(20.0);
        let before = Instant::now();
        // The first refusal: its request went out at the starting pace.
        pacer.on_rate_limited(before + LIMIT_WINDOW, None);
        assert_eq!(pacer.rate(), 15.0);
        // Refusals of requests sent before the slow-down, or within one window of it,
        // change nothing: the window still held the faster ones. (Measured from the
        // slow-down itself, not from now: a test thread held up for half a second would
        // otherwise send this one a whole window after it.)
        let slowed_at = pacer.state.lock().unwrap().slowed_at;
        pacer.on_rate_limited(before, None);
        pacer.on_rate_limited(slowed_at + LIMIT_WINDOW / 2, None);
        assert_eq!(pacer.rate(), 15.0);
        // One sent a whole window after it was refused at the new pace: slow down again.
        pacer.on_rate_limited(Instant::now() + LIMIT_WINDOW, None);
        assert_eq!(pacer.rate(), 11.25);
        {
            let mut s = pacer.state.lock().unwrap();
            s.changed_at = Instant::now() - Duration::from_secs(2);
            // Within a second of a refusal (counted or not), no climb. (Dated a minute
            // ahead, it stays within the second however long this thread is held up.)
            s.refused_at = Some(Instant::now() + Duration::from_secs(60));
        }
        pacer.on_success();
        assert_eq!(pacer.rate(), 11.25);
        {
            let mut s = pacer.state.lock().unwrap();
            s.refused_at = Some(Instant::now() - Duration::from_secs(2));
        }
        pacer.on_success();
        // Back up, but never above 97% of the rate that was refused (15).
        let climbed = pacer.rate();
        assert!(climbed > 11.25 && climbed <= 15.0 * 0.97, "{climbed}");
    }
}
