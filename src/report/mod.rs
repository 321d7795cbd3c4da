//! The results report (one row per data row, CSV / JSON / JSON Lines), the failed-rows
//! file that can be fixed and fed back as input, and the `--summary-json` document.
//! `serialize`, `neutralise`, `count_outcomes` and `RunSummary::to_json` are pure; the
//! writers own the files.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod outcome;
mod summary;

pub use outcome::{Outcome, ReportRow};
pub use summary::{RunInfo, RunSummary, setup_error_in_summary, write_summary_json};

/// The report's columns, in the contract's order.
pub const REPORT_COLUMNS: [&str; 10] = [
    "row",
    "outcome",
    "test_run_id",
    "test_run_human_id",
    "title",
    "human_id",
    "http_status",
    "attempts",
    "error",
    "request_id",
];

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "cannot create the report file {} (--report): {source}; \
         pass --report with a path in an existing, writable directory",
        path.display()
    )]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write the report file {} (--report): {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "cannot write the failed-rows file {} (next to the --report file): {source}",
        path.display()
    )]
    FailedRows { path: PathBuf, source: io::Error },
}

/// The report's format, chosen by the `--report` file's ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Csv,
    /// One array of objects. While running, the array is streamed one object per line,
    /// so a crashed `.json` report is valid JSON once a closing `]` is added.
    Json,
    JsonLines,
}

impl ReportFormat {
    /// `.json` → JSON, `.jsonl` / `.ndjson` → JSON Lines, anything else → CSV
    /// (endings compared case-insensitively).
    pub fn from_path(p: &Path) -> ReportFormat {
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "json" => ReportFormat::Json,
            "jsonl" | "ndjson" => ReportFormat::JsonLines,
            _ => ReportFormat::Csv,
        }
    }
}

/// A cell a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab
/// or a carriage return) gets a leading apostrophe, which spreadsheets show as text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// The whole report as bytes ([`serialize_to`]).
#[cfg(test)]
pub fn serialize(rows: &[ReportRow], format: ReportFormat) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rows = rows.iter().cloned().map(Ok);
    // Writing to a Vec cannot fail.
    let _ = serialize_to(&mut out, &mut rows, format);
    out
}

/// The whole report, rows in the order given, row by row into `out`, so a report of a
/// million rows is never held.
///
/// CSV has a header line and `\n` line ends, and its text cells are neutralised
/// (see [`neutralise`]). JSON and JSON Lines carry the values exactly as they are: they
/// are read by programs, not spreadsheets, and a program wants the real title.
/// JSON is an array with one object per line; absent values are `null`.
pub fn serialize_to(
    out: &mut dyn Write,
    rows: &mut dyn Iterator<Item = io::Result<ReportRow>>,
    format: ReportFormat,
) -> io::Result<()> {
    let mut line = Vec::with_capacity(512);
    let mut put = |line: &mut Vec<u8>| {
        crate::redact::scrub_in_place(line);
        let written = out.write_all(line);
        line.clear();
        written
    };
    let mut first = true;
    match format {
        ReportFormat::Csv => line.extend_from_slice(&csv_header()),
        ReportFormat::Json => line.extend_from_slice(JSON_OPEN),
        ReportFormat::JsonLines => {}
    }
    put(&mut line)?;
    for row in rows {
        let row = row?;
        match format {
            ReportFormat::Csv => write_csv_line(&mut line, &row),
            ReportFormat::JsonLines => {
                line.extend_from_slice(&json_object(&row));
                line.push(b'\n');
            }
            ReportFormat::Json => line.extend_from_slice(&json_element(&row, first)),
        }
        first = false;
        put(&mut line)?;
    }
    if format == ReportFormat::Json {
        line.extend_from_slice(json_close(first));
        put(&mut line)?;
    }
    Ok(())
}

const JSON_OPEN: &[u8] = b"[\n";

fn json_close(empty: bool) -> &'static [u8] {
    if empty { b"]\n" } else { b"\n]\n" }
}

/// One array element; the separator goes before it so that what is on disk after each
/// append is always "a valid array minus its closing bracket".
fn json_element(row: &ReportRow, first: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if !first {
        out.extend_from_slice(b",\n");
    }
    out.extend_from_slice(&json_object(row));
    out
}

/// One CSV record: each cell quoted only where needed, as the csv crate's writer does
/// (csv_core's, with its defaults: `,` between cells, `\n` after the last).
fn csv_record(cells: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    write_csv_record(&mut out, cells);
    out
}

/// Appends [`csv_record`] of `cells` to `out`.
fn write_csv_record(out: &mut Vec<u8>, cells: &[&str]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_csv_cell(out, cell);
    }
    // A record of one empty cell is `""`, not a blank line, as csv_core writes it.
    if let [""] = cells {
        out.extend_from_slice(b"\"\"");
    }
    out.push(b'\n');
}

/// Appends one cell as csv_core's writer writes it: most cells as they are, and those
/// that need quotes by csv_core itself. Building its writer and stepping it through every
/// cell took about 1,000 instructions a report line on the million-row dry run.
fn write_csv_cell(out: &mut Vec<u8>, cell: &str) {
    if !needs_quotes(cell.as_bytes()) {
        out.extend_from_slice(cell.as_bytes());
        return;
    }
    // Room for the quotes and every byte a doubled quote.
    let at = out.len();
    out.resize(at + 2 * cell.len() + 2, 0);
    let mut writer = csv_core::Writer::new();
    let (_, _, wrote) = writer.field(cell.as_bytes(), &mut out[at..]);
    let (_, closed) = writer.finish(&mut out[at + wrote..]);
    out.truncate(at + wrote + closed);
}

/// Whether a cell holds `,`, `"`, `\r` or `\n`: what csv_core's writer quotes. Looked at
/// eight bytes at a time (the "has a zero byte" test on the word XOR each byte), a few
/// instructions a byte fewer than a byte at a time on cells this short.
fn needs_quotes(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has = |word: u64, b: u8| {
        let x = word ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGH != 0
    };
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if has(word, b',') | has(word, b'"') | has(word, b'\r') | has(word, b'\n') {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

fn csv_header() -> Vec<u8> {
    csv_record(&REPORT_COLUMNS)
}

/// Appends a row's CSV record to `out`, its text cells neutralised (see [`neutralise`]).
/// Written cell by cell into `out`: the same bytes as [`csv_record`] of its cells.
fn write_csv_line(out: &mut Vec<u8>, row: &ReportRow) {
    let text = |out: &mut Vec<u8>, cell: &Option<String>| {
        if let Some(cell) = cell {
            write_csv_cell(out, &neutralise(cell));
        }
        out.push(b',');
    };
    write_number(out, row.row as u64);
    out.push(b',');
    write_csv_cell(out, row.outcome.as_str());
    out.push(b',');
    text(out, &row.test_run_id);
    text(out, &row.test_run_human_id);
    text(out, &row.title);
    text(out, &row.human_id);
    if let Some(status) = row.http_status {
        write_number(out, status.into());
    }
    out.push(b',');
    write_number(out, row.attempts.into());
    out.push(b',');
    text(out, &row.error);
    if let Some(id) = &row.request_id {
        write_csv_cell(out, &neutralise(id));
    }
    out.push(b'\n');
}

/// Appends `n` in decimal: `write!` into a `Vec` took about 300 instructions a number.
fn write_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// One row as a JSON object keyed by the report's column names, in column order.
fn json_object(row: &ReportRow) -> Vec<u8> {
    // Serialized field by field rather than through `ReportRow`'s own derive, so the
    // report's shape stays the contract's even if the shared type grows a field.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        row: usize,
        outcome: Outcome,
        test_run_id: Option<&'a str>,
        test_run_human_id: Option<&'a str>,
        title: Option<&'a str>,
        human_id: Option<&'a str>,
        http_status: Option<u16>,
        attempts: u32,
        error: Option<&'a str>,
        request_id: Option<&'a str>,
    }
    let line = Line {
        row: row.row,
        outcome: row.outcome,
        test_run_id: row.test_run_id.as_deref(),
        test_run_human_id: row.test_run_human_id.as_deref(),
        title: row.title.as_deref(),
        human_id: row.human_id.as_deref(),
        http_status: row.http_status,
        attempts: row.attempts,
        error: row.error.as_deref(),
        request_id: row.request_id.as_deref(),
    };
    // Strings, integers and an enum of unit variants: serde_json cannot fail on these.
    serde_json::to_vec(&line).unwrap_or_default()
}

/// Writes the report as rows finish, so a crash leaves what was done, then puts the
/// rows in input order at the end.
///
/// Each row is written with one `write` call straight to the file (no user-space
/// buffer), so after a crash the file holds every row appended before it. It is not
/// fsync'd per row: the ledger is the durable record; the report is for people.
pub struct ReportWriter {
    path: PathBuf,
    format: ReportFormat,
    file: io::BufWriter<File>,
    rows_written: usize,
    /// Flush after every row (an upload: a crash must leave what was done). A dry run
    /// turns it off: nothing is lost by a crash there, and a write per row is slow.
    flush_each_row: bool,
    /// The line being written, kept for the next.
    line: Vec<u8>,
}

impl ReportWriter {
    /// Creates (or truncates) the report at `path` and writes what opens it: the CSV
    /// header, or the JSON array's `[`. The parent directory must exist.
    pub fn create(path: &Path, format: ReportFormat) -> Result<ReportWriter, ReportError> {
        let create_error = |source| ReportError::Create {
            path: path.to_path_buf(),
            source,
        };
        // A device or pipe is written on, not truncated: `/dev/stdout` may be a log file
        // opened for appending (`>> run.log`), whose earlier lines must stay.
        let opened = if is_special_file(path) {
            fs::OpenOptions::new().append(true).open(path)
        } else {
            File::create(path)
        };
        let mut file = opened.map_err(create_error)?;
        let opening = match format {
            ReportFormat::Csv => csv_header(),
            ReportFormat::Json => JSON_OPEN.to_vec(),
            ReportFormat::JsonLines => Vec::new(),
        };
        file.write_all(&opening).map_err(create_error)?;
        Ok(ReportWriter {
            path: path.to_path_buf(),
            format,
            // Rows are flushed one by one while uploading; a dry run writes in large pieces.
            file: io::BufWriter::with_capacity(256 << 10, file),
            rows_written: 0,
            flush_each_row: true,
            line: Vec::with_capacity(512),
        })
    }

    /// Whether each appended row is flushed at once (the default).
    pub fn flush_each_row(mut self, on: bool) -> ReportWriter {
        self.flush_each_row = on;
        self
    }

    /// Appends one finished row, in whatever order rows finish.
    pub fn append(&mut self, row: &ReportRow) -> Result<(), ReportError> {
        self.line.clear();
        match self.format {
            ReportFormat::Csv => write_csv_line(&mut self.line, row),
            ReportFormat::JsonLines => {
                self.line.extend_from_slice(&json_object(row));
                self.line.push(b'\n');
            }
            ReportFormat::Json => self.line.extend_from_slice(&json_element(row, self.rows_written == 0)),
        }
        crate::redact::scrub_in_place(&mut self.line);
        let flush = self.flush_each_row;
        self.file
            .write_all(&self.line)
            .and_then(|()| if flush { self.file.flush() } else { Ok(()) })
            .map_err(|source| self.write_error(source))?;
        self.rows_written += 1;
        Ok(())
    }

    /// Completes the report.
    ///
    /// `Some(rows)`: the file is replaced, atomically (a temporary file in the same
    /// directory, then a rename), by `serialize(rows)`, so readers never see a half
    /// report. `None`: the rows were appended in input order already; only the JSON
    /// array is closed.
    pub fn finish(
        self,
        rows_in_input_order: Option<&mut dyn Iterator<Item = io::Result<ReportRow>>>,
    ) -> Result<(), ReportError> {
        let ReportWriter {
            path,
            format,
            mut file,
            rows_written,
            ..
        } = self;
        // A device or a pipe (`--report /dev/null`) cannot be rewritten, only closed: the
        // rows went there as they finished. (As root, a rename over `/dev/null` succeeds.)
        match rows_in_input_order {
            Some(rows) if !is_special_file(&path) => {
                // Closed before the rename: Windows refuses to replace a file that is open.
                drop(file);
                replace_atomically(&path, |out| serialize_to(out, rows, format))
                    .map_err(|source| ReportError::Write { path, source })
            }
            _ => {
                let close: &[u8] = if format == ReportFormat::Json {
                    json_close(rows_written == 0)
                } else {
                    b""
                };
                file.write_all(close)
                    .and_then(|()| file.flush())
                    .map_err(|source| ReportError::Write {
                        path: path.clone(),
                        source,
                    })?;
                Ok(())
            }
        }
    }

    fn write_error(&self, source: io::Error) -> ReportError {
        ReportError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// Writes `bytes` to a new file next to `path` and renames it over `path`. A symlink's
/// target is replaced, not the link.
fn replace_atomically(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let path = real.as_path();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_string());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&temp)?;
        let mut out = io::BufWriter::with_capacity(256 << 10, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        // Without it a power cut right after the rename can leave an empty report.
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// `dir/<stem>.failed.csv` next to the report, where `<stem>` is the report's file stem
/// without a trailing `.report` (`plan.report.csv` → `plan.failed.csv`).
/// [`failed_rows_path`], or `None` when the report is not a regular file (`/dev/null`, a
/// pipe): there is then no place beside it for a file of its own.
pub fn failed_rows_path_beside(report_path: &Path) -> Option<PathBuf> {
    (!is_special_file(report_path)).then(|| failed_rows_path(report_path))
}

/// A path that exists and is not a regular file: a device such as `/dev/null`, a pipe; and
/// the process's own streams (`/dev/stdout`, `/dev/fd/1`), which may lead to a regular file
/// (`>> run.log`) that is not the report's to replace. (`/dev/shm` files are plain files.)
pub fn is_special_file(path: &Path) -> bool {
    let stream = ["/dev/stdout", "/dev/stderr", "/dev/fd", "/proc/self/fd"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    stream || fs::metadata(path).is_ok_and(|m| !m.is_file())
}

pub fn failed_rows_path(report_path: &Path) -> PathBuf {
    let stem = report_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match stem.strip_suffix(".report") {
        Some(base) if !base.is_empty() => base.to_string(),
        _ if stem.is_empty() => "testsigma-import".to_string(),
        _ => stem,
    };
    report_path.with_file_name(format!("{stem}.failed.csv"))
}

/// The rows that failed or were invalid, with their original columns and an error
/// column, so that fixing the file and feeding it back as input just works: in the
/// input's delimiter, as UTF-8 with a byte-order mark. The mark wins over `--encoding`, so
/// a nightly config that reads its exports as windows-1252 still reads this file right,
/// and Excel opens it as UTF-8 too.
///
/// Cells are written exactly as read, NOT neutralised for spreadsheets: a leading
/// apostrophe would become part of the title on the next import. The file is created
/// only when the first row is written; a run without failures leaves no file, and
/// removes one left by an earlier run so it cannot mislead.
pub struct FailedRowsWriter {
    /// `None`: no file at all, as when the report goes to a device such as `/dev/null`,
    /// beside which a `null.failed.csv` must not be made.
    path: Option<PathBuf>,
    headers: Vec<String>,
    shape: FailedRowsShape,
    writer: Option<csv::Writer<File>>,
}

/// What the failed-rows file keeps of the input's layout, so the options that read the
/// input (`--delimiter`, `--header-row`, in a config too) read it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedRowsShape {
    /// The input's delimiter, or `,` for a workbook.
    pub delimiter: u8,
    /// The input's header row: blank lines stand in for the rows above it.
    pub header_row: usize,
}

impl Default for FailedRowsShape {
    fn default() -> Self {
        FailedRowsShape {
            delimiter: b',',
            header_row: 1,
        }
    }
}

impl FailedRowsWriter {
    /// `path: None` writes nothing (see [`failed_rows_path_beside`]).
    pub fn new(path: Option<PathBuf>, headers: Vec<String>, shape: FailedRowsShape) -> Self {
        FailedRowsWriter {
            path,
            headers,
            shape,
            writer: None,
        }
    }

    /// Writes one row: its original cells, then the error. A row longer than the header
    /// keeps its extra cells after the error column, so every original column stays
    /// where it was; a shorter one is padded with empty cells.
    pub fn write(&mut self, cells: &[String], error: &str) -> Result<(), ReportError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let width = self.headers.len();
        let scrubbed: Vec<std::borrow::Cow<'_, str>> = cells.iter().map(|c| crate::redact::scrub(c)).collect();
        let error = crate::redact::scrub(error);
        let mut record: Vec<&str> = scrubbed.iter().take(width).map(AsRef::as_ref).collect();
        record.resize(width, "");
        record.push(&error);
        record.extend(scrubbed.iter().skip(width).map(AsRef::as_ref));

        let writer = match self.writer.take() {
            Some(writer) => writer,
            None => create_failed_rows(path, &self.headers, self.shape)?,
        };
        let writer = self.writer.insert(writer);
        let written = writer
            .write_record(&record)
            .map_err(io::Error::from)
            .and_then(|()| writer.flush());
        written.map_err(|source| ReportError::FailedRows {
            path: path.clone(),
            source,
        })
    }

    /// Flushes the file and returns its path, or, when no row was written, removes a
    /// stale file from an earlier run and returns `None`.
    pub fn finish(self) -> Result<Option<PathBuf>, ReportError> {
        let Some(path) = self.path else {
            return Ok(None);
        };
        let failed = |source| ReportError::FailedRows {
            path: path.clone(),
            source,
        };
        match self.writer {
            Some(mut writer) => {
                writer.flush().map_err(failed)?;
                Ok(Some(path.clone()))
            }
            None => match fs::remove_file(&path) {
                Ok(()) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(failed(e)),
            },
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The failed-rows file and its header row, made on the first failed row.
fn create_failed_rows(
    path: &Path,
    headers: &[String],
    shape: FailedRowsShape,
) -> Result<csv::Writer<File>, ReportError> {
    let mut header: Vec<&str> = headers.iter().map(String::as_str).collect();
    let error_column = error_column_name(headers);
    header.push(&error_column);
    let created = File::create(path).and_then(|mut file| {
        file.write_all(UTF8_BOM)?;
        file.write_all(&b"\n".repeat(shape.header_row.saturating_sub(1)))?;
        // The delimiter of a file read back is sniffed from its header line, outside quotes:
        // every header is quoted, so a `Tags (a, b)` header cannot make a TSV look like commas.
        let mut header_writer = csv::WriterBuilder::new()
            .delimiter(shape.delimiter)
            .quote_style(csv::QuoteStyle::Always)
            .from_writer(file);
        header_writer.write_record(&header)?;
        let file = header_writer.into_inner().map_err(|e| e.into_error())?;
        Ok(csv::WriterBuilder::new()
            .flexible(true)
            .delimiter(shape.delimiter)
            .from_writer(file))
    });
    created.map_err(|source| ReportError::FailedRows {
        path: path.to_path_buf(),
        source,
    })
}

/// `error`, unless the input has a column of that name already: then `import_error`
/// (then `import_error_2`, ...), so no original column is shadowed.
fn error_column_name(headers: &[String]) -> String {
    let taken = |name: &str| headers.iter().any(|h| h.trim().eq_ignore_ascii_case(name));
    if !taken("error") {
        return "error".to_string();
    }
    if !taken("import_error") {
        return "import_error".to_string();
    }
    (2..)
        .map(|n| format!("import_error_{n}"))
        .find(|name| !taken(name))
        .unwrap_or_else(|| "import_error".to_string())
}

/// Rows per outcome, every outcome present (0 included) so scripts need no defaults.
pub fn count_outcomes(rows: &[ReportRow]) -> BTreeMap<String, usize> {
    let outcomes: Vec<Outcome> = rows.iter().map(|r| r.outcome).collect();
    tally(&outcomes)
}

/// [`count_outcomes`], from the outcomes alone.
pub fn tally(outcomes: &[Outcome]) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = Outcome::ALL.iter().map(|o| (o.as_str().to_string(), 0)).collect();
    for outcome in outcomes {
        *counts.entry(outcome.as_str().to_string()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize, outcome: Outcome, title: &str) -> ReportRow {
        ReportRow {
            row: n,
            outcome,
            title: Some(title.to_string()),
            attempts: 1,
            ..ReportRow::default()
        }
    }

    fn two_rows() -> Vec<ReportRow> {
        vec![
            ReportRow {
                row: 2,
                outcome: Outcome::Created,
                test_run_id: Some("9f1c".into()),
                test_run_human_id: Some("DEMO-R-1".into()),
                title: Some("Smoke, \"nightly\"\nrun".into()),
                human_id: Some("DEMO-001".into()),
                http_status: Some(200),
                attempts: 1,
                error: None,
                request_id: Some("req-1".into()),
            },
            ReportRow {
                row: 3,
                outcome: Outcome::Failed,
                title: Some("=HYPERLINK(\"http://x\",\"y\")".into()),
                http_status: Some(422),
                attempts: 2,
                error: Some("-bad status".into()),
                ..ReportRow::default()
            },
        ]
    }

    #[test]
    fn neutralise_table() {
        for (cell, want) in [
            ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@a", "'@a"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralise(cell), want, "cell {cell:?}");
        }
        assert!(matches!(neutralise("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn format_from_path() {
        for (path, want) in [
            ("r.json", ReportFormat::Json),
            ("r.JSON", ReportFormat::Json),
            ("r.jsonl", ReportFormat::JsonLines),
            ("r.ndjson", ReportFormat::JsonLines),
            ("r.csv", ReportFormat::Csv),
            ("r.report.txt", ReportFormat::Csv),
            ("report", ReportFormat::Csv),
        ] {
            assert_eq!(ReportFormat::from_path(Path::new(path)), want, "{path}");
        }
    }

    #[test]
    fn csv_exact_bytes() {
        let got = String::from_utf8(serialize(&two_rows(), ReportFormat::Csv)).unwrap();
        let want = "row,outcome,test_run_id,test_run_human_id,title,human_id,http_status,attempts,error,request_id\n\
                    2,created,9f1c,DEMO-R-1,\"Smoke, \"\"nightly\"\"\nrun\",DEMO-001,200,1,,req-1\n\
                    3,failed,,,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",,422,2,'-bad status,\n";
        assert_eq!(got, want);
        assert_eq!(
            serialize(&[], ReportFormat::Csv),
            format!("{}\n", REPORT_COLUMNS.join(",")).into_bytes()
        );
    }

    #[test]
    fn a_line_written_in_place_is_the_record_of_its_cells() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let values = [
            "",
            "plain",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "=1+2",
            "-x",
            "@me",
            "é — ü",
            "\r",
        ];
        let mut rng = StdRng::seed_from_u64(3);
        let text = |rng: &mut StdRng| {
            rng.random_bool(0.8)
                .then(|| values[rng.random_range(0..values.len())].to_string())
        };
        for _ in 0..2000 {
            let row = ReportRow {
                row: rng.random_range(0..100_000),
                outcome: Outcome::ALL[rng.random_range(0..Outcome::ALL.len())],
                test_run_id: text(&mut rng),
                test_run_human_id: text(&mut rng),
                title: text(&mut rng),
                human_id: text(&mut rng),
                http_status: rng.random_bool(0.5).then(|| rng.random_range(100..600)),
                attempts: rng.random_range(0..9),
                error: text(&mut rng),
                request_id: text(&mut rng),
            };
            let cell = |v: &Option<String>| v.as_deref().map(neutralise).unwrap_or_default().into_owned();
            let cells = [
                row.row.to_string(),
                row.outcome.as_str().to_string(),
                cell(&row.test_run_id),
                cell(&row.test_run_human_id),
                cell(&row.title),
                cell(&row.human_id),
                row.http_status.map(|s| s.to_string()).unwrap_or_default(),
                row.attempts.to_string(),
                cell(&row.error),
                cell(&row.request_id),
            ];
            let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
            let mut line = Vec::new();
            write_csv_line(&mut line, &row);
            assert_eq!(
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(&csv_record(&refs)),
                "{row:?}"
            );
        }
    }

    #[test]
    fn records_are_written_as_the_csv_crate_writes_them() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let values = ["", "plain", "a,b", "say \"hi\"", "two\nlines", "\r", "é — ü", "x;y\tz"];
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let cells: Vec<&str> = (0..rng.random_range(1..5))
                .map(|_| values[rng.random_range(0..values.len())])
                .collect();
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(&cells).unwrap();
            let want = writer.into_inner().unwrap();
            assert_eq!(csv_record(&cells), want, "{cells:?}");
        }
    }

    #[test]
    fn cells_are_quoted_when_they_hold_a_delimiter_quote_or_line_end_anywhere() {
        let needs_quotes = |cell: &[u8]| {
            let cell = std::str::from_utf8(cell).unwrap();
            csv_record(&[cell, "x"]).starts_with(b"\"")
        };
        for special in [",", "\"", "\r", "\n"] {
            for len in 0..20 {
                for at in 0..=len {
                    let mut cell = "a".repeat(len);
                    cell.insert_str(at, special);
                    assert!(needs_quotes(cell.as_bytes()), "{cell:?}");
                }
            }
        }
        for cell in ["", "plain text of some length", "tab\there", "é — ü", "+-=@;|"] {
            assert!(!needs_quotes(cell.as_bytes()), "{cell:?}");
        }
    }

    #[test]
    fn json_and_jsonl_shapes() {
        let rows = two_rows();
        let json: serde_json::Value = serde_json::from_slice(&serialize(&rows, ReportFormat::Json)).unwrap();
        let array = json.as_array().unwrap();
        assert_eq!(array.len(), 2);
        for object in array {
            let keys: Vec<&str> = object.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            let mut want = REPORT_COLUMNS.to_vec();
            want.sort_unstable();
            let mut keys = keys;
            keys.sort_unstable();
            assert_eq!(keys, want);
        }
        assert_eq!(array[0]["outcome"], "created");
        assert_eq!(array[0]["http_status"], 200);
        assert_eq!(array[0]["error"], serde_json::Value::Null);
        // Not neutralised: JSON is for programs.
        assert_eq!(array[1]["title"], "=HYPERLINK(\"http://x\",\"y\")");

        let jsonl = serialize(&rows, ReportFormat::JsonLines);
        let lines: Vec<serde_json::Value> = jsonl
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["row"], 3);
        assert_eq!(lines[1]["test_run_id"], serde_json::Value::Null);
        assert!(jsonl.ends_with(b"\n"));

        let empty: serde_json::Value = serde_json::from_slice(&serialize(&[], ReportFormat::Json)).unwrap();
        assert_eq!(empty, serde_json::json!([]));
    }

    #[test]
    fn finish_with_rows_puts_them_in_input_order() {
        for format in [ReportFormat::Csv, ReportFormat::Json, ReportFormat::JsonLines] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("r.out");
            let rows: Vec<ReportRow> = (2..6).map(|n| row(n, Outcome::Created, "t")).collect();
            let mut writer = ReportWriter::create(&path, format).unwrap();
            for r in [&rows[2], &rows[0], &rows[3]] {
                writer.append(r).unwrap();
            }
            // What a crash at this point would leave: the finished rows, in finish order
            // (for JSON, an array still waiting for its closing bracket).
            let finished = [rows[2].clone(), rows[0].clone(), rows[3].clone()];
            let mut crashed = serialize(&finished, format);
            if format == ReportFormat::Json {
                crashed.truncate(crashed.len() - b"\n]\n".len());
            }
            assert_eq!(fs::read(&path).unwrap(), crashed, "{format:?}");

            writer.finish(Some(&mut rows.iter().cloned().map(Ok))).unwrap();
            assert_eq!(fs::read(&path).unwrap(), serialize(&rows, format), "{format:?}");
            // No temporary file left behind.
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    /// The report as a symlink (kept with the other logs, say): the file it points to is
    /// replaced, and the link stays a link. A named pipe gets the rows as they finished,
    /// once, and stays a pipe; no failed-rows file is made beside it.
    #[cfg(unix)]
    #[test]
    fn finishing_replaces_what_a_link_points_to_and_writes_into_a_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("kept").join("r.csv");
        fs::create_dir(target.parent().unwrap()).unwrap();
        let link = dir.path().join("r.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let rows: Vec<ReportRow> = (2..4).map(|n| row(n, Outcome::Created, "t")).collect();
        let writer = ReportWriter::create(&link, ReportFormat::Csv).unwrap();
        writer.finish(Some(&mut rows.iter().cloned().map(Ok))).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&target).unwrap(), serialize(&rows, ReportFormat::Csv));

        let fifo = dir.path().join("pipe.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        let mut writer = ReportWriter::create(&fifo, ReportFormat::Csv).unwrap();
        for r in rows.iter().rev() {
            writer.append(r).unwrap();
        }
        writer.finish(Some(&mut rows.iter().cloned().map(Ok))).unwrap();
        let seen = reader.join().unwrap();
        let in_finish_order: Vec<ReportRow> = rows.iter().rev().cloned().collect();
        assert_eq!(seen, serialize(&in_finish_order, ReportFormat::Csv));
        assert!(!fs::metadata(&fifo).unwrap().is_file(), "still a pipe");
        assert!(failed_rows_path_beside(&fifo).is_none());
        assert!(failed_rows_path_beside(&link).is_some());
    }

    #[test]
    fn finish_none_completes_a_streamed_report() {
        for format in [ReportFormat::Csv, ReportFormat::Json, ReportFormat::JsonLines] {
            for count in [0, 1, 3] {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("r.out");
                let rows: Vec<ReportRow> = (0..count).map(|n| row(n + 2, Outcome::Planned, "t")).collect();
                let mut writer = ReportWriter::create(&path, format).unwrap();
                for r in &rows {
                    writer.append(r).unwrap();
                }
                writer.finish(None).unwrap();
                assert_eq!(fs::read(&path).unwrap(), serialize(&rows, format), "{format:?} {count}");
            }
        }
    }

    #[test]
    fn create_names_the_path_and_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("r.csv");
        let err = ReportWriter::create(&path, ReportFormat::Csv)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--report"), "{err}");
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn failed_rows_path_table() {
        for (report, want) in [
            ("plan.report.csv", "plan.failed.csv"),
            ("out/plan.report.json", "out/plan.failed.csv"),
            ("results.csv", "results.failed.csv"),
            ("results", "results.failed.csv"),
            (".report.csv", ".report.failed.csv"),
        ] {
            assert_eq!(failed_rows_path(Path::new(report)), PathBuf::from(want), "{report}");
        }
    }

    #[test]
    fn failed_rows_file_is_lazy_unchanged_and_removes_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.failed.csv");
        let headers = vec!["Title".to_string(), "Key".to_string()];

        // Nothing failed: no file.
        let writer = FailedRowsWriter::new(Some(path.clone()), headers.clone(), FailedRowsShape::default());
        assert_eq!(writer.finish().unwrap(), None);
        assert!(!path.exists());

        let mut writer = FailedRowsWriter::new(Some(path.clone()), headers.clone(), FailedRowsShape::default());
        assert!(!path.exists());
        let cells = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        writer
            .write(&cells(&["=SUM(1)", "K-1"]), "status: \"DONE\" is not ACTIVE or CLOSED")
            .unwrap();
        writer.write(&cells(&["short"]), "title, too long").unwrap();
        writer.write(&cells(&["a", "b", "extra"]), "e").unwrap();
        assert_eq!(writer.finish().unwrap(), Some(path.clone()));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "\u{feff}\"Title\",\"Key\",\"error\"\n\
             =SUM(1),K-1,\"status: \"\"DONE\"\" is not ACTIVE or CLOSED\"\n\
             short,,\"title, too long\"\n\
             a,b,e,extra\n"
        );

        // A later clean run removes the stale file.
        let writer = FailedRowsWriter::new(Some(path.clone()), headers.clone(), FailedRowsShape::default());
        assert_eq!(writer.finish().unwrap(), None);
        assert!(!path.exists());

        // The input's delimiter and header row are kept.
        let shape = FailedRowsShape {
            delimiter: b';',
            header_row: 3,
        };
        let mut writer = FailedRowsWriter::new(Some(path.clone()), headers, shape);
        writer.write(&cells(&["a;b", "K"]), "e").unwrap();
        writer.finish().unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "\u{feff}\n\n\"Title\";\"Key\";\"error\"\n\"a;b\";K;e\n"
        );
    }

    #[test]
    fn the_process_streams_and_devices_are_special_and_dev_shm_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("r.csv");
        fs::write(&plain, "x").unwrap();
        for (path, special) in [
            (Path::new("/dev/null"), true),
            (Path::new("/dev/stdout"), true),
            (Path::new("/dev/fd/1"), true),
            (Path::new("/proc/self/fd/2"), true),
            (Path::new("/dev/shm/testsigma-import-no-such-report.csv"), false),
            (plain.as_path(), false),
        ] {
            assert_eq!(is_special_file(path), special, "{}", path.display());
        }
    }

    #[test]
    fn error_column_avoids_existing_names() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (headers, want) in [
            (names(&["title"]), "error"),
            (names(&["title", "Error"]), "import_error"),
            (names(&["error", "import_error"]), "import_error_2"),
        ] {
            assert_eq!(error_column_name(&headers), want, "{headers:?}");
        }
    }

    #[test]
    fn summary_counts_every_outcome() {
        let rows = vec![
            row(2, Outcome::Created, "a"),
            row(3, Outcome::Created, "b"),
            row(4, Outcome::Unknown, "c"),
        ];
        let counts = count_outcomes(&rows);
        assert_eq!(counts.len(), Outcome::ALL.len());
        assert_eq!(counts["created"], 2);
        assert_eq!(counts["unknown"], 1);
        assert_eq!(counts["planned"], 0);

        let run = RunInfo::new(std::time::Instant::now(), Some("plan.xlsx".into()), None);
        let summary = RunSummary {
            run,
            counts,
            rows: 3,
            elapsed_seconds: 1.5,
            requests_sent: 4,
            effective_rate: 4.0 / 1.5,
            exit_code: crate::exit::Exit::Incomplete,
            report: Some("plan.report.csv".into()),
            failed_rows_file: None,
            state: None,
            dry_run: false,
            error: None,
        };
        let json: serde_json::Value = serde_json::from_slice(&summary.to_json()).unwrap();
        assert_eq!(json["counts"]["already_imported"], 0);
        assert_eq!(json["exit_code"], 1);
        assert_eq!(json["failed_rows_file"], serde_json::Value::Null);
        assert_eq!(json["dry_run"], false);
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["input"], "plan.xlsx");
        assert_eq!(json["base_url"], serde_json::Value::Null);
        for at in ["started_at", "finished_at"] {
            let text = json[at].as_str().unwrap_or_default();
            assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{at}: {text}");
        }
    }
}
