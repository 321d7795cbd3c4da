//! Workbooks (xlsx, xlsm, xlsb, xls, ods) through calamine: which sheet, the header
//! row, cell values converted with the workbook's own date epoch, and cell references
//! that match the real sheet.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};

use calamine::{Data, DataRef, Ods, Range, Reader, SheetType, SheetVisible, Sheets, Xls, Xlsb, Xlsx};
use chrono::{NaiveDate, NaiveDateTime};

use super::{Input, Location, RowSource, SourceError, SourceOptions};
use crate::read::row::{Cell, SourceRow, cell_ref};

/// The signature of an OLE compound file: a legacy .xls, or an encrypted OOXML package.
const OLE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Xlsx,
    Xlsb,
    Xls,
    Ods,
}

pub(super) struct WorkbookSource {
    name: String,
    sheet: String,
    headers: Vec<String>,
    range: Range<Data>,
    /// 0-based sheet row and column of the range's top-left cell; calamine's range
    /// starts at the first used cell, not at A1.
    origin: (usize, usize),
    /// 0-based sheet row of the header.
    header: usize,
    /// 0-based sheet row to read next, and the last one (inclusive).
    next: usize,
    last: usize,
    max_cell_bytes: usize,
    /// Whether text that is exactly a spreadsheet error code is an error cell (ODS).
    error_text: bool,
    /// What the run says once: the sheet and header row found, merged cells spread.
    notes: Vec<String>,
}

impl WorkbookSource {
    pub(super) fn open(input: &Input, opts: &SourceOptions, kind: Kind) -> Result<Self, SourceError> {
        let name = input.display_name();
        let (sheet, range, table) = match input {
            Input::File(path) => {
                let file = File::open(path).map_err(|source| SourceError::Open {
                    name: name.clone(),
                    source,
                })?;
                load(BufReader::new(file), kind, opts, &name)?
            }
            Input::Bytes { data, .. } => load(Cursor::new(data.as_slice()), kind, opts, &name)?,
        };
        let opts = &SourceOptions {
            header_row: table.header_row.unwrap_or(opts.header_row),
            ..opts.clone()
        };
        let mut source = from_range(name, sheet, range, opts)?;
        source.error_text = matches!(kind, Kind::Ods);
        source.notes = table.notes;
        Ok(source)
    }

    /// The next sheet row into `row`: every cell, or only those at `only`; every cell's
    /// size is checked either way, so both give the same errors.
    fn fill_row(&mut self, row: &mut SourceRow, only: Option<&[usize]>) -> Result<bool, SourceError> {
        if self.next > self.last {
            return Ok(false);
        }
        let sheet_row = self.next;
        self.next += 1;
        row.number = sheet_row + 1;
        let width = self.headers.len();
        row.clear_cells(width);
        for column in 0..width {
            let (top, left) = self.origin;
            let data = if sheet_row < top || column < left {
                None
            } else {
                self.range.get((sheet_row - top, column - left))
            };
            if let Some(Data::String(s)) = data
                && s.len() > self.max_cell_bytes
            {
                return Err(SourceError::CellTooLarge {
                    name: self.name.clone(),
                    at: Location::cell(row.number, column, &self.headers, true),
                    bytes: s.len(),
                    limit: self.max_cell_bytes,
                });
            }
            if only.is_none_or(|wanted| wanted.contains(&column)) {
                fill_cell(row, column, data, self.error_text);
            }
        }
        Ok(true)
    }

    fn data(&self, row: usize, column: usize) -> Option<&Data> {
        let (top, left) = self.origin;
        if row < top || column < left {
            return None;
        }
        self.range.get((row - top, column - left))
    }
}

impl RowSource for WorkbookSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn is_workbook(&self) -> bool {
        true
    }

    fn sheet_name(&self) -> Option<&str> {
        Some(&self.sheet)
    }

    fn next_row(&mut self, row: &mut SourceRow) -> Result<bool, SourceError> {
        self.fill_row(row, None)
    }

    fn next_row_columns(&mut self, row: &mut SourceRow, columns: &[usize]) -> Result<bool, SourceError> {
        self.fill_row(row, Some(columns))
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn rewind(&mut self) -> Result<(), SourceError> {
        self.next = self.header + 1;
        Ok(())
    }
}

/// Opens the workbook, picks the sheet and loads its cached values (for formula cells,
/// the result the spreadsheet last computed).
fn load<RS: Read + Seek>(
    mut rs: RS,
    kind: Kind,
    opts: &SourceOptions,
    name: &str,
) -> Result<(String, Range<Data>, Table), SourceError> {
    let mut magic = [0u8; 8];
    let ole = rs.read_exact(&mut magic).is_ok() && magic == OLE_MAGIC;
    rs.seek(SeekFrom::Start(0)).map_err(|source| SourceError::Open {
        name: name.to_owned(),
        source,
    })?;
    let failed = |err: calamine::Error| workbook_error(err, kind, ole, name);
    // calamine parses untrusted bytes; a panic on a hostile file must become an
    // error naming the file, not a crash.
    let loaded = catch_unwind(AssertUnwindSafe(|| {
        let mut book = match kind {
            Kind::Xlsx => Sheets::Xlsx(Xlsx::new(rs).map_err(|e| failed(e.into()))?),
            Kind::Xlsb => Sheets::Xlsb(Xlsb::new(rs).map_err(|e| failed(e.into()))?),
            Kind::Xls => Sheets::Xls(Xls::new(rs).map_err(|e| failed(e.into()))?),
            Kind::Ods => Sheets::Ods(Ods::new(rs).map_err(|e| failed(e.into()))?),
        };
        let mut table = Table::default();
        let sheet = match opts.find_table && opts.sheet.is_none() {
            true => find_table(&mut book, &mut table, &opts.title_headers, name)?,
            false => None,
        };
        let sheet = match sheet {
            Some(sheet) => sheet,
            None => pick_sheet(book.sheets_metadata(), opts.sheet.as_deref(), name)?,
        };
        // The sheet is named: only its header row is looked for (row 1 when none is found,
        // so the mapping's error lists what row 1 holds).
        if opts.find_table && opts.sheet.is_some() {
            table.header_row = title_header_row(&top_texts(&mut book, &sheet), &opts.title_headers);
            if let Some(row) = table.header_row.filter(|row| *row > 1) {
                table.notes.push(format!(
                    "reading sheet `{sheet}` from row {row} (the first with a title header)"
                ));
            }
        }
        let merged = match &mut book {
            Sheets::Xlsx(xlsx) => xlsx.merge_cells_by_sheet_name(&sheet).unwrap_or_default(),
            _ => Vec::new(),
        };
        let cells = match &mut book {
            Sheets::Xlsx(xlsx) => match xlsx.worksheet_cells_reader(&sheet) {
                Ok(mut cells) => Some(bounded_cells(|| cells.next_cell(), &failed, opts, name, &sheet)?),
                // A chart sheet, as calamine's own `worksheet_range` treats it.
                Err(calamine::XlsxError::NotAWorksheet(_)) => Some(Vec::new()),
                Err(e) => return Err(failed(e.into())),
            },
            Sheets::Xlsb(xlsb) => {
                let mut cells = xlsb.worksheet_cells_reader(&sheet).map_err(|e| failed(e.into()))?;
                Some(bounded_cells(|| cells.next_cell(), &failed, opts, name, &sheet)?)
            }
            _ => None,
        };
        let range = match cells {
            // The cells own their values: the workbook (its shared strings, its zip
            // buffers) goes before the sheet's dense range is built, and the list of
            // cells gives back its spare room, so the three are never held at once.
            Some(mut cells) => {
                drop(book);
                cells.shrink_to_fit();
                Range::from_sparse(cells)
            }
            None => book.worksheet_range(&sheet).map_err(failed)?,
        };
        let header = table.header_row.unwrap_or(opts.header_row);
        let range = spread_merged(range, &merged, header, &mut table);
        Ok((sheet, range, table))
    }));
    loaded.unwrap_or_else(|_| {
        Err(SourceError::Workbook {
            name: name.to_owned(),
            detail: "the workbook reader failed on its contents".to_owned(),
        })
    })
}

/// How the table was found in the workbook: the header row (1-based) when it was looked
/// for and found, and what the run says about it.
#[derive(Default)]
struct Table {
    header_row: Option<usize>,
    notes: Vec<String>,
}

/// Rows looked at for a title header, from the top of each sheet.
const HEADER_SEARCH_ROWS: usize = 20;

/// The first visible worksheet with a title header (an alias, or one of `titles`) in one
/// of its first 20 rows, and that row. When none has one but some has text there: an error
/// listing the sheets and the rows looked at. `None` when no sheet has any text: the first
/// visible sheet is read as without the search (an empty sheet is a quiet night).
fn find_table<RS: Read + Seek>(
    book: &mut Sheets<RS>,
    table: &mut Table,
    titles: &[String],
    name: &str,
) -> Result<Option<String>, SourceError> {
    let visible: Vec<String> = book
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet && s.visible == SheetVisible::Visible)
        .map(|s| s.name.clone())
        .collect();
    let mut looked = Vec::new();
    let mut any_text = false;
    for (index, sheet) in visible.iter().enumerate() {
        let texts = top_texts(book, sheet);
        any_text |= !texts.is_empty();
        match title_header_row(&texts, titles) {
            Some(row) => {
                // Only a move away from sheet one, row 1 is news.
                if index > 0 || row > 1 {
                    table.notes.push(format!(
                        "reading sheet `{sheet}`, headers on row {row} (the first with a title header)"
                    ));
                }
                table.header_row = Some(row);
                return Ok(Some(sheet.clone()));
            }
            None => looked.push(rows_looked_at(sheet, &texts)),
        }
    }
    if !any_text {
        return Ok(None);
    }
    Err(SourceError::NoTitleHeader {
        name: name.to_owned(),
        looked: looked.join("; "),
    })
}

/// `` sheet `Cover`: row 1 `Exported from LegacyTM 7.2`, row 3 `Owner: QA` ``: each row's
/// first text, for up to five rows.
fn rows_looked_at(sheet: &str, texts: &[(usize, String)]) -> String {
    let mut rows: Vec<(usize, &str)> = Vec::new();
    for (row, text) in texts {
        if !rows.iter().any(|(r, _)| r == row) {
            rows.push((*row, text.as_str()));
        }
    }
    rows.sort_unstable();
    if rows.is_empty() {
        return format!("sheet `{sheet}` (no text)");
    }
    let shown: Vec<String> = rows
        .iter()
        .take(5)
        .map(|(row, text)| {
            let text: String = text.chars().take(40).collect();
            format!("row {} `{text}`", row + 1)
        })
        .collect();
    let more = if rows.len() > 5 {
        format!(", {} more rows", rows.len() - 5)
    } else {
        String::new()
    };
    format!("sheet `{sheet}`: {}{more}", shown.join(", "))
}

/// The text cells of a sheet's first 20 rows, as (0-based row, text). An xlsx or xlsb
/// sheet is read only that far, so a huge sheet costs nothing here (and its size is
/// checked, as always, when it is read).
fn top_texts<RS: Read + Seek>(book: &mut Sheets<RS>, sheet: &str) -> Vec<(usize, String)> {
    let mut texts = Vec::new();
    let mut take = |row: u32, text: Option<&str>| {
        if let Some(text) = text {
            texts.push((row as usize, text.to_owned()));
        }
        (row as usize) < HEADER_SEARCH_ROWS
    };
    let text_of = |d: &DataRef<'_>| match d {
        DataRef::String(s) => Some(s.clone()),
        DataRef::SharedString(s) => Some((*s).to_owned()),
        _ => None,
    };
    match book {
        Sheets::Xlsx(xlsx) => {
            if let Ok(mut cells) = xlsx.worksheet_cells_reader(sheet) {
                while let Ok(Some(cell)) = cells.next_cell() {
                    if !take(cell.get_position().0, text_of(cell.get_value()).as_deref()) {
                        break;
                    }
                }
            }
        }
        Sheets::Xlsb(xlsb) => {
            if let Ok(mut cells) = xlsb.worksheet_cells_reader(sheet) {
                while let Ok(Some(cell)) = cells.next_cell() {
                    if !take(cell.get_position().0, text_of(cell.get_value()).as_deref()) {
                        break;
                    }
                }
            }
        }
        _ => {
            if let Ok(range) = book.worksheet_range(sheet) {
                for cell in range.used_cells() {
                    let (row, _, data) = cell;
                    let row = row + range.start().map_or(0, |s| s.0 as usize);
                    if let Data::String(s) = data
                        && row < HEADER_SEARCH_ROWS
                    {
                        texts.push((row, s.clone()));
                    }
                }
            }
        }
    }
    texts
}

/// The 1-based sheet row, of the first 20, with a cell that is a title header: an alias of
/// the title, or one of `mapped`.
fn title_header_row(texts: &[(usize, String)], mapped: &[String]) -> Option<usize> {
    let titles: Vec<String> = crate::read::mapping::Field::Title
        .aliases()
        .iter()
        .copied()
        .chain(mapped.iter().map(String::as_str))
        .map(crate::read::mapping::normalise_header)
        .collect();
    texts
        .iter()
        .filter(|(row, text)| {
            *row < HEADER_SEARCH_ROWS && titles.contains(&crate::read::mapping::normalise_header(text))
        })
        .map(|(row, _)| row + 1)
        .min()
}

/// Gives each merged region's value to every cell it spans, below the header row (an
/// xlsx file's merges; calamine reads them for no other format). Says so once.
fn spread_merged(
    mut range: Range<Data>,
    merged: &[calamine::Dimensions],
    header_row: usize,
    table: &mut Table,
) -> Range<Data> {
    let (Some(start), Some(end)) = (range.start(), range.end()) else {
        return range;
    };
    let mut spread = 0usize;
    for region in merged {
        let (top, left) = region.start;
        // Only data rows: a merged title above the headers, or a merged header, is no value.
        if (top as usize) < header_row || top < start.0 || left < start.1 {
            continue;
        }
        let value = match range.get_value((top, left)) {
            Some(value) if !is_blank(value) => value.clone(),
            _ => continue,
        };
        let (bottom, right) = (region.end.0.min(end.0), region.end.1.min(end.1));
        for row in top..=bottom {
            for column in left..=right {
                if (row, column) != (top, left) {
                    range.set_value((row, column), value.clone());
                    spread += 1;
                }
            }
        }
    }
    if spread > 0 {
        table.notes.push(format!(
            "merged cells: each merged value is given to every row it spans ({spread} cells filled)"
        ));
    }
    range
}

/// The most cells a sheet's used area may span: calamine holds it as one dense array of
/// 32-byte values, so this is 2 GiB, a full-height sheet 64 columns wide.
const MAX_AREA_CELLS: u64 = 64 * 1_048_576;

/// A sheet's values as a range, like calamine's `worksheet_range`, but refusing a used area
/// too large to hold before it is allocated: calamine sizes the range from the cells'
/// bounding box, so one stray value at XFD1048576 would ask for 17 billion cells and the
/// allocation failure would abort the process (found while fuzzing).
fn bounded_cells<'a, E: Into<calamine::Error>>(
    mut next: impl FnMut() -> Result<Option<calamine::Cell<DataRef<'a>>>, E>,
    failed: &dyn Fn(calamine::Error) -> SourceError,
    opts: &SourceOptions,
    name: &str,
    sheet: &str,
) -> Result<Vec<calamine::Cell<Data>>, SourceError> {
    let mut cells = Vec::new();
    let (mut top, mut left, mut bottom, mut right) = (u32::MAX, u32::MAX, 0, 0);
    while let Some(cell) = next().map_err(|e| failed(e.into()))? {
        if matches!(cell.get_value(), DataRef::Empty) {
            continue;
        }
        let (row, column) = cell.get_position();
        (top, left) = (top.min(row), left.min(column));
        (bottom, right) = (bottom.max(row), right.max(column));
        cells.push(calamine::Cell::new((row, column), Data::from(cell.get_value().clone())));
    }
    if cells.is_empty() {
        return Ok(cells);
    }
    // The refusal `from_range` would give, before the range exists.
    let width = right as usize + 1;
    if width > opts.max_columns {
        return Err(SourceError::TooManyColumns {
            name: name.to_owned(),
            at: Location::row(opts.header_row, true),
            columns: width,
            limit: opts.max_columns,
        });
    }
    let span = |from: u32, to: u32| u64::from(to) - u64::from(from) + 1;
    if span(top, bottom) * span(left, right) > MAX_AREA_CELLS {
        return Err(SourceError::AreaTooLarge {
            name: name.to_owned(),
            sheet: sheet.to_owned(),
            first: cell_ref(left as usize, top as usize + 1),
            last: cell_ref(right as usize, bottom as usize + 1),
            cells: span(top, bottom) * span(left, right),
            limit: MAX_AREA_CELLS,
        });
    }
    Ok(cells)
}

fn workbook_error(err: calamine::Error, kind: Kind, ole: bool, name: &str) -> SourceError {
    let name = name.to_owned();
    match err {
        calamine::Error::Xlsx(calamine::XlsxError::Password)
        | calamine::Error::Xlsb(calamine::XlsbError::Password)
        | calamine::Error::Xls(calamine::XlsError::Password)
        | calamine::Error::Ods(calamine::OdsError::Password) => SourceError::Encrypted { name },
        calamine::Error::Ods(calamine::OdsError::CellLimitExceeded { requested, max }) => SourceError::TooManyCells {
            name,
            cells: requested,
            limit: max,
        },
        _ if ole && kind != Kind::Xls => SourceError::Workbook {
            name,
            detail: "it is an OLE file, as .xls and password-protected workbooks are, not a zip package".to_owned(),
        },
        err => SourceError::Workbook {
            name,
            detail: err.to_string(),
        },
    }
}

/// `--sheet` matches exactly, else case-insensitively when that is unambiguous.
/// Without it: the first visible worksheet, as Excel would open it.
fn pick_sheet(sheets: &[calamine::Sheet], wanted: Option<&str>, name: &str) -> Result<String, SourceError> {
    if let Some(wanted) = wanted {
        if let Some(sheet) = sheets.iter().find(|s| s.name == wanted) {
            return Ok(sheet.name.clone());
        }
        let folded = wanted.trim().to_lowercase();
        let mut matches = sheets.iter().filter(|s| s.name.trim().to_lowercase() == folded);
        if let (Some(sheet), None) = (matches.next(), matches.next()) {
            return Ok(sheet.name.clone());
        }
        let available = sheets
            .iter()
            .map(|s| format!("`{}`", s.name))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(SourceError::SheetNotFound {
            name: name.to_owned(),
            wanted: wanted.to_owned(),
            available: if available.is_empty() {
                "none".to_owned()
            } else {
                available
            },
        });
    }
    let worksheet = |s: &&calamine::Sheet| s.typ == SheetType::WorkSheet;
    sheets
        .iter()
        .filter(worksheet)
        .find(|s| s.visible == SheetVisible::Visible)
        .or_else(|| sheets.iter().find(worksheet))
        .or_else(|| sheets.first())
        .map(|s| s.name.clone())
        .ok_or_else(|| SourceError::NoSheets { name: name.to_owned() })
}

fn from_range(
    name: String,
    sheet: String,
    range: Range<Data>,
    opts: &SourceOptions,
) -> Result<WorkbookSource, SourceError> {
    let header = opts.header_row - 1;
    let mut source = WorkbookSource {
        name,
        sheet,
        headers: Vec::new(),
        range,
        origin: (0, 0),
        header,
        next: 1,
        last: 0,
        max_cell_bytes: opts.max_cell_bytes,
        error_text: false,
        notes: Vec::new(),
    };
    let (Some((top, left)), Some((bottom, right))) = (source.range.start(), source.range.end()) else {
        // An empty sheet: the pipeline decides what that means.
        return Ok(source);
    };
    let (top, left, bottom) = (top as usize, left as usize, bottom as usize);
    source.origin = (top, left);
    if header > bottom {
        return Err(SourceError::HeaderRowMissing {
            name: source.name,
            row: opts.header_row,
            last: bottom + 1,
        });
    }
    // Columns count from A, so a header's index is its sheet column and the pipeline's
    // cell references are right even when the table starts further right.
    let width = right as usize + 1;
    if width > opts.max_columns {
        return Err(SourceError::TooManyColumns {
            name: source.name,
            at: Location::row(opts.header_row, true),
            columns: width,
            limit: opts.max_columns,
        });
    }
    let headers = source.header_texts(width, opts)?;
    if headers.iter().all(String::is_empty) {
        return Err(source.blank_header_row(top, opts));
    }
    source.headers = headers;
    source.next = header + 1;
    source.last = bottom;
    Ok(source)
}

impl WorkbookSource {
    /// The header row's cells as trimmed text, `width` of them.
    fn header_texts(&self, width: usize, opts: &SourceOptions) -> Result<Vec<String>, SourceError> {
        let mut cells = SourceRow::default();
        cells.clear_cells(width);
        for column in 0..width {
            let data = self.data(self.header, column);
            if let Some(Data::String(s)) = data
                && s.len() > opts.max_cell_bytes
            {
                return Err(SourceError::CellTooLarge {
                    name: self.name.clone(),
                    at: Location::cell(opts.header_row, column, &[], true),
                    bytes: s.len(),
                    limit: opts.max_cell_bytes,
                });
            }
            fill_cell(&mut cells, column, data, false);
        }
        Ok(cells.cells().map(|cell| cell.as_text().trim().to_owned()).collect())
    }

    /// The header row is blank: the message names the nearest row with values, after it
    /// if there is one. `top` is the sheet row of the range's first row.
    fn blank_header_row(self, top: usize, opts: &SourceOptions) -> SourceError {
        let filled: Vec<usize> = self
            .range
            .rows()
            .enumerate()
            .filter(|(_, r)| r.iter().any(|d| !is_blank(d)))
            .map(|(i, _)| top + i)
            .collect();
        let first_row = filled
            .iter()
            .find(|&&r| r > self.header)
            .or_else(|| filled.last())
            .map(|r| r + 1);
        SourceError::HeaderRowBlank {
            name: self.name,
            at: Location::row(opts.header_row, true),
            first_row,
        }
    }
}

fn is_blank(data: &Data) -> bool {
    match data {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Converts one calamine value, reusing the target's string where it can.
/// `error_text`: a text cell that is exactly an error code is an error cell. LibreOffice
/// writes an ODS error cell as empty text marked `calcext:value-type="error"` with the code
/// as its content, and calamine 0.38 reads the marker but gives back only the content.
fn fill_cell(row: &mut SourceRow, column: usize, data: Option<&Data>, error_text: bool) {
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

/// The codes LibreOffice shows for a formula's error: the seven Excel shares, and its own
/// `Err:` and three digits (`Err:502`, an invalid argument).
fn is_error_code(text: &str) -> bool {
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
    #[test]
    fn the_header_row_is_the_first_of_twenty_with_a_title_header() {
        let texts = |cells: &[(usize, &str)]| cells.iter().map(|(r, t)| (*r, t.to_string())).collect::<Vec<_>>();
        for (cells, want) in [
            (
                texts(&[(0, "Exported from LegacyTM"), (2, "Run Name"), (2, "Labels")]),
                Some(3),
            ),
            (texts(&[(0, "title"), (5, "Title")]), Some(1)),
            (texts(&[(0, "Owner: QA"), (3, "Notes")]), None),
            (texts(&[(20, "Title")]), None),
        ] {
            assert_eq!(title_header_row(&cells, &[]), want, "{cells:?}");
        }
    }

    #[test]
    fn merged_values_below_the_header_fill_their_regions_once() {
        let mut range: Range<Data> = Range::new((0, 0), (5, 2));
        range.set_value((0, 0), Data::String("Title over all".into()));
        range.set_value((3, 1), Data::String("smoke".into()));
        let merged = [
            calamine::Dimensions {
                start: (0, 0),
                end: (0, 2),
            },
            calamine::Dimensions {
                start: (3, 1),
                end: (5, 1),
            },
        ];
        let mut table = Table::default();
        let range = spread_merged(range, &merged, 3, &mut table);
        let at = |r, c| range.get_value((r, c)).cloned();
        assert_eq!(at(0, 1), Some(Data::Empty), "a title above the headers is not spread");
        for row in 3..=5 {
            assert_eq!(at(row, 1), Some(Data::String("smoke".into())), "row {row}");
        }
        assert_eq!(table.notes.len(), 1);
    }

    use super::super::open_source;
    use super::super::test_support::{bytes_input, fixture, read_all};
    use super::*;
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

    fn dt(y: i32, m: u32, d: u32, h: u32, min: u32) -> Cell<'static> {
        Cell::DateTime(
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, min, 0)
                .unwrap(),
        )
    }

    fn text(s: &str) -> Cell<'_> {
        Cell::Text(s)
    }

    fn opts() -> SourceOptions {
        SourceOptions::default()
    }

    fn open_err(input: &Input, opts: &SourceOptions) -> String {
        match open_source(input, opts) {
            Ok(_) => panic!("expected an error"),
            Err(err) => err.to_string(),
        }
    }

    /// Writes a workbook with rust_xlsxwriter into a temp dir and returns its path.
    fn write_xlsx(dir: &tempfile::TempDir, file: &str, build: impl FnOnce(&mut Workbook)) -> Input {
        let mut workbook = Workbook::new();
        build(&mut workbook);
        let path = dir.path().join(file);
        workbook.save(&path).unwrap();
        Input::File(path)
    }

    #[test]
    fn reading_some_columns_gives_the_same_cells_there() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_xlsx(&dir, "runs.xlsx", |wb| {
            let sheet = wb.add_worksheet();
            sheet.write_string(0, 0, "Title").unwrap();
            sheet.write_string(0, 1, "Start").unwrap();
            sheet.write_string(0, 2, "Notes").unwrap();
            sheet.write_string(1, 0, "A").unwrap();
            sheet.write_string(1, 1, "01/02/2024").unwrap();
            sheet.write_number(1, 2, 7.0).unwrap();
            sheet.write_string(2, 0, "B").unwrap();
            sheet.write_string(2, 2, "text").unwrap();
            let date = ExcelDateTime::from_ymd(2024, 2, 13).unwrap();
            sheet
                .write_datetime_with_format(3, 1, &date, &Format::new().set_num_format("dd/mm/yyyy"))
                .unwrap();
        });
        let mut full = open_source(&input, &opts()).unwrap();
        let mut some = open_source(&input, &opts()).unwrap();
        let (mut all_cells, mut start_only) = (SourceRow::default(), SourceRow::default());
        let mut starts = Vec::new();
        while full.next_row(&mut all_cells).unwrap() {
            assert!(some.next_row_columns(&mut start_only, &[1]).unwrap());
            assert_eq!(start_only.number, all_cells.number);
            assert_eq!(start_only.cell(1).unwrap(), all_cells.cell(1).unwrap());
            assert_eq!(
                [start_only.cell(0).unwrap(), start_only.cell(2).unwrap()],
                [Cell::Empty, Cell::Empty]
            );
            starts.push(start_only.clone());
        }
        assert!(!some.next_row_columns(&mut start_only, &[1]).unwrap());
        let starts: Vec<Cell> = starts.iter().map(|row| row.cell(1).unwrap()).collect();
        assert_eq!(starts, [text("01/02/2024"), Cell::Empty, dt(2024, 2, 13, 0, 0)]);
    }

    #[test]
    fn the_1904_workbook_keeps_its_epoch() {
        let input = fixture("openpyxl-1904-dates.xlsx");
        let source = open_source(&input, &opts()).unwrap();
        assert!(source.is_workbook());
        assert_eq!(source.sheet_name(), Some("Runs"));
        let (headers, rows) = read_all(&input, &opts());
        assert_eq!(headers, ["Title", "Human ID", "Start Date", "End Date", "Labels"]);
        // The stored serial for C2 is 44012.375: read in the 1900 system it would be
        // 2020-06-30, four years and one day early.
        assert_eq!(
            rows,
            [
                SourceRow::new(
                    2,
                    &[
                        text("Checkout flow"),
                        Cell::Number(42.0),
                        dt(2024, 7, 1, 9, 0),
                        dt(2024, 7, 3, 18, 0),
                        text("web;checkout"),
                    ]
                ),
                SourceRow::new(
                    3,
                    &[
                        text("Search"),
                        Cell::Number(43.0),
                        dt(2024, 7, 8, 0, 0),
                        dt(2024, 7, 9, 0, 0),
                        text("web"),
                    ]
                ),
            ]
        );
        assert_eq!(rows[0].cell(1).unwrap().as_text(), "42");
    }

    #[test]
    fn libreoffice_ods_and_xls_read_alike() {
        for file in ["libreoffice.ods", "libreoffice.xls"] {
            let input = fixture(file);
            let source = open_source(&input, &opts()).unwrap();
            assert_eq!(source.sheet_name(), Some("Plan"), "{file}");
            let (headers, rows) = read_all(&input, &opts());
            assert_eq!(headers, ["Title", "Start", "End", "Labels", "Cases"], "{file}");
            assert_eq!(
                rows,
                [
                    SourceRow::new(
                        2,
                        &[
                            text("Release candidate"),
                            dt(2024, 9, 2, 10, 0),
                            dt(2024, 9, 6, 16, 0),
                            text("Release|RC"),
                            text("2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091"),
                        ]
                    ),
                    SourceRow::new(
                        3,
                        &[
                            text("Accessibility pass"),
                            dt(2024, 9, 9, 0, 0),
                            Cell::Empty,
                            text("a11y"),
                            Cell::Empty,
                        ]
                    ),
                ],
                "{file}"
            );
        }
    }

    #[test]
    fn libreoffice_error_cells_are_error_cells_in_ods_as_in_xls() {
        // Both made by LibreOffice 7.4 from libreoffice-errors.csv, its formulas evaluated on
        // import (see tests/fixtures/README.md).
        for (file, bad_root) in [
            ("libreoffice-errors.ods", "Err:502"),
            ("libreoffice-errors.xls", "#VALUE!"),
        ] {
            let (headers, rows) = read_all(&fixture(file), &opts());
            assert_eq!(headers, ["Title", "Human ID", "Status", "Start"], "{file}");
            let cells: Vec<Vec<Cell>> = rows.iter().map(|row| row.cells().collect()).collect();
            assert_eq!(
                cells,
                [
                    vec![
                        Cell::Error("#DIV/0!"),
                        Cell::Error("#N/A"),
                        text("ACTIVE"),
                        dt(2024, 3, 17, 0, 0)
                    ],
                    vec![
                        Cell::Error(bad_root),
                        text("R-2"),
                        text("ACTIVE"),
                        Cell::Error("#DIV/0!")
                    ],
                    vec![
                        text("Ok title"),
                        Cell::Error("#VALUE!"),
                        text("ACTIVE"),
                        dt(2024, 3, 18, 0, 0)
                    ],
                ],
                "{file}"
            );
        }
    }

    /// Public files that read wrongly with calamine 0.38.0 (tests/fixtures/corpus/README.md),
    /// held to what xlrd and LibreOffice read.
    #[test]
    fn corpus_xlsb_formula_errors_are_error_cells() {
        let misc = SourceOptions {
            sheet: Some("misc".to_owned()),
            ..opts()
        };
        let (headers, rows) = read_all(&fixture("corpus/apachepoi_FormulaEvalTestData.xls.xlsb"), &misc);
        assert_eq!(headers, ["string", "1", "1", "TRUE", "0", ""]);
        let first: Vec<(usize, Cell)> = rows.iter().map(|row| (row.number, row.cell(0).unwrap())).collect();
        assert_eq!(
            first,
            [
                (2, text("TRUE")),
                (3, text("FALSE")),
                (4, Cell::Empty),
                (5, Cell::Empty),
                (6, Cell::Empty),
                (7, Cell::Empty),
                (8, Cell::Error("#NUM!")),
                (9, Cell::Empty),
                (10, Cell::Empty),
                (11, Cell::Empty),
                (12, text("TRUE")),
                (13, Cell::Error("#VALUE!")),
                (14, Cell::Number(1.0)),
                (15, Cell::Empty),
                (16, text("abc")),
                (17, Cell::Empty),
                (18, Cell::Number(0.5)),
            ]
        );
        // Row 13 holds nothing but the error.
        assert!(rows[11].cells().skip(1).all(|cell| cell == Cell::Empty));
    }

    #[test]
    fn corpus_biff8_text_has_no_nul_between_letters() {
        let (headers, rows) = read_all(&fixture("corpus/CRLFR9.XLS"), &opts());
        assert_eq!(headers, ["Normal", "abc\r\ndef"]);
        assert_eq!(rows, [SourceRow::new(2, &[text("Formula"), text("abc\r\ndef")])]);
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

    fn two_sheets(workbook: &mut Workbook) {
        let first = workbook.add_worksheet();
        first.set_name("Notes").unwrap();
        first.write_string(0, 0, "Read me").unwrap();
        let second = workbook.add_worksheet();
        second.set_name("Runs").unwrap();
        second.write_string(0, 0, "Title").unwrap();
        second.write_string(0, 1, "Status").unwrap();
        second.write_string(1, 0, "Second sheet run").unwrap();
        second.write_string(1, 1, "ACTIVE").unwrap();
    }

    #[test]
    fn sheet_flag_picks_the_sheet_and_a_missing_one_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_xlsx(&dir, "two.xlsx", two_sheets);

        let (headers, _) = read_all(&input, &opts());
        assert_eq!(headers, ["Read me"]);

        for wanted in ["Runs", "runs", " RUNS "] {
            let opts = SourceOptions {
                sheet: Some(wanted.to_owned()),
                ..opts()
            };
            let source = open_source(&input, &opts).unwrap();
            assert_eq!(source.sheet_name(), Some("Runs"));
            let (headers, rows) = read_all(&input, &opts);
            assert_eq!(headers, ["Title", "Status"]);
            assert_eq!(rows, [SourceRow::new(2, &[text("Second sheet run"), text("ACTIVE")])]);
        }

        let opts = SourceOptions {
            sheet: Some("Plan".to_owned()),
            ..opts()
        };
        assert_eq!(
            open_err(&input, &opts),
            format!(
                "{}: --sheet Plan: there is no such sheet; the sheets are `Notes`, `Runs`",
                input.display_name()
            )
        );
    }

    #[test]
    fn the_default_sheet_is_the_first_visible_one() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_xlsx(&dir, "hidden.xlsx", |workbook| {
            two_sheets(workbook);
            if let Ok(notes) = workbook.worksheet_from_name("Notes") {
                notes.set_hidden(true);
            }
            if let Ok(runs) = workbook.worksheet_from_name("Runs") {
                runs.set_active(true);
            }
        });
        let source = open_source(&input, &opts()).unwrap();
        assert_eq!(source.sheet_name(), Some("Runs"));
    }

    #[test]
    fn header_row_three_and_a_table_off_a1_keep_real_references() {
        let dir = tempfile::tempdir().unwrap();
        let date_format = Format::new().set_num_format("yyyy-mm-dd hh:mm");
        let input = write_xlsx(&dir, "offset.xlsx", |workbook| {
            let sheet = workbook.add_worksheet();
            sheet.write_string(0, 1, "Quarterly export").unwrap();
            sheet.write_string(2, 1, " Title ").unwrap();
            sheet.write_string(2, 2, "Start").unwrap();
            sheet.write_string(2, 3, "Done").unwrap();
            sheet.write_string(2, 4, "Score").unwrap();
            sheet.write_string(3, 1, "Offset run").unwrap();
            let start = ExcelDateTime::parse_from_str("2024-03-17 09:30:00").unwrap();
            sheet.write_datetime_with_format(3, 2, &start, &date_format).unwrap();
            sheet.write_boolean(3, 3, true).unwrap();
            sheet.write_formula(3, 4, Formula::new("=1+1").set_result("2")).unwrap();
            sheet.write_string(5, 1, "After a gap").unwrap();
            sheet
                .write_formula(5, 4, Formula::new("=NA()").set_result("#N/A"))
                .unwrap();
        });
        let opts = SourceOptions {
            header_row: 3,
            ..opts()
        };
        let (headers, rows) = read_all(&input, &opts);
        assert_eq!(headers, ["", "Title", "Start", "Done", "Score"]);
        assert_eq!(
            rows,
            [
                SourceRow::new(
                    4,
                    &[
                        Cell::Empty,
                        text("Offset run"),
                        dt(2024, 3, 17, 9, 30),
                        Cell::Bool(true),
                        Cell::Number(2.0),
                    ]
                ),
                SourceRow::new(5, &[Cell::Empty; 5]),
                SourceRow::new(
                    6,
                    &[
                        Cell::Empty,
                        text("After a gap"),
                        Cell::Empty,
                        Cell::Empty,
                        Cell::Error("#N/A"),
                    ]
                ),
            ]
        );

        // With the default header row, row 1 holds only the title text.
        let (headers, _) = read_all(&input, &SourceOptions::default());
        assert_eq!(headers, ["", "Quarterly export", "", "", ""]);
        let opts2 = SourceOptions {
            header_row: 2,
            ..SourceOptions::default()
        };
        assert_eq!(
            open_err(&input, &opts2),
            format!(
                "{}: row 2 (--header-row) is empty; row 3 has values: pass --header-row 3 if it holds the column names",
                input.display_name()
            )
        );
        let opts9 = SourceOptions {
            header_row: 9,
            ..SourceOptions::default()
        };
        assert_eq!(
            open_err(&input, &opts9),
            format!(
                "{}: --header-row 9 is past the last row (6); pass the row that holds the column names",
                input.display_name()
            )
        );
    }

    #[test]
    fn times_and_durations_are_not_dates() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_xlsx(&dir, "times.xlsx", |workbook| {
            let sheet = workbook.add_worksheet();
            sheet.write_string(0, 0, "Time").unwrap();
            sheet.write_string(0, 1, "Elapsed").unwrap();
            let time = Format::new().set_num_format("hh:mm");
            let elapsed = Format::new().set_num_format("[h]:mm:ss");
            let nine = ExcelDateTime::from_hms(9, 15, 0).unwrap();
            sheet.write_datetime_with_format(1, 0, &nine, &time).unwrap();
            sheet.write_number_with_format(1, 1, 1.5, &elapsed).unwrap();
        });
        let (_, rows) = read_all(&input, &opts());
        assert_eq!(rows[0].cells().collect::<Vec<_>>(), [text("9:15:00"), text("36:00:00")]);
    }

    #[test]
    fn bytes_input_reads_a_workbook() {
        let data = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openpyxl-1904-dates.xlsx"),
        )
        .unwrap();
        let (headers, rows) = read_all(&bytes_input("upload.XLSX", &data), &opts());
        assert_eq!(headers[..2], ["Title", "Human ID"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].cell(2).unwrap(), dt(2024, 7, 8, 0, 0));
    }

    #[test]
    fn damaged_workbooks_are_clear_errors() {
        let data = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openpyxl-1904-dates.xlsx"),
        )
        .unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated.xlsx", data[..data.len() / 2].to_vec()),
            ("truncated.xlsx", data[..100].to_vec()),
            ("empty.xlsx", Vec::new()),
            ("text.xlsx", b"Title,Status\nA,B\n".to_vec()),
            ("text.ods", b"Title,Status\nA,B\n".to_vec()),
            ("text.xls", b"Title,Status\nA,B\n".to_vec()),
            ("text.xlsb", b"Title,Status\nA,B\n".to_vec()),
            ("zip.xls", data.clone()),
        ];
        for (file, bytes) in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(file);
            std::fs::write(&path, &bytes).unwrap();
            let input = Input::File(path);
            let err = open_err(&input, &opts());
            let prefix = format!("cannot read {} as a workbook (", input.display_name());
            assert!(err.starts_with(&prefix), "{file}: {err}");
            assert!(
                err.ends_with("it may be damaged, truncated or of another type than its extension says: open it in Excel or LibreOffice and save a fresh copy"),
                "{file}: {err}"
            );
        }
    }

    #[test]
    fn a_password_protected_workbook_says_so() {
        // The 1904 fixture encrypted with msoffcrypto-tool 6.1.0, password `secret`.
        let input = fixture("msoffcrypto-encrypted.xlsx");
        assert_eq!(
            open_err(&input, &opts()),
            format!(
                "{} is password-protected; remove the password (in Excel: File > Info > Protect Workbook; in LibreOffice: File > Save As without \"Save with password\") and save it again",
                input.display_name()
            )
        );
    }

    #[test]
    fn every_password_protected_format_gets_the_password_advice() {
        // An encrypted .xlsb is the same OLE container as an encrypted .xlsx.
        let ole = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/msoffcrypto-encrypted.xlsx"),
        )
        .unwrap();
        // An encrypted .ods is a zip whose manifest describes how each part is encrypted.
        let encrypted = r#"<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA"><manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/></manifest:encryption-data>"#;
        let ods = ods_package(encrypted, "\u{8f}\u{13}encrypted");
        for (file, data) in [("locked.xlsb", &ole), ("locked.ods", &ods)] {
            assert_eq!(
                open_err(&bytes_input(file, data), &opts()),
                format!(
                    "{file} is password-protected; remove the password (in Excel: File > Info > Protect Workbook; in LibreOffice: File > Save As without \"Save with password\") and save it again"
                ),
            );
        }
    }

    /// A stored .ods package: its manifest, with `encryption` inside the entry of
    /// `content.xml`, and `content` as that part.
    fn ods_package(encryption: &str, content: &str) -> Vec<u8> {
        use std::io::Write;
        let manifest = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">{encryption}</manifest:file-entry></manifest:manifest>"#
        );
        let mut ods = Vec::new();
        let mut zip = zip::ZipWriter::new(Cursor::new(&mut ods));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (part, bytes) in [
            ("mimetype", "application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", &manifest),
            ("content.xml", content),
        ] {
            zip.start_file(part, stored).unwrap();
            zip.write_all(bytes.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        ods
    }

    fn fixture_path(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn ods_with_content(content: &str) -> Vec<u8> {
        ods_package("", content)
    }

    fn ods_table(rows: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Runs">{rows}"#
        )
    }

    const ODS_END: &str = "</table:table></office:spreadsheet></office:body></office:document-content>";

    /// Found while fuzzing: calamine read a table that is never closed forever.
    #[test]
    fn fuzz_an_ods_table_never_closed_is_an_error_not_a_hang() {
        let row = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>Title</text:p></table:table-cell></table:table-row>"#;
        let closed = ods_with_content(&format!("{}{ODS_END}", ods_table(row)));
        let (headers, _) = read_all(&bytes_input("ok.ods", &closed), &opts());
        assert_eq!(headers, ["Title"]);
        let open = ods_with_content(&ods_table(row));
        let err = open_err(&bytes_input("open.ods", &open), &opts());
        assert_eq!(
            err,
            "cannot read open.ods as a workbook (Ods error: Expecting 'table:table' node, found end of xml file); it may be damaged, truncated or of another type than its extension says: open it in Excel or LibreOffice and save a fresh copy"
        );
    }

    /// Found while fuzzing: empty rows repeated between two values built up to 100 million
    /// cells (3 GB) before calamine's cap; the area is now refused before it is built.
    #[test]
    fn fuzz_ods_repeated_rows_are_refused_before_they_are_built() {
        let value = r#"<table:table-row><table:table-cell table:number-columns-repeated="200" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>"#;
        let empty = r#"<table:table-row table:number-rows-repeated="1000000"><table:table-cell table:number-columns-repeated="200"/></table:table-row>"#;
        let ods = ods_with_content(&format!("{}{ODS_END}", ods_table(&format!("{value}{empty}{value}"))));
        let wide = SourceOptions {
            max_columns: 16_384,
            ..opts()
        };
        assert_eq!(
            open_err(&bytes_input("repeats.ods", &ods), &wide),
            "repeats.ods: the sheet would take 200000400 cells, over the 100000000 the workbook reader holds; delete the stray cells or repeated rows far below or right of the table (in LibreOffice, Ctrl+End goes to the last cell)"
        );
    }

    /// The inputs kept in `fuzz/corpus/workbook/regression-*` (the fuzz target's first byte
    /// picks the format) read to an answer, as the tests above hold each to its own.
    #[test]
    fn fuzz_regression_inputs_read_to_an_answer() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/workbook");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.file_name().unwrap().to_string_lossy().starts_with("regression-") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let name = match data[0] {
                b'l' => "fuzz.xls",
                b'o' => "fuzz.ods",
                b'b' => "fuzz.xlsb",
                _ => "fuzz.xlsx",
            };
            let _ = open_source(&bytes_input(name, &data[1..]), &opts());
            seen += 1;
        }
        assert_eq!(seen, 4);
    }

    /// Found while fuzzing: a `Dimensions` record claiming every row of BIFF8's 32-bit range
    /// made calamine reserve room for billions of cells before reading one.
    #[test]
    fn fuzz_an_xls_claiming_billions_of_cells_reads_the_cells_there() {
        let mut data = std::fs::read(fixture_path("libreoffice.xls")).unwrap();
        let record = data.windows(4).position(|w| w == [0x00, 0x02, 0x0E, 0x00]).unwrap();
        // The last row (the 4 bytes after the first row) becomes u32::MAX.
        data[record + 8..record + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let (headers, rows) = read_all(&bytes_input("claims.xls", &data), &opts());
        assert_eq!(headers, ["Title", "Start", "End", "Labels", "Cases"]);
        assert_eq!(rows.len(), 2);
    }

    /// Found while fuzzing: a sector chain that loops made calamine grow one buffer until
    /// the allocation failed (gigabytes); a chain longer than the file is now an error.
    #[test]
    fn fuzz_an_xls_whose_sector_chain_loops_is_refused() {
        let mut data =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/libreoffice.xls"))
                .unwrap();
        let u32_at = |data: &[u8], at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let sector_size = 1 << u16::from_le_bytes([data[0x1E], data[0x1F]]);
        let (dir_start, first_fat) = (u32_at(&data, 0x30), u32_at(&data, 0x4C));
        // The directory's first sector names itself as the next one.
        let entry = (first_fat + 1) * sector_size + dir_start * 4;
        data[entry..entry + 4].copy_from_slice(&(dir_start as u32).to_le_bytes());
        let err = open_err(&bytes_input("loop.xls", &data), &opts());
        assert!(err.contains("Sector chain loops back to sector"), "{err}");
    }

    #[test]
    fn an_ole_file_named_xlsx_is_explained() {
        let mut data = OLE_MAGIC.to_vec();
        data.resize(2048, 0);
        let err = open_err(&bytes_input("locked.xlsx", &data), &opts());
        assert_eq!(
            err,
            "cannot read locked.xlsx as a workbook (it is an OLE file, as .xls and password-protected workbooks are, not a zip package); it may be damaged, truncated or of another type than its extension says: open it in Excel or LibreOffice and save a fresh copy"
        );
    }

    #[test]
    fn limits_apply_to_workbooks() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_xlsx(&dir, "wide.xlsx", |workbook| {
            let sheet = workbook.add_worksheet();
            for column in 0..4 {
                sheet.write_string(0, column, format!("H{column}")).unwrap();
            }
            sheet.write_string(1, 0, "123456").unwrap();
            sheet.write_string(2, 0, "ok").unwrap();
        });
        let narrow = SourceOptions {
            max_columns: 3,
            ..opts()
        };
        assert_eq!(
            open_err(&input, &narrow),
            format!(
                "{}: row 1 has 4 columns, over the limit of 3; delete the unused columns or raise --max-columns",
                input.display_name()
            )
        );
        let small = SourceOptions {
            max_cell_bytes: 5,
            ..opts()
        };
        let mut source = open_source(&input, &small).unwrap();
        let mut row = SourceRow::default();
        let err = source.next_row(&mut row).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cell A2 (`H0`) holds 6 bytes, over the limit of 5; shorten it or raise --max-cell-bytes",
                input.display_name()
            )
        );
        assert!(source.next_row(&mut row).unwrap());
        assert_eq!((row.number, row.cell(0).unwrap()), (3, text("ok")));
    }

    /// Found while fuzzing: calamine sized the range from the cells' bounding box, so one
    /// stray value far out asked for billions of cells and the failed allocation aborted.
    #[test]
    fn fuzz_a_stray_value_far_out_is_refused_before_it_is_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let far_right = write_xlsx(&dir, "far-right.xlsx", |workbook| {
            let sheet = workbook.add_worksheet();
            sheet.write_string(0, 0, "Title").unwrap();
            sheet.write_string(1_048_575, 16_383, "x").unwrap();
        });
        assert_eq!(
            open_err(&far_right, &opts()),
            format!(
                "{}: row 1 has 16384 columns, over the limit of 1000; delete the unused columns or raise --max-columns",
                far_right.display_name()
            )
        );
        let far_down = write_xlsx(&dir, "far-down.xlsx", |workbook| {
            let sheet = workbook.add_worksheet();
            sheet.write_string(0, 0, "Title").unwrap();
            sheet.write_string(1_048_575, 64, "x").unwrap();
        });
        assert_eq!(
            open_err(&far_down, &opts()),
            format!(
                "{}: sheet `Sheet1` has values from A1 to BM1048576, an area of 68157440 cells, over the 67108864 this tool can hold; delete the stray cells far below or right of the table (in Excel, Ctrl+End goes to the last one)",
                far_down.display_name()
            )
        );
    }

    #[test]
    fn rewind_gives_the_same_rows_again() {
        let input = fixture("libreoffice.xls");
        let mut source = open_source(&input, &opts()).unwrap();
        let mut drain = || {
            let mut rows = Vec::new();
            let mut row = SourceRow::default();
            while source.next_row(&mut row).unwrap() {
                rows.push(row.clone());
            }
            source.rewind().unwrap();
            rows
        };
        let first = drain();
        assert_eq!(first.len(), 2);
        assert_eq!(drain(), first);
    }

    #[test]
    fn an_empty_sheet_has_no_headers() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_xlsx(&dir, "empty.xlsx", |workbook| {
            workbook.add_worksheet();
        });
        let (headers, rows) = read_all(&input, &opts());
        assert!(headers.is_empty());
        assert!(rows.is_empty());
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
