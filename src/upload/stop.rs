//! Stopping an upload: why it stopped, and the signal every row's task watches. A stop
//! lets the requests in flight finish; a halt gives up on them too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use crate::service::Redirect;
use crate::service::retry::{busy_too_long, wait_too_long};

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
    /// The service answered before, but the latest `answers` in a row said it is down or
    /// misconfigured (refused connections, timeouts, server errors, the same 404).
    ServiceDown {
        base_url: String,
        answers: u32,
        error: String,
    },
    /// The service asked to wait longer than the tool waits (`Retry-After`).
    WaitTooLong {
        asked: Duration,
    },
    /// The service refused every request for its rate limit for longer than the tool waits.
    Busy {
        refused_for: Duration,
    },
    /// The service's TLS certificate is not trusted: what failed, naming `--ca-cert`.
    Untrusted(String),
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
    pub async fn unless_stopped<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        self.unless(Level::Stopped, work).await
    }

    /// Runs `work` to its end, or until [`StopSignal::halt`] is called: `None` then. For
    /// answers in flight, which a plain stop still waits for.
    pub(super) async fn unless_halted<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
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

/// The report's words for a row that was never sent because the run stopped.
pub(super) fn not_sent_reason(stop: &StopSignal) -> String {
    match stop.reason() {
        Some(StopReason::Interrupted) => "not sent: the run was interrupted".to_string(),
        Some(StopReason::KeyRefused { status, .. }) => format!("not sent: the service refused the key (HTTP {status})"),
        Some(StopReason::Redirected(r)) => format!("not sent: {r}"),
        Some(StopReason::Ledger(e)) => format!("not sent: {e}"),
        Some(StopReason::Unreachable { .. }) => "not sent: the service could not be reached".to_string(),
        Some(StopReason::ServiceDown { answers, .. }) => {
            format!("not sent: the run stopped after {answers} answers in a row said the service is down")
        }
        Some(StopReason::WaitTooLong { asked }) => format!("not sent: {}", wait_too_long(asked)),
        Some(StopReason::Busy { refused_for }) => format!("not sent: {}", busy_too_long(refused_for)),
        Some(StopReason::Untrusted(_)) => "not sent: the service's TLS certificate is not trusted".to_string(),
        None => "not sent".to_string(),
    }
}

/// Added to the error of a row that was refused and then stopped waiting for its retry.
pub(super) fn stopped_before_retry(stop: &StopSignal) -> &'static str {
    match stop.reason() {
        Some(StopReason::Interrupted) => "interrupted before the next retry",
        _ => "the run stopped before the next retry",
    }
}
