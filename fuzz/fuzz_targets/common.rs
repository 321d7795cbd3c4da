//! Shared by the source targets: read a source to its end twice (the pipeline's two
//! passes) and check what the pipeline relies on, beyond "does not panic".

use testsigma_import::SourceRow;
use testsigma_import::{Input, RowSource, SourceOptions, open_source};

/// One pass: each row as it came, or the error's message; ends at the end of the rows or
/// at the first error that ends a run.
pub fn read_all(source: &mut dyn RowSource, header_row: usize, budget: usize) -> Vec<Result<SourceRow, String>> {
    let width = source.headers().len();
    let mut out = Vec::new();
    let mut row = SourceRow::default();
    let mut last = header_row;
    loop {
        // Every call moves past at least one row; more calls than that is a loop.
        assert!(out.len() <= budget, "next_row made no progress after {budget} calls");
        match source.next_row(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                assert_eq!(
                    row.width(),
                    width,
                    "row {} is not as wide as the headers",
                    row.number
                );
                assert!(row.number > last, "row number {} after {last}", row.number);
                last = row.number;
                out.push(Ok(row.clone()));
            }
            // Every reading error ends the reading (a row whose columns have shifted is
            // read, with its `overflow` set); it names a row after the header.
            Err(e) => {
                if let Some(n) = e.row() {
                    assert!(n > header_row, "an error on row {n}, at or above the header: {e}");
                }
                out.push(Err(e.to_string()));
                break;
            }
        }
    }
    out
}

/// Opens `data` as `name`, reads it, rewinds and reads it again: both passes must agree.
/// `budget` bounds the calls to `next_row` in one pass.
pub fn open_read_twice(name: &str, data: &[u8], opts: &SourceOptions, budget: usize) {
    let input = Input::Bytes {
        name: name.to_owned(),
        data: std::sync::Arc::new(data.to_vec()),
    };
    let Ok(mut source) = open_source(&input, opts) else {
        return;
    };
    let headers = source.headers().to_vec();
    let first = read_all(source.as_mut(), opts.header_row, budget);
    match source.rewind() {
        Ok(()) => {}
        Err(e) => panic!("rewind failed after a successful open: {e}"),
    }
    assert_eq!(source.headers(), headers.as_slice(), "headers changed on rewind");
    let second = read_all(source.as_mut(), opts.header_row, budget);
    assert_eq!(first, second, "the second pass read differently");
}

/// The workbook reader runs calamine inside `catch_unwind` and turns its panics into an
/// error naming the file, which is the behaviour wanted. libFuzzer's panic hook aborts
/// before that can happen, so without this every calamine panic would be reported as a
/// crash of ours. Panics raised elsewhere still abort. Set `FUZZ_CALAMINE_PANICS=1` to
/// see calamine's panics as crashes too (to report them upstream).
#[allow(dead_code)]
pub fn hide_caught_calamine_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("FUZZ_CALAMINE_PANICS").is_some() {
            return;
        }
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_calamine = info.location().is_some_and(|l| l.file().contains("/calamine-"));
            if !in_calamine {
                abort_hook(info);
            }
        }));
    });
}
