//! Ctrl-C and SIGTERM during an upload: the first stops new requests, the second stops at
//! once, the third quits.

use super::{StopReason, StopSignal};
use crate::exit::Exit;
use crate::ui::say;

/// Ctrl-C (and SIGTERM): stop starting requests, let those in flight finish. A second
/// one stops at once; the ledger is already consistent, since every line is synced.
pub fn watch_signals(stop: StopSignal) -> tokio::task::JoinHandle<()> {
    // Listened for before the task starts, and for the whole run: a signal that comes
    // while the one before it is being handled is still seen. A listener made anew after
    // each signal could miss one sent between the message below and its making.
    let mut signals = Interrupts::listen();
    tokio::spawn(async move {
        signals.next().await;
        say("interrupted: no new requests; waiting for those in flight (press Ctrl-C again to stop at once)");
        stop.stop(StopReason::Interrupted);
        signals.next().await;
        say(
            "stopping at once: the rows in flight are marked unknown (they may exist); writing the report (Ctrl-C again to quit without it)",
        );
        stop.halt(StopReason::Interrupted);
        signals.next().await;
        say("quit: the ledger is consistent; the report holds the rows that finished");
        std::process::exit(Exit::Interrupted.code());
    })
}

/// Ctrl-C and SIGTERM, each one listened for once. Signals that come before `next` is
/// called are not lost: the next call returns at once (several of them count as one).
#[cfg(unix)]
struct Interrupts {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Interrupts {
    fn listen() -> Interrupts {
        use tokio::signal::unix::{SignalKind, signal};
        Interrupts {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The next Ctrl-C or SIGTERM; never, for one that could not be listened for.
    async fn next(&mut self) {
        async fn one(signal: &mut Option<tokio::signal::unix::Signal>) {
            if let Some(signal) = signal
                && signal.recv().await.is_some()
            {
                return;
            }
            std::future::pending().await
        }
        tokio::select! {
            () = one(&mut self.interrupt) => {}
            () = one(&mut self.terminate) => {}
        }
    }
}

#[cfg(not(unix))]
struct Interrupts;

#[cfg(not(unix))]
impl Interrupts {
    fn listen() -> Interrupts {
        Interrupts
    }

    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
