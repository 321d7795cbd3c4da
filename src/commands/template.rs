//! `testsigma-import template`: a starter .xlsx or .csv with one column per field a sheet
//! fills in and one example row that imports as it stands. `selection_type` has no column:
//! a sheet can only say STATIC, which is the default, and a column for it invites DYNAMIC,
//! which is refused.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use rust_xlsxwriter::{DataValidation, ExcelDateTime, Format, Note, Workbook, XlsxError};

use crate::read::mapping::Field;

/// The worksheet's name in the .xlsx template.
pub const SHEET_NAME: &str = "Test runs";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: a template is written as .xlsx or .csv, not {found}; give the file one of those endings")]
    UnsupportedFormat { path: String, found: String },

    #[error("{path} exists; pass --force to overwrite it")]
    Exists { path: String },

    #[error("cannot write {path}: {source}; check the folder exists and may be written")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("cannot build the workbook for {path}: {source}")]
    Workbook {
        path: String,
        #[source]
        source: XlsxError,
    },

    #[error("cannot build the CSV for {path}: {source}")]
    Csv {
        path: String,
        #[source]
        source: csv::Error,
    },
}

/// Writes the template to `path`, as .xlsx or .csv by its ending (any case). An existing
/// file is left alone unless `force`. `status_words` are the `[values.status]` words the
/// status drop-down offers besides ACTIVE and CLOSED.
pub fn write_template(path: &Path, force: bool, status_words: &[String]) -> Result<(), TemplateError> {
    let shown = path.display().to_string();
    let kind = TemplateKind::from_path(path)?;
    // Built whole before the file is touched, so a failure here leaves no half-written file.
    let bytes = match kind {
        TemplateKind::Xlsx => xlsx_bytes(status_words).map_err(|source| TemplateError::Workbook {
            path: shown.clone(),
            source,
        })?,
        TemplateKind::Csv => csv_bytes().map_err(|source| TemplateError::Csv {
            path: shown.clone(),
            source,
        })?,
    };
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // create_new rather than an exists() check first: nothing can slip in between.
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => TemplateError::Exists { path: shown.clone() },
        _ => TemplateError::Write {
            path: shown.clone(),
            source,
        },
    })?;
    if let Err(source) = file.write_all(&bytes).and_then(|()| file.sync_all()) {
        drop(file);
        // A truncated template would import wrongly or not at all; better no file.
        let _ = fs::remove_file(path);
        return Err(TemplateError::Write { path: shown, source });
    }
    Ok(())
}

/// The example row's values as text, header → value, so a test can check the dry-run plan against it.
pub fn example_row() -> Vec<(&'static str, String)> {
    fields()
        .map(|field| (header(field), example(field).to_string()))
        .collect()
}

/// The template's headers, one per field it has a column for, in `Field::ALL` order.
pub fn headers() -> Vec<&'static str> {
    fields().map(header).collect()
}

/// The fields the template has a column for: all but `selection_type` (see the top).
fn fields() -> impl Iterator<Item = Field> {
    Field::ALL.into_iter().filter(|f| *f != Field::SelectionType)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TemplateKind {
    Xlsx,
    Csv,
}

impl TemplateKind {
    fn from_path(path: &Path) -> Result<TemplateKind, TemplateError> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("xlsx") => Ok(TemplateKind::Xlsx),
            Some("csv") => Ok(TemplateKind::Csv),
            _ => Err(TemplateError::UnsupportedFormat {
                path: path.display().to_string(),
                found: match path.extension() {
                    Some(e) => format!("`.{}`", e.to_string_lossy()),
                    None => "a name without an ending".to_string(),
                },
            }),
        }
    }
}

/// The header the template gives a field: a friendlier spelling of its name that still
/// matches it under the header rules.
fn header(field: Field) -> &'static str {
    match field {
        Field::Title => "Title",
        Field::Description => "Description",
        Field::Status => "Status",
        Field::ProjectId => "Project ID",
        Field::HumanId => "Human ID",
        Field::SelectionType => "Selection Type",
        Field::TestCaseIds => "Test Case IDs",
        Field::StartDate => "Start Date",
        Field::EndDate => "End Date",
        Field::AssigneeId => "Assignee ID",
        Field::LabelNames => "Label Names",
        Field::EnvironmentIds => "Environment IDs",
    }
}

/// An example cell. Dates are kept as parts so the .xlsx can hold real date cells and the
/// .csv the same moment as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Example {
    Text(&'static str),
    Date {
        year: u16,
        month: u8,
        day: u8,
    },
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u16,
        minute: u8,
    },
}

impl fmt::Display for Example {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Example::Text(text) => f.write_str(text),
            Example::Date { year, month, day } => write!(f, "{year:04}-{month:02}-{day:02}"),
            Example::DateTime {
                year,
                month,
                day,
                hour,
                minute,
            } => {
                write!(f, "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}")
            }
        }
    }
}

fn example(field: Field) -> Example {
    match field {
        Field::Title => Example::Text("Regression — release 1.4"),
        Field::Description => Example::Text("Example run: replace or delete this row"),
        Field::Status => Example::Text("ACTIVE"),
        Field::ProjectId => Example::Text("c47ade67-0543-4582-a4a5-b7de447c94f5"),
        Field::HumanId => Example::Text("REL-1.4"),
        Field::SelectionType => Example::Text("STATIC"),
        Field::TestCaseIds => {
            Example::Text("9ac271b6-4e89-4c93-8c75-2d625efa0b2d, 2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091")
        }
        Field::StartDate => Example::DateTime {
            year: 2026,
            month: 12,
            day: 1,
            hour: 9,
            minute: 0,
        },
        // A date alone, to show that an end date without a time covers the whole day.
        Field::EndDate => Example::Date {
            year: 2026,
            month: 12,
            day: 5,
        },
        Field::AssigneeId => Example::Text("cbbc40a5-26e9-4b88-8c27-3626c9fbdaa4"),
        Field::LabelNames => Example::Text("Regression, Release"),
        Field::EnvironmentIds => Example::Text(""),
    }
}

/// The header's note: what the column takes, and the other headers that would also do.
fn note_text(field: Field) -> String {
    let mut text = format!("{}: {}.", field.name(), field.accepts());
    let others = &field.aliases()[1..];
    if !others.is_empty() {
        text.push_str(&format!(" Also read from a column headed {}.", others.join(", ")));
    }
    text
}

/// Wide enough for the header and the example, but no wider than a screenful allows.
fn column_width(field: Field) -> f64 {
    let widest = header(field)
        .chars()
        .count()
        .max(example(field).to_string().chars().count());
    (widest + 2).clamp(12, 45) as f64
}

fn csv_bytes() -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(headers())?;
    writer.write_record(example_row().iter().map(|(_, value)| value.as_str()))?;
    writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

fn xlsx_bytes(status_words: &[String]) -> Result<Vec<u8>, XlsxError> {
    const LAST_ROW: u32 = 1_048_575;
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(SHEET_NAME)?;

    let bold = Format::new().set_bold();
    // Text columns are formatted as text so that ids and keys typed later (`0012`, `1.10`)
    // are kept as written instead of being turned into numbers.
    let text = Format::new().set_num_format("@");
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let date_time = Format::new().set_num_format("yyyy-mm-dd hh:mm");

    for (column, field) in (0u16..).zip(fields()) {
        let example = example(field);
        let column_format = match example {
            Example::Text(_) => &text,
            Example::Date { .. } => &date,
            Example::DateTime { .. } => &date_time,
        };
        sheet.set_column_width(column, column_width(field))?;
        sheet.set_column_format(column, column_format)?;
        sheet.write_string_with_format(0, column, header(field), &bold)?;
        let note = Note::new(note_text(field))
            .set_author("testsigma-import")
            .add_author_prefix(false)
            .set_width(260);
        sheet.insert_note(0, column, &note)?;
        match example {
            Example::Text(value) => {
                sheet.write_string(1, column, value)?;
            }
            Example::Date { year, month, day } => {
                sheet.write_datetime_with_format(1, column, ExcelDateTime::from_ymd(year, month, day)?, &date)?;
            }
            Example::DateTime {
                year,
                month,
                day,
                hour,
                minute,
            } => {
                let moment = ExcelDateTime::from_ymd(year, month, day)?.and_hms(hour, minute, 0)?;
                sheet.write_datetime_with_format(1, column, moment, &date_time)?;
            }
        }
        if field == Field::Status {
            let mut allowed = vec!["ACTIVE", "CLOSED"];
            allowed.extend(status_words.iter().map(String::as_str));
            let choices = DataValidation::new()
                .allow_list_strings(&allowed)?
                .set_error_title("Status")?
                .set_error_message(
                    "Status is ACTIVE or CLOSED, or a word the [values.status] table of the mapping or config file maps; leave it empty for ACTIVE.",
                )?;
            sheet.add_data_validation(1, column, LAST_ROW, column, &choices)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::mapping::normalise_header;

    #[test]
    fn each_header_matches_its_field_by_name() {
        for field in Field::ALL {
            let h = header(field);
            assert_eq!(normalise_header(h), normalise_header(field.name()), "{h}");
            assert_eq!(h.parse::<Field>().unwrap(), field, "{h}");
        }
        let expected = [
            "Title",
            "Description",
            "Status",
            "Project ID",
            "Human ID",
            "Test Case IDs",
            "Start Date",
            "End Date",
            "Assignee ID",
            "Label Names",
            "Environment IDs",
        ];
        assert_eq!(headers(), expected);
    }

    #[test]
    fn the_example_row_has_one_value_per_header() {
        let row = example_row();
        assert_eq!(row.iter().map(|(h, _)| *h).collect::<Vec<_>>(), headers());
        let value = |h: &str| row.iter().find(|(k, _)| *k == h).map(|(_, v)| v.as_str()).unwrap();
        for (h, expected) in [
            ("Title", "Regression — release 1.4"),
            ("Status", "ACTIVE"),
            ("Human ID", "REL-1.4"),
            ("Start Date", "2026-12-01 09:00"),
            ("End Date", "2026-12-05"),
            ("Label Names", "Regression, Release"),
            ("Environment IDs", ""),
        ] {
            assert_eq!(value(h), expected, "{h}");
        }
    }

    #[test]
    fn every_header_has_a_note_saying_what_it_takes() {
        for field in Field::ALL {
            let note = note_text(field);
            assert!(
                note.starts_with(field.name()) && note.contains(field.accepts()),
                "{note}"
            );
        }
        assert!(
            note_text(Field::EndDate).contains("end, due, due date"),
            "{}",
            note_text(Field::EndDate)
        );
        assert!(
            !note_text(Field::Status).contains("Also"),
            "{}",
            note_text(Field::Status)
        );
    }

    #[test]
    fn the_csv_template_reads_back_as_headers_and_the_example_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        write_template(&path, false, &[]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.starts_with(b"\xEF\xBB\xBF"), "no BOM");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let read_headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(read_headers, headers());
        let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), 1);
        let values: Vec<&str> = records[0].iter().collect();
        let expected: Vec<String> = example_row().into_iter().map(|(_, v)| v).collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn the_xlsx_template_is_a_workbook() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.XLSX");
        write_template(&path, false, &[]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"PK"), "a zip archive");
    }

    #[test]
    fn an_existing_file_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["runs.xlsx", "runs.csv"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "keep me").unwrap();
            let err = write_template(&path, false, &[]).unwrap_err();
            assert!(matches!(err, TemplateError::Exists { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("{} exists; pass --force to overwrite it", path.display())
            );
            assert_eq!(std::fs::read(&path).unwrap(), b"keep me");

            write_template(&path, true, &[]).unwrap();
            assert_ne!(std::fs::read(&path).unwrap(), b"keep me");
        }
    }

    #[test]
    fn other_endings_are_refused_naming_the_two_accepted() {
        let dir = tempfile::tempdir().unwrap();
        for (name, found) in [
            ("runs.xls", "`.xls`"),
            ("runs.ods", "`.ods`"),
            ("runs", "a name without an ending"),
        ] {
            let path = dir.path().join(name);
            let err = write_template(&path, false, &[]).unwrap_err().to_string();
            assert!(
                err.contains(".xlsx or .csv") && err.contains(found) && err.contains(name),
                "{err}"
            );
            assert!(!path.exists(), "{name}");
        }
    }

    #[test]
    fn a_missing_folder_is_a_write_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-folder").join("runs.csv");
        let err = write_template(&path, false, &[]).unwrap_err();
        assert!(matches!(err, TemplateError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such-folder"), "{err}");
    }

    #[test]
    fn column_widths_stay_sensible() {
        for field in Field::ALL {
            let width = column_width(field);
            assert!((12.0..=45.0).contains(&width), "{field}: {width}");
        }
    }
}
