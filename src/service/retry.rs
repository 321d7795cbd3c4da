//! How long to wait before trying a request again, and how a message says the retries
//! ran out. Shared by the read-only calls and the uploader.

use std::time::Duration;

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
        }
    }
}
