//! The pace of the uploader: never more than `--rate` requests in any one-second window,
//! slowing down for everyone when the service signals its rate limit.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// The pace of the whole uploader, in two layers. The hard bound is one governor limiter
/// at `--rate` with burst 1, which nothing ever loosens. Over it, an adaptive pace: it
/// starts at `--rate`; when the service signals its rate limit it slows down for every
/// row (not just the one refused), then climbs back towards the highest pace that drew
/// no refusal. The adaptive layer only ever adds waits, so adapting can never break
/// the bound.
pub(super) struct Pacer {
    max_rate: f64,
    /// On the OS monotonic clock: governor's default TSC clock is calibrated at start-up,
    /// and on a virtual machine an early miscalibration spaced requests too closely.
    pub(super) limiter: RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>,
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
    pub(super) fn new(rate: f64) -> Pacer {
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
    pub(super) async fn acquire(&self) {
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

    pub(super) fn rate(&self) -> f64 {
        self.state.lock().map(|s| s.rate).unwrap_or(self.max_rate)
    }

    /// The service refused a request sent at `sent_at` for its rate limit.
    pub(super) fn on_rate_limited(&self, sent_at: Instant, retry_after: Option<Duration>) {
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
    pub(super) fn pause(&self, wait: Duration) {
        let Ok(mut s) = self.state.lock() else { return };
        let until = tokio::time::Instant::now() + wait.min(Duration::from_secs(300));
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// A request went through: after a quiet second, climb back.
    pub(super) fn on_success(&self) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
