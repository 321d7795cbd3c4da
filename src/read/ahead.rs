//! Reading ahead: a second thread reads the next rows of a source while this one uses
//! the last ones. Rows cross in batches, through a channel that holds a few, so the
//! reading never runs far ahead.

use std::ops::ControlFlow;
use std::sync::mpsc::{SyncSender, sync_channel};

use anyhow::anyhow;

use super::{RowSource, SourceError};
use crate::read::row::SourceRow;

/// Rows per batch: enough that handing one over costs little per row.
const BATCH_ROWS: usize = 1024;
/// A batch is sent early once its cells hold this much text, so a file of huge cells
/// does not keep hundreds of megabytes in flight.
const BATCH_BYTES: usize = 1 << 20;
/// Batches read and waiting, besides the one being read and the one being used.
const BATCHES_AHEAD: usize = 2;

/// Rows read in a row, and how the reading ended, if it did.
struct Batch {
    rows: Vec<SourceRow>,
    /// Set on the last batch: the end of the rows, or the error that ended them.
    end: Option<Result<(), SourceError>>,
}

/// Hands every row of `source` (or only the cells at `columns`) to `visit`, in order,
/// while a second thread reads ahead. An error from the source ends the reading and is
/// returned after the rows before it; so is the first error from `visit`, which stops
/// the reader. `visit` may also stop the reading with `Break`, which is returned;
/// `Continue` means every row was visited.
pub(crate) fn read_ahead(
    source: &mut dyn RowSource,
    columns: Option<&[usize]>,
    mut visit: impl FnMut(&SourceRow) -> anyhow::Result<ControlFlow<()>>,
) -> anyhow::Result<ControlFlow<()>> {
    std::thread::scope(|scope| {
        let (full, batches) = sync_channel::<Batch>(BATCHES_AHEAD);
        scope.spawn(move || read_batches(source, columns, &full));
        // Returning drops `batches`: the reader's next send fails, and it stops.
        for batch in batches {
            for row in &batch.rows {
                if visit(row)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            if let Some(end) = batch.end {
                return end.map(|()| ControlFlow::Continue(())).map_err(|e| anyhow!("{e}"));
            }
        }
        // The reader stopped without an end: it panicked, and the scope raises that again.
        Ok(ControlFlow::Continue(()))
    })
}

/// The reading thread: batches of rows until the end of the rows, an error, or no one
/// left to take them.
fn read_batches(source: &mut dyn RowSource, columns: Option<&[usize]>, full: &SyncSender<Batch>) {
    loop {
        let batch = read_batch(source, columns);
        let last = batch.end.is_some();
        if full.send(batch).is_err() || last {
            return;
        }
    }
}

/// The next rows, up to [`BATCH_ROWS`] of them or [`BATCH_BYTES`] of text; the last
/// batch says how the rows ended.
fn read_batch(source: &mut dyn RowSource, columns: Option<&[usize]>) -> Batch {
    let mut batch = Batch {
        rows: Vec::with_capacity(BATCH_ROWS),
        end: None,
    };
    let mut bytes = 0;
    while batch.rows.len() < BATCH_ROWS && bytes < BATCH_BYTES {
        let mut row = SourceRow::default();
        match read_row(source, columns, &mut row) {
            Ok(true) => {
                bytes += row.text_len();
                batch.rows.push(row);
            }
            Ok(false) => {
                batch.end = Some(Ok(()));
                break;
            }
            Err(e) => {
                batch.end = Some(Err(e));
                break;
            }
        }
    }
    batch
}

/// Reads the next row into `row`: every cell, or only those at `columns`.
fn read_row(source: &mut dyn RowSource, columns: Option<&[usize]>, row: &mut SourceRow) -> Result<bool, SourceError> {
    match columns {
        Some(columns) => source.next_row_columns(row, columns),
        None => source.next_row(row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::row::Cell;
    use crate::read::test_support::bytes_input;
    use crate::read::{SourceOptions, open_source};

    /// `rows` data rows `r<n>,<n>`, with a value past the last header in each row listed in
    /// `shifted` (a row whose columns have shifted: read, and marked).
    fn csv(rows: usize, shifted: &[usize]) -> Vec<u8> {
        let mut text = String::from("Title,N\n");
        for n in 1..=rows {
            if shifted.contains(&n) {
                text.push_str(&format!("r{n},{n},extra\n"));
            } else {
                text.push_str(&format!("r{n},{n}\n"));
            }
        }
        text.into_bytes()
    }

    fn source(data: &[u8]) -> Box<dyn RowSource> {
        open_source(&bytes_input("t.csv", data), &SourceOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// What `read_ahead` handed over, as `row N [cells]` lines.
    fn visited(data: &[u8], columns: Option<&[usize]>) -> (Vec<String>, anyhow::Result<()>) {
        let mut seen = Vec::new();
        let mut source = source(data);
        let result = read_ahead(source.as_mut(), columns, |row| {
            let shifted = if row.overflow.is_some() { " shifted" } else { "" };
            seen.push(format!(
                "row {} {:?}{shifted}",
                row.number,
                row.cells().collect::<Vec<_>>()
            ));
            Ok(ControlFlow::Continue(()))
        });
        let result = result.map(|flow| assert!(flow.is_continue(), "nothing stopped the reading"));
        (seen, result)
    }

    #[test]
    fn rows_arrive_in_file_order_across_batches_shifted_ones_too() {
        let rows = 3 * BATCH_ROWS + 7;
        let shifted = [1, BATCH_ROWS, BATCH_ROWS + 1, rows];
        let (seen, result) = visited(&csv(rows, &shifted), None);
        result.unwrap_or_else(|e| panic!("{e}"));
        let want: Vec<String> = (1..=rows)
            .map(|n| {
                let (title, number) = (format!("r{n}"), n.to_string());
                let cells = vec![Cell::Text(&title), Cell::Text(&number)];
                let shifted = if shifted.contains(&n) { " shifted" } else { "" };
                format!("row {} {cells:?}{shifted}", n + 1)
            })
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn only_the_columns_asked_for_are_filled() {
        let (seen, result) = visited(&csv(2, &[]), Some(&[1]));
        result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            seen,
            [
                format!("row 2 {:?}", [Cell::Empty, Cell::Text("1")]),
                format!("row 3 {:?}", [Cell::Empty, Cell::Text("2")]),
            ]
        );
    }

    #[test]
    fn an_error_that_ends_the_file_ends_the_reading_after_the_rows_before_it() {
        let mut data = csv(BATCH_ROWS + 3, &[]);
        // Bytes that are not UTF-8 in the last row: the whole file is in another encoding.
        data.extend_from_slice(b"bad \xff\xfe,1\n");
        let (seen, result) = visited(&data, None);
        let error = result.expect_err("not UTF-8").to_string();
        assert!(error.contains("UTF-8"), "{error}");
        assert_eq!(seen.len(), BATCH_ROWS + 3, "every row before the bad one");
    }

    /// A visitor that fails on its tenth row, counting its calls.
    fn failing_on_the_tenth(visits: &mut usize) -> anyhow::Result<()> {
        *visits += 1;
        if *visits == 10 {
            anyhow::bail!("disk full");
        }
        Ok(())
    }

    #[test]
    fn a_failing_visitor_stops_the_reader_and_its_error_is_returned() {
        let mut source = source(&csv(20 * BATCH_ROWS, &[]));
        let mut visits = 0;
        let result = read_ahead(source.as_mut(), None, |_| {
            failing_on_the_tenth(&mut visits).map(|()| ControlFlow::Continue(()))
        });
        assert_eq!(result.expect_err("the visitor failed").to_string(), "disk full");
        assert_eq!(visits, 10);
    }

    #[test]
    fn a_visitor_that_breaks_stops_the_reading_there() {
        let mut source = source(&csv(20 * BATCH_ROWS, &[]));
        let mut visits = 0;
        let result = read_ahead(source.as_mut(), None, |row| {
            visits += 1;
            Ok(if row.number == BATCH_ROWS + 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        });
        assert!(matches!(result, Ok(ControlFlow::Break(()))));
        // Row numbers start at 2, after the header.
        assert_eq!(visits, BATCH_ROWS + 4);
    }
}
