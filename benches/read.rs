//! Reading benchmarks: the raw-read floor of each format (the csv crate's `ByteRecord`
//! loop; calamine's `worksheet_range`, and its streaming cell reader for comparison), the
//! library's read + map + validate + plan, the dry-run binary end to end, and how a dry
//! run's time grows with the number of rows.
//!
//! `cargo bench --bench read` runs every case; `cargo bench --bench read -- csv` (or
//! `xlsx`, `scaling`) runs those whose name contains a word given. Each case runs in a
//! child process under `/usr/bin/time -v`, so each has its own peak RSS; times are the
//! median of a few runs. Results are printed and appended to
//! `<target>/bench-data/results-read.txt`.
//!
//! `BENCH_BASELINE_BIN=path cargo bench --bench read -- baseline` runs the big CSV's dry run
//! (`--report`, no plan) with that binary and with this one, in turn, seven rounds, and
//! prints both medians: a change's cost, measured in the same minutes.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use support::{Run, Table, grouped, human_bytes, median, record, rss_text, secs};
use testsigma_import::RowRules;
use testsigma_import::SourceRow;
use testsigma_import::write_plan_line;
use testsigma_import::{Input, SourceOptions, open_source};
use testsigma_import::{ReadSettings, RowEvent, open_read_stage};

const BINARY: &str = env!("CARGO_BIN_EXE_testsigma-import");
const RESULTS: &str = "results-read.txt";

/// Sizes and repetitions: the real ones under `cargo bench`, tiny ones otherwise.
struct Scale {
    csv_rows: usize,
    xlsx_rows: usize,
    scaling: [usize; 3],
    repeats: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__child") {
        child(&args[2..]);
        return;
    }
    let scale = if support::bench_mode() {
        Scale {
            csv_rows: 1_000_000,
            xlsx_rows: 100_000,
            scaling: [10_000, 100_000, 1_000_000],
            repeats: 5,
        }
    } else {
        // `cargo test --benches`: prove the cases work, quickly.
        Scale {
            csv_rows: 2_000,
            xlsx_rows: 300,
            scaling: [200, 1_000, 2_000],
            repeats: 1,
        }
    };
    let filters = support::case_filters();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));

    support::record_heading(RESULTS, "read");
    let mut csv_dry_run = None;
    if wanted("csv") {
        csv_dry_run = Some(csv_cases(&scale));
    }
    if wanted("xlsx") {
        xlsx_cases(&scale);
    }
    if wanted("scaling") {
        scaling(&scale, csv_dry_run);
    }
    if let Some(baseline) = std::env::var_os("BENCH_BASELINE_BIN")
        && wanted("baseline")
    {
        against_baseline(&scale, Path::new(&baseline));
    }
    record(
        RESULTS,
        &format!("(load average at the end: {})\n", support::load_average()),
    );
}

/// Floor, library and binary on the big CSV. Returns the binary's median run.
fn csv_cases(scale: &Scale) -> Run {
    let path = support::csv_file(scale.csv_rows);
    let size = file_size(&path);
    let [floor, source, library, report_only, binary] = interleaved(
        scale.repeats,
        [
            &|| child_run("csv-floor", &path),
            &|| child_run("source", &path),
            &|| child_run("pipeline", &path),
            &|| dry_run(&path, false),
            &|| dry_run(&path, true),
        ],
    );
    let rows = scale.csv_rows as f64;
    check_rows(&library, scale.csv_rows);

    let table = floor_table(
        "CSV",
        rows,
        Some(size),
        &[
            ("raw read (csv ByteRecord loop)", &floor),
            ("library read only (RowSource::next_row, one pass)", &source),
            ("read + map + validate + plan (library)", &library),
            ("dry run, binary, --plan --report", &binary),
            ("dry run, binary, --report (no plan file)", &report_only),
        ],
    );
    let dry_ratio = report_only.seconds / floor.seconds;
    let ratio = library.seconds / floor.seconds;
    let rss_mb = binary.peak_rss_kib.map(|k| k as f64 * 1024.0 / 1e6);
    record(
        RESULTS,
        &format!(
            "\n{} rows of CSV, {} ({} rounds of every case in turn, medians; load average {})\n{}\
             validation within 2x of the raw read: dry run (report, no plan)/floor = {dry_ratio:.2} → {}\n\
             the same with the plan written too: library/floor = {ratio:.2} → {}\n\
             dry run peak RSS under 100 MB: {} → {}\n",
            grouped(rows),
            human_bytes(size),
            scale.repeats,
            support::load_average(),
            table.render(),
            verdict(dry_ratio <= 2.0),
            verdict(ratio <= 2.0),
            rss_text(binary.peak_rss_kib),
            rss_mb.map_or("n/a", |mb| verdict(mb < 100.0)),
        ),
    );
    binary
}

/// The big CSV's dry run with `baseline` and with this binary, in turn.
fn against_baseline(scale: &Scale, baseline: &Path) {
    let path = support::csv_file(scale.csv_rows);
    let rounds = if support::bench_mode() { 7 } else { 1 };
    let [before, now] = interleaved(
        rounds,
        [&|| dry_run_of(baseline, &path, false), &|| {
            dry_run_of(Path::new(BINARY), &path, false)
        }],
    );
    let mut table = Table::new(&["binary", "median", "× baseline", "its CPU time", "peak RSS"]);
    for (name, run) in [(baseline.display().to_string(), &before), ("this one".to_owned(), &now)] {
        table.row(vec![
            name,
            secs(run.seconds),
            format!("{:.2}", run.seconds / before.seconds),
            run.cpu_seconds.map_or_else(|| "n/a".to_owned(), secs),
            rss_text(run.peak_rss_kib),
        ]);
    }
    record(
        RESULTS,
        &format!(
            "\n{} rows of CSV, dry run with --report, {rounds} rounds in turn, medians (load average {})\n{}",
            grouped(scale.csv_rows as f64),
            support::load_average(),
            table.render()
        ),
    );
}

fn xlsx_cases(scale: &Scale) {
    let path = support::xlsx_file(scale.xlsx_rows);
    let size = file_size(&path);
    let [floor, stream, source, library, binary] = interleaved(
        scale.repeats,
        [
            &|| child_run("xlsx-floor", &path),
            &|| child_run("xlsx-stream", &path),
            &|| child_run("source", &path),
            &|| child_run("pipeline", &path),
            &|| dry_run(&path, true),
        ],
    );
    let rows = scale.xlsx_rows as f64;
    check_rows(&library, scale.xlsx_rows);

    let table = floor_table(
        "XLSX",
        rows,
        None,
        &[
            ("raw read (calamine worksheet_range)", &floor),
            ("raw read (calamine worksheet_cells_reader)", &stream),
            ("library read only (RowSource::next_row, one pass)", &source),
            ("read + map + validate + plan (library)", &library),
            ("dry run, binary, --plan --report", &binary),
        ],
    );
    let ratio = library.seconds / floor.seconds;
    record(
        RESULTS,
        &format!(
            "\n{} rows of XLSX, {} ({} rounds of every case in turn, medians; load average {})\n{}\
             validation within 2x of the raw read: library/floor = {ratio:.2} → {}\n",
            grouped(rows),
            human_bytes(size),
            scale.repeats,
            support::load_average(),
            table.render(),
            verdict(ratio <= 2.0),
        ),
    );
}

/// Dry-run time against rows: per-row time must stay flat.
fn scaling(scale: &Scale, largest: Option<Run>) {
    let mut table = Table::new(&[
        "rows",
        "median",
        "rows/s",
        "µs/row",
        "× per-row time of the smallest",
        "peak RSS",
    ]);
    let mut base = None;
    for (i, rows) in scale.scaling.iter().copied().enumerate() {
        let path = support::csv_file(rows);
        let run = match (&largest, i == 2 && rows == scale.csv_rows) {
            (Some(run), true) => run.clone(),
            _ => repeat(scale.repeats, || dry_run(&path, true)),
        };
        let per_row = run.seconds / rows as f64;
        let base_per_row = *base.get_or_insert(per_row);
        table.row(vec![
            grouped(rows as f64),
            secs(run.seconds),
            grouped(rows as f64 / run.seconds),
            format!("{:.2}", per_row * 1e6),
            format!("{:.2}", per_row / base_per_row),
            rss_text(run.peak_rss_kib),
        ]);
    }
    record(
        RESULTS,
        &format!(
            "\nDry run (binary, CSV, --plan --report) against rows (load average {})\n{}",
            support::load_average(),
            table.render()
        ),
    );
}

/// One row per case, timed against the first (the floor); with the file's size, MB/s too.
fn floor_table(format: &str, rows: f64, size: Option<u64>, cases: &[(&str, &Run)]) -> Table {
    let floor = cases[0].1.seconds;
    let mut heads = vec![format, "median", "rows/s"];
    if size.is_some() {
        heads.push("MB/s");
    }
    heads.extend(["peak RSS", "× floor"]);
    let mut table = Table::new(&heads);
    for (name, run) in cases {
        let mut cells = vec![(*name).to_owned(), secs(run.seconds), grouped(rows / run.seconds)];
        if let Some(size) = size {
            cells.push(format!("{:.0}", size as f64 / 1e6 / run.seconds));
        }
        cells.extend([rss_text(run.peak_rss_kib), format!("{:.2}", run.seconds / floor)]);
        table.row(cells);
    }
    table
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn repeat(times: usize, mut f: impl FnMut() -> Run) -> Run {
    median((0..times.max(1)).map(|_| f()).collect())
}

/// Each case's median over `rounds` rounds, each round running every case once in turn:
/// on a machine whose speed drifts from minute to minute, the cases compared with each
/// other are then measured in the same minutes.
fn interleaved<const N: usize>(rounds: usize, cases: [&dyn Fn() -> Run; N]) -> [Run; N] {
    let mut runs: [Vec<Run>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..rounds.max(1) {
        for (case, runs) in cases.iter().zip(runs.iter_mut()) {
            runs.push(case());
        }
    }
    runs.map(median)
}

fn check_rows(run: &Run, rows: usize) {
    let planned = run.field("planned").and_then(|v| v.parse::<usize>().ok());
    assert_eq!(
        planned,
        Some(rows),
        "the library planned {planned:?} of {rows} rows: the generated data or the pipeline is broken\n{}",
        run.stderr
    );
}

fn work_dir() -> PathBuf {
    let dir = support::data_dir().join("work-read");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    dir
}

/// This binary again, to run one case in a fresh process.
fn child_run(case: &str, path: &Path) -> Run {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("cannot find this benchmark's executable: {e}"));
    let args = vec!["__child".to_owned(), case.to_owned(), path.display().to_string()];
    let run = support::run_measured(&exe, &args, &[], &work_dir(), &[0]);
    // The child times its own work, without process start-up and exit.
    Run {
        seconds: run.field_f64("secs").unwrap_or(run.seconds),
        ..run
    }
}

/// `testsigma-import import FILE --dry-run --report R [--plan P]`, timed from outside.
/// The plan is about 760 bytes a row, so on a million rows `with_plan` adds mostly the
/// writing of 760 MB.
fn dry_run(path: &Path, with_plan: bool) -> Run {
    dry_run_of(Path::new(BINARY), path, with_plan)
}

fn dry_run_of(binary: &Path, path: &Path, with_plan: bool) -> Run {
    let dir = work_dir();
    let plan = dir.join("plan.jsonl");
    let report = dir.join("report.csv");
    let summary = dir.join("summary.json");
    let mut args: Vec<String> = [
        "import",
        &path.display().to_string(),
        "--dry-run",
        "--report",
        &report.display().to_string(),
        "--summary-json",
        &summary.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if with_plan {
        args.extend(["--plan".to_owned(), plan.display().to_string()]);
    }
    let run = support::run_measured(binary, &args, &[("CI", "true")], &dir, &[0]);
    // A gigabyte of plan per run adds up; the numbers are taken.
    let _ = std::fs::remove_file(&plan);
    if with_plan {
        // A precaution: nothing of the plan is left for the kernel to write out during the
        // next case, to be charged to it.
        let _ = std::process::Command::new("sync").status();
    }
    run
}

/// One case in this (child) process; prints `key=value` pairs on its last line.
fn child(args: &[String]) {
    let (Some(case), Some(path)) = (args.first(), args.get(1)) else {
        panic!("usage: read __child CASE FILE");
    };
    let path = PathBuf::from(path);
    let started = Instant::now();
    let line = match case.as_str() {
        "csv-floor" => csv_floor(&path),
        "xlsx-floor" => xlsx_floor(&path),
        "xlsx-stream" => xlsx_stream(&path),
        "pipeline" => pipeline(&path),
        "source" => source_only(&path),
        other => panic!("unknown case {other}"),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line} secs={elapsed}");
}

/// The floor for delimited text: parse every record into one reused `ByteRecord`.
fn csv_floor(path: &Path) -> String {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut record = csv::ByteRecord::new();
    let (mut records, mut bytes) = (0usize, 0usize);
    while reader.read_byte_record(&mut record).unwrap_or_else(|e| panic!("{e}")) {
        records += 1;
        bytes += record.as_slice().len();
    }
    format!("rows={} bytes={bytes}", records.saturating_sub(1))
}

/// The floor for workbooks: calamine loads the sheet into a `Range`; every cell is visited.
fn xlsx_floor(path: &Path) -> String {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let mut book: Xlsx<_> = open_workbook(path).unwrap_or_else(|e| panic!("{e}"));
    let name = book.sheet_names().first().cloned().unwrap_or_default();
    let range = book.worksheet_range(&name).unwrap_or_else(|e| panic!("{e}"));
    let mut filled = 0usize;
    for row in range.rows() {
        filled += row.iter().filter(|d| !matches!(d, Data::Empty)).count();
    }
    format!("rows={} cells={filled}", range.height().saturating_sub(1))
}

/// calamine's streaming reader: one cell at a time, no `Range` of the whole sheet.
fn xlsx_stream(path: &Path) -> String {
    use calamine::{DataRef, Reader, Xlsx, open_workbook};
    let mut book: Xlsx<_> = open_workbook(path).unwrap_or_else(|e| panic!("{e}"));
    let name = book.sheet_names().first().cloned().unwrap_or_default();
    let mut cells = book.worksheet_cells_reader(&name).unwrap_or_else(|e| panic!("{e}"));
    let (mut filled, mut last_row) = (0usize, 0u32);
    while let Some(cell) = cells.next_cell().unwrap_or_else(|e| panic!("{e}")) {
        if !matches!(cell.get_value(), DataRef::Empty) {
            filled += 1;
        }
        last_row = last_row.max(cell.get_position().0);
    }
    format!("rows={last_row} cells={filled}")
}

/// The library's reading stage alone: every row through `RowSource::next_row`, once.
fn source_only(path: &Path) -> String {
    let input = Input::File(path.to_path_buf());
    let mut source = open_source(&input, &SourceOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut row = SourceRow::default();
    let (mut rows, mut filled) = (0usize, 0usize);
    while source.next_row(&mut row).unwrap_or_else(|e| panic!("{e}")) {
        rows += 1;
        filled += row.cells().filter(|c| !c.is_blank()).count();
    }
    format!("rows={rows} cells={filled}")
}

/// The library as the binary drives it: open, then every row read, mapped, validated and
/// turned into its plan line (with a short reading ahead for the date columns' order).
fn pipeline(path: &Path) -> String {
    let read = ReadSettings {
        input: Input::File(path.to_path_buf()),
        source: SourceOptions::default(),
        columns: BTreeMap::new(),
        rules: RowRules::default(),
        key: None,
        quiet: true,
    };
    let mut stage = open_read_stage(&read, &|_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    // As an import and a dry run into files do: orders from the first rows that prove them.
    stage.settle_orders_early();
    let (mut planned, mut invalid, mut plan_bytes) = (0usize, 0usize, 0usize);
    let mut first_problem = None;
    let mut line = Vec::new();
    let rows = stage
        .for_each_row(|event| {
            match event {
                RowEvent::Valid { planned: p, .. } => {
                    planned += 1;
                    // Into one reused buffer, as the binary's plan writer does.
                    line.clear();
                    write_plan_line(&mut line, p);
                    plan_bytes += line.len();
                }
                RowEvent::Invalid { problems, .. } => {
                    invalid += 1;
                    if first_problem.is_none() {
                        first_problem = problems.first().map(|p| p.to_string());
                    }
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e:#}"));
    if let Some(problem) = first_problem {
        eprintln!("first invalid row: {problem}");
    }
    format!("rows={rows} planned={planned} invalid={invalid} plan_bytes={plan_bytes}")
}
