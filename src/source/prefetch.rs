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
            batch
                .rows
                .retain(|row| row.cells.iter().map(cell_capacity).sum::<usize>() <= KEEP_ROW_BYTES);
            // The reader may have finished already; then the batch is simply dropped.
            let _ = empty_tx.try_send(batch);
        }
        // The reader stopped without an end marker: it panicked, and the scope re-raises it.
        Ok(())
    })
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
