//! A source row → the exact create-test-run request, or every problem with it. Pure:
//! nothing here touches files, the network or the terminal.

pub mod date_order;
pub mod dates;
pub mod stage;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono_tz::Tz;

use crate::read::first_rows::FirstRows;
use crate::read::mapping::{ColumnMap, Field};
use crate::read::row::{Cell, SourceRow, cell_ref, trim};
use crate::request::{EmailAssignee, PlannedRow, SelectionFilter};
use date_order::{ColumnOrder, DateEvidence, column_orders, parse_text_date};
use dates::{DateOrder, DateValue, DayBound, TimestampUnit};

impl EmailAssignee {
    /// The problem to report when the address matches no user.
    pub fn problem(&self, row: usize, message: String) -> Problem {
        Problem {
            row,
            column: self.column.clone(),
            cell: self.cell.clone(),
            value: Some(self.email.clone()),
            kind: ProblemKind::NotEmail,
            message,
        }
    }
}

/// What sort of problem, for grouping thousands of them into a readable summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    Missing,
    NotUuid,
    BadStatus,
    BadSelectionType,
    BadDate,
    EndBeforeStart,
    DuplicateHumanId,
    /// Two rows with one key (`--key`).
    DuplicateKey,
    ErrorCell,
    NotEmail,
    /// The source could not read the row at all (bad bytes, an oversized cell).
    Unreadable,
}

impl ProblemKind {
    pub fn describe(self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing value",
            ProblemKind::NotUuid => "not a UUID",
            ProblemKind::BadStatus => "unknown status",
            ProblemKind::BadSelectionType => "unsupported selection type",
            ProblemKind::BadDate => "not a date",
            ProblemKind::EndBeforeStart => "end before start",
            ProblemKind::DuplicateHumanId => "duplicate human_id",
            ProblemKind::DuplicateKey => "duplicate key",
            ProblemKind::ErrorCell => "error cell",
            ProblemKind::NotEmail => "unknown assignee",
            ProblemKind::Unreadable => "unreadable row",
        }
    }
}

/// One problem with one row: where it is, what was there, and what would be accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub row: usize,
    pub column: Option<String>,
    pub cell: Option<String>,
    pub value: Option<String>,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The reader's message names the file, row and column itself.
        if self.kind == ProblemKind::Unreadable {
            return f.write_str(&self.message);
        }
        write!(f, "row {}", self.row)?;
        match (&self.column, &self.cell) {
            (Some(column), Some(cell)) => write!(f, ", column `{column}` ({cell})")?,
            (Some(column), None) => write!(f, ", column `{column}`")?,
            _ => {}
        }
        write!(f, ": {}", self.value_and_message())
    }
}

impl Problem {
    /// The problem within its row, as the report's `error` says it: `Status: `OPEN`: …`.
    pub fn in_row(&self) -> String {
        match (&self.column, &self.cell) {
            (Some(column), Some(cell)) => format!("{column} ({cell}): {}", self.value_and_message()),
            (Some(column), None) => format!("{column}: {}", self.value_and_message()),
            _ => self.value_and_message(),
        }
    }

    /// The value (shortened) and the message; date messages quote the value themselves,
    /// so it is said once.
    fn value_and_message(&self) -> String {
        match &self.value {
            Some(value) if !self.message.contains(&format!("`{value}`")) => {
                format!("`{}`: {}", shorten(value, 80), self.message)
            }
            _ => self.message.clone(),
        }
    }
}

/// Long values are cut for messages (the failed-rows file keeps them whole).
fn shorten(value: &str, max: usize) -> String {
    let one_line = value.replace(['\r', '\n'], "⏎");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// How values are read: everything a row needs to know that is not in the row.
#[derive(Debug, Clone)]
pub struct RowRules {
    pub timezone: Tz,
    /// `--date-order`, if given; otherwise each date column's order is inferred.
    pub date_order: Option<DateOrder>,
    pub list_separators: Vec<char>,
    pub timestamp_unit: TimestampUnit,
    /// Values for fields whose column is absent or whose cell is blank: `[defaults]`,
    /// `--status`, `--project-id`.
    pub defaults: BTreeMap<Field, String>,
}

impl Default for RowRules {
    fn default() -> Self {
        RowRules {
            timezone: Tz::UTC,
            date_order: None,
            list_separators: vec![',', ';', '|', '\n', '\r'],
            timestamp_unit: TimestampUnit::Seconds,
            defaults: BTreeMap::new(),
        }
    }
}

/// Turns rows into requests. Holds the state that spans rows (human ids seen so far).
pub struct Validator {
    map: ColumnMap,
    headers: Vec<String>,
    is_workbook: bool,
    rules: RowRules,
    start_order: ColumnOrder,
    end_order: ColumnOrder,
    /// Each human id seen, by a 64-bit fingerprint, with the first row that had it: a
    /// million ids as strings took 80 MB. Two different ids share a fingerprint with a
    /// chance of about n²/2⁶⁵ (3 in 10⁸ for a million rows), and then the message names
    /// a row whose id visibly differs: a false alarm, never a silent loss.
    human_ids: FirstRows,
    separators: Separators,
}

impl Validator {
    pub fn new(
        map: ColumnMap,
        headers: Vec<String>,
        is_workbook: bool,
        rules: RowRules,
        evidence: &DateEvidence,
    ) -> Self {
        let (start_order, end_order) = column_orders(&map, &headers, &rules, evidence);
        Validator {
            map,
            headers,
            is_workbook,
            start_order,
            end_order,
            human_ids: FirstRows::default(),
            separators: Separators::new(&rules.list_separators),
            rules,
        }
    }

    pub fn column_map(&self) -> &ColumnMap {
        &self.map
    }

    /// Checks the configured defaults once, so a bad default is a setup error rather
    /// than the same problem on every row.
    pub fn check_defaults(rules: &RowRules) -> Result<(), String> {
        let probe = Validator {
            map: ColumnMap::empty(),
            headers: Vec::new(),
            is_workbook: false,
            rules: rules.clone(),
            start_order: ColumnOrder::Known(rules.date_order),
            end_order: ColumnOrder::Known(rules.date_order),
            human_ids: FirstRows::default(),
            separators: Separators::new(&rules.list_separators),
        };
        let mut problems = Vec::new();
        let mut fields = FieldReader {
            v: &probe,
            row: &SourceRow::default(),
            problems: &mut problems,
        };
        for (field, value) in &rules.defaults {
            match field {
                Field::ProjectId | Field::AssigneeId => {
                    if let Err(message) = parse_uuid(value)
                        && !(*field == Field::AssigneeId && looks_like_email(value))
                    {
                        return Err(format!("the default {field} `{value}` is {message}"));
                    }
                }
                Field::Status => {
                    if let Err(message) = parse_status(value) {
                        return Err(format!("the default status `{value}`: {message}"));
                    }
                }
                Field::TestCaseIds | Field::EnvironmentIds => {
                    fields.uuid_list_into(*field, &mut Vec::new());
                }
                Field::StartDate | Field::EndDate => {
                    fields.date(*field);
                }
                _ => {}
            }
        }
        match problems.first() {
            Some(p) => Err(format!(
                "the default {} `{}`: {}",
                p.column.as_deref().unwrap_or(""),
                p.value.as_deref().unwrap_or(""),
                p.message
            )),
            None => Ok(()),
        }
    }

    /// Validates one row. Every problem is collected; none stops the others being found.
    pub fn validate(&mut self, row: &SourceRow) -> Result<PlannedRow, Vec<Problem>> {
        let mut planned = PlannedRow::default();
        self.validate_into(row, &mut planned)?;
        Ok(planned)
    }

    /// [`Validator::validate`] into a request made for an earlier row: its strings are
    /// written over, so a file of a million rows allocates for the first few only. On
    /// `Err`, `out` holds a part of the row and is not to be used.
    pub fn validate_into(&mut self, row: &SourceRow, out: &mut PlannedRow) -> Result<(), Vec<Problem>> {
        let checked = self.check(row, out);
        self.check_unique(row, checked)
    }

    /// Everything [`Validator::validate`] checks except that the human id is unique: what
    /// needs no other row.
    fn check(&self, row: &SourceRow, out: &mut PlannedRow) -> Checked {
        let mut problems = Vec::new();
        let mut fields = FieldReader {
            v: self,
            row,
            problems: &mut problems,
        };
        // A row whose columns have shifted has that one problem: what its cells seem to
        // say is not to be trusted, but its human_id still counts.
        if let Some(message) = &row.overflow {
            let human_id_fingerprint = fields.text(Field::HumanId).as_deref().map(fingerprint);
            let problem = Problem {
                row: row.number,
                column: None,
                cell: None,
                value: None,
                kind: ProblemKind::Unreadable,
                message: message.clone(),
            };
            return Checked {
                result: Err(vec![problem]),
                human_id_fingerprint,
            };
        }
        let body = &mut out.body;

        match fields.text(Field::Title) {
            Some(title) => set_string(&mut body.title, &title),
            // An error cell has said what is wrong with the title already.
            None if fields.has_problem(Field::Title) => {}
            None => fields.problem(
                Field::Title,
                None,
                ProblemKind::Missing,
                "a title is required".to_string(),
            ),
        }
        set_option(&mut body.description, fields.text(Field::Description).as_deref());
        body.status = match fields.text(Field::Status) {
            None => "ACTIVE",
            Some(text) => match parse_status(&text) {
                Ok(status) => status,
                Err(message) => {
                    fields.problem(Field::Status, Some(text.into_owned()), ProblemKind::BadStatus, message);
                    ""
                }
            },
        };
        if !fields.uuid_into(Field::ProjectId, &mut body.project_id) && !fields.has_problem(Field::ProjectId) {
            fields.problem(
                Field::ProjectId,
                None,
                ProblemKind::Missing,
                "no project: the row has no project_id, and neither --project-id nor [defaults] project_id is set"
                    .to_string(),
            );
        }
        let human_id = fields.text(Field::HumanId);
        set_option(&mut body.human_id, human_id.as_deref());
        let human_id_fingerprint = human_id.as_deref().map(fingerprint);
        if let Some(fingerprint) = human_id_fingerprint {
            // Looked up at the end of the row (`check_unique`): fetched meanwhile.
            self.human_ids.prefetch(fingerprint);
        }
        body.selection_type = match fields.text(Field::SelectionType) {
            None => "STATIC",
            Some(s) if s.eq_ignore_ascii_case("static") => "STATIC",
            Some(s) => {
                fields.problem(
                    Field::SelectionType,
                    Some(s.into_owned()),
                    ProblemKind::BadSelectionType,
                    "only STATIC is supported (a sheet cannot carry dynamic filters); leave it empty or write STATIC"
                        .to_string(),
                );
                ""
            }
        };
        // One `id IN (…)` filter when there are test cases, none otherwise; the filter
        // and its strings are kept from the last row.
        body.static_selection_filters.truncate(1);
        if body.static_selection_filters.is_empty() {
            body.static_selection_filters.push(SelectionFilter {
                field: "id",
                operator: "IN",
                values: Vec::new(),
            });
        }
        fields.uuid_list_into(Field::TestCaseIds, &mut body.static_selection_filters[0].values);
        if body.static_selection_filters[0].values.is_empty() {
            body.static_selection_filters.clear();
        }
        let start_date = fields.date(Field::StartDate);
        let end_date = fields.date(Field::EndDate);
        if let (Some(start), Some(end)) = (start_date, end_date)
            && end < start
        {
            let end_text = fields.raw_text(Field::EndDate);
            let start_text = fields.raw_text(Field::StartDate).unwrap_or_default();
            fields.problem(
                Field::EndDate,
                end_text,
                ProblemKind::EndBeforeStart,
                format!("the end is before the start (`{start_text}`): swap them or fix the dates"),
            );
        }
        let unit = self.rules.timestamp_unit;
        body.start_date = start_date.map(|ms| unit.convert(ms));
        body.end_date = end_date.map(|ms| unit.convert(ms));
        if let Some(EmailAssignee { email, column, .. }) = out.assignee_email.take() {
            spare::keep(email);
            spare::keep_option(column);
        }
        match fields.text(Field::AssigneeId) {
            None => set_option(&mut body.assignee_id, None),
            Some(value) => match uuid_text(&value) {
                Some(id) => set_option(&mut body.assignee_id, Some(&id)),
                None if looks_like_email(&value) => {
                    set_option(&mut body.assignee_id, None);
                    out.assignee_email = Some(EmailAssignee {
                        email: spare::string_of(&value),
                        column: fields.header_str(Field::AssigneeId).map(spare::string_of),
                        cell: fields.cell(Field::AssigneeId),
                    });
                }
                None => {
                    set_option(&mut body.assignee_id, None);
                    fields.problem(
                        Field::AssigneeId,
                        Some(value.into_owned()),
                        ProblemKind::NotUuid,
                        format!("{NOT_A_UUID}, nor an e-mail address; give the user's UUID or e-mail"),
                    );
                }
            },
        }
        fields.list_into(Field::LabelNames, &mut body.label_names);
        fields.uuid_list_into(Field::EnvironmentIds, &mut body.environment_ids);
        out.row = row.number;
        Checked {
            result: if problems.is_empty() { Ok(()) } else { Err(problems) },
            human_id_fingerprint,
        }
    }

    /// The rest of [`Validator::validate`], for rows in file order: a human id already seen
    /// in an earlier row is a problem (whether or not either row is otherwise valid).
    fn check_unique(&mut self, row: &SourceRow, checked: Checked) -> Result<(), Vec<Problem>> {
        let Checked {
            mut result,
            human_id_fingerprint,
        } = checked;
        let Some(fingerprint) = human_id_fingerprint else {
            return result;
        };
        let number = u32::try_from(row.number).unwrap_or(u32::MAX);
        let first = self.human_ids.first_or_insert(fingerprint, number);
        // A row whose columns have shifted keeps its one problem; its id still counts.
        if first != number && row.overflow.is_none() {
            let mut problems = Vec::new();
            let mut fields = FieldReader {
                v: self,
                row,
                problems: &mut problems,
            };
            let id = fields.text(Field::HumanId).map(Cow::into_owned);
            fields.problem(
                Field::HumanId,
                id,
                ProblemKind::DuplicateHumanId,
                format!("row {first} has the same human_id; each must be unique in the file"),
            );
            match &mut result {
                Ok(()) => result = Err(problems),
                Err(earlier) => earlier.append(&mut problems),
            }
        }
        result
    }
}

/// A row checked by [`Validator::check`], waiting for [`Validator::check_unique`].
struct Checked {
    result: Result<(), Vec<Problem>>,
    human_id_fingerprint: Option<u64>,
}

/// Reads the fields of one row, recording problems as it goes.
struct FieldReader<'a> {
    v: &'a Validator,
    row: &'a SourceRow,
    problems: &'a mut Vec<Problem>,
}

/// A field's value: from its cell, else from the defaults.
enum Value<'a> {
    Cell(Cell<'a>),
    Default(&'a str),
}

impl<'a> FieldReader<'a> {
    fn value(&self, field: Field) -> Option<Value<'a>> {
        let row: &'a SourceRow = self.row;
        if let Some(column) = self.v.map.column(field)
            && let Some(cell) = row.cell(column)
            && !cell.is_blank()
        {
            return Some(Value::Cell(cell));
        }
        let validator: &'a Validator = self.v;
        validator.rules.defaults.get(&field).map(|d| Value::Default(d.as_str()))
    }

    fn has_problem(&self, field: Field) -> bool {
        let header = self.header_str(field);
        self.problems.iter().any(|p| p.column.as_deref() == header)
    }

    fn header(&self, field: Field) -> Option<String> {
        self.header_str(field).map(str::to_owned)
    }

    fn header_str(&self, field: Field) -> Option<&'a str> {
        let validator: &'a Validator = self.v;
        match validator.map.column(field) {
            Some(column) => validator.headers.get(column).map(String::as_str),
            None => Some(field.name()),
        }
    }

    /// A field's header and, in a workbook, its cell reference.
    fn location(&self, field: Field) -> (Option<String>, Option<String>) {
        (self.header(field), self.cell(field))
    }

    /// The field's cell reference (`C7`), in a workbook.
    fn cell(&self, field: Field) -> Option<String> {
        match self.v.map.column(field) {
            Some(c) if self.v.is_workbook => Some(cell_ref(c, self.row.number)),
            _ => None,
        }
    }

    fn problem(&mut self, field: Field, value: Option<String>, kind: ProblemKind, message: String) {
        let (column, cell) = self.location(field);
        self.problems.push(Problem {
            row: self.row.number,
            column,
            cell,
            value,
            kind,
            message,
        });
    }

    /// The trimmed text of a field, borrowed from its cell when it can be, or None when
    /// blank. An error cell is a problem.
    fn text(&mut self, field: Field) -> Option<Cow<'a, str>> {
        let text = match self.value(field)? {
            Value::Cell(Cell::Error(code)) => {
                self.problem(
                    field,
                    Some(code.to_owned()),
                    ProblemKind::ErrorCell,
                    format!("the cell holds a spreadsheet error; put {} there", field.accepts()),
                );
                return None;
            }
            Value::Cell(cell) => match cell.as_text() {
                Cow::Borrowed(text) => Cow::Borrowed(trim(text)),
                Cow::Owned(text) => Cow::Owned(trim(&text).to_string()),
            },
            Value::Default(d) => Cow::Borrowed(trim(d)),
        };
        (!text.is_empty()).then_some(text)
    }

    /// The untrimmed text of a field, borrowed from its cell when it can be, or None when
    /// blank. An error cell is a problem, as for [`FieldReader::text`].
    fn text_ref(&mut self, field: Field) -> Option<Cow<'a, str>> {
        match self.value(field)? {
            Value::Cell(Cell::Error(_)) => {
                self.text(field);
                None
            }
            Value::Cell(cell) => Some(cell.as_text()),
            Value::Default(d) => Some(Cow::Borrowed(d)),
        }
        .filter(|text| !trim(text).is_empty())
    }

    /// The text as written, for messages.
    fn raw_text(&self, field: Field) -> Option<String> {
        match self.value(field)? {
            Value::Cell(cell) => Some(cell.as_text().into_owned()),
            Value::Default(d) => Some(d.to_string()),
        }
    }

    /// Writes the field's UUID into `out` as the API writes it; false when the field is
    /// blank or not a UUID (a problem).
    fn uuid_into(&mut self, field: Field, out: &mut String) -> bool {
        let Some(text) = self.text(field) else {
            return false;
        };
        match uuid_text(&text) {
            Some(id) => {
                set_string(out, &id);
                true
            }
            None => {
                self.problem(
                    field,
                    Some(text.into_owned()),
                    ProblemKind::NotUuid,
                    NOT_A_UUID.to_string(),
                );
                false
            }
        }
    }

    /// Splits the field into `out` (emptied when the field is blank).
    fn list_into(&mut self, field: Field, out: &mut Vec<String>) {
        match self.text_ref(field) {
            Some(text) => split_into(trim(&text), &self.v.separators, out),
            None => out.clear(),
        }
    }

    /// Splits the field into UUIDs, written as the API writes them, into `out`; emptied
    /// when the field is blank or any item is not a UUID (a problem naming those items).
    fn uuid_list_into(&mut self, field: Field, out: &mut Vec<String>) {
        let mut fill = ListFill::new(out);
        let Some(text) = self.text_ref(field) else {
            fill.finish();
            return;
        };
        let text = trim(&text);
        // Usually every id is already written as the API writes it; then the text is the id.
        if canonical_uuids(text, &self.v.separators, &mut fill) {
            fill.finish();
            return;
        }
        fill.len = 0;
        // Parsed straight from the cell into 16-byte ids, duplicates dropped by value:
        // the same id in upper and lower case is one id.
        let mut ids: Vec<uuid::Uuid> = Vec::with_capacity(8);
        let mut bad: Vec<&str> = Vec::new();
        for_each_item(text, &self.v.separators, |item| match uuid_value(item) {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None if !bad.contains(&item) => bad.push(item),
            None => {}
        });
        if bad.is_empty() {
            let mut buffer = uuid::Uuid::encode_buffer();
            for id in &ids {
                fill.push(id.hyphenated().encode_lower(&mut buffer));
            }
            fill.finish();
            return;
        }
        fill.finish();
        let all = self.raw_text(field);
        let listed = bad
            .iter()
            .map(|b| format!("`{}`", shorten(b, 40)))
            .collect::<Vec<_>>()
            .join(", ");
        self.problem(
            field,
            all,
            ProblemKind::NotUuid,
            format!(
                "{listed} {} not a UUID; expected UUIDs such as 9ac271b6-4e89-4c93-8c75-2d625efa0b2d separated by {}",
                if bad.len() == 1 { "is" } else { "are" },
                describe_separators(&self.v.rules.list_separators)
            ),
        );
    }

    fn date(&mut self, field: Field) -> Option<i64> {
        let value = self.value(field)?;
        let order = self.v.column_order(field);
        let bound = if field == Field::StartDate {
            DayBound::Start
        } else {
            DayBound::End
        };
        let tz = self.v.rules.timezone;
        let parsed = match &value {
            Value::Cell(Cell::Error(_)) => {
                self.text(field);
                return None;
            }
            Value::Cell(Cell::DateTime(dt)) => {
                dates::parse_date(DateValue::DateTime(*dt), bound, None, tz).map_err(|e| e.to_string())
            }
            Value::Cell(cell) => parse_text_date(trim(&cell.as_text()), bound, order, tz),
            Value::Default(text) => parse_text_date(text, bound, order, tz),
        };
        match parsed {
            Ok(ms) => Some(ms),
            Err(message) => {
                let shown = match value {
                    Value::Cell(Cell::DateTime(_)) => self.raw_text(field),
                    Value::Cell(cell) => Some(trim(&cell.as_text()).to_string()),
                    Value::Default(text) => Some(text.to_string()),
                };
                self.problem(field, shown, ProblemKind::BadDate, message);
                None
            }
        }
    }
}

/// Overwrites `out` with `text`, keeping its allocation.
fn set_string(out: &mut String, text: &str) {
    out.clear();
    out.push_str(text);
}

/// Overwrites `out` with `text`, keeping the string it held when there is one; a string
/// let go is kept for the next that needs one (see [`spare`]).
pub(crate) fn set_option(out: &mut Option<String>, text: Option<&str>) {
    match (text, out.as_mut()) {
        (Some(text), Some(held)) => set_string(held, text),
        (Some(text), None) => *out = Some(spare::string_of(text)),
        (None, _) => spare::keep_option(out.take()),
    }
}

/// Strings a request no longer needs, kept for the next that does. A request is written
/// over by the row after it (see [`Validator::validate_into`]), and rows differ in how
/// many labels, environments and test cases they list and whether they have an assignee:
/// without this, the validating thread allocated and freed about two strings a row. The
/// pool is the thread's own, so a string is freed on the thread that made it.
mod spare {
    use std::cell::RefCell;

    /// Strings kept at most; and none that grew past `LARGEST` bytes.
    const MOST: usize = 64;
    const LARGEST: usize = 4096;

    thread_local! {
        static POOL: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// `text` in a kept string, or a new one.
    pub(super) fn string_of(text: &str) -> String {
        let mut held = POOL.with_borrow_mut(Vec::pop).unwrap_or_default();
        held.push_str(text);
        held
    }

    pub(super) fn keep(mut string: String) {
        if string.capacity() == 0 || string.capacity() > LARGEST {
            return;
        }
        string.clear();
        POOL.with_borrow_mut(|pool| {
            if pool.len() < MOST {
                pool.push(string);
            }
        });
    }

    pub(super) fn keep_option(string: Option<String>) {
        if let Some(string) = string {
            keep(string);
        }
    }
}

/// A list written over in place: its first strings are reused for the new items.
struct ListFill<'l> {
    list: &'l mut Vec<String>,
    len: usize,
}

impl<'l> ListFill<'l> {
    fn new(list: &'l mut Vec<String>) -> ListFill<'l> {
        ListFill { list, len: 0 }
    }

    fn contains(&self, item: &str) -> bool {
        // Ids of one length differ early: a word's compare settles most pairs before the
        // library's `memcmp` is called (five test cases make ten pairs).
        let head = |text: &str| text.as_bytes().first_chunk::<8>().copied();
        self.list[..self.len]
            .iter()
            .any(|seen| seen.len() == item.len() && head(seen) == head(item) && seen == item)
    }

    fn push(&mut self, item: &str) {
        match self.list.get_mut(self.len) {
            Some(held) => set_string(held, item),
            None => self.list.push(spare::string_of(item)),
        }
        self.len += 1;
    }

    fn finish(self) {
        for string in self.list.drain(self.len..) {
            spare::keep(string);
        }
    }
}

/// A 64-bit hash of the text, in memory only and never stored. Two ids that share it are
/// taken for one (see [`FirstRows`]), so it must spread like a good hash: foldhash's
/// `quality` variant (hashbrown's, already in the tree) does, in about a third of the
/// instructions of `std`'s SipHash for an id of a dozen bytes.
fn fingerprint(text: &str) -> u64 {
    use std::hash::BuildHasher;
    /// Any fixed seed: the hash must only be the same for the whole run.
    const SEED: u64 = 0x7e57_5167_3a1d_0001;
    foldhash::quality::FixedState::with_seed(SEED).hash_one(text)
}

const NOT_A_UUID: &str = "not a UUID (expected 8-4-4-4-12 hex digits, e.g. c47ade67-0543-4582-a4a5-b7de447c94f5)";

/// A UUID in any common spelling → lower-case hyphenated, which is what the API sends back.
pub fn parse_uuid(text: &str) -> Result<String, String> {
    uuid_text(text)
        .map(Cow::into_owned)
        .ok_or_else(|| NOT_A_UUID.to_string())
}

/// The UUID in `text` as the API writes it: `text` itself (trimmed) when it is written so.
fn uuid_text(text: &str) -> Option<Cow<'_, str>> {
    let text = trim(text);
    if is_canonical_uuid(text) {
        return Some(Cow::Borrowed(text));
    }
    uuid_value(text).map(|id| {
        Cow::Owned(
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                .to_string(),
        )
    })
}

fn parse_status(text: &str) -> Result<&'static str, String> {
    let text = trim(text);
    if text.eq_ignore_ascii_case("ACTIVE") {
        Ok("ACTIVE")
    } else if text.eq_ignore_ascii_case("CLOSED") {
        Ok("CLOSED")
    } else {
        Err("status must be ACTIVE or CLOSED".to_string())
    }
}

pub fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
        && !domain.contains('@')
}

/// Splits on any separator, trims, drops empty entries and later duplicates, into `out`.
fn split_into(text: &str, separators: &Separators, out: &mut Vec<String>) {
    let mut fill = ListFill::new(out);
    for_each_item(text, separators, |item| {
        if !fill.contains(item) {
            fill.push(item);
        }
    });
    fill.finish();
}

/// The list separators, with a byte table for the usual case where all are ASCII:
/// splitting char by char with a list lookup was once the largest single cost of a dry run.
#[derive(Debug, Clone)]
struct Separators {
    chars: Vec<char>,
    /// `Some` when every separator is ASCII: which bytes separate.
    bytes: Option<[bool; 256]>,
}

impl Separators {
    fn new(chars: &[char]) -> Separators {
        let bytes = chars.iter().all(char::is_ascii).then(|| {
            let mut table = [false; 256];
            for c in chars {
                table[*c as usize] = true;
            }
            table
        });
        Separators {
            chars: chars.to_vec(),
            bytes,
        }
    }
}

/// Each non-empty item of a list, trimmed, in order (duplicates included).
fn for_each_item<'t>(text: &'t str, separators: &Separators, mut f: impl FnMut(&'t str)) {
    let mut push = |item: &'t str| {
        let item = trim(item);
        if !item.is_empty() {
            f(item);
        }
    };
    match &separators.bytes {
        Some(table) => {
            let mut start = 0;
            for (i, b) in text.bytes().enumerate() {
                if table[b as usize] {
                    push(&text[start..i]);
                    start = i + 1;
                }
            }
            push(&text[start..]);
        }
        None => text.split(separators.chars.as_slice()).for_each(push),
    }
}

/// A list of UUIDs each written as the API writes them, split as [`for_each_item`] splits
/// it, in one pass over the text: the ids go into `fill`, duplicates left out. False when
/// the list is written any other way (with ASCII separators, an item that is not such a
/// UUID, or is trimmed of other than ASCII spaces); what is in `fill` is then not to be used.
fn canonical_uuids(text: &str, separators: &Separators, fill: &mut ListFill<'_>) -> bool {
    let Some(table) = &separators.bytes else {
        return false;
    };
    let bytes = text.as_bytes();
    let skips = |b: u8| table[b as usize] || b.is_ascii_whitespace();
    let mut at = 0;
    loop {
        while at < bytes.len() && skips(bytes[at]) {
            at += 1;
        }
        if at == bytes.len() {
            return true;
        }
        let Some(item) = text.get(at..at + 36).filter(|item| is_canonical_uuid(item)) else {
            return false;
        };
        at += 36;
        // Only spaces may stand between an id and the separator (or the end) after it.
        while at < bytes.len() && bytes[at].is_ascii_whitespace() && !table[bytes[at] as usize] {
            at += 1;
        }
        if at < bytes.len() && !table[bytes[at] as usize] {
            return false;
        }
        if !fill.contains(item) {
            fill.push(item);
        }
    }
}

/// Lower-case hex in the 8-4-4-4-12 pattern: the form the API writes, and the form a
/// UUID is sent in.
fn is_canonical_uuid(text: &str) -> bool {
    /// Where the hyphens go.
    const HYPHEN: [bool; 36] = {
        let mut at = [false; 36];
        at[8] = true;
        at[13] = true;
        at[18] = true;
        at[23] = true;
        at
    };
    let Ok(bytes) = <&[u8; 36]>::try_from(text.as_bytes()) else {
        return false;
    };
    // Without a branch or a table per byte, the compiler checks 16 bytes at a time.
    let mut wrong = false;
    for (b, hyphen) in bytes.iter().zip(HYPHEN) {
        let hex = b.wrapping_sub(b'0') < 10 || b.wrapping_sub(b'a') < 6;
        wrong |= if hyphen { *b != b'-' } else { !hex };
    }
    !wrong
}

/// A UUID in either plain spelling (hyphenated, or 32 hex digits), any case.
fn uuid_value(text: &str) -> Option<uuid::Uuid> {
    let text = trim(text);
    if text.len() == 36 || text.len() == 32 {
        uuid::Uuid::try_parse(text).ok()
    } else {
        None
    }
}

fn describe_separators(separators: &[char]) -> String {
    separators
        .iter()
        .filter(|c| **c != '\r')
        .map(|c| match c {
            '\n' => "new lines".to_string(),
            '\t' => "tabs".to_string(),
            c => format!("`{c}`"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::mapping::map_headers;

    const PROJECT: &str = "c47ade67-0543-4582-a4a5-b7de447c94f5";
    const CASE_A: &str = "9ac271b6-4e89-4c93-8c75-2d625efa0b2d";
    const CASE_B: &str = "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091";

    #[test]
    fn ids_that_differ_in_one_place_have_different_fingerprints() {
        // Sequential ids, and ids one character apart anywhere: the shapes a sheet holds.
        let mut seen = std::collections::HashSet::new();
        for n in 0..200_000 {
            assert!(seen.insert(fingerprint(&format!("REL-{n:07}"))), "REL-{n:07}");
        }
        let base = "TR-2024-0001-smoke".to_string();
        for at in 0..base.len() {
            for c in b'!'..=b'~' {
                let mut id = base.clone().into_bytes();
                id[at] = c;
                let id = String::from_utf8(id).unwrap_or_default();
                let fresh = seen.insert(fingerprint(&id));
                assert!(fresh || id == base, "{id}");
            }
        }
        assert_ne!(fingerprint(""), fingerprint(" "));
    }

    fn validator(headers: &[&str], rows: &[SourceRow], rules: RowRules, workbook: bool) -> Validator {
        let headers: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
        let map = map_headers(&headers, &BTreeMap::new()).unwrap();
        let mut evidence = DateEvidence::default();
        for row in rows {
            evidence.observe(&map, row);
        }
        Validator::new(map, headers, workbook, rules, &evidence)
    }

    fn text_row(number: usize, cells: &[&str]) -> SourceRow {
        // Empty text is an empty cell, as the sources read it.
        SourceRow::new(number, &cells.iter().map(|c| Cell::Text(c)).collect::<Vec<_>>())
    }

    fn rules_with_project() -> RowRules {
        let mut rules = RowRules::default();
        rules.defaults.insert(Field::ProjectId, PROJECT.to_string());
        rules
    }

    #[test]
    fn a_full_row_becomes_the_exact_body() {
        let headers = [
            "Title",
            "Description",
            "Status",
            "Key",
            "Cases",
            "Start",
            "End",
            "Owner",
            "Tags",
            "Environments",
        ];
        let row = text_row(
            2,
            &[
                " Regression ",
                "Line one\nline two, with comma",
                "closed",
                "REL-1",
                &format!("{CASE_A}; {CASE_B}, {CASE_A}"),
                "2024-03-17",
                "2024-03-18",
                "cbbc40a5-26e9-4b88-8c27-3626c9fbdaa4",
                "Smoke, Regression,, Smoke",
                "",
            ],
        );
        let mut v = validator(&headers, std::slice::from_ref(&row), rules_with_project(), false);
        let planned = v.validate(&row).unwrap();
        let json = serde_json::to_string(&planned.body).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"title":"Regression","description":"Line one\nline two, with comma","status":"CLOSED","project_id":"{PROJECT}","human_id":"REL-1","selection_type":"STATIC","static_selection_filters":[{{"field":"id","operator":"IN","values":["{CASE_A}","{CASE_B}"]}}],"start_date":1710633600,"end_date":1710806399,"assignee_id":"cbbc40a5-26e9-4b88-8c27-3626c9fbdaa4","label_names":["Smoke","Regression"],"environment_ids":[]}}"#
            )
        );
        assert_eq!(planned.path(), format!("/projects/{PROJECT}/test_runs"));
    }

    #[test]
    fn a_minimal_row_omits_empty_fields_but_keeps_the_arrays() {
        let row = text_row(2, &["Only a title", ""]);
        let mut v = validator(
            &["Title", "Start"],
            std::slice::from_ref(&row),
            rules_with_project(),
            false,
        );
        let json = serde_json::to_string(&v.validate(&row).unwrap().body).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"title":"Only a title","status":"ACTIVE","project_id":"{PROJECT}","selection_type":"STATIC","static_selection_filters":[],"label_names":[],"environment_ids":[]}}"#
            )
        );
    }

    #[test]
    fn every_problem_in_a_row_is_reported_with_its_cell() {
        let headers = [
            "Title",
            "Status",
            "Project",
            "Cases",
            "Start",
            "End",
            "Owner",
            "Selection_Type",
        ];
        let row = text_row(
            7,
            &["", "open", "p-1", "x, y", "2024-03-18", "2024-03-17", "bob", "dynamic"],
        );
        let mut v = validator(&headers, std::slice::from_ref(&row), RowRules::default(), true);
        let problems = v.validate(&row).unwrap_err();
        let kinds: Vec<(ProblemKind, Option<&str>)> = problems.iter().map(|p| (p.kind, p.cell.as_deref())).collect();
        assert_eq!(
            kinds,
            vec![
                (ProblemKind::Missing, Some("A7")),
                (ProblemKind::BadStatus, Some("B7")),
                (ProblemKind::NotUuid, Some("C7")),
                (ProblemKind::BadSelectionType, Some("H7")),
                (ProblemKind::NotUuid, Some("D7")),
                (ProblemKind::EndBeforeStart, Some("F7")),
                (ProblemKind::NotUuid, Some("G7")),
            ]
        );
        assert_eq!(
            problems[1].to_string(),
            "row 7, column `Status` (B7): `open`: status must be ACTIVE or CLOSED"
        );
        assert!(
            problems[4].message.contains("`x`, `y` are not a UUID"),
            "{}",
            problems[4].message
        );
    }

    #[test]
    fn duplicate_human_ids_name_the_first_row() {
        let rows = [
            text_row(2, &["a", "K-1"]),
            text_row(3, &["b", "K-2"]),
            text_row(4, &["c", "K-1"]),
        ];
        let mut v = validator(&["Title", "Key"], &rows, rules_with_project(), false);
        assert!(v.validate(&rows[0]).is_ok());
        assert!(v.validate(&rows[1]).is_ok());
        let problems = v.validate(&rows[2]).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind, ProblemKind::DuplicateHumanId);
        assert!(problems[0].message.contains("row 2"), "{}", problems[0].message);
    }

    #[test]
    fn date_order_is_inferred_per_column() {
        let rows = [
            text_row(2, &["a", "03/04/2024", "05/06/2024"]),
            text_row(3, &["b", "17/04/2024", "05/07/2024"]),
        ];
        let mut v = validator(&["Title", "Start", "End"], &rows, rules_with_project(), false);
        // Start proves dmy through row 3; End proves nothing, so its values are errors naming the flag.
        assert_eq!(v.column_problems().len(), 1);
        let problems = v.validate(&rows[0]).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].column.as_deref(), Some("End"));
        assert!(problems[0].message.contains("--date-order"), "{}", problems[0].message);

        // A weekday in front needs the order as much as the date alone, and the message
        // is the column's, not one about a `--date-order ymd` nobody gave.
        let weekday_rows = [
            text_row(2, &["a", "03/04/2024"]),
            text_row(3, &["b", "Wed, 03/04/2024"]),
        ];
        let mut v = validator(&["Title", "Start"], &weekday_rows, rules_with_project(), false);
        let problems = v.validate(&weekday_rows[1]).unwrap_err();
        assert!(
            problems[0].message.contains("no value in the column decides which"),
            "{}",
            problems[0].message
        );
        assert!(!problems[0].message.contains("ymd"), "{}", problems[0].message);

        let mut rules = rules_with_project();
        rules.date_order = Some(DateOrder::Mdy);
        let mut v = validator(&["Title", "Start", "End"], &rows, rules, false);
        let planned = v.validate(&rows[0]).unwrap();
        // 2024-03-04 00:00 UTC and 2024-05-06 23:59:59 UTC.
        assert_eq!(
            (planned.body.start_date, planned.body.end_date),
            (Some(1709510400), Some(1715039999))
        );
    }

    #[test]
    fn workbook_cells_keep_ids_as_text_and_error_cells_are_problems() {
        let row = SourceRow::new(5, &[Cell::Text("t"), Cell::Number(42.0), Cell::Error("#N/A")]);
        let mut v = validator(
            &["Title", "Human ID", "Start"],
            std::slice::from_ref(&row),
            rules_with_project(),
            true,
        );
        let problems = v.validate(&row).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            (problems[0].kind, problems[0].cell.as_deref()),
            (ProblemKind::ErrorCell, Some("C5"))
        );
        let row = SourceRow::new(6, &[Cell::Text("t"), Cell::Number(43.0), Cell::Empty]);
        assert_eq!(v.validate(&row).unwrap().body.human_id.as_deref(), Some("43"));
    }

    #[test]
    fn assignee_may_be_an_email() {
        let row = text_row(2, &["t", "Ada@Example.com"]);
        let mut v = validator(
            &["Title", "Assignee"],
            std::slice::from_ref(&row),
            rules_with_project(),
            false,
        );
        let planned = v.validate(&row).unwrap();
        let email = planned.assignee_email.unwrap();
        assert_eq!(
            (email.email.as_str(), email.column.as_deref()),
            ("Ada@Example.com", Some("Assignee"))
        );
        assert_eq!(planned.body.assignee_id, None);
    }

    #[test]
    fn milliseconds_when_asked() {
        let row = text_row(2, &["t", "2024-03-17T09:30:00Z"]);
        let mut rules = rules_with_project();
        rules.timestamp_unit = TimestampUnit::Milliseconds;
        let mut v = validator(&["Title", "Start"], std::slice::from_ref(&row), rules, false);
        assert_eq!(v.validate(&row).unwrap().body.start_date, Some(1710667800000));
    }

    #[test]
    fn lists_split_trim_and_dedupe() {
        let seps = RowRules::default().list_separators;
        let mut out = vec!["stale".to_string(); 7];
        for (input, want) in [
            ("a, b;c|d\ne", vec!["a", "b", "c", "d", "e"]),
            (" a ,, a , B ", vec!["a", "B"]),
            (",;|", vec![]),
            ("Régression, Mensuel", vec!["Régression", "Mensuel"]),
        ] {
            // Written over the last list, as rows are: nothing of it may show through.
            split_into(input, &Separators::new(&seps), &mut out);
            assert_eq!(out, want, "{input:?}");
        }
        split_into("a,b|c", &Separators::new(&['|']), &mut out);
        assert_eq!(out, vec!["a,b", "c"]);
    }

    #[test]
    fn uuids_are_normalised() {
        assert_eq!(parse_uuid("C47ADE67-0543-4582-A4A5-B7DE447C94F5").unwrap(), PROJECT);
        assert_eq!(parse_uuid("c47ade6705434582a4a5b7de447c94f5").unwrap(), PROJECT);
        for bad in [
            "",
            "123",
            "c47ade67-0543-4582-a4a5-b7de447c94f",
            "{c47ade67-0543-4582-a4a5-b7de447c94f5}x",
        ] {
            assert!(parse_uuid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_written_over_an_earlier_one_keeps_nothing_of_it() {
        let headers = [
            "Title",
            "Description",
            "Status",
            "Human ID",
            "Test Cases",
            "Start",
            "End",
            "Assignee",
            "Labels",
            "Environments",
        ];
        let upper_a = CASE_A.to_uppercase();
        let full = [
            "Full",
            "All of it",
            "closed",
            "H-1",
            &format!("{CASE_A}, {CASE_B}"),
            "2024-03-17",
            "2024-03-18T10:00:00Z",
            CASE_A,
            "smoke, nightly, eu",
            &format!("{upper_a}; {CASE_B}"),
        ];
        let email = ["Mail", "", "", "H-2", CASE_B, "", "", "ann@example.com", "one", ""];
        let minimal = ["Bare", "", "", "", "", "", "", "", "", ""];
        let bad = ["", "d", "nope", "H-3", "x", "later", "", "zz", "", ""];
        let rows: Vec<SourceRow> = [&full[..], &email, &minimal, &bad]
            .iter()
            .enumerate()
            .map(|(i, cells)| text_row(i + 2, cells))
            .collect();
        let v = validator(&headers, &rows, rules_with_project(), false);
        let fresh = |row: &SourceRow| {
            let mut out = PlannedRow::default();
            v.check(row, &mut out).result.map(|()| out)
        };
        for earlier in &rows {
            for row in &rows {
                let mut out = PlannedRow::default();
                let _ = v.check(earlier, &mut out);
                let result = v.check(row, &mut out).result.map(|()| out);
                assert_eq!(result, fresh(row), "row {} over row {}", row.number, earlier.number);
            }
        }
        assert!(fresh(&rows[3]).is_err(), "the bad row is invalid");
    }

    #[test]
    fn a_kept_string_comes_back_holding_only_the_new_text() {
        spare::keep("a string the last request held".to_owned());
        spare::keep_option(Some("another".to_owned()));
        spare::keep(String::new());
        for text in ["x", "", "third, past what was kept"] {
            assert_eq!(spare::string_of(text), text);
        }
        // A string that grew large is let go, not kept.
        spare::keep("y".repeat(10_000));
        assert!(spare::string_of("z").capacity() < 10_000);
    }

    #[test]
    fn the_uuid_check_takes_exactly_lower_case_hex_and_hyphens_in_place() {
        fn bytewise(bytes: &[u8]) -> bool {
            bytes.len() == 36
                && bytes.iter().enumerate().all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => *b == b'-',
                    _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
                })
        }
        // Every character that fits in one byte, at every place of a valid id.
        let valid = CASE_A.as_bytes().to_vec();
        let mut accepted = 0;
        for at in 0..36 {
            for b in 0u8..=0x7F {
                let mut bytes = valid.clone();
                bytes[at] = b;
                let text = std::str::from_utf8(&bytes).unwrap();
                assert_eq!(is_canonical_uuid(text), bytewise(&bytes), "{text:?}");
                accepted += usize::from(bytewise(&bytes));
            }
        }
        assert!(accepted > 500, "only {accepted} variants were ids");
        // Multi-byte characters in place of two or three bytes.
        for (at, c) in [(0, "é"), (10, "é"), (30, "€"), (33, "€"), (20, "\u{80}")] {
            let text = format!("{}{c}{}", &CASE_A[..at], &CASE_A[at + c.len()..]);
            assert!(!is_canonical_uuid(&text), "{text:?}");
        }
        assert!(is_canonical_uuid(CASE_A));
        assert!(!is_canonical_uuid(&CASE_A.to_uppercase()));
    }

    #[test]
    fn the_one_pass_uuid_split_agrees_with_splitting_then_checking() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let pieces = [
            CASE_A,
            CASE_B,
            "9AC271B6-4E89-4C93-8C75-2D625EFA0B2D",
            "9ac271b64e894c938c752d625efa0b2d",
            ",",
            ";",
            "|",
            "\n",
            "\r\n",
            " ",
            "\t",
            "\u{a0}",
            "\u{b}",
            "x",
            "",
        ];
        let separators = Separators::new(&RowRules::default().list_separators);
        let mut rng = StdRng::seed_from_u64(7);
        let mut agreed = 0;
        for _ in 0..20_000 {
            let text: String = (0..rng.random_range(0..8))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            // The two-step way: every item, trimmed, must be canonical.
            let mut items = Vec::new();
            let mut all_canonical = true;
            for_each_item(&text, &separators, |item| {
                all_canonical &= is_canonical_uuid(item);
                if !items.contains(&item) {
                    items.push(item);
                }
            });
            let mut out = vec!["stale".to_string(); 3];
            let mut fill = ListFill::new(&mut out);
            let one_pass = canonical_uuids(&text, &separators, &mut fill);
            fill.finish();
            // It may give up on a list the two steps take (say, one trimmed of a no-break
            // space: then the two steps run), but what it takes, it takes as they do.
            if one_pass {
                assert!(all_canonical, "{text:?}");
                assert_eq!(out, items, "{text:?}");
                agreed += 1;
            } else if all_canonical {
                assert!(text.contains(['\u{a0}', '\u{b}']), "{text:?}");
            }
        }
        assert!(agreed > 1000, "only {agreed} canonical lists were tried");
    }

    #[test]
    fn id_lists_are_the_same_whether_written_canonically_or_not() {
        let v = validator(&["Title", "Test Cases"], &[], rules_with_project(), false);
        // One request written over row after row, as the pipeline does.
        let out = std::cell::RefCell::new(PlannedRow::default());
        let ids = |cell: &str| {
            let row = text_row(2, &["T", cell]);
            let mut out = out.borrow_mut();
            v.check(&row, &mut out).result.unwrap();
            out.body.static_selection_filters[0].values.clone()
        };
        let upper_a = CASE_A.to_uppercase();
        let plain_b = CASE_B.replace('-', "");
        // Canonical only (the shortcut), then mixed spellings (the parser): same ids, same order.
        assert_eq!(ids(&format!("{CASE_A}, {CASE_B}, {CASE_A}")), [CASE_A, CASE_B]);
        assert_eq!(ids(&format!("{upper_a}; {plain_b} | {CASE_A}")), [CASE_A, CASE_B]);
        assert_eq!(ids(&format!("{CASE_B},{upper_a}")), [CASE_B, CASE_A]);
        let row = text_row(3, &["T", &format!("{CASE_A}, nope, {CASE_B}, nope")]);
        let problems = v.check(&row, &mut out.borrow_mut()).result.unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.starts_with("`nope` is not a UUID"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn bad_defaults_are_caught_once() {
        let mut rules = RowRules::default();
        rules.defaults.insert(Field::Status, "OPEN".into());
        assert!(Validator::check_defaults(&rules).unwrap_err().contains("status"));
        let mut rules = RowRules::default();
        rules.defaults.insert(Field::ProjectId, "nope".into());
        assert!(Validator::check_defaults(&rules).unwrap_err().contains("project_id"));
        assert!(Validator::check_defaults(&rules_with_project()).is_ok());
    }
}
