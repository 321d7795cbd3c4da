//! A source row → the exact create-test-run request, or every problem with it. Pure:
//! nothing here touches files, the network or the terminal.

pub mod date_order;
mod date_text;
pub mod dates;
mod fields;
mod first_rows;
mod lists;
pub mod stage;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono_tz::Tz;

use crate::read::mapping::{ColumnMap, Field};
use crate::read::row::{SourceRow, trim};
use crate::request::{EmailAssignee, PlannedRow, SelectionFilter, TestCaseRefs, TestRunBody};
use date_order::{ColumnOrder, DateEvidence, column_orders};
use dates::{DateOrder, TimestampUnit};
use fields::{FieldReader, Value};
use first_rows::FirstRows;
use lists::{NOT_A_UUID, Separators, parse_uuid, uuid_text};

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
    /// `[values.status]`: other words for a status (`In Progress` → `ACTIVE`), keyed by
    /// [`status_word`].
    pub status_words: BTreeMap<String, &'static str>,
}

/// A status word as `[values.status]` is matched: case and spacing aside.
pub fn status_word(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl Default for RowRules {
    fn default() -> Self {
        RowRules {
            timezone: Tz::UTC,
            date_order: None,
            list_separators: vec![',', ';', '|', '\n', '\r'],
            timestamp_unit: TimestampUnit::Seconds,
            defaults: BTreeMap::new(),
            status_words: BTreeMap::new(),
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
    /// million ids as strings took 80 MB, as fingerprints they take 25. Two different ids
    /// share a fingerprint with a chance of about n²/2⁶⁵ (3 in 10⁸ for a million rows), and
    /// then the message names a row whose id visibly differs: a false alarm, never a
    /// silent loss.
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
    /// needs no other row. The fields are read in the order their problems are told.
    fn check(&self, row: &SourceRow, out: &mut PlannedRow) -> Checked {
        let mut problems = Vec::new();
        let mut fields = FieldReader {
            v: self,
            row,
            problems: &mut problems,
        };
        if let Some(message) = &row.overflow {
            return shifted(&mut fields, message);
        }
        let body = &mut out.body;
        title_into(&mut fields, &mut body.title);
        set_option(&mut body.description, fields.text(Field::Description).as_deref());
        body.status = status(&mut fields);
        project_into(&mut fields, &mut body.project_id);
        let human_id = fields.text(Field::HumanId);
        set_option(&mut body.human_id, human_id.as_deref());
        let human_id_fingerprint = human_id.as_deref().map(fingerprint);
        body.selection_type = selection_type(&mut fields);
        test_cases_into(&mut fields, &mut body.static_selection_filters, &mut out.test_case_refs);
        dates_into(&mut fields, body, self.rules.timestamp_unit);
        assignee_into(&mut fields, &mut body.assignee_id, &mut out.assignee_email);
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
        let first = self.human_ids.first_or_insert(fingerprint, row.number);
        // A row whose columns have shifted keeps its one problem; its id still counts.
        if first != row.number && row.overflow.is_none() {
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

/// A row whose columns have shifted has that one problem: what its cells seem to say is
/// not to be trusted, but its human_id still counts.
fn shifted(fields: &mut FieldReader<'_>, message: &str) -> Checked {
    let human_id_fingerprint = fields.text(Field::HumanId).as_deref().map(fingerprint);
    let problem = Problem {
        row: fields.row.number,
        column: None,
        cell: None,
        value: None,
        kind: ProblemKind::Unreadable,
        message: message.to_owned(),
    };
    Checked {
        result: Err(vec![problem]),
        human_id_fingerprint,
    }
}

fn title_into(fields: &mut FieldReader<'_>, out: &mut String) {
    match fields.text(Field::Title) {
        Some(title) => set_string(out, &title),
        // An error cell has said what is wrong with the title already.
        None if fields.has_problem(Field::Title) => {}
        None => fields.problem(
            Field::Title,
            None,
            ProblemKind::Missing,
            "a title is required".to_string(),
        ),
    }
}

/// `ACTIVE` when blank; `""` with a problem when not a status.
fn status(fields: &mut FieldReader<'_>) -> &'static str {
    let Some(text) = fields.text(Field::Status) else {
        return "ACTIVE";
    };
    let validator = fields.v;
    let words = &validator.rules.status_words;
    match parse_status(&text) {
        Ok(status) => status,
        Err(_) if words.contains_key(&status_word(&text)) => words[&status_word(&text)],
        Err(mut message) => {
            if words.is_empty() {
                message.push_str(" (map other words in [values.status])");
            } else {
                let known: Vec<&str> = words.keys().map(String::as_str).collect();
                message.push_str(&format!(", or a word [values.status] maps ({})", known.join(", ")));
            }
            fields.problem(Field::Status, Some(text.into_owned()), ProblemKind::BadStatus, message);
            ""
        }
    }
}

fn project_into(fields: &mut FieldReader<'_>, out: &mut String) {
    if !fields.uuid_into(Field::ProjectId, out) && !fields.has_problem(Field::ProjectId) {
        fields.problem(
            Field::ProjectId,
            None,
            ProblemKind::Missing,
            "no project: the row has no project_id, and neither --project-id nor [defaults] project_id is set"
                .to_string(),
        );
    }
}

/// `STATIC` when blank or so written; `""` with a problem otherwise.
fn selection_type(fields: &mut FieldReader<'_>) -> &'static str {
    match fields.text(Field::SelectionType) {
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
    }
}

/// One `id IN (…)` filter when there are test cases, none otherwise; the filter and its
/// strings are kept from the last row. Human ids (`TC-12`) stand in the filter as
/// written, upper-cased, and are listed in `refs` to be resolved before sending.
fn test_cases_into(fields: &mut FieldReader<'_>, filters: &mut Vec<SelectionFilter>, refs: &mut Option<TestCaseRefs>) {
    *refs = None;
    filters.truncate(1);
    if filters.is_empty() {
        filters.push(SelectionFilter {
            field: "id",
            operator: "IN",
            values: Vec::new(),
        });
    }
    let mut human_ids = Vec::new();
    fields.id_list_into(Field::TestCaseIds, &mut filters[0].values, Some(&mut human_ids));
    if !human_ids.is_empty() {
        *refs = Some(TestCaseRefs {
            human_ids,
            column: fields.header(Field::TestCaseIds),
            cell: fields.cell(Field::TestCaseIds),
        });
    }
    if filters[0].values.is_empty() {
        filters.clear();
    }
}

/// The start and end dates, in `unit`; an end before the start is a problem.
fn dates_into(fields: &mut FieldReader<'_>, body: &mut TestRunBody, unit: TimestampUnit) {
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
    body.start_date = start_date.map(|ms| unit.convert(ms));
    body.end_date = end_date.map(|ms| unit.convert(ms));
}

/// A user's UUID into `id`; an e-mail address into `email`, to be looked up; anything
/// else is a problem.
fn assignee_into(fields: &mut FieldReader<'_>, id: &mut Option<String>, email: &mut Option<EmailAssignee>) {
    *email = None;
    let Some(value) = fields.text(Field::AssigneeId) else {
        set_option(id, None);
        return;
    };
    match uuid_text(&value) {
        Some(uuid) => set_option(id, Some(&uuid)),
        None if looks_like_email(&value) || looks_like_name(&value) => {
            set_option(id, None);
            *email = Some(EmailAssignee {
                email: value.to_string(),
                column: fields.header(Field::AssigneeId),
                cell: fields.cell(Field::AssigneeId),
            });
        }
        None => {
            set_option(id, None);
            fields.problem(
                Field::AssigneeId,
                Some(value.into_owned()),
                ProblemKind::NotUuid,
                format!("{NOT_A_UUID}, nor an e-mail address or a full name; give the user's UUID, e-mail or name (Jane Doe)"),
            );
        }
    }
}

/// Overwrites `out` with `text`, keeping its allocation.
fn set_string(out: &mut String, text: &str) {
    out.clear();
    out.push_str(text);
}

/// Overwrites `out` with `text`, keeping the string it held when there is one.
pub(crate) fn set_option(out: &mut Option<String>, text: Option<&str>) {
    match (text, out.as_mut()) {
        (Some(text), Some(held)) => set_string(held, text),
        (text, _) => *out = text.map(str::to_owned),
    }
}

/// A 64-bit hash of the text, in memory only and never stored. Two ids that share it are
/// taken for one (see `Validator::human_ids`), so it must spread like a good hash: std's
/// SipHash does, and `DefaultHasher::new` is the same hasher every time.
fn fingerprint(text: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(text)
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

/// A person's full name as the web app shows it (`Jane Doe`): two words or more, of
/// letters and the marks names hold (`'` `-` `.`).
pub fn looks_like_name(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    words.len() >= 2
        && text.chars().any(char::is_alphabetic)
        && text
            .chars()
            .all(|c| c.is_alphabetic() || c.is_whitespace() || matches!(c, '\'' | '-' | '.' | '’'))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::mapping::map_headers;
    use crate::read::row::Cell;

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
    fn ids_in_braces_lists_by_spaces_and_human_ids_are_read_as_meant() {
        let a = "9ac271b6-4e89-4c93-8c75-2d625efa0b2d";
        let b = "c47ade67-0543-4582-a4a5-b7de447c94f5";
        for (cell, values, human_ids) in [
            (format!("{{{a}}}"), vec![a.to_owned()], None),
            (format!("{a} {b}"), vec![a.to_owned(), b.to_owned()], None),
            (
                format!("{a} tc-12, TC-3"),
                vec![a.to_owned(), "TC-12".into(), "TC-3".into()],
                Some(vec!["TC-12", "TC-3"]),
            ),
            (
                format!("TC-3;{{{}}};TC-3", a.to_uppercase()),
                vec!["TC-3".into(), a.to_owned()],
                Some(vec!["TC-3"]),
            ),
        ] {
            let rows = [text_row(2, &["Smoke", &cell])];
            let mut v = validator(&["Title", "Test Cases"], &rows, rules_with_project(), false);
            let planned = v.validate(&rows[0]).unwrap_or_else(|p| panic!("{cell}: {p:?}"));
            assert_eq!(planned.body.static_selection_filters[0].values, values, "{cell}");
            let refs = planned.test_case_refs.map(|r| r.human_ids);
            assert_eq!(
                refs,
                human_ids.map(|h| h.into_iter().map(str::to_owned).collect()),
                "{cell}"
            );
        }
    }

    #[test]
    fn characters_that_do_not_print_are_named() {
        // A no-break space between names is a space: the name is matched at the service.
        let rows = [text_row(2, &["Smoke", "Grace\u{A0}Hopper"])];
        let mut v = validator(&["Title", "Owner"], &rows, rules_with_project(), false);
        assert!(v.validate(&rows[0]).is_ok());
        let cases = [
            (
                "9ac271b6-4e89-4c93-8c75-2d62\u{200B}5efa0b2d",
                "`9ac2…0b2d` holds U+200B (zero width space)",
            ),
            (
                "Grace\u{A0}Hopper\u{FEFF}",
                "holds U+00A0 (no-break space), U+FEFF (byte order mark)",
            ),
        ];
        for (cell, named) in cases {
            let rows = [text_row(2, &["Smoke", cell])];
            let mut v = validator(&["Title", "Owner"], &rows, rules_with_project(), false);
            let problems = v.validate(&rows[0]).unwrap_err();
            assert!(problems[0].message.contains(named), "{}", problems[0].message);
        }
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
            "row 7, column `Status` (B7): `open`: status must be ACTIVE or CLOSED (map other words in [values.status])"
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
        // Start proves dmy through row 3; End proves nothing, so it takes Start's order, with a note.
        assert!(v.column_problems().is_empty());
        let notes = v.column_notes();
        assert_eq!(
            notes,
            [
                "`End` proves no date order on its own: it is read day first (dd/mm), as `Start` proves (`17/04/2024`, row 3)"
            ]
        );
        let planned = v.validate(&rows[0]).unwrap();
        // 2024-04-03 00:00 UTC and 2024-06-05 23:59:59 UTC.
        assert_eq!(
            (planned.body.start_date, planned.body.end_date),
            (Some(1712102400), Some(1717631999))
        );
        // A column that proves nothing, beside one that proves nothing either: errors naming the flag.
        let rows = [text_row(2, &["a", "03/04/2024", "05/06/2024"])];
        let mut v = validator(&["Title", "Start", "End"], &rows, rules_with_project(), false);
        assert_eq!(v.column_problems().len(), 2);
        let problems = v.validate(&rows[0]).unwrap_err();
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
