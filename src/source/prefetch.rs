//! Reading on a second thread: the source parses the next rows while this thread
//! validates the last ones. Rows travel in batches, and the batches go back to the
//! reader to be filled again, so no row is allocated twice.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::{RowSource, SourceError};
use crate::model::SourceRow;

/// Rows per batch: enough to make the hand-over cheap, few enough to keep memory flat.
const BATCH_ROWS: usize = 256;
/// A batch is sent early once its cells hold this much text, so a file of huge cells
/// does not keep hundreds of them in flight.
const BATCH_BYTES: usize = 1 << 20;
/// Batches filled and waiting, besides the one being read and the one being used.
const BATCHES_AHEAD: usize = 2;
/// A row whose cells grew past this is dropped on return rather than kept for reuse.
const KEEP_ROW_BYTES: usize = 64 << 10;

/// What the reader found next, in file order.
pub enum Fetched<'a> {
    Row(&'a SourceRow),
    /// A problem confined to one row ([`SourceError::is_row_local`]); reading goes on.
    RowError(SourceError),
}

enum Slot {
    Row,
    Error(SourceError),
}

#[derive(Default)]
struct Batch {
    rows: Vec<SourceRow>,
    slots: Vec<Slot>,
    /// The most text one of its rows holds, in bytes.
    largest_row: usize,
    /// Set on the last batch: the end of the rows, or the error that ended them.
    end: Option<Result<(), SourceError>>,
}

/// Hands every row of `source` (or only the cells at `columns`) to `visit`, in order, while a
/// second thread reads ahead. An error that is not row-local ends the reading and is
/// returned; so is the first error from `visit`, which stops the reader.
pub fn read_ahead(
    source: &mut dyn RowSource,
    columns: Option<&[usize]>,
    mut visit: impl FnMut(Fetched<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<Batch>(BATCHES_AHEAD);
        let (empty_tx, empty_rx) = sync_channel::<Batch>(BATCHES_AHEAD + 2);
        scope.spawn(move || reader(source, columns, &full_tx, &empty_rx));
        for mut batch in full_rx.iter() {
            let mut rows = batch.rows.iter();
            for slot in batch.slots.drain(..) {
                match slot {
                    Slot::Row => {
                        let row = rows.next().expect("a row slot has its row");
                        visit(Fetched::Row(row))?;
                    }
                    Slot::Error(e) => visit(Fetched::RowError(e))?,
                }
            }
            if let Some(end) = batch.end.take() {
                return end.map_err(|e| anyhow::anyhow!("{e}"));
            }
            recycle(&mut batch);
            // The reader may have finished already; then the batch is simply dropped.
            let _ = empty_tx.try_send(batch);
        }
        // The reader stopped without an end marker: it panicked, and the scope re-raises it.
        Ok(())
    })
}

/// Drops the rows that grew too large to keep around, before the batch is filled again.
fn recycle(batch: &mut Batch) {
    // A row that grew large grew in this batch: only then is it worth looking.
    if batch.largest_row > KEEP_ROW_BYTES {
        batch
            .rows
            .retain(|row| row.cells.iter().map(cell_capacity).sum::<usize>() <= KEEP_ROW_BYTES);
    }
}

fn reader(source: &mut dyn RowSource, columns: Option<&[usize]>, full: &SyncSender<Batch>, empty: &Receiver<Batch>) {
    loop {
        let mut batch = empty.try_recv().unwrap_or_default();
        let (mut used, mut bytes, mut largest_row) = (0, 0, 0);
        while batch.slots.len() < BATCH_ROWS && bytes < BATCH_BYTES {
            if used == batch.rows.len() {
                batch.rows.push(SourceRow::default());
            }
            let row = &mut batch.rows[used];
            let read = match columns {
                Some(columns) => source.next_row_columns(row, columns),
                None => source.next_row(row),
            };
            match read {
                Ok(true) => {
                    let row_bytes = row.cells.iter().map(cell_len).sum::<usize>();
                    bytes += row_bytes;
                    largest_row = largest_row.max(row_bytes);
                    used += 1;
                    batch.slots.push(Slot::Row);
                }
                Ok(false) => {
                    batch.end = Some(Ok(()));
                    break;
                }
                Err(e) if e.is_row_local() => batch.slots.push(Slot::Error(e)),
                Err(e) => {
                    batch.end = Some(Err(e));
                    break;
                }
            }
        }
        batch.largest_row = largest_row;
        let last = batch.end.is_some();
        // The consumer has stopped (its visitor failed): nothing more to read for.
        if full.send(batch).is_err() || last {
            return;
        }
    }
}

fn cell_len(cell: &crate::model::Cell) -> usize {
    match cell {
        crate::model::Cell::Text(s) | crate::model::Cell::Error(s) => s.len(),
        _ => 0,
    }
}

fn cell_capacity(cell: &crate::model::Cell) -> usize {
    match cell {
        crate::model::Cell::Text(s) | crate::model::Cell::Error(s) => s.capacity(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cell;
    use crate::source::test_support::bytes_input;
    use crate::source::{SourceOptions, open_source};

    /// `rows` data rows `r<n>,<n>`, with a value past the last header in each row listed in
    /// `shifted` (an error confined to that row).
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

    /// What `read_ahead` handed over, as `row N` / `error at row N` lines.
    fn visited(data: &[u8], columns: Option<&[usize]>) -> (Vec<String>, anyhow::Result<()>) {
        let mut seen = Vec::new();
        let mut source = source(data);
        let result = read_ahead(source.as_mut(), columns, |fetched| {
            seen.push(match fetched {
                Fetched::Row(row) => format!("row {} {:?}", row.number, row.cells),
                Fetched::RowError(e) => format!("error at row {}", e.row().unwrap_or(0)),
            });
            Ok(())
        });
        (seen, result)
    }

    #[test]
    fn rows_and_row_errors_arrive_in_file_order_across_batches() {
        let rows = 3 * BATCH_ROWS + 7;
        let shifted = [1, BATCH_ROWS, BATCH_ROWS + 1, rows];
        let (seen, result) = visited(&csv(rows, &shifted), None);
        result.unwrap_or_else(|e| panic!("{e}"));
        let want: Vec<String> = (1..=rows)
            .map(|n| {
                if shifted.contains(&n) {
                    format!("error at row {}", n + 1)
                } else {
                    let cells = vec![Cell::Text(format!("r{n}")), Cell::Text(n.to_string())];
                    format!("row {} {cells:?}", n + 1)
                }
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
                format!("row 2 {:?}", [Cell::Empty, Cell::Text("1".into())]),
                format!("row 3 {:?}", [Cell::Empty, Cell::Text("2".into())]),
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

    #[test]
    fn a_failing_visitor_stops_the_reader_and_its_error_is_returned() {
        let mut source = source(&csv(20 * BATCH_ROWS, &[]));
        let mut visits = 0;
        let result = read_ahead(source.as_mut(), None, |_| {
            visits += 1;
            if visits == 10 {
                anyhow::bail!("disk full");
            }
            Ok(())
        });
        assert_eq!(result.expect_err("the visitor failed").to_string(), "disk full");
        assert_eq!(visits, 10);
    }

    #[test]
    fn a_row_that_grew_large_is_not_kept_for_reuse() {
        let mut batch: Batch = Batch::default();
        let small = SourceRow {
            number: 2,
            cells: vec![Cell::Text("a".into())],
        };
        let large = SourceRow {
            number: 3,
            cells: vec![Cell::Text("x".repeat(KEEP_ROW_BYTES + 1))],
        };
        batch.rows = vec![small.clone(), large];
        batch.largest_row = KEEP_ROW_BYTES + 1;
        recycle(&mut batch);
        assert_eq!(batch.rows, [small]);
    }
}
