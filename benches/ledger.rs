//! The ledger's memory: a ledger as an import of N rows leaves it (an `in_flight` and a
//! `created` line a row) is written once, then read in a process of its own under
//! `/usr/bin/time -v`, as a re-run reads it, every row then asked for. That process's peak
//! memory is what the ledger costs a re-run.
//!
//! `cargo bench --bench ledger` runs 1,000,000 rows (an 819 MB file, about a minute);
//! `cargo bench --bench ledger -- 100000` another count. `cargo test --benches` runs 1,000.
//! Results are printed and appended to `<target>/bench-data/results-ledger.txt`.

mod support;

use std::path::{Path, PathBuf};

use support::{grouped, human_bytes, record, rss_text, run_measured};
use testsigma_import::ledger_sample;

const RESULTS: &str = "results-ledger.txt";
/// The first argument of the child process that reads the ledger.
const READ: &str = "read-ledger";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(READ) {
        read(&args[2..]);
        return;
    }
    let rows = support::rows_wanted(1_000_000, 1_000);
    support::record_heading(RESULTS, "ledger");
    let dir = support::data_dir();
    let path = dir.join(format!("ledger-{rows}.jsonl"));
    let size = ledger_sample::write(&path, rows).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    let exe = std::env::current_exe().expect("the bench's own path");
    let run = run_measured(
        &exe,
        &[READ.to_owned(), path.display().to_string(), rows.to_string()],
        &[],
        &dir,
        &[0],
    );
    record(
        RESULTS,
        &format!(
            "{} rows, a ledger of {} ({} bytes a row): read in {} s, every row asked for in {} s more, peak {}\n",
            grouped(rows as f64),
            human_bytes(size),
            size / rows.max(1) as u64,
            run.field("read").unwrap_or("?"),
            run.field("asked").unwrap_or("?"),
            rss_text(run.peak_rss_kib),
        ),
    );
    let _ = std::fs::remove_file(&path);
}

/// The child: reads the ledger, asks for every row, and prints the times as `key=value`.
fn read(args: &[String]) {
    let (Some(path), Some(rows)) = (
        args.first().map(PathBuf::from),
        args.get(1).and_then(|n| n.parse().ok()),
    ) else {
        panic!("usage: ledger read-ledger PATH ROWS");
    };
    match ledger_sample::ask_every_row(Path::new(&path), rows) {
        Ok(asked) => println!(
            "read={:.2} asked={:.2}",
            asked.read.as_secs_f64(),
            asked.asked.as_secs_f64()
        ),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}
