//! Lines for the person at the terminal (or the log file): notices, warnings, problems
//! and the summary, on stderr. With `--log-format json` they become JSON lines of the
//! same shape as the tracing logs, so a log shipper never sees a mixed stream.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);
static LOGGING: AtomicBool = AtomicBool::new(false);

/// Set once at start-up from `--log-format` and `-v`.
pub fn configure(json: bool, logging: bool) {
    JSON.store(json, Ordering::Relaxed);
    LOGGING.store(json || logging, Ordering::Relaxed);
}

/// Whether log lines go to stderr (then a progress bar would tangle with them).
pub fn logging() -> bool {
    LOGGING.load(Ordering::Relaxed)
}

/// How much a line matters, for a log shipper reading `--log-format json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One line on stderr, at `level`. A stderr that is gone (a closed pipe: `2>&1 | head -1`)
/// loses the line, never the run: `eprintln!` would panic there, mid-upload, with rows
/// unreported.
pub fn say_at(level: Level, line: &str) {
    use std::io::Write;
    let line = crate::redact::scrub(line);
    let mut err = std::io::stderr().lock();
    let _ = if JSON.load(Ordering::Relaxed) {
        writeln!(err, "{}", json_line(level, &line))
    } else {
        writeln!(err, "{line}")
    };
}

/// Stderr for the tracing logs: a write that fails (a closed pipe) is dropped and reported
/// as done. tracing-subscriber answers a failed write with `eprintln!`, which panics there.
pub struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // tracing writes each event whole, so a key is never split across two writes.
        let _ = std::io::stderr()
            .lock()
            .write_all(&crate::redact::scrub_bytes(buf.to_vec()));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().lock().flush();
        Ok(())
    }
}

fn json_line(level: Level, line: &str) -> String {
    serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level.as_str(),
        "fields": { "message": line },
        "target": "testsigma_import",
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_a_level_and_the_message() {
        for (line, typed, level) in [
            ("warning: x", Level::Warn, "WARN"),
            ("invalid: row 2", Level::Error, "ERROR"),
            ("12 rows: 12 created", Level::Info, "INFO"),
        ] {
            let value: serde_json::Value = serde_json::from_str(&json_line(typed, line)).unwrap();
            assert_eq!(value["level"], level);
            assert_eq!(value["fields"]["message"], line);
        }
    }
}
