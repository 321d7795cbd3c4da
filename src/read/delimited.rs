//! Delimited text (CSV, TSV, Excel's semicolon CSV): encoding and delimiter sniffing,
//! streaming records through one reused buffer, and the row numbers a spreadsheet shows.

use std::io::{self, BufReader, Cursor, Read};

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

use super::records::{RecordTooLong, Records};
use super::{Input, Location, RowSource, SourceError, SourceOptions, shown_byte};
use crate::read::row::{Cell, SourceRow};

/// How much decoded text the delimiter sniffer may look at.
const SNIFF_BYTES: u64 = 64 * 1024;
/// How much raw text is checked for binary content.
const TEXT_CHECK_BYTES: u64 = 1024;
/// Sniffed delimiters, in the order that breaks ties.
const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
/// Slack on top of the per-record byte cap, for quotes, delimiters and read-ahead.
const RECORD_SLACK: u64 = 64 * 1024;
/// Bytes of decoded text made at a time.
const READ_BYTES: usize = 64 * 1024;

/// What was decided about the text once, so a rewind reads it the same way.
#[derive(Clone, Copy)]
struct Plan {
    /// `None` reads UTF-8 as is and checks each field, so a wrong guess is an error
    /// that names the row instead of silent replacement characters.
    decode: Option<&'static Encoding>,
    bom_len: u64,
    delimiter: u8,
}

pub(super) struct DelimitedSource {
    input: Input,
    name: String,
    plan: Plan,
    header_row: usize,
    max_cell_bytes: usize,
    max_columns: usize,
    headers: Vec<String>,
    records: Records,
    rows: RowCounter,
}

impl DelimitedSource {
    pub(super) fn open(input: &Input, opts: &SourceOptions, tsv: bool) -> Result<Self, SourceError> {
        let name = input.display_name();
        if let Some(delimiter) = opts.delimiter
            && (matches!(delimiter, b'"' | b'\r' | b'\n') || !delimiter.is_ascii())
        {
            return Err(SourceError::InvalidDelimiter {
                name,
                shown: shown_byte(delimiter),
            });
        }
        let head = read_prefix(&mut input.open()?, TEXT_CHECK_BYTES).map_err(|source| read_error(&name, 1, source))?;
        let (decode, bom_len) = choose_encoding(&head, opts.encoding.as_deref(), &name)?;
        if decode.is_none_or(|enc| enc != UTF_16LE && enc != UTF_16BE) {
            check_text(head.get(bom_len as usize..).unwrap_or_default(), &name)?;
        }

        let mut plan = Plan {
            decode,
            bom_len,
            delimiter: opts.delimiter.unwrap_or(b'\t'),
        };
        let mut stream = text_stream(input, plan, &name)?;
        if opts.delimiter.is_none() && !tsv {
            let prefix = read_prefix(&mut stream, SNIFF_BYTES).map_err(|source| read_error(&name, 1, source))?;
            plan.delimiter = sniff_delimiter(&prefix, opts.header_row);
            stream = Box::new(Cursor::new(prefix).chain(stream));
        }

        let records = Records::new(stream, plan.delimiter);
        let mut source = DelimitedSource {
            input: input.clone(),
            name,
            plan,
            header_row: opts.header_row,
            max_cell_bytes: opts.max_cell_bytes,
            max_columns: opts.max_columns,
            headers: Vec::new(),
            records,
            rows: RowCounter::default(),
        };
        source.read_headers()?;
        Ok(source)
    }

    /// Skips the records above the header row and reads the header.
    fn read_headers(&mut self) -> Result<(), SourceError> {
        self.set_record_cap(self.max_columns);
        let row = loop {
            match self.read_record()? {
                None if self.rows.last_row == 0 => {
                    // Nothing at all: the pipeline decides what an empty input means.
                    self.headers.clear();
                    return Ok(());
                }
                None => {
                    return Err(SourceError::HeaderRowMissing {
                        name: self.name.clone(),
                        row: self.header_row,
                        last: self.rows.last_row,
                    });
                }
                Some(row) if row < self.header_row => continue,
                Some(row) => break row,
            }
        };
        if row > self.header_row {
            // The header row was a blank line, which the CSV reader skips.
            return Err(SourceError::HeaderRowBlank {
                name: self.name.clone(),
                at: Location::row(self.header_row, false),
                first_row: Some(row),
            });
        }
        if self.records.len() > self.max_columns {
            return Err(SourceError::TooManyColumns {
                name: self.name.clone(),
                at: Location::row(row, false),
                columns: self.records.len(),
                limit: self.max_columns,
            });
        }
        self.refuse_nul(row)?;
        self.headers.clear();
        for (column, field) in self.records.iter().enumerate() {
            let text = field_text(field, self.max_cell_bytes, || Location::cell(row, column, &[], false))
                .map_err(|err| err.into_error(&self.name))?;
            self.headers.push(text.trim().to_owned());
        }
        self.set_record_cap(self.headers.len());
        Ok(())
    }

    /// Bounds the bytes one record may span, so an unclosed quote cannot pull the
    /// rest of the file into memory: every cell at its limit, quotes doubled.
    fn set_record_cap(&mut self, columns: usize) {
        let cap = (self.max_cell_bytes as u64)
            .saturating_mul(2)
            .saturating_mul(columns.max(1) as u64)
            .saturating_add(RECORD_SLACK);
        self.records.cap = cap;
    }

    /// Reads the next record into `self.records` and returns its spreadsheet row number.
    fn read_record(&mut self) -> Result<Option<usize>, SourceError> {
        match self.records.read() {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(err) => return Err(self.read_failed(err)),
        }
        let start = self.records.start;
        let ended_by_eof = self.records.ended_by_eof;
        let embedded = self.records.embedded();
        let row = self
            .rows
            .next(self.records.line(), embedded, self.records.ended_by_break());
        // A quote never closed takes every later line into its cell, up to the end of the
        // file, and the rows on those lines would be lost without a word.
        if ended_by_eof
            && embedded > 0
            && let Some(column) = self.unclosed_quote(start)
        {
            return Err(SourceError::UnclosedQuote {
                name: self.name.clone(),
                at: Location::cell(row, column, &self.headers, false),
                lines: embedded,
            });
        }
        Ok(Some(row))
    }

    /// Reads the next record into `row`: every cell, or only those at `only`. Either way
    /// every field is checked (size, UTF-8, past the last header), so both give the same
    /// errors for the same row. A value past the last header is not an error here: the
    /// row says so in `overflow`.
    fn fill_row(&mut self, row: &mut SourceRow, only: Option<&[usize]>) -> Result<bool, SourceError> {
        let Some(number) = self.read_record()? else {
            return Ok(false);
        };
        self.refuse_nul(number)?;
        row.number = number;
        row.overflow = None;
        let width = self.headers.len();
        // One UTF-8 check for the whole record is cheaper than one per field; a field
        // whose ends are character boundaries of valid text is valid text itself.
        // The row takes the record's text whole, in one copy, and its cells point into it.
        let whole = std::str::from_utf8(self.records.as_slice()).ok();
        row.clear_cells_to(width, whole.unwrap_or_default());
        for (column, range) in self.records.ranges().enumerate() {
            let field = &self.records.as_slice()[range.clone()];
            if column >= width {
                // A trailing delimiter is harmless; a value past the last header
                // means the columns have shifted, and every later value is suspect.
                if field.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                // The row is invalid, but its cells are kept: for the report and the
                // failed-rows file, and its human_id still counts.
                let error = SourceError::ExtraFields {
                    name: self.name.clone(),
                    at: Location::cell(number, column, &self.headers, false),
                    columns: width,
                    value: preview(field),
                    delimiter: self.plan.delimiter,
                };
                row.overflow = Some(error.to_string());
                break;
            }
            let spanned = whole.is_some() && range.len() <= self.max_cell_bytes && row.set_span(column, range);
            if !spanned {
                // Not valid text, or too large: said as an error naming the cell. Or valid
                // text in a record that is not, when the invalid field is past the last
                // header (the row's `overflow` says so): copied.
                let text = field_text(field, self.max_cell_bytes, || {
                    Location::cell(number, column, &self.headers, false)
                })
                .map_err(|err| err.into_error(&self.name))?;
                row.set(column, Cell::Text(text));
            }
            if only.is_some_and(|wanted| !wanted.contains(&column)) {
                row.set(column, Cell::Empty);
            }
        }
        Ok(true)
    }

    /// A NUL byte is no character of any text a spreadsheet exports: the same refusal as a
    /// NUL at the top of the file, naming the cell, wherever in the file it is, so it is
    /// never planned into a request.
    fn refuse_nul(&self, row: usize) -> Result<(), SourceError> {
        let Some(at) = memchr::memchr(0, self.records.as_slice()) else {
            return Ok(());
        };
        let column = self.records.ranges().position(|range| range.contains(&at)).unwrap_or(0);
        Err(SourceError::NulByte {
            name: self.name.clone(),
            at: Location::cell(row, column, &self.headers, false),
        })
    }

    fn read_failed(&self, err: io::Error) -> SourceError {
        let row = self.rows.last_row + 1;
        if err.get_ref().is_some_and(|inner| inner.is::<RecordTooLong>()) {
            self.diagnose_runaway(row)
        } else {
            read_error(&self.name, row, err)
        }
    }
}

impl DelimitedSource {
    /// Whether the record from byte `start` to the end of the input is still inside a
    /// quoted field at the end, and if so, the field the quote opened. Only for a last
    /// record with a newline inside it, so the input is read again only then.
    fn unclosed_quote(&self, start: u64) -> Option<usize> {
        match self.lex_again(start, u64::MAX)? {
            (lexer, true) => lexer.in_quotes.then_some(lexer.quote_field),
            (_, false) => None,
        }
    }

    /// Lexes the input again from byte `start`, to its end or until past `limit` more bytes,
    /// and says whether every read succeeded; `None` when it cannot be read again up to `start`.
    fn lex_again(&self, start: u64, limit: u64) -> Option<(FieldLexer, bool)> {
        let mut stream = text_stream(&self.input, self.plan, &self.name).ok()?;
        if io::copy(&mut (&mut stream).take(start), &mut io::sink()).ok()? != start {
            return None;
        }
        let mut lexer = FieldLexer::new(self.plan.delimiter);
        let mut buf = vec![0u8; 64 * 1024];
        let mut scanned = 0u64;
        while scanned <= limit {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    lexer.feed(&buf[..n]);
                    scanned += n as u64;
                }
                Err(_) => return Some((lexer, false)),
            }
        }
        Some((lexer, true))
    }

    /// A record ran past the byte cap: either one cell is simply too large, or a quote
    /// was never closed. Only on this error path, the record is read again from its start
    /// to tell which, so the message sends the user to the right fix.
    fn diagnose_runaway(&self, row: usize) -> SourceError {
        let cap = self.records.cap;
        let runaway = SourceError::RunawayRecord {
            name: self.name.clone(),
            at: Location::row(row, false),
            limit: cap,
        };
        let Some((lexer, _)) = self.lex_again(self.records.start, cap) else {
            return runaway;
        };
        if lexer.in_quotes || lexer.field_bytes <= self.max_cell_bytes as u64 {
            return runaway;
        }
        SourceError::CellTooLarge {
            name: self.name.clone(),
            at: Location::cell(row, lexer.field, &self.headers, false),
            bytes: usize::try_from(lexer.field_bytes).unwrap_or(usize::MAX),
            limit: self.max_cell_bytes,
        }
    }
}

/// Just enough CSV lexing to know, at the end of some bytes, whether we are inside a
/// quoted field, which field of the record, and how long it is so far.
struct FieldLexer {
    delimiter: u8,
    in_quotes: bool,
    after_quote: bool,
    field: usize,
    field_bytes: u64,
    /// The field the last quote opened in.
    quote_field: usize,
}

impl FieldLexer {
    fn new(delimiter: u8) -> FieldLexer {
        FieldLexer {
            delimiter,
            in_quotes: false,
            after_quote: false,
            field: 0,
            field_bytes: 0,
            quote_field: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_quotes {
                if b == b'"' {
                    self.in_quotes = false;
                    self.after_quote = true;
                } else {
                    self.field_bytes += 1;
                }
                continue;
            }
            match b {
                // `""` inside a quoted field is one quote.
                b'"' if self.after_quote => {
                    self.in_quotes = true;
                    self.after_quote = false;
                    self.field_bytes += 1;
                }
                b'"' if self.field_bytes == 0 => {
                    self.in_quotes = true;
                    self.quote_field = self.field;
                }
                b'\n' => {
                    self.field = 0;
                    self.field_bytes = 0;
                    self.after_quote = false;
                }
                b'\r' => {}
                d if d == self.delimiter => {
                    self.field += 1;
                    self.field_bytes = 0;
                    self.after_quote = false;
                }
                _ => {
                    self.field_bytes += 1;
                    self.after_quote = false;
                }
            }
        }
    }
}

impl RowSource for DelimitedSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn is_workbook(&self) -> bool {
        false
    }

    fn delimiter(&self) -> Option<u8> {
        Some(self.plan.delimiter)
    }

    fn sheet_name(&self) -> Option<&str> {
        None
    }

    fn next_row(&mut self, row: &mut SourceRow) -> Result<bool, SourceError> {
        self.fill_row(row, None)
    }

    fn next_row_columns(&mut self, row: &mut SourceRow, columns: &[usize]) -> Result<bool, SourceError> {
        self.fill_row(row, Some(columns))
    }

    fn rewind(&mut self) -> Result<(), SourceError> {
        let stream = text_stream(&self.input, self.plan, &self.name)?;
        self.records = Records::new(stream, self.plan.delimiter);
        self.rows = RowCounter::default();
        self.read_headers()
    }
}

/// The input from its first character, as UTF-8 bytes, byte-order mark removed.
fn text_stream(input: &Input, plan: Plan, name: &str) -> Result<Box<dyn Read + Send>, SourceError> {
    let mut raw = input.open()?;
    Ok(match plan.decode {
        // The decoder drops the encoding's own byte-order mark.
        Some(encoding) => decoder(raw, encoding),
        None => {
            io::copy(&mut (&mut raw).take(plan.bom_len), &mut io::sink())
                .map_err(|source| read_error(name, 1, source))?;
            raw
        }
    })
}

/// Text in `encoding` out as UTF-8, streaming. What the byte-order mark said is in
/// `encoding` already, so the decoder does not look for one (it drops one of that
/// encoding at the start); a byte that is no character of it becomes U+FFFD.
fn decoder(raw: Box<dyn Read + Send>, encoding: &'static Encoding) -> Box<dyn Read + Send> {
    let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .build(raw);
    // Read in whole buffers: encoding_rs_io 0.1.8 loses part of the U+FFFD for a character
    // cut off by the end of the input when it is read a few bytes at a time.
    Box::new(BufReader::with_capacity(READ_BYTES, decoder))
}

fn read_prefix(reader: &mut dyn Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::new();
    reader.take(limit).read_to_end(&mut prefix)?;
    Ok(prefix)
}

fn read_error(name: &str, row: usize, source: io::Error) -> SourceError {
    SourceError::Read {
        name: name.to_owned(),
        at: Location::row(row, false),
        source,
    }
}

/// A byte-order mark wins over `--encoding`, as in browsers: it cannot be wrong.
/// Returns the encoding to decode from (`None` for UTF-8) and the mark's length.
fn choose_encoding(
    head: &[u8],
    label: Option<&str>,
    name: &str,
) -> Result<(Option<&'static Encoding>, u64), SourceError> {
    let labelled = match label {
        None => None,
        Some(label) => Some(
            super::encoding_for_label(label).ok_or_else(|| SourceError::UnknownEncoding {
                name: name.to_owned(),
                label: label.to_owned(),
            })?,
        ),
    };
    let (encoding, bom_len) = match Encoding::for_bom(head) {
        Some((encoding, bom_len)) => (encoding, bom_len as u64),
        None => (labelled.unwrap_or(UTF_8), 0),
    };
    Ok(((encoding != UTF_8).then_some(encoding), bom_len))
}

fn check_text(head: &[u8], name: &str) -> Result<(), SourceError> {
    const MAGIC: [(&[u8], &str); 5] = [
        (
            b"PK\x03\x04",
            " (it is a zip archive, perhaps a workbook: give it its real extension, such as .xlsx or .ods)",
        ),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            " (it looks like an .xls workbook or a password-protected file: give it its real extension)",
        ),
        (b"\x89PNG", " (it is a PNG image)"),
        (b"%PDF", " (it is a PDF document)"),
        (b"\x1F\x8B", " (it is gzip-compressed: decompress it first)"),
    ];
    let hint = MAGIC
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, hint)| *hint)
        .or_else(|| {
            head.contains(&0).then_some(
                " (it contains NUL bytes); if it is UTF-16 text without a byte-order mark, pass --encoding utf-16le",
            )
        });
    match hint {
        Some(hint) => Err(SourceError::NotText {
            name: name.to_owned(),
            hint,
        }),
        None => Ok(()),
    }
}

/// The candidate that occurs most often outside quotes on the header line (or, when
/// that line is not in the prefix, the first non-empty line). Ties go to the earlier
/// candidate; a single column gets a comma.
fn sniff_delimiter(prefix: &[u8], header_row: usize) -> u8 {
    let mut line = 1;
    let mut counts = [0usize; CANDIDATES.len()];
    let mut first_non_empty: Option<[usize; CANDIDATES.len()]> = None;
    let mut line_empty = true;
    let mut in_quotes = false;
    let mut previous = 0u8;
    let mut header_counts = None;
    for &b in prefix {
        match b {
            b'"' => {
                in_quotes = !in_quotes;
                line_empty = false;
            }
            b'\n' if !in_quotes && previous == b'\r' => {}
            b'\n' | b'\r' if !in_quotes => {
                if line == header_row {
                    header_counts = Some(counts);
                    break;
                }
                if !line_empty && first_non_empty.is_none() {
                    first_non_empty = Some(counts);
                }
                line += 1;
                counts = [0; CANDIDATES.len()];
                line_empty = true;
            }
            _ => {
                line_empty = false;
                if !in_quotes && let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
                    counts[i] += 1;
                }
            }
        }
        previous = b;
    }
    if header_counts.is_none() && line == header_row {
        header_counts = Some(counts);
    }
    let counts = header_counts
        .filter(|c| c.iter().any(|&n| n > 0))
        .or(first_non_empty)
        .unwrap_or(counts);
    let mut best = 0;
    for i in 1..CANDIDATES.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    CANDIDATES[best]
}

/// Turns raw line counts into the row numbers a spreadsheet shows: blank lines are
/// rows there (the CSV reader skips them), newlines inside quoted fields are not.
#[derive(Default)]
struct RowCounter {
    last_row: usize,
    embedded_before: u64,
}

impl RowCounter {
    /// `line_after` is the reader's 1-based line after the record; `embedded` the line
    /// breaks inside its fields; `ended_by_break` whether its line break was read (end of
    /// file has none).
    fn next(&mut self, line_after: u64, embedded: u64, ended_by_break: bool) -> usize {
        let start_line = line_after
            .saturating_sub(embedded)
            .saturating_sub(u64::from(ended_by_break));
        let by_lines = usize::try_from(start_line.saturating_sub(self.embedded_before)).unwrap_or(usize::MAX);
        // Rows go up one by one even if the count were ever behind.
        let row = by_lines.max(self.last_row + 1);
        self.embedded_before += embedded;
        self.last_row = row;
        row
    }
}

/// Why a field could not become text, before the file name is attached.
enum FieldError {
    TooLarge { at: Location, bytes: usize, limit: usize },
    NotUtf8 { at: Location },
}

impl FieldError {
    fn into_error(self, name: &str) -> SourceError {
        let name = name.to_owned();
        match self {
            FieldError::TooLarge { at, bytes, limit } => SourceError::CellTooLarge { name, at, bytes, limit },
            FieldError::NotUtf8 { at } => SourceError::InvalidUtf8 { name, at },
        }
    }
}

fn field_text(field: &[u8], limit: usize, at: impl FnOnce() -> Location) -> Result<&str, FieldError> {
    if field.len() > limit {
        return Err(FieldError::TooLarge {
            at: at(),
            bytes: field.len(),
            limit,
        });
    }
    std::str::from_utf8(field).map_err(|_| FieldError::NotUtf8 { at: at() })
}

fn preview(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let mut chars = text.chars();
    let short: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() {
        format!("{short}…")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::super::open_source;
    use super::super::test_support::{bytes_input, fixture, read_all};
    use super::*;

    fn text(s: &str) -> Cell<'_> {
        Cell::Text(s)
    }

    fn opts() -> SourceOptions {
        SourceOptions::default()
    }

    fn open_err(input: &Input, opts: &SourceOptions) -> SourceError {
        match open_source(input, opts) {
            Ok(_) => panic!("expected an error"),
            Err(err) => err,
        }
    }

    /// Reads rows until the first error and returns it with the rows before it.
    fn first_error(input: &Input, opts: &SourceOptions) -> (Vec<SourceRow>, SourceError) {
        let mut source = open_source(input, opts).unwrap();
        let mut rows = Vec::new();
        loop {
            let mut row = SourceRow::default();
            match source.next_row(&mut row) {
                Ok(true) => rows.push(row),
                Ok(false) => panic!("expected an error after {rows:?}"),
                Err(err) => return (rows, err),
            }
        }
    }

    #[test]
    fn excel_semicolon_cp1252_reads_with_its_code_page() {
        let input = fixture("excel-semicolon-cp1252.csv");
        let opts = SourceOptions {
            encoding: Some("windows-1252".to_owned()),
            ..opts()
        };
        let (headers, rows) = read_all(&input, &opts);
        assert_eq!(
            headers,
            [
                "Titel / Title",
                "Description",
                "Status",
                "Start Date",
                "End Date",
                "Labels",
                "Test Case IDs"
            ]
        );
        assert_eq!(
            rows,
            [
                SourceRow::new(
                    2,
                    &[
                        text("Régression mensuelle"),
                        text("Périmètre: paiement; facturation"),
                        text("Active"),
                        text("05.02.2024"),
                        text("09.02.2024 17:00"),
                        text("Régression, Mensuel"),
                        text("9ac271b6-4e89-4c93-8c75-2d625efa0b2d"),
                    ]
                ),
                SourceRow::new(
                    3,
                    &[
                        text("Smoke — build 812"),
                        Cell::Empty,
                        Cell::Empty,
                        text("13.02.2024 08:00"),
                        text("13.02.2024 12:00"),
                        text("Smoke"),
                        text("9ac271b6-4e89-4c93-8c75-2d625efa0b2d;2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091"),
                    ]
                ),
            ]
        );
    }

    #[test]
    fn cp1252_without_encoding_names_the_row_and_the_flag() {
        let (rows, err) = first_error(&fixture("excel-semicolon-cp1252.csv"), &opts());
        assert!(rows.is_empty());
        assert_eq!(
            err.to_string(),
            format!(
                "{}: row 2, column 1 (`Titel / Title`): the text is not valid UTF-8; pass --encoding windows-1252 (or the code page the file was saved in)",
                fixture("excel-semicolon-cp1252.csv").display_name()
            )
        );
    }

    #[test]
    fn invalid_utf8_is_a_row_error_and_reading_goes_on() {
        let input = bytes_input("runs.csv", b"Title,Status\nok,ACTIVE\nbad \xFF,ACTIVE\nfine,CLOSED\n");
        let mut source = open_source(&input, &opts()).unwrap();
        let mut row = SourceRow::default();
        assert!(source.next_row(&mut row).unwrap());
        let err = source.next_row(&mut row).unwrap_err();
        assert_eq!(err.row(), Some(3));
        assert_eq!(
            err.to_string(),
            "runs.csv: row 3, column 1 (`Title`): the text is not valid UTF-8; pass --encoding windows-1252 (or the code page the file was saved in)"
        );
        assert!(source.next_row(&mut row).unwrap());
        assert_eq!(row.number, 4);
        assert_eq!(row.cells().collect::<Vec<_>>(), [text("fine"), text("CLOSED")]);
    }

    #[test]
    fn byte_order_marks_pick_the_encoding() {
        let utf16 = |s: &str, le: bool| -> Vec<u8> {
            s.encode_utf16()
                .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
                .collect()
        };
        let body = "Title,Labels\r\nRégression — 1,\"a|b\"\r\n";
        let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
            (
                "utf-8 bom",
                [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat(),
                None,
            ),
            (
                "utf-8 bom beats a label",
                [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat(),
                Some("windows-1252"),
            ),
            ("utf-16le bom", utf16(&format!("\u{FEFF}{body}"), true), None),
            ("utf-16be bom", utf16(&format!("\u{FEFF}{body}"), false), None),
            ("utf-16le label", utf16(body, true), Some("utf-16le")),
            ("utf-16be label", utf16(body, false), Some("UTF-16BE")),
            ("no bom", body.as_bytes().to_vec(), None),
            ("utf-8 label", body.as_bytes().to_vec(), Some("utf8")),
        ];
        for (what, data, label) in cases {
            let opts = SourceOptions {
                encoding: label.map(str::to_owned),
                ..opts()
            };
            let (headers, rows) = read_all(&bytes_input("runs.csv", &data), &opts);
            assert_eq!(headers, ["Title", "Labels"], "{what}");
            assert_eq!(
                rows,
                [SourceRow::new(2, &[text("Régression — 1"), text("a|b")])],
                "{what}"
            );
        }
    }

    #[test]
    fn utf16_without_bom_or_label_is_not_text() {
        let data: Vec<u8> = "Title\r\nA\r\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let err = open_err(&bytes_input("runs.csv", &data), &opts());
        assert_eq!(
            err.to_string(),
            "runs.csv does not look like text (it contains NUL bytes); if it is UTF-16 text without a byte-order mark, pass --encoding utf-16le"
        );
    }

    #[test]
    fn binary_files_are_refused() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
        for (data, want) in [
            (&png[..], "runs.csv does not look like text (it is a PNG image)"),
            (
                b"PK\x03\x04\x14\0\0\0".as_slice(),
                "runs.csv does not look like text (it is a zip archive, perhaps a workbook: give it its real extension, such as .xlsx or .ods)",
            ),
            (
                b"Title\0\0\0,x".as_slice(),
                "runs.csv does not look like text (it contains NUL bytes); if it is UTF-16 text without a byte-order mark, pass --encoding utf-16le",
            ),
        ] {
            assert_eq!(open_err(&bytes_input("runs.csv", data), &opts()).to_string(), want);
        }
    }

    #[test]
    fn unknown_encoding_names_the_flag() {
        let opts = SourceOptions {
            encoding: Some("klingon".to_owned()),
            ..opts()
        };
        assert_eq!(
            open_err(&bytes_input("runs.csv", b"Title\n"), &opts).to_string(),
            "runs.csv: --encoding klingon is not an encoding this tool can read; use a name such as utf-8, windows-1252, iso-8859-15, utf-16le or utf-16be"
        );
    }

    #[test]
    fn quoted_newlines_with_crlf_stay_in_one_row() {
        let data = b"Title,Description\r\n\"Run 1\",\"line one\r\nline two\"\r\nRun 2,\"x\ny\nz\"\r\nRun 3,last\r\n";
        let (headers, rows) = read_all(&bytes_input("runs.csv", data), &opts());
        assert_eq!(headers, ["Title", "Description"]);
        assert_eq!(
            rows,
            [
                SourceRow::new(2, &[text("Run 1"), text("line one\r\nline two")]),
                SourceRow::new(3, &[text("Run 2"), text("x\ny\nz")]),
                SourceRow::new(4, &[text("Run 3"), text("last")]),
            ]
        );
    }

    #[test]
    fn blank_lines_count_as_rows() {
        for (what, data) in [
            ("lf", "Title\n\nA\n\n\nB"),
            ("crlf", "Title\r\n\r\nA\r\n\r\n\r\nB\r\n"),
            ("cr", "Title\r\rA\r\r\rB\r"),
            ("cr quoted", "Title\r\r\"A\r\"\r\r\rB\r\r"),
            ("quoted", "Title\n\n\"A\n\"\n\n\nB\n\n"),
            ("leading", "\n\nTitle\nA\n\n\nB\n"),
        ] {
            let header_row = if what == "leading" { 3 } else { 1 };
            let opts = SourceOptions { header_row, ..opts() };
            let (_, rows) = read_all(&bytes_input("runs.csv", data.as_bytes()), &opts);
            let numbers: Vec<usize> = rows.iter().map(|r| r.number).collect();
            let want = if what == "leading" { [4, 7] } else { [3, 6] };
            assert_eq!(numbers, want, "{what}");
        }
    }

    #[test]
    fn lone_cr_line_ends_number_rows_like_lf_and_crlf() {
        for ending in ["\n", "\r\n", "\r"] {
            let data = ["Title,Status", "A,x", "", "B,y", "\"C", "c\",z", "D,w"].join(ending);
            let (headers, rows) = read_all(&bytes_input("runs.csv", data.as_bytes()), &opts());
            assert_eq!(headers, ["Title", "Status"], "{ending:?}");
            let numbers: Vec<usize> = rows.iter().map(|r| r.number).collect();
            assert_eq!(numbers, [2, 4, 5, 6], "{ending:?}");
            assert_eq!(rows[2].cell(0).unwrap(), text(&format!("C{ending}c")), "{ending:?}");
        }
    }

    #[test]
    fn a_nul_byte_past_the_first_kilobyte_is_an_error_naming_the_cell() {
        let mut data = b"Title,Status\n".to_vec();
        for i in 0..200 {
            data.extend_from_slice(format!("Run {i},ACTIVE\n").as_bytes());
        }
        data.extend_from_slice(b"Bad,ACT\0IVE\nLast,ACTIVE\n");
        let (rows, err) = first_error(&bytes_input("runs.csv", &data), &opts());
        assert_eq!(rows.len(), 200);
        assert_eq!(err.row(), Some(202));
        assert_eq!(
            err.to_string(),
            "runs.csv: row 202, column 2 (`Status`) holds a NUL byte, so the file does not look like text; if it is UTF-16 text without a byte-order mark, pass --encoding utf-16le, or remove the NUL bytes"
        );
        // In a header far down, and in text decoded from another encoding, alike.
        let mut far = vec![b'\n'; 2000];
        far.extend_from_slice(b"Ti\0tle\nA\n");
        let far_header = SourceOptions {
            header_row: 2001,
            ..opts()
        };
        assert_eq!(open_err(&bytes_input("runs.csv", &far), &far_header).row(), Some(2001));
        let latin = SourceOptions {
            encoding: Some("windows-1252".to_owned()),
            ..opts()
        };
        let (_, err) = first_error(&bytes_input("runs.csv", &data), &latin);
        assert_eq!(err.row(), Some(202));
    }

    #[test]
    fn the_field_lexer_tells_a_big_cell_from_an_open_quote() {
        for (text, in_quotes, field, bytes) in [
            ("a,b,cccc", false, 2, 4),
            ("a,\"b,\nc", true, 1, 4),
            ("a,\"b\"\"c\",dd", false, 2, 2),
            ("x\ny;zz", false, 0, 4),
        ] {
            let mut lexer = FieldLexer::new(b',');
            lexer.feed(text.as_bytes());
            assert_eq!(
                (lexer.in_quotes, lexer.field, lexer.field_bytes),
                (in_quotes, field, bytes),
                "{text:?}"
            );
        }
    }

    #[test]
    fn delimiters_are_sniffed_from_the_header_line() {
        for (data, header_row, want) in [
            ("Title,Status,Labels\nA,B,C\n", 1, b','),
            ("Title;Status;Labels\nA,1;B;C\n", 1, b';'),
            ("Title\tStatus\tLabels\nA\tB\tC\n", 1, b'\t'),
            ("Title|Status|Labels\nA|B|C\n", 1, b'|'),
            ("\"Title, long\";Status;\"a,b,c\"\nA;B;C\n", 1, b';'),
            ("Export, 2024, all\nTitle|Status\nA|B\n", 2, b'|'),
            ("Title\nA\n", 1, b','),
            ("Title,Status;Labels\nA,B;C\n", 1, b','),
        ] {
            assert_eq!(sniff_delimiter(data.as_bytes(), header_row), want, "{data:?}");
            let opts = SourceOptions { header_row, ..opts() };
            let (headers, _) = read_all(&bytes_input("runs.csv", data.as_bytes()), &opts);
            let expected: Vec<String> = data
                .lines()
                .nth(header_row - 1)
                .map(|line| csv_split(line, want))
                .unwrap_or_default();
            assert_eq!(headers, expected, "{data:?}");
        }
    }

    fn csv_split(line: &str, delimiter: u8) -> Vec<String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .from_reader(line.as_bytes());
        let record = reader.records().next().unwrap().unwrap();
        record.iter().map(|f| f.trim().to_owned()).collect()
    }

    #[test]
    fn tsv_files_are_tab_separated_and_the_flag_wins() {
        let data = b"Title, long\tStatus\nA, b\tACTIVE\n";
        let (headers, _) = read_all(&bytes_input("runs.tsv", data), &opts());
        assert_eq!(headers, ["Title, long", "Status"]);
        let opts = SourceOptions {
            delimiter: Some(b','),
            ..opts()
        };
        let (headers, _) = read_all(&bytes_input("runs.tsv", data), &opts);
        assert_eq!(headers, ["Title", "long\tStatus"]);
    }

    #[test]
    fn a_quote_cannot_be_the_delimiter() {
        let opts = SourceOptions {
            delimiter: Some(b'"'),
            ..opts()
        };
        assert_eq!(
            open_err(&bytes_input("runs.csv", b"Title\n"), &opts).to_string(),
            "runs.csv: --delimiter `\"` cannot separate fields; use `,` `;` `|` or tab (`\\t`)"
        );
    }

    #[test]
    fn fields_are_kept_as_written_and_short_rows_padded() {
        let data = b"  Title , Status,Labels,\nA,  spaced  \nB,,,\n,,,\nC,x,y,\n";
        let (headers, rows) = read_all(&bytes_input("runs.csv", data), &opts());
        assert_eq!(headers, ["Title", "Status", "Labels", ""]);
        assert_eq!(
            rows,
            [
                SourceRow::new(2, &[text("A"), text("  spaced  "), Cell::Empty, Cell::Empty]),
                SourceRow::new(3, &[text("B"), Cell::Empty, Cell::Empty, Cell::Empty]),
                SourceRow::new(4, &[Cell::Empty; 4]),
                SourceRow::new(5, &[text("C"), text("x"), text("y"), Cell::Empty]),
            ]
        );
        assert!(rows[2].is_blank());
    }

    /// `data` as `runs.csv`, opened, and its first row read.
    fn at_first_row(data: &[u8]) -> (Box<dyn RowSource>, SourceRow) {
        let mut source = open_source(&bytes_input("runs.csv", data), &opts()).unwrap();
        let mut row = SourceRow::default();
        assert!(source.next_row(&mut row).unwrap());
        (source, row)
    }

    #[test]
    fn extra_fields_mark_the_row_shifted_but_trailing_delimiters_do_not() {
        let (mut source, mut row) = at_first_row(b"Title;Description\nA;ok;;\nB;Perimeter: pay; invoice\nC;fine\n");
        assert_eq!(
            (row.cells().collect::<Vec<_>>(), row.overflow.clone()),
            (vec![text("A"), text("ok")], None)
        );
        // The row is read, cells and all, and says why it cannot be trusted.
        assert!(source.next_row(&mut row).unwrap());
        assert_eq!(row.cells().collect::<Vec<_>>(), [text("B"), text("Perimeter: pay")]);
        assert_eq!(
            row.overflow.as_deref(),
            Some(
                "runs.csv: row 3, column 3 holds ` invoice` past the last of the 2 headers, so the columns have probably shifted; quote values that contain the delimiter `;`, or pass the right --delimiter"
            )
        );
        // The next row, read into the same place, is not marked.
        assert!(source.next_row(&mut row).unwrap());
        assert_eq!(
            (row.number, row.cells().collect::<Vec<_>>(), row.overflow.clone()),
            (4, vec![text("C"), text("fine")], None)
        );
    }

    #[test]
    fn a_row_whose_bytes_past_the_last_header_are_not_text_keeps_its_cells() {
        // The record as a whole is not UTF-8, so its cells cannot point into it: they are
        // each checked and copied, and the row is marked shifted, not refused.
        let (mut source, mut row) = at_first_row(b"Title;Description\nA\xC3\xA9;ok;bad \xFF\nB;fine\n");
        assert_eq!(row.cells().collect::<Vec<_>>(), [text("A\u{e9}"), text("ok")]);
        assert!(
            row.overflow
                .as_deref()
                .is_some_and(|why| why.contains("row 2, column 3"))
        );
        assert!(source.next_row(&mut row).unwrap());
        assert_eq!(
            (row.number, row.cells().collect::<Vec<_>>(), row.overflow.clone()),
            (3, vec![text("B"), text("fine")], None)
        );
    }

    #[test]
    fn limits_name_the_flag() {
        let data = b"Title,Status,Labels,Cases\nA,B,C,D\n";
        let opts3 = SourceOptions {
            max_columns: 3,
            ..opts()
        };
        assert_eq!(
            open_err(&bytes_input("runs.csv", data), &opts3).to_string(),
            "runs.csv: row 1 has 4 columns, over the limit of 3; delete the unused columns or raise --max-columns"
        );

        let small = SourceOptions {
            max_cell_bytes: 5,
            ..opts()
        };
        let input = bytes_input("runs.csv", b"Title,State\nshort,123456\nok,fine\n");
        let mut source = open_source(&input, &small).unwrap();
        let mut row = SourceRow::default();
        let err = source.next_row(&mut row).unwrap_err();
        assert_eq!(
            err.to_string(),
            "runs.csv: row 2, column 2 (`State`) holds 6 bytes, over the limit of 5; shorten it or raise --max-cell-bytes"
        );
        assert!(source.next_row(&mut row).unwrap());
        assert_eq!(row.cells().collect::<Vec<_>>(), [text("ok"), text("fine")]);

        let err = open_err(&bytes_input("runs.csv", b"Title,Long header\n"), &small);
        assert_eq!(
            err.to_string(),
            "runs.csv: row 1, column 2 holds 11 bytes, over the limit of 5; shorten it or raise --max-cell-bytes"
        );
    }

    #[test]
    fn an_unclosed_quote_stops_at_the_record_cap() {
        let mut data = b"Title,Notes\nA,\"never closed\n".to_vec();
        for i in 0..20_000 {
            data.extend_from_slice(format!("row {i},text\n").as_bytes());
        }
        let opts = SourceOptions {
            max_cell_bytes: 1000,
            ..opts()
        };
        let (rows, err) = first_error(&bytes_input("runs.csv", &data), &opts);
        assert!(rows.is_empty());
        assert_eq!(
            err.to_string(),
            "runs.csv: the record starting at or after row 2 runs past 69536 bytes, so a quoted field is probably never closed; look for a stray `\"` there, or raise --max-cell-bytes"
        );
    }

    #[test]
    fn a_quote_left_open_to_the_end_of_the_file_is_an_error_not_lost_rows() {
        // Under the record cap: without the check, rows B to D would vanish into A's cell.
        let data = "Title,Labels,Status\nOK,x,ACTIVE\nA,\"smoke,ACTIVE\nB,x,ACTIVE\nC,y,CLOSED\nD,z,ACTIVE\n";
        for (name, data) in [
            ("runs.csv", data.to_owned()),
            ("no-newline.csv", data.trim_end().to_owned()),
            ("crlf.csv", data.replace('\n', "\r\n")),
        ] {
            let (rows, err) = first_error(&bytes_input(name, data.as_bytes()), &opts());
            assert_eq!(rows.len(), 1, "{name}: the row before it is read");
            assert_eq!(err.row(), Some(3));
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "{name}: row 3, column 2 (`Labels`): a quote opened there is never closed"
                )),
                "{message}"
            );
        }
        // Closed quotes around line breaks, in the last row too, are fine; so is a last
        // row whose quote is left open on its own line (nothing after it is taken).
        for data in [
            "Title,Notes\nA,\"two\nlines\"\nB,\"ends \"\"quoted\"\"\nhere\"\n",
            "Title,Notes\nA,\"two\nlines\"\nB,\"ends \"\"quoted\"\"\nhere\"",
            "Title,Notes\nA,x\nB,\"open",
        ] {
            let (_, rows) = read_all(&bytes_input("ok.csv", data.as_bytes()), &opts());
            assert_eq!(rows.len(), 2, "{data:?}");
        }
    }
    #[test]
    fn header_row_skips_the_rows_above() {
        let data = b"Export of 2024-03-01\nby someone\nTitle,Status\nA,ACTIVE\n";
        let opts = SourceOptions {
            header_row: 3,
            ..opts()
        };
        let (headers, rows) = read_all(&bytes_input("runs.csv", data), &opts);
        assert_eq!(headers, ["Title", "Status"]);
        assert_eq!(rows, [SourceRow::new(4, &[text("A"), text("ACTIVE")])]);
    }

    #[test]
    fn header_row_blank_or_past_the_end_is_explained() {
        let data = b"\n\nTitle\nA\n";
        assert_eq!(
            open_err(&bytes_input("runs.csv", data), &opts()).to_string(),
            "runs.csv: row 1 (--header-row) is empty; row 3 has values: pass --header-row 3 if it holds the column names"
        );
        let opts9 = SourceOptions {
            header_row: 9,
            ..opts()
        };
        assert_eq!(
            open_err(&bytes_input("runs.csv", data), &opts9).to_string(),
            "runs.csv: --header-row 9 is past the last row (4); pass the row that holds the column names"
        );
    }

    #[test]
    fn empty_inputs_have_no_headers() {
        for data in [&b""[..], b"\n\n", b"\xEF\xBB\xBF", b"\r\n"] {
            let (headers, rows) = read_all(&bytes_input("<stdin>", data), &opts());
            assert!(headers.is_empty(), "{data:?}");
            assert!(rows.is_empty(), "{data:?}");
        }
        let (headers, rows) = read_all(&bytes_input("<stdin>", b"Title,Status\r\n"), &opts());
        assert_eq!(headers, ["Title", "Status"]);
        assert!(rows.is_empty());
    }

    #[test]
    fn rewind_gives_the_same_rows_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        std::fs::write(
            &path,
            "Title;Start\r\n\r\n\"A\r\nmulti\";01.02.2024\r\nB;02.02.2024\r\n\r\nC;\r\n",
        )
        .unwrap();
        let input = Input::File(path);
        let mut source = open_source(&input, &opts()).unwrap();
        let drain = |source: &mut Box<dyn RowSource>| {
            let mut rows = Vec::new();
            let mut row = SourceRow::default();
            while source.next_row(&mut row).unwrap() {
                rows.push(row.clone());
            }
            rows
        };
        let first = drain(&mut source);
        assert_eq!(
            first,
            [
                SourceRow::new(3, &[text("A\r\nmulti"), text("01.02.2024")]),
                SourceRow::new(4, &[text("B"), text("02.02.2024")]),
                SourceRow::new(6, &[text("C"), Cell::Empty]),
            ]
        );
        source.rewind().unwrap();
        assert_eq!(drain(&mut source), first);
        assert_eq!(source.headers(), ["Title", "Start"]);
        assert!(!source.is_workbook());
        assert_eq!(source.sheet_name(), None);
    }

    #[test]
    fn decoding_streams_across_tiny_reads() {
        struct OneByte(Vec<u8>, usize);
        impl Read for OneByte {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.get(self.1) {
                    Some(&b) if !buf.is_empty() => {
                        buf[0] = b;
                        self.1 += 1;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let text = "Périmètre — ✓ 𝄞 end";
        let cases: [(&'static Encoding, Vec<u8>); 2] = [
            (UTF_16LE, text.encode_utf16().flat_map(u16::to_le_bytes).collect()),
            (
                encoding_rs::WINDOWS_1252,
                encoding_rs::WINDOWS_1252.encode("Périmètre — end").0.into_owned(),
            ),
        ];
        for (encoding, bytes) in cases {
            let mut reader = decoder(Box::new(OneByte(bytes, 0)), encoding);
            let mut out = String::new();
            reader.read_to_string(&mut out).unwrap();
            let want = if encoding == UTF_16LE {
                text
            } else {
                "Périmètre — end"
            };
            assert_eq!(out, want);
        }
    }

    #[test]
    fn a_character_cut_off_by_the_end_is_one_whole_replacement_character_in_any_reads() {
        // `A`, then half a UTF-16 code unit; read a byte at a time.
        let mut reader = decoder(Box::new(Cursor::new(vec![0x00, 0x41, 0x00])), UTF_16BE);
        let (mut out, mut byte) = (Vec::new(), [0u8; 1]);
        while reader.read(&mut byte).unwrap() == 1 {
            out.push(byte[0]);
        }
        assert_eq!(String::from_utf8(out).unwrap(), "A\u{FFFD}");
    }

    #[test]
    fn reading_some_columns_gives_the_same_numbers_and_errors() {
        let data = b"Title,Start,Notes\nA,01/02/2024,x\n\n\"B\nb\",13/02/2024,\nC,,y\nD,02/02/2024,z,extra\nE,03/02/2024,bad \xFF\nF,,\nG,04/02/2024,long enough\n";
        let small = SourceOptions {
            max_cell_bytes: 10,
            ..opts()
        };
        let input = bytes_input("runs.csv", data);
        let mut full = open_source(&input, &small).unwrap();
        let mut some = open_source(&input, &small).unwrap();
        let (mut all_cells, mut start_only) = (SourceRow::default(), SourceRow::default());
        let mut seen = Vec::new();
        loop {
            match (
                full.next_row(&mut all_cells),
                some.next_row_columns(&mut start_only, &[1]),
            ) {
                (Ok(false), Ok(false)) => break,
                (Ok(true), Ok(true)) => {
                    assert_eq!(start_only.number, all_cells.number);
                    assert_eq!(
                        start_only.cell(1).unwrap(),
                        all_cells.cell(1).unwrap(),
                        "row {}",
                        all_cells.number
                    );
                    assert_eq!(start_only.overflow, all_cells.overflow, "row {}", all_cells.number);
                    assert_eq!(
                        [start_only.cell(0).unwrap(), start_only.cell(2).unwrap()],
                        [Cell::Empty, Cell::Empty]
                    );
                    let shifted = if all_cells.overflow.is_some() { " shifted" } else { "" };
                    seen.push(format!("{}{shifted}", all_cells.number));
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a.to_string(), b.to_string());
                    seen.push(format!("error at {:?}", a.row()));
                }
                other => panic!("the two reads differ: {other:?}"),
            }
        }
        assert_eq!(
            seen,
            ["2", "4", "5", "6 shifted", "error at Some(7)", "8", "error at Some(9)"]
        );
    }

    #[test]
    fn cells_that_empty_and_fill_again_keep_their_text() {
        let data = b"Title,Notes\nA,one\nB,\nC,three\nD\nE,five\n";
        let (_, rows) = read_all(&bytes_input("runs.csv", data), &opts());
        let notes: Vec<Cell> = rows.iter().map(|r| r.cell(1).unwrap()).collect();
        assert_eq!(
            notes,
            [text("one"), Cell::Empty, text("three"), Cell::Empty, text("five")]
        );
    }

    /// Found by `cargo fuzz run delimited`: a UTF-16 byte-order mark, a second one as
    /// text, then half a character. The decoder's first chunk was only the second mark,
    /// which the CSV parser took for the whole input after a rewind.
    #[test]
    fn fuzz_second_byte_order_mark_reads_the_same_after_rewind() {
        let input = bytes_input("fuzz.csv", &[0xFE, 0xFF, 0xFE, 0xFF, 0xEB]);
        let mut source = open_source(&input, &opts()).unwrap();
        let mut row = SourceRow::default();
        for pass in ["first", "after rewind"] {
            assert_eq!(source.headers(), ["\u{FFFD}"], "{pass}");
            assert!(!source.next_row(&mut row).unwrap(), "{pass}");
            source.rewind().unwrap();
        }
    }

    #[test]
    fn stdin_bytes_are_delimited_text() {
        let input = bytes_input("<stdin>", b"title,start\nA,2024-03-17\n");
        let (headers, rows) = read_all(&input, &opts());
        assert_eq!(headers, ["title", "start"]);
        // Dates stay text for the dates stage; only workbooks give `Cell::DateTime`.
        assert_eq!(rows[0].cells().collect::<Vec<_>>(), [text("A"), text("2024-03-17")]);
    }
}
