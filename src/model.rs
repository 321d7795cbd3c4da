//! Types shared by every stage: a cell as a source read it, a source row, and the
//! outcome vocabulary of the report. Kept free of I/O so every stage can use them.

use std::borrow::Cow;

/// One cell, as the source gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    /// Text as written. Every field of delimited text is `Text`.
    Text(String),
    /// A numeric workbook cell that is not a date.
    Number(f64),
    Bool(bool),
    /// A workbook date/time cell, already converted with the workbook's own epoch
    /// (1900 or 1904 system), as local wall-clock time with no zone.
    DateTime(chrono::NaiveDateTime),
    /// A workbook error cell, e.g. `#N/A`.
    Error(String),
}

impl Cell {
    /// Empty, or text that is only white space.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => trim(s).is_empty(),
            _ => false,
        }
    }

    /// The cell as a person would read it in the sheet: whole numbers without `.0`,
    /// dates in ISO 8601, errors as their code.
    /// Inlined for text, every cell of delimited text; the other kinds are formatted out
    /// of line.
    #[inline]
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Cell::Text(s) => Cow::Borrowed(s.as_str()),
            other => other.formatted(),
        }
    }

    fn formatted(&self) -> Cow<'_, str> {
        match self {
            Cell::Empty => Cow::Borrowed(""),
            // `as_text` answers for text itself; an error cell reads as its code.
            Cell::Text(s) | Cell::Error(s) => Cow::Borrowed(s.as_str()),
            Cell::Number(n) => Cow::Owned(format_number(*n)),
            Cell::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
            // A midnight date cell is a date without a time (see dates.rs); writing it as
            // `…T00:00:00` would turn an end date into the start of that day when re-read.
            Cell::DateTime(dt) if dt.time() == chrono::NaiveTime::MIN => Cow::Owned(dt.format("%Y-%m-%d").to_string()),
            Cell::DateTime(dt) => Cow::Owned(dt.format("%Y-%m-%dT%H:%M:%S").to_string()),
        }
    }
}

/// `str::trim`, with a shortcut for the usual text that begins and ends with a printable
/// ASCII character (which is never white space): a dry run trims every cell it reads.
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// Whole numbers print without a fraction (`42`, never `42.0`), so numeric ids survive
/// a trip through a spreadsheet; anything else prints in its shortest exact form.
pub fn format_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// One data row: its number as the user sees it in the sheet (1-based, header row
/// included) and its cells, in header order. Rows shorter than the header are padded
/// with `Cell::Empty` by the source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRow {
    pub number: usize,
    pub cells: Vec<Cell>,
    /// Why the row cannot be trusted as read (a value past the last header: its columns
    /// have probably shifted). Its cells are still the ones under the headers.
    pub overflow: Option<String>,
}

impl SourceRow {
    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(Cell::is_blank)
    }
}

/// Spreadsheet column letters for a 0-based column index: 0 → `A`, 26 → `AA`.
pub fn column_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// A cell reference such as `C7` from a 0-based column and the 1-based row number.
pub fn cell_ref(column: usize, row_number: usize) -> String {
    format!("{}{}", column_letters(column), row_number)
}

/// What became of one data row. The report's `outcome` column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    AlreadyImported,
    Invalid,
    /// The service certainly did not create it.
    Failed,
    NotSent,
    /// Sent, but no usable answer came: the run may exist.
    Unknown,
    /// Dry run.
    #[default]
    Planned,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Created,
        Outcome::AlreadyImported,
        Outcome::Invalid,
        Outcome::Failed,
        Outcome::NotSent,
        Outcome::Unknown,
        Outcome::Planned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::AlreadyImported => "already_imported",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
            Outcome::NotSent => "not_sent",
            Outcome::Unknown => "unknown",
            Outcome::Planned => "planned",
        }
    }
}

/// One line of the results report, in the contract's column order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReportRow {
    pub row: usize,
    pub outcome: Outcome,
    pub test_run_id: Option<String>,
    pub test_run_human_id: Option<String>,
    pub title: Option<String>,
    pub human_id: Option<String>,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: Option<String>,
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_roll_over() {
        for (index, want) in [
            (0, "A"),
            (2, "C"),
            (25, "Z"),
            (26, "AA"),
            (27, "AB"),
            (701, "ZZ"),
            (702, "AAA"),
        ] {
            assert_eq!(column_letters(index), want, "index {index}");
        }
        assert_eq!(cell_ref(2, 7), "C7");
    }

    #[test]
    fn date_cells_print_as_dates_or_date_times() {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 7, 12).unwrap();
        assert_eq!(
            Cell::DateTime(day.and_hms_opt(0, 0, 0).unwrap()).as_text(),
            "2024-07-12"
        );
        assert_eq!(
            Cell::DateTime(day.and_hms_opt(9, 30, 0).unwrap()).as_text(),
            "2024-07-12T09:30:00"
        );
    }

    #[test]
    fn numbers_print_as_the_sheet_shows_them() {
        for (n, want) in [
            (42.0, "42"),
            (-3.0, "-3"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e20, "100000000000000000000"),
        ] {
            assert_eq!(format_number(n), want);
        }
    }
}
