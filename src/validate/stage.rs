//! The validate stage: every row of the input, read (through [`crate::read`]) and
//! validated, in file order, each handed on with its report line started. Date columns
//! whose dd/mm order is still to be learned are settled here, by the protocol in
//! [`super::date_order`].

use std::collections::BTreeMap;

use anyhow::{Context, anyhow, bail};

use super::date_order::{
    DateEvidence, EarlyOrders, OrdersOverturned, PendingOrder, date_evidence, learn_date_orders,
    learn_date_orders_early,
};
use super::first_rows::FirstRows;
use super::{Problem, ProblemKind, RowRules, Validator};
use crate::ledger::{KeyFingerprints, KeySpec};
use crate::read::mapping::{ColumnMap, ExplicitColumn, Field, map_headers};
use crate::read::pass::read_prepared;
use crate::read::row::SourceRow;
use crate::read::{Input, RowSource, SourceOptions, open_source};
use crate::report::{FailedRowsShape, Outcome, ReportRow};
use crate::request::PlannedRow;

/// Everything the reading, mapping and validating stages need.
#[derive(Debug, Clone)]
pub struct ReadSettings {
    pub input: Input,
    pub source: SourceOptions,
    pub columns: BTreeMap<Field, ExplicitColumn>,
    pub rules: RowRules,
    /// `--key`; `None`: the default for the file's headers.
    pub key: Option<KeySpec>,
    pub quiet: bool,
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
    /// The row the headers are on, which the failed-rows file keeps.
    header_row: usize,
    /// The rows' keys so far: two rows with one key are one run.
    keys: KeyCheck,
}

/// The first row of each key (`--key`), to refuse a second row with the same one. Rows
/// keyed by their human_id alone are left to the validator's own check of human ids.
struct KeyCheck {
    keys: KeyFingerprints,
    /// The first row of each key, by its fingerprint: 12 bytes a slot, whatever the row's size.
    first: FirstRows,
}

impl KeyCheck {
    /// The problem with `p`, if an earlier row has its key.
    fn check(&mut self, p: &PlannedRow) -> Option<Problem> {
        let key = self.keys.of(p)?;
        let first = self.first.first_or_insert(key, p.row);
        (first != p.row).then(|| Problem {
            row: p.row,
            column: None,
            cell: None,
            value: Some(p.body.title.clone()),
            kind: ProblemKind::DuplicateKey,
            message: format!(
                "row {first} has the same key ({}): two rows with one key are one run; change one, or pass --key with fields that tell them apart",
                self.keys.spec().describe()
            ),
        })
    }
}

/// Opens the input and maps its headers. Unless `--date-order` settles it, a workbook's
/// date columns are read now for their dd/mm order; delimited text learns it later, when
/// a row first needs it ([`ReadStage::for_each_row`]).
pub fn open_read_stage(read: &ReadSettings, warn: &dyn Fn(&str)) -> anyhow::Result<ReadStage> {
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
        warn(warning);
    }
    if warnings.len() > 20 {
        warn(&format!("… and {} more columns that are ignored", warnings.len() - 20));
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
            input: read.input.clone(),
            source: read.source.clone(),
            columns,
        });
    } else if needs_order {
        // A workbook: go over its date columns now; `rewind` starts its reading again.
        evidence = date_evidence(source.as_mut(), &map, &columns)?;
        source.rewind().map_err(|e| anyhow!("{e}"))?;
    }
    let key = (read.key.clone()).unwrap_or_else(|| KeySpec::default_for(map.column(Field::HumanId).is_some()));
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
    let header_row = source.header_row().unwrap_or(read.source.header_row);
    Ok(ReadStage {
        source,
        validator,
        headers,
        pending_order,
        early: None,
        rows_read_ahead: 0,
        column_problems_told: false,
        header_row,
        keys: KeyCheck {
            keys: KeyFingerprints::new(key),
            first: FirstRows::default(),
        },
    })
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
    /// The fields that identify a row across runs: `--key`, or the file's default.
    pub fn key(&self) -> &KeySpec {
        self.keys.keys.spec()
    }

    /// The input's layout, which the failed-rows file keeps.
    pub fn failed_rows_shape(&self) -> FailedRowsShape {
        FailedRowsShape {
            delimiter: self.source.delimiter().unwrap_or(b','),
            header_row: self.header_row,
        }
    }

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
    /// This thread reads the rows and hands them to `f`; a second thread validates them
    /// (`read_prepared`), in file order, as the human-id check and the date columns' order
    /// need.
    pub fn for_each_row(&mut self, mut f: impl FnMut(RowEvent<'_>) -> anyhow::Result<()>) -> anyhow::Result<usize> {
        let map = self.validator.column_map().clone();
        let mut count = 0;
        // One report line for every row: its strings are written over, not made again.
        let mut report = ReportRow::default();
        let (validator, pending_order, early) = (&mut self.validator, &mut self.pending_order, &mut self.early);
        let keys = &mut self.keys;
        read_prepared(
            self.source.as_mut(),
            |row, checked| {
                check_row(validator, pending_order, early, row, checked)?;
                // Two rows with one key are one run: the second is invalid.
                if matches!(checked.state, RowState::Valid)
                    && let Some(problem) = keys.check(&checked.planned)
                {
                    checked.state = RowState::Invalid(vec![problem]);
                }
                Ok(())
            },
            |row, checked| {
                if matches!(checked.state, RowState::Blank) {
                    return Ok(());
                }
                count += 1;
                hand_over(&mut report, &map, row, checked, &mut f)
            },
        )?;
        self.check_early_orders()?;
        Ok(count)
    }

    /// After the reading: a date column's order taken from its first rows must be the
    /// order every row gives, or the rows handed over are to be read again.
    fn check_early_orders(&mut self) -> anyhow::Result<()> {
        let Some(early) = self.early.take() else {
            return Ok(());
        };
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
        Ok(())
    }
}

/// Validates `row` into `checked`, learning the date columns' order first if the row is
/// the first to need it.
fn check_row(
    validator: &mut Validator,
    pending_order: &mut Option<PendingOrder>,
    early: &mut Option<EarlyOrders>,
    row: &SourceRow,
    checked: &mut CheckedRow,
) -> anyhow::Result<()> {
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
}

/// Hands a checked row to `f`, with its report line started.
fn hand_over(
    report: &mut ReportRow,
    map: &ColumnMap,
    row: &SourceRow,
    checked: &mut CheckedRow,
    f: &mut impl FnMut(RowEvent<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    start_report(report, map, row);
    match &mut checked.state {
        RowState::Valid => f(RowEvent::Valid {
            report,
            planned: &checked.planned,
            row,
        }),
        RowState::Invalid(problems) => {
            // Taken, not borrowed: an invalid row is rare, and `f` keeps its problems.
            let problems = std::mem::take(problems);
            report.outcome = Outcome::Invalid;
            report.error = Some(row_error(&problems));
            f(RowEvent::Invalid {
                report,
                problems,
                row: Some(row),
            })
        }
        RowState::Blank => Ok(()),
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

/// Starts `report` afresh for `row`: its number, and its title and human id as the cells
/// hold them (trimmed), written over the last row's strings.
fn start_report(report: &mut ReportRow, map: &ColumnMap, row: &SourceRow) {
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
        let text = crate::read::row::trim(&text);
        crate::validate::set_option(slot, Some(text).filter(|text| !text.is_empty()));
    }
}

pub(crate) fn row_error(problems: &[Problem]) -> String {
    problems.iter().map(Problem::in_row).collect::<Vec<_>>().join("; ")
}

/// Runs `pass` over the rows of `stage`. When a date column's order, taken from its first
/// rows, is overturned by a later row, what the pass made is dropped and it runs once more
/// over the input opened again, which learns each order from the whole column.
pub(crate) fn read_again_if_overturned<T>(
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
            input: crate::read::Input::File(path),
            source: crate::read::SourceOptions::default(),
            columns: BTreeMap::new(),
            rules,
            key: None,
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
}
