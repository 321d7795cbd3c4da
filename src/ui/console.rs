//! Lines for the person at the terminal (or the log file): notices, warnings, problems
//! and the summary, on stderr. With `--log-format json` they become JSON lines of the
//! same shape as the tracing logs, so a log shipper never sees a mixed stream. Written
//! to a log file (`>> import.log`), each plain line starts with the time, so the log can
//! be read night by night (`--timestamps`).

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);
static LOGGING: AtomicBool = AtomicBool::new(false);
static STAMPED: AtomicBool = AtomicBool::new(false);

/// Set once at start-up from `--log-format`, `-v` and `--timestamps`.
pub fn configure(json: bool, logging: bool, stamped: bool) {
    JSON.store(json, Ordering::Relaxed);
    LOGGING.store(json || logging, Ordering::Relaxed);
    STAMPED.store(stamped, Ordering::Relaxed);
}

/// Whether `--timestamps auto` stamps plain lines: when stderr is a file or a pipe that
/// nothing stamps. A terminal's reader knows the time; the systemd journal
/// (`JOURNAL_STREAM`) and CI runners (`CI`) stamp every line themselves.
pub fn stamps_by_default() -> bool {
    use std::io::IsTerminal;
    !std::io::stderr().is_terminal() && std::env::var_os("JOURNAL_STREAM").is_none() && std::env::var_os("CI").is_none()
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
        writeln!(err, "{}{line}", stamp_prefix())
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

/// What starts a plain line: its time and a space when lines are stamped, else nothing.
fn stamp_prefix() -> String {
    if STAMPED.load(Ordering::Relaxed) {
        format!("{} ", stamp(chrono::Local::now()))
    } else {
        String::new()
    }
}

/// A plain line's time: RFC 3339 to the second, with the machine's offset.
fn stamp(at: chrono::DateTime<chrono::Local>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
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
    fn a_stamp_is_rfc_3339_to_the_second() {
        let text = stamp(chrono::Local::now());
        let parsed = chrono::DateTime::parse_from_rfc3339(&text);
        assert!(parsed.is_ok(), "{text}");
        assert!(!text.contains('.') && !text.contains(' '), "{text}");
    }

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
