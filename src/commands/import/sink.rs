//! Where the uploader's results go as they come: the ledger, the report and the progress
//! bar, so a crash loses nothing already done.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ledger::{self, CreatedRun, Ledger};
use crate::report::{Outcome, ReportRow, ReportWriter};
use crate::ui::error;
use crate::ui::progress::Progress;
use crate::upload::{UploadJob, UploadSink};

/// The ledger, the report and the progress display, fed by the uploader.
pub(super) struct RunSink {
    ledger: Option<Mutex<Ledger>>,
    keys: HashMap<usize, (String, String)>,
    report: Mutex<Option<ReportWriter>>,
    rows: Mutex<Vec<ReportRow>>,
    progress: Progress,
    write_error: Mutex<Option<String>>,
}

impl RunSink {
    pub(super) fn new(
        ledger: Option<Ledger>,
        keys: HashMap<usize, (String, String)>,
        report: ReportWriter,
        rows: Vec<ReportRow>,
        progress: Progress,
    ) -> RunSink {
        RunSink {
            ledger: ledger.map(Mutex::new),
            keys,
            report: Mutex::new(Some(report)),
            rows: Mutex::new(rows),
            progress,
            write_error: Mutex::new(None),
        }
    }

    /// Once the upload is over: the progress bar closed, the report finished, and every
    /// row's report line, in input order, with the first write that failed on the way (a
    /// full disk): the rows are the run's real outcomes all the same.
    pub(super) fn finish(&self) -> (Vec<ReportRow>, Option<String>) {
        self.progress.finish();
        let rows = self
            .rows
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        let mut failed = self.write_error.lock().ok().and_then(|mut e| e.take());
        let writer = self.report.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer
            && let Err(e) = writer.finish(Some(&rows))
        {
            failed.get_or_insert(e.to_string());
        }
        if let Some(e) = &failed {
            error(e);
        }
        (rows, failed)
    }

    fn with_ledger<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> Option<T> {
        let ledger = self.ledger.as_ref()?;
        let write = || ledger.lock().ok().map(|mut l| f(&mut l));
        // Each ledger line is fsync'd: on the multi-threaded runtime, let the other tasks
        // move to another worker meanwhile (block_in_place is not allowed elsewhere).
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
            _ => write(),
        }
    }
}

impl UploadSink for RunSink {
    fn before_send(&self, job: &UploadJob) -> Result<(), String> {
        let Some((scope, key)) = self.keys.get(&job.index) else {
            return Ok(());
        };
        match self.with_ledger(|l| l.record_in_flight(scope, key, job.row)) {
            Some(Err(e)) => Err(format!(
                "the ledger could not record row {} before sending it: {e}",
                job.row
            )),
            _ => Ok(()),
        }
    }

    fn finished(&self, job: &UploadJob, row: ReportRow) {
        // A row never sent has no ledger line to answer.
        let sent = row.attempts > 0;
        if let Some((scope, key)) = self.keys.get(&job.index).filter(|_| sent) {
            let recorded = self.with_ledger(|l| match row.outcome {
                Outcome::Created | Outcome::Updated => l.record_created(
                    scope,
                    key,
                    job.row,
                    &CreatedRun {
                        test_run_id: row.test_run_id.as_deref(),
                        test_run_human_id: row.test_run_human_id.as_deref(),
                        body: Some(&ledger::body_hash(&job.body)),
                        fields: Some(&job.fields),
                    },
                ),
                Outcome::Unknown => l.record_unknown(scope, key, job.row, row.error.as_deref().unwrap_or("")),
                _ => l.record_failed(scope, key, job.row, row.error.as_deref().unwrap_or("not created")),
            });
            if let Some(Err(e)) = recorded
                && let Ok(mut slot) = self.write_error.lock()
            {
                slot.get_or_insert_with(|| format!("the ledger could not record row {}: {e}", job.row));
            }
        }
        if let Ok(mut report) = self.report.lock()
            && let Some(writer) = report.as_mut()
            && let Err(e) = writer.append(&row)
            && let Ok(mut slot) = self.write_error.lock()
        {
            slot.get_or_insert_with(|| e.to_string());
        }
        self.progress
            .row_done(!matches!(row.outcome, Outcome::Created | Outcome::Updated));
        if let Ok(mut rows) = self.rows.lock()
            && let Some(slot) = rows.get_mut(job.index)
        {
            *slot = row;
        }
    }
}
