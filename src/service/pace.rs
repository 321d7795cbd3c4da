//! The pace of every request to the service, creates and reads alike: never more than
//! `--rate` in any one-second window, slowing down for everyone when the service signals
//! its rate limit, and climbing back within seconds once it stops. The client holds the one
//! pacer, so every request it makes takes its turn here.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// The pace of every request, in two layers. The hard bound is one governor limiter
/// at `--rate` with burst 1, which nothing ever loosens. Over it, an adaptive pace: it
/// starts at `--rate`; when the service signals its rate limit it slows down for every
/// row (not just the one refused), then climbs back towards the highest pace that drew
/// no refusal. The adaptive layer only ever adds waits, so adapting can never break
/// the bound.
pub(crate) struct Pacer {
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
    /// The rate at which the service last refused us; the climb stays under it for a while.
    ceiling: Option<f64>,
    /// The last change of pace, either way: climbs are [`CLIMB_STEP`] apart at least.
    changed_at: Instant,
    /// The last slow-down: refusals of requests sent within a window after it do not count.
    slowed_at: Instant,
    /// The last refusal, counted or not: no climb within a window of one.
    refused_at: Option<Instant>,
    /// The first of the refusals since the last success: how long the service has been
    /// saying "later" to everything.
    refused_since: Option<Instant>,
    /// How long the climb stays under the ceiling before it probes above it.
    hold: Duration,
    /// Climbing above a ceiling that was let go: a refusal now says it was the service's
    /// own limit, so the next hold is longer.
    probing: bool,
    paused_until: Option<tokio::time::Instant>,
}

const MIN_RATE: f64 = 0.2;

/// How long the service's rate-limit window is taken to be: a request sent less than this
/// after a slow-down may be refused for those sent before it, still in the window.
const LIMIT_WINDOW: Duration = Duration::from_secs(1);

/// Requests leave at most `rate / 1.015` per second: 15 ms of arrival jitter per second
/// of window is absorbed, for 1.5% of the pace.
const SPACING_MARGIN: f64 = 1.015;

/// The climb: at most one step this often, each step half as fast again.
const CLIMB_STEP: Duration = Duration::from_millis(500);
const CLIMB_FACTOR: f64 = 1.5;

/// How long the climb stays under the rate that drew the last refusal before it probes
/// above it. A refusal while probing doubles it, up to [`MAX_HOLD`]; a climb back to
/// `--rate` sets it back. So a key shared for a few seconds costs a few seconds, and a
/// service whose limit is under `--rate` is probed every 20 s, not every 2.
const HOLD: Duration = Duration::from_secs(2);
const MAX_HOLD: Duration = Duration::from_secs(20);

impl Pacer {
    pub(crate) fn new(rate: f64) -> Pacer {
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
                refused_since: None,
                hold: HOLD,
                probing: false,
                paused_until: None,
            }),
        }
    }

    /// Waits for this request's turn.
    pub(crate) async fn acquire(&self) {
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

    pub(crate) fn rate(&self) -> f64 {
        self.state.lock().map(|s| s.rate).unwrap_or(self.max_rate)
    }

    /// How long every answer has been a rate-limit refusal: zero once one went through.
    pub(crate) fn refused_for(&self) -> Duration {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.refused_since)
            .map_or(Duration::ZERO, |since| since.elapsed())
    }

    /// The service refused a request sent at `sent_at` for its rate limit.
    pub(crate) fn on_rate_limited(&self, sent_at: Instant, retry_after: Option<Duration>) {
        if let Some(wait) = retry_after {
            self.pause(wait);
        }
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        s.refused_at = Some(now);
        s.refused_since.get_or_insert(now);
        // Answers to requests sent before the last slow-down, or so soon after it that the
        // service's window still held the faster ones, say nothing about the new pace:
        // counting them cut 20/s to 2/s in half a second against a limit of 5/s.
        if sent_at < s.slowed_at + LIMIT_WINDOW {
            return;
        }
        if s.probing {
            s.hold = (s.hold * 2).min(MAX_HOLD);
            s.probing = false;
        }
        s.ceiling = Some(s.rate);
        s.rate = (s.rate * 0.75).max(MIN_RATE);
        s.changed_at = now;
        s.slowed_at = now;
        tracing::warn!(
            rate = s.rate,
            ceiling = s.ceiling,
            "rate limited by the service: slowing down"
        );
    }

    /// A `Retry-After` asks everyone to wait, not just the request that got it. Callers
    /// never pass more than [`super::retry::MAX_WAIT`]; longer is cut to it all the same.
    pub(crate) fn pause(&self, wait: Duration) {
        let Ok(mut s) = self.state.lock() else { return };
        let until = tokio::time::Instant::now() + wait.min(super::retry::MAX_WAIT);
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// A request went through: after a quiet window, climb back, half as fast again every
    /// half second; under the last refused rate for a hold, then up to `--rate`.
    pub(crate) fn on_success(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        s.refused_since = None;
        if s.rate >= self.max_rate
            || s.changed_at.elapsed() < CLIMB_STEP
            || s.refused_at.is_some_and(|at| at.elapsed() < LIMIT_WINDOW)
        {
            return;
        }
        let quiet_for = s.refused_at.map_or(s.changed_at.elapsed(), |at| at.elapsed());
        let target = match s.ceiling {
            Some(c) if quiet_for < s.hold => c * 0.97,
            // Limits do rise, and a key shared for a while is free again: probe above.
            Some(_) => {
                s.ceiling = None;
                s.probing = true;
                self.max_rate
            }
            None => self.max_rate,
        };
        let next = (s.rate * CLIMB_FACTOR).max(s.rate + 0.1).min(target).min(self.max_rate);
        if next > s.rate {
            tracing::info!(rate = next, "no refusals for a while: speeding up");
            s.rate = next;
            s.changed_at = Instant::now();
        }
        if s.rate >= self.max_rate {
            s.probing = false;
            s.hold = HOLD;
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
            s.refused_at = Some(Instant::now() - Duration::from_millis(1500));
        }
        pacer.on_success();
        // Back up, but within the hold never above 97% of the rate that was refused (15).
        let climbed = pacer.rate();
        assert!(climbed > 11.25 && climbed <= 15.0 * 0.97, "{climbed}");
    }

    /// After the hold, the climb lets the ceiling go and goes on to `--rate`, half as fast
    /// again each step; a refusal while probing doubles the hold, reaching `--rate` resets it.
    #[test]
    fn after_a_quiet_hold_the_pace_climbs_back_to_the_rate_within_seconds() {
        let pacer = Pacer::new(10.0);
        let quiet = |pacer: &Pacer, for_: Duration| {
            let mut s = pacer.state.lock().unwrap();
            s.refused_at = Some(Instant::now() - for_);
            s.changed_at = Instant::now() - CLIMB_STEP;
        };
        for _ in 0..6 {
            pacer.on_rate_limited(Instant::now() + LIMIT_WINDOW * 2, None);
        }
        let low = pacer.rate();
        assert!(low < 2.0, "{low}");
        assert!(pacer.refused_for() < Duration::from_secs(1));
        // Within the hold: under the ceiling.
        quiet(&pacer, HOLD / 2);
        pacer.on_success();
        assert_eq!(pacer.refused_for(), Duration::ZERO);
        let ceiling = pacer.state.lock().unwrap().ceiling.unwrap();
        assert!(pacer.rate() <= ceiling * 0.97, "{}", pacer.rate());
        // Past it: steps of 1.5×, so from under 2/s to 10/s in five steps (2.5 s).
        let mut steps = 0;
        while pacer.rate() < 10.0 {
            quiet(&pacer, HOLD + CLIMB_STEP * steps);
            pacer.on_success();
            steps += 1;
            assert!(steps <= 5, "{}", pacer.rate());
        }
        assert_eq!(pacer.state.lock().unwrap().hold, HOLD);

        // Refused while probing: the next hold is twice as long.
        pacer.on_rate_limited(Instant::now() + LIMIT_WINDOW * 2, None);
        pacer.on_rate_limited(Instant::now() + LIMIT_WINDOW * 2, None);
        quiet(&pacer, HOLD);
        pacer.on_success();
        assert!(pacer.state.lock().unwrap().probing);
        pacer.on_rate_limited(Instant::now() + LIMIT_WINDOW * 3, None);
        assert_eq!(pacer.state.lock().unwrap().hold, HOLD * 2);
    }
}
