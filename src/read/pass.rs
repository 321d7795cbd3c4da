//! A pass over a source's rows: in turn on this thread ([`read_each`]), or read here and
//! prepared on a second thread ([`read_prepared`]), which is how the validate stage
//! reads a file.

use std::ops::ControlFlow;
use std::sync::mpsc::sync_channel;

use anyhow::anyhow;

use super::{RowSource, SourceError};
use crate::read::row::SourceRow;

/// Rows per batch: enough to make the hand-over cheap, few enough that the rows in
/// flight stay in the cores' caches (64 and 256 rows were no faster than 128).
const BATCH_ROWS: usize = 128;
/// A batch is handed over early once its cells hold this much text, so a file of huge
/// cells does not keep hundreds of them in flight.
const BATCH_BYTES: usize = 1 << 20;
/// Batches going round: one being read or visited, the others being prepared or waiting.
const BATCHES: usize = 4;
/// A batch that held a row larger than this lets go of its large rows, and of what was
/// made of every row, rather than keep them for the next rows it holds.
const KEEP_ROW_BYTES: usize = 64 << 10;

/// Hands every row of `source` (or only the cells at `columns`) to `visit`, in order, on
/// this thread. An error from the source ends the reading and is returned; so is the
/// first error from `visit`. `visit` may stop the reading with `Break`, which is
/// returned; `Continue` means every row was visited.
pub(crate) fn read_each(
    source: &mut dyn RowSource,
    columns: Option<&[usize]>,
    mut visit: impl FnMut(&SourceRow) -> anyhow::Result<ControlFlow<()>>,
) -> anyhow::Result<ControlFlow<()>> {
    let mut row = SourceRow::default();
    loop {
        let more = match columns {
            Some(columns) => source.next_row_columns(&mut row, columns),
            None => source.next_row(&mut row),
        };
        if !more.map_err(|e| anyhow!("{e}"))? {
            return Ok(ControlFlow::Continue(()));
        }
        if visit(&row)?.is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
}

/// Rows read in a row, what was made of each, and how the reading ended, if it did.
struct Batch<P> {
    /// The first `used` are this batch's rows; the others are kept to be read into.
    rows: Vec<SourceRow>,
    used: usize,
    /// What was made of each row, by its place in `rows`.
    prepared: Vec<P>,
    /// The most text one of its rows holds, in bytes.
    largest_row: usize,
    /// Set on the last batch: the end of the rows, or the error that ended them.
    end: Option<Result<(), SourceError>>,
    /// Set when preparing a row failed: the batch ends before that row, and so do the rows.
    failed: Option<anyhow::Error>,
}

impl<P> Default for Batch<P> {
    fn default() -> Self {
        Batch {
            rows: Vec::new(),
            used: 0,
            prepared: Vec::new(),
            largest_row: 0,
            end: None,
            failed: None,
        }
    }
}

/// Every row of `source`, in file order: `prepare` fills each row's `P` on a second
/// thread (a `P` made for an earlier row: it must write over all of it), and `visit`
/// then gets the row and its `P` on this thread. The first error from the source or
/// either closure ends the reading and is returned, after the rows before it.
///
/// This thread reads the rows and visits them; the other prepares them. Reading and
/// visiting are each about half the work of validating a row, so the two threads are
/// about evenly loaded on two cores. Batches go round between the two, and are read
/// into again, so that what was made of a row (a request's strings) is written over by
/// the next row in its place rather than made again.
pub(crate) fn read_prepared<P: Default + Send>(
    source: &mut dyn RowSource,
    mut prepare: impl FnMut(&SourceRow, &mut P) -> anyhow::Result<()> + Send,
    mut visit: impl FnMut(&SourceRow, &mut P) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        // Every batch there is fits in either channel, so sending never waits.
        let (to_prepare, unprepared) = sync_channel::<Batch<P>>(BATCHES);
        let (to_visit, prepared) = sync_channel::<Batch<P>>(BATCHES);
        scope.spawn(move || {
            for mut batch in unprepared {
                prepare_batch(&mut batch, &mut prepare);
                let last = batch.failed.is_some() || batch.end.is_some();
                if to_visit.send(batch).is_err() || last {
                    return;
                }
            }
        });
        let mut empty: Vec<Batch<P>> = (0..BATCHES).map(|_| Batch::default()).collect();
        let mut reading = true;
        loop {
            // Reading while there is a batch to read into keeps the other thread busy.
            if reading && let Some(mut batch) = empty.pop() {
                fill_batch(source, &mut batch);
                reading = batch.end.is_none();
                // A failed send: the other thread has stopped, after a batch whose
                // preparing failed (still to be visited) or in a panic (raised again by
                // the scope).
                reading &= to_prepare.send(batch).is_ok();
                continue;
            }
            // Returning drops the channels, which stops the other thread.
            let Ok(mut batch) = prepared.recv() else {
                return Ok(());
            };
            if visit_batch(&mut batch, &mut visit)?.is_break() {
                return Ok(());
            }
            keep_small(&mut batch);
            empty.push(batch);
        }
    })
}

/// Reads the next rows into `batch`, up to [`BATCH_ROWS`] rows or [`BATCH_BYTES`] of
/// text; marks it the last at the end of the rows or at an error.
fn fill_batch<P>(source: &mut dyn RowSource, batch: &mut Batch<P>) {
    let (mut used, mut bytes, mut largest_row) = (0, 0, 0);
    while used < BATCH_ROWS && bytes < BATCH_BYTES {
        if used == batch.rows.len() {
            batch.rows.push(SourceRow::default());
        }
        let row = &mut batch.rows[used];
        match source.next_row(row) {
            Ok(true) => {
                bytes += row.text_len();
                largest_row = largest_row.max(row.text_len());
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
    (batch.used, batch.largest_row) = (used, largest_row);
}

/// Runs `prepare` over a batch's rows; on a failure, the batch is cut before that row.
fn prepare_batch<P: Default>(batch: &mut Batch<P>, prepare: &mut impl FnMut(&SourceRow, &mut P) -> anyhow::Result<()>) {
    if batch.prepared.len() < batch.used {
        batch.prepared.resize_with(batch.used, P::default);
    }
    for index in 0..batch.used {
        if let Err(e) = prepare(&batch.rows[index], &mut batch.prepared[index]) {
            batch.used = index;
            batch.failed = Some(e);
            return;
        }
    }
}

/// Hands a batch's rows, with what was made of them, to `visit` in order; then the error
/// that ended the reading, if one did. `Break` after the last batch.
fn visit_batch<P>(
    batch: &mut Batch<P>,
    visit: &mut impl FnMut(&SourceRow, &mut P) -> anyhow::Result<()>,
) -> anyhow::Result<ControlFlow<()>> {
    for (row, made) in batch.rows[..batch.used].iter().zip(&mut batch.prepared) {
        visit(row, made)?;
    }
    if let Some(failed) = batch.failed.take() {
        return Err(failed);
    }
    match batch.end.take() {
        Some(end) => end.map(ControlFlow::Break).map_err(|e| anyhow!("{e}")),
        None => Ok(ControlFlow::Continue(())),
    }
}

/// Lets go of the rows that grew large, and of what was made of every row, before the
/// batch is read into again.
fn keep_small<P>(batch: &mut Batch<P>) {
    // A row that grew large grew in this batch: only then is it worth looking.
    if batch.largest_row > KEEP_ROW_BYTES {
        batch.prepared.clear();
        batch.rows.retain(|row| row.kept_bytes() <= KEEP_ROW_BYTES);
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

    /// What `read_each` handed over, as `row N [cells]` lines.
    fn visited(data: &[u8], columns: Option<&[usize]>) -> (Vec<String>, anyhow::Result<()>) {
        let mut seen = Vec::new();
        let mut source = source(data);
        let result = read_each(source.as_mut(), columns, |row| {
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
    fn rows_arrive_in_file_order_shifted_ones_too() {
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
    fn a_failing_visitor_stops_the_reading_and_its_error_is_returned() {
        let mut source = source(&csv(20 * BATCH_ROWS, &[]));
        let mut visits = 0;
        let result = read_each(source.as_mut(), None, |_| {
            failing_on_the_tenth(&mut visits).map(|()| ControlFlow::Continue(()))
        });
        assert_eq!(result.expect_err("the visitor failed").to_string(), "disk full");
        assert_eq!(visits, 10);
    }

    #[test]
    fn a_visitor_that_breaks_stops_the_reading_there() {
        let mut source = source(&csv(20 * BATCH_ROWS, &[]));
        let mut visits = 0;
        let result = read_each(source.as_mut(), None, |row| {
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
        let rows = (BATCHES + 1) * BATCH_ROWS + 3;
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
    fn a_batch_lets_go_of_a_row_that_grew_large() {
        let mut batch: Batch<()> = Batch::default();
        let small = SourceRow::new(2, &[Cell::Text("a")]);
        let large = SourceRow::new(3, &[Cell::Text(&"x".repeat(KEEP_ROW_BYTES + 1))]);
        batch.rows = vec![small.clone(), large];
        batch.largest_row = KEEP_ROW_BYTES + 1;
        keep_small(&mut batch);
        assert_eq!(batch.rows, [small]);
    }
}
