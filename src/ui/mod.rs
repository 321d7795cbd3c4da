//! What a person sees on the terminal: console lines, the progress bar, validation
//! problems and the end-of-run summary. Nothing else in the tool writes to the terminal.

pub mod console;
pub mod problems;
pub mod progress;
pub mod summary;

/// Says one line on standard error (see [`console::say`]).
pub fn say(line: &str) {
    console::say(line);
}

/// `1 row`, `2 rows`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
