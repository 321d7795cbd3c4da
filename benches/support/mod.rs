//! What the benchmark binaries share: reproducible inputs (a seeded generator that writes
//! realistic CSV and XLSX files into the target directory, skipped when already there),
//! running a case in a child process under `/usr/bin/time -v` for its peak RSS, and
//! printing tables.
//!
//! Nothing large is committed: the files are made on first use, in
//! `<target dir>/bench-data/` (or `$BENCH_DATA_DIR`), and a stamp beside each records the
//! generator version and the size it had, so a stale or half-written file is made again.

#![allow(dead_code)] // each bench binary uses its own part of this module

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Bump when the generated rows change, so old files are made again.
const GENERATOR_VERSION: u32 = 1;

/// The column headers, spelled as people write them (aliases, spaces) so mapping is exercised.
pub const HEADERS: [&str; 11] = [
    "Title",
    "Description",
    "Status",
    "Project ID",
    "Human ID",
    "Test Cases",
    "Start Date",
    "Due Date",
    "Assignee",
    "Labels",
    "Environments",
];

/// True when cargo ran this binary as a benchmark (`cargo bench` passes `--bench`); a
/// `cargo test --benches` run does not, and then the binaries make a quick smoke run.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The number of rows to run: the first argument given to `cargo bench` (`-- 100000`), else
/// `bench` under `cargo bench`, and `smoke` under `cargo test --benches`.
pub fn rows_wanted(bench: usize, smoke: usize) -> usize {
    if bench_mode() {
        case_filters().first().and_then(|n| n.parse().ok()).unwrap_or(bench)
    } else {
        smoke
    }
}

/// Positional arguments after the binary name, without cargo's `--bench` and other flags.
pub fn case_filters() -> Vec<String> {
    std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect()
}

/// `<target dir>/bench-data`, from this executable's place (`<target>/<profile>/deps/x`).
pub fn data_dir() -> PathBuf {
    let dir = match std::env::var_os("BENCH_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
            .unwrap_or_else(std::env::temp_dir)
            .join("bench-data"),
    };
    if let Err(e) = fs::create_dir_all(&dir) {
        panic!("cannot create the benchmark data directory {}: {e}", dir.display());
    }
    dir
}

/// A small, fast, seeded generator (SplitMix64): the same rows on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A random version-4 UUID, lower-case and hyphenated.
    pub fn uuid(&mut self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

const PROJECTS: [&str; 3] = [
    "c47ade67-0543-4582-a4a5-b7de447c94f5",
    "1d2f7a40-8b1e-4c5d-9e6f-0a1b2c3d4e5f",
    "7e8f9a0b-1c2d-4e3f-8a5b-6c7d8e9f0a1b",
];
/// The sandbox's built-in users, so an upload resolves these addresses.
const EMAILS: [&str; 3] = ["ada@example.com", "grace@example.com", "alan@example.com"];
const AREAS: [&str; 8] = [
    "Checkout",
    "Payments",
    "Search",
    "Onboarding",
    "Invoices",
    "Mobile app",
    "Public API",
    "Régression mensuelle",
];
const KINDS: [&str; 5] = [
    "nightly regression",
    "smoke",
    "release candidate",
    "hotfix check",
    "exploratory",
];
const LABELS: [&str; 9] = [
    "regression",
    "nightly",
    "smoke",
    "release-2024.3",
    "ui",
    "api",
    "EU",
    "mobile",
    "a11y",
];
const STATUSES: [&str; 6] = ["Active", "ACTIVE", "active", "ACTIVE", "CLOSED", "Closed"];

/// One generated data row: the text of each cell, and for workbooks the start and due
/// instants (some rows store them as real date cells).
pub struct GenRow {
    pub cells: [String; 11],
    pub start: DateTime<Utc>,
    pub due: DateTime<Utc>,
}

/// Makes the rows of every benchmark input. The same seed gives the same rows, so the
/// 10k file is the first tenth of the 100k file, and so on.
pub struct RowGen {
    rng: Rng,
    assignees: Vec<String>,
    environments: Vec<String>,
    n: u64,
}

impl RowGen {
    pub fn new(seed: u64) -> RowGen {
        let mut rng = Rng::new(seed);
        let assignees = (0..20).map(|_| rng.uuid()).collect();
        let environments = (0..4).map(|_| rng.uuid()).collect();
        RowGen {
            rng,
            assignees,
            environments,
            n: 0,
        }
    }

    pub fn next_row(&mut self) -> GenRow {
        self.n += 1;
        let n = self.n;
        let r = &mut self.rng;
        let area = *r.pick(&AREAS);
        let kind = *r.pick(&KINDS);
        let title = if r.percent(2) {
            format!("{area}, \"EU\" rollout — {kind} #{n}")
        } else {
            format!("{area} — {kind} #{n}")
        };
        let description = if r.percent(40) {
            String::new()
        } else if n.is_multiple_of(500) {
            format!("Scope:\n- {area}\n- invoices, refunds\nOwner: team {}", r.below(9) + 1)
        } else {
            format!(
                "Covers {} for build {}; run on {} devices, see the checklist",
                area.to_lowercase(),
                800 + r.below(400),
                2 + r.below(10)
            )
        };
        let status = (*r.pick(&STATUSES)).to_owned();
        let project = (*r.pick(&PROJECTS)).to_owned();
        let human_id = format!("REL-{n:07}");
        let separator = *r.pick(&[", ", ", ", ", ", ",", ";", "|", "\n"]);
        let cases = (0..5).map(|_| r.uuid()).collect::<Vec<_>>().join(separator);
        // 2024-01-01T00:00Z plus up to two years, on the minute.
        let start_secs = 1_704_067_200 + r.below(730 * 86_400 / 60) as i64 * 60;
        let due_secs = start_secs + (30 + r.below(72 * 60)) as i64 * 60;
        let start = DateTime::from_timestamp(start_secs, 0).unwrap_or_default();
        let due = DateTime::from_timestamp(due_secs, 0).unwrap_or_default();
        let start_text = date_text(start, r.below(8));
        let due_text = date_text(due, r.below(8));
        let assignee = match r.below(10) {
            0..=2 => String::new(),
            3..=6 => r.pick(&self.assignees).clone(),
            _ => (*r.pick(&EMAILS)).to_owned(),
        };
        let label_separator = *r.pick(&[", ", "|", ";"]);
        let labels = (0..1 + r.below(3))
            .map(|_| *r.pick(&LABELS))
            .collect::<Vec<_>>()
            .join(label_separator);
        let environments = (0..r.below(3))
            .map(|_| r.pick(&self.environments).clone())
            .collect::<Vec<_>>()
            .join(",");
        GenRow {
            cells: [
                title,
                description,
                status,
                project,
                human_id,
                cases,
                start_text,
                due_text,
                assignee,
                labels,
                environments,
            ],
            start,
            due,
        }
    }
}

/// The forms people type dates in. A date without a time reads as the start or the end
/// of that day, so a due date always stays after its start. Dotted and slashed dates are
/// day-first, and some have a day over 12, so the column proves dd/mm.
fn date_text(at: DateTime<Utc>, form: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = (at.year(), at.month(), at.day());
    let (hh, mm) = (at.hour(), at.minute());
    let month = MONTHS[(m - 1) as usize];
    match form {
        0 => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:00Z"),
        1 => format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}"),
        2 => format!("{y:04}-{m:02}-{d:02}"),
        3 => format!("{d:02}/{m:02}/{y:04} {hh:02}:{mm:02}"),
        4 => format!("{d} {month} {y}"),
        5 => format!("{month} {d}, {y}"),
        6 => at.timestamp().to_string(),
        _ => format!("{d:02}.{m:02}.{y:04} {hh:02}:{mm:02}"),
    }
}

/// The seed of every input: one stream of rows, cut at different lengths.
const SEED: u64 = 0x7E57_5167_3A00_0001;

/// `runs-<rows>.csv`, made if missing or stale.
pub fn csv_file(rows: usize) -> PathBuf {
    let path = data_dir().join(format!("runs-{rows}.csv"));
    ensure(&path, |out| write_csv(out, rows));
    path
}

/// `runs-<rows>.xlsx`, written by rust_xlsxwriter, made if missing or stale.
pub fn xlsx_file(rows: usize) -> PathBuf {
    let path = data_dir().join(format!("runs-{rows}.xlsx"));
    ensure(&path, |out| write_xlsx(out, rows));
    path
}

/// Makes `path` with `make` (into a temporary name, then renamed) unless the stamp next
/// to it says this generator version made it at its current size.
fn ensure(path: &Path, make: impl FnOnce(&Path) -> io::Result<()>) {
    let stamp = path.with_extension(format!(
        "{}.stamp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let size = fs::metadata(path).map(|m| m.len()).ok();
    let wanted = size.map(|s| format!("v{GENERATOR_VERSION} {s}\n"));
    if wanted.is_some() && fs::read_to_string(&stamp).ok() == wanted {
        return;
    }
    let started = Instant::now();
    eprint!("generating {} … ", path.display());
    let temp = path.with_extension("partial");
    if let Err(e) = make(&temp).and_then(|()| fs::rename(&temp, path)) {
        panic!("cannot write {}: {e}", path.display());
    }
    let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if let Err(e) = fs::write(&stamp, format!("v{GENERATOR_VERSION} {size}\n")) {
        panic!("cannot write {}: {e}", stamp.display());
    }
    eprintln!("{} in {:.1} s", human_bytes(size), started.elapsed().as_secs_f64());
}

fn write_csv(path: &Path, rows: usize) -> io::Result<()> {
    let file = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut writer = csv::Writer::from_writer(file);
    writer.write_record(HEADERS)?;
    let mut rows_gen = RowGen::new(SEED);
    for _ in 0..rows {
        let row = rows_gen.next_row();
        writer.write_record(&row.cells)?;
    }
    writer.flush()?;
    Ok(())
}

fn write_xlsx(path: &Path, rows: usize) -> io::Result<()> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let to_io = |e: rust_xlsxwriter::XlsxError| io::Error::other(e.to_string());
    let mut workbook = Workbook::new();
    let date_format = Format::new().set_num_format("dd/mm/yyyy hh:mm");
    let sheet = workbook.add_worksheet();
    sheet.set_name("Runs").map_err(to_io)?;
    for (column, header) in HEADERS.iter().enumerate() {
        sheet.write_string(0, column as u16, *header).map_err(to_io)?;
    }
    let mut rows_gen = RowGen::new(SEED);
    for i in 0..rows {
        let row = rows_gen.next_row();
        let sheet_row = (i + 1) as u32;
        for (column, text) in row.cells.iter().enumerate() {
            // Half the dates are real date cells, as Excel stores typed-in dates.
            let instant = match column {
                6 if i % 2 == 0 => Some(row.start),
                7 if i % 4 < 2 => Some(row.due),
                _ => None,
            };
            if let Some(at) = instant {
                let value = ExcelDateTime::from_timestamp(at.timestamp()).map_err(to_io)?;
                sheet
                    .write_datetime_with_format(sheet_row, column as u16, &value, &date_format)
                    .map_err(to_io)?;
            } else if !text.is_empty() {
                sheet.write_string(sheet_row, column as u16, text).map_err(to_io)?;
            }
        }
    }
    workbook.save(path).map_err(to_io)
}

/// What one measured run gave.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub seconds: f64,
    /// Peak resident set size, in KiB, when `/usr/bin/time` was there to tell.
    pub peak_rss_kib: Option<u64>,
    /// User plus system CPU time, in seconds, when `/usr/bin/time` was there to tell.
    pub cpu_seconds: Option<f64>,
    /// `key=value` pairs the child printed on its last stdout line.
    pub fields: Vec<(String, String)>,
    pub stderr: String,
}

impl Run {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn field_f64(&self, key: &str) -> Option<f64> {
        self.field(key).and_then(|v| v.parse().ok())
    }
}

/// Runs `program args` with `envs`, under `/usr/bin/time -v` when it exists, and returns
/// its wall time, peak RSS and the `key=value` pairs of its last stdout line. Panics,
/// with its stderr, when it exits with a code other than those in `ok_codes`.
pub fn run_measured(program: &Path, args: &[String], envs: &[(&str, &str)], cwd: &Path, ok_codes: &[i32]) -> Run {
    let time_out = cwd.join(".time-v.txt");
    let use_time = Path::new("/usr/bin/time").exists();
    let mut command = if use_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-v").arg("-o").arg(&time_out).arg(program);
        c
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .env_remove("TESTSIGMA_API_KEY")
        .env_remove("TESTSIGMA_BASE_URL")
        .env_remove("TESTSIGMA_PROJECT_ID");
    for (k, v) in envs {
        command.env(k, v);
    }
    let started = Instant::now();
    let output = match command.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {}: {e}", program.display()),
    };
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output.status.code().unwrap_or(-1);
    if !ok_codes.contains(&code) {
        panic!("{} {} exited with {code}:\n{stderr}", program.display(), args.join(" "));
    }
    let time_text = if use_time {
        fs::read_to_string(&time_out).ok()
    } else {
        None
    };
    let time_field = |name: &str| -> Option<f64> {
        time_text.as_deref().and_then(|text| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(": "))
                .and_then(|v| v.trim().parse().ok())
        })
    };
    let peak_rss_kib = time_field("Maximum resident set size (kbytes)").map(|kib| kib as u64);
    let cpu_seconds = time_field("User time (seconds)")
        .zip(time_field("System time (seconds)"))
        .map(|(user, system)| user + system);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let fields = stdout
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    Run {
        seconds,
        peak_rss_kib,
        cpu_seconds,
        fields,
        stderr,
    }
}

/// The run with the median time of `runs` (the upper one of an even count).
pub fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

pub fn rss_text(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1} MB", k as f64 * 1024.0 / 1e6))
}

/// `12 345 678` for readable counts.
pub fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The load average, to print beside the numbers: the machine may be shared.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".to_owned())
}

/// A plain text table with right-aligned columns after the first.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            for (i, cell) in cells.iter().enumerate().take(columns) {
                let pad = widths[i] - cell.chars().count();
                if i == 0 {
                    let _ = write!(out, "{cell}{}", " ".repeat(pad));
                } else {
                    let _ = write!(out, "  {}{cell}", " ".repeat(pad));
                }
            }
            out.push('\n');
        };
        line(&mut out, &self.header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, &rule);
        for row in &self.rows {
            line(&mut out, row);
        }
        out
    }
}

/// Elapsed time as the tables show it.
pub fn secs(d: f64) -> String {
    if d < 1.0 {
        format!("{:.0} ms", d * 1000.0)
    } else {
        format!("{d:.2} s")
    }
}

pub fn duration_secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Records the heading of one benchmark run: when, and how loaded the machine was.
pub fn record_heading(name: &str, what: &str) {
    record(
        name,
        &format!(
            "\n== {what} benchmarks, {} (load average {}, {} CPUs)\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
            load_average(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
    );
}

/// Appends `text` to `<data dir>/<name>` as well as printing it, so results survive a
/// later case failing (as hyperfine exports after each benchmark).
pub fn record(name: &str, text: &str) {
    print!("{text}");
    let _ = io::stdout().flush();
    let path = data_dir().join(name);
    if let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(text.as_bytes());
    }
}
