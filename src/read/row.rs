//! A row as a source read it: its cells, borrowed from one buffer of text, and the
//! helpers that name a cell as a spreadsheet does (`C7`). Free of I/O.

use std::borrow::Cow;

/// One cell, as the source gave it, borrowed from its row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Empty,
    /// Text as written. Every field of delimited text is `Text`.
    Text(&'a str),
    /// A numeric workbook cell that is not a date.
    Number(f64),
    Bool(bool),
    /// A workbook date/time cell, already converted with the workbook's own epoch
    /// (1900 or 1904 system), as local wall-clock time with no zone.
    DateTime(chrono::NaiveDateTime),
    /// A workbook error cell, e.g. `#N/A`.
    Error(&'a str),
}

impl<'a> Cell<'a> {
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
    pub fn as_text(&self) -> Cow<'a, str> {
        match *self {
            Cell::Text(s) => Cow::Borrowed(s),
            other => other.formatted(),
        }
    }

    fn formatted(self) -> Cow<'a, str> {
        match self {
            Cell::Empty => Cow::Borrowed(""),
            // `as_text` answers for text itself; an error cell reads as its code.
            Cell::Text(s) | Cell::Error(s) => Cow::Borrowed(s),
            Cell::Number(n) => Cow::Owned(format_number(n)),
            Cell::Bool(b) => Cow::Borrowed(if b { "TRUE" } else { "FALSE" }),
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
/// with empty cells by the source.
///
/// The text of all its cells is kept back to back in one string, each cell a range of
/// it. A row is read on one thread and validated on another; as one buffer it crosses
/// between the cores as a few cache lines, where a string per cell was a dozen scattered
/// allocations. A reused row allocates nothing once its buffer is large enough.
#[derive(Clone, Default)]
pub struct SourceRow {
    pub number: usize,
    text: String,
    slots: Vec<Slot>,
    /// Why the row cannot be trusted as read (a value past the last header: its columns
    /// have probably shifted). Its cells are still the ones under the headers.
    pub overflow: Option<String>,
}

/// A cell as its row keeps it: text as a range of the row's `text`.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Empty,
    Text(usize, usize),
    Number(f64),
    Bool(bool),
    DateTime(chrono::NaiveDateTime),
    Error(usize, usize),
}

impl SourceRow {
    /// A row holding `cells`, for tests and for callers that build rows by hand.
    pub fn new(number: usize, cells: &[Cell]) -> SourceRow {
        let mut row = SourceRow {
            number,
            ..SourceRow::default()
        };
        row.clear_cells(cells.len());
        for (column, cell) in cells.iter().enumerate() {
            row.set(column, *cell);
        }
        row
    }

    /// The same row, marked as read with its columns shifted.
    pub fn with_overflow(mut self, why: impl Into<String>) -> SourceRow {
        self.overflow = Some(why.into());
        self
    }

    /// How many cells the row has: as many as the headers.
    pub fn width(&self) -> usize {
        self.slots.len()
    }

    /// The cell at `column`, or `None` past the last.
    #[inline]
    pub fn cell(&self, column: usize) -> Option<Cell<'_>> {
        self.slots.get(column).map(|slot| self.view(*slot))
    }

    pub fn cells(&self) -> impl ExactSizeIterator<Item = Cell<'_>> + '_ {
        self.slots.iter().map(|slot| self.view(*slot))
    }

    #[inline]
    fn view(&self, slot: Slot) -> Cell<'_> {
        match slot {
            Slot::Empty => Cell::Empty,
            Slot::Text(start, end) => Cell::Text(self.span(start, end)),
            Slot::Number(n) => Cell::Number(n),
            Slot::Bool(b) => Cell::Bool(b),
            Slot::DateTime(dt) => Cell::DateTime(dt),
            Slot::Error(start, end) => Cell::Error(self.span(start, end)),
        }
    }

    /// The text of a cell. A slot's ends are character boundaries of `text`, in order: it
    /// is made only by `set`, from a whole `&str` just appended, or by `set_span`, from a
    /// range it has checked; `text` only grows, and is cleared only with every slot.
    fn span(&self, start: usize, end: usize) -> &str {
        &self.text[start..end]
    }

    pub fn is_blank(&self) -> bool {
        self.cells().all(|cell| cell.is_blank())
    }

    /// Empties the row to `width` empty cells, keeping its buffers.
    #[inline]
    pub fn clear_cells(&mut self, width: usize) {
        self.text.clear();
        self.slots.clear();
        self.slots.resize(width, Slot::Empty);
    }

    /// Empties the row to `width` empty cells whose text is to be found in `text`: a
    /// record as read, its fields back to back, for [`SourceRow::set_span`] to point into.
    #[inline]
    pub fn clear_cells_to(&mut self, width: usize, text: &str) {
        self.clear_cells(width);
        self.text.push_str(text);
    }

    /// Sets the cell at `column` to the text at `range` of what the row was cleared to,
    /// without copying it, and says so; or says it cannot, if `range` is not whole
    /// characters of that text. An empty range is an empty cell.
    #[inline]
    pub fn set_span(&mut self, column: usize, range: std::ops::Range<usize>) -> bool {
        if self.text.get(range.clone()).is_none() {
            return false;
        }
        self.slots[column] = if range.is_empty() {
            Slot::Empty
        } else {
            Slot::Text(range.start, range.end)
        };
        true
    }

    /// Sets the cell at `column` (which must be below the width the row was cleared to);
    /// its text is copied into the row. Empty text is an empty cell.
    #[inline]
    pub fn set(&mut self, column: usize, cell: Cell) {
        let slot = match cell {
            Cell::Empty => Slot::Empty,
            Cell::Text("") => Slot::Empty,
            Cell::Text(text) => {
                let (start, end) = self.push(text);
                Slot::Text(start, end)
            }
            Cell::Number(n) => Slot::Number(n),
            Cell::Bool(b) => Slot::Bool(b),
            Cell::DateTime(dt) => Slot::DateTime(dt),
            Cell::Error(text) => {
                let (start, end) = self.push(text);
                Slot::Error(start, end)
            }
        };
        self.slots[column] = slot;
    }

    #[inline]
    fn push(&mut self, text: &str) -> (usize, usize) {
        let start = self.text.len();
        self.text.push_str(text);
        (start, self.text.len())
    }

    /// Bytes of text the row holds now.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Bytes the row keeps allocated for text and cells, whatever it holds now.
    pub fn kept_bytes(&self) -> usize {
        self.text.capacity() + self.slots.capacity() * std::mem::size_of::<Slot>()
    }
}

/// Rows are equal when they hold the same cells, however their text is laid out.
impl PartialEq for SourceRow {
    fn eq(&self, other: &SourceRow) -> bool {
        self.number == other.number && self.overflow == other.overflow && self.cells().eq(other.cells())
    }
}

impl std::fmt::Debug for SourceRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRow")
            .field("number", &self.number)
            .field("cells", &self.cells().collect::<Vec<_>>())
            .field("overflow", &self.overflow)
            .finish()
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
    fn a_reused_row_holds_only_its_new_cells_and_equal_rows_compare_equal() {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 7, 12)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let mut row = SourceRow::new(
            2,
            &[Cell::Text("a long first title"), Cell::Error("#N/A"), Cell::Bool(true)],
        );
        row.clear_cells(4);
        row.set(3, Cell::Text("last"));
        row.set(0, Cell::Text("first"));
        row.set(1, Cell::DateTime(day));
        row.set(2, Cell::Text(""));
        let want = [
            Cell::Text("first"),
            Cell::DateTime(day),
            Cell::Empty,
            Cell::Text("last"),
        ];
        assert_eq!(row.cells().collect::<Vec<_>>(), want);
        assert_eq!(
            (row.cell(3), row.cell(4), row.width()),
            (Some(Cell::Text("last")), None, 4)
        );
        assert_eq!(row.text_len(), "firstlast".len());
        // The same cells set in another order lay the text out differently; the rows are
        // still the same row.
        assert_eq!(row, SourceRow::new(2, &want));
        assert_ne!(row, SourceRow::new(3, &want));
        assert_ne!(row, SourceRow::new(2, &want).with_overflow("shifted"));
        assert!(!row.is_blank());
        row.clear_cells(2);
        row.set(1, Cell::Text("  "));
        assert!(row.is_blank());
    }

    #[test]
    fn a_span_is_taken_only_where_it_is_whole_characters() {
        let mut row = SourceRow::default();
        row.clear_cells_to(3, "é;ab");
        assert!(!row.set_span(0, 1..2), "inside the two bytes of é");
        assert!(!row.set_span(0, 3..9), "past the end");
        assert!(row.set_span(0, 0..2) && row.set_span(1, 3..5) && row.set_span(2, 5..5));
        assert_eq!(
            row.cells().collect::<Vec<_>>(),
            [Cell::Text("é"), Cell::Text("ab"), Cell::Empty]
        );
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
