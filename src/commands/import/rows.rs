//! Where an import keeps its rows while it runs: every row's report line, request and
//! cells in a temporary file, and in memory only each row's outcome and where its latest
//! record is (about 14 bytes a row), so a million-row migration runs in flat memory.
//!
//! Records are JSON lines, appended: a row changed is written again and its place moved,
//! so what was read once is never read wrong. The file has no name once opened (Unix), or
//! is deleted when the run ends (Windows).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};

use serde::{Deserialize, Serialize};

use crate::report::{Outcome, ReportRow};
use crate::request::PlannedRow;

/// One row of the input as the run knows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RowRecord {
    pub report: ReportRow,
    /// The row's request, while the row is valid.
    pub planned: Option<PlannedRow>,
    /// The row's cells as text, for the failed-rows file.
    pub cells: Vec<String>,
}

/// A [`RowRecord`] borrowed, to keep it without copying.
#[derive(Serialize)]
pub(crate) struct RowParts<'a> {
    pub report: &'a ReportRow,
    pub planned: Option<&'a PlannedRow>,
    pub cells: &'a [String],
}

/// Every row of the run, by report index (input order).
pub(crate) struct Rows {
    /// Deletes the file when the run ends, where the name must outlive the opens (Windows).
    _file: Option<tempfile::NamedTempFile>,
    /// The writer and the reader are two opens of the file, each with its own position.
    writer: BufWriter<File>,
    reader: BufReader<File>,
    /// The end of the file: where the next record goes.
    end: u64,
    /// Where the reader stands.
    read_at: u64,
    /// Each row's latest record: offset and length.
    at: Vec<(u64, u32)>,
    outcome: Vec<Outcome>,
    /// Whether the row has a request (valid, and not made invalid since).
    planned: Vec<bool>,
    line: Vec<u8>,
}

/// An error of the run's temporary file (a full disk), with what was being done.
fn store_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("the run's temporary file of rows: {e}"))
}

impl Rows {
    /// A new, empty store in the system's temporary directory.
    pub(crate) fn new() -> io::Result<Rows> {
        let file = tempfile::NamedTempFile::new().map_err(store_error)?;
        let reader = BufReader::with_capacity(64 << 10, file.reopen().map_err(store_error)?);
        let writer = BufWriter::with_capacity(64 << 10, file.reopen().map_err(store_error)?);
        // On Unix the name goes at once: the opens keep the file, which the OS deletes when
        // they close, so a killed process leaves nothing behind.
        #[cfg(unix)]
        let file = {
            file.close().map_err(store_error)?;
            None
        };
        #[cfg(not(unix))]
        let file = Some(file);
        Ok(Rows {
            _file: file,
            writer,
            reader,
            end: 0,
            read_at: 0,
            at: Vec::new(),
            outcome: Vec::new(),
            planned: Vec::new(),
            line: Vec::with_capacity(1024),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.at.len()
    }

    pub(crate) fn outcome(&self, index: usize) -> Outcome {
        self.outcome[index]
    }

    /// Every row's outcome, in input order.
    pub(crate) fn outcomes(&self) -> &[Outcome] {
        &self.outcome
    }

    /// Whether the row at `index` has a request.
    pub(crate) fn is_planned(&self, index: usize) -> bool {
        self.planned[index]
    }

    /// The indexes of the rows with a request, in input order.
    pub(crate) fn planned_indexes(&self) -> Vec<usize> {
        (0..self.len()).filter(|i| self.planned[*i]).collect()
    }

    /// Adds the next row; returns its index.
    #[cfg(test)]
    pub(crate) fn push(&mut self, record: &RowRecord) -> io::Result<usize> {
        self.push_parts(&RowParts {
            report: &record.report,
            planned: record.planned.as_ref(),
            cells: &record.cells,
        })
    }

    /// [`Rows::push`], from its parts.
    pub(crate) fn push_parts(&mut self, record: &RowParts<'_>) -> io::Result<usize> {
        let place = self.write(record)?;
        self.at.push(place);
        self.outcome.push(record.report.outcome);
        self.planned.push(record.planned.is_some());
        Ok(self.at.len() - 1)
    }

    /// Replaces the row at `index`.
    pub(crate) fn put(&mut self, index: usize, record: &RowRecord) -> io::Result<()> {
        let place = self.write(record)?;
        self.at[index] = place;
        self.outcome[index] = record.report.outcome;
        self.planned[index] = record.planned.is_some();
        Ok(())
    }

    /// Reads the row at `index`.
    pub(crate) fn get(&mut self, index: usize) -> io::Result<RowRecord> {
        self.writer.flush().map_err(store_error)?;
        let (offset, len) = self.at[index];
        if offset != self.read_at {
            let delta = offset as i64 - self.read_at as i64;
            self.reader.seek_relative(delta).map_err(store_error)?;
        }
        self.line.resize(len as usize, 0);
        io::Read::read_exact(&mut self.reader, &mut self.line).map_err(store_error)?;
        self.read_at = offset + u64::from(len);
        serde_json::from_slice(&self.line).map_err(store_error)
    }

    /// Reads the row at `index`, lets `change` change it, and keeps it if it says so.
    pub(crate) fn update<T>(
        &mut self,
        index: usize,
        change: impl FnOnce(&mut RowRecord) -> (bool, T),
    ) -> io::Result<T> {
        let mut record = self.get(index)?;
        let (changed, value) = change(&mut record);
        if changed {
            self.put(index, &record)?;
        }
        Ok(value)
    }

    /// Calls `each` with every row that has a request, in input order; rows it changes
    /// (returning `true`) are kept.
    pub(crate) fn for_each_planned(
        &mut self,
        mut each: impl FnMut(usize, &mut RowRecord) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        for index in 0..self.len() {
            if self.planned[index] {
                let mut record = self.get(index)?;
                if each(index, &mut record)? {
                    self.put(index, &record)?;
                }
            }
        }
        Ok(())
    }

    /// The report lines of every row, in input order.
    pub(crate) fn reports(&mut self) -> impl Iterator<Item = io::Result<ReportRow>> + '_ {
        (0..self.len()).map(|index| self.get(index).map(|r| r.report))
    }

    fn write(&mut self, record: &impl Serialize) -> io::Result<(u64, u32)> {
        let offset = self.end;
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(store_error)?;
        self.line.push(b'\n');
        self.writer.write_all(&self.line).map_err(store_error)?;
        let len = u32::try_from(self.line.len()).map_err(store_error)?;
        self.end += u64::from(len);
        Ok((offset, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize, outcome: Outcome, planned: bool) -> RowRecord {
        RowRecord {
            report: ReportRow {
                row: n + 2,
                outcome,
                title: Some(format!("Run {n} — «quoted», \"and\" new\nline")),
                ..ReportRow::default()
            },
            planned: planned.then(|| PlannedRow {
                row: n + 2,
                ..PlannedRow::default()
            }),
            cells: vec![format!("cell {n}"), String::new()],
        }
    }

    #[test]
    fn rows_read_back_as_written_in_any_order_and_after_changes() {
        let mut rows = Rows::new().unwrap();
        for n in 0..1000 {
            let outcome = if n % 3 == 0 { Outcome::Invalid } else { Outcome::NotSent };
            assert_eq!(rows.push(&record(n, outcome, n % 3 != 0)).unwrap(), n);
        }
        assert_eq!(rows.len(), 1000);
        assert_eq!(rows.planned_indexes().len(), 666);
        for n in [999, 0, 500, 501, 3, 2] {
            let got = rows.get(n).unwrap();
            assert_eq!(got.report.row, n + 2);
            assert_eq!(got.cells[0], format!("cell {n}"));
        }
        let title = rows
            .update(7, |r| {
                r.report.outcome = Outcome::Invalid;
                r.planned = None;
                (true, r.report.title.clone())
            })
            .unwrap();
        assert!(title.unwrap().contains("Run 7"));
        assert_eq!(rows.outcome(7), Outcome::Invalid);
        assert!(!rows.is_planned(7));
        assert_eq!(rows.get(7).unwrap().report.outcome, Outcome::Invalid);
        assert_eq!(rows.get(8).unwrap().report.outcome, Outcome::NotSent);
        let mut seen = 0;
        rows.for_each_planned(|index, r| {
            seen += 1;
            r.report.error = Some(format!("not sent {index}"));
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, 665);
        let reports: Vec<ReportRow> = rows.reports().collect::<io::Result<_>>().unwrap();
        assert_eq!(reports.len(), 1000);
        assert_eq!(reports[8].error.as_deref(), Some("not sent 8"));
        assert_eq!(reports[9].error, None);
        assert_eq!(reports[7].outcome, Outcome::Invalid);
        assert_eq!(rows.get(0).unwrap().report.row, 2);
    }

    #[test]
    fn a_request_reads_back_the_same() {
        let mut rows = Rows::new().unwrap();
        let mut planned = PlannedRow {
            row: 4,
            ..PlannedRow::default()
        };
        planned.body.title = "Checkout".into();
        planned.body.status = "ACTIVE";
        planned.body.selection_type = "STATIC";
        planned.body.static_selection_filters = vec![crate::request::SelectionFilter {
            field: "id",
            operator: "IN",
            values: vec!["a".into()],
        }];
        planned.body.start_date = Some(1_700_000_000_000);
        let index = rows
            .push(&RowRecord {
                planned: Some(planned.clone()),
                ..RowRecord::default()
            })
            .unwrap();
        assert_eq!(rows.get(index).unwrap().planned, Some(planned));
    }
}
