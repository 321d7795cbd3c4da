//! Workbooks as raw bytes: the first byte picks the reader (`x` .xlsx, `b` .xlsb, `l`
//! .xls, `o` .ods; any other byte by its value modulo 4), the rest is the file.
//! Zip-based formats mostly stop at a checksum here; `workbook_xml` reaches their XML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use testsigma_import::SourceOptions;

#[path = "common.rs"]
mod common;

/// Calls to `next_row` in one pass: past Excel's 1,048,576 rows is a loop.
const ROW_BUDGET: usize = 1 << 21;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let name = match pick {
        b'x' => "fuzz.xlsx",
        b'b' => "fuzz.xlsb",
        b'l' => "fuzz.xls",
        b'o' => "fuzz.ods",
        _ => ["fuzz.xlsx", "fuzz.xlsb", "fuzz.xls", "fuzz.ods"][usize::from(pick % 4)],
    };
    common::hide_caught_calamine_panics();
    common::open_read_twice(name, file, &SourceOptions::default(), ROW_BUDGET);
});
