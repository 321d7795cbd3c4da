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

/// One line on stderr. A stderr that is gone (a closed pipe: `2>&1 | head -1`) loses the
/// line, never the run: `eprintln!` would panic there, mid-upload, with rows unreported.
pub fn say(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = if JSON.load(Ordering::Relaxed) {
        writeln!(err, "{}", json_line(line))
    } else {
        writeln!(err, "{line}")
    };
}

/// Stderr for the tracing logs: a write that fails (a closed pipe) is dropped and reported
/// as done. tracing-subscriber answers a failed write with `eprintln!`, which panics there.
pub struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().lock().flush();
        Ok(())
    }
}

fn json_line(line: &str) -> String {
    let level = if line.starts_with("warning") {
        "WARN"
    } else if line.starts_with("error") || line.starts_with("invalid") {
        "ERROR"
    } else {
        "INFO"
    };
    serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level,
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
        for (line, level) in [
            ("warning: x", "WARN"),
            ("invalid: row 2", "ERROR"),
            ("12 rows: 12 created", "INFO"),
        ] {
            let value: serde_json::Value = serde_json::from_str(&json_line(line)).unwrap();
            assert_eq!(value["level"], level);
            assert_eq!(value["fields"]["message"], line);
        }
    }
}
