//! What the user sees while a run goes on: a progress bar on a terminal, or, when
//! stderr is a log file (cron, CI), one line every few seconds, never a flood.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a log line is written when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Rows that did not end created, for the bar's message.
    not_created: AtomicUsize,
    log: Option<Mutex<LogState>>,
    total: usize,
}

struct LogState {
    started: Instant,
    last: Instant,
    done: usize,
    failed: usize,
}

impl Progress {
    /// A bar on a terminal; periodic lines otherwise; nothing with `--quiet`.
    pub fn new(total: usize, quiet: bool) -> Progress {
        if quiet || total == 0 {
            return Progress {
                bar: None,
                not_created: AtomicUsize::new(0),
                log: None,
                total,
            };
        }
        // With log lines on stderr a bar would be drawn through them: use the periodic line.
        if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() && !crate::ui::console::logging() {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows · {rate} · ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            // One decimal always, as the summary says it (`{per_sec}` drops a `.0`).
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", state.per_sec());
                },
            );
            bar.set_style(style);
            return Progress {
                bar: Some(bar),
                not_created: AtomicUsize::new(0),
                log: None,
                total,
            };
        }
        let now = Instant::now();
        Progress {
            bar: None,
            not_created: AtomicUsize::new(0),
            log: Some(Mutex::new(LogState {
                started: now,
                last: now,
                done: 0,
                failed: 0,
            })),
            total,
        }
    }

    /// One row finished; `failed` when it did not end created.
    pub fn row_done(&self, failed: bool) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if failed {
                let count = self.not_created.fetch_add(1, Ordering::Relaxed) + 1;
                bar.set_message(format!("{count} not created"));
            }
        }
        if let Some(log) = &self.log
            && let Ok(mut s) = log.lock()
        {
            s.done += 1;
            if failed {
                s.failed += 1;
            }
            if s.last.elapsed() >= LOG_EVERY && s.done < self.total {
                s.last = Instant::now();
                let elapsed = s.started.elapsed().as_secs_f64().max(0.001);
                let rate = s.done as f64 / elapsed;
                let eta = (self.total - s.done) as f64 / rate.max(0.001);
                crate::ui::say(&format!(
                    "progress: {}/{} rows, {:.1} rows/s, {} not created so far, about {:.0} s left",
                    s.done, self.total, rate, s.failed, eta
                ));
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
