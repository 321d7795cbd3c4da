//! The million-row migration: the release binary imports 1,000,000 generated rows into a
//! sandbox in a process of its own (`testsigma-import sandbox`), then runs the same import
//! again, which finds every row in the ledger and sends nothing. Each is measured under
//! `/usr/bin/time -v`: its time, and its peak memory, which must stay flat (under 200 MB)
//! however many rows there are. The ledger's size is printed too.
//!
//! `cargo bench --bench migration` runs 1,000,000 rows (about 35 minutes on a 2-core
//! machine, most of it the two fsyncs each row's ledger lines take); `cargo bench --bench migration
//! -- 100000` runs another count. `cargo test --benches` runs 200 rows. Results are
//! printed and appended to `<target>/bench-data/results-migration.txt`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::{Run, grouped, human_bytes, record, rss_text, run_measured, secs};

const BINARY: &str = env!("CARGO_BIN_EXE_testsigma-import");
const RESULTS: &str = "results-migration.txt";

/// The sandbox, a process of its own so that its memory (every run it holds) is not
/// counted as the import's.
struct SandboxProcess {
    child: Child,
    base_url: String,
}

impl SandboxProcess {
    fn start() -> SandboxProcess {
        let mut child = Command::new(BINARY)
            .args(["sandbox", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the sandbox: {e}"));
        let stdout = child.stdout.take().expect("the sandbox's stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        // Whatever else it says is read and dropped, so it never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("the sandbox did not say where it listens ({read:?}): {line:?}"));
        SandboxProcess { child, base_url }
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let rows = support::rows_wanted(1_000_000, 200);
    support::record_heading(RESULTS, "migration");
    let input = support::csv_file(rows);
    let dir = support::data_dir().join(format!("migration-{rows}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let sandbox = SandboxProcess::start();
    let import = |report: &str| -> Run {
        let args: Vec<String> = [
            "import",
            &input.display().to_string(),
            "--base-url",
            &sandbox.base_url,
            "--rate",
            "10000",
            "--concurrency",
            "32",
            "--state",
            "ledger.jsonl",
            "--report",
            report,
            "--quiet",
            "--timestamps",
            "never",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        run_measured(
            Path::new(BINARY),
            &args,
            &[("TESTSIGMA_API_KEY", "bench-key")],
            &dir,
            &[0],
        )
    };
    let first = import("first.report.csv");
    let again = import("again.report.csv");
    let ledger = std::fs::metadata(dir.join("ledger.jsonl")).map_or(0, |m| m.len());
    let line = |what: &str, run: &Run| {
        format!(
            "  {what:<42} {:>9}  peak {:>9}  {}\n",
            secs(run.seconds),
            rss_text(run.peak_rss_kib),
            run.stderr
                .lines()
                .rev()
                .find(|l| l.contains(" rows: "))
                .unwrap_or("")
                .trim()
        )
    };
    record(
        RESULTS,
        &format!(
            "{} rows ({}) into a sandbox process, --rate 10000 --concurrency 32:\n{}{}  ledger {} ({} bytes a row)\n",
            grouped(rows as f64),
            human_bytes(std::fs::metadata(&input).map_or(0, |m| m.len())),
            line("import", &first),
            line("the same import again (nothing to send)", &again),
            human_bytes(ledger),
            ledger / rows.max(1) as u64,
        ),
    );
    for (what, run) in [("import", &first), ("re-run", &again)] {
        if let Some(kib) = run.peak_rss_kib
            && kib > 200 * 1024
        {
            record(RESULTS, &format!("  over the 200 MB the {what} may take\n"));
        }
    }
}
