//! One calamine value as a cell of the pipeline's row: dates with the workbook's own epoch,
//! durations and times of day as text, ODS error text as error cells.

use calamine::Data;
use chrono::{NaiveDate, NaiveDateTime};

use crate::read::row::{Cell, SourceRow};

/// Converts one calamine value, reusing the target's string where it can.
/// `error_text`: a text cell that is exactly an error code is an error cell. LibreOffice
/// writes an ODS error cell as empty text marked `calcext:value-type="error"` with the code
/// as its content, and calamine 0.38 reads the marker but gives back only the content.
pub(super) fn fill_cell(row: &mut SourceRow, column: usize, data: Option<&Data>, error_text: bool) {
    let code;
    let cell = match data {
        None | Some(Data::Empty) => return,
        Some(Data::DateTime(dt)) => return excel_datetime(row, column, dt),
        Some(Data::String(s)) if error_text && is_error_code(s) => Cell::Error(s),
        Some(Data::String(s) | Data::DurationIso(s)) => Cell::Text(s),
        Some(Data::Int(i)) => Cell::Number(*i as f64),
        Some(Data::Float(f)) => Cell::Number(*f),
        Some(Data::Bool(b)) => Cell::Bool(*b),
        Some(Data::DateTimeIso(s)) => parse_iso(s).map_or(Cell::Text(s), Cell::DateTime),
        Some(Data::Error(e)) => {
            code = e.to_string();
            Cell::Error(&code)
        }
    };
    row.set(column, cell);
}

/// Empty, or text that is only white space.
pub(super) fn is_blank(data: &Data) -> bool {
    match data {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// The codes LibreOffice shows for a formula's error: the seven Excel shares, and its own
/// `Err:` and three digits (`Err:502`, an invalid argument).
pub(super) fn is_error_code(text: &str) -> bool {
    const CODES: [&str; 7] = ["#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"];
    CODES.contains(&text)
        || text
            .strip_prefix("Err:")
            .is_some_and(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
}

/// calamine carries the workbook's 1900/1904 flag in each value and applies it in
/// `as_datetime`. Durations and times of day are not dates, so they become text a
/// date column will refuse rather than a date in 1899.
fn excel_datetime(row: &mut SourceRow, column: usize, dt: &calamine::ExcelDateTime) {
    let serial = dt.as_f64();
    if dt.is_duration() || (0.0..1.0).contains(&serial) {
        return row.set(column, Cell::Text(&clock_text(serial)));
    }
    match dt.as_datetime() {
        Some(dt) => row.set(column, Cell::DateTime(dt)),
        None => row.set(column, Cell::Number(serial)),
    }
}

/// `h:mm:ss` for a number of days, hours not wrapping at 24.
fn clock_text(days: f64) -> String {
    let seconds = (days.abs() * 86_400.0).round() as u64;
    let sign = if days < 0.0 && seconds > 0 { "-" } else { "" };
    format!("{sign}{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// ODS stores dates as ISO 8601 text, with or without a time.
fn parse_iso(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: i32, m: u32, d: u32, h: u32, min: u32) -> Cell<'static> {
        Cell::DateTime(
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, min, 0)
                .unwrap(),
        )
    }

    #[test]
    fn only_whole_error_codes_are_errors() {
        for code in [
            "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "Err:502", "Err:511",
        ] {
            assert!(is_error_code(code), "{code}");
        }
        for text in [
            "#N/A ", "N/A", "#n/a", "Err:50", "Err:5021", "Err:x02", "#DIV/0", "Error", "",
        ] {
            assert!(!is_error_code(text), "{text:?}");
        }
    }

    #[test]
    fn iso_text_from_ods_parses_when_it_can() {
        let half_past = NaiveDate::from_ymd_opt(2024, 9, 2)
            .unwrap()
            .and_hms_milli_opt(10, 0, 0, 500)
            .unwrap();
        for (s, want) in [
            ("2024-09-02T10:00:00", Some(dt(2024, 9, 2, 10, 0))),
            ("2024-09-02T10:00:00.5", Some(Cell::DateTime(half_past))),
            ("2024-09-02", Some(dt(2024, 9, 2, 0, 0))),
            ("10:00:00", None),
            ("02/09/2024", None),
        ] {
            assert_eq!(parse_iso(s).map(Cell::DateTime), want, "{s}");
        }
        for (days, want) in [(0.385416666, "9:15:00"), (1.5, "36:00:00"), (-0.5, "-12:00:00")] {
            assert_eq!(clock_text(days), want);
        }
    }
}
