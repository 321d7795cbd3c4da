//! Workbooks (xlsx, xlsm, xlsb, xls, ods) through calamine: which sheet, the header
//! row, cell values converted with the workbook's own date epoch, and cell references
//! that match the real sheet.
//!
//! A reading thread ([`feed`]) opens the workbook and sends the sheet's rows in order,
//! each as the cells it holds; this side reads the header row from them and fills the
//! pipeline's rows, spreading merged cells as it goes. Memory follows the row, not the
//! sheet: .xlsx and .xlsb stream, a gap of empty rows costs nothing, and .xls and .ods,
//! which calamine reads whole, are capped ([`book::MAX_CELLS`]). A reading that stops
//! moving is ended ([`watchdog`]). Reading again (`rewind`) reads the sheet again on the
//! same thread, the workbook still open.

mod book;
mod feed;
mod merge;
mod value;
mod watchdog;

use feed::{Feed, Plan, SheetRow, Width};

use super::{Input, Location, RowSource, SourceError, SourceOptions};
use crate::read::row::SourceRow;

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
    feed: Feed,
    /// The next row the feed gave, not handed on yet.
    ahead: Option<SheetRow>,
    /// 0-based sheet rows: the header's, and the first that may be handed on next.
    header: usize,
    next: usize,
    merges: merge::Spread,
    max_cell_bytes: usize,
    /// Whether text that is exactly a spreadsheet error code is an error cell (ODS).
    error_text: bool,
    /// What the run says once: the sheet and header row found.
    notes: Vec<String>,
}

impl WorkbookSource {
    pub(super) fn open(input: &Input, opts: &SourceOptions, kind: Kind) -> Result<Self, SourceError> {
        let plan = Plan {
            input: input.clone(),
            kind,
            sheet: opts.sheet.clone(),
            find_table: opts.find_table,
            title_headers: opts.title_headers.clone(),
            max_columns: opts.max_columns,
            stall: watchdog::stall_bound(),
        };
        let mut feed = Feed::start(&plan)?;
        let opened = feed.opened()?;
        let header = opened.table.header_row.unwrap_or(opts.header_row) - 1;
        let mut source = WorkbookSource {
            name: input.display_name(),
            sheet: opened.table.sheet,
            headers: Vec::new(),
            feed,
            ahead: None,
            header,
            next: header + 1,
            merges: merge::Spread::new(Vec::new(), header, 0),
            max_cell_bytes: opts.max_cell_bytes,
            error_text: matches!(kind, Kind::Ods),
            notes: opened.table.notes,
        };
        source.read_headers(opened.width, opts)?;
        source.merges = merge::Spread::new(opened.merged, header, source.headers.len());
        Ok(source)
    }

    /// Reads up to the header row and takes its texts as the headers. An empty sheet has
    /// none (the pipeline decides what that means).
    fn read_headers(&mut self, width: Width, opts: &SourceOptions) -> Result<(), SourceError> {
        let (mut last, mut filled_above) = (None, None);
        let header_row = loop {
            let Some(row) = self.feed.next()? else {
                return match last {
                    None => Ok(()),
                    Some(last) => Err(SourceError::HeaderRowMissing {
                        name: self.name.clone(),
                        row: self.header + 1,
                        last: last + 1,
                    }),
                };
            };
            let index = row.index as usize;
            last = Some(index);
            if index < self.header {
                filled_above = row.is_filled().then_some(index).or(filled_above);
                continue;
            }
            if index == self.header {
                break Some(row);
            }
            self.ahead = Some(row);
            break None;
        };
        let width = self.width(header_row.as_ref(), width, opts)?;
        let headers = self.header_texts(header_row.as_ref(), width)?;
        if headers.iter().all(String::is_empty) {
            return Err(self.blank_header_row(filled_above));
        }
        self.headers = headers;
        Ok(())
    }

    /// Columns count from A, so a header's index is its sheet column and the pipeline's
    /// cell references are right even when the table starts further right. As wide as
    /// the header row, or the sheet when it is known (values under no header are kept for
    /// the failed-rows file); never wider than `--max-columns`.
    fn width(&self, header_row: Option<&SheetRow>, width: Width, opts: &SourceOptions) -> Result<usize, SourceError> {
        let header_width = header_row.map_or(0, |row| row.width as usize);
        let width = match width {
            Width::Exact(width) => width.max(header_width),
            Width::Declared(width) if width <= opts.max_columns => width.max(header_width),
            Width::Declared(_) => header_width,
        };
        if width > opts.max_columns {
            return Err(SourceError::TooManyColumns {
                name: self.name.clone(),
                at: Location::row(self.header + 1, true),
                columns: width,
                limit: opts.max_columns,
            });
        }
        Ok(width)
    }

    /// The header row's cells as trimmed text, `width` of them.
    fn header_texts(&self, header_row: Option<&SheetRow>, width: usize) -> Result<Vec<String>, SourceError> {
        let mut cells = SourceRow::default();
        cells.clear_cells(width);
        for (column, data) in header_row.map_or(&[][..], |row| &row.cells) {
            let column = *column as usize;
            if column >= width {
                break;
            }
            self.check_size(column, data, self.header + 1, &[])?;
            value::fill_cell(&mut cells, column, Some(data), false);
        }
        Ok(cells.cells().map(|cell| cell.as_text().trim().to_owned()).collect())
    }

    /// The header row is blank: the message names the nearest row with values, after it
    /// if there is one.
    fn blank_header_row(&mut self, filled_above: Option<usize>) -> SourceError {
        let mut next = self.ahead.take();
        let first_below = loop {
            match next {
                Some(row) if row.is_filled() => break Some(row.index as usize),
                Some(_) => match self.feed.next() {
                    Ok(row) => next = row,
                    Err(err) => return err,
                },
                None => break None,
            }
        };
        SourceError::HeaderRowBlank {
            name: self.name.clone(),
            at: Location::row(self.header + 1, true),
            first_row: first_below.or(filled_above).map(|r| r + 1),
        }
    }

    /// A text value over `--max-cell-bytes` is refused, in every column read.
    fn check_size(
        &self,
        column: usize,
        data: &calamine::Data,
        row: usize,
        headers: &[String],
    ) -> Result<(), SourceError> {
        match data {
            calamine::Data::String(s) if s.len() > self.max_cell_bytes => Err(SourceError::CellTooLarge {
                name: self.name.clone(),
                at: Location::cell(row, column, headers, true),
                bytes: s.len(),
                limit: self.max_cell_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// The next sheet row with a value into `row`: every cell, or only those at `only`;
    /// every cell's size is checked either way, so both give the same errors. Empty rows
    /// are passed over (the pipeline skips them anyway); a row between two others that
    /// holds only merged values is handed on like any other.
    fn fill_row(&mut self, row: &mut SourceRow, only: Option<&[usize]>) -> Result<bool, SourceError> {
        loop {
            if self.ahead.is_none() {
                self.ahead = self.feed.next()?;
            }
            let Some(real) = self.ahead.as_ref().map(|ahead| ahead.index as usize) else {
                return Ok(false);
            };
            let index = self.merges.next_row(self.next).filter(|&i| i < real).unwrap_or(real);
            self.next = index + 1;
            let sheet_row = if index == real { self.ahead.take() } else { None };
            if self.fill(row, index, sheet_row.as_ref(), only)? {
                return Ok(true);
            }
        }
    }

    /// Fills `row` as sheet row `index`, from its cells and the merged regions over it;
    /// false if that leaves it empty.
    fn fill(
        &mut self,
        row: &mut SourceRow,
        index: usize,
        sheet_row: Option<&SheetRow>,
        only: Option<&[usize]>,
    ) -> Result<bool, SourceError> {
        let width = self.headers.len();
        row.number = index + 1;
        row.clear_cells(width);
        let mut any = false;
        if let Some(sheet_row) = sheet_row {
            self.merges.enter(index, &sheet_row.cells);
            for (column, data) in &sheet_row.cells {
                let column = *column as usize;
                if column >= width {
                    break;
                }
                self.check_size(column, data, row.number, &self.headers)?;
                if only.is_none_or(|wanted| wanted.contains(&column)) {
                    value::fill_cell(row, column, Some(data), self.error_text);
                }
                any = true;
            }
        }
        let merged = self.merges.fill(row, index, width, only, self.error_text);
        Ok(any || merged)
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
        let mut notes = self.notes.clone();
        if self.merges.filled() > 0 {
            notes.push(format!(
                "merged cells: each merged value is given to every row it spans ({} cells filled)",
                self.merges.filled()
            ));
        }
        notes
    }

    /// Reads the sheet again, from the first data row, with the workbook still open.
    fn header_row(&self) -> Option<usize> {
        Some(self.header + 1)
    }

    fn rewind(&mut self) -> Result<(), SourceError> {
        self.feed.restart(u32::try_from(self.header + 1).unwrap_or(u32::MAX))?;
        self.ahead = None;
        self.next = self.header + 1;
        self.merges.restart();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
