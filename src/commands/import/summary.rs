//! The end-of-run summary on the terminal: counts, failures grouped by reason, where the
//! files are, and what to do with the failed-rows file, which fits what kept its rows back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::exit::{Cause, Exit, SetupError};
use crate::report::{Outcome, ReportRow, RunSummary};
use crate::service::retry::{busy_too_long, wait_too_long};
use crate::ui::{error, plural, say};
use crate::upload::StopReason;

/// What the summary says of the rows, gathered row by row: the rows are never all held.
pub(super) struct Digest {
    /// What kept the valid rows from being sent, when the run stopped before its upload.
    not_sent_for: Option<Cause>,
    /// How many rows each reason failed.
    failed: BTreeMap<String, usize>,
    /// The rows not done, by outcome.
    left: BTreeMap<Outcome, usize>,
    /// What kept the rows not done back.
    causes: BTreeSet<Cause>,
}

impl Digest {
    pub(super) fn new(not_sent_for: Option<Cause>) -> Digest {
        Digest {
            not_sent_for,
            failed: BTreeMap::new(),
            left: BTreeMap::new(),
            causes: BTreeSet::new(),
        }
    }

    pub(super) fn add(&mut self, row: &ReportRow) {
        if row.outcome == Outcome::Failed {
            *self.failed.entry(row.error.clone().unwrap_or_default()).or_default() += 1;
        }
        if !row.outcome.is_done() && row.outcome != Outcome::Planned {
            *self.left.entry(row.outcome).or_default() += 1;
            self.causes.insert(cause_of_row(row, self.not_sent_for));
        }
    }

    fn left(&self, outcome: Outcome) -> usize {
        self.left.get(&outcome).copied().unwrap_or(0)
    }
}

/// The end-of-run summary on stderr: counts, failures grouped by reason, where the files are.
pub(super) fn print_summary(
    rows: &Digest,
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
        Some(StopReason::ServiceDown { .. }) if rows.left(Outcome::NotSent) == 0 => {}
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
    if matches!(stop, Some(StopReason::Interrupted)) {
        say("run the same command again to continue: the rows done are not sent again.");
    }
    // A quiet night (no rows) has said so already; the files follow.
    if summary.rows > 0 {
        say_counts(summary);
    }
    let mut reasons: Vec<_> = rows.failed.iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (reason, n) in reasons.iter().take(10) {
        say(&format!("  failed, {n} row(s): {reason}"));
    }
    let unknown = summary.counts.get("unknown").copied().unwrap_or(0);
    if unknown > 0 {
        say(&format!(
            "  {unknown} row(s) are unknown: they were sent but no usable answer came, so the runs may exist. The next run looks them up at the service once --timeout has passed, and sends only those it does not find (with --no-lookup, check them in Testsigma, then pass --retry-unknown to send them again)."
        ));
    }
    say(&format!("report: {}", report.display()));
    if let Some(state) = &summary.state {
        say(&format!("ledger: {state}"));
    }
    if let Some(f) = failed {
        say(&format!("failed rows: {}", failed_rows_advice(rows, f)));
    }
    if summary.exit_code == Exit::Ok && summary.rows > 0 && summary.counts.get("created").copied().unwrap_or(0) == 0 {
        say("nothing new to import: every row was imported before.");
    }
}

/// `N rows: counts · requests in time, pace`.
fn say_counts(summary: &RunSummary) {
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
}

/// What stopped a run before or during its upload, for the advice: from the error's
/// [`Cause`] when it names one, else from the service's answer it carries.
pub(super) fn cause_of(e: &anyhow::Error) -> Cause {
    if let Some(cause) = e.downcast_ref::<SetupError>().and_then(|s| s.cause) {
        return cause;
    }
    e.chain()
        .find_map(|source| source.downcast_ref::<crate::service::ApiError>())
        .map_or(Cause::Other, cause_of_answer)
}

/// What an error from the service says about what to put right.
pub(super) fn cause_of_answer(e: &crate::service::ApiError) -> Cause {
    use crate::service::ApiError;
    match e {
        ApiError::KeyRefused { .. } => Cause::Key,
        ApiError::Unreachable { .. }
        | ApiError::Transport { .. }
        | ApiError::Unreadable { .. }
        | ApiError::Status { .. } => Cause::Service,
        _ => Cause::Other,
    }
}

/// What stopped an upload, as a cause.
pub(super) fn cause_of_stop(stop: &StopReason) -> Cause {
    match stop {
        StopReason::Interrupted => Cause::Interrupted,
        StopReason::KeyRefused { .. } => Cause::Key,
        StopReason::Redirected(_) | StopReason::Ledger(_) => Cause::Other,
        // Every other stop is the service's: unreachable, down, or busy for too long.
        _ => Cause::Service,
    }
}

/// Why one row of the failed-rows file is there: what must change before it can be imported.
fn cause_of_row(row: &ReportRow, not_sent_for: Option<Cause>) -> Cause {
    match row.outcome {
        Outcome::Invalid => Cause::Rows,
        Outcome::Failed => match row.http_status {
            Some(401 | 403) => Cause::Key,
            Some(404) => Cause::Project,
            // Refused for what the row holds; 408 and 429 only mean "later".
            Some(status) if (400..500).contains(&status) && status != 408 && status != 429 => Cause::Rows,
            _ => Cause::Service,
        },
        Outcome::Unknown => Cause::Service,
        // Held back by invalid rows, unless the run stopped for something else.
        _ => not_sent_for.unwrap_or(Cause::Rows),
    }
}

/// `FILE (N rows: counts): what to do`, fitting what kept each row back, so that following
/// it finishes the job: the file holds every row not done.
fn failed_rows_advice(rows: &Digest, path: &Path) -> String {
    let counts: Vec<String> = [Outcome::Invalid, Outcome::Failed, Outcome::NotSent, Outcome::Unknown]
        .iter()
        .filter_map(|o| {
            let n = rows.left(*o);
            (n > 0).then(|| format!("{n} {}", o.as_str().replace('_', " ")))
        })
        .collect();
    let causes: Vec<Cause> = rows.causes.iter().copied().collect();
    let steps: Vec<&str> = causes.iter().map(|c| step(*c)).collect();
    let then = if causes.contains(&Cause::Rows) {
        "then import that file"
    } else if causes == [Cause::Interrupted] {
        "run the same command again to continue, or import that file"
    } else {
        "then import that file, or run the same command again"
    };
    format!(
        "{} ({}: {}): {}; {then}",
        path.display(),
        plural(rows.left.values().sum(), "row"),
        counts.join(", "),
        steps.join("; ")
    )
}

/// The step a cause asks for before its rows are imported again.
fn step(cause: Cause) -> &'static str {
    match cause {
        Cause::Rows => "fix the rows there (its error column says what is wrong with each)",
        Cause::Key => "set TESTSIGMA_API_KEY (or --api-key-file) to a key the service accepts",
        Cause::Project => "check --project-id, or the file's project column, against the projects the key can see",
        Cause::Service => {
            "the service could not be reached or did not answer: try again later (rows whose runs may exist are looked up first)"
        }
        Cause::Interrupted => "the run was interrupted",
        Cause::Other => "put right what the error above says",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: Outcome, http_status: Option<u16>) -> ReportRow {
        ReportRow {
            row: 2,
            outcome,
            http_status,
            ..ReportRow::default()
        }
    }

    #[test]
    fn each_row_is_in_the_failed_rows_file_for_its_own_cause() {
        for (outcome, status, not_sent_for, want) in [
            (Outcome::Invalid, None, Some(Cause::Key), Cause::Rows),
            (Outcome::Failed, Some(422), None, Cause::Rows),
            (Outcome::Failed, Some(400), None, Cause::Rows),
            (Outcome::Failed, Some(401), None, Cause::Key),
            (Outcome::Failed, Some(404), None, Cause::Project),
            (Outcome::Failed, Some(429), None, Cause::Service),
            (Outcome::Failed, Some(503), None, Cause::Service),
            (Outcome::Failed, None, None, Cause::Service),
            (Outcome::Unknown, None, None, Cause::Service),
            (Outcome::NotSent, None, None, Cause::Rows),
            (Outcome::NotSent, None, Some(Cause::Key), Cause::Key),
            (Outcome::NotSent, None, Some(Cause::Interrupted), Cause::Interrupted),
        ] {
            assert_eq!(
                cause_of_row(&row(outcome, status), not_sent_for),
                want,
                "{outcome:?} {status:?} {not_sent_for:?}"
            );
        }
    }

    #[test]
    fn the_advice_fits_the_causes_and_counts_every_row_left() {
        let path = Path::new("runs.failed.csv");
        let created = row(Outcome::Created, Some(200));
        for (rows, not_sent_for, want) in [
            (
                vec![
                    row(Outcome::Invalid, None),
                    row(Outcome::NotSent, None),
                    created.clone(),
                ],
                None,
                "runs.failed.csv (2 rows: 1 invalid, 1 not sent): fix the rows there (its error column says what is wrong with each); then import that file",
            ),
            (
                vec![row(Outcome::NotSent, None), row(Outcome::NotSent, None)],
                Some(Cause::Key),
                "runs.failed.csv (2 rows: 2 not sent): set TESTSIGMA_API_KEY (or --api-key-file) to a key the service accepts; then import that file, or run the same command again",
            ),
            (
                vec![row(Outcome::NotSent, None)],
                Some(Cause::Project),
                "runs.failed.csv (1 row: 1 not sent): check --project-id, or the file's project column, against the projects the key can see; then import that file, or run the same command again",
            ),
            (
                vec![row(Outcome::Failed, Some(503)), row(Outcome::Unknown, None), created],
                None,
                "runs.failed.csv (2 rows: 1 failed, 1 unknown): the service could not be reached or did not answer: try again later (rows whose runs may exist are looked up first); then import that file, or run the same command again",
            ),
            (
                vec![row(Outcome::NotSent, None)],
                Some(Cause::Interrupted),
                "runs.failed.csv (1 row: 1 not sent): the run was interrupted; run the same command again to continue, or import that file",
            ),
        ] {
            let mut digest = Digest::new(not_sent_for);
            rows.iter().for_each(|r| digest.add(r));
            assert_eq!(failed_rows_advice(&digest, path), want);
        }
    }
}
