//! How long to wait before trying a request again, the one bound on every wait, and how
//! a message says the retries ran out. Shared by the read-only calls and the uploader.

use std::time::Duration;

/// The longest the tool waits for anything the service asks (a `Retry-After`), for a
/// backoff, or for the service to stop refusing every request for its rate limit. A run
/// left waiting longer holds its ledger locked into the next night's run; past this bound
/// the rows not done are left `not_sent` and a later run sends them.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// How many times one request may be refused for the rate limit before it gives up. Those
/// refusals do not count against `--max-retries`: the service said "later", not "no".
pub(crate) const MAX_RATE_LIMITED: u32 = 50;

/// Why a wait the service asked for is not waited: it is past [`MAX_WAIT`].
pub(crate) fn wait_too_long(asked: Duration) -> String {
    format!(
        "the service asked to wait {} s before trying again (Retry-After), longer than the {} s this tool waits; run it again later",
        asked.as_secs(),
        MAX_WAIT.as_secs()
    )
}

/// Why the service is taken to be busy for good: every request refused for its rate limit
/// for longer than [`MAX_WAIT`].
pub(crate) fn busy_too_long(refused_for: Duration) -> String {
    format!(
        "the service has refused every request for its rate limit for {} s (another client may be using the same API key); run it again later",
        refused_for.as_secs()
    )
}

use rand::RngExt;

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

/// A random wait from zero to `max`.
pub(crate) fn jitter(max: Duration) -> Duration {
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
            assert!(backoff(retry) <= MAX_WAIT);
        }
    }
}
