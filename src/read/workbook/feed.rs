//! The reading thread: it opens the workbook, finds the sheet and its header row, and
//! sends the sheet's rows in order, each as the cells it holds, in batches over a short
//! channel. XLSX and XLSB come from calamine's cell readers one cell at a time, so what is
//! held is a few batches of rows, whatever the sheet's size or the distance between its
//! cells; XLS and ODS come from the range calamine read whole (within [`MAX_CELLS`]).
//!
//! A thread of its own lets the reader borrow the workbook it reads (calamine's cell
//! readers do) and lets the other side bound the wait for it ([`watchdog`]). The thread
//! keeps the workbook open for another reading ([`Feed::restart`]): the sheet is read
//! again, but the shared strings table is not.
//!
//! [`MAX_CELLS`]: super::book::MAX_CELLS

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::Duration;

use calamine::{Data, DataRef, Dimensions, Range, Reader, Sheets};

use super::Kind;
use super::book::{self, Blame, Table, Wanted};
use super::value::is_blank;
use super::watchdog::{self, Counted, Progress, Silence};
use crate::read::{Input, SharedBytes, SourceError};

/// Rows a batch holds at most, and the text it holds before it is sent early.
const BATCH_ROWS: usize = 256;
const BATCH_BYTES: usize = 1 << 20;
/// Batches waiting in the channel.
const BATCHES_AHEAD: usize = 2;

/// What a reading thread is to do.
#[derive(Clone)]
pub(super) struct Plan {
    pub(super) input: Input,
    pub(super) kind: Kind,
    pub(super) sheet: Option<String>,
    pub(super) find_table: bool,
    pub(super) title_headers: Vec<String>,
    /// Cells right of this many columns are not kept (a row still says how wide it was).
    pub(super) max_columns: usize,
    /// How long the reading may go without progress.
    pub(super) stall: Duration,
}

/// The first message: where the table is, and what the sheet says of its size.
pub(super) struct Opened {
    pub(super) table: Table,
    pub(super) merged: Vec<Dimensions>,
    pub(super) width: Width,
}

/// How wide the sheet is, before its rows are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Width {
    /// Columns up to the last value of any row: calamine read the sheet whole.
    Exact(usize),
    /// What the sheet's own dimension record claims: a hint, as a file may say anything.
    Declared(usize),
}

/// One sheet row that holds a value: its 0-based index, and its cells by column (no
/// empty ones, none right of the plan's `max_columns`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SheetRow {
    pub(super) index: u32,
    pub(super) cells: Vec<(u32, Data)>,
    /// One past its last value's column, counting the values not kept.
    pub(super) width: u32,
    text_bytes: usize,
}

impl SheetRow {
    fn new(index: u32) -> SheetRow {
        SheetRow {
            index,
            cells: Vec::new(),
            width: 0,
            text_bytes: 0,
        }
    }

    /// A row holding `cells`, as the reading thread would send it (for tests).
    #[cfg(test)]
    pub(super) fn of(index: u32, cells: Vec<(u32, Data)>) -> SheetRow {
        let mut row = SheetRow::new(index);
        for (column, data) in cells {
            row.add(column, data, usize::MAX);
        }
        row.settle();
        row
    }

    /// Whether some value is more than white space.
    pub(super) fn is_filled(&self) -> bool {
        self.cells.iter().any(|(_, data)| !is_blank(data))
    }

    fn add(&mut self, column: u32, data: Data, max_columns: usize) {
        self.width = self.width.max(column.saturating_add(1));
        if column as usize >= max_columns {
            return;
        }
        if let Data::String(s) = &data {
            self.text_bytes += s.len();
        }
        self.cells.push((column, data));
        // A hostile row may name one cell again and again: keep it bounded.
        if self.cells.len() > max_columns.saturating_mul(2).max(64) {
            self.settle();
        }
    }

    /// Puts the cells in column order, the last of a column's values winning (as in
    /// calamine's own ranges).
    fn settle(&mut self) {
        if self.cells.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            return;
        }
        self.cells.sort_by_key(|(column, _)| *column);
        self.cells.reverse();
        self.cells.dedup_by_key(|(column, _)| *column);
        self.cells.reverse();
    }
}

enum Message {
    Opened(Box<Opened>),
    Rows(Vec<SheetRow>),
    End,
    Failed(SourceError),
}

/// Read the sheet again, from row `from_row` (0-based), into `tx`.
struct Restart {
    tx: SyncSender<Message>,
    from_row: u32,
}

/// The receiving side: the rows of one reading, in order.
pub(super) struct Feed {
    name: String,
    rx: Receiver<Message>,
    restarts: Sender<Restart>,
    rows: std::vec::IntoIter<SheetRow>,
    ended: bool,
    progress: Arc<Progress>,
    stall: Duration,
}

/// A source of bytes the reading thread can own.
pub(super) trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

type Opener = Box<dyn FnOnce(&Arc<Progress>) -> Result<Box<dyn ReadSeek>, SourceError> + Send>;

impl Feed {
    /// Starts a reading thread on the plan's input.
    pub(super) fn start(plan: &Plan) -> Result<Feed, SourceError> {
        let input = plan.input.clone();
        Feed::start_with(plan, Box::new(move |progress| open_input(&input, progress)))
    }

    /// Starts a reading thread on what `open` gives.
    pub(super) fn start_with(plan: &Plan, open: Opener) -> Result<Feed, SourceError> {
        let name = plan.input.display_name();
        let (tx, rx) = sync_channel(BATCHES_AHEAD);
        let (restarts, restart) = channel();
        let progress = Arc::new(Progress::default());
        let out = Out {
            tx,
            batch: Vec::new(),
            batch_bytes: 0,
            progress: Arc::clone(&progress),
        };
        let work = plan.clone();
        std::thread::Builder::new()
            .name("workbook".to_owned())
            .spawn(move || out.run(&work, open, &restart))
            .map_err(|e| SourceError::Workbook {
                name: name.clone(),
                detail: format!("cannot start its reading thread: {e}"),
            })?;
        Ok(Feed {
            name,
            rx,
            restarts,
            rows: Vec::new().into_iter(),
            ended: false,
            progress,
            stall: plan.stall,
        })
    }

    /// Reads the sheet again from row `from_row` (0-based), with the workbook the thread
    /// has open. A reading under way stops at its next send.
    pub(super) fn restart(&mut self, from_row: u32) -> Result<(), SourceError> {
        let (tx, rx) = sync_channel(BATCHES_AHEAD);
        self.rx = rx;
        self.rows = Vec::new().into_iter();
        self.ended = false;
        match self.restarts.send(Restart { tx, from_row }) {
            Ok(()) => Ok(()),
            // The thread ended with an error already told.
            Err(_) => Err(self.end_with(reader_failed(&self.name))),
        }
    }

    /// Where the table is: the first message.
    pub(super) fn opened(&mut self) -> Result<Opened, SourceError> {
        match self.receive()? {
            Message::Opened(opened) => Ok(*opened),
            Message::Failed(err) => Err(self.end_with(err)),
            Message::Rows(_) | Message::End => Err(self.end_with(reader_failed(&self.name))),
        }
    }

    /// The next sheet row that holds a value; `None` after the last. An error ends the rows.
    pub(super) fn next(&mut self) -> Result<Option<SheetRow>, SourceError> {
        loop {
            if let Some(row) = self.rows.next() {
                return Ok(Some(row));
            }
            if self.ended {
                return Ok(None);
            }
            match self.receive()? {
                Message::Rows(rows) => self.rows = rows.into_iter(),
                Message::End => self.ended = true,
                Message::Failed(err) => return Err(self.end_with(err)),
                Message::Opened(_) => return Err(self.end_with(reader_failed(&self.name))),
            }
        }
    }

    fn receive(&mut self) -> Result<Message, SourceError> {
        watchdog::receive(&self.rx, &self.progress, self.stall).map_err(|silence| {
            let err = match silence {
                Silence::Stalled => SourceError::ReadStalled {
                    name: self.name.clone(),
                    seconds: self.stall.as_secs_f64(),
                },
                Silence::Gone => reader_failed(&self.name),
            };
            self.end_with(err)
        })
    }

    fn end_with(&mut self, err: SourceError) -> SourceError {
        self.ended = true;
        self.rows = Vec::new().into_iter();
        err
    }
}

fn reader_failed(name: &str) -> SourceError {
    SourceError::Workbook {
        name: name.to_owned(),
        detail: "the workbook reader failed on its contents".to_owned(),
    }
}

/// The file, or the bytes of standard input, with every read counted as progress.
fn open_input(input: &Input, progress: &Arc<Progress>) -> Result<Box<dyn ReadSeek>, SourceError> {
    match input {
        Input::File(path) => {
            let file = File::open(path).map_err(|source| SourceError::Open {
                name: input.display_name(),
                source,
            })?;
            Ok(Box::new(BufReader::new(Counted::new(file, Arc::clone(progress)))))
        }
        Input::Bytes { data, .. } => Ok(Box::new(Counted::new(
            Cursor::new(SharedBytes(Arc::clone(data))),
            Arc::clone(progress),
        ))),
    }
}

/// Why the reading thread stopped early.
enum Stop {
    /// The other side no longer listens.
    Gone,
    Failed(SourceError),
}

impl From<SourceError> for Stop {
    fn from(err: SourceError) -> Self {
        Stop::Failed(err)
    }
}

/// The sending side, with the batch being filled.
struct Out {
    tx: SyncSender<Message>,
    batch: Vec<SheetRow>,
    batch_bytes: usize,
    progress: Arc<Progress>,
}

/// The workbook the thread has open, and where its table is.
struct Reading {
    book: Sheets<Box<dyn ReadSeek>>,
    blame: Blame,
    sheet: String,
    /// Sent once, before the first reading's rows.
    opened: Option<Opened>,
}

impl Out {
    /// The thread's whole work: the first reading, then one for each restart, each ended
    /// with its last word. calamine parses untrusted bytes; a panic on a hostile file
    /// becomes an error naming the file, and ends the thread.
    fn run(mut self, plan: &Plan, open: Opener, restarts: &Receiver<Restart>) {
        let name = plan.input.display_name();
        let mut reading = match catch_unwind(AssertUnwindSafe(|| self.open(plan, open))) {
            Ok(Ok(reading)) => reading,
            Ok(Err(stop)) => return self.stop(stop),
            Err(_) => return self.stop(Stop::Failed(reader_failed(&name))),
        };
        let mut from_row = 0;
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.pass(&mut reading, plan, from_row))) {
                Ok(Ok(())) => {
                    if self.flush().is_ok() {
                        let _ = self.tx.send(Message::End);
                    }
                }
                // Nobody listens to this reading any more: wait for the next.
                Ok(Err(Stop::Gone)) => {}
                Ok(Err(stop)) => return self.stop(stop),
                Err(_) => return self.stop(Stop::Failed(reader_failed(&name))),
            }
            let Ok(restart) = restarts.recv() else {
                return;
            };
            (self.tx, from_row) = (restart.tx, restart.from_row);
            self.batch.clear();
            self.batch_bytes = 0;
        }
    }

    /// A reading that failed: the rows before the failure go first, then the error.
    fn stop(&mut self, stop: Stop) {
        if let Stop::Failed(err) = stop
            && self.flush().is_ok()
        {
            let _ = self.tx.send(Message::Failed(err));
        }
    }

    /// Opens the workbook and finds the table, and its merged regions.
    fn open(&mut self, plan: &Plan, open: Opener) -> Result<Reading, Stop> {
        let name = plan.input.display_name();
        let reader = open(&self.progress)?;
        let (mut book, blame) = book::open(reader, plan.kind, &name)?;
        let wanted = Wanted {
            sheet: plan.sheet.as_deref(),
            find_table: plan.find_table,
            titles: &plan.title_headers,
        };
        let table = book::locate(&mut book, &wanted, &name)?;
        let sheet = table.sheet.clone();
        let merged = book::merged(&mut book, &sheet);
        let opened = Opened {
            table,
            merged,
            width: Width::Declared(0),
        };
        Ok(Reading {
            book,
            blame,
            sheet,
            opened: Some(opened),
        })
    }

    /// One reading of the sheet, from row `from_row`.
    fn pass(&mut self, reading: &mut Reading, plan: &Plan, from_row: u32) -> Result<(), Stop> {
        let Reading {
            book,
            blame,
            sheet,
            opened,
        } = reading;
        let mut rows = Rows::new(plan, from_row, sheet);
        match book {
            Sheets::Xlsx(xlsx) => match xlsx.worksheet_cells_reader(sheet) {
                Ok(mut cells) => {
                    self.opened(opened, declared(cells.dimensions()))?;
                    self.stream(|| cells.next_cell(), &mut rows, blame)
                }
                // A chart sheet, as calamine's own `worksheet_range` treats it.
                Err(calamine::XlsxError::NotAWorksheet(_)) => self.opened(opened, Width::Declared(0)),
                Err(e) => Err(blame.error(e.into()).into()),
            },
            Sheets::Xlsb(xlsb) => {
                let mut cells = xlsb.worksheet_cells_reader(sheet).map_err(|e| blame.error(e.into()))?;
                self.opened(opened, declared(cells.dimensions()))?;
                self.stream(|| cells.next_cell(), &mut rows, blame)
            }
            whole => {
                let range = whole.worksheet_range(sheet).map_err(|e| blame.error(e))?;
                let width = Width::Exact(range.end().map_or(0, |(_, right)| right as usize + 1));
                self.opened(opened, width)?;
                self.send_range(&range, &mut rows)
            }
        }
    }

    /// Sends where the table is, with the sheet's width, before the first reading's rows.
    fn opened(&self, opened: &mut Option<Opened>, width: Width) -> Result<(), Stop> {
        match opened.take() {
            Some(opened) => self.send(Message::Opened(Box::new(Opened { width, ..opened }))),
            None => Ok(()),
        }
    }

    /// Every cell from a cell reader, grouped into rows.
    fn stream<'a, E: Into<calamine::Error>>(
        &mut self,
        mut next: impl FnMut() -> Result<Option<calamine::Cell<DataRef<'a>>>, E>,
        rows: &mut Rows,
        blame: &Blame,
    ) -> Result<(), Stop> {
        while let Some(cell) = next().map_err(|e| blame.error(e.into()))? {
            self.progress.tick();
            if matches!(cell.get_value(), DataRef::Empty) {
                continue;
            }
            let (row, column) = cell.get_position();
            if let Some(done) = rows.add(row, column, Data::from(cell.get_value().clone()))? {
                self.row(done)?;
            }
        }
        match rows.finish() {
            Some(done) => self.row(done),
            None => Ok(()),
        }
    }

    /// Every row of a range read whole.
    fn send_range(&mut self, range: &Range<Data>, rows: &mut Rows) -> Result<(), Stop> {
        let Some((top, left)) = range.start() else {
            return Ok(());
        };
        for (offset, cells) in (0u32..).zip(range.rows()) {
            self.progress.tick();
            for (column, data) in (left..).zip(cells) {
                if !matches!(data, Data::Empty)
                    && let Some(done) = rows.add(top + offset, column, data.clone())?
                {
                    self.row(done)?;
                }
            }
        }
        match rows.finish() {
            Some(done) => self.row(done),
            None => Ok(()),
        }
    }

    fn row(&mut self, row: SheetRow) -> Result<(), Stop> {
        self.batch_bytes += row.text_bytes;
        self.batch.push(row);
        if self.batch.len() >= BATCH_ROWS || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batch_bytes = 0;
        let rows = std::mem::take(&mut self.batch);
        self.send(Message::Rows(rows))
    }

    fn send(&self, message: Message) -> Result<(), Stop> {
        self.tx.send(message).map_err(|_| Stop::Gone)
    }
}

fn declared(dimensions: Dimensions) -> Width {
    Width::Declared(dimensions.end.1 as usize + 1)
}

/// Cells, in sheet order, into rows: the row being filled, and where rows start being
/// sent.
struct Rows {
    current: Option<SheetRow>,
    from_row: u32,
    max_columns: usize,
    name: String,
    sheet: String,
}

impl Rows {
    fn new(plan: &Plan, from_row: u32, sheet: &str) -> Rows {
        Rows {
            current: None,
            from_row,
            max_columns: plan.max_columns,
            name: plan.input.display_name(),
            sheet: sheet.to_owned(),
        }
    }

    /// Adds one cell; gives back the row before it when the cell starts a new one. A cell
    /// of a row above the current one is an error: rows are never held back to be sorted.
    fn add(&mut self, index: u32, column: u32, data: Data) -> Result<Option<SheetRow>, SourceError> {
        let done = match &mut self.current {
            Some(row) if row.index == index => None,
            Some(row) if index < row.index => {
                return Err(SourceError::RowsOutOfOrder {
                    name: self.name.clone(),
                    sheet: self.sheet.clone(),
                    row: index as usize + 1,
                    after: row.index as usize + 1,
                });
            }
            _ => self.current.replace(SheetRow::new(index)),
        };
        if let Some(row) = &mut self.current {
            row.add(column, data, self.max_columns);
        }
        Ok(done.and_then(|row| self.ready(row)))
    }

    fn finish(&mut self) -> Option<SheetRow> {
        self.current.take().and_then(|row| self.ready(row))
    }

    fn ready(&self, mut row: SheetRow) -> Option<SheetRow> {
        row.settle();
        (row.index >= self.from_row).then_some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            input: Input::File("runs.xlsx".into()),
            kind: Kind::Xlsx,
            sheet: None,
            find_table: false,
            title_headers: Vec::new(),
            max_columns: 3,
            stall: Duration::from_secs(60),
        }
    }

    #[test]
    fn cells_group_into_rows_in_column_order_the_last_value_winning() {
        let mut rows = Rows::new(&plan(), 1, "Runs");
        let text = |s: &str| Data::String(s.to_owned());
        let mut done = Vec::new();
        for (index, column, data) in [
            (0, 0, text("above")),
            (2, 1, text("b")),
            (2, 0, text("a")),
            (2, 1, text("B")),
            (2, 7, text("far right")),
            (1_048_575, 0, Data::Int(1)),
        ] {
            done.extend(rows.add(index, column, data).unwrap());
        }
        done.extend(rows.finish());
        assert_eq!(
            done,
            [
                SheetRow {
                    index: 2,
                    cells: vec![(0, text("a")), (1, text("B"))],
                    width: 8,
                    text_bytes: 3,
                },
                SheetRow::of(1_048_575, vec![(0, Data::Int(1))]),
            ],
            "row 1 is above `from_row`; H3 is past `max_columns` but widens its row"
        );
    }

    #[test]
    fn a_row_above_the_current_one_is_an_error_naming_both() {
        let mut rows = Rows::new(&plan(), 1, "Runs");
        rows.add(8, 0, Data::Int(1)).unwrap();
        let err = rows.add(4, 0, Data::Int(2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "runs.xlsx: sheet `Runs` has a cell of row 5 after row 9: its rows are out of order, which Excel and LibreOffice never write; open it in Excel or LibreOffice and save a fresh copy"
        );
    }

    #[test]
    fn one_cell_named_again_and_again_stays_one_cell() {
        let mut row = SheetRow::new(0);
        for n in 0..10_000 {
            row.add(1, Data::Int(n), 3);
        }
        row.settle();
        assert_eq!(row.cells, [(1, Data::Int(9_999))]);
    }

    /// A workbook of `rows` rows, in memory.
    fn workbook(rows: u32) -> Vec<u8> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "Title").unwrap();
        for row in 1..=rows {
            sheet.write_string(row, 0, format!("Run {row}")).unwrap();
        }
        workbook.save_to_buffer().unwrap()
    }

    /// Gives `step` bytes a read, `pause` after each: slow, but always moving.
    struct Slow {
        bytes: Cursor<Vec<u8>>,
        step: usize,
        pause: Duration,
    }

    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.pause);
            let step = buf.len().min(self.step);
            self.bytes.read(&mut buf[..step])
        }
    }

    impl Seek for Slow {
        fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
            self.bytes.seek(pos)
        }
    }

    /// Never gives a byte, until the test that made it ends.
    struct Stuck(Receiver<()>);

    impl Read for Stuck {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Err(std::io::Error::other("released"))
        }
    }

    impl Seek for Stuck {
        fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
            Ok(0)
        }
    }

    fn streaming(stall: Duration) -> Plan {
        Plan {
            max_columns: 1000,
            stall,
            ..plan()
        }
    }

    #[test]
    fn a_reader_that_stops_moving_is_stopped_naming_the_file() {
        let (release, stuck) = sync_channel(0);
        let plan = streaming(Duration::from_millis(100));
        let mut feed = Feed::start_with(&plan, Box::new(move |_| Ok(Box::new(Stuck(stuck))))).unwrap();
        let err = feed.opened().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "runs.xlsx: reading the workbook made no progress for 0.1 seconds, so it was stopped; the file may be damaged or built to keep a reader busy: open it in Excel or LibreOffice and save a fresh copy"
            )
        );
        drop(release);
    }

    #[test]
    fn a_slow_reader_that_keeps_moving_is_waited_for() {
        let bytes = workbook(300);
        let plan = streaming(Duration::from_millis(250));
        let open: Opener = Box::new(move |progress| {
            let slow = Slow {
                bytes: Cursor::new(bytes),
                step: 512,
                pause: Duration::from_millis(10),
            };
            Ok(Box::new(Counted::new(slow, Arc::clone(progress))))
        });
        let mut feed = Feed::start_with(&plan, open).unwrap();
        assert_eq!(feed.opened().unwrap().table.sheet, "Sheet1");
        let mut rows = Vec::new();
        while let Some(row) = feed.next().unwrap() {
            rows.push(row);
        }
        assert_eq!(rows.len(), 301);
        assert_eq!(rows[300], SheetRow::of(300, vec![(0, Data::String("Run 300".into()))]));
    }
}
