//! One row's attempts: wait for a turn, send, and apply the answer, which either ends
//! the row with its outcome or says how long to wait before the next try.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::health::{DownStreak, sign_of, threshold};
use super::stop::{StopReason, StopSignal, not_sent_reason, stopped_before_retry};
use super::{UploadJob, UploadSink};
use crate::report::{Outcome, ReportRow};
use crate::service::retry::{MAX_RATE_LIMITED, MAX_WAIT, backoff, gave_up, jitter};
use crate::service::{Answer, AnswerKind, ApiClient};

/// What every row's task shares.
pub(super) struct RowContext {
    pub(super) client: Arc<ApiClient>,
    pub(super) sink: Arc<dyn UploadSink>,
    pub(super) stop: StopSignal,
    pub(super) sent: AtomicUsize,
    pub(super) rate_limited: AtomicUsize,
    pub(super) created_any: AtomicBool,
    /// Some request got an HTTP answer, of any kind: the service is there.
    pub(super) answered_any: AtomicBool,
    /// The latest answers in a row that say the service is down: past a few, the run stops.
    pub(super) down: Mutex<DownStreak>,
    /// The first and the latest send, for the pace actually achieved.
    pub(super) sends: Mutex<Option<(Instant, Instant)>>,
    pub(super) max_retries: u32,
}

/// One row's tries so far.
struct Attempts {
    report: ReportRow,
    /// Tries again after a failure worth retrying (bounded by `--max-retries`).
    retries: u32,
    /// Refusals for the rate limit (bounded by [`MAX_RATE_LIMITED`]).
    refusals: u32,
}

/// What follows an answer.
enum Next {
    /// The row has its outcome.
    Done,
    /// Try again after this wait.
    Wait(Duration),
}

impl RowContext {
    /// Sends one row until it has its outcome, and returns its report line.
    pub(super) async fn send_row(&self, job: &UploadJob) -> ReportRow {
        let mut tries = Attempts {
            report: ReportRow {
                row: job.row,
                outcome: Outcome::NotSent,
                title: Some(job.title.clone()),
                human_id: job.human_id.clone(),
                ..ReportRow::default()
            },
            retries: 0,
            refusals: 0,
        };
        if self.stop.is_stopped() {
            tries.report.error = Some(not_sent_reason(&self.stop));
            return tries.report;
        }
        loop {
            self.stop.unless_stopped(self.client.pacer().acquire()).await;
            if self.stop.is_stopped() {
                return self.stopped_before_sending(tries.report);
            }
            // Recorded as late as possible, so a crash while waiting for a turn leaves the
            // row unsent rather than `unknown` on the next run.
            if tries.report.attempts == 0
                && let Err(e) = self.sink.before_send(job)
            {
                self.stop.stop(StopReason::Ledger(e.clone()));
                tries.report.error = Some(format!("not sent: {e}"));
                return tries.report;
            }
            let sent_at = Instant::now();
            let answer = self.send(job, &mut tries.report, sent_at).await;
            self.watch_health(&answer, &job.project_id);
            let Next::Wait(wait) = self.apply(answer, &mut tries, sent_at) else {
                if job.update_of.is_some() && tries.report.outcome == Outcome::Created {
                    tries.report.outcome = Outcome::Updated;
                }
                return tries.report;
            };
            tracing::debug!(row = job.row, wait_ms = wait.as_millis() as u64, error = ?tries.report.error, "retrying");
            self.stop.unless_stopped(tokio::time::sleep(wait)).await;
            if self.stop.is_stopped() {
                let note = stopped_before_retry(&self.stop);
                tries.report.error = tries.report.error.map(|e| format!("{e}; {note}"));
                return tries.report;
            }
        }
    }

    /// One request for the row, counted; a halt gives up on its answer.
    async fn send(&self, job: &UploadJob, report: &mut ReportRow, sent_at: Instant) -> Answer {
        if let Ok(mut span) = self.sends.lock() {
            *span = Some(span.map_or((sent_at, sent_at), |(first, _)| (first, sent_at)));
        }
        report.attempts += 1;
        self.sent.fetch_add(1, Ordering::SeqCst);
        let (project, body, key) = (&job.project_id, job.body.to_vec(), &job.idempotency_key);
        let request = async {
            match &job.update_of {
                Some(run) => self.client.update_test_run(project, run, body, key).await,
                None => self.client.create_test_run(project, body, key).await,
            }
        };
        let answer = self.stop.unless_halted(request).await.unwrap_or_else(|| {
            let error = "the run was stopped at once before the answer came; the run may exist";
            Answer::without_status(AnswerKind::Unknown, error.to_owned(), true)
        });
        tracing::info!(row = job.row, attempt = report.attempts, answer = ?Logged(&answer), "answer");
        // A connection never made sent no request: the summary counts requests sent.
        if !answer.connected {
            self.sent.fetch_sub(1, Ordering::SeqCst);
        }
        if answer.status.is_some() {
            self.answered_any.store(true, Ordering::SeqCst);
        }
        answer
    }

    /// Writes what `answer` says into the row's report line, and says what follows.
    fn apply(&self, answer: Answer, tries: &mut Attempts, sent_at: Instant) -> Next {
        let report = &mut tries.report;
        report.http_status = answer.status;
        report.request_id = answer.request_id;
        report.error = answer.error;
        match answer.kind {
            AnswerKind::Created { id, human_id } => {
                self.created_any.store(true, Ordering::SeqCst);
                self.client.pacer().on_success();
                report.outcome = Outcome::Created;
                report.test_run_id = Some(id);
                report.test_run_human_id = human_id;
                Next::Done
            }
            AnswerKind::Retry {
                retry_after,
                rate_limited,
            } => {
                report.outcome = Outcome::Failed;
                if let Some(asked) = retry_after.filter(|wait| *wait > MAX_WAIT) {
                    return self.give_up_waiting(report, StopReason::WaitTooLong { asked });
                }
                if rate_limited {
                    self.after_rate_limit(tries, sent_at, retry_after)
                } else {
                    self.after_failure(tries, retry_after)
                }
            }
            AnswerKind::Rejected => {
                report.outcome = Outcome::Failed;
                Next::Done
            }
            AnswerKind::KeyRefused => {
                // A 401 always means the key is wrong; a 403 after runs were created may
                // be one project's permissions, so only a 403 before any success stops.
                if report.http_status == Some(401) || !self.created_any.load(Ordering::SeqCst) {
                    self.stop.stop(StopReason::KeyRefused {
                        status: report.http_status.unwrap_or_default(),
                        message: report.error.clone().unwrap_or_default(),
                    });
                }
                report.outcome = Outcome::Failed;
                Next::Done
            }
            AnswerKind::Unknown => {
                report.outcome = Outcome::Unknown;
                Next::Done
            }
            AnswerKind::Untrusted => {
                // The handshake failed: nothing was sent, and nothing will be.
                let message = report.error.clone().unwrap_or_default();
                report.outcome = Outcome::NotSent;
                report.error = Some(format!("not sent: {message}"));
                self.stop.stop(StopReason::Untrusted(message));
                Next::Done
            }
            AnswerKind::Redirected(redirect) => {
                report.outcome = Outcome::Failed;
                self.stop.stop(StopReason::Redirected(redirect));
                Next::Done
            }
        }
    }

    /// Refused for the rate limit: everyone slows down, and the row tries again unless it
    /// was refused too often.
    fn after_rate_limit(&self, tries: &mut Attempts, sent_at: Instant, retry_after: Option<Duration>) -> Next {
        self.rate_limited.fetch_add(1, Ordering::SeqCst);
        self.client.pacer().on_rate_limited(sent_at, retry_after);
        let refused_for = self.client.pacer().refused_for();
        if refused_for > MAX_WAIT {
            return self.give_up_waiting(&mut tries.report, StopReason::Busy { refused_for });
        }
        tries.refusals += 1;
        if tries.refusals > MAX_RATE_LIMITED {
            let report = &mut tries.report;
            report.error = report
                .error
                .take()
                .map(|e| format!("{e} ({MAX_RATE_LIMITED} rate-limit refusals)"));
            return Next::Done;
        }
        // The pacer has slowed everyone down; a little jitter spreads the retries.
        Next::Wait(jitter(Duration::from_millis(250)))
    }

    /// Certainly not created, worth another try: after a backoff (or the service's
    /// `Retry-After`), unless the retries ran out. If no request of the run ever got an
    /// answer, the run stops: every other row would wait through its retries the same way.
    fn after_failure(&self, tries: &mut Attempts, retry_after: Option<Duration>) -> Next {
        tries.retries += 1;
        let report = &mut tries.report;
        if tries.retries > self.max_retries {
            if report.http_status.is_none() && !self.answered_any.load(Ordering::SeqCst) {
                self.stop.stop(StopReason::Unreachable {
                    base_url: self.client.base_url().to_owned(),
                    error: report.error.clone().unwrap_or_default(),
                });
            }
            report.error = report.error.take().map(|e| format!("{e}{}", gave_up(self.max_retries)));
            return Next::Done;
        }
        if let Some(wait) = retry_after {
            self.client.pacer().pause(wait);
        }
        Next::Wait(retry_after.unwrap_or_else(|| backoff(tries.retries)))
    }

    /// The service asked for a wait past [`MAX_WAIT`] (or refused everything for that
    /// long): the run stops, and this row, certainly not created, is `not_sent` with the
    /// rest, its message saying what the service asked.
    fn give_up_waiting(&self, report: &mut ReportRow, why: StopReason) -> Next {
        self.stop.stop(why);
        report.outcome = Outcome::NotSent;
        let reason = not_sent_reason(&self.stop);
        report.error = Some(match report.error.take() {
            Some(e) => format!("{reason} ({e})"),
            None => reason,
        });
        Next::Done
    }

    /// Counts what `answer` says about the service; after too many answers in a row that
    /// say it is down, stops the run: unreachable if nothing ever answered, down otherwise.
    fn watch_health(&self, answer: &Answer, project_id: &str) {
        let Ok(mut streak) = self.down.lock() else { return };
        let count = streak.add(sign_of(answer, project_id));
        if count < threshold(self.created_any.load(Ordering::SeqCst)) {
            return;
        }
        let base_url = self.client.base_url().to_owned();
        let error = answer.error.clone().unwrap_or_default();
        self.stop.stop(if self.answered_any.load(Ordering::SeqCst) {
            StopReason::ServiceDown {
                base_url,
                answers: count,
                error,
            }
        } else {
            StopReason::Unreachable { base_url, error }
        });
    }

    /// Stopped while waiting for a turn: never sent, or sent and certainly refused before.
    fn stopped_before_sending(&self, mut report: ReportRow) -> ReportRow {
        if report.attempts == 0 {
            report.outcome = Outcome::NotSent;
            report.error = Some(not_sent_reason(&self.stop));
        } else {
            let note = stopped_before_retry(&self.stop);
            report.error = report.error.map(|e| format!("{e}; {note}"));
        }
        report
    }
}

/// An answer as a log field: its kind and status, nothing of the body.
struct Logged<'a>(&'a Answer);

impl std::fmt::Debug for Logged<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Answer {
            kind, status, error, ..
        } = self.0;
        let error = error.as_deref().unwrap_or("");
        // The status of an answer that has one, as a number.
        let code = status.unwrap_or_default();
        match kind {
            AnswerKind::Created { id, .. } => write!(
                f,
                "created {code} id={id} request_id={}",
                self.0.request_id.as_deref().unwrap_or("-")
            ),
            AnswerKind::Retry { .. } => write!(f, "retry {status:?}: {error}"),
            AnswerKind::Rejected => write!(f, "rejected {code}: {error}"),
            AnswerKind::KeyRefused => write!(f, "key refused {code}"),
            AnswerKind::Unknown => write!(f, "unknown {status:?}: {error}"),
            AnswerKind::Untrusted => write!(f, "untrusted certificate: {error}"),
            AnswerKind::Redirected(r) => write!(f, "redirected {}", r.status),
        }
    }
}
