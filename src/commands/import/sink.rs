//! Where the uploader's results go as they come: the ledger, the report and the progress
//! bar, so a crash loses nothing already done.

use std::sync::{Arc, Mutex};

use super::rows::Rows;
use crate::ledger::{self, CreatedRun, Ledger};
use crate::report::{Outcome, ReportRow, ReportWriter};
use crate::ui::error;
use crate::ui::progress::Progress;
use crate::upload::{UploadJob, UploadSink};

/// The ledger, the report and the progress display, fed by the uploader.
pub(super) struct RunSink {
    ledger: Option<Mutex<Ledger>>,
    report: Mutex<Option<ReportWriter>>,
    /// Every row of the run: each finished row's report line is kept there.
    rows: Arc<Mutex<Rows>>,
    progress: Progress,
    write_error: Mutex<Option<String>>,
}

impl RunSink {
    pub(super) fn new(
        ledger: Option<Ledger>,
        report: ReportWriter,
        rows: Arc<Mutex<Rows>>,
        progress: Progress,
    ) -> RunSink {
        RunSink {
            ledger: ledger.map(Mutex::new),
            report: Mutex::new(Some(report)),
            rows,
            progress,
            write_error: Mutex::new(None),
        }
    }

    /// Once the upload is over: the progress bar closed, and the report finished, every
    /// row's line in input order. Returns the first write that failed on the way (a full
    /// disk): the rows hold the run's real outcomes all the same.
    pub(super) fn finish(&self) -> Option<String> {
        self.progress.finish();
        let mut failed = self.write_error.lock().ok().and_then(|mut e| e.take());
        let writer = self.report.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer
            && let Ok(mut rows) = self.rows.lock()
            && let Err(e) = writer.finish(Some(&mut rows.reports()))
        {
            failed.get_or_insert(e.to_string());
        }
        if let Some(e) = &failed {
            error(e);
        }
        failed
    }

    /// Keeps the first write that failed.
    fn failed(&self, e: String) {
        if let Ok(mut slot) = self.write_error.lock() {
            slot.get_or_insert(e);
        }
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
        let Some((scope, key)) = &job.ledger_key else {
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
        if let Some((scope, key)) = job.ledger_key.as_ref().filter(|_| sent) {
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
            if let Some(Err(e)) = recorded {
                self.failed(format!("the ledger could not record row {}: {e}", job.row));
            }
        }
        if let Ok(mut report) = self.report.lock()
            && let Some(writer) = report.as_mut()
            && let Err(e) = writer.append(&row)
        {
            self.failed(e.to_string());
        }
        self.progress
            .row_done(!matches!(row.outcome, Outcome::Created | Outcome::Updated));
        let kept = self.rows.lock().map(|mut rows| {
            rows.update(job.index, |record| {
                record.report = row;
                (true, ())
            })
        });
        if let Ok(Err(e)) = kept {
            self.failed(e.to_string());
        }
    }
}
