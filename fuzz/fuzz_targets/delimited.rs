//! Delimited text: any bytes as `fuzz.csv` with the default options, then once more
//! with one of a few other option sets (picked by the input's length) that reach the
//! limits, TSV, and the decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use testsigma_import::SourceOptions;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    // Each row of text takes at least one byte (a blank line is a row too).
    let budget = data.len() + 2;
    common::open_read_twice("fuzz.csv", data, &SourceOptions::default(), budget);
    let default = SourceOptions::default();
    let (name, opts) = match data.len() % 4 {
        0 => (
            "fuzz.csv",
            SourceOptions {
                header_row: 2,
                max_cell_bytes: 8,
                max_columns: 3,
                ..default
            },
        ),
        1 => ("fuzz.tsv", default),
        2 => (
            "fuzz.csv",
            SourceOptions {
                encoding: Some("windows-1252".to_owned()),
                delimiter: Some(b';'),
                ..default
            },
        ),
        _ => (
            "<stdin>",
            SourceOptions {
                encoding: Some("utf-16le".to_owned()),
                ..default
            },
        ),
    };
    common::open_read_twice(name, data, &opts, budget);
});
