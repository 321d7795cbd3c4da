//! What a person sees on the terminal: console lines, the progress bar, validation
//! problems. Nothing else in the tool writes to the terminal.

pub mod console;
pub mod problems;
pub mod progress;

use console::{Level, say_at};

/// Says a line on standard error (see [`console::say_at`]).
pub fn say(line: &str) {
    say_at(Level::Info, line);
}

/// Says `warning: {message}`.
pub fn warn(message: &str) {
    say_at(Level::Warn, &format!("warning: {message}"));
}

/// Says `error: {message}`.
pub fn error(message: &str) {
    say_at(Level::Error, &format!("error: {message}"));
}

/// Says a line about a problem with the input (`invalid: …`), at the error level.
pub fn problem(line: &str) {
    say_at(Level::Error, line);
}

/// `1 row`, `2 rows`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
