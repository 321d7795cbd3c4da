//! Learning a date column's dd/mm order: the whole protocol. A column's order comes from
//! `--date-order`, or from its own values (a first part over 12 proves dd/mm, a second
//! part over 12 proves mm/dd). A workbook's date columns are gone over when it is opened;
//! delimited text is read again only when the first value that needs the order comes up,
//! either whole, or (when the caller can read again) only up to each column's first
//! proving value, with the guess checked against every row at the end.

use std::ops::ControlFlow;

use anyhow::anyhow;

use chrono_tz::Tz;

use super::dates::{self, DateError, DateOrder, DateValue, DayBound, OrderFrom, read_text, year_last_parts};
use super::{FieldReader, RowRules, Validator, Value};
use crate::read::mapping::{ColumnMap, Field};
use crate::read::pass::read_each;
use crate::read::row::Cell;
use crate::read::row::SourceRow;
use crate::read::{Input, RowSource, SourceOptions, open_source};

/// A date column's order taken from the first rows that prove one, and checked against
/// every row at the end of the reading (see [`ReadStage::settle_orders_early`]).
#[derive(Default)]
pub(super) struct EarlyOrders {
    /// The date values of every row read so far.
    pub(super) seen: DateEvidence,
    /// The columns whose order came from the first rows only.
    pub(super) guessed: Vec<Field>,
    /// Rows the readings for the first proofs went through.
    pub(super) rows_read_ahead: usize,
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
pub(super) struct PendingOrder {
    pub(super) input: Input,
    pub(super) source: SourceOptions,
    pub(super) columns: Vec<usize>,
}

/// The evidence for each date column's dd/mm order, from every row's date columns. Only
/// those cells are filled, but every field is still checked, so this reading fails on the
/// same rows, with the same errors, as the main one (a row whose columns have shifted is
/// passed over: it proves nothing).
pub(super) fn date_evidence(
    source: &mut dyn RowSource,
    map: &ColumnMap,
    columns: &[usize],
) -> anyhow::Result<DateEvidence> {
    let mut evidence = DateEvidence::default();
    // Never stopped early: every row is read.
    let _every_row = read_each(source, Some(columns), |row| {
        evidence.observe(map, row);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(evidence)
}

/// Learns the date columns' order from a fresh reading of the input.
pub(super) fn learn_date_orders(pending: &PendingOrder, validator: &mut Validator) -> anyhow::Result<()> {
    let mut source = open_source(&pending.input, &pending.source).map_err(|e| anyhow!("{e}"))?;
    let evidence = date_evidence(source.as_mut(), validator.column_map(), &pending.columns)?;
    validator.learn_orders(&evidence);
    Ok(())
}

/// Learns the order of the date columns that `row` needs from a fresh reading of the
/// input that stops once each of them has a value proving one. A reading that gets to
/// the end of the file settles every pending column for good; one that stops early
/// only guesses, and the guess is checked when the main reading ends.
pub(super) fn learn_date_orders_early(
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
    let mut source = open_source(&pending.input, &pending.source).map_err(|e| anyhow!("{e}"))?;
    let map = validator.column_map();
    let mut evidence = DateEvidence::default();
    // Stops once its columns prove an order.
    let read = read_each(source.as_mut(), Some(&pending.columns), |row| {
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

/// Collects, over every value of one column, the evidence for dd/mm vs mm/dd.
///
/// Only slash-style dates with the year last count (`03/04/2024`, `03-04-2024`); dotted,
/// year-first and month-name dates carry their own order. Skip this when `--date-order`
/// is given: the flag wins.
#[derive(Debug, Default, Clone)]
pub struct OrderEvidence {
    /// The first value that can only be day-first, with its row.
    dmy: Option<(String, usize)>,
    /// The first value that can only be month-first, with its row.
    mdy: Option<(String, usize)>,
    /// The first value that reads differently either way.
    ambiguous: Option<(String, usize)>,
}

impl OrderEvidence {
    pub fn observe(&mut self, text: &str, row: usize) {
        let text = crate::read::row::trim(text);
        let Some((first, second)) = year_last_parts(text) else {
            return;
        };
        // A value proves its order only if it is a date read so (`29/02/2023` is not).
        let is_date = |order| read_text(text, Some((order, OrderFrom::Column))).is_ok();
        // Only the first of each kind is kept: a slot already filled needs no parsing.
        let (slot, order) = match (first, second) {
            (13..=31, 1..=12) => (&mut self.dmy, Some(DateOrder::Dmy)),
            (1..=12, 13..=31) => (&mut self.mdy, Some(DateOrder::Mdy)),
            (1..=12, 1..=12) if first != second => (&mut self.ambiguous, None),
            // Equal parts read the same either way; anything else is no date at all,
            // and parsing the value will say so.
            _ => return,
        };
        if slot.is_none() && order.is_none_or(is_date) {
            *slot = Some((text.to_owned(), row));
        }
    }

    /// Whether some value seen so far can only be read in one order.
    pub fn proves_an_order(&self) -> bool {
        self.dmy.is_some() || self.mdy.is_some()
    }

    /// The column's order: `None` when no value needs one. `column` is the header, for messages.
    pub fn resolve(&self, column: &str) -> Result<Option<DateOrder>, DateError> {
        match (&self.dmy, &self.mdy, &self.ambiguous) {
            (Some((dmy_value, dmy_row)), Some((mdy_value, mdy_row)), _) => Err(DateError::ConflictingOrder {
                column: column.to_owned(),
                dmy_value: dmy_value.clone(),
                dmy_row: *dmy_row,
                mdy_value: mdy_value.clone(),
                mdy_row: *mdy_row,
            }),
            (Some(_), None, _) => Ok(Some(DateOrder::Dmy)),
            (None, Some(_), _) => Ok(Some(DateOrder::Mdy)),
            (None, None, Some((value, row))) => Err(DateError::UndecidedOrder {
                column: column.to_owned(),
                value: value.clone(),
                row: *row,
            }),
            (None, None, None) => Ok(None),
        }
    }
}

/// The evidence for dd/mm vs mm/dd in the two date columns, gathered over the whole
/// file before any row is validated.
#[derive(Default)]
pub struct DateEvidence {
    start: OrderEvidence,
    end: OrderEvidence,
}

impl DateEvidence {
    /// Whether some value of the column (`Field::StartDate` or `Field::EndDate`) seen so
    /// far can only be read in one order.
    pub fn proves_an_order(&self, field: Field) -> bool {
        match field {
            Field::StartDate => self.start.proves_an_order(),
            _ => self.end.proves_an_order(),
        }
    }

    pub fn observe(&mut self, map: &ColumnMap, row: &SourceRow) {
        // A row whose columns have shifted proves nothing about a column.
        if row.overflow.is_some() {
            return;
        }
        for (field, evidence) in [(Field::StartDate, &mut self.start), (Field::EndDate, &mut self.end)] {
            if let Some(Cell::Text(text)) = map.column(field).and_then(|c| row.cell(c)) {
                evidence.observe(text, row.number);
            }
        }
    }
}

/// A date column's order: given by the flag, inferred, or not needed; or, when the
/// column proves neither order or both, the message every ambiguous value gets.
#[derive(Debug, Clone)]
pub(super) enum ColumnOrder {
    /// From `--date-order`, or `None`: no value needs one.
    Known(Option<DateOrder>),
    /// Proved by the column's own values.
    Inferred(DateOrder),
    Unsettled(String),
    /// The column proves neither order, but the file's other date column proves one: the
    /// order, and the note that says so.
    Borrowed(DateOrder, String),
    /// Not learned yet: the pipeline learns it (reads the column) before validating the
    /// first row whose value may need it ([`Validator::row_may_need_order`]); values
    /// before that read the same in every order.
    Pending,
}

/// Each date column's order (start, end): the flag's, or what the column's values prove.
pub(super) fn column_orders(
    map: &ColumnMap,
    headers: &[String],
    rules: &RowRules,
    evidence: &DateEvidence,
) -> (ColumnOrder, ColumnOrder) {
    let order_of = |field: Field, evidence: &OrderEvidence| {
        if rules.date_order.is_some() {
            return ColumnOrder::Known(rules.date_order);
        }
        let column = map
            .column(field)
            .and_then(|c| headers.get(c))
            .cloned()
            .unwrap_or_default();
        match evidence.resolve(&column) {
            Ok(Some(order)) => ColumnOrder::Inferred(order),
            Ok(None) => ColumnOrder::Known(None),
            Err(e) => ColumnOrder::Unsettled(e.to_string()),
        }
    };
    let (mut start, mut end) = (
        order_of(Field::StartDate, &evidence.start),
        order_of(Field::EndDate, &evidence.end),
    );
    let header = |field: Field| {
        map.column(field)
            .and_then(|c| headers.get(c))
            .cloned()
            .unwrap_or_default()
    };
    // A column that proves nothing takes the order the other one proves: one file is
    // written by one hand (or one export), in one order.
    if let (ColumnOrder::Inferred(order), ColumnOrder::Unsettled(_)) = (&start, &end)
        && !evidence.end.proves_an_order()
    {
        end = borrowed(
            *order,
            &header(Field::EndDate),
            &header(Field::StartDate),
            &evidence.start,
        );
    } else if let (ColumnOrder::Unsettled(_), ColumnOrder::Inferred(order)) = (&start, &end)
        && !evidence.start.proves_an_order()
    {
        start = borrowed(
            *order,
            &header(Field::StartDate),
            &header(Field::EndDate),
            &evidence.end,
        );
    }
    (start, end)
}

/// `column` proves no order; `from`, whose evidence is `proof`, proves `order`.
fn borrowed(order: DateOrder, column: &str, from: &str, proof: &OrderEvidence) -> ColumnOrder {
    let (name, example) = match order {
        DateOrder::Dmy => ("day first (dd/mm)", &proof.dmy),
        _ => ("month first (mm/dd)", &proof.mdy),
    };
    let shown = example
        .as_ref()
        .map(|(value, row)| format!(" (`{value}`, row {row})"))
        .unwrap_or_default();
    ColumnOrder::Borrowed(
        order,
        format!("`{column}` proves no date order on its own: it is read {name}, as `{from}` proves{shown}"),
    )
}

impl Validator {
    /// Leaves the date columns' order to be learned later, when a row first needs it
    /// ([`Validator::learn_orders`]); with `--date-order` there is nothing to learn.
    pub fn defer_orders(&mut self) {
        if self.rules.date_order.is_none() {
            self.start_order = ColumnOrder::Pending;
            self.end_order = ColumnOrder::Pending;
        }
    }

    /// The date columns' order, from the evidence of every row.
    pub fn learn_orders(&mut self, evidence: &DateEvidence) {
        (self.start_order, self.end_order) = column_orders(&self.map, &self.headers, &self.rules, evidence);
    }

    /// While the order is pending: whether this row has a date value whose reading may
    /// depend on it (its cell, or the default when the cell is blank).
    pub fn row_may_need_order(&self, row: &SourceRow) -> bool {
        self.columns_needing_order(row).iter().any(|needs| *needs)
    }

    /// Of the date columns (start, end) whose order is still pending, those whose value in
    /// this row may depend on it.
    /// A row whose columns have shifted needs none: its one problem is the shift.
    pub fn columns_needing_order(&self, row: &SourceRow) -> [bool; 2] {
        let mut problems = Vec::new();
        let fields = FieldReader {
            v: self,
            row,
            problems: &mut problems,
        };
        let needs = |field: Field| {
            row.overflow.is_none()
                && self.order_pending(field)
                && match fields.value(field) {
                    Some(Value::Cell(Cell::Text(text))) => dates::may_need_order(text),
                    Some(Value::Default(text)) => dates::may_need_order(text),
                    _ => false,
                }
        };
        [needs(Field::StartDate), needs(Field::EndDate)]
    }

    /// The order a date column (`Field::StartDate` or `Field::EndDate`) is read in.
    pub(super) fn column_order(&self, field: Field) -> &ColumnOrder {
        match field {
            Field::StartDate => &self.start_order,
            _ => &self.end_order,
        }
    }

    /// Whether a date column's order is still to be learned ([`Validator::defer_orders`]).
    pub fn order_pending(&self, field: Field) -> bool {
        matches!(self.column_order(field), ColumnOrder::Pending)
    }

    /// One date column's order (`Field::StartDate` or `Field::EndDate`), from `evidence`.
    pub fn learn_order(&mut self, field: Field, evidence: &DateEvidence) {
        let (start, end) = column_orders(&self.map, &self.headers, &self.rules, evidence);
        match field {
            Field::StartDate => self.start_order = start,
            _ => self.end_order = end,
        }
    }

    /// Whether `evidence` (of every row) settles the column's order as it stands now.
    pub fn order_holds(&self, field: Field, evidence: &DateEvidence) -> bool {
        let (start, end) = column_orders(&self.map, &self.headers, &self.rules, evidence);
        let then = if field == Field::StartDate { start } else { end };
        match (self.column_order(field), then) {
            (ColumnOrder::Inferred(a), ColumnOrder::Inferred(b)) => *a == b,
            (ColumnOrder::Known(a), ColumnOrder::Known(b)) => *a == b,
            (ColumnOrder::Borrowed(a, _), ColumnOrder::Borrowed(b, _)) => *a == b,
            _ => false,
        }
    }

    /// Problems with whole columns (a date column whose order cannot be settled).
    pub fn column_problems(&self) -> Vec<String> {
        [&self.start_order, &self.end_order]
            .into_iter()
            .filter_map(|o| match o {
                ColumnOrder::Unsettled(message) => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// Notes on the date columns: one whose order the other column settled.
    pub fn column_notes(&self) -> Vec<String> {
        [&self.start_order, &self.end_order]
            .into_iter()
            .filter_map(|o| match o {
                ColumnOrder::Borrowed(_, note) => Some(note.clone()),
                _ => None,
            })
            .collect()
    }
}

pub(super) fn parse_text_date(text: &str, bound: DayBound, order: &ColumnOrder, tz: Tz) -> Result<i64, String> {
    match order {
        ColumnOrder::Known(order) => {
            dates::parse_date(DateValue::Text(text), bound, *order, tz).map_err(|e| e.to_string())
        }
        // As with the flag, but a message must not credit a flag that was never given.
        ColumnOrder::Inferred(order) | ColumnOrder::Borrowed(order, _) => {
            dates::parse_date_by(DateValue::Text(text), bound, Some((*order, OrderFrom::Column)), tz)
                .map_err(|e| e.to_string())
        }
        // The column as a whole cannot settle dd/mm vs mm/dd: every value that needs the
        // order gets the column's message; values that do not need it still parse.
        // Only values that read the same in every order get here (see `ColumnOrder::Pending`).
        ColumnOrder::Pending => dates::parse_date(DateValue::Text(text), bound, None, tz).map_err(|e| e.to_string()),
        ColumnOrder::Unsettled(message) if dates::year_last_parts(text).is_some() => {
            // The column's order is unknown, but some values do not depend on it: one that
            // reads the same either way (`05/05/2024`) stands, and one that is no date in
            // either order (`31/31/2024`) gets its own error, which the order would not fix.
            let read = |order| dates::parse_date(DateValue::Text(text), bound, Some(order), tz);
            match (read(DateOrder::Dmy), read(DateOrder::Mdy)) {
                (Ok(day_first), Ok(month_first)) if day_first == month_first => Ok(day_first),
                // Read without an order, its message says why (`because the first part is over 12`).
                (Err(e), Err(_)) => Err(dates::parse_date(DateValue::Text(text), bound, None, tz)
                    .err()
                    .unwrap_or(e)
                    .to_string()),
                _ => Err(message.clone()),
            }
        }
        // Values with no year-last slash date read the same in every order.
        ColumnOrder::Unsettled(_) => {
            dates::parse_date(DateValue::Text(text), bound, None, tz).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::validate::dates::parse_date;
    use chrono_tz::UTC;

    /// The evidence of a column holding `values`, from row 2 on.
    pub(in crate::validate) fn evidence(values: &[&str]) -> OrderEvidence {
        let mut evidence = OrderEvidence::default();
        for (i, value) in values.iter().enumerate() {
            evidence.observe(value, i + 2);
        }
        evidence
    }

    #[test]
    fn order_evidence_resolves_a_column() {
        let cases: &[(&[&str], Option<DateOrder>)] = &[
            (&[], None),
            (&["", "2024-03-04", "04.03.2024", "4 Mar 2024", "1710667800"], None),
            (&["05/05/2024", "12/12/2024 10:00"], None),
            (&["03/04/2024", "17/03/2024", "01/02/2024"], Some(DateOrder::Dmy)),
            (&["13-01-2024 09:00"], Some(DateOrder::Dmy)),
            (&["03/04/2024", "03/17/2024 9:30 AM"], Some(DateOrder::Mdy)),
            (&["3/4/2024", "12-31-2024"], Some(DateOrder::Mdy)),
            // A value that is no date read its way proves nothing (no 29 February in 2023).
            (&["03/17/2024", "29/02/2023"], Some(DateOrder::Mdy)),
            // Values that are no date at all prove nothing; parsing reports them.
            (
                &["32/01/2024", "13/13/2024", "00/13/2024", "17/03/24", "03/04-2024"],
                None,
            ),
            // Dotted dates are always day-first; they neither prove nor need an order.
            (&["05.02.2024", "13.02.2024", "03/17/2024"], Some(DateOrder::Mdy)),
            // A weekday in front proves as much as the date alone.
            (&["Wed, 03/04/2024", "Sat, 13/04/2024"], Some(DateOrder::Dmy)),
            (
                &["Wednesday 03/04/2024", "Monday 04/15/2024 10:00"],
                Some(DateOrder::Mdy),
            ),
        ];
        for (values, want) in cases {
            assert_eq!(evidence(values).resolve("Start"), Ok(*want), "{values:?}");
        }
    }

    #[test]
    fn order_evidence_reports_conflicts_and_indecision() {
        let err = evidence(&["01/02/2024", "17/03/2024", "18/03/2024", "03/17/2024"])
            .resolve("Start Date")
            .unwrap_err();
        assert_eq!(
            err,
            DateError::ConflictingOrder {
                column: "Start Date".to_owned(),
                dmy_value: "17/03/2024".to_owned(),
                dmy_row: 3,
                mdy_value: "03/17/2024".to_owned(),
                mdy_row: 5,
            }
        );
        let message = err.to_string();
        for needle in [
            "`Start Date`",
            "`17/03/2024` (row 3)",
            "`03/17/2024` (row 5)",
            "--date-order",
        ] {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }

        let err = evidence(&["2024-01-01", " 03/04/2024 ", "01/02/2024"])
            .resolve("Due")
            .unwrap_err();
        assert_eq!(
            err,
            DateError::UndecidedOrder {
                column: "Due".to_owned(),
                value: "03/04/2024".to_owned(),
                row: 3,
            }
        );
        let message = err.to_string();
        for needle in ["`Due`", "`03/04/2024` (row 3)", "--date-order dmy", "--date-order mdy"] {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }

    #[test]
    fn inferred_order_reads_the_ambiguous_values() {
        let values = ["03/04/2024", "17/03/2024"];
        let order = evidence(&values).resolve("Start").unwrap();
        assert_eq!(order, Some(DateOrder::Dmy));
        assert_eq!(
            parse_date(DateValue::Text(values[0]), DayBound::Start, order, UTC),
            Ok(1_712_102_400_000)
        );
    }
}
