//! The run's summary: counts per outcome and what a monitor reads in `--summary-json`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use std::collections::BTreeMap;

use super::count_outcomes;
use crate::exit::{Exit, SetupError};

/// A run that stopped on an error: its exit code and why, in `--summary-json`, every count 0
/// (best effort; the path was proved writable at the start, or comes from settings that
/// were refused). No report was written, so it names none; `state` names the ledger the
/// run would have used, left as it was. Returns the error, to be reported as usual.
pub fn setup_error_in_summary(
    path: Option<&Path>,
    dry_run: bool,
    run: RunInfo,
    state: Option<String>,
    error: anyhow::Error,
) -> anyhow::Error {
    if let Some(path) = path {
        let summary = RunSummary {
            elapsed_seconds: run.elapsed_seconds(),
            run,
            counts: count_outcomes(&[]),
            rows: 0,
            requests_sent: 0,
            effective_rate: 0.0,
            exit_code: SetupError::exit_of(&error),
            report: None,
            failed_rows_file: None,
            state,
            dry_run,
            error: Some(format!("{error:#}")),
        };
        let _ = std::fs::write(path, summary.to_json());
    }
    error
}

/// When a run was, which version made it, what it read and where it sent: so that a
/// monitor can tell tonight's summary from a stale one, and which job wrote it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunInfo {
    /// RFC 3339, in the machine's time zone.
    pub started_at: String,
    pub finished_at: String,
    /// This tool's version.
    pub version: String,
    /// The input file as given (`<stdin>` for `-`), when known.
    pub input: Option<String>,
    /// The API root the run sends to (`in-process-sandbox` with `--sandbox`), when known.
    pub base_url: Option<String>,
    #[serde(skip)]
    elapsed: f64,
}

impl RunInfo {
    /// A run that started at `started` (an instant of this process) and finishes now.
    pub fn new(started: Instant, input: Option<String>, base_url: Option<String>) -> RunInfo {
        let elapsed = started.elapsed();
        let finished = chrono::Local::now();
        let began = finished - chrono::Duration::from_std(elapsed).unwrap_or_default();
        let at = |t: chrono::DateTime<chrono::Local>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        RunInfo {
            started_at: at(began),
            finished_at: at(finished),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            input,
            base_url,
            elapsed: elapsed.as_secs_f64(),
        }
    }

    /// Seconds from start to finish.
    pub fn elapsed_seconds(&self) -> f64 {
        self.elapsed
    }
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
    /// When, which version, what input, which service: first, for a monitor.
    #[serde(flatten)]
    pub run: RunInfo,
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
