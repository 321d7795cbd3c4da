//! The end-of-run summary on the terminal: counts, failures grouped by reason, where the
//! files are.

use std::collections::BTreeMap;
use std::path::Path;

use crate::exit::Exit;
use crate::report::{Outcome, ReportRow, RunSummary};
use crate::service::retry::{busy_too_long, wait_too_long};
use crate::ui::{error, plural, say};
use crate::upload::StopReason;

/// The end-of-run summary on stderr: counts, failures grouped by reason, where the files are.
pub(super) fn print_summary(
    rows: &[ReportRow],
    summary: &RunSummary,
    stop: Option<&StopReason>,
    report: &Path,
    failed: Option<&Path>,
) {
    match stop {
        Some(StopReason::KeyRefused { message, .. }) => say(&format!(
            "error: the service refused the API key ({message}); the run stopped. Check TESTSIGMA_API_KEY or --api-key-file."
        )),
        Some(StopReason::Redirected(r)) => error(&format!("{r}; the run stopped.")),
        Some(StopReason::Ledger(e)) => error(&format!("{e}; the run stopped.")),
        Some(StopReason::Unreachable { base_url, error }) => say(&format!(
            "error: no connection to {base_url} could be made ({error}); the run stopped. Check --base-url and the network."
        )),
        // A stop with no row left to send changed nothing: the failures say it all.
        Some(StopReason::ServiceDown { .. }) if !rows.iter().any(|r| r.outcome == Outcome::NotSent) => {}
        Some(StopReason::ServiceDown {
            base_url,
            answers,
            error,
        }) => say(&format!(
            "error: {answers} answers in a row from {base_url} said the service is down or misconfigured (the last: {error}); the run stopped sending, and the rows not sent are in the report. Run again once the service is back."
        )),
        Some(StopReason::WaitTooLong { asked }) => error(&format!("{}; the run stopped.", wait_too_long(*asked))),
        Some(StopReason::Busy { refused_for }) => error(&format!("{}; the run stopped.", busy_too_long(*refused_for))),
        Some(StopReason::Untrusted(message)) => error(&format!("{message}; the run stopped.")),
        Some(StopReason::Interrupted) => say("interrupted: the report and the ledger hold every row that finished."),
        None => {}
    }
    let parts: Vec<String> = Outcome::ALL
        .iter()
        .filter_map(|o| {
            let n = summary.counts.get(o.as_str()).copied().unwrap_or(0);
            (n > 0).then(|| format!("{n} {}", o.as_str().replace('_', " ")))
        })
        .collect();
    let pace = if summary.requests_sent >= 2 {
        format!(", sent at {:.1}/s", summary.effective_rate)
    } else {
        String::new()
    };
    say(&format!(
        "{}: {} · {} in {:.1} s{pace}",
        plural(summary.rows, "row"),
        parts.join(", "),
        plural(summary.requests_sent, "request"),
        summary.elapsed_seconds,
    ));
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.outcome == Outcome::Failed) {
        *reasons.entry(r.error.clone().unwrap_or_default()).or_default() += 1;
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (reason, n) in reasons.iter().take(10) {
        say(&format!("  failed, {n} row(s): {reason}"));
    }
    let unknown = summary.counts.get("unknown").copied().unwrap_or(0);
    if unknown > 0 {
        say(&format!(
            "  {unknown} row(s) are unknown: they were sent but no usable answer came, so the runs may exist. Check them in Testsigma (titles and human ids are in the report); then run again with --retry-unknown to send those that do not exist, or leave them."
        ));
    }
    say(&format!("report: {}", report.display()));
    if let Some(state) = &summary.state {
        say(&format!("ledger: {state}"));
    }
    if let Some(f) = failed {
        say(&format!(
            "failed rows: {} (fix them there and import that file)",
            f.display()
        ));
    }
    if summary.exit_code == Exit::Ok && summary.counts.get("created").copied().unwrap_or(0) == 0 {
        say("nothing new to import: every row was imported before.");
    }
}
