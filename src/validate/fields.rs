//! One row's fields as a request needs them: each field's value from its cell or else
//! the defaults, read as trimmed text, a UUID, a list or a date, with every problem
//! recorded as it is found.

use std::borrow::Cow;

use super::date_order::parse_text_date;
use super::dates::{self, DateValue, DayBound};
use super::lists::{
    ListFill, NOT_A_UUID, canonical_uuids, describe_separators, for_each_item, is_human_id, split_into, uuid_text,
    uuid_value,
};
use super::{Problem, ProblemKind, Validator, set_string, shorten};
use crate::read::mapping::Field;
use crate::read::row::{Cell, SourceRow, cell_ref, trim};

/// Reads the fields of one row, recording problems as it goes.
pub(super) struct FieldReader<'a> {
    pub(super) v: &'a Validator,
    pub(super) row: &'a SourceRow,
    pub(super) problems: &'a mut Vec<Problem>,
}

/// A field's value: from its cell, else from the defaults.
pub(super) enum Value<'a> {
    Cell(Cell<'a>),
    Default(&'a str),
}

/// An id in a list as the API writes it, and whether it is a human id: a UUID in any
/// common spelling, or (with `humans`) a human id such as `TC-12`, upper-cased.
fn id_of(item: &str, humans: bool) -> Option<(String, bool)> {
    match uuid_value(item) {
        Some(id) => Some((
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                .to_owned(),
            false,
        )),
        None if humans && is_human_id(item) => Some((item.to_ascii_uppercase(), true)),
        None => None,
    }
}

/// `` `9ac2…0b2d` holds U+200B (zero width space) ``: the characters of `text` that do
/// not print, named; `None` when every character shows.
pub(super) fn describe_unseen(text: &str) -> Option<String> {
    let mut named: Vec<String> = Vec::new();
    for c in text.chars() {
        if let Some(name) = unseen_name(c) {
            let entry = format!("U+{:04X} ({name})", c as u32);
            if !named.contains(&entry) {
                named.push(entry);
            }
        }
    }
    if named.is_empty() {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let shown: String = if chars.len() > 12 {
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        text.to_owned()
    };
    let shown: String = shown.chars().filter(|c| unseen_name(*c).is_none()).collect();
    Some(format!("`{shown}` holds {}", named.join(", ")))
}

/// The name of a character that does not print, or prints as a plain space.
fn unseen_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{200B}' => "zero width space",
        '\u{200C}' => "zero width non-joiner",
        '\u{200D}' => "zero width joiner",
        '\u{2060}' => "word joiner",
        '\u{FEFF}' => "byte order mark",
        '\u{00A0}' => "no-break space",
        '\u{202F}' => "narrow no-break space",
        '\u{2007}' => "figure space",
        '\u{00AD}' => "soft hyphen",
        '\u{200E}' => "left-to-right mark",
        '\u{200F}' => "right-to-left mark",
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => "bidirectional control",
        c if c.is_control() && !matches!(c, '\n' | '\r' | '\t') => "control character",
        _ => return None,
    })
}

impl<'a> FieldReader<'a> {
    #[inline]
    pub(super) fn value(&self, field: Field) -> Option<Value<'a>> {
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

    pub(super) fn has_problem(&self, field: Field) -> bool {
        let header = self.header_str(field);
        self.problems.iter().any(|p| p.column.as_deref() == header)
    }

    pub(super) fn header(&self, field: Field) -> Option<String> {
        self.header_str(field).map(str::to_owned)
    }

    pub(super) fn header_str(&self, field: Field) -> Option<&'a str> {
        let validator: &'a Validator = self.v;
        match validator.map.column(field) {
            Some(column) => validator.headers.get(column).map(String::as_str),
            None => Some(field.name()),
        }
    }

    /// A field's header and, in a workbook, its cell reference.
    pub(super) fn location(&self, field: Field) -> (Option<String>, Option<String>) {
        (self.header(field), self.cell(field))
    }

    /// The field's cell reference (`C7`), in a workbook.
    pub(super) fn cell(&self, field: Field) -> Option<String> {
        match self.v.map.column(field) {
            Some(c) if self.v.is_workbook => Some(cell_ref(c, self.row.number)),
            _ => None,
        }
    }

    pub(super) fn problem(&mut self, field: Field, value: Option<String>, kind: ProblemKind, mut message: String) {
        let (column, cell) = self.location(field);
        // What does not print is named, or the message would show nothing wrong.
        if let Some(text) = &value
            && let Some(unseen) = describe_unseen(text)
        {
            message.push_str("; ");
            message.push_str(&unseen);
        }
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
    pub(super) fn text(&mut self, field: Field) -> Option<Cow<'a, str>> {
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
    pub(super) fn text_ref(&mut self, field: Field) -> Option<Cow<'a, str>> {
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
    pub(super) fn raw_text(&self, field: Field) -> Option<String> {
        match self.value(field)? {
            Value::Cell(cell) => Some(cell.as_text().into_owned()),
            Value::Default(d) => Some(d.to_string()),
        }
    }

    /// Writes the field's UUID into `out` as the API writes it; false when the field is
    /// blank or not a UUID (a problem).
    pub(super) fn uuid_into(&mut self, field: Field, out: &mut String) -> bool {
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
    pub(super) fn list_into(&mut self, field: Field, out: &mut Vec<String>) {
        match self.text_ref(field) {
            Some(text) => split_into(trim(&text), &self.v.separators, out),
            None => out.clear(),
        }
    }

    /// Splits the field into UUIDs, written as the API writes them, into `out`; emptied
    /// when the field is blank or any item is not a UUID (a problem naming those items).
    pub(super) fn uuid_list_into(&mut self, field: Field, out: &mut Vec<String>) {
        self.id_list_into(field, out, None);
    }

    /// A list of UUIDs into `out`; with `human_ids`, the service's human ids (`TC-12`) are
    /// taken too: upper-cased into `out` in their place, and listed in `human_ids`.
    pub(super) fn id_list_into(
        &mut self,
        field: Field,
        out: &mut Vec<String>,
        mut human_ids: Option<&mut Vec<String>>,
    ) {
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
        // Parsed straight from the cell, duplicates dropped by value: the same id in upper
        // and lower case is one id.
        let mut ids: Vec<String> = Vec::with_capacity(8);
        let mut bad: Vec<&str> = Vec::new();
        let humans = human_ids.is_some();
        for_each_item(text, &self.v.separators, |item| {
            // `a b` where each is an id: a list separated by spaces, as users mean it.
            let spaced = id_of(item, humans).is_none()
                && item.contains(char::is_whitespace)
                && item.split_whitespace().all(|part| id_of(part, humans).is_some());
            let parts: Vec<&str> = if spaced {
                item.split_whitespace().collect()
            } else {
                vec![item]
            };
            for part in parts {
                let Some((id, human)) = id_of(part, humans) else {
                    if !bad.contains(&part) {
                        bad.push(part);
                    }
                    continue;
                };
                if let (true, Some(listed)) = (human, human_ids.as_deref_mut())
                    && !listed.contains(&id)
                {
                    listed.push(id.clone());
                }
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        });
        if bad.is_empty() {
            for id in &ids {
                fill.push(id);
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
        let expected = if human_ids.is_some() {
            "expected UUIDs such as 9ac271b6-4e89-4c93-8c75-2d625efa0b2d or human ids such as TC-12"
        } else {
            "expected UUIDs such as 9ac271b6-4e89-4c93-8c75-2d625efa0b2d"
        };
        self.problem(
            field,
            all,
            ProblemKind::NotUuid,
            format!(
                "{listed} {} not a UUID; {expected} separated by {}",
                if bad.len() == 1 { "is" } else { "are" },
                describe_separators(&self.v.rules.list_separators)
            ),
        );
    }

    pub(super) fn date(&mut self, field: Field) -> Option<i64> {
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
