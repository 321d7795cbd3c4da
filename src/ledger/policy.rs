//! What a re-run does with a row the ledger knows: the one home of that rule. The dry
//! run's notes, the import's sorting and `check` all ask [`judge`], so they cannot
//! disagree; each only words the verdict for its reader.
//!
//! The service decides what exists; the ledger remembers what this tool did. A row the
//! ledger shows as created is not sent again (`changed` if its request now differs); a
//! row it does not show as created is looked up at the service before it is sent
//! (unless `--no-lookup`), and so is a row whose answer never came, once `--timeout` has
//! passed since it was sent.

use std::time::Duration;

use anyhow::anyhow;
use serde_json::{Map, Value};

use super::keys::{KeySpec, fields_changed_since, row_key};
use super::{CreatedRun, Ledger, LedgerSnapshot, Prior, body_hash, idempotency_key, scope};
use crate::read::mapping::Field;
use crate::report::{Outcome, ReportRow};
use crate::request::PlannedRow;

/// What a re-run may do with rows the ledger knows, from the flags.
#[derive(Debug, Clone, Default)]
pub struct Rerun {
    /// `--force`: send every row as a new run.
    pub force: bool,
    /// `--retry-unknown` (with `--no-lookup`): send again rows whose earlier answer never came.
    pub retry_unknown: bool,
    /// `--sandbox`: rows go to the in-process sandbox, which stands for no service.
    pub sandbox: bool,
    /// `--moved-from`: the base URL the service had when the ledger's earlier rows were made.
    pub moved_from: Option<String>,
    /// Ask the service which runs exist (not `--no-lookup`).
    pub lookup: bool,
    /// `--update-changed`: update the runs of rows that changed since they were imported.
    pub update_changed: bool,
    /// `--timeout`: a send with no answer is looked up only once this has passed, so an
    /// answer still on its way cannot make a run that the lookup missed.
    pub settle_after: Duration,
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
    Here(Prior),
    /// The address `--moved-from` names: the row as it stands there.
    MovedFrom(Prior),
    /// Another address of the same project (the same one every run, whatever the map's
    /// order), which `--moved-from` does not name.
    Elsewhere { base: &'a str },
}

/// What the ledger knows of the row `key`: at this run's address (`here`), or else, unless
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
        .into_iter()
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
    /// `look_up`: ask the service first whether its run exists.
    Send {
        /// Created before and sent again (`--force`): it needs a fresh idempotency key, or
        /// a service that honours the key would hand back the first run.
        again: bool,
        look_up: bool,
    },
    /// Created before (`prior` is [`Prior::Created`]): not sent again. `changed` names the
    /// fields whose value now differs (none: unchanged).
    AlreadyImported { prior: Prior, changed: Vec<String> },
    /// Sent before and no answer came, too recently to look it up (or with `--no-lookup`):
    /// the run may exist, so it is not sent.
    NoAnswer { row: usize, at: String },
    /// Sent through another address of the project that `--moved-from` does not name.
    Elsewhere { base: &'a str },
}

/// A row's verdict, and whether the ledger knows it from the `--moved-from` address.
pub struct Judged<'a> {
    pub verdict: Verdict<'a>,
    /// The row as it stands at the `--moved-from` address, to be recorded under this one.
    pub moved_from: Option<Prior>,
}

/// What this run does with the row `p` (scope `here`, ledger key `key`), whose request's
/// fields are `fields`.
pub fn judge<'a>(
    known: &'a LedgerSnapshot,
    rerun: &Rerun,
    p: &PlannedRow,
    here: &str,
    key: &str,
    fields: &Map<String, Value>,
) -> Judged<'a> {
    let (prior, moved_from) = match look_up(known, rerun, p, here, key) {
        None => (None, None),
        Some(Known::Here(prior)) => (Some(prior), None),
        Some(Known::MovedFrom(prior)) => (Some(prior.clone()), Some(prior)),
        Some(Known::Elsewhere { base }) => {
            let verdict = Verdict::Elsewhere { base };
            return Judged {
                verdict,
                moved_from: None,
            };
        }
    };
    let look_up = rerun.lookup && !rerun.force;
    let verdict = match prior {
        Some(prior @ Prior::Created { .. }) if !rerun.force => Verdict::AlreadyImported {
            changed: changed_since(&prior, p, fields),
            prior,
        },
        Some(Prior::Created { .. }) => Verdict::Send {
            again: true,
            look_up: false,
        },
        Some(Prior::InFlight { row, at } | Prior::Unknown { row, at, .. }) => no_answer(rerun, row, at),
        _ => Verdict::Send { again: false, look_up },
    };
    Judged { verdict, moved_from }
}

/// A row sent before whose answer never came. With lookups, it is looked up once
/// `--timeout` has passed since; without, it is sent again only with `--retry-unknown`.
fn no_answer<'a>(rerun: &Rerun, row: usize, at: String) -> Verdict<'a> {
    if rerun.force {
        return Verdict::Send {
            again: false,
            look_up: false,
        };
    }
    if !rerun.lookup {
        return match rerun.retry_unknown {
            true => Verdict::Send {
                again: false,
                look_up: false,
            },
            false => Verdict::NoAnswer { row, at },
        };
    }
    let sent = chrono::DateTime::parse_from_rfc3339(&at).map(|t| t.with_timezone(&chrono::Utc));
    let waited = sent.map(|t| chrono::Utc::now().signed_duration_since(t).to_std().unwrap_or_default());
    match waited {
        Ok(waited) if waited < rerun.settle_after => Verdict::NoAnswer { row, at },
        // A time the ledger cannot read is taken as long ago.
        _ => Verdict::Send {
            again: false,
            look_up: true,
        },
    }
}

/// The fields of a row the ledger shows as created whose value differs now. Nothing for a
/// row whose e-mail assignee is not resolved yet (its request is not the one to send).
fn changed_since(prior: &Prior, p: &PlannedRow, fields: &Map<String, Value>) -> Vec<String> {
    let Prior::Created {
        body, fields: stored, ..
    } = prior
    else {
        return Vec::new();
    };
    if p.unresolved() {
        return Vec::new();
    }
    match (stored, body) {
        (Some(stored), _) => fields_changed_since(fields, stored),
        // A ledger line from before fields were kept: only whether the request differs.
        (None, Some(sent)) if *sent != body_hash(&p.body.to_json()) => vec!["the request".to_owned()],
        _ => Vec::new(),
    }
}

/// Whether the ledger shows `p` as a row this run does not send, before its e-mail
/// assignee is resolved: told by its key unless the key holds the assignee.
pub fn skipped_by_key(known: &LedgerSnapshot, rerun: &Rerun, spec: &KeySpec, base_url: &str, p: &PlannedRow) -> bool {
    if spec.fields().contains(&Field::AssigneeId) {
        return false;
    }
    let (here, key) = (scope(base_url, &p.body.project_id), row_key(spec, p));
    matches!(
        judge(known, rerun, p, &here, &key, &Map::new()).verdict,
        Verdict::AlreadyImported { .. } | Verdict::NoAnswer { .. }
    )
}

/// A row to send (or first to look up). Kept small, one for each row to send: its
/// request, ledger key and idempotency key are made again from the row when it is sent
/// ([`ToSend::keys`]).
pub struct ToSend {
    /// The row's index in the report.
    pub index: usize,
    /// Ask the service first whether its run exists.
    pub look_up: bool,
    /// Sent again on purpose: `--force`, or an update (`--update-changed`).
    pub again: Option<Box<Again>>,
}

/// What a row sent again on purpose carries.
pub struct Again {
    /// Added to the row's key for the idempotency key: a service that honours the key
    /// would otherwise hand back the first run.
    pub key_suffix: String,
    /// The run to update instead of creating one.
    pub update_of: Option<String>,
}

impl ToSend {
    /// The row's (scope, key) in the ledger and its request's idempotency key.
    pub fn keys(&self, p: &PlannedRow, base_url: &str, spec: &KeySpec) -> ((String, String), String) {
        let (here, key) = (scope(base_url, &p.body.project_id), row_key(spec, p));
        let idempotency = match &self.again {
            Some(again) => idempotency_key(&here, &format!("{key}{}", again.key_suffix)),
            None => idempotency_key(&here, &key),
        };
        ((here, key), idempotency)
    }

    pub fn update_of(&self) -> Option<&str> {
        self.again.as_ref().and_then(|a| a.update_of.as_deref())
    }
}

/// The rows to send, after the ledger has had its say.
#[derive(Default)]
pub struct Sorted {
    pub to_send: Vec<ToSend>,
    pub moved: MovedRows,
}

impl Sorted {
    /// Sorts one planned row (report index `index`, request `p`) by what the ledger
    /// knows: a row it shows as created is `already_imported` (or `changed`, or to be
    /// updated), a row whose answer never came and cannot be looked up yet `unknown`; the
    /// rest are to be sent, most of them after a lookup. Returns whether `report` changed.
    pub fn sort_row(
        &mut self,
        (index, report, p): (usize, &mut ReportRow, &PlannedRow),
        keys: (&str, &KeySpec),
        known: &LedgerSnapshot,
        rerun: &Rerun,
    ) -> bool {
        let (base_url, spec) = keys;
        let (here, key) = (scope(base_url, &p.body.project_id), row_key(spec, p));
        let fields = p.body.to_fields();
        let judged = judge(known, rerun, p, &here, &key, &fields);
        if let Some(prior) = judged.moved_from {
            self.moved.carry(p, &here, &key, prior);
        }
        let now = || chrono::Utc::now().timestamp_millis();
        let marked = matches!(judged.verdict, Verdict::AlreadyImported { .. });
        let (again, look_up) = match judged.verdict {
            Verdict::AlreadyImported { prior, changed } => {
                let Some(run) = mark_already_imported(report, &prior, &changed, rerun) else {
                    return true;
                };
                let again = Again {
                    key_suffix: format!("#update@{}", now()),
                    update_of: Some(run),
                };
                (Some(again), false)
            }
            Verdict::NoAnswer { row, at } => {
                report.outcome = Outcome::Unknown;
                report.error = Some(no_answer_message(rerun, row, &at));
                return true;
            }
            Verdict::Elsewhere { base } => {
                self.moved.elsewhere.push((p.row, base.to_owned()));
                (None, false)
            }
            Verdict::Send { again: true, .. } => {
                let again = Again {
                    key_suffix: format!("#force@{}", now()),
                    update_of: None,
                };
                (Some(again), false)
            }
            Verdict::Send { again: false, look_up } => (None, look_up),
        };
        self.to_send.push(ToSend {
            index,
            look_up,
            again: again.map(Box::new),
        });
        marked
    }
}

/// The report's words for a row sent before whose answer never came.
fn no_answer_message(rerun: &Rerun, row: usize, at: &str) -> String {
    if rerun.lookup {
        format!(
            "an earlier run sent this row (then row {row}, at {at}) and its answer may still be on its way; the next run after --timeout ({} s) looks it up at the service and sends it only if it does not exist",
            rerun.settle_after.as_secs()
        )
    } else {
        format!(
            "an earlier run sent this row (then row {row}, at {at}) but its answer never came, so the run may exist; run without --no-lookup to have the service say whether it does"
        )
    }
}

/// A row the ledger shows as created: `already_imported` with the earlier run's ids, or
/// `changed` naming the fields. Returns the run to update, for a changed row with
/// `--update-changed`.
fn mark_already_imported(report: &mut ReportRow, prior: &Prior, changed: &[String], rerun: &Rerun) -> Option<String> {
    let Prior::Created {
        test_run_id,
        test_run_human_id,
        row,
        at,
        ..
    } = prior
    else {
        return None;
    };
    report.test_run_id = test_run_id.clone();
    report.test_run_human_id = test_run_human_id.clone();
    report.attempts = 0;
    report.outcome = Outcome::AlreadyImported;
    if changed.is_empty() {
        return None;
    }
    report.outcome = Outcome::Changed;
    report.error = Some(changed_message(
        changed,
        &format!("imported as {} (row {row}, {at})", prior.run_name()),
        rerun,
    ));
    if rerun.update_changed {
        test_run_id.clone()
    } else {
        None
    }
}

/// The report's words for a row whose run exists and differs: which fields, and what
/// `--update-changed` would do.
pub fn changed_message(changed: &[String], run: &str, rerun: &Rerun) -> String {
    let what = if rerun.update_changed {
        "the run is updated"
    } else {
        "nothing was sent, so Testsigma keeps the earlier version (--update-changed updates it)"
    };
    format!("changed since it was {run}: {}; {what}", changed.join(", "))
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
    /// run's address as it stood there.
    fn carry(&mut self, p: &PlannedRow, scope: &str, key: &str, prior: Prior) {
        self.found.push(CarriedRow {
            scope: scope.to_owned(),
            key: key.to_owned(),
            row: p.row,
            prior,
        });
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
                    fields,
                    ..
                } => ledger.record_created(
                    &r.scope,
                    &r.key,
                    r.row,
                    &CreatedRun {
                        test_run_id: test_run_id.as_deref(),
                        test_run_human_id: test_run_human_id.as_deref(),
                        body: body.as_deref(),
                        fields: fields.as_deref(),
                    },
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
