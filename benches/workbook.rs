//! Workbook benchmarks: the dry run of XLSX sheets of 100,000, 300,000 and 1,048,575 data
//! rows (a full Excel sheet with its header), and of a sheet whose three cells lie far
//! apart (A1, BL1, A1048576), each in a child process under `/usr/bin/time -v` for its peak
//! RSS, as users run it: `import FILE --dry-run --no-state --report R --quiet`.
//!
//! `cargo bench --bench workbook` runs every case; `-- far` or `-- 300000` only those whose
//! name contains a word given. `BENCH_BASELINE_BIN=path` measures that binary too, beside
//! this one, in turn on each case. Results are printed and appended to
//! `<target>/bench-data/results-workbook.txt`.

mod support;

use std::path::{Path, PathBuf};

use support::{Run, Table, grouped, human_bytes, median, record, rss_text, secs};

const BINARY: &str = env!("CARGO_BIN_EXE_testsigma-import");
const RESULTS: &str = "results-workbook.txt";

fn main() {
    let (sizes, repeats) = if support::bench_mode() {
        ([100_000, 300_000, 1_048_575], 3)
    } else {
        // `cargo test --benches`: prove the cases work, quickly.
        ([100, 200, 300], 1)
    };
    let filters = support::case_filters();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let mut cases: Vec<(String, PathBuf, usize)> = sizes
        .iter()
        .map(|&rows| (format!("xlsx {rows} rows"), support::xlsx_file(rows), rows))
        .collect();
    cases.push(("xlsx far cells".to_owned(), far_cells_file(), 1));
    let mut binaries = vec![("now".to_owned(), PathBuf::from(BINARY))];
    if let Some(baseline) = std::env::var_os("BENCH_BASELINE_BIN") {
        binaries.insert(0, ("baseline".to_owned(), PathBuf::from(baseline)));
    }

    support::record_heading(RESULTS, "workbook");
    let mut table = Table::new(&["case", "file", "binary", "elapsed (median)", "rows/s", "peak RSS"]);
    for (name, path, rows) in cases.iter().filter(|(name, ..)| wanted(name)) {
        let runs: Vec<Vec<Run>> = (0..repeats)
            .map(|_| binaries.iter().map(|(_, bin)| dry_run(bin, path, *rows)).collect())
            .collect();
        for (i, (binary, _)) in binaries.iter().enumerate() {
            let run = median(runs.iter().map(|round| round[i].clone()).collect());
            table.row(vec![
                name.clone(),
                human_bytes(file_size(path)),
                binary.clone(),
                secs(run.seconds),
                grouped(*rows as f64 / run.seconds),
                rss_text(run.peak_rss_kib),
            ]);
        }
    }
    record(
        RESULTS,
        &format!(
            "\n{} rounds, medians (load average {})\n{}",
            repeats,
            support::load_average(),
            table.render()
        ),
    );
}

/// One dry run of `binary` on `path`, which must plan `rows` rows.
fn dry_run(binary: &Path, path: &Path, rows: usize) -> Run {
    let dir = support::data_dir().join("work-workbook");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    let report = dir.join("report.csv");
    let args: Vec<String> = [
        "import",
        &path.display().to_string(),
        "--dry-run",
        "--no-state",
        "--report",
        &report.display().to_string(),
        "--quiet",
        // For the far cells, which have no project column; the others' column wins.
        "--project-id",
        "c47ade67-0543-4582-a4a5-b7de447c94f5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = support::run_measured(binary, &args, &[("CI", "true")], &dir, &[0]);
    let planned = std::fs::read_to_string(&report)
        .map(|text| text.lines().filter(|line| line.contains(",planned,")).count())
        .unwrap_or(0);
    assert_eq!(planned, rows, "{} planned {planned} of {rows} rows", binary.display());
    run
}

/// `far-cells.xlsx`: a title header at A1, a labels header at BL1 and one run at
/// A1048576, the last row, with nothing between.
fn far_cells_file() -> PathBuf {
    let path = support::data_dir().join("far-cells.xlsx");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let written = sheet
        .write_string(0, 0, "Title")
        .and_then(|sheet| sheet.write_string(0, 63, "Labels"))
        .and_then(|sheet| sheet.write_string(1_048_575, 0, "Far run"))
        .map(|_| ())
        .and_then(|()| workbook.save(&path));
    if let Err(e) = written {
        panic!("cannot write {}: {e}", path.display());
    }
    path
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
