//! The bound on a reading that stops moving: the reading thread counts its progress (every
//! read from the file, every cell), and the side that waits for its rows gives up once the
//! count has stood still for [`STALL_BOUND`], so a file that makes calamine spin ends the
//! run with an error naming it, never a hung nightly job.
//!
//! Only time spent waiting counts: a reading thread held up because its rows are not yet
//! taken is not stalled. A big workbook read at any steady pace never trips it: parsing
//! shared strings reads the file, and streaming a sheet yields cells.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a reading may go without progress.
pub(super) const STALL_BOUND: Duration = Duration::from_secs(60);

/// Sets the bound, in seconds, in place of [`STALL_BOUND`]: to try it, and for a machine
/// where a minute is too short or too long (docs/DESIGN.md).
pub(super) const STALL_ENV: &str = "TESTSIGMA_IMPORT_READ_STALL_SECS";

/// The bound: [`STALL_ENV`] when it holds a positive number of seconds, else [`STALL_BOUND`].
pub(super) fn stall_bound() -> Duration {
    bound_from(std::env::var(STALL_ENV).ok().as_deref())
}

fn bound_from(secs: Option<&str>) -> Duration {
    secs.and_then(|secs| secs.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs > 0.0 && *secs < 1e9)
        .map_or(STALL_BOUND, Duration::from_secs_f64)
}

/// A count that only grows while the reading moves.
#[derive(Default)]
pub(super) struct Progress(AtomicU64);

impl Progress {
    pub(super) fn tick(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A reader whose every read that gives bytes is progress.
pub(super) struct Counted<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R> Counted<R> {
    pub(super) fn new(inner: R, progress: Arc<Progress>) -> Self {
        Counted { inner, progress }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.progress.tick();
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for Counted<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Why no message came.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Silence {
    /// No progress for the whole bound.
    Stalled,
    /// The reading thread is gone without a last word (it panicked past its guard).
    Gone,
}

/// The next message from the reading thread, waiting as long as it makes progress, and
/// at most `bound` after its last.
pub(super) fn receive<T>(rx: &Receiver<T>, progress: &Progress, bound: Duration) -> Result<T, Silence> {
    let tick = (bound / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
    let mut seen = progress.get();
    let mut since = Instant::now();
    loop {
        match rx.recv_timeout(tick) {
            Ok(message) => return Ok(message),
            Err(RecvTimeoutError::Disconnected) => return Err(Silence::Gone),
            Err(RecvTimeoutError::Timeout) => {
                let now = progress.get();
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() >= bound {
                    return Err(Silence::Stalled);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn a_sender_that_never_moves_is_stalled_and_one_that_moves_is_waited_for() {
        let progress = Arc::new(Progress::default());
        let (tx, rx) = sync_channel::<u32>(1);
        assert_eq!(
            receive(&rx, &progress, Duration::from_millis(30)),
            Err(Silence::Stalled)
        );
        // Progress every 5 ms for over twice the bound, then the message.
        let moving = Arc::clone(&progress);
        let sender = std::thread::spawn(move || {
            for _ in 0..120 {
                moving.tick();
                std::thread::sleep(Duration::from_millis(5));
            }
            tx.send(7).unwrap();
        });
        assert_eq!(receive(&rx, &progress, Duration::from_millis(250)), Ok(7));
        sender.join().unwrap();
        assert_eq!(receive(&rx, &progress, Duration::from_millis(30)), Err(Silence::Gone));
    }

    #[test]
    fn the_bound_from_the_environment_is_a_positive_number_of_seconds() {
        for (text, want) in [
            (None, STALL_BOUND),
            (Some("2"), Duration::from_secs(2)),
            (Some(" 0.5 "), Duration::from_millis(500)),
            (Some("0"), STALL_BOUND),
            (Some("-3"), STALL_BOUND),
            (Some("NaN"), STALL_BOUND),
            (Some("soon"), STALL_BOUND),
        ] {
            assert_eq!(bound_from(text), want, "{text:?}");
        }
    }
}
