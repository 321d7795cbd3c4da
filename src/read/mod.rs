//! The first stage: turn an input (a delimited text file, a workbook, or standard input)
//! into numbered rows of cells, with the row numbers and cell references the user sees.

mod delimited;
mod encoding;
pub mod mapping;
pub(crate) mod pass;
mod records;
pub mod row;
mod workbook;

use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::read::row::{SourceRow, cell_ref};

pub use encoding::encoding_for_label;

/// The file types accepted, as listed in messages.
pub const ACCEPTED_EXTENSIONS: &str = ".csv .tsv .txt .xlsx .xlsm .xlsb .xls .ods";

/// Where the rows come from.
#[derive(Debug, Clone)]
pub enum Input {
    File(PathBuf),
    /// Bytes already in memory (standard input). The name's extension picks the format;
    /// a name without one, such as `<stdin>`, is read as delimited text.
    Bytes {
        name: String,
        data: Arc<Vec<u8>>,
    },
}

impl Input {
    /// `-` reads all of standard input now, so the pipeline can read it twice.
    pub fn from_arg(arg: &str) -> Result<Input, SourceError> {
        if arg == "-" {
            let mut data = Vec::new();
            io::stdin().lock().read_to_end(&mut data).map_err(SourceError::Stdin)?;
            return Ok(Input::Bytes {
                name: "<stdin>".to_owned(),
                data: Arc::new(data),
            });
        }
        let exists = Path::new(arg).exists();
        if !exists && is_url(arg) {
            return Err(SourceError::Url { name: arg.to_owned() });
        }
        if Path::new(arg).is_dir() {
            return Err(SourceError::Directory { name: arg.to_owned() });
        }
        // A pipe (`<(command)`, /dev/stdin) can be read only once, and a file is opened more
        // than once (to sniff its format, then to read it): hold its bytes, as for `-`.
        if let Ok(meta) = std::fs::metadata(arg)
            && !meta.is_file()
            && !meta.is_dir()
        {
            let mut data = Vec::new();
            File::open(arg)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(|source| SourceError::Open {
                    name: arg.to_owned(),
                    source,
                })?;
            return Ok(Input::Bytes {
                name: arg.to_owned(),
                data: Arc::new(data),
            });
        }
        Ok(Input::File(PathBuf::from(arg)))
    }

    /// The input's name as the user gave it.
    pub fn display_name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Bytes { name, .. } => name.clone(),
        }
    }

    fn extension(&self) -> Option<String> {
        let path = match self {
            Input::File(path) => path.as_path(),
            Input::Bytes { name, .. } => Path::new(name.as_str()),
        };
        path.extension().map(|ext| ext.to_string_lossy().to_ascii_lowercase())
    }

    fn format(&self) -> Result<Format, SourceError> {
        let ext = self.extension();
        Ok(match ext.as_deref() {
            Some("csv" | "txt") => Format::Delimited { tsv: false },
            Some("tsv") => Format::Delimited { tsv: true },
            Some("xlsx" | "xlsm") => Format::Workbook(workbook::Kind::Xlsx),
            Some("xlsb") => Format::Workbook(workbook::Kind::Xlsb),
            Some("xls") => Format::Workbook(workbook::Kind::Xls),
            Some("ods") => Format::Workbook(workbook::Kind::Ods),
            None if matches!(self, Input::Bytes { .. }) => Format::Delimited { tsv: false },
            other => {
                return Err(SourceError::UnsupportedFormat {
                    name: self.display_name(),
                    found: other.map_or_else(|| "no extension".to_owned(), |e| format!("`.{e}`")),
                });
            }
        })
    }

    /// A fresh reader from the first byte; called again to rewind delimited text.
    fn open(&self) -> Result<Box<dyn Read + Send>, SourceError> {
        match self {
            Input::File(path) => {
                let file = File::open(path).map_err(|source| SourceError::Open {
                    name: self.display_name(),
                    source,
                })?;
                // Unbuffered: every reader of it (the record reader, the decoder, the
                // sniffing of the first bytes) reads tens of kilobytes at a time into its
                // own buffer, and a `BufReader` between would copy every byte once more.
                Ok(Box::new(file))
            }
            Input::Bytes { data, .. } => Ok(Box::new(Cursor::new(SharedBytes(Arc::clone(data))))),
        }
    }
}

/// Whether `arg` looks like a web address rather than a path: `scheme://…`.
fn is_url(arg: &str) -> bool {
    arg.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// Lets a `Cursor` read the shared bytes without copying them.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

enum Format {
    Delimited { tsv: bool },
    Workbook(workbook::Kind),
}

#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// Worksheet name; the first visible worksheet when `None`.
    pub sheet: Option<String>,
    /// 1-based row that holds the headers.
    pub header_row: usize,
    /// `--header-row` was not given: a workbook's header row is the first of the sheet's
    /// first 20 rows with a title header, and without `sheet` the sheet is the first
    /// visible one that has such a row.
    pub find_table: bool,
    /// Headers mapped to the title (`--column title=…`, `[columns]`), looked for beside the
    /// title's aliases when the header row is searched.
    pub title_headers: Vec<String>,
    /// Field delimiter for delimited text; sniffed from the header line when `None`.
    pub delimiter: Option<u8>,
    /// An encoding label such as `windows-1252` or `utf-16le`; a byte-order mark wins.
    pub encoding: Option<String>,
    pub max_cell_bytes: usize,
    pub max_columns: usize,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            sheet: None,
            header_row: 1,
            find_table: false,
            title_headers: Vec::new(),
            delimiter: None,
            encoding: None,
            max_cell_bytes: 1024 * 1024,
            max_columns: 1000,
        }
    }
}

/// Rows of one table, after its header row.
pub trait RowSource: Send {
    /// Trimmed header texts, in column order (a blank header stays `""`).
    fn headers(&self) -> &[String];
    /// Messages use cell references (`C7`) only for workbooks.
    fn is_workbook(&self) -> bool;
    fn sheet_name(&self) -> Option<&str>;
    /// The field delimiter of delimited text, as given or sniffed; `None` for workbooks.
    fn delimiter(&self) -> Option<u8> {
        None
    }
    /// Fills `row` with the next data row, reusing its storage. `Ok(false)` at the end.
    /// A row whose columns have shifted is read with its `overflow` set; an error ends the
    /// reading.
    fn next_row(&mut self, row: &mut SourceRow) -> Result<bool, SourceError>;
    /// Like [`RowSource::next_row`], with the same row numbers and the same errors, but
    /// only the cells at `columns` are filled; the others are left empty. For a pass that
    /// needs a few columns of every row (the dd/mm evidence of the date columns), this
    /// skips copying the rest.
    fn next_row_columns(&mut self, row: &mut SourceRow, columns: &[usize]) -> Result<bool, SourceError> {
        let _ = columns;
        self.next_row(row)
    }
    /// Back to the first data row, so the pipeline can make two passes.
    fn rewind(&mut self) -> Result<(), SourceError>;
    /// The 1-based row the headers are on, when the source found it itself (a workbook's
    /// table found below row 1); `None`: the row asked for (`--header-row`, else 1).
    fn header_row(&self) -> Option<usize> {
        None
    }
    /// What the run should say once about how the source was read (the sheet and header
    /// row found, merged cells spread over their rows).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Opens `input` and reads up to its header row.
pub fn open_source(input: &Input, opts: &SourceOptions) -> Result<Box<dyn RowSource>, SourceError> {
    if opts.header_row == 0 {
        return Err(SourceError::InvalidHeaderRow {
            name: input.display_name(),
        });
    }
    match input.format()? {
        Format::Delimited { tsv } => Ok(Box::new(delimited::DelimitedSource::open(input, opts, tsv)?)),
        Format::Workbook(kind) => Ok(Box::new(workbook::WorkbookSource::open(input, opts, kind)?)),
    }
}

/// A place in the input, worded the way the user finds it: a cell reference in a
/// workbook, a row and column number in delimited text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based, as the sheet shows it.
    pub row: usize,
    /// 0-based column index, when the place is one cell.
    pub column: Option<usize>,
    /// The column's header, when known and not blank.
    pub header: Option<String>,
    pub workbook: bool,
}

impl Location {
    fn row(row: usize, workbook: bool) -> Location {
        Location {
            row,
            column: None,
            header: None,
            workbook,
        }
    }

    fn cell(row: usize, column: usize, headers: &[String], workbook: bool) -> Location {
        let header = headers.get(column).filter(|h| !h.is_empty()).map(|h| h.to_owned());
        Location {
            row,
            column: Some(column),
            header,
            workbook,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.column, self.workbook) {
            (None, _) => write!(f, "row {}", self.row)?,
            (Some(column), true) => write!(f, "cell {}", cell_ref(column, self.row))?,
            (Some(column), false) => write!(f, "row {}, column {}", self.row, column + 1)?,
        }
        if let Some(header) = &self.header {
            write!(f, " (`{header}`)")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read standard input: {0}")]
    Stdin(#[source] io::Error),

    #[error(
        "{name} is a web address: the input is a file; download it first (e.g. curl -fLo runs.csv '{name}') and import that file"
    )]
    Url { name: String },

    #[error("{name} is a directory: give a file in it ({ACCEPTED_EXTENSIONS}), or `-` for CSV on standard input")]
    Directory { name: String },

    #[error("cannot open {name}: {source}; check the path and that it may be read")]
    Open {
        name: String,
        #[source]
        source: io::Error,
    },

    #[error("cannot read {name} at or after {at}: {source}")]
    Read {
        name: String,
        at: Location,
        #[source]
        source: io::Error,
    },

    #[error(
        "{name}: {found} is not a supported file type; use one of {ACCEPTED_EXTENSIONS}, or `-` for CSV on standard input"
    )]
    UnsupportedFormat { name: String, found: String },

    #[error("{name}: --header-row 0 is not a row; rows count from 1")]
    InvalidHeaderRow { name: String },

    #[error("{name}: --delimiter {shown} cannot separate fields; use `,` `;` `|` or tab (`\\t`)")]
    InvalidDelimiter { name: String, shown: String },

    #[error(
        "{name}: --encoding {label} is not an encoding this tool can read; use a name such as utf-8, windows-1252, iso-8859-15, utf-16le or utf-16be"
    )]
    UnknownEncoding { name: String, label: String },

    #[error("{name} does not look like text{hint}")]
    NotText { name: String, hint: &'static str },

    #[error(
        "{name}: {at} holds a NUL byte, so the file does not look like text; if it is UTF-16 text without a byte-order mark, pass --encoding utf-16le, or remove the NUL bytes"
    )]
    NulByte { name: String, at: Location },

    #[error(
        "{name}: {at}: the text is not valid UTF-8; pass --encoding windows-1252 (or the code page the file was saved in)"
    )]
    InvalidUtf8 { name: String, at: Location },

    #[error("{name}: {at} holds {bytes} bytes, over the limit of {limit}; shorten it or raise --max-cell-bytes")]
    CellTooLarge {
        name: String,
        at: Location,
        bytes: usize,
        limit: usize,
    },

    #[error(
        "{name}: the record starting at or after {at} runs past {limit} bytes, so a quoted field is probably never closed; look for a stray `\"` there, or raise --max-cell-bytes"
    )]
    RunawayRecord { name: String, at: Location, limit: u64 },

    #[error(
        "{name}: {at}: a quote opened there is never closed, so every line after it, to the end of the file, was read into that one cell ({lines} line breaks); close the quote, or write a quote meant as text as `\"\"`"
    )]
    UnclosedQuote { name: String, at: Location, lines: u64 },

    #[error(
        "{name}: {at} has {columns} columns, over the limit of {limit}; delete the unused columns or raise --max-columns"
    )]
    TooManyColumns {
        name: String,
        at: Location,
        columns: usize,
        limit: usize,
    },

    #[error(
        "{name}: {at} holds `{value}` past the last of the {columns} headers, so the columns have probably shifted; quote values that contain the delimiter {}, or pass the right --delimiter",
        shown_byte(*.delimiter)
    )]
    ExtraFields {
        name: String,
        at: Location,
        columns: usize,
        value: String,
        delimiter: u8,
    },

    #[error("{name}: {at} (--header-row) is empty{}", first_row_hint(.first_row))]
    HeaderRowBlank {
        name: String,
        at: Location,
        /// The nearest row with values, after the header row if there is one.
        first_row: Option<usize>,
    },

    #[error("{name}: --header-row {row} is past the last row ({last}); pass the row that holds the column names")]
    HeaderRowMissing { name: String, row: usize, last: usize },

    #[error("{name}: --sheet {wanted}: there is no such sheet; the sheets are {available}")]
    SheetNotFound {
        name: String,
        wanted: String,
        available: String,
    },

    #[error("{name} has no worksheet to read")]
    NoSheets { name: String },

    #[error(
        "{name} is password-protected; remove the password (in Excel: File > Info > Protect Workbook; in LibreOffice: File > Save As without \"Save with password\") and save it again"
    )]
    Encrypted { name: String },

    #[error(
        "cannot read {name} as a workbook ({detail}); it may be damaged, truncated or of another type than its extension says: open it in Excel or LibreOffice and save a fresh copy"
    )]
    Workbook { name: String, detail: String },

    #[error(
        "{name}: no visible sheet has a title header (Title, Name, Run Name, Test Run) in its first 20 rows; looked at {looked}. Give the sheet with --sheet and the header row with --header-row, or the title's header with --column title=HEADER"
    )]
    NoTitleHeader { name: String, looked: String },

    #[error(
        "{name}: its sheets span {cells} cells (from each sheet's first value to its last), over the {limit} this tool reads from an .xls or .ods file; delete the stray cells or repeated rows far below or right of the tables (Ctrl+End goes to the last cell), or save it as .xlsx, which is read without this limit"
    )]
    TooManyCells { name: String, cells: usize, limit: usize },

    #[error(
        "{name}: sheet `{sheet}` has a cell of row {row} after row {after}: its rows are out of order, which Excel and LibreOffice never write; open it in Excel or LibreOffice and save a fresh copy"
    )]
    RowsOutOfOrder {
        name: String,
        sheet: String,
        row: usize,
        after: usize,
    },

    #[error(
        "{name}: reading the workbook made no progress for {seconds} seconds, so it was stopped; the file may be damaged or built to keep a reader busy: open it in Excel or LibreOffice and save a fresh copy"
    )]
    ReadStalled { name: String, seconds: f64 },
}

/// A delimiter as a message shows it: in backticks, or named when invisible.
fn shown_byte(b: u8) -> String {
    match b {
        b'\t' => "tab".to_owned(),
        b if b.is_ascii_graphic() || b == b' ' => format!("`{}`", b as char),
        b => format!("byte 0x{b:02X}"),
    }
}

fn first_row_hint(first_row: &Option<usize>) -> String {
    match first_row {
        Some(row) => format!("; row {row} has values: pass --header-row {row} if it holds the column names"),
        None => "; pass the row that holds the column names".to_owned(),
    }
}

impl SourceError {
    /// The row the error is about, when there is one.
    pub fn row(&self) -> Option<usize> {
        match self {
            SourceError::Read { at, .. }
            | SourceError::InvalidUtf8 { at, .. }
            | SourceError::NulByte { at, .. }
            | SourceError::CellTooLarge { at, .. }
            | SourceError::RunawayRecord { at, .. }
            | SourceError::UnclosedQuote { at, .. }
            | SourceError::TooManyColumns { at, .. }
            | SourceError::ExtraFields { at, .. }
            | SourceError::HeaderRowBlank { at, .. } => Some(at.row),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn fixture(name: &str) -> Input {
        Input::File(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name))
    }

    pub fn bytes_input(name: &str, data: &[u8]) -> Input {
        Input::Bytes {
            name: name.to_owned(),
            data: Arc::new(data.to_vec()),
        }
    }

    /// Every header and row, failing the test on any error.
    pub fn read_all(input: &Input, opts: &SourceOptions) -> (Vec<String>, Vec<SourceRow>) {
        let mut source = open_source(input, opts).unwrap_or_else(|err| panic!("{err}"));
        let mut rows = Vec::new();
        let mut row = SourceRow::default();
        while source.next_row(&mut row).unwrap_or_else(|err| panic!("{err}")) {
            rows.push(row.clone());
        }
        (source.headers().to_vec(), rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_extension_case_insensitively() {
        for (name, want) in [
            ("runs.csv", Some("delimited")),
            ("RUNS.CSV", Some("delimited")),
            ("runs.txt", Some("delimited")),
            ("runs.tsv", Some("tsv")),
            ("runs.XLSX", Some("workbook")),
            ("runs.xlsm", Some("workbook")),
            ("runs.xlsb", Some("workbook")),
            ("runs.xls", Some("workbook")),
            ("runs.ods", Some("workbook")),
            ("runs.json", None),
            ("runs", None),
        ] {
            let got = match Input::File(PathBuf::from(name)).format() {
                Ok(Format::Delimited { tsv: false }) => Some("delimited"),
                Ok(Format::Delimited { tsv: true }) => Some("tsv"),
                Ok(Format::Workbook(_)) => Some("workbook"),
                Err(err) => {
                    let text = err.to_string();
                    assert!(text.contains(ACCEPTED_EXTENSIONS), "{text}");
                    assert!(text.contains(name), "{text}");
                    None
                }
            };
            assert_eq!(got, want, "{name}");
        }
        let stdin = Input::Bytes {
            name: "<stdin>".to_owned(),
            data: Arc::new(Vec::new()),
        };
        assert!(matches!(stdin.format(), Ok(Format::Delimited { tsv: false })));
    }

    #[test]
    fn unsupported_format_lists_the_accepted_ones() {
        let err = Input::File(PathBuf::from("plan.pdf")).format().err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "plan.pdf: `.pdf` is not a supported file type; use one of .csv .tsv .txt .xlsx .xlsm .xlsb .xls .ods, or `-` for CSV on standard input"
            )
        );
    }

    #[test]
    fn header_row_zero_is_refused() {
        let opts = SourceOptions {
            header_row: 0,
            ..SourceOptions::default()
        };
        let err = open_source(&Input::File(PathBuf::from("x.csv")), &opts).err();
        assert!(matches!(err, Some(SourceError::InvalidHeaderRow { .. })));
    }

    #[test]
    fn locations_read_as_the_user_sees_them() {
        let headers = vec!["Title".to_owned(), "".to_owned(), "Status".to_owned()];
        for (at, want) in [
            (Location::row(7, true), "row 7"),
            (Location::cell(7, 2, &headers, true), "cell C7 (`Status`)"),
            (Location::cell(7, 2, &headers, false), "row 7, column 3 (`Status`)"),
            (Location::cell(7, 1, &headers, false), "row 7, column 2"),
            (Location::cell(7, 5, &headers, true), "cell F7"),
        ] {
            assert_eq!(at.to_string(), want);
        }
    }

    #[test]
    fn a_directory_or_a_web_address_is_named_for_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let shown = dir.path().display().to_string();
        for (arg, want) in [
            (
                shown.as_str(),
                format!("{shown} is a directory: give a file in it (.csv"),
            ),
            (
                "https://example.com/runs.csv",
                "https://example.com/runs.csv is a web address: the input is a file; download it first".to_owned(),
            ),
        ] {
            let said = Input::from_arg(arg).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(said.starts_with(&want), "{arg}: {said}");
        }
        for (arg, url) in [
            ("http://x/y.csv", true),
            ("s3://bucket/runs.xlsx", true),
            ("runs.csv", false),
            ("C:/runs.csv", false),
            ("://x", false),
        ] {
            assert_eq!(is_url(arg), url, "{arg}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = open_source(
            &Input::File(PathBuf::from("/nonexistent/runs.csv")),
            &SourceOptions::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.starts_with("cannot open /nonexistent/runs.csv: "), "{err}");
    }
}
