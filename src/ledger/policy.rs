//! What a re-run does with a row the ledger knows: the one home of that rule. The dry
//! run's notes and the import's sorting both ask [`judge`], so the two cannot disagree;
//! each only words the verdict for its reader.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::anyhow;

use super::keys::{RowKeys, copy_key};
use super::{Ledger, LedgerSnapshot, Prior, body_hash, idempotency_key, row_key, scope};
use crate::report::{Outcome, ReportRow};
use crate::request::PlannedRow;

/// What a re-run may do with rows the ledger knows, from the flags.
#[derive(Debug, Clone, Default)]
pub struct Rerun {
    /// `--force`: send every row as a new run.
    pub force: bool,
    /// `--retry-unknown`: send again rows whose earlier answer never came.
    pub retry_unknown: bool,
    /// `--sandbox`: rows go to the in-process sandbox, which stands for no service.
    pub sandbox: bool,
    /// `--moved-from`: the base URL the service had when the ledger's earlier rows were made.
    pub moved_from: Option<String>,
}

/// The ledger's address for runs into the in-process sandbox: its port changes every run,
/// so its URL would make every rehearsal a stranger to the last.
const IN_PROCESS_SANDBOX: &str = "in-process-sandbox";

/// The base URL rows are recorded under in the ledger.
pub fn ledger_base<'a>(rerun: &Rerun, base_url: &'a str) -> &'a str {
    if rerun.sandbox { IN_PROCESS_SANDBOX } else { base_url }
}

/// The ledger's address for `p`'s project at the base URL `--moved-from` names, if any.
fn moved_from_scope(rerun: &Rerun, p: &PlannedRow) -> Option<String> {
    Some(scope(rerun.moved_from.as_deref()?, &p.body.project_id))
}

/// Where the ledger knows a row from.
enum Known<'a> {
    /// This run's address.
    Here(&'a Prior),
    /// The address `--moved-from` names: the row as it stands there.
    MovedFrom(&'a Prior),
    /// Another address of the same project (the same one every run, whatever the map's
    /// order), which `--moved-from` does not name.
    Elsewhere { base: &'a str },
}

/// What the ledger knows of the row `key`: at this run's address (`scope`), or else, unless
/// `--force` or the sandbox, sent through another address of the row's project. Rehearsals
/// in the in-process sandbox never stand for the service.
fn look_up<'a>(known: &'a LedgerSnapshot, rerun: &Rerun, p: &PlannedRow, here: &str, key: &str) -> Option<Known<'a>> {
    if let Some(prior) = known.prior(here, key) {
        return Some(Known::Here(prior));
    }
    if rerun.force || rerun.sandbox {
        return None;
    }
    let project = scope("", &p.body.project_id);
    let others: Vec<&str> = known
        .sent_scopes(key)
        .iter()
        .map(String::as_str)
        .filter(|s| *s != here && s.ends_with(project.as_str()) && !s.starts_with(IN_PROCESS_SANDBOX))
        .collect();
    if let Some(old) = moved_from_scope(rerun, p).and_then(|old| others.iter().copied().find(|s| *s == old)) {
        return known.prior(old, key).map(Known::MovedFrom);
    }
    let other = others.into_iter().min()?;
    Some(Known::Elsewhere {
        base: other.strip_suffix(project.as_str()).unwrap_or(other),
    })
}

/// What a re-run does with one row, by what the ledger knows of it.
#[derive(Debug)]
pub enum Verdict<'a> {
    /// Send it: the ledger does not know it, or it failed, or it is sent again on purpose.
    Send {
        /// Created before and sent again (`--force`): it needs a fresh idempotency key, or
        /// a service that honours the key would hand back the first run.
        again: bool,
    },
    /// Created before (`prior` is [`Prior::Created`]): not sent again. `changed`: the row
    /// would now send something else.
    AlreadyImported { prior: &'a Prior, changed: bool },
    /// Sent before and no answer came: the run may exist, so it is not sent.
    NoAnswer { row: usize, at: &'a str },
    /// Sent through another address of the project that `--moved-from` does not name.
    Elsewhere { base: &'a str },
}

/// A row's verdict, and whether the ledger knows it from the `--moved-from` address.
pub struct Judged<'a> {
    pub verdict: Verdict<'a>,
    /// The row as it stands at the `--moved-from` address, to be recorded under this one.
    pub moved_from: Option<&'a Prior>,
}

/// What this run does with the row `p` (scope `here`, ledger key `key`, request `body`).
pub fn judge<'a>(
    known: &'a LedgerSnapshot,
    rerun: &Rerun,
    p: &PlannedRow,
    here: &str,
    key: &str,
    body: &[u8],
) -> Judged<'a> {
    let (prior, moved_from) = match look_up(known, rerun, p, here, key) {
        None => (None, None),
        Some(Known::Here(prior)) => (Some(prior), None),
        Some(Known::MovedFrom(prior)) => (Some(prior), Some(prior)),
        Some(Known::Elsewhere { base }) => {
            return Judged {
                verdict: Verdict::Elsewhere { base },
                moved_from: None,
            };
        }
    };
    let verdict = match prior {
        Some(prior @ Prior::Created { body: sent, .. }) if !rerun.force => Verdict::AlreadyImported {
            prior,
            changed: changed_since(sent.as_deref(), p, body),
        },
        Some(Prior::Created { .. }) => Verdict::Send { again: true },
        Some(Prior::InFlight { row, at } | Prior::Unknown { row, at, .. }) if !rerun.retry_unknown => {
            Verdict::NoAnswer { row: *row, at }
        }
        _ => Verdict::Send { again: false },
    };
    Judged { verdict, moved_from }
}

/// Whether the ledger shows `p` as a row this run does not send, told by its human_id alone
/// (here, or at the `--moved-from` address), as [`sort_rows`] tells it. A row without a
/// human_id is known by a hash of its request, which holds the resolved assignee, so it
/// cannot be told before its e-mail is resolved: false.
pub fn skipped_by_human_id(known: &LedgerSnapshot, rerun: &Rerun, base_url: &str, p: &PlannedRow) -> bool {
    let key = row_key(p.body.human_id.as_deref(), &p.body.project_id, &[]);
    if !key.starts_with("human_id:") {
        return false;
    }
    let here = scope(base_url, &p.body.project_id);
    matches!(
        judge(known, rerun, p, &here, &key, &[]).verdict,
        Verdict::AlreadyImported { .. } | Verdict::NoAnswer { .. }
    )
}

/// Whether a row the ledger shows as created (`sent`: the hash of that request) would
/// now send something else. Unknown for ledgers from before the hash was kept, and for a
/// row whose e-mail assignee is not resolved yet (its body is not the one to send).
fn changed_since(sent: Option<&str>, p: &PlannedRow, body: &[u8]) -> bool {
    let unresolved = p.assignee_email.is_some() && p.body.assignee_id.is_none();
    !unresolved && sent.is_some_and(|sent| sent != body_hash(body))
}

/// A row to send, with its place in the ledger.
pub struct ToSend {
    /// The row's index in the report.
    pub index: usize,
    pub body: Arc<Vec<u8>>,
    pub idempotency_key: String,
    /// The row's (scope, key) in the ledger.
    pub ledger_key: (String, String),
}

/// The rows to send, after the ledger has had its say.
pub struct Sorted {
    pub to_send: Vec<ToSend>,
    pub moved: MovedRows,
    /// Rows already imported whose request would now be different: their row numbers.
    pub changed: Vec<usize>,
}

/// Sorts the planned rows (`(report index, request, cells)`) by what the ledger knows:
/// rows it shows as created are `already_imported`, rows whose answer never came
/// `unknown`, identical copies it cannot tell apart `not_sent`; the rest are to be sent.
pub fn sort_rows(
    rows: &mut [ReportRow],
    planned: &[(usize, PlannedRow, Vec<String>)],
    base_url: &str,
    known: Option<&LedgerSnapshot>,
    rerun: &Rerun,
) -> Sorted {
    let mut row_keys = RowKeys::new(base_url);
    let mut sorted = Sorted {
        to_send: Vec::new(),
        moved: MovedRows::default(),
        changed: Vec::new(),
    };
    let bodies: Vec<(Vec<u8>, Option<String>)> = planned
        .iter()
        .map(|(_, p, _)| {
            let body = p.body.to_json();
            let first = p.body.human_id.is_none().then(|| copy_key(p, &body, 0));
            (body, first)
        })
        .collect();
    let mut copies: HashMap<String, usize> = HashMap::new();
    for first in bodies.iter().filter_map(|(_, first)| first.clone()) {
        *copies.entry(first).or_default() += 1;
    }
    for ((index, p, _), (body, first)) in planned.iter().zip(bodies) {
        let (here, key) = row_keys.key(p, &body);
        let report = &mut rows[*index];
        if !rerun.force
            && let Some(known) = known
            && let Some(in_file) = first.and_then(|first| copies.get(&first).copied())
            && let Some(why) = unmatched_copies_here_or_moved(known, rerun, &here, p, &body, in_file)
        {
            report.outcome = Outcome::NotSent;
            report.error = Some(why);
            continue;
        }
        let verdict = match known.map(|known| judge(known, rerun, p, &here, &key, &body)) {
            None => Verdict::Send { again: false },
            Some(judged) => {
                if let Some(prior) = judged.moved_from {
                    sorted.moved.carry(p, &here, &key, prior);
                }
                judged.verdict
            }
        };
        let idempotency_key = match verdict {
            Verdict::AlreadyImported { prior, changed } => {
                mark_already_imported(report, prior, changed);
                if changed {
                    sorted.changed.push(p.row);
                }
                continue;
            }
            Verdict::NoAnswer { row, at } => {
                report.outcome = Outcome::Unknown;
                report.error = Some(format!(
                    "an earlier run sent this row (then row {row}, at {at}) but its answer never came, so the run may exist; check in Testsigma, then re-run with --retry-unknown to send it again"
                ));
                continue;
            }
            Verdict::Elsewhere { base } => {
                sorted.moved.elsewhere.push((p.row, base.to_owned()));
                idempotency_key(&here, &key)
            }
            Verdict::Send { again: true } => {
                idempotency_key(&here, &format!("{key}#force@{}", chrono::Utc::now().timestamp_millis()))
            }
            Verdict::Send { again: false } => idempotency_key(&here, &key),
        };
        sorted.to_send.push(ToSend {
            index: *index,
            body: Arc::new(body),
            idempotency_key,
            ledger_key: (here, key),
        });
    }
    sorted
}

/// A row the ledger shows as created: `already_imported`, with the earlier run's ids.
fn mark_already_imported(report: &mut ReportRow, prior: &Prior, changed: bool) {
    let Prior::Created {
        test_run_id,
        test_run_human_id,
        row,
        at,
        ..
    } = prior
    else {
        return;
    };
    report.outcome = Outcome::AlreadyImported;
    if changed {
        let run = test_run_human_id.as_deref().or(test_run_id.as_deref()).unwrap_or("?");
        report.error = Some(format!(
            "the row has changed since it was imported as {run} (row {row}, {at}); the change was not sent, so Testsigma keeps the earlier version (--force sends it as a new run)"
        ));
    }
    report.test_run_id = test_run_id.clone();
    report.test_run_human_id = test_run_human_id.clone();
    report.attempts = 0;
}

/// Identical rows without a human_id are told apart only by their order in the file. When
/// the ledger knows more copies of a row than this file holds (a failed-rows file, a sheet
/// with a copy deleted) and they did not all end the same way, which of them this file's
/// copies are cannot be known: taken for the created one, a failed copy would be lost; taken
/// for a failed one, a created copy would be made twice. Such rows are not sent; the
/// message says why and what to do.
pub(crate) fn unmatched_copies(
    known: &LedgerSnapshot,
    scope: &str,
    p: &PlannedRow,
    body: &[u8],
    in_file: usize,
) -> Option<String> {
    known.prior(scope, &copy_key(p, body, in_file))?;
    let copies: Vec<&Prior> = known_copies(known, scope, p, body)
        .take(MAX_COPIES_NAMED.max(in_file + 1) * 2)
        .collect();
    let first = copies.first()?.standing();
    if copies.iter().all(|c| c.standing() == first) {
        return None;
    }
    let named: Vec<String> = copies
        .iter()
        .take(MAX_COPIES_NAMED)
        .map(|c| format!("row {} {}", c.row(), c.standing()))
        .collect();
    let more = copies.len().saturating_sub(MAX_COPIES_NAMED);
    Some(format!(
        "not sent: an earlier run imported {} identical rows without a human_id ({}{}), and this file holds {in_file}, so which of them this is cannot be told; give the rows human_ids, or pass --force to send it as a new run",
        copies.len(),
        named.join(", "),
        if more > 0 {
            format!(", {more} more")
        } else {
            String::new()
        },
    ))
}

const MAX_COPIES_NAMED: usize = 5;

/// What the ledger holds of the identical copies of a row without a human_id, in order:
/// the first copy, the second, … up to the first copy it does not know.
pub(crate) fn known_copies<'a>(
    known: &'a LedgerSnapshot,
    scope: &'a str,
    p: &'a PlannedRow,
    body: &'a [u8],
) -> impl Iterator<Item = &'a Prior> + 'a {
    (0..).map_while(move |n| known.prior(scope, &copy_key(p, body, n)))
}

/// [`unmatched_copies`] at this run's address, or else at the one `--moved-from` names,
/// whose rows this run takes over.
fn unmatched_copies_here_or_moved(
    known: &LedgerSnapshot,
    rerun: &Rerun,
    scope: &str,
    p: &PlannedRow,
    body: &[u8],
    in_file: usize,
) -> Option<String> {
    unmatched_copies(known, scope, p, body, in_file).or_else(|| {
        let old = moved_from_scope(rerun, p)?;
        unmatched_copies(known, &old, p, body, in_file)
    })
}

/// Rows the ledger shows as sent through another base URL (created, or no answer), for the
/// same project. With `--moved-from` naming that URL they count as they stand there; otherwise the run refuses
/// rather than risk creating them twice (the other URL may be the same service, moved).
#[derive(Default)]
pub struct MovedRows {
    /// Found under `--moved-from`, to be recorded under this run's address.
    found: Vec<CarriedRow>,
    /// Rows created under some other address that `--moved-from` does not name.
    elsewhere: Vec<(usize, String)>,
}

/// A row sent through the old address, with what to record under the new one.
struct CarriedRow {
    scope: String,
    key: String,
    row: usize,
    prior: Prior,
}

impl MovedRows {
    /// Takes over a row found under the `--moved-from` address: it is recorded under this
    /// run's address as it stood there. Returns how it stood.
    fn carry(&mut self, p: &PlannedRow, scope: &str, key: &str, prior: &Prior) -> Prior {
        self.found.push(CarriedRow {
            scope: scope.to_owned(),
            key: key.to_owned(),
            row: p.row,
            prior: prior.clone(),
        });
        prior.clone()
    }

    /// Why the run must not send anything, if some row was created under another address.
    pub fn refusal(&self, base_url: &str) -> Option<String> {
        let (row, other) = self.elsewhere.first()?;
        let rows = match self.elsewhere.len() {
            1 => format!("row {row} is"),
            n => format!("{n} rows (row {row} first) are"),
        };
        Some(format!(
            "{rows} in the ledger as sent through {other} (created, or with no answer), and this run goes to {base_url}: if that is the same service under a new address, sending would create them twice. If the service moved, pass --moved-from {other}; if the earlier run went to another service (a rehearsal), give this one its own ledger (--state)"
        ))
    }

    /// Records the rows found under the old address under the new one, as they stood
    /// (created, or unknown), so later runs need no `--moved-from`.
    pub fn record_here(&self, ledger: &mut Ledger) -> anyhow::Result<()> {
        for r in &self.found {
            let recorded = match &r.prior {
                Prior::Created {
                    test_run_id,
                    test_run_human_id,
                    body,
                    ..
                } => ledger.record_created(
                    &r.scope,
                    &r.key,
                    r.row,
                    test_run_id.as_deref(),
                    test_run_human_id.as_deref(),
                    body.as_deref(),
                ),
                // Still unknown at the new address: not resent, and no flag needed to say so.
                Prior::InFlight { at, .. } => ledger.record_unknown(
                    &r.scope,
                    &r.key,
                    r.row,
                    &format!("sent at {at} through the old address; no answer"),
                ),
                Prior::Unknown { error, .. } => ledger.record_unknown(&r.scope, &r.key, r.row, error),
                Prior::Failed { .. } => Ok(()),
            };
            recorded.map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    }
}
