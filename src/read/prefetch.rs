//! Reading on a second thread: the source parses the next rows while this thread
//! visits the last ones ([`read_ahead`]). Rows travel in batches, and the batches go back
//! to be filled again, so no row is allocated twice.
//!
//! [`read_prepared`] adds a stage between the two: a thread that prepares each row
//! (validates it) in file order, keeping what it made in the batch, while this thread
//! both reads the rows and visits them. The visitor only borrows what was made, so what
//! the preparing thread allocated it also frees (when it prepares the next row in that
//! place): a value freed on another thread than the one that made it costs glibc's
//! allocator a lock.

use std::ops::ControlFlow;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::{RowSource, SourceError};
use crate::read::row::SourceRow;

/// Rows per batch: enough to make the hand-over cheap, few enough that every row in
/// flight stays in the cores' caches. Each stage reads what the one before it wrote. With
/// three threads, 256 rows and two batches waiting per channel took about a fifth more
/// CPU time on a million-row dry run than 128 rows and one (interleaved runs, medians),
/// and with 64 rows the channels' wake-ups cost more than the caches saved; with the two
/// threads of [`read_prepared`], 64 and 256 rows were no faster than 128.
const BATCH_ROWS: usize = 128;
/// A batch is sent early once its cells hold this much text, so a file of huge cells
/// does not keep hundreds of them in flight.
const BATCH_BYTES: usize = 1 << 20;
/// Batches filled and waiting, besides the one being read and the one being used.
const BATCHES_AHEAD: usize = 1;
/// Batches in [`read_prepared`]: one being read or visited, the others being prepared or
/// waiting, so about as many rows in flight as with three threads.
const PREPARED_BATCHES: usize = 4;
/// A row whose cells grew past this is dropped on return rather than kept for reuse.
const KEEP_ROW_BYTES: usize = 64 << 10;

struct Batch<P = ()> {
    rows: Vec<SourceRow>,
    /// What the middle stage made of each row, by the row's place in `rows`.
    prepared: Vec<P>,
    /// How many of `rows` were read into (the others are kept for reuse).
    used: usize,
    /// The most text one of its rows holds, in bytes.
    largest_row: usize,
    /// Set on the last batch: the end of the rows, or the error that ended them.
    end: Option<Result<(), SourceError>>,
    /// Set when preparing a row failed: the batch ends before that row, and so do the rows
    /// (it is told before `end`).
    failed: Option<anyhow::Error>,
}

impl<P> Default for Batch<P> {
    fn default() -> Self {
        Batch {
            rows: Vec::new(),
            prepared: Vec::new(),
            used: 0,
            largest_row: 0,
            end: None,
            failed: None,
        }
    }
}

/// Like [`read_ahead`], with a stage between reading and `visit`: on a thread of its own,
/// `prepare` fills each row's `P` (reused from an earlier row: it must overwrite all of
/// it), in file order. `visit` then gets every row and its `P`, in order, on this thread.
/// The first error from either closure ends the reading and is returned.
///
/// Two threads, not three: this one reads the rows and visits them, the other prepares
/// them. Reading and visiting are each about half the work of preparing, so the two
/// threads are about evenly loaded on two cores; with a thread for each stage, the reader
/// and the visitor took turns on one core, and each hand-over between them was a
/// wake-up and a switch of threads (about 14,000 on a million rows).
pub fn read_prepared<P: Default + Send>(
    source: &mut dyn RowSource,
    mut prepare: impl FnMut(&SourceRow, &mut P) -> anyhow::Result<()> + Send,
    mut visit: impl FnMut(&SourceRow, &mut P) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        // Every batch there is fits in either channel, so sending never waits.
        let (full_tx, full_rx) = sync_channel::<Batch<P>>(PREPARED_BATCHES);
        let (ready_tx, ready_rx) = sync_channel::<Batch<P>>(PREPARED_BATCHES);
        scope.spawn(move || {
            for mut batch in full_rx.iter() {
                prepare_batch(&mut batch, &mut prepare);
                let last = batch.failed.is_some() || batch.end.is_some();
                // Stopping drops `full_rx`: this thread's sends then fail, and it stops.
                if ready_tx.send(batch).is_err() || last {
                    return;
                }
            }
        });
        let mut free: Vec<Batch<P>> = Vec::with_capacity(PREPARED_BATCHES);
        let (mut made, mut in_flight, mut reading) = (0, 0, true);
        loop {
            // Visiting first frees a batch to read into; reading keeps the other thread busy.
            let mut batch = match ready_rx.try_recv() {
                Ok(batch) => batch,
                Err(_) if reading && (!free.is_empty() || made < PREPARED_BATCHES) => {
                    let mut batch = free.pop().unwrap_or_else(|| {
                        made += 1;
                        Batch::default()
                    });
                    fill_batch(source, None, &mut batch);
                    reading = batch.end.is_none();
                    if full_tx.send(batch).is_ok() {
                        in_flight += 1;
                    } else {
                        // The other thread has stopped: preparing a row failed, and that
                        // batch is still to be visited, or it panicked, and the scope
                        // re-raises that.
                        reading = false;
                    }
                    continue;
                }
                // Nothing in flight and nothing to read: the last batch was already visited.
                Err(_) if in_flight == 0 => return Ok(()),
                Err(_) => match ready_rx.recv() {
                    Ok(batch) => batch,
                    Err(_) => return Ok(()),
                },
            };
            in_flight -= 1;
            let mut visit = |row: &SourceRow, made: &mut P| visit(row, made).map(|()| ControlFlow::Continue(()));
            // Returning drops the channels, which stops the other thread.
            match visit_batch(&mut batch, &mut visit)? {
                Visited::More => {}
                Visited::Stopped | Visited::Ended => return Ok(()),
            }
            recycle(&mut batch);
            free.push(batch);
        }
    })
}

/// What became of a batch handed to `visit`.
enum Visited {
    /// Every row was visited, and more rows follow.
    More,
    /// `visit` said `Break`.
    Stopped,
    /// Every row was visited, and it was the last batch.
    Ended,
}

/// Hands a batch's rows, with what was made of them, to `visit` in order. Rows nothing
/// was made for (in [`read_ahead`], where `P` is `()`) get `P`'s default. An error that
/// ended the reading (from the source or from preparing a row) is returned after the
/// rows before it.
fn visit_batch<P: Default>(
    batch: &mut Batch<P>,
    visit: &mut impl FnMut(&SourceRow, &mut P) -> anyhow::Result<ControlFlow<()>>,
) -> anyhow::Result<Visited> {
    if batch.prepared.len() < batch.used {
        batch.prepared.resize_with(batch.used, P::default);
    }
    let rows = &batch.rows[..batch.used];
    for (index, made) in batch.prepared[..batch.used].iter_mut().enumerate() {
        // The rows were written on this core a few batches ago, but by the time they come
        // back they are mostly out of its cache: the look at each row's title and human id
        // for the report was a tenth of this thread's time, waiting on two loads.
        if let Some(next) = rows.get(index + 1) {
            next.prefetch();
        }
        if visit(&rows[index], made)?.is_break() {
            return Ok(Visited::Stopped);
        }
    }
    if let Some(failed) = batch.failed.take() {
        return Err(failed);
    }
    match batch.end.take() {
        Some(end) => end.map(|()| Visited::Ended).map_err(|e| anyhow::anyhow!("{e}")),
        None => Ok(Visited::More),
    }
}

/// This thread's part of [`read_ahead`]: each batch's rows to `visit` in order, then the
/// batch back to the reader. `Break` from `visit` ends the reading there, and is returned.
fn hand_over(
    full: &Receiver<Batch>,
    empty: &SyncSender<Batch>,
    visit: &mut impl FnMut(&SourceRow, &mut ()) -> anyhow::Result<ControlFlow<()>>,
) -> anyhow::Result<ControlFlow<()>> {
    for mut batch in full.iter() {
        // Returning drops the channels, which stops the reader.
        match visit_batch(&mut batch, visit)? {
            Visited::More => {}
            Visited::Stopped => return Ok(ControlFlow::Break(())),
            Visited::Ended => return Ok(ControlFlow::Continue(())),
        }
        recycle(&mut batch);
        // The reader may have finished already; then the batch is simply dropped.
        let _ = empty.try_send(batch);
    }
    // The reader stopped without an end marker: it panicked, and the scope re-raises it.
    Ok(ControlFlow::Continue(()))
}

/// Runs `prepare` over a batch's rows; on a failure, the batch is cut before that row.
fn prepare_batch<P: Default>(batch: &mut Batch<P>, prepare: &mut impl FnMut(&SourceRow, &mut P) -> anyhow::Result<()>) {
    for index in 0..batch.used {
        if batch.prepared.len() == index {
            batch.prepared.push(P::default());
        }
        // The next row was written on the reading core, so every line of it is a miss
        // here: asked for now, it arrives while this row is validated.
        if let Some(next) = batch.rows[..batch.used].get(index + 1) {
            next.prefetch_all();
        }
        if let Err(e) = prepare(&batch.rows[index], &mut batch.prepared[index]) {
            batch.used = index;
            batch.failed = Some(e);
            return;
        }
    }
}

/// Hands every row of `source` (or only the cells at `columns`) to `visit`, in order, while a
/// second thread reads ahead. An error from the source ends the reading and is returned;
/// so is the first error from `visit`, which stops the reader. `visit` may also stop the
/// reading with `Break`, which is returned; `Continue` means every row was visited.
pub fn read_ahead(
    source: &mut dyn RowSource,
    columns: Option<&[usize]>,
    mut visit: impl FnMut(&SourceRow) -> anyhow::Result<ControlFlow<()>>,
) -> anyhow::Result<ControlFlow<()>> {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<Batch>(BATCHES_AHEAD);
        let batches = BATCHES_AHEAD + 2;
        let (empty_tx, empty_rx) = sync_channel::<Batch>(batches);
        scope.spawn(move || reader(source, columns, batches, &full_tx, &empty_rx));
        hand_over(&full_rx, &empty_tx, &mut |row, ()| visit(row))
    })
}

/// Drops the rows that grew too large to keep around, before the batch is filled again.
fn recycle<P>(batch: &mut Batch<P>) {
    // A row that grew large grew in this batch: only then is it worth looking.
    if batch.largest_row > KEEP_ROW_BYTES {
        // What was prepared goes with its row, and is made afresh for the rows kept.
        batch.prepared.clear();
        batch.rows.retain(|row| row.kept_bytes() <= KEEP_ROW_BYTES);
    }
}

/// Fills batches from `source` and sends them on `full`. It makes at most `batches` of
/// them, then waits for one to come back on `empty`: a batch made afresh allocates every
/// cell of its rows again, and one more than the way can hold is dropped on return.
fn reader<P>(
    source: &mut dyn RowSource,
    columns: Option<&[usize]>,
    batches: usize,
    full: &SyncSender<Batch<P>>,
    empty: &Receiver<Batch<P>>,
) {
    let mut made = 0;
    loop {
        let mut batch = match empty.try_recv() {
            Ok(batch) => batch,
            Err(_) if made < batches => {
                made += 1;
                Batch::default()
            }
            // Stopped waiting only when the consumer has stopped.
            Err(_) => match empty.recv() {
                Ok(batch) => batch,
                Err(_) => return,
            },
        };
        fill_batch(source, columns, &mut batch);
        let last = batch.end.is_some();
        // The consumer has stopped (its visitor failed): nothing more to read for.
        if full.send(batch).is_err() || last {
            return;
        }
    }
}

/// Reads the next rows into `batch` (only the cells at `columns`, if given), up to
/// [`BATCH_ROWS`] rows or [`BATCH_BYTES`] of text; marks the batch the last at the end of
/// the rows or at an error.
fn fill_batch<P>(source: &mut dyn RowSource, columns: Option<&[usize]>, batch: &mut Batch<P>) {
    let (mut used, mut bytes, mut largest_row) = (0, 0, 0);
    while used < BATCH_ROWS && bytes < BATCH_BYTES {
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
                let row_bytes = row.text_len();
                bytes += row_bytes;
                largest_row = largest_row.max(row_bytes);
                used += 1;
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
    batch.largest_row = largest_row;
    batch.used = used;
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

    /// What `read_prepared` handed over, when `prepare` writes `number * 10` over each
    /// row's place and fails at row `fail_at`.
    fn prepared(data: &[u8], fail_at: Option<usize>) -> (Vec<String>, anyhow::Result<()>) {
        let mut seen = Vec::new();
        let mut source = source(data);
        let prepare = |row: &SourceRow, made: &mut usize| {
            if Some(row.number) == fail_at {
                anyhow::bail!("cannot prepare row {}", row.number);
            }
            *made = row.number * 10;
            Ok(())
        };
        let result = read_prepared(source.as_mut(), prepare, |row, made| {
            seen.push(format!("row {} made {made}", row.number));
            Ok(())
        });
        (seen, result)
    }

    #[test]
    fn prepared_rows_keep_their_order_and_their_own_results_across_batches() {
        // Enough batches that the places in them are reused several times over.
        let rows = 5 * BATCH_ROWS + 3;
        let (seen, result) = prepared(&csv(rows, &[2, BATCH_ROWS + 1, rows]), None);
        result.unwrap_or_else(|e| panic!("{e}"));
        let want: Vec<String> = (1..=rows)
            .map(|n| format!("row {} made {}", n + 1, (n + 1) * 10))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_failure_to_prepare_ends_the_reading_at_that_row() {
        let fail_at = 2 * BATCH_ROWS + 5;
        let (seen, result) = prepared(&csv(6 * BATCH_ROWS, &[]), Some(fail_at));
        let error = result.expect_err("preparing failed").to_string();
        assert_eq!(error, format!("cannot prepare row {fail_at}"));
        // Row numbers start at 2, after the header: every row before the failed one.
        assert_eq!(seen.len(), fail_at - 2);
        assert_eq!(
            seen.last().map(String::as_str),
            Some(format!("row {} made {}", fail_at - 1, (fail_at - 1) * 10).as_str())
        );
    }

    #[test]
    fn a_source_error_ends_the_prepared_reading_after_the_rows_before_it() {
        // More batches than there are, so the error comes in a batch used again.
        let rows = (PREPARED_BATCHES + 1) * BATCH_ROWS + 3;
        let mut data = csv(rows, &[]);
        data.extend_from_slice(b"bad \xff\xfe,1\n");
        let (seen, result) = prepared(&data, None);
        let error = result.expect_err("not UTF-8").to_string();
        assert!(error.contains("UTF-8"), "{error}");
        assert_eq!(seen.len(), rows, "every row before the bad one");
        assert_eq!(seen.last(), Some(&format!("row {} made {}", rows + 1, (rows + 1) * 10)));
    }

    #[test]
    fn a_file_without_rows_prepares_and_visits_nothing() {
        let (seen, result) = prepared(b"Title,N\n", None);
        result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen, Vec::<String>::new());
    }

    #[test]
    fn a_failing_visitor_stops_every_stage() {
        let mut source = source(&csv(20 * BATCH_ROWS, &[]));
        let mut visits = 0;
        let prepare = |_: &SourceRow, made: &mut u8| {
            *made = 1;
            Ok(())
        };
        let result = read_prepared(source.as_mut(), prepare, |_, _| failing_on_the_tenth(&mut visits));
        assert_eq!(result.expect_err("the visitor failed").to_string(), "disk full");
        assert_eq!(visits, 10);
    }

    #[test]
    fn a_row_that_grew_large_is_not_kept_for_reuse() {
        let mut batch: Batch = Batch::default();
        let small = SourceRow::new(2, &[Cell::Text("a")]);
        let large = SourceRow::new(3, &[Cell::Text(&"x".repeat(KEEP_ROW_BYTES + 1))]);
        batch.rows = vec![small.clone(), large];
        batch.largest_row = KEEP_ROW_BYTES + 1;
        recycle(&mut batch);
        assert_eq!(batch.rows, [small]);
    }
}
