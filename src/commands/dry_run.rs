//! `import --dry-run`: every row read, validated and planned; the report, plan and
//! failed-rows file written; and what the ledger would make an import skip. Nothing is
//! sent and no key is needed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use super::import::{quiet_night, raw_cells, run_info};
use crate::exit::Exit;
use crate::ledger::policy::{Rerun, Verdict, judge, ledger_base};
use crate::ledger::{self, KeySpec, LedgerSnapshot, Prior, row_key};
use crate::report::{FailedRowsWriter, Outcome, ReportFormat, ReportWriter, RunSummary, write_summary_json};
use crate::request::PlannedRow;
use crate::request::plan::{open_plan, write_plan_line};
use crate::service::check_base_url;
use crate::settings::ImportSettings;
use crate::ui::problems::ProblemPrinter;
use crate::ui::{plural, problem, say, warn};
use crate::validate::stage::{ReadStage, RowEvent};

/// What the rows of a dry run came to.
#[derive(Default)]
struct Tally {
    rows: usize,
    counts: BTreeMap<Outcome, usize>,
    /// Rows with an e-mail or name assignee or test case human ids, unresolved offline.
    unresolved: usize,
    /// The input's header row, for a file with no rows below it.
    header_row: usize,
}

impl Tally {
    fn count(&self, outcome: Outcome) -> usize {
        self.counts.get(&outcome).copied().unwrap_or(0)
    }
}

/// The files a dry run writes as its rows come.
struct Outputs {
    report: ReportWriter,
    plan: Option<Box<dyn Write>>,
    plan_line: Vec<u8>,
    failed: FailedRowsWriter,
}

impl Outputs {
    fn open(settings: &ImportSettings, stage: &ReadStage, failed_path: Option<PathBuf>) -> anyhow::Result<Outputs> {
        let format = ReportFormat::from_path(&settings.report);
        Ok(Outputs {
            report: ReportWriter::create(&settings.report, format)?.flush_each_row(false),
            plan: settings.plan.as_deref().map(open_plan).transpose()?,
            plan_line: Vec::with_capacity(1024),
            failed: FailedRowsWriter::new(failed_path, stage.headers.clone(), stage.failed_rows_shape()),
        })
    }

    fn plan(&mut self, p: &PlannedRow) -> anyhow::Result<()> {
        if let Some(plan) = self.plan.as_mut() {
            self.plan_line.clear();
            write_plan_line(&mut self.plan_line, p);
            plan.write_all(&self.plan_line)
                .context("--plan: cannot write the plan")?;
        }
        Ok(())
    }

    /// Flushes the plan and closes the report; returns the failed-rows file, if any.
    fn finish(mut self) -> anyhow::Result<Option<PathBuf>> {
        if let Some(plan) = self.plan.as_mut() {
            plan.flush().context("--plan: cannot write the plan")?;
        }
        self.report.finish(None)?;
        Ok(self.failed.finish()?)
    }
}

/// What of the row is looked up at import time, for its report line.
fn unresolved_note(p: &PlannedRow) -> Option<String> {
    let mut notes = Vec::new();
    if let Some(assignee) = &p.assignee_email {
        notes.push(format!(
            "assignee {} is resolved to a user id through GET /users at import time",
            assignee.email
        ));
    }
    if let Some(refs) = &p.test_case_refs {
        notes.push(format!(
            "test cases {} are resolved to their ids through GET /projects/{{id}}/test_cases at import time",
            refs.human_ids.join(", ")
        ));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Runs a dry run over the rows of `stage`.
pub(crate) fn dry_run(
    settings: &ImportSettings,
    stage: &mut ReadStage,
    failed_path: Option<PathBuf>,
    started: Instant,
) -> anyhow::Result<Exit> {
    let mut outputs = Outputs::open(settings, stage, failed_path)?;
    let mut printer = ProblemPrinter::new(50).holding(stage.settles_orders_early());
    let mut ledger_view = LedgerView::open(settings, stage.key());
    let rerun = settings.rerun();
    let mut tally = Tally::default();
    tally.rows = stage.for_each_row(|event| {
        let line = match event {
            RowEvent::Valid { report, planned: p, .. } => {
                outputs.plan(p)?;
                if let Some(note) = unresolved_note(p) {
                    tally.unresolved += 1;
                    report.error = Some(note);
                }
                if let Some(note) = ledger_view.as_mut().and_then(|view| view.note(p, &rerun)) {
                    report.error = Some(match report.error.take() {
                        Some(earlier) => format!("{earlier}; {note}"),
                        None => note,
                    });
                }
                report.outcome = Outcome::Planned;
                report
            }
            RowEvent::Invalid { report, problems, row } => {
                for p in &problems {
                    printer.add(p, &problem);
                }
                let cells = row.map(raw_cells).unwrap_or_default();
                outputs.failed.write(&cells, report.error.as_deref().unwrap_or(""))?;
                report
            }
        };
        *tally.counts.entry(line.outcome).or_default() += 1;
        outputs.report.append(line)?;
        Ok(())
    })?;
    printer.finish(&problem);
    stage.tell_column_problems(&problem);
    super::tell_date_notes(stage);
    let failed_file = outputs.finish()?;
    tally.header_row = stage.failed_rows_shape().header_row;
    let summary = summarise(settings, &tally, failed_file.as_deref(), started);
    tell(settings, &tally, &summary, ledger_view.as_ref(), failed_file.as_deref());
    write_summary_json(settings.summary_json.as_deref(), &summary)?;
    Ok(summary.exit_code)
}

fn summarise(settings: &ImportSettings, tally: &Tally, failed_file: Option<&Path>, started: Instant) -> RunSummary {
    let counts = Outcome::ALL
        .iter()
        .map(|o| (o.as_str().to_string(), tally.count(*o)))
        .collect();
    let run = run_info(settings, started);
    RunSummary {
        elapsed_seconds: run.elapsed_seconds(),
        run,
        counts,
        rows: tally.rows,
        requests_sent: 0,
        effective_rate: 0.0,
        exit_code: if tally.count(Outcome::Invalid) > 0 {
            Exit::Invalid
        } else {
            Exit::Ok
        },
        report: Some(settings.report.display().to_string()),
        failed_rows_file: failed_file.map(|p| p.display().to_string()),
        state: settings.state.as_ref().map(|p| p.display().to_string()),
        dry_run: true,
        error: None,
    }
}

/// The dry run's closing lines.
fn tell(
    settings: &ImportSettings,
    tally: &Tally,
    summary: &RunSummary,
    ledger_view: Option<&LedgerView>,
    failed_file: Option<&Path>,
) {
    let (planned, invalid) = (tally.count(Outcome::Planned), tally.count(Outcome::Invalid));
    if tally.rows == 0 {
        say(&format!("dry run: {}", quiet_night(&settings.read, tally.header_row)));
    } else {
        say(&format!(
            "dry run: {}: {planned} planned, {invalid} invalid; nothing was sent ({:.2} s)",
            plural(tally.rows, "row"),
            summary.elapsed_seconds
        ));
    }
    if tally.unresolved > 0 {
        say(&format!(
            "note: {} row(s) give an assignee by e-mail or name, or test cases by human id; offline these are unresolved, and an import resolves them through GET /users and the project's test cases",
            tally.unresolved
        ));
    }
    // With no row planned, the ledger has nothing to say about them.
    if let Some(view) = ledger_view.filter(|_| planned > 0) {
        say(&view.summary(planned));
    }
    say(&format!("report: {}", settings.report.display()));
    if let Some(plan) = &settings.plan
        && plan != Path::new("-")
    {
        say(&format!("plan: {}", plan.display()));
    }
    if let Some(f) = failed_file {
        // Only the invalid rows: the planned ones are in no such file, so the input is
        // what to fix and import.
        say(&format!(
            "invalid rows: {} (each with what is wrong; fix them in {}, then run again)",
            f.display(),
            settings.read.input.display_name()
        ));
    }
    if invalid > 0 {
        say(&format!("{invalid} of {} rows are invalid (exit 3).", tally.rows));
    }
}

/// What a dry run can tell from the ledger: which planned rows an import would not send.
/// It asks the service nothing: rows the ledger does not know may still be found there.
struct LedgerView {
    path: PathBuf,
    snapshot: LedgerSnapshot,
    base: String,
    key: KeySpec,
    already: usize,
    changed: usize,
    unknown: usize,
    /// Rows whose key or request depends on an e-mail assignee not resolved offline.
    untold: usize,
    /// Rows sent through another address, which would make an import refuse.
    elsewhere: usize,
}

impl LedgerView {
    /// The ledger an import with these settings would use, if there is one to read. A ledger
    /// that cannot be read is a warning here: the import itself will say what is wrong.
    fn open(settings: &ImportSettings, key: &KeySpec) -> Option<LedgerView> {
        let path = settings.state.as_ref()?;
        let base = check_base_url(&settings.service.base_url, settings.service.allow_insecure).ok()?;
        match LedgerSnapshot::read(path) {
            Ok(snapshot) => snapshot.map(|snapshot| LedgerView {
                path: path.clone(),
                snapshot,
                base: ledger_base(&settings.rerun(), &base).to_owned(),
                key: key.clone(),
                already: 0,
                changed: 0,
                unknown: 0,
                untold: 0,
                elsewhere: 0,
            }),
            Err(e) => {
                warn(&format!("{e}; the dry run does not say which rows it holds"));
                None
            }
        }
    }

    /// A note for the row's report line when the ledger knows it.
    fn note(&mut self, p: &PlannedRow, rerun: &Rerun) -> Option<String> {
        let (scope, key) = (ledger::scope(&self.base, &p.body.project_id), row_key(&self.key, p));
        if p.unresolved() && !key.starts_with("human_id:") {
            self.untold += 1;
            return None;
        }
        let judged = judge(&self.snapshot, rerun, p, &scope, &key, &p.body.to_fields());
        if judged.moved_from.is_some() {
            return Some(
                "sent through the --moved-from address per the ledger: an import counts it as it stands there"
                    .to_owned(),
            );
        }
        match judged.verdict {
            Verdict::Elsewhere { base } => {
                self.elsewhere += 1;
                Some(format!(
                    "in the ledger as sent through {base}: an import to this address refuses to run (pass --moved-from {base} if the service moved)"
                ))
            }
            Verdict::AlreadyImported { prior, changed } => {
                let (note, is_changed) = already_note(&prior, &changed, rerun);
                *if is_changed {
                    &mut self.changed
                } else {
                    &mut self.already
                } += 1;
                Some(note)
            }
            Verdict::NoAnswer { row, at } => {
                self.unknown += 1;
                Some(format!(
                    "an earlier import sent this row (row {row}, {at}) and had no answer yet: an import leaves it unknown until --timeout has passed, then asks the service"
                ))
            }
            Verdict::Send { .. } => None,
        }
    }

    fn summary(&self, planned: usize) -> String {
        if self.elsewhere > 0 {
            return format!(
                "ledger {}: {} the ledger shows sent through another address, so an import to this one would refuse to run (exit 2); the report says where (--moved-from)",
                self.path.display(),
                plural(self.elsewhere, "row")
            );
        }
        let mut line = format!(
            "ledger {}: {} of {planned} planned rows are already imported",
            self.path.display(),
            self.already + self.changed,
        );
        if self.changed > 0 {
            line.push_str(&format!(" ({} changed since)", self.changed));
        }
        line.push_str(&format!(
            "; an import would look up the other {} at the service and send those it does not hold",
            planned - self.already - self.changed - self.unknown
        ));
        if self.unknown > 0 {
            line.push_str(&format!(
                ", and leave {} unknown (sent before, no answer yet)",
                self.unknown
            ));
        }
        if self.untold > 0 {
            line.push_str(&format!(
                " ({} with an e-mail assignee cannot be matched offline)",
                self.untold
            ));
        }
        line
    }
}

/// The note for a row the ledger shows as created, and whether it changed since.
fn already_note(prior: &Prior, changed: &[String], rerun: &Rerun) -> (String, bool) {
    let run = format!("{} (row {}, {})", prior.run_name(), prior.row(), prior.at());
    if changed.is_empty() {
        let note = format!("already imported as {run} per the ledger: an import skips it (--force sends it again)");
        return (note, false);
    }
    let then = if rerun.update_changed {
        "an import updates the run"
    } else {
        "an import reports it changed and sends nothing (--update-changed updates the run)"
    };
    (
        format!(
            "imported as {run} per the ledger, and changed since: {}; {then}",
            changed.join(", ")
        ),
        true,
    )
}
