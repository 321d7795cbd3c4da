//! The main job, stage by stage: read → map → validate → (plan) → upload → report.
//! Setup problems (bad flags, unreadable file, refused key) are errors that end the
//! run with exit 2; a row's problem is an outcome in the report, never an abort.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};

use crate::api::{ApiClient, ApiKey, User, check_base_url};
use crate::ledger::{self, Ledger, Prior};
use crate::mapping::{ColumnMap, Field, map_headers};
use crate::model::{Outcome, ReportRow, SourceRow};
use crate::progress::Progress;
use crate::report::{
    FailedRowsShape, FailedRowsWriter, ReportFormat, ReportWriter, RunSummary, count_outcomes, failed_rows_path_beside,
};
use crate::sandbox::{Sandbox, SandboxOptions};
use crate::settings::{ImportSettings, ReadSettings, ServiceSettings};
use crate::source::prefetch::{read_ahead, read_prepared};
use crate::source::{RowSource, open_source};
use crate::upload::{StopReason, StopSignal, UploadJob, UploadSettings, UploadSink, upload};
use crate::validate::{DateEvidence, PlannedRow, Problem, ProblemKind, Validator};

pub const EXIT_OK: i32 = 0;
pub const EXIT_INCOMPLETE: i32 = 1;
pub const EXIT_SETUP: i32 = 2;
pub const EXIT_INVALID: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error that ends the run before or instead of the upload, with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SetupError {
    pub message: String,
    pub exit_code: i32,
}

/// A run's result: the exit code and the counts, for the summary and for tests.
#[derive(Debug, Clone)]
pub struct ImportResult {
    pub exit_code: i32,
    pub rows: Vec<ReportRow>,
    pub summary: RunSummary,
}

/// A file opened, its headers mapped, and a validator ready for its rows.
pub struct ReadStage {
    pub source: Box<dyn RowSource>,
    pub validator: Validator,
    pub headers: Vec<String>,
    /// Delimited text whose date columns' order is still to be learned, by reading the
    /// file again when the first value that may need it comes up: all of it, or with
    /// [`ReadStage::settle_orders_early`] only up to each column's first proving value.
    pending_order: Option<PendingOrder>,
    /// Set by [`ReadStage::settle_orders_early`].
    early: Option<EarlyOrders>,
    /// Rows read ahead by the last reading to learn orders early.
    rows_read_ahead: usize,
    column_problems_told: bool,
}

/// A date column's order taken from the first rows that prove one, and checked against
/// every row at the end of the reading (see [`ReadStage::settle_orders_early`]).
#[derive(Default)]
struct EarlyOrders {
    /// The date values of every row read so far.
    seen: DateEvidence,
    /// The columns whose order came from the first rows only.
    guessed: Vec<Field>,
    /// Rows the readings for the first proofs went through.
    rows_read_ahead: usize,
}

/// Returned by [`ReadStage::for_each_row`] when a date column's order, taken from its
/// first rows, is overturned by a later one: the rows it gave are not to be used. Open
/// the input again and read it without [`ReadStage::settle_orders_early`].
#[derive(Debug)]
pub struct OrdersOverturned {
    pub column: String,
}

impl std::fmt::Display for OrdersOverturned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a later value of the date column `{}` overturned the dd/mm order of its first ones; read the file again",
            self.column
        )
    }
}

impl std::error::Error for OrdersOverturned {}

/// What reading the date columns again takes: the input, opened afresh.
struct PendingOrder {
    read: ReadSettings,
    columns: Vec<usize>,
}

/// Opens the input and maps its headers. Unless `--date-order` settles it, a workbook's
/// date columns are read now for their dd/mm order; delimited text learns it later, when
/// a row first needs it ([`ReadStage::for_each_row`]).
pub fn open_read_stage(read: &ReadSettings, progress: &dyn Fn(&str)) -> anyhow::Result<ReadStage> {
    let mut source = open_source(&read.input, &read.source).map_err(|e| anyhow!("{e}"))?;
    let headers = source.headers().to_vec();
    if headers.iter().all(|h| h.trim().is_empty()) {
        bail!(
            "{}: the file is empty: there is no header row{}",
            read.input.display_name(),
            if read.source.header_row > 1 {
                format!(" at row {} (--header-row)", read.source.header_row)
            } else {
                String::new()
            }
        );
    }
    let map = map_headers(&headers, &read.columns).with_context(|| read.input.display_name())?;
    let warnings = map.warnings(&headers);
    // A sheet of thousands of stray columns gets a screenful, not thousands of lines.
    for warning in warnings.iter().take(20) {
        progress(&format!("warning: {warning}"));
    }
    if warnings.len() > 20 {
        progress(&format!(
            "warning: … and {} more columns that are ignored",
            warnings.len() - 20
        ));
    }
    let needs_order = read.rules.date_order.is_none()
        && (map.column(Field::StartDate).is_some() || map.column(Field::EndDate).is_some());
    let columns: Vec<usize> = [Field::StartDate, Field::EndDate]
        .into_iter()
        .filter_map(|f| map.column(f))
        .collect();
    let mut evidence = DateEvidence::default();
    let mut pending_order = None;
    if needs_order && !source.is_workbook() {
        // Delimited text is read again only if some value turns out to need the order:
        // a file of ISO dates is read once.
        pending_order = Some(PendingOrder {
            read: read.clone(),
            columns,
        });
    } else if needs_order {
        // A workbook is in memory already: go over its date columns now.
        evidence = date_evidence(source.as_mut(), &map, &columns)?;
        source.rewind().map_err(|e| anyhow!("{e}"))?;
    }
    let mut validator = Validator::new(
        map,
        headers.clone(),
        source.is_workbook(),
        read.rules.clone(),
        &evidence,
    );
    if pending_order.is_some() {
        validator.defer_orders();
    }
    Ok(ReadStage {
        source,
        validator,
        headers,
        pending_order,
        early: None,
        rows_read_ahead: 0,
        column_problems_told: false,
    })
}

/// The evidence for each date column's dd/mm order, from every row's date columns. Only
/// those cells are filled, but every field is still checked, so this reading fails on the
/// same rows, with the same errors, as the main one (a row whose columns have shifted is
/// passed over: it proves nothing).
fn date_evidence(source: &mut dyn RowSource, map: &ColumnMap, columns: &[usize]) -> anyhow::Result<DateEvidence> {
    let mut evidence = DateEvidence::default();
    // Never stopped early: every row is read.
    let _every_row = read_ahead(source, Some(columns), |row| {
        evidence.observe(map, row);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(evidence)
}

/// Learns the date columns' order from a fresh reading of the input.
fn learn_date_orders(pending: &PendingOrder, validator: &mut Validator) -> anyhow::Result<()> {
    let mut source = open_source(&pending.read.input, &pending.read.source).map_err(|e| anyhow!("{e}"))?;
    let evidence = date_evidence(source.as_mut(), validator.column_map(), &pending.columns)?;
    validator.learn_orders(&evidence);
    Ok(())
}

/// Learns the order of the date columns that `row` needs from a fresh reading of the
/// input that stops once each of them has a value proving one. A reading that gets to
/// the end of the file settles every pending column for good; one that stops early
/// only guesses, and the guess is checked when the main reading ends.
fn learn_date_orders_early(
    pending: &PendingOrder,
    validator: &mut Validator,
    early: &mut EarlyOrders,
    row: &SourceRow,
) -> anyhow::Result<()> {
    let needed: Vec<Field> = [Field::StartDate, Field::EndDate]
        .into_iter()
        .zip(validator.columns_needing_order(row))
        .filter_map(|(field, needs)| needs.then_some(field))
        .collect();
    let mut source = open_source(&pending.read.input, &pending.read.source).map_err(|e| anyhow!("{e}"))?;
    let map = validator.column_map();
    let mut evidence = DateEvidence::default();
    // Stops once its columns prove an order.
    let read = read_ahead(source.as_mut(), Some(&pending.columns), |row| {
        early.rows_read_ahead += 1;
        evidence.observe(map, row);
        Ok(if needed.iter().all(|field| evidence.proves_an_order(*field)) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    match read {
        ControlFlow::Continue(()) => {
            for field in [Field::StartDate, Field::EndDate] {
                if validator.order_pending(field) {
                    validator.learn_order(field, &evidence);
                }
            }
        }
        ControlFlow::Break(()) => {
            for field in needed {
                validator.learn_order(field, &evidence);
                early.guessed.push(field);
            }
        }
    }
    Ok(())
}

/// One data row, read and validated, with its report line started. The report line is
/// lent, and written over for the next row: a caller that keeps it takes or clones it.
pub enum RowEvent<'a> {
    Valid {
        report: &'a mut ReportRow,
        planned: &'a PlannedRow,
        row: &'a SourceRow,
    },
    Invalid {
        report: &'a mut ReportRow,
        problems: Vec<Problem>,
        row: Option<&'a SourceRow>,
    },
}

impl ReadStage {
    /// Lets [`ReadStage::for_each_row`] take a date column's dd/mm order from the first
    /// rows that prove one, instead of reading the whole column again before the first
    /// row that needs it. Every row's dates are still gathered, and if the whole column
    /// does not settle the same order (a later value proves the other one), the reading
    /// ends with [`OrdersOverturned`] once every row has been handed over: the caller must
    /// then forget those rows and read the input again from a stage opened afresh. Only
    /// for callers that can; then a file is read once and a few rows, not twice.
    pub fn settle_orders_early(&mut self) {
        if self.pending_order.is_some() {
            self.early = Some(EarlyOrders::default());
        }
    }

    /// Whether the rows handed over may yet be overturned ([`ReadStage::settle_orders_early`]).
    pub fn settles_orders_early(&self) -> bool {
        self.early.is_some()
    }

    /// Rows the last reading read ahead to learn date orders early.
    pub fn rows_read_ahead(&self) -> usize {
        self.rows_read_ahead
    }

    /// Tells `out` each problem with a whole date column (one proves both dd/mm and mm/dd,
    /// or neither) as an `invalid:` line, once: call it before the rows and again after
    /// them, since delimited text learns its columns' order only when a row first needs it.
    pub fn tell_column_problems(&mut self, out: &dyn Fn(&str)) {
        for line in self.take_column_problems() {
            out(&line);
        }
    }

    /// The lines [`ReadStage::tell_column_problems`] would say, for saying later.
    pub fn take_column_problems(&mut self) -> Vec<String> {
        if self.column_problems_told || self.pending_order.is_some() {
            return Vec::new();
        }
        self.column_problems_told = true;
        self.validator
            .column_problems()
            .into_iter()
            .map(|message| format!("invalid: {message}"))
            .collect()
    }

    /// Reads and validates every non-blank row, in order, and hands each to `f`. A row
    /// whose columns have shifted is invalid and the rest go on; an error reading the file
    /// (bad bytes, an oversized cell) ends the run. Returns the number of data rows.
    ///
    /// Two threads share the work: one validates (in file order, so the human-id check
    /// and the date columns' order are as they would be on one), and this one parses the
    /// rows and hands them, validated, to `f`.
    pub fn for_each_row(&mut self, mut f: impl FnMut(RowEvent<'_>) -> anyhow::Result<()>) -> anyhow::Result<usize> {
        let map = self.validator.column_map().clone();
        let validator = &mut self.validator;
        let pending_order = &mut self.pending_order;
        let early = &mut self.early;
        let mut count = 0;
        // One report line for every row: its strings are written over, not made again.
        let mut report = ReportRow::default();
        let check = |row: &SourceRow, checked: &mut CheckedRow| {
            checked.state = RowState::Blank;
            if row.is_blank() {
                return Ok(());
            }
            if let Some(early) = early.as_mut() {
                early.seen.observe(validator.column_map(), row);
            }
            if let Some(pending) = pending_order.as_ref()
                && validator.row_may_need_order(row)
            {
                match early.as_mut() {
                    // The other column may yet need the input read again.
                    Some(early) => learn_date_orders_early(pending, validator, early, row)?,
                    None => {
                        learn_date_orders(pending, validator)?;
                        // Both columns are learned from the whole file: nothing is pending.
                        *pending_order = None;
                    }
                }
            }
            checked.state = match validator.validate_into(row, &mut checked.planned) {
                Ok(()) => RowState::Valid,
                Err(problems) => RowState::Invalid(problems),
            };
            Ok(())
        };
        read_prepared(self.source.as_mut(), check, |row, checked| {
            if matches!(checked.state, RowState::Blank) {
                return Ok(());
            }
            count += 1;
            start_report(&mut report, &map, row);
            match &mut checked.state {
                RowState::Valid => f(RowEvent::Valid {
                    report: &mut report,
                    planned: &checked.planned,
                    row,
                }),
                RowState::Invalid(problems) => {
                    // Taken, not borrowed: an invalid row is rare, and `f` keeps its problems.
                    let problems = std::mem::take(problems);
                    report.outcome = Outcome::Invalid;
                    report.error = Some(row_error(&problems));
                    f(RowEvent::Invalid {
                        report: &mut report,
                        problems,
                        row: Some(row),
                    })
                }
                RowState::Blank => Ok(()),
            }
        })?;
        if let Some(early) = self.early.take() {
            // The reading is over: whatever is pending now, no row needed.
            self.pending_order = None;
            self.rows_read_ahead = early.rows_read_ahead;
            for field in early.guessed {
                if !self.validator.order_holds(field, &early.seen) {
                    let column = self
                        .validator
                        .column_map()
                        .column(field)
                        .and_then(|c| self.headers.get(c))
                        .cloned()
                        .unwrap_or_default();
                    return Err(OrdersOverturned { column }.into());
                }
            }
        }
        Ok(count)
    }
}

/// What the validating thread made of one row. The request is written over by the row
/// validated next in its place, so its strings are allocated once, not once per row.
#[derive(Default)]
struct CheckedRow {
    state: RowState,
    planned: PlannedRow,
}

#[derive(Default)]
enum RowState {
    #[default]
    Blank,
    Valid,
    Invalid(Vec<Problem>),
}

fn no_data_rows(read: &ReadSettings) -> anyhow::Error {
    SetupError {
        message: format!(
            "{}: no data rows below the header row {}; nothing to import",
            read.input.display_name(),
            read.source.header_row
        ),
        exit_code: EXIT_SETUP,
    }
    .into()
}

/// Prints problems readably even when there are thousands: the first screenful in
/// full, then counts by column and kind. The report holds every one.
pub struct ProblemPrinter {
    shown: usize,
    limit: usize,
    hidden: BTreeMap<(String, ProblemKind), usize>,
    total: usize,
    /// Lines kept back until [`ProblemPrinter::release`], in row order.
    held: Option<Vec<HeldLine>>,
}

/// A problem's line kept back, with what places it among the others.
struct HeldLine {
    row: usize,
    group: (String, ProblemKind),
    line: String,
}

fn group_of(problem: &Problem) -> (String, ProblemKind) {
    (problem.column.clone().unwrap_or_default(), problem.kind)
}

impl ProblemPrinter {
    pub fn new(limit: usize) -> ProblemPrinter {
        ProblemPrinter {
            shown: 0,
            limit,
            hidden: BTreeMap::new(),
            total: 0,
            held: None,
        }
    }

    /// Keeps the lines back until [`ProblemPrinter::release`]: for a reading whose rows
    /// may be overturned ([`ReadStage::settle_orders_early`]), and for an import, whose
    /// e-mail assignees no user has are found after the reading. At most `limit` lines:
    /// the first rows' (not the first problems found), so that a problem added late for an
    /// earlier row takes its place in row order.
    pub fn holding(mut self, hold: bool) -> ProblemPrinter {
        self.held = hold.then(Vec::new);
        self
    }

    /// Says the lines kept back, and from now on says them as they come.
    pub fn release(&mut self, out: &dyn Fn(&str)) {
        for held in self.held.take().unwrap_or_default() {
            self.shown += 1;
            out(&held.line);
        }
    }

    pub fn add(&mut self, problem: &Problem, out: &dyn Fn(&str)) {
        self.total += 1;
        let Some(held) = self.held.as_mut() else {
            if self.shown < self.limit {
                self.shown += 1;
                out(&format!("invalid: {problem}"));
            } else {
                *self.hidden.entry(group_of(problem)).or_default() += 1;
            }
            return;
        };
        // After the rows of the same number, so a row's own problems keep their order.
        let at = held.partition_point(|h| h.row <= problem.row);
        if at >= self.limit {
            *self.hidden.entry(group_of(problem)).or_default() += 1;
            return;
        }
        held.insert(
            at,
            HeldLine {
                row: problem.row,
                group: group_of(problem),
                line: format!("invalid: {problem}"),
            },
        );
        if held.len() > self.limit
            && let Some(last) = held.pop()
        {
            *self.hidden.entry(last.group).or_default() += 1;
        }
    }

    /// Says the lines kept back, then the count of those not shown. Says nothing the
    /// second time.
    pub fn finish(&mut self, out: &dyn Fn(&str)) {
        self.release(out);
        let hidden: usize = self.hidden.values().sum();
        if hidden == 0 {
            return;
        }
        out(&format!("… and {hidden} more problems (every one is in the report):"));
        let hidden = std::mem::take(&mut self.hidden);
        let mut groups: Vec<_> = hidden.iter().collect();
        groups.sort_by(|a, b| b.1.cmp(a.1));
        for ((column, kind), count) in groups.iter().take(12) {
            out(&format!("  {count:>7} × {} in column `{column}`", kind.describe()));
        }
        if groups.len() > 12 {
            out(&format!("  (and {} more kinds)", groups.len() - 12));
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

fn eprint_line(line: &str) {
    crate::console::say(line);
}

/// The input's layout, which the failed-rows file keeps.
fn failed_rows_shape(read: &ReadSettings, stage: &ReadStage) -> FailedRowsShape {
    FailedRowsShape {
        delimiter: stage.source.delimiter().unwrap_or(b','),
        header_row: read.source.header_row,
    }
}

/// The text of a row's cells, for the failed-rows file.
fn raw_cells(row: &SourceRow) -> Vec<String> {
    row.cells().map(|c| c.as_text().into_owned()).collect()
}

/// Starts `report` afresh for `row`: its number, and its title and human id as the cells
/// hold them (trimmed), written over the last row's strings.
fn start_report(report: &mut ReportRow, map: &crate::mapping::ColumnMap, row: &SourceRow) {
    let ReportRow {
        row: number,
        outcome,
        test_run_id,
        test_run_human_id,
        title,
        human_id,
        http_status,
        attempts,
        error,
        request_id,
    } = report;
    *number = row.number;
    *outcome = Outcome::default();
    for slot in [test_run_id, test_run_human_id, error, request_id] {
        *slot = None;
    }
    *http_status = None;
    *attempts = 0;
    for (slot, field) in [(title, Field::Title), (human_id, Field::HumanId)] {
        let cell = map.column(field).and_then(|c| row.cell(c));
        let text = cell.map(|c| c.as_text()).unwrap_or_default();
        let text = crate::model::trim(&text);
        crate::validate::set_option(slot, Some(text).filter(|text| !text.is_empty()));
    }
}

/// One line of the plan: the exact method, path and body.
pub fn plan_line(planned: &PlannedRow) -> Vec<u8> {
    let mut line = Vec::with_capacity(1024);
    crate::json::write_plan_line(&mut line, planned);
    line
}

/// `--plan FILE`, or standard output for `-` (nothing else of the tool's goes there).
fn open_plan(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    // A plan runs to about 760 bytes a row: in 1 MB writes, a million rows take 700 system
    // calls instead of 90,000.
    const PLAN_BUFFER: usize = 1 << 20;
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufWriter::with_capacity(
            PLAN_BUFFER,
            std::io::stdout(),
        )));
    }
    let file = std::fs::File::create(path).with_context(|| format!("--plan: cannot create {}", path.display()))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(PLAN_BUFFER, file)))
}

/// No file the run writes may be the input it reads (a report named like the input
/// would destroy it). Returns the failed-rows file's path.
fn check_outputs(settings: &ImportSettings) -> anyhow::Result<Option<PathBuf>> {
    let failed = failed_rows_path_beside(&settings.report);
    let mut outputs: Vec<(&str, &Path)> = vec![("--report", &settings.report)];
    outputs.extend(
        failed
            .as_deref()
            .map(|p| ("the failed-rows file (named after --report)", p)),
    );
    outputs.extend(
        settings
            .plan
            .as_deref()
            .filter(|p| *p != Path::new("-"))
            .map(|p| ("--plan", p)),
    );
    outputs.extend(settings.state.as_deref().map(|p| ("--state", p)));
    outputs.extend(settings.summary_json.as_deref().map(|p| ("--summary-json", p)));
    // Files the run reads: writing an output over one would destroy it.
    let mut read: Vec<(&str, &Path)> = Vec::new();
    if let crate::source::Input::File(input) = &settings.read.input {
        read.push(("the input file", input));
    }
    read.extend(settings.config_path.as_deref().map(|p| ("the config file", p)));
    for (i, (name, path)) in outputs.iter().enumerate() {
        // A device (`/dev/null`) may take several outputs; a file holds one.
        if crate::report::is_special_file(path) {
            continue;
        }
        let mut earlier = read
            .iter()
            .map(|(what, p)| ((*what).to_owned(), *p))
            .chain(outputs[..i].iter().map(|(what, p)| (format!("also {what}"), *p)));
        if let Some((other, _)) = earlier.find(|(_, other)| crate::settings::same_file(other, path)) {
            bail!(SetupError {
                message: format!(
                    "{name} {} is {other}, which the run would overwrite; choose another name",
                    path.display(),
                ),
                exit_code: EXIT_SETUP,
            });
        }
    }
    if let Some(path) = &settings.summary_json {
        check_writable(path).map_err(|e| SetupError {
            message: format!("--summary-json: cannot write {}: {e}", path.display()),
            exit_code: EXIT_SETUP,
        })?;
    }
    Ok(failed)
}

/// Whether `path` can be written, found out before anything is sent rather than after:
/// the summary is written last. Leaves no file behind that was not there.
fn check_writable(path: &Path) -> std::io::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    if !existed {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

fn row_error(problems: &[Problem]) -> String {
    problems.iter().map(Problem::in_row).collect::<Vec<_>>().join("; ")
}

/// Runs `pass` over the rows of `stage`. When a date column's order, taken from its first
/// rows, is overturned by a later row, what the pass made is dropped and it runs once more
/// over the input opened again, which learns each order from the whole column.
fn read_again_if_overturned<T>(
    read: &ReadSettings,
    stage: &mut ReadStage,
    mut pass: impl FnMut(&mut ReadStage) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match pass(stage) {
        Err(e) if e.is::<OrdersOverturned>() => {
            *stage = open_read_stage(read, &|_| {})?;
            pass(stage)
        }
        result => result,
    }
}

/// Runs `import`. Returns the exit code and rows; a setup error is an `Err`.
pub async fn run_import(settings: ImportSettings) -> anyhow::Result<ImportResult> {
    let started = Instant::now();
    let quiet = settings.read.quiet;
    let say = |line: &str| {
        if !quiet || line.starts_with("warning") {
            eprint_line(line);
        }
    };
    let failed_path = check_outputs(&settings)?;
    // Two runs on one ledger: the second refuses at once, before reading anything.
    let ledger = match (&settings.state, settings.dry_run) {
        (Some(path), false) => Some(open_ledger(path)?),
        _ => None,
    };
    // From here on this run owns its outputs; a setup error is said in --summary-json too,
    // so a nightly job's monitor does not read last night's success.
    let (summary_path, is_dry_run) = (settings.summary_json.clone(), settings.dry_run);
    let said = |e: anyhow::Error| setup_error_in_summary(summary_path.as_deref(), is_dry_run, started, e);
    let mut stage = open_read_stage(&settings.read, &say).map_err(said)?;
    stage.tell_column_problems(&eprint_line);
    // Outputs that can be written again from the start let a dry run read the file once.
    let rewritable = |path: &Path| path != Path::new("-") && !crate::report::is_special_file(path);
    if !settings.dry_run || (rewritable(&settings.report) && settings.plan.as_deref().is_none_or(rewritable)) {
        stage.settle_orders_early();
    }
    if settings.dry_run {
        // Every output is written anew on a second pass, and the problems held back are not said.
        let result = read_again_if_overturned(&settings.read, &mut stage, |stage| {
            dry_run(&settings, stage, failed_path.clone(), started)
        });
        return result.map_err(said);
    }

    // Every row is read and validated before anything is sent.
    let read = read_again_if_overturned(&settings.read, &mut stage, read_all);
    let ReadAll {
        count,
        rows,
        planned,
        invalid_cells,
        printer,
    } = read.map_err(said)?;

    let mut run = UploadRun::new(rows, planned, invalid_cells, failed_path, started);
    // The invalid lines are said once the e-mail assignees are checked too, in row order.
    run.problems = printer;
    run.column_problems = stage.take_column_problems();
    if count == 0 {
        run.tell_problems();
        return Err(said(no_data_rows(&settings.read)));
    }
    run.ledger = ledger;
    run.failed_shape = failed_rows_shape(&settings.read, &stage);
    run.headers = stage.headers.clone();
    if run.nothing_valid() {
        return run.finish_nothing_valid(&settings).map_err(said);
    }
    if run.invalid_count() > 0 && !settings.skip_invalid {
        run.resolve_assignees_anyway(&settings).await;
        // The plan still shows what the valid rows would send.
        run.write_plan(settings.plan.as_deref(), |_| true).map_err(said)?;
        // E-mail assignees no user has may have left no valid row.
        if run.nothing_valid() {
            return run.finish_nothing_valid(&settings).map_err(said);
        }
        let invalid = run.invalid_count();
        run.say_what_the_ledger_holds(&settings, &settings.service.base_url);
        run.mark_planned_not_sent(&format!(
            "not sent: {invalid} row(s) of the file are invalid, so nothing was sent (fix them, or pass --skip-invalid to send the valid rows)"
        ));
        eprint_line(&format!(
            "{invalid} of {} rows are invalid: nothing was sent. Fix them (see the report), or pass --skip-invalid to send the valid rows.",
            run.rows.len()
        ));
        return run.finish_without_upload(EXIT_INVALID, &settings).map_err(said);
    }
    run.upload(&settings).await.map_err(said)
}

/// Every row of the input, read and validated: the report rows in input order, the
/// valid rows' requests (with their cells, for the failed-rows file) and the invalid
/// rows' cells, by report index.
struct ReadAll {
    count: usize,
    rows: Vec<ReportRow>,
    planned: Vec<(usize, PlannedRow, Vec<String>)>,
    invalid_cells: Vec<(usize, Vec<String>)>,
    printer: ProblemPrinter,
}

fn read_all(stage: &mut ReadStage) -> anyhow::Result<ReadAll> {
    let mut rows: Vec<ReportRow> = Vec::new();
    let mut planned: Vec<(usize, PlannedRow, Vec<String>)> = Vec::new();
    let mut invalid_cells: Vec<(usize, Vec<String>)> = Vec::new();
    // Held until the e-mail assignees are checked (and the rows' date orders confirmed).
    let mut printer = ProblemPrinter::new(50).holding(true);
    let count = stage.for_each_row(|event| {
        let index = rows.len();
        match event {
            RowEvent::Valid {
                report,
                planned: p,
                row,
            } => {
                report.outcome = Outcome::NotSent;
                report.title = Some(p.body.title.clone());
                planned.push((index, p.clone(), raw_cells(row)));
                rows.push(std::mem::take(report));
            }
            RowEvent::Invalid { report, problems, row } => {
                for p in &problems {
                    printer.add(p, &eprint_line);
                }
                invalid_cells.push((index, row.map(raw_cells).unwrap_or_default()));
                rows.push(std::mem::take(report));
            }
        }
        Ok(())
    })?;
    Ok(ReadAll {
        count,
        rows,
        planned,
        invalid_cells,
        printer,
    })
}

fn dry_run(
    settings: &ImportSettings,
    stage: &mut ReadStage,
    failed_path: Option<PathBuf>,
    started: Instant,
) -> anyhow::Result<ImportResult> {
    let format = ReportFormat::from_path(&settings.report);
    let mut writer = ReportWriter::create(&settings.report, format)?.flush_each_row(false);
    let mut plan = settings.plan.as_deref().map(open_plan).transpose()?;
    let shape = failed_rows_shape(&settings.read, stage);
    let mut failed = FailedRowsWriter::new(failed_path, stage.headers.clone(), shape);
    let mut printer = ProblemPrinter::new(50).holding(stage.settles_orders_early());
    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    let mut unresolved = 0usize;
    let mut ledger_view = LedgerView::open(settings);
    let mut plan_buffer = Vec::with_capacity(1024);
    let total = stage.for_each_row(|event| {
        let line = match event {
            RowEvent::Valid { report, planned: p, .. } => {
                if let Some(plan) = plan.as_mut() {
                    plan_buffer.clear();
                    crate::json::write_plan_line(&mut plan_buffer, p);
                    plan.write_all(&plan_buffer).context("--plan: cannot write the plan")?;
                }
                if let Some(email) = p.assignee_email.as_ref().map(|a| &a.email) {
                    unresolved += 1;
                    report.error = Some(format!(
                        "assignee {email} is resolved to a user id through GET /users at import time"
                    ));
                }
                if let Some(note) = ledger_view.as_mut().and_then(|view| view.note(p, settings)) {
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
                    printer.add(p, &eprint_line);
                }
                let cells = row.map(raw_cells).unwrap_or_default();
                failed.write(&cells, report.error.as_deref().unwrap_or(""))?;
                report
            }
        };
        *counts.entry(line.outcome).or_default() += 1;
        writer.append(line)?;
        Ok(())
    })?;
    printer.finish(&eprint_line);
    stage.tell_column_problems(&eprint_line);
    if let Some(plan) = plan.as_mut() {
        plan.flush().context("--plan: cannot write the plan")?;
    }
    writer.finish(None)?;
    let failed_file = failed.finish()?;
    if total == 0 {
        return Err(no_data_rows(&settings.read));
    }
    let invalid = counts.get(&Outcome::Invalid).copied().unwrap_or(0);
    let exit_code = if invalid > 0 { EXIT_INVALID } else { EXIT_OK };
    let planned = counts.get(&Outcome::Planned).copied().unwrap_or(0);
    let mut all_counts = BTreeMap::new();
    for o in Outcome::ALL {
        all_counts.insert(o.as_str().to_string(), counts.get(&o).copied().unwrap_or(0));
    }
    let summary = RunSummary {
        counts: all_counts,
        rows: total,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        requests_sent: 0,
        effective_rate: 0.0,
        exit_code,
        report: Some(settings.report.display().to_string()),
        failed_rows_file: failed_file.as_ref().map(|p| p.display().to_string()),
        dry_run: true,
        error: None,
    };
    eprint_line(&format!(
        "dry run: {}: {planned} planned, {invalid} invalid; nothing was sent ({:.2} s)",
        plural(total, "row"),
        summary.elapsed_seconds
    ));
    if unresolved > 0 {
        eprint_line(&format!(
            "note: {unresolved} row(s) give the assignee as an e-mail address; offline it is unresolved, and an import resolves it through GET /users"
        ));
    }
    if let Some(view) = &ledger_view {
        eprint_line(&view.summary(planned));
    }
    eprint_line(&format!("report: {}", settings.report.display()));
    if let Some(plan) = &settings.plan
        && plan != Path::new("-")
    {
        eprint_line(&format!("plan: {}", plan.display()));
    }
    if let Some(f) = &failed_file {
        eprint_line(&format!(
            "invalid rows: {} (fix them there and import that file)",
            f.display()
        ));
    }
    if invalid > 0 {
        eprint_line(&format!("{invalid} of {total} rows are invalid (exit 3)."));
    }
    write_summary_json(settings, &summary)?;
    Ok(ImportResult {
        exit_code,
        rows: Vec::new(),
        summary,
    })
}

/// Each planned row's ledger scope and key, as an import computes them.
struct RowKeys {
    base: String,
    /// Rows without a human_id seen so far, by key: identical rows are distinct runs, so
    /// the later copies are numbered. (Rows with one are unique, or they were invalid.)
    occurrences: HashMap<String, usize>,
}

impl RowKeys {
    fn new(base: &str) -> RowKeys {
        RowKeys {
            base: base.to_string(),
            occurrences: HashMap::new(),
        }
    }

    fn key(&mut self, p: &PlannedRow, body: &[u8]) -> (String, String) {
        let base_key = ledger::row_key(p.body.human_id.as_deref(), &p.body.project_id, body);
        let key = if base_key.starts_with("human_id:") {
            base_key
        } else {
            let seen = self.occurrences.entry(base_key).or_insert(0);
            let key = copy_key(p, body, *seen);
            *seen += 1;
            key
        };
        (ledger::scope(&self.base, &p.body.project_id), key)
    }
}

/// The key of the `n`-th (from 0) of identical rows without a human_id.
fn copy_key(p: &PlannedRow, body: &[u8], n: usize) -> String {
    if n == 0 {
        return ledger::row_key(None, &p.body.project_id, body);
    }
    let mut numbered = body.to_vec();
    numbered.extend_from_slice(format!("#{n}").as_bytes());
    ledger::row_key(None, &p.body.project_id, &numbered)
}

/// Identical rows without a human_id are told apart only by their order in the file. When
/// the ledger knows more copies of a row than this file holds (a failed-rows file, a sheet
/// with a copy deleted) and they did not all end the same way, which of them this file's
/// copies are cannot be known: taken for the created one, a failed copy would be lost; taken
/// for a failed one, a created copy would be made twice. Such rows are not sent; the
/// message says why and what to do.
fn unmatched_copies(
    known: &ledger::LedgerSnapshot,
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
fn known_copies<'a>(
    known: &'a ledger::LedgerSnapshot,
    scope: &'a str,
    p: &'a PlannedRow,
    body: &'a [u8],
) -> impl Iterator<Item = &'a Prior> + 'a {
    (0..).map_while(move |n| known.prior(scope, &copy_key(p, body, n)))
}

/// [`unmatched_copies`] at this run's address, or else at the one `--moved-from` names,
/// whose rows this run takes over.
fn unmatched_copies_here_or_moved(
    known: &ledger::LedgerSnapshot,
    settings: &ImportSettings,
    scope: &str,
    p: &PlannedRow,
    body: &[u8],
    in_file: usize,
) -> Option<String> {
    unmatched_copies(known, scope, p, body, in_file).or_else(|| {
        let old = moved_from_scope(settings, p)?;
        unmatched_copies(known, &old, p, body, in_file)
    })
}

/// The ledger's address for `p`'s project at the base URL `--moved-from` names, if any.
fn moved_from_scope(settings: &ImportSettings, p: &PlannedRow) -> Option<String> {
    Some(ledger::scope(settings.moved_from.as_deref()?, &p.body.project_id))
}

/// The ledger's address for runs into the in-process sandbox: its port changes every run,
/// so its URL would make every rehearsal a stranger to the last.
const IN_PROCESS_SANDBOX: &str = "in-process-sandbox";

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
/// in the in-process sandbox never stand for the service. The dry run's notes, the import's
/// sorting and the count of rows to read again all ask here, so they cannot disagree.
fn look_up<'a>(
    known: &'a ledger::LedgerSnapshot,
    settings: &ImportSettings,
    p: &PlannedRow,
    scope: &str,
    key: &str,
) -> Option<Known<'a>> {
    if let Some(prior) = known.prior(scope, key) {
        return Some(Known::Here(prior));
    }
    if settings.force || settings.service.sandbox {
        return None;
    }
    let project = ledger::scope("", &p.body.project_id);
    let others: Vec<&str> = known
        .sent_scopes(key)
        .iter()
        .map(String::as_str)
        .filter(|s| *s != scope && s.ends_with(project.as_str()) && !s.starts_with(IN_PROCESS_SANDBOX))
        .collect();
    if let Some(old) = moved_from_scope(settings, p).and_then(|old| others.iter().copied().find(|s| *s == old)) {
        return known.prior(old, key).map(Known::MovedFrom);
    }
    let other = others.into_iter().min()?;
    Some(Known::Elsewhere {
        base: other.strip_suffix(project.as_str()).unwrap_or(other),
    })
}

/// The base URL rows are recorded under in the ledger.
fn ledger_base<'a>(settings: &ImportSettings, base_url: &'a str) -> &'a str {
    if settings.service.sandbox {
        IN_PROCESS_SANDBOX
    } else {
        base_url
    }
}

/// What a dry run can tell from the ledger: which planned rows an import would skip.
struct LedgerView {
    path: PathBuf,
    snapshot: ledger::LedgerSnapshot,
    keys: RowKeys,
    already: usize,
    unknown: usize,
    /// Rows whose key depends on an e-mail assignee not resolved offline.
    untold: usize,
    /// Rows sent through another address, which would make an import refuse.
    elsewhere: usize,
    /// Rows without a human_id whose identical copies the ledger knows ended differently,
    /// by their first copy's key: how many copies the ledger knows, and this file's rows.
    /// At the end, fewer rows here than copies there means an import would not send them.
    mixed_copies: HashMap<String, (usize, Vec<usize>)>,
}

impl LedgerView {
    /// The ledger an import with these settings would use, if there is one to read. A ledger
    /// that cannot be read is a warning here: the import itself will say what is wrong.
    fn open(settings: &ImportSettings) -> Option<LedgerView> {
        let path = settings.state.as_ref()?;
        let base = check_base_url(&settings.service.base_url, settings.service.allow_insecure).ok()?;
        match ledger::LedgerSnapshot::read(path) {
            Ok(snapshot) => snapshot.map(|snapshot| LedgerView {
                path: path.clone(),
                snapshot,
                keys: RowKeys::new(ledger_base(settings, &base)),
                already: 0,
                unknown: 0,
                untold: 0,
                elsewhere: 0,
                mixed_copies: HashMap::new(),
            }),
            Err(e) => {
                eprint_line(&format!("warning: {e}; the dry run does not say which rows it holds"));
                None
            }
        }
    }

    /// A note for the row's report line when the ledger knows it.
    fn note(&mut self, p: &PlannedRow, settings: &ImportSettings) -> Option<String> {
        let (force, retry_unknown) = (settings.force, settings.retry_unknown);
        if p.assignee_email.is_some() && p.body.human_id.is_none() {
            self.untold += 1;
            return None;
        }
        let body = p.body.to_json();
        let (scope, key) = self.keys.key(p, &body);
        if p.body.human_id.is_none() && !force && self.count_copy(p, &body, &scope, settings) {
            return Some(
                "identical to rows without a human_id that an earlier run imported, which ended differently: an import sends it only if this file holds as many copies (the summary says)"
                    .to_owned(),
            );
        }
        let prior = match look_up(&self.snapshot, settings, p, &scope, &key)? {
            Known::Here(prior) => prior,
            Known::MovedFrom(_) => {
                return Some(
                    "sent through the --moved-from address per the ledger: an import counts it as it stands there"
                        .to_owned(),
                );
            }
            Known::Elsewhere { base } => {
                let note = format!(
                    "in the ledger as sent through {base}: an import to this address refuses to run (pass --moved-from {base} if the service moved)"
                );
                self.elsewhere += 1;
                return Some(note);
            }
        };
        match prior {
            Prior::Created {
                test_run_id,
                test_run_human_id,
                row,
                at,
                body: sent,
            } if !force => {
                self.already += 1;
                let run = test_run_human_id.as_deref().or(test_run_id.as_deref()).unwrap_or("?");
                let changed = if changed_since(sent.as_deref(), p, &body) {
                    "; the row has changed since, and an import does not send the change"
                } else {
                    ""
                };
                Some(format!(
                    "already imported as {run} (row {row}, {at}) per the ledger: an import skips it{changed} (--force sends it again)"
                ))
            }
            Prior::InFlight { row, at } | Prior::Unknown { row, at, .. } if !retry_unknown => {
                self.unknown += 1;
                Some(format!(
                    "an earlier import sent this row (row {row}, {at}) and had no answer: an import leaves it unknown (--retry-unknown sends it again)"
                ))
            }
            _ => None,
        }
    }

    /// Notes a row without a human_id whose identical copies the ledger knows ended
    /// differently (see [`unmatched_copies`]), to be weighed once the file's copies are
    /// counted. Returns whether the row is such a copy.
    fn count_copy(&mut self, p: &PlannedRow, body: &[u8], scope: &str, settings: &ImportSettings) -> bool {
        let first = copy_key(p, body, 0);
        if let Some((_, rows)) = self.mixed_copies.get_mut(&first) {
            rows.push(p.row);
            return true;
        }
        let moved = moved_from_scope(settings, p);
        for scope in std::iter::once(scope).chain(moved.as_deref()) {
            if unmatched_copies(&self.snapshot, scope, p, body, 1).is_some() {
                let known = known_copies(&self.snapshot, scope, p, body).count();
                self.mixed_copies.insert(first, (known, vec![p.row]));
                return true;
            }
        }
        false
    }

    /// Rows an import would leave `not_sent`: fewer copies here than the ledger knows.
    fn unmatched_rows(&self) -> Vec<usize> {
        let mut rows: Vec<usize> = self
            .mixed_copies
            .values()
            .filter(|(known, here)| here.len() < *known)
            .flat_map(|(_, here)| here.iter().copied())
            .collect();
        rows.sort_unstable();
        rows
    }

    fn summary(&self, planned: usize) -> String {
        let unmatched = self.unmatched_rows();
        if let Some(first) = unmatched.first() {
            return format!(
                "ledger {}: {} without a human_id (row {first}{}) cannot be told from identical rows an earlier run imported, which ended differently; an import would not send them (exit 1): give the rows human_ids, or pass --force",
                self.path.display(),
                plural(unmatched.len(), "row"),
                if unmatched.len() > 1 { " first" } else { "" },
            );
        }
        if self.elsewhere > 0 {
            return format!(
                "ledger {}: {} the ledger shows sent through another address, so an import to this one would refuse to run (exit 2); the report says where (--moved-from)",
                self.path.display(),
                plural(self.elsewhere, "row")
            );
        }
        let mut line = format!(
            "ledger {}: {} of {planned} planned rows are already imported; an import would send {}",
            self.path.display(),
            self.already,
            planned - self.already - self.unknown
        );
        if self.unknown > 0 {
            line.push_str(&format!(" and leave {} unknown (sent before, no answer)", self.unknown));
        }
        if self.untold > 0 {
            line.push_str(&format!(
                " ({} with an e-mail assignee and no human_id cannot be matched offline)",
                self.untold
            ));
        }
        line
    }
}

/// A run that stopped on an error: its exit code and why, in `--summary-json`, every count 0
/// (best effort; the path was proved writable at the start, or comes from settings that
/// were refused). Returns the error, to be reported as usual.
pub fn setup_error_in_summary(
    path: Option<&Path>,
    dry_run: bool,
    started: Instant,
    error: anyhow::Error,
) -> anyhow::Error {
    if let Some(path) = path {
        let summary = RunSummary {
            counts: count_outcomes(&[]),
            rows: 0,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            requests_sent: 0,
            effective_rate: 0.0,
            exit_code: error.downcast_ref::<SetupError>().map_or(EXIT_SETUP, |e| e.exit_code),
            report: None,
            failed_rows_file: None,
            dry_run,
            error: Some(format!("{error:#}")),
        };
        let _ = std::fs::write(path, summary.to_json());
    }
    error
}

fn write_summary_json(settings: &ImportSettings, summary: &RunSummary) -> anyhow::Result<()> {
    if let Some(path) = &settings.summary_json {
        std::fs::write(path, summary.to_json())
            .with_context(|| format!("--summary-json: cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The state of an upload run: every row's report line, the rows to send, and where
/// the failed rows go.
struct UploadRun {
    rows: Vec<ReportRow>,
    planned: Vec<(usize, PlannedRow, Vec<String>)>,
    invalid_cells: Vec<(usize, Vec<String>)>,
    failed_path: Option<PathBuf>,
    /// The input's layout, for the failed-rows file.
    failed_shape: FailedRowsShape,
    headers: Vec<String>,
    started: Instant,
    requests_sent: usize,
    send_rate: f64,
    ledger: Option<Ledger>,
    /// Read-only calls made before the upload (GET /users), which the pace must count.
    prior_requests: usize,
    /// The rows' `invalid:` lines, held back until the e-mail assignees are checked, so
    /// those no user has take their places in row order ([`UploadRun::tell_problems`]).
    problems: ProblemPrinter,
    /// Lines about whole date columns, said after the rows'.
    column_problems: Vec<String>,
}

/// Opens the ledger, or says why not (exit 2): locked by another run, unreadable.
fn open_ledger(path: &Path) -> anyhow::Result<Ledger> {
    let (ledger, notes) = Ledger::open(path).map_err(|e| SetupError {
        message: e.to_string(),
        exit_code: EXIT_SETUP,
    })?;
    if let Some(line) = notes.torn_line {
        eprint_line(&format!(
            "warning: the last line ({line}) of the ledger {} was cut short, probably by a crash or power cut; it was ignored",
            path.display()
        ));
    }
    Ok(ledger)
}

impl UploadRun {
    fn new(
        rows: Vec<ReportRow>,
        planned: Vec<(usize, PlannedRow, Vec<String>)>,
        invalid_cells: Vec<(usize, Vec<String>)>,
        failed_path: Option<PathBuf>,
        started: Instant,
    ) -> UploadRun {
        UploadRun {
            rows,
            planned,
            invalid_cells,
            failed_path,
            failed_shape: FailedRowsShape::default(),
            headers: Vec::new(),
            started,
            requests_sent: 0,
            send_rate: 0.0,
            ledger: None,
            prior_requests: 0,
            problems: ProblemPrinter::new(50),
            column_problems: Vec::new(),
        }
    }

    /// Says the `invalid:` lines held back (offline problems and e-mail addresses no user
    /// has, in row order), then the date columns'. Says nothing the second time.
    fn tell_problems(&mut self) {
        self.problems.finish(&eprint_line);
        for line in self.column_problems.drain(..) {
            eprint_line(&line);
        }
    }

    /// `--plan`: the exact requests of the valid rows that `wanted` picks by index.
    fn write_plan(&self, path: Option<&Path>, wanted: impl Fn(usize) -> bool) -> anyhow::Result<()> {
        let Some(path) = path else { return Ok(()) };
        let mut plan = open_plan(path)?;
        for (_, p, _) in self.planned.iter().filter(|(index, _, _)| wanted(*index)) {
            plan.write_all(&plan_line(p))
                .with_context(|| format!("--plan: cannot write {}", path.display()))?;
        }
        plan.flush()
            .with_context(|| format!("--plan: cannot write {}", path.display()))
    }

    fn invalid_count(&self) -> usize {
        self.rows.iter().filter(|r| r.outcome == Outcome::Invalid).count()
    }

    /// For a run that sends nothing: rows the ledger shows as done are said to be done
    /// (`already_imported`, with the earlier ids), not merely `not_sent`.
    fn say_what_the_ledger_holds(&mut self, settings: &ImportSettings, base_url: &str) {
        let ledger = self.ledger.take();
        self.sort_by_ledger(
            ledger_base(settings, base_url),
            ledger.as_ref().map(Ledger::known),
            settings,
        );
    }

    /// Every valid row not yet accounted for (by the ledger) is `not_sent`, for `why`.
    fn mark_planned_not_sent(&mut self, why: &str) {
        for (index, _, _) in &self.planned {
            let row = &mut self.rows[*index];
            if row.outcome == Outcome::NotSent {
                row.error = Some(why.to_string());
            }
        }
    }

    /// Moves rows that cannot be sent (e.g. an unknown assignee e-mail) to invalid.
    fn invalidate(&mut self, index: usize, error: String) {
        if let Some(pos) = self.planned.iter().position(|(i, _, _)| *i == index) {
            let (_, _, cells) = self.planned.remove(pos);
            self.invalid_cells.push((index, cells));
        }
        self.rows[index].outcome = Outcome::Invalid;
        self.rows[index].error = Some(error);
    }

    /// Reaches the service and resolves e-mail assignees: everything before the first POST.
    async fn prepare(&mut self, settings: &ImportSettings) -> anyhow::Result<(ApiClient, Option<Sandbox>)> {
        let ready = async {
            let (client, sandbox) = connect(&settings.service, settings.read.quiet).await?;
            let client = client.with_read_retries(settings.max_retries);
            let skipped = self.skipped_emails(settings);
            resolve_assignees(self, &client, &skipped).await?;
            Ok((client, sandbox))
        }
        .await;
        self.tell_problems();
        ready
    }

    /// The valid rows with an e-mail assignee that the ledger shows this run will not send,
    /// by index: they need no `GET /users` (see [`skipped_by_human_id`]).
    fn skipped_emails(&self, settings: &ImportSettings) -> HashSet<usize> {
        let Some(known) = self.ledger.as_ref().map(Ledger::known) else {
            return HashSet::new();
        };
        let base_url = ledger_base(settings, &settings.service.base_url);
        self.planned
            .iter()
            .filter(|(_, p, _)| p.assignee_email.is_some() && skipped_by_human_id(known, settings, base_url, p))
            .map(|(index, _, _)| *index)
            .collect()
    }

    /// Rows already invalid mean nothing is sent, but an e-mail assignee that matches no
    /// user is a problem too, and every problem is reported at once: the service is asked
    /// all the same. If it cannot be (no key, unreachable), that is said and is no error.
    async fn resolve_assignees_anyway(&mut self, settings: &ImportSettings) {
        let skipped = self.skipped_emails(settings);
        let mut resolved = Ok(());
        if needs_users(&self.planned, &skipped) {
            resolved = async {
                let (client, _sandbox) = connect(&settings.service, true).await?;
                resolve_assignees(self, &client.with_read_retries(settings.max_retries), &skipped).await
            }
            .await;
        }
        self.tell_problems();
        if let Err(e) = resolved {
            eprint_line(&format!(
                "note: e-mail assignees were not checked against the service: {e:#}"
            ));
        }
    }

    /// Every row is invalid (offline, or for an e-mail no user has): nothing to send,
    /// `--skip-invalid` or not.
    fn nothing_valid(&self) -> bool {
        self.rows.iter().any(|r| r.outcome == Outcome::Invalid)
            && self
                .planned
                .iter()
                .all(|(i, _, _)| self.rows[*i].outcome == Outcome::Invalid)
    }

    /// Validation failed and nothing was sent: exit 3.
    fn finish_nothing_valid(mut self, settings: &ImportSettings) -> anyhow::Result<ImportResult> {
        self.tell_problems();
        eprint_line(&format!(
            "all {} rows are invalid: nothing was sent. Fix them (see the report).",
            self.rows.len()
        ));
        self.finish_without_upload(EXIT_INVALID, settings)
    }

    fn finish_without_upload(mut self, exit_code: i32, settings: &ImportSettings) -> anyhow::Result<ImportResult> {
        self.tell_problems();
        let mut report = ReportWriter::create(&settings.report, ReportFormat::from_path(&settings.report))?;
        for r in &self.rows {
            report.append(r)?;
        }
        report.finish(None)?;
        self.complete(exit_code, settings, None)
    }

    /// Writes the failed-rows file, prints the summary, writes --summary-json.
    fn complete(
        mut self,
        exit_code: i32,
        settings: &ImportSettings,
        stop: Option<StopReason>,
    ) -> anyhow::Result<ImportResult> {
        let headers = std::mem::take(&mut self.headers);
        let mut failed = FailedRowsWriter::new(self.failed_path.clone(), headers, self.failed_shape);
        let mut bad: Vec<(usize, &Vec<String>)> = self.invalid_cells.iter().map(|(i, c)| (*i, c)).collect();
        for (index, _, cells) in &self.planned {
            if self.rows[*index].outcome == Outcome::Failed {
                bad.push((*index, cells));
            }
        }
        bad.sort_by_key(|(i, _)| *i);
        for (index, cells) in bad {
            failed.write(cells, self.rows[index].error.as_deref().unwrap_or(""))?;
        }
        let failed_file = failed.finish()?;
        let counts = count_outcomes(&self.rows);
        let elapsed = self.started.elapsed().as_secs_f64();
        let summary = RunSummary {
            counts: counts.clone(),
            rows: self.rows.len(),
            elapsed_seconds: elapsed,
            requests_sent: self.requests_sent,
            effective_rate: self.send_rate,
            exit_code,
            report: Some(settings.report.display().to_string()),
            failed_rows_file: failed_file.as_ref().map(|p| p.display().to_string()),
            dry_run: false,
            error: None,
        };
        print_summary(
            &self.rows,
            &summary,
            stop.as_ref(),
            &settings.report,
            failed_file.as_deref(),
        );
        write_summary_json(settings, &summary)?;
        Ok(ImportResult {
            exit_code,
            rows: self.rows,
            summary,
        })
    }

    /// Keys, and what the ledger already knows of each row: rows it shows as created are
    /// `already_imported`, rows whose answer never came `unknown`; the rest are the jobs.
    fn sort_by_ledger(
        &mut self,
        base_url: &str,
        known: Option<&ledger::LedgerSnapshot>,
        settings: &ImportSettings,
    ) -> Sorted {
        // Keys, and what the ledger already knows of each row.
        let mut row_keys = RowKeys::new(base_url);
        let mut jobs = Vec::new();
        let mut keys: HashMap<usize, (String, String)> = HashMap::new();
        let mut moved = MovedRows::default();
        let mut changed = Vec::new();
        // Each row's body, and for a row without a human_id its first copy's key, once; then
        // how many identical copies of each such row this file holds.
        let bodies: Vec<(Vec<u8>, Option<String>)> = self
            .planned
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
        for ((index, p, _), (body, first)) in self.planned.iter().zip(bodies) {
            let (scope, key) = row_keys.key(p, &body);
            if !settings.force
                && let Some(known) = known
                && let Some(in_file) = first.and_then(|first| copies.get(&first).copied())
                && let Some(why) = unmatched_copies_here_or_moved(known, settings, &scope, p, &body, in_file)
            {
                let report = &mut self.rows[*index];
                report.outcome = Outcome::NotSent;
                report.error = Some(why);
                continue;
            }
            let prior = match known.and_then(|known| look_up(known, settings, p, &scope, &key)) {
                Some(Known::Here(prior)) => Some(prior.clone()),
                Some(Known::MovedFrom(prior)) => Some(moved.carry(p, &scope, &key, prior)),
                Some(Known::Elsewhere { base }) => {
                    moved.elsewhere.push((p.row, base.to_owned()));
                    None
                }
                None => None,
            };
            let report = &mut self.rows[*index];
            let mut idempotency = ledger::idempotency_key(&scope, &key);
            let skipped = prior.as_ref().is_some_and(|prior| ledger_skips(prior, settings));
            match prior {
                Some(Prior::Created {
                    test_run_id,
                    test_run_human_id,
                    row,
                    at,
                    body: sent,
                }) if skipped => {
                    report.outcome = Outcome::AlreadyImported;
                    if changed_since(sent.as_deref(), p, &body) {
                        changed.push(p.row);
                        let run = test_run_human_id.as_deref().or(test_run_id.as_deref()).unwrap_or("?");
                        report.error = Some(format!(
                            "the row has changed since it was imported as {run} (row {row}, {at}); the change was not sent, so Testsigma keeps the earlier version (--force sends it as a new run)"
                        ));
                    }
                    report.test_run_id = test_run_id;
                    report.test_run_human_id = test_run_human_id;
                    report.attempts = 0;
                    continue;
                }
                Some(Prior::Created { .. }) => {
                    // --force asks for a second run on purpose: a fresh idempotency key, or a
                    // service that honours it would hand back the first run.
                    idempotency = ledger::idempotency_key(
                        &scope,
                        &format!("{key}#force@{}", chrono::Utc::now().timestamp_millis()),
                    );
                }
                Some(Prior::InFlight { row, at }) | Some(Prior::Unknown { row, at, .. }) if skipped => {
                    report.outcome = Outcome::Unknown;
                    report.error = Some(format!(
                        "an earlier run sent this row (then row {row}, at {at}) but its answer never came, so the run may exist; check in Testsigma, then re-run with --retry-unknown to send it again"
                    ));
                    continue;
                }
                _ => {}
            }
            keys.insert(*index, (scope, key));
            jobs.push(UploadJob {
                index: *index,
                row: p.row,
                project_id: p.body.project_id.clone(),
                body: Arc::new(body),
                idempotency_key: idempotency,
                title: p.body.title.clone(),
                human_id: p.body.human_id.clone(),
            });
        }

        Sorted {
            jobs,
            keys,
            moved,
            changed,
        }
    }

    async fn upload(mut self, settings: &ImportSettings) -> anyhow::Result<ImportResult> {
        // A failure to reach the service still leaves a report: every row not sent, and why.
        let (client, _sandbox) = match self.prepare(settings).await {
            Ok(ready) => ready,
            Err(e) => {
                let code = e.downcast_ref::<SetupError>().map_or(EXIT_SETUP, |s| s.exit_code);
                eprint_line(&format!("error: {e:#}"));
                // E-mail assignees are unresolved here, so a row without a human_id that had
                // one may not be found.
                self.say_what_the_ledger_holds(settings, &settings.service.base_url);
                self.mark_planned_not_sent(&format!("not sent: {e:#}"));
                return self.finish_without_upload(code, settings);
            }
        };
        // E-mail assignees no user has may have left no valid row.
        if self.nothing_valid() {
            return self.finish_nothing_valid(settings);
        }
        if self.invalid_count() > 0 && !settings.skip_invalid {
            self.write_plan(settings.plan.as_deref(), |_| true)?;
            let invalid = self.invalid_count();
            self.say_what_the_ledger_holds(settings, client.base_url());
            self.mark_planned_not_sent(&format!(
                "not sent: {invalid} row(s) are invalid, so nothing was sent (fix them, or pass --skip-invalid)"
            ));
            eprint_line(&format!("{} invalid: nothing was sent.", plural(invalid, "row")));
            return self.finish_without_upload(EXIT_INVALID, settings);
        }
        let mut ledger = self.ledger.take();
        let Sorted {
            jobs,
            keys,
            moved,
            changed,
        } = self.sort_by_ledger(
            ledger_base(settings, client.base_url()),
            ledger.as_ref().map(Ledger::known),
            settings,
        );
        if let Some(first) = changed.first() {
            eprint_line(&format!(
                "note: {} already imported {} changed since (row {first}{}); an import does not send changes, so Testsigma keeps the earlier versions (the report says which; --force sends them as new runs)",
                plural(changed.len(), "row"),
                if changed.len() == 1 { "has" } else { "have" },
                if changed.len() > 1 { " first" } else { "" },
            ));
        }
        if let Some(error) = moved.refusal(client.base_url()) {
            eprint_line(&format!("error: {error}"));
            self.mark_planned_not_sent(&format!("not sent: {error}"));
            return self.finish_without_upload(EXIT_SETUP, settings);
        }
        if let Some(ledger) = ledger.as_mut() {
            moved.record_here(ledger)?;
        }

        // The exact requests this run sends: not those the ledger skips.
        self.write_plan(settings.plan.as_deref(), |index| keys.contains_key(&index))?;

        let mut report = ReportWriter::create(&settings.report, ReportFormat::from_path(&settings.report))?;
        for r in self.rows.iter().filter(|r| r.outcome != Outcome::NotSent) {
            report.append(r)?;
        }
        let progress = Progress::new(jobs.len(), settings.read.quiet);
        let sink = Arc::new(RunSink {
            ledger: ledger.map(Mutex::new),
            keys,
            report: Mutex::new(Some(report)),
            rows: Mutex::new(std::mem::take(&mut self.rows)),
            progress,
            write_error: Mutex::new(None),
        });
        let stop = StopSignal::default();
        let signals = watch_signals(stop.clone());
        let upload_settings = UploadSettings {
            rate: settings.rate,
            concurrency: settings.concurrency,
            max_retries: settings.max_retries,
            prior_requests: self.prior_requests,
        };
        let stats = upload(Arc::new(client), jobs, &upload_settings, sink.clone(), stop.clone()).await;
        signals.abort();
        sink.progress.finish();
        self.requests_sent = stats.requests_sent;
        self.send_rate = stats.send_rate();
        if stats.rate_limited > 0 {
            eprint_line(&format!(
                "the service refused {} request(s) for its rate limit; the pace settled at {:.1} requests/s (--rate {})",
                stats.rate_limited, stats.final_rate, settings.rate
            ));
        }
        self.rows = sink
            .rows
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        let writer = sink.report.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            writer.finish(Some(&self.rows))?;
        }
        if let Some(e) = sink.write_error.lock().ok().and_then(|mut e| e.take()) {
            eprint_line(&format!("error: {e}"));
        }
        let stop_reason = stop.reason();
        let exit_code = match &stop_reason {
            Some(StopReason::Interrupted) => EXIT_INTERRUPTED,
            Some(StopReason::KeyRefused { .. })
            | Some(StopReason::Redirected(_))
            | Some(StopReason::Ledger(_))
            | Some(StopReason::Unreachable { .. }) => EXIT_SETUP,
            None => {
                if self
                    .rows
                    .iter()
                    .all(|r| matches!(r.outcome, Outcome::Created | Outcome::AlreadyImported))
                {
                    EXIT_OK
                } else {
                    EXIT_INCOMPLETE
                }
            }
        };
        self.complete(exit_code, settings, stop_reason)
    }
}

/// Whether this run leaves alone a row the ledger knows as `prior`: one created (unless
/// `--force`), or sent with no answer (unless `--retry-unknown`).
fn ledger_skips(prior: &Prior, settings: &ImportSettings) -> bool {
    match prior {
        Prior::Created { .. } => !settings.force,
        Prior::InFlight { .. } | Prior::Unknown { .. } => !settings.retry_unknown,
        Prior::Failed { .. } => false,
    }
}

/// Whether the ledger shows `p` as a row this run does not send, told by its human_id alone
/// (here, or at the `--moved-from` address), as [`UploadRun::sort_by_ledger`] tells it. A
/// row without a human_id is known by a hash of its request, which holds the resolved
/// assignee, so it cannot be told before its e-mail is resolved: false.
fn skipped_by_human_id(
    known: &ledger::LedgerSnapshot,
    settings: &ImportSettings,
    base_url: &str,
    p: &PlannedRow,
) -> bool {
    let key = ledger::row_key(p.body.human_id.as_deref(), &p.body.project_id, &[]);
    if !key.starts_with("human_id:") {
        return false;
    }
    let scope = ledger::scope(base_url, &p.body.project_id);
    match look_up(known, settings, p, &scope, &key) {
        Some(Known::Here(prior) | Known::MovedFrom(prior)) => ledger_skips(prior, settings),
        Some(Known::Elsewhere { .. }) | None => false,
    }
}

/// Whether a row the ledger shows as created (`sent`: the hash of that request) would
/// now send something else. Unknown for ledgers from before the hash was kept, and for a
/// row whose e-mail assignee is not resolved yet (its body is not the one to send).
fn changed_since(sent: Option<&str>, p: &PlannedRow, body: &[u8]) -> bool {
    let unresolved = p.assignee_email.is_some() && p.body.assignee_id.is_none();
    !unresolved && sent.is_some_and(|sent| sent != ledger::body_hash(body))
}

/// The rows to send, after the ledger has had its say.
struct Sorted {
    jobs: Vec<UploadJob>,
    /// Each job's (scope, key) in the ledger, by row index.
    keys: HashMap<usize, (String, String)>,
    moved: MovedRows,
    /// Rows already imported whose request would now be different: their row numbers.
    changed: Vec<usize>,
}

/// Rows the ledger shows as sent through another base URL (created, or no answer), for the
/// same project. With `--moved-from` naming that URL they count as they stand there; otherwise the run refuses
/// rather than risk creating them twice (the other URL may be the same service, moved).
#[derive(Default)]
struct MovedRows {
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
    fn refusal(&self, base_url: &str) -> Option<String> {
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
    fn record_here(&self, ledger: &mut Ledger) -> anyhow::Result<()> {
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

/// The client, and the in-process sandbox it talks to with `--sandbox`.
pub(crate) async fn connect(service: &ServiceSettings, quiet: bool) -> anyhow::Result<(ApiClient, Option<Sandbox>)> {
    if service.sandbox {
        let sandbox = Sandbox::start(SandboxOptions::default(), 0)
            .await
            .context("--sandbox: could not start the sandbox")?;
        let key = service.key.clone().unwrap_or_else(ApiKey::sandbox);
        if !quiet {
            eprint_line(&format!(
                "sandbox: talking to the in-process sandbox at {}",
                sandbox.base_url()
            ));
        }
        let client = ApiClient::new(&sandbox.base_url(), key, service.timeout)?;
        return Ok((client, Some(sandbox)));
    }
    let base = check_base_url(&service.base_url, service.allow_insecure).map_err(|e| SetupError {
        message: e.to_string(),
        exit_code: EXIT_SETUP,
    })?;
    let key = service.key.clone().ok_or_else(|| SetupError {
        message: "no API key: set TESTSIGMA_API_KEY or pass --api-key-file PATH (make one in Testsigma under Settings → API keys); `import --dry-run` needs none".to_string(),
        exit_code: EXIT_SETUP,
    })?;
    let client = ApiClient::new(&base, key, service.timeout)?;
    Ok((client, None))
}

/// Whether a row to send has an e-mail assignee, so `GET /users` is needed: not for the
/// rows the ledger shows this run skips (`skipped`).
fn needs_users(planned: &[(usize, PlannedRow, Vec<String>)], skipped: &HashSet<usize>) -> bool {
    planned
        .iter()
        .any(|(index, p, _)| p.assignee_email.is_some() && !skipped.contains(index))
}

/// Assignees given as e-mail addresses → user ids, with one `GET /users` before the first
/// POST, made only when a row to send needs it. The rows the ledger skips (`skipped`) are
/// resolved too when it is made, which tells whether they have changed since; an address
/// no user has any more is no problem there, since nothing is sent for them.
async fn resolve_assignees(run: &mut UploadRun, client: &ApiClient, skipped: &HashSet<usize>) -> anyhow::Result<()> {
    if !needs_users(&run.planned, skipped) {
        return Ok(());
    }
    let users = client.users().await;
    // Every GET, retries included, took a place in the service's window.
    run.prior_requests += client.reads();
    let users = users.map_err(|e| SetupError {
        message: format!("could not resolve assignee e-mail addresses: {e}"),
        exit_code: EXIT_SETUP,
    })?;
    let mut unknown = Vec::new();
    for (index, p, _) in run.planned.iter_mut() {
        let Some(assignee) = p.assignee_email.take() else {
            continue;
        };
        match resolve_email(&users, &assignee.email) {
            Ok(id) => p.body.assignee_id = Some(id),
            Err(_) if skipped.contains(index) => p.assignee_email = Some(assignee),
            Err(message) => unknown.push((*index, assignee.problem(p.row, message))),
        }
    }
    for (index, problem) in unknown {
        run.problems.add(&problem, &eprint_line);
        run.invalidate(index, row_error(std::slice::from_ref(&problem)));
    }
    Ok(())
}

/// An e-mail → the user's id; unknown addresses name the closest known ones.
pub fn resolve_email(users: &[User], email: &str) -> Result<String, String> {
    if let Some(user) = users.iter().find(|u| u.email.eq_ignore_ascii_case(email.trim())) {
        return Ok(user.id.clone());
    }
    let wanted = email.trim().to_lowercase();
    let mut close: Vec<(usize, &str)> = users
        .iter()
        .map(|u| (edit_distance(&wanted, &u.email.to_lowercase()), u.email.as_str()))
        .collect();
    close.sort();
    // Only the nearest addresses, and only when they are near at all.
    let nearest = close.first().map_or(usize::MAX, |(d, _)| *d);
    let suggestions: Vec<&str> = close
        .iter()
        .filter(|(d, _)| *d == nearest && *d <= wanted.len() / 3 + 1)
        .take(3)
        .map(|(_, e)| *e)
        .collect();
    if suggestions.is_empty() {
        Err(
            "no user has this e-mail address; give the user's UUID or an address from the Testsigma account"
                .to_string(),
        )
    } else {
        Err(format!(
            "no user has this e-mail address; did you mean {}?",
            suggestions.join(" or ")
        ))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Ctrl-C (and SIGTERM): stop starting requests, let those in flight finish. A second
/// one stops at once; the ledger is already consistent, since every line is synced.
fn watch_signals(stop: StopSignal) -> tokio::task::JoinHandle<()> {
    // Listened for before the task starts, and for the whole run: a signal that comes
    // while the one before it is being handled is still seen. A listener made anew after
    // each signal could miss one sent between the message below and its making.
    let mut signals = Interrupts::listen();
    tokio::spawn(async move {
        signals.next().await;
        eprint_line("interrupted: no new requests; waiting for those in flight (press Ctrl-C again to stop at once)");
        stop.stop(StopReason::Interrupted);
        signals.next().await;
        eprint_line(
            "stopping at once: the rows in flight are marked unknown (they may exist); writing the report (Ctrl-C again to quit without it)",
        );
        stop.halt(StopReason::Interrupted);
        signals.next().await;
        eprint_line("quit: the ledger is consistent; the report holds the rows that finished");
        std::process::exit(EXIT_INTERRUPTED);
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

/// The ledger, the report and the progress display, fed by the uploader.
struct RunSink {
    ledger: Option<Mutex<Ledger>>,
    keys: HashMap<usize, (String, String)>,
    report: Mutex<Option<ReportWriter>>,
    rows: Mutex<Vec<ReportRow>>,
    progress: Progress,
    write_error: Mutex<Option<String>>,
}

impl RunSink {
    fn with_ledger<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> Option<T> {
        let ledger = self.ledger.as_ref()?;
        let write = || ledger.lock().ok().map(|mut l| f(&mut l));
        // Each ledger line is fsync'd: on the multi-threaded runtime, let the other tasks
        // move to another worker meanwhile (block_in_place is not allowed elsewhere).
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
            _ => write(),
        }
    }
}

impl UploadSink for RunSink {
    fn before_send(&self, job: &UploadJob) -> Result<(), String> {
        let Some((scope, key)) = self.keys.get(&job.index) else {
            return Ok(());
        };
        match self.with_ledger(|l| l.record_in_flight(scope, key, job.row)) {
            Some(Err(e)) => Err(format!(
                "the ledger could not record row {} before sending it: {e}",
                job.row
            )),
            _ => Ok(()),
        }
    }

    fn finished(&self, job: &UploadJob, row: ReportRow) {
        // A row never sent has no ledger line to answer.
        let sent = row.attempts > 0;
        if let Some((scope, key)) = self.keys.get(&job.index).filter(|_| sent) {
            let recorded = self.with_ledger(|l| match row.outcome {
                Outcome::Created => l.record_created(
                    scope,
                    key,
                    job.row,
                    row.test_run_id.as_deref(),
                    row.test_run_human_id.as_deref(),
                    Some(&ledger::body_hash(&job.body)),
                ),
                Outcome::Unknown => l.record_unknown(scope, key, job.row, row.error.as_deref().unwrap_or("")),
                _ => l.record_failed(scope, key, job.row, row.error.as_deref().unwrap_or("not created")),
            });
            if let Some(Err(e)) = recorded
                && let Ok(mut slot) = self.write_error.lock()
            {
                slot.get_or_insert_with(|| format!("the ledger could not record row {}: {e}", job.row));
            }
        }
        if let Ok(mut report) = self.report.lock()
            && let Some(writer) = report.as_mut()
            && let Err(e) = writer.append(&row)
            && let Ok(mut slot) = self.write_error.lock()
        {
            slot.get_or_insert_with(|| e.to_string());
        }
        self.progress.row_done(row.outcome != Outcome::Created);
        if let Ok(mut rows) = self.rows.lock()
            && let Some(slot) = rows.get_mut(job.index)
        {
            *slot = row;
        }
    }
}

/// The end-of-run summary on stderr: counts, failures grouped by reason, where the files are.
fn print_summary(
    rows: &[ReportRow],
    summary: &RunSummary,
    stop: Option<&StopReason>,
    report: &Path,
    failed: Option<&Path>,
) {
    match stop {
        Some(StopReason::KeyRefused { message, .. }) => eprint_line(&format!(
            "error: the service refused the API key ({message}); the run stopped. Check TESTSIGMA_API_KEY or --api-key-file."
        )),
        Some(StopReason::Redirected(r)) => eprint_line(&format!("error: {r}; the run stopped.")),
        Some(StopReason::Ledger(e)) => eprint_line(&format!("error: {e}; the run stopped.")),
        Some(StopReason::Unreachable { base_url, error }) => eprint_line(&format!(
            "error: no connection to {base_url} could be made ({error}); the run stopped. Check --base-url and the network."
        )),
        Some(StopReason::Interrupted) => {
            eprint_line("interrupted: the report and the ledger hold every row that finished.")
        }
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
    eprint_line(&format!(
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
        eprint_line(&format!("  failed, {n} row(s): {reason}"));
    }
    let unknown = summary.counts.get("unknown").copied().unwrap_or(0);
    if unknown > 0 {
        eprint_line(&format!(
            "  {unknown} row(s) are unknown: they were sent but no usable answer came, so the runs may exist. Check them in Testsigma (titles and human ids are in the report); then run again with --retry-unknown to send those that do not exist, or leave them."
        ));
    }
    eprint_line(&format!("report: {}", report.display()));
    if let Some(f) = failed {
        eprint_line(&format!(
            "failed rows: {} (fix them there and import that file)",
            f.display()
        ));
    }
    if summary.exit_code == EXIT_OK && summary.counts.get("created").copied().unwrap_or(0) == 0 {
        eprint_line("nothing new to import: every row was imported before.");
    }
}

/// `1 row`, `2 rows`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "c47ade67-0543-4582-a4a5-b7de447c94f5";

    /// Opens `text` as a CSV file, then deletes the file: the stage still reads through
    /// the handle it opened, and any attempt to open the file again fails.
    fn stage_of_a_vanishing_file(text: &str) -> ReadStage {
        let dir = tempfile::tempdir().expect("a temp dir");
        let stage = stage_of(&dir, text);
        std::fs::remove_file(dir.path().join("runs.csv")).expect("delete the CSV");
        stage
    }

    fn starts(stage: &mut ReadStage) -> anyhow::Result<Vec<Option<i64>>> {
        let mut starts = Vec::new();
        stage.for_each_row(|event| {
            match event {
                RowEvent::Valid { planned, .. } => starts.push(planned.body.start_date),
                RowEvent::Invalid { problems, .. } => panic!("{problems:?}"),
            }
            Ok(())
        })?;
        Ok(starts)
    }

    #[test]
    fn a_file_whose_dates_need_no_order_is_read_once() {
        let mut stage = stage_of_a_vanishing_file(
            "Title,Start\nA,2024-03-17\nB,2024-03-17T09:30:00Z\nC,17.03.2024\nD,1710633600\n",
        );
        assert_eq!(
            starts(&mut stage).unwrap_or_else(|e| panic!("{e:#}")),
            [
                Some(1_710_633_600),
                Some(1_710_667_800),
                Some(1_710_633_600),
                Some(1_710_633_600)
            ]
        );
        assert!(told(&mut stage).is_empty());
    }

    #[test]
    fn the_first_value_that_needs_the_order_makes_the_date_columns_read_again() {
        // Here the second reading finds the file gone, which shows it is a second reading.
        let mut stage = stage_of_a_vanishing_file("Title,Start\nA,2024-03-17\nB,17/03/2024\n");
        let error = starts(&mut stage).expect_err("the file is gone").to_string();
        assert!(error.starts_with("cannot open"), "{error}");
    }

    /// The lines `tell_column_problems` says now.
    fn told(stage: &mut ReadStage) -> Vec<String> {
        let told = std::cell::RefCell::new(Vec::new());
        stage.tell_column_problems(&|line| told.borrow_mut().push(line.to_string()));
        told.into_inner()
    }

    /// What each row came to: its start, or its problems' messages.
    fn outcomes(stage: &mut ReadStage) -> anyhow::Result<Vec<Result<Option<i64>, Vec<String>>>> {
        let mut seen = Vec::new();
        stage.for_each_row(|event| {
            seen.push(match event {
                RowEvent::Valid { planned, .. } => Ok(planned.body.start_date),
                RowEvent::Invalid { problems, .. } => Err(problems.iter().map(|p| p.to_string()).collect()),
            });
            Ok(())
        })?;
        Ok(seen)
    }

    fn stage_of(dir: &tempfile::TempDir, text: &str) -> ReadStage {
        let path = dir.path().join("runs.csv");
        std::fs::write(&path, text).expect("write the CSV");
        let mut rules = crate::validate::RowRules::default();
        rules.defaults.insert(Field::ProjectId, PROJECT.to_string());
        let read = ReadSettings {
            input: crate::source::Input::File(path),
            source: crate::source::SourceOptions::default(),
            columns: BTreeMap::new(),
            rules,
            quiet: true,
        };
        open_read_stage(&read, &|_| {}).unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn orders_settled_early_read_a_few_rows_ahead_and_give_what_the_whole_file_gives() {
        // Row 3 needs the order, row 5 proves day-first; then a thousand rows more.
        let mut text = String::from("Title,Start,End\nA,2024-03-17,\nB,03/04/2024,\nC,04/05/2024,\nD,25/03/2024,\n");
        for n in 0..1000 {
            text.push_str(&format!("R{n},{:02}/{:02}/2024,28/12/2024\n", n % 28 + 1, n % 12 + 1));
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let whole = outcomes(&mut stage_of(&dir, &text)).unwrap_or_else(|e| panic!("{e:#}"));
        let mut stage = stage_of(&dir, &text);
        stage.settle_orders_early();
        let early = outcomes(&mut stage).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(early, whole);
        assert_eq!(early[1], Ok(Some(1_712_102_400)), "2024-04-03: day first");
        // Each column is read ahead up to its first proof: the start column's is on the
        // fourth row, the end column's (first needed by row 6) on the fifth.
        assert_eq!(stage.rows_read_ahead(), 4 + 5);
        let told = told(&mut stage);
        assert!(told.is_empty(), "{told:?}");
    }

    #[test]
    fn an_order_a_later_row_overturns_ends_the_reading_so_it_is_read_again() {
        let text = "Title,Start\nA,03/04/2024\nB,25/03/2024\nC,05/06/2024\nD,04/26/2024\n";
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut stage = stage_of(&dir, text);
        stage.settle_orders_early();
        let error = outcomes(&mut stage).expect_err("row 5 proves month-first");
        let overturned = error.downcast_ref::<OrdersOverturned>().expect("OrdersOverturned");
        assert_eq!(overturned.column, "Start");
        // Read again without guessing, every value that needs the order is invalid.
        let whole = outcomes(&mut stage_of(&dir, text)).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(whole.len(), 4);
        for (row, outcome) in whole.iter().enumerate() {
            let problems = outcome.as_ref().expect_err("invalid");
            assert!(
                problems[0].contains("mixes day-first and month-first"),
                "row {}: {problems:?}",
                row + 2
            );
        }
    }

    #[test]
    fn a_column_that_never_proves_an_order_is_read_to_the_end_and_settled_there() {
        let text = "Title,Start\nA,03/04/2024\nB,2024-03-17\n";
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut stage = stage_of(&dir, text);
        stage.settle_orders_early();
        let early = outcomes(&mut stage).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            early,
            outcomes(&mut stage_of(&dir, text)).unwrap_or_else(|e| panic!("{e:#}"))
        );
        assert_eq!(stage.rows_read_ahead(), 2, "the whole file");
        let told = told(&mut stage);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].contains("no value in the column decides"), "{told:?}");
    }

    #[test]
    fn emails_resolve_case_insensitively_and_suggest_close_ones() {
        let users = vec![
            User {
                id: "u1".into(),
                email: "ada@example.com".into(),
                first_name: None,
                last_name: None,
            },
            User {
                id: "u2".into(),
                email: "grace@example.com".into(),
                first_name: None,
                last_name: None,
            },
        ];
        assert_eq!(resolve_email(&users, "ADA@example.com").unwrap(), "u1");
        let err = resolve_email(&users, "grace@exmple.com").unwrap_err();
        assert!(err.contains("did you mean grace@example.com"), "{err}");
        let err = resolve_email(&users, "zzzzzzzzzzzzzzzzzzzzzz@q.q").unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
    }

    /// What a printer holding its lines (limit 2) says for problems added in this order,
    /// each `(row, column)`: the first rows' lines in row order, a row's own in the order
    /// added, and the rest counted by column (`A` before `B` when the counts tie).
    #[test]
    fn a_holding_printer_says_the_first_rows_problems_in_row_order() {
        let line = |row: usize, column: &str| format!("invalid: row {row}, column `{column}`: a value is required");
        let more = |n: usize| format!("… and {n} more problems (every one is in the report):");
        let count = |n: usize, column: &str| format!("  {n:>7} × missing value in column `{column}`");
        // Problems added, each `(row, column)`, and the lines said.
        type Case<'a> = (Vec<(usize, &'a str)>, Vec<String>);
        let cases: Vec<Case> = vec![
            (vec![], vec![]),
            (
                vec![(3, "A"), (5, "A"), (2, "B")],
                vec![line(2, "B"), line(3, "A"), more(1), count(1, "A")],
            ),
            (
                vec![(3, "A"), (4, "B"), (3, "C")],
                vec![line(3, "A"), line(3, "C"), more(1), count(1, "B")],
            ),
            (
                vec![(3, "A"), (4, "A"), (5, "A"), (9, "B"), (2, "B")],
                vec![line(2, "B"), line(3, "A"), more(3), count(2, "A"), count(1, "B")],
            ),
            (
                vec![(7, "A"), (8, "A"), (9, "B")],
                vec![line(7, "A"), line(8, "A"), more(1), count(1, "B")],
            ),
        ];
        for (added, want) in cases {
            let said = std::cell::RefCell::new(Vec::new());
            let out = |line: &str| said.borrow_mut().push(line.to_string());
            let mut printer = ProblemPrinter::new(2).holding(true);
            for (row, column) in &added {
                let problem = Problem {
                    row: *row,
                    column: Some(column.to_string()),
                    cell: None,
                    value: None,
                    kind: ProblemKind::Missing,
                    message: "a value is required".into(),
                };
                printer.add(&problem, &out);
            }
            assert!(said.borrow().is_empty(), "{added:?}: held until the end");
            printer.finish(&out);
            printer.finish(&out);
            assert_eq!(*said.borrow(), want, "{added:?}");
            assert_eq!(printer.total(), added.len());
        }
    }

    #[test]
    fn edit_distances() {
        for (a, b, d) in [("", "", 0), ("a", "", 1), ("kitten", "sitting", 3), ("same", "same", 0)] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }
}
