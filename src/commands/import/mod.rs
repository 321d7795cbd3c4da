//! The main job, stage by stage: read → map → validate → (plan) → upload → report.
//! Setup problems (bad flags, unreadable file, refused key) are errors that end the
//! run with exit 2; a row's problem is an outcome in the report, never an abort.

mod assignees;
mod lookup;
mod rows;
mod sink;
mod summary;
mod test_cases;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::Context;

use self::assignees::resolve_assignees;
use self::rows::{RowParts, RowRecord, Rows};
use self::sink::RunSink;
use self::summary::{Digest, cause_of, cause_of_answer, cause_of_stop, print_summary};
use self::test_cases::resolve_test_cases;
use super::dry_run::dry_run;
use super::outputs::check_outputs;
use crate::exit::{Cause, Exit, SetupError};
use crate::ledger::policy::{Sorted, ToSend, ledger_base, skipped_by_key};
use crate::ledger::{KeySpec, Ledger, LedgerError, LedgerSnapshot, field_hashes, refuse_if_held};
use crate::read::row::SourceRow;
use crate::report::{
    FailedRowsShape, FailedRowsWriter, Outcome, ReportFormat, ReportWriter, RunInfo, RunSummary, is_special_file,
    setup_error_in_summary, tally, write_summary_json,
};
use crate::request::PlannedRow;
use crate::request::plan::{open_plan, plan_line};
use crate::sandbox::Sandbox;
use crate::service::{ApiClient, ApiError, can_connect, connect};
use crate::settings::ImportSettings;
use crate::ui::problems::ProblemPrinter;
use crate::ui::progress::Progress;
use crate::ui::{error, plural, problem, say, warn};
use crate::upload::{StopReason, StopSignal, UploadJob, UploadSettings, upload, watch_signals};
use crate::validate::stage::{ReadSettings, ReadStage, RowEvent, open_read_stage, read_again_if_overturned};

/// What a file with headers and no data rows says: for a nightly import that is a quiet
/// night, not a failure (exit 0).
pub(crate) fn quiet_night(read: &ReadSettings, header_row: usize) -> String {
    format!(
        "{}: no data rows below the header row {header_row}: nothing to import tonight",
        read.input.display_name()
    )
}

/// What the summary says of the run besides its counts: when, which version, the input and
/// the service (`in-process-sandbox` with `--sandbox`, as the ledger names it).
pub(crate) fn run_info(settings: &ImportSettings, started: Instant) -> RunInfo {
    let base_url = ledger_base(&settings.rerun(), &settings.service.base_url).to_owned();
    RunInfo::new(started, Some(settings.read.input.display_name()), Some(base_url))
}

/// The text of a row's cells, for the failed-rows file.
pub(crate) fn raw_cells(row: &SourceRow) -> Vec<String> {
    row.cells().map(|c| c.as_text().into_owned()).collect()
}

/// Runs `import`, or with `--dry-run` a dry run. Returns the exit code and rows; a setup
/// error is an `Err`.
pub async fn run_import(settings: ImportSettings) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let failed_path = check_outputs(&settings)?;
    // Two runs on one ledger: the second refuses at once, before reading anything. The
    // ledger is made and locked only once a request can be sent (`ready_to_send`).
    let known = match (&settings.state, settings.dry_run) {
        (Some(path), false) => ledger_as_it_stands(path)?,
        _ => None,
    };
    // From here on this run owns its outputs; a setup error is said in --summary-json too,
    // so a nightly job's monitor does not read last night's success.
    let said = |e: anyhow::Error| {
        let state = settings.state.as_ref().map(|p| p.display().to_string());
        setup_error_in_summary(
            settings.summary_json.as_deref(),
            settings.dry_run,
            run_info(&settings, started),
            state,
            e,
        )
    };
    let mut stage = open_stage(&settings).map_err(said)?;
    if settings.dry_run {
        // Every output is written anew on a second pass, and the problems held back are not said.
        let result = read_again_if_overturned(&settings.read, &mut stage, |stage| {
            dry_run(&settings, stage, failed_path.clone(), started)
        });
        return result.map_err(said);
    }
    // Every row is read and validated before anything is sent.
    let read = read_again_if_overturned(&settings.read, &mut stage, read_all).map_err(said)?;
    let count = read.count;
    let mut run = UploadRun::new(read, &mut stage, failed_path, started);
    // What the reading held (every row's key and human id, to find twins) is let go.
    drop(stage);
    if count == 0 {
        return run.finish_quiet_night(&settings).map_err(said);
    }
    run.known = known;
    run.run(&settings).await.map_err(said)
}

/// Opens the input for reading and validating, saying its column warnings (even with
/// `--quiet`) and whole-column problems.
fn open_stage(settings: &ImportSettings) -> anyhow::Result<ReadStage> {
    let mut stage = open_read_stage(&settings.read, &warn)?;
    stage.tell_column_problems(&problem);
    // Outputs that can be written again from the start let a dry run read the file once.
    let rewritable = |path: &Path| path != Path::new("-") && !is_special_file(path);
    if !settings.dry_run || (rewritable(&settings.report) && settings.plan.as_deref().is_none_or(rewritable)) {
        stage.settle_orders_early();
    }
    Ok(stage)
}

/// Every row of the input, read and validated, kept in a [`Rows`] store: each row's
/// report line, its request if it is valid, and its cells, for the failed-rows file.
struct ReadAll {
    count: usize,
    rows: Rows,
    printer: ProblemPrinter,
}

fn read_all(stage: &mut ReadStage) -> anyhow::Result<ReadAll> {
    let mut rows = Rows::new()?;
    // Held until the e-mail assignees are checked (and the rows' date orders confirmed).
    let mut printer = ProblemPrinter::new(50).holding(true);
    let count = stage.for_each_row(|event| {
        match event {
            RowEvent::Valid { report, planned, row } => {
                report.outcome = Outcome::NotSent;
                report.title = Some(planned.body.title.clone());
                let cells = raw_cells(row);
                rows.push_parts(&RowParts {
                    report,
                    planned: Some(planned),
                    cells: &cells,
                })?;
            }
            RowEvent::Invalid { report, problems, row } => {
                for p in &problems {
                    printer.add(p, &problem);
                }
                let cells = row.map(raw_cells).unwrap_or_default();
                rows.push_parts(&RowParts {
                    report,
                    planned: None,
                    cells: &cells,
                })?;
            }
        }
        Ok(())
    })?;
    super::tell_date_notes(stage);
    Ok(ReadAll { count, rows, printer })
}

/// What the ledger holds, read without making or locking it, or why it cannot be used
/// (exit 2): another run holds it, it cannot be read.
fn ledger_as_it_stands(path: &Path) -> anyhow::Result<Option<LedgerSnapshot>> {
    let refused = |e: LedgerError| SetupError::new(e.to_string());
    refuse_if_held(path).map_err(refused)?;
    Ok(LedgerSnapshot::read(path).map_err(refused)?)
}

/// Opens the ledger, or says why not (exit 2): locked by another run, unreadable.
fn open_ledger(path: &Path) -> anyhow::Result<Ledger> {
    let new = !path.exists();
    let (ledger, notes) = Ledger::open(path).map_err(|e| SetupError::new(e.to_string()))?;
    if new {
        say(&format!("ledger: starting a new one at {}", path.display()));
    }
    if let Some(line) = notes.torn_line {
        say(&format!(
            "warning: the last line ({line}) of the ledger {} was cut short, probably by a crash or power cut; it was ignored",
            path.display()
        ));
    }
    Ok(ledger)
}

/// The state of an upload run: every row (its report line, request and cells), and where
/// the failed rows go.
struct UploadRun {
    /// Shared with the upload's sink while rows are sent.
    rows: Arc<Mutex<Rows>>,
    failed_path: Option<PathBuf>,
    /// The input's layout, for the failed-rows file.
    failed_shape: FailedRowsShape,
    headers: Vec<String>,
    started: Instant,
    requests_sent: usize,
    send_rate: f64,
    ledger: Option<Ledger>,
    /// The rows' `invalid:` lines, held back until the e-mail assignees are checked, so
    /// those no user has take their places in row order ([`UploadRun::tell_problems`]).
    problems: ProblemPrinter,
    /// Lines about whole date columns, said after the rows'.
    column_problems: Vec<String>,
    /// Stops the run: Ctrl-C and SIGTERM from before the first request (see
    /// [`UploadRun::watch_signals`]), and the upload's own reasons.
    stop: StopSignal,
    signals: Option<tokio::task::JoinHandle<()>>,
    /// A report or failed-rows write that failed after rows were sent: the run still
    /// ends with its real counts, and this error, in the summary (exit 2).
    write_error: Option<String>,
    /// The fields that identify a row across runs.
    key: KeySpec,
    /// Requests the lookups of existing runs took.
    lookups: usize,
    /// Rows whose runs the lookups found.
    found_at_service: usize,
    /// What kept the valid rows from being sent, when the run stopped before its upload.
    not_sent_for: Option<Cause>,
    /// What the ledger held when the run started, until the ledger itself is opened.
    known: Option<LedgerSnapshot>,
}

impl UploadRun {
    fn new(read: ReadAll, stage: &mut ReadStage, failed_path: Option<PathBuf>, started: Instant) -> UploadRun {
        UploadRun {
            rows: Arc::new(Mutex::new(read.rows)),
            failed_path,
            failed_shape: stage.failed_rows_shape(),
            headers: stage.headers.clone(),
            started,
            requests_sent: 0,
            send_rate: 0.0,
            ledger: None,
            // The invalid lines are said once the e-mail assignees are checked too, in row order.
            problems: read.printer,
            column_problems: stage.take_column_problems(),
            stop: StopSignal::default(),
            signals: None,
            write_error: None,
            key: stage.key().clone(),
            lookups: 0,
            found_at_service: 0,
            not_sent_for: None,
            known: None,
        }
    }

    /// From the first request on, Ctrl-C and SIGTERM stop the run instead of killing it, so
    /// an interrupt during the lookups before the upload still writes the report and the
    /// summary (exit 130), like one during the upload.
    fn watch_signals(&mut self) {
        if self.signals.is_none() {
            self.signals = Some(watch_signals(self.stop.clone()));
        }
    }

    /// Interrupted before the upload: every row not done is `not_sent`, and why (exit 130).
    fn finish_interrupted(mut self, settings: &ImportSettings) -> anyhow::Result<Exit> {
        self.tell_problems();
        self.say_what_the_ledger_holds(settings, &settings.service.base_url)?;
        self.mark_planned_not_sent("not sent: the run was interrupted")?;
        self.write_report(settings)?;
        self.complete(Exit::Interrupted, settings, Some(StopReason::Interrupted))
    }

    /// The run's rows. A lock poisoned by a panic elsewhere still holds good rows.
    fn rows(&self) -> MutexGuard<'_, Rows> {
        self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The request of the row whose report line is `index`.
    fn planned_row(&self, index: usize) -> anyhow::Result<PlannedRow> {
        let record = self.rows().get(index)?;
        record
            .planned
            .ok_or_else(|| anyhow::anyhow!("row {} has no request", record.report.row))
    }

    /// Whether some valid row's request is as `wanted` says.
    fn any_planned(&self, wanted: impl Fn(&PlannedRow) -> bool) -> anyhow::Result<bool> {
        let mut any = false;
        self.rows().for_each_planned(|_, r| {
            any = any || r.planned.as_ref().is_some_and(&wanted);
            Ok(false)
        })?;
        Ok(any)
    }

    /// The report, every row's line in input order, when nothing was sent.
    fn write_report(&self, settings: &ImportSettings) -> anyhow::Result<()> {
        let mut report = ReportWriter::create(&settings.report, ReportFormat::from_path(&settings.report))?;
        for row in self.rows().reports() {
            report.append(&row?)?;
        }
        report.finish(None)?;
        Ok(())
    }

    /// Everything after the reading: the invalid rows' verdict, the service reached, the
    /// ledger's say, the upload, and the summary.
    async fn run(mut self, settings: &ImportSettings) -> anyhow::Result<Exit> {
        if self.nothing_valid() {
            return self.finish_nothing_valid(settings);
        }
        self.watch_signals();
        if self.invalid_count() > 0 && !settings.skip_invalid {
            return self.refuse_invalid(settings).await;
        }
        self.ready_to_send(settings)?;
        // A failure to reach the service still leaves a report: every row not sent, and why.
        let stop = self.stop.clone();
        let (client, _sandbox) = match stop.unless_stopped(self.prepare(settings)).await {
            None => return self.finish_interrupted(settings),
            Some(Ok(ready)) => ready,
            Some(Err(e)) => {
                error(&format!("{e:#}"));
                // E-mail assignees are unresolved here, so a row without a human_id that had
                // one may not be found.
                self.say_what_the_ledger_holds(settings, &settings.service.base_url)?;
                self.mark_planned_not_sent(&format!("not sent: {e:#}"))?;
                return self.finish_without_upload(SetupError::exit_of(&e), settings);
            }
        };
        // E-mail assignees no user has may have left no valid row.
        if self.nothing_valid() {
            return self.finish_nothing_valid(settings);
        }
        if self.invalid_count() > 0 && !settings.skip_invalid {
            self.write_plan(settings.plan.as_deref(), None)?;
            let invalid = self.invalid_count();
            self.say_what_the_ledger_holds(settings, client.base_url())?;
            self.mark_planned_not_sent(&format!(
                "not sent: {invalid} row(s) are invalid, so nothing was sent (fix them, or pass --skip-invalid)"
            ))?;
            say(&format!("{} invalid: nothing was sent.", plural(invalid, "row")));
            return self.finish_without_upload(Exit::Invalid, settings);
        }
        self.upload(settings, client).await
    }

    /// Some rows are invalid and `--skip-invalid` is not given: nothing is sent (exit 3).
    /// The e-mail assignees are still checked, so every problem is reported at once.
    async fn refuse_invalid(mut self, settings: &ImportSettings) -> anyhow::Result<Exit> {
        let stop = self.stop.clone();
        if stop
            .unless_stopped(self.resolve_assignees_anyway(settings))
            .await
            .is_none()
        {
            return self.finish_interrupted(settings);
        }
        // The plan still shows what the valid rows would send.
        self.write_plan(settings.plan.as_deref(), None)?;
        // E-mail assignees no user has may have left no valid row.
        if self.nothing_valid() {
            return self.finish_nothing_valid(settings);
        }
        let invalid = self.invalid_count();
        self.say_what_the_ledger_holds(settings, &settings.service.base_url)?;
        self.mark_planned_not_sent(&format!(
            "not sent: {invalid} row(s) of the file are invalid, so nothing was sent (fix them, or pass --skip-invalid to send the valid rows)"
        ))?;
        say(&format!(
            "{invalid} of {} rows are invalid: nothing was sent. Fix them (see the report), or pass --skip-invalid to send the valid rows.",
            self.rows().len()
        ));
        self.finish_without_upload(Exit::Invalid, settings)
    }

    /// Says the `invalid:` lines held back (offline problems and e-mail addresses no user
    /// has, in row order), then the date columns'. Says nothing the second time.
    fn tell_problems(&mut self) {
        self.problems.finish(&problem);
        for line in self.column_problems.drain(..) {
            say(&line);
        }
    }

    /// `--plan`: the exact requests of the valid rows, or of those `to_send` names.
    fn write_plan(&self, path: Option<&Path>, to_send: Option<&[ToSend]>) -> anyhow::Result<()> {
        let Some(path) = path else { return Ok(()) };
        let mut plan = open_plan(path)?;
        let cannot = || format!("--plan: cannot write {}", path.display());
        let mut rows = self.rows();
        let indexes = match to_send {
            Some(to_send) => to_send.iter().map(|t| t.index).collect(),
            None => rows.planned_indexes(),
        };
        for index in indexes {
            if let Some(p) = rows.get(index)?.planned {
                plan.write_all(&plan_line(&p)).with_context(cannot)?;
            }
        }
        plan.flush().with_context(cannot)
    }

    fn invalid_count(&self) -> usize {
        self.rows()
            .outcomes()
            .iter()
            .filter(|o| **o == Outcome::Invalid)
            .count()
    }

    /// For a run that sends nothing: rows the ledger shows as done are said to be done
    /// (`already_imported`, with the earlier ids), not merely `not_sent`.
    fn say_what_the_ledger_holds(&mut self, settings: &ImportSettings, base_url: &str) -> anyhow::Result<()> {
        let known = self.ledger.as_ref().map(Ledger::known).or(self.known.as_ref());
        self.sort_rows(known, &settings.rerun(), base_url).map(drop)
    }

    /// Sorts every valid row by what the ledger knows (see [`Sorted::sort_row`]).
    fn sort_rows(
        &self,
        known: Option<&LedgerSnapshot>,
        rerun: &crate::ledger::policy::Rerun,
        base_url: &str,
    ) -> anyhow::Result<Sorted> {
        let none = LedgerSnapshot::default();
        let known = known.unwrap_or(&none);
        let keys = (ledger_base(rerun, base_url), &self.key);
        let mut sorted = Sorted::default();
        self.rows().for_each_planned(|index, record| {
            let RowRecord { report, planned, .. } = record;
            let Some(p) = planned else { return Ok(false) };
            Ok(sorted.sort_row((index, report, p), keys, known, rerun))
        })?;
        Ok(sorted)
    }

    /// The last step before a request can be sent. A run that could send none (no key, a
    /// base URL that is refused) stops here with a setup error, leaving the last report,
    /// failed-rows file and ledger as they were; otherwise the ledger is made and locked.
    fn ready_to_send(&mut self, settings: &ImportSettings) -> anyhow::Result<()> {
        let ready = can_connect(&settings.service)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                // The ledger reads its own index: the snapshot goes first, so the two are never
                // held at once (each is tens of MB at a million rows).
                self.known = None;
                settings.state.as_deref().map(open_ledger).transpose()
            });
        match ready {
            Ok(ledger) => {
                self.ledger = ledger;
                Ok(())
            }
            Err(e) => {
                self.tell_problems();
                Err(e)
            }
        }
    }

    /// Every valid row not yet accounted for (by the ledger) is `not_sent`, for `why`.
    fn mark_planned_not_sent(&mut self, why: &str) -> anyhow::Result<()> {
        self.rows().for_each_planned(|_, record| {
            let not_sent = record.report.outcome == Outcome::NotSent;
            if not_sent {
                record.report.error = Some(why.to_string());
            }
            Ok(not_sent)
        })
    }

    /// Moves rows that cannot be sent (e.g. an unknown assignee e-mail) to invalid.
    fn invalidate(&mut self, index: usize, error: String) -> anyhow::Result<()> {
        self.rows().update(index, |record| {
            record.planned = None;
            record.report.outcome = Outcome::Invalid;
            record.report.error = Some(error);
            (true, ())
        })?;
        Ok(())
    }

    /// Reaches the service and resolves e-mail assignees: everything before the first POST.
    async fn prepare(&mut self, settings: &ImportSettings) -> anyhow::Result<(ApiClient, Option<Sandbox>)> {
        let ready = async {
            let (client, sandbox) = connect(&settings.service, settings.read.quiet).await?;
            let client = client.with_read_retries(settings.max_retries).paced(settings.rate);
            let skipped = self.skipped_emails(settings)?;
            resolve_assignees(self, &client, &skipped).await?;
            resolve_test_cases(self, &client, &skipped).await?;
            Ok((client, sandbox))
        }
        .await;
        self.tell_problems();
        if let Err(e) = &ready {
            self.not_sent_for = Some(cause_of(e));
        }
        ready
    }

    /// The valid rows with an e-mail assignee that the ledger shows this run will not send,
    /// by index: they need no `GET /users` (see [`skipped_by_key`]).
    fn skipped_emails(&self, settings: &ImportSettings) -> anyhow::Result<HashSet<usize>> {
        let mut skipped = HashSet::new();
        let Some(known) = self.ledger.as_ref().map(Ledger::known).or(self.known.as_ref()) else {
            return Ok(skipped);
        };
        let rerun = settings.rerun();
        let base_url = ledger_base(&rerun, &settings.service.base_url);
        self.rows().for_each_planned(|index, record| {
            if let Some(p) = &record.planned
                && p.unresolved()
                && skipped_by_key(known, &rerun, &self.key, base_url, p)
            {
                skipped.insert(index);
            }
            Ok(false)
        })?;
        Ok(skipped)
    }

    /// Rows already invalid mean nothing is sent, but an e-mail assignee that matches no
    /// user is a problem too, and every problem is reported at once: the service is asked
    /// all the same. If it cannot be (no key, unreachable), that is said and is no error.
    async fn resolve_assignees_anyway(&mut self, settings: &ImportSettings) {
        let mut resolved = Ok(());
        let needed = self.any_planned(|p| p.assignee_email.is_some() || p.test_case_refs.is_some());
        if needed.unwrap_or(true) {
            resolved = async {
                let skipped = self.skipped_emails(settings)?;
                let (client, _sandbox) = connect(&settings.service, true).await?;
                let client = client.with_read_retries(settings.max_retries).paced(settings.rate);
                resolve_assignees(self, &client, &skipped).await?;
                resolve_test_cases(self, &client, &skipped).await
            }
            .await;
        }
        self.tell_problems();
        if let Err(e) = resolved {
            say(&format!(
                "note: assignees and test case human ids were not checked against the service: {e:#}"
            ));
        }
    }

    /// Every row is invalid (offline, or for an e-mail no user has): nothing to send,
    /// `--skip-invalid` or not.
    fn nothing_valid(&self) -> bool {
        let rows = self.rows();
        rows.outcomes().contains(&Outcome::Invalid)
            && (0..rows.len())
                .filter(|i| rows.is_planned(*i))
                .all(|i| rows.outcome(i) == Outcome::Invalid)
    }

    /// A file with headers and no rows: exit 0, a report with no rows, no failed-rows file
    /// (a stale one is removed), and no ledger made: nothing could be sent.
    fn finish_quiet_night(mut self, settings: &ImportSettings) -> anyhow::Result<Exit> {
        self.tell_problems();
        say(&quiet_night(&settings.read, self.failed_shape.header_row));
        self.finish_without_upload(Exit::Ok, settings)
    }

    /// Validation failed and nothing was sent: exit 3.
    fn finish_nothing_valid(mut self, settings: &ImportSettings) -> anyhow::Result<Exit> {
        self.tell_problems();
        say(&format!(
            "all {} rows are invalid: nothing was sent. Fix them (see the report).",
            self.rows().len()
        ));
        self.finish_without_upload(Exit::Invalid, settings)
    }

    fn finish_without_upload(mut self, exit: Exit, settings: &ImportSettings) -> anyhow::Result<Exit> {
        self.tell_problems();
        self.write_report(settings)?;
        self.complete(exit, settings, None)
    }

    /// The failed-rows file: every row not done (invalid, failed, not sent, unknown), in
    /// input order, so that importing it, fixed, finishes the job.
    fn write_failed_rows(&mut self) -> anyhow::Result<Option<PathBuf>> {
        let headers = std::mem::take(&mut self.headers);
        let mut failed = FailedRowsWriter::new(self.failed_path.clone(), headers, self.failed_shape);
        let mut rows = self.rows();
        for index in 0..rows.len() {
            let outcome = rows.outcome(index);
            if outcome == Outcome::Invalid || (rows.is_planned(index) && !outcome.is_done()) {
                let record = rows.get(index)?;
                failed.write(&record.cells, record.report.error.as_deref().unwrap_or(""))?;
            }
        }
        Ok(failed.finish()?)
    }

    /// What the summary says of the rows, from every row's report line.
    fn digest(&self) -> anyhow::Result<Digest> {
        let mut digest = Digest::new(self.not_sent_for);
        for report in self.rows().reports() {
            digest.add(&report?);
        }
        Ok(digest)
    }

    /// Writes the failed-rows file, prints the summary, writes --summary-json.
    fn complete(mut self, exit: Exit, settings: &ImportSettings, stop: Option<StopReason>) -> anyhow::Result<Exit> {
        let failed_file = match self.write_failed_rows() {
            Ok(file) => file,
            // Rows may have been created: the summary still carries the real counts.
            Err(e) if self.requests_sent > 0 => {
                self.write_error.get_or_insert(format!("{e:#}"));
                None
            }
            Err(e) => return Err(e),
        };
        // The records of what was done are incomplete: exit 2, whatever the rows' outcomes.
        let exit = if self.write_error.is_some() { Exit::Setup } else { exit };
        let not_sent_for = self.not_sent_for.or(stop.as_ref().map(cause_of_stop));
        self.not_sent_for = not_sent_for;
        let digest = self.digest()?;
        let (counts, rows) = {
            let rows = self.rows();
            (tally(rows.outcomes()), rows.len())
        };
        let summary = RunSummary {
            counts,
            rows,
            run: run_info(settings, self.started),
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            requests_sent: self.requests_sent,
            effective_rate: self.send_rate,
            exit_code: exit,
            report: Some(settings.report.display().to_string()),
            failed_rows_file: failed_file.as_ref().map(|p| p.display().to_string()),
            state: settings.state.as_ref().map(|p| p.display().to_string()),
            dry_run: false,
            error: self.write_error.clone(),
        };
        print_summary(
            &digest,
            &summary,
            stop.as_ref(),
            &settings.report,
            failed_file.as_deref(),
        );
        write_summary_json(settings.summary_json.as_deref(), &summary)?;
        Ok(exit)
    }

    /// Sorts the rows by the ledger, then sends those it leaves, paced, each recorded as it
    /// finishes.
    async fn upload(mut self, settings: &ImportSettings, client: ApiClient) -> anyhow::Result<Exit> {
        let mut ledger = self.ledger.take();
        let rerun = settings.rerun();
        let base = ledger_base(&rerun, client.base_url()).to_owned();
        let sorted = self.sort_rows(ledger.as_ref().map(Ledger::known), &rerun, client.base_url())?;
        if let Some(why) = sorted.moved.refusal(client.base_url()) {
            error(&why);
            self.not_sent_for = Some(Cause::Other);
            self.mark_planned_not_sent(&format!("not sent: {why}"))?;
            return self.finish_without_upload(Exit::Setup, settings);
        }
        if let Some(ledger) = ledger.as_mut() {
            sorted.moved.record_here(ledger)?;
        }
        let stop = self.stop.clone();
        let looked_up = stop
            .unless_stopped(async {
                self.check_projects(&client, &sorted.to_send).await?;
                self.look_up(&client, sorted.to_send, ledger.as_mut(), (&rerun, &base))
                    .await
            })
            .await;
        let to_send = match looked_up {
            // Interrupted while asking the service: nothing was sent.
            None => {
                self.mark_planned_not_sent("not sent: the run was interrupted")?;
                return self.finish_without_upload(Exit::Interrupted, settings);
            }
            Some(Ok(to_send)) => to_send,
            Some(Err(e)) => {
                error(&format!("{e:#}"));
                self.not_sent_for = Some(cause_of(&e));
                self.mark_planned_not_sent(&format!("not sent: {e:#}"))?;
                return self.finish_without_upload(SetupError::exit_of(&e), settings);
            }
        };
        self.tell_lookups(&to_send, settings.read.quiet)?;
        // The exact requests this run sends: not those the ledger skips.
        self.write_plan(settings.plan.as_deref(), Some(&to_send))?;
        let report = self.start_report(settings)?;
        let jobs = Jobs {
            rows: self.rows.clone(),
            to_send: to_send.into_iter(),
            base,
            spec: self.key.clone(),
            ledger: ledger.is_some(),
            failed: Arc::default(),
        };
        let job_error = jobs.failed.clone();
        let sink = Arc::new(RunSink::new(
            ledger,
            report,
            self.rows.clone(),
            Progress::new(jobs.to_send.len(), settings.read.quiet),
        ));
        self.watch_signals();
        let upload_settings = UploadSettings {
            concurrency: settings.concurrency,
            max_retries: settings.max_retries,
        };
        let stats = upload(Arc::new(client), jobs, &upload_settings, sink.clone(), stop.clone()).await;
        if let Some(signals) = self.signals.take() {
            signals.abort();
        }
        self.requests_sent = stats.requests_sent;
        self.send_rate = stats.send_rate();
        tell_rate_limited(&stats, settings.rate);
        let job_error = job_error.lock().ok().and_then(|mut e| e.take());
        if let Some(e) = &job_error {
            error(e);
        }
        self.write_error = sink.finish().or(job_error);
        let stop_reason = stop.reason();
        let exit = self.exit_after_upload(stop_reason.as_ref());
        self.complete(exit, settings, stop_reason)
    }

    /// The report as the upload starts: the rows already settled (invalid, imported before,
    /// unknown); the others follow as they finish.
    fn start_report(&self, settings: &ImportSettings) -> anyhow::Result<ReportWriter> {
        let mut report = ReportWriter::create(&settings.report, ReportFormat::from_path(&settings.report))?;
        let mut rows = self.rows();
        for index in 0..rows.len() {
            if rows.outcome(index) != Outcome::NotSent {
                report.append(&rows.get(index)?.report)?;
            }
        }
        Ok(report)
    }

    /// What the lookups found, said once when they found runs (the summary counts them).
    fn tell_lookups(&self, to_send: &[ToSend], quiet: bool) -> anyhow::Result<()> {
        let found = self.found_at_service;
        if found > 0 && !quiet {
            say(&format!(
                "found {} at the service (looked up in {}); {} to send",
                plural(found, "existing run"),
                plural(self.lookups, "request"),
                to_send.len()
            ));
        }
        self.tell_changed(to_send.iter().any(|t| t.update_of().is_some()))
    }

    /// Rows whose run exists and differs: said once, with the first of them.
    fn tell_changed(&self, update: bool) -> anyhow::Result<()> {
        let mut rows = self.rows();
        let changed = rows.outcomes().iter().filter(|o| **o == Outcome::Changed).count();
        let Some(first) = rows.outcomes().iter().position(|o| *o == Outcome::Changed) else {
            return Ok(());
        };
        let first = rows.get(first)?.report.row;
        let then = if update {
            "their runs are updated"
        } else {
            "nothing was sent for them, so Testsigma keeps the earlier versions (--update-changed updates them; the report names the fields)"
        };
        say(&format!(
            "note: {} already imported {} changed since (row {first}{}); {then}",
            plural(changed, "row"),
            if changed == 1 { "has" } else { "have" },
            if changed > 1 { " first" } else { "" },
        ));
        Ok(())
    }

    /// Every project of the rows to send exists, or the run stops before sending (exit 2):
    /// one request per project instead of one failure per row.
    async fn check_projects(&self, client: &ApiClient, to_send: &[ToSend]) -> anyhow::Result<()> {
        // Each project, with its first row and how many rows it has.
        let mut projects: Vec<(String, usize, usize)> = Vec::new();
        for t in to_send {
            let p = self.planned_row(t.index)?;
            match projects.iter_mut().find(|(id, _, _)| *id == p.body.project_id) {
                Some((_, _, count)) => *count += 1,
                None => projects.push((p.body.project_id, p.row, 1)),
            }
        }
        for (project, first, count) in projects {
            let exists = client.project_exists(&project).await.map_err(|e| match e {
                // Said as they are: they are about the service, not this project.
                ApiError::Unreachable { .. } | ApiError::KeyRefused { .. } | ApiError::Redirected(_) => {
                    SetupError::new(e.to_string()).because(cause_of_answer(&e))
                }
                other => SetupError::new(format!("could not check project {project} before sending: {other}"))
                    .because(cause_of_answer(&other)),
            })?;
            if !exists {
                return Err(SetupError::new(format!(
                    "project {project} (row {first}{}) does not exist, or this key cannot see it, or --base-url is not the API root (it ends in /api/v1); nothing was sent",
                    if count > 1 { format!(" and {} more", count - 1) } else { String::new() }
                ))
                .because(Cause::Project)
                .into());
            }
        }
        Ok(())
    }

    /// The exit code of a run that got to its upload.
    fn exit_after_upload(&self, stop: Option<&StopReason>) -> Exit {
        match stop {
            Some(StopReason::Interrupted) => Exit::Interrupted,
            Some(StopReason::KeyRefused { .. } | StopReason::Redirected(_) | StopReason::Ledger(_))
            | Some(StopReason::Unreachable { .. } | StopReason::Untrusted(_)) => Exit::Setup,
            // The service answered before: rows not sent for a while, not a setup error.
            Some(StopReason::ServiceDown { .. } | StopReason::WaitTooLong { .. } | StopReason::Busy { .. }) => {
                Exit::Incomplete
            }
            None if self.rows().outcomes().iter().all(|o| o.is_done()) => Exit::Ok,
            None => Exit::Incomplete,
        }
    }
}

/// Requests the service refused for its rate limit, and the pace that came of it.
fn tell_rate_limited(stats: &crate::upload::UploadStats, rate: f64) {
    if stats.rate_limited > 0 {
        say(&format!(
            "the service refused {} request(s) for its rate limit; the pace settled at {:.1} requests/s (--rate {rate})",
            stats.rate_limited, stats.final_rate
        ));
    }
}

/// The upload jobs for the rows to send, made one at a time from the rows as places
/// free up, so a million rows to send are never all held as requests.
struct Jobs {
    rows: Arc<Mutex<Rows>>,
    to_send: std::vec::IntoIter<ToSend>,
    /// The ledger's base URL and key fields, for each row's place in the ledger.
    base: String,
    spec: KeySpec,
    /// Whether there is a ledger to record each row's place in.
    ledger: bool,
    /// A row that could not be read back: the jobs end there.
    failed: Arc<Mutex<Option<String>>>,
}

impl Iterator for Jobs {
    type Item = UploadJob;

    fn next(&mut self) -> Option<UploadJob> {
        let send = self.to_send.next()?;
        let record = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(send.index);
        let p = match record {
            Ok(RowRecord { planned: Some(p), .. }) => p,
            Ok(RowRecord { report, .. }) => {
                self.stop(format!("row {} has no request to send", report.row));
                return None;
            }
            Err(e) => {
                self.stop(format!("{e}; the rows not sent are in the report as not_sent"));
                return None;
            }
        };
        let (ledger_key, idempotency_key) = send.keys(&p, &self.base, &self.spec);
        Some(UploadJob {
            index: send.index,
            row: p.row,
            project_id: p.body.project_id.clone(),
            body: Arc::new(p.body.to_json()),
            fields: field_hashes(&p.body.to_fields()),
            idempotency_key,
            title: p.body.title.clone(),
            human_id: p.body.human_id.clone(),
            update_of: send.update_of().map(str::to_owned),
            ledger_key: self.ledger.then_some(ledger_key),
        })
    }
}

impl Jobs {
    fn stop(&mut self, error: String) {
        if let Ok(mut slot) = self.failed.lock() {
            slot.get_or_insert(error);
        }
        self.to_send = Vec::new().into_iter();
    }
}
