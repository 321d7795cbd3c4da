//! The run's summary: counts per outcome and what a monitor reads in `--summary-json`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use std::collections::BTreeMap;

use super::count_outcomes;
use crate::exit::{Exit, SetupError};

/// A run that stopped on an error: its exit code and why, in `--summary-json`, every count 0
/// (best effort; the path was proved writable at the start, or comes from settings that
/// were refused). Returns the error, to be reported as usual.
pub fn setup_error_in_summary(
    path: Option<&Path>,
    dry_run: bool,
    started: Instant,
    error: anyhow::Error,
) -> anyhow::Error {
    if let Some(path) = path {
        let summary = RunSummary {
            counts: count_outcomes(&[]),
            rows: 0,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            requests_sent: 0,
            effective_rate: 0.0,
            exit_code: SetupError::exit_of(&error),
            report: None,
            failed_rows_file: None,
            state: None,
            dry_run,
            error: Some(format!("{error:#}")),
        };
        let _ = std::fs::write(path, summary.to_json());
    }
    error
}

/// `--summary-json`, when given: the summary, written whole.
pub fn write_summary_json(path: Option<&Path>, summary: &RunSummary) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, summary.to_json())
            .with_context(|| format!("--summary-json: cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The `--summary-json` document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunSummary {
    /// Every outcome name, 0 included.
    pub counts: BTreeMap<String, usize>,
    pub rows: usize,
    pub elapsed_seconds: f64,
    pub requests_sent: usize,
    /// Requests per second over the run.
    pub effective_rate: f64,
    pub exit_code: Exit,
    pub report: Option<String>,
    pub failed_rows_file: Option<String>,
    /// The ledger the run used, if any.
    pub state: Option<String>,
    pub dry_run: bool,
    /// Why the run ended before its rows were read (exit 2): no rows at all then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunSummary {
    /// Pretty-printed JSON with a trailing newline. A non-finite number is `null`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        crate::redact::scrub_in_place(&mut out);
        out
    }
}
