//! Upload benchmarks: the release binary imports into the in-process sandbox at several
//! latencies and rates, and the achieved rate is set against the ideal
//! `min(rate, concurrency / latency)`. The sandbox is limited to exactly `--rate`, so a
//! single refusal means the uploader went over it.
//!
//! `cargo bench --bench upload` runs the standard cases (about two minutes);
//! `cargo bench --bench upload -- adaptive` runs the long one (a sandbox limited to 5/s,
//! `--rate 20`, 500 rows: about 100 s at best); `-- all` runs every case, and any other
//! word runs the cases whose name contains it. Results are printed and appended to
//! `<target>/bench-data/results-upload.txt`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Run, Table, record, rss_text};
use testsigma_import::sandbox::{Sandbox, SandboxOptions, SandboxStats};

const BINARY: &str = env!("CARGO_BIN_EXE_testsigma-import");
const RESULTS: &str = "results-upload.txt";

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    rows: usize,
    latency_ms: u64,
    rate: u32,
    concurrency: usize,
    /// The sandbox's limit; the standard cases use exactly `rate`.
    limit: u32,
    /// Run only when asked for by name (or `all`).
    long: bool,
    /// Another client uses the same key for this many seconds from the start, at twice the
    /// sandbox's limit, so that it has the whole window: the uploader must slow down, then
    /// climb back to `--rate` once the other client is gone.
    shared_for_secs: u64,
}

impl Case {
    /// `min(rate, concurrency / latency)`, for the service's limit and ours.
    fn ideal_rate(&self) -> f64 {
        let rate = f64::from(self.rate.min(self.limit));
        if self.latency_ms == 0 {
            rate
        } else {
            rate.min(self.concurrency as f64 * 1000.0 / self.latency_ms as f64)
        }
    }
}

const CASES: [Case; 6] = [
    Case {
        name: "headline-2000rows-100ms-rate50-c8",
        rows: 2_000,
        latency_ms: 100,
        rate: 50,
        concurrency: 8,
        limit: 50,
        long: false,
        shared_for_secs: 0,
    },
    Case {
        name: "fast-service-1000rows-0ms-rate100-c8",
        rows: 1_000,
        latency_ms: 0,
        rate: 100,
        concurrency: 8,
        limit: 100,
        long: false,
        shared_for_secs: 0,
    },
    Case {
        name: "slow-service-300rows-250ms-rate20-c4",
        rows: 300,
        latency_ms: 250,
        rate: 20,
        concurrency: 4,
        limit: 20,
        long: false,
        shared_for_secs: 0,
    },
    Case {
        name: "defaults-200rows-50ms-rate8-c4",
        rows: 200,
        latency_ms: 50,
        rate: 8,
        concurrency: 4,
        limit: 8,
        long: false,
        shared_for_secs: 0,
    },
    Case {
        name: "adaptive-500rows-100ms-rate20-limit5-c4",
        rows: 500,
        latency_ms: 100,
        rate: 20,
        concurrency: 4,
        limit: 5,
        long: true,
        shared_for_secs: 0,
    },
    Case {
        name: "shared-key-4s-120rows-0ms-rate10-limit10-c4",
        rows: 120,
        latency_ms: 0,
        rate: 10,
        concurrency: 4,
        limit: 10,
        long: false,
        shared_for_secs: 4,
    },
];

/// What one import into the sandbox gave.
struct Outcome {
    case: Case,
    run: Run,
    stats: SandboxStats,
    summary: serde_json::Value,
}

impl Outcome {
    fn number(&self, key: &str) -> f64 {
        self.summary
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    }

    fn count(&self, outcome: &str) -> u64 {
        self.summary
            .get("counts")
            .and_then(|c| c.get(outcome))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    }
}

fn main() {
    let smoke = !support::bench_mode();
    let filters = support::case_filters();
    let everything = filters.iter().any(|f| f == "all");
    let chosen: Vec<Case> = if smoke {
        // `cargo test --benches`: one small import proves the harness works.
        vec![Case {
            name: "smoke-40rows-10ms-rate50-c8",
            rows: 40,
            latency_ms: 10,
            rate: 50,
            concurrency: 8,
            limit: 50,
            long: false,
            shared_for_secs: 0,
        }]
    } else {
        CASES
            .iter()
            .copied()
            .filter(|c| {
                if everything {
                    true
                } else if filters.is_empty() {
                    !c.long
                } else {
                    filters.iter().any(|f| c.name.contains(f.as_str()))
                }
            })
            .collect()
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"));
    support::record_heading(RESULTS, "upload");
    let mut outcomes = Vec::new();
    for case in chosen {
        let outcome = run_case(&runtime, case);
        record(RESULTS, &describe(&outcome));
        outcomes.push(outcome);
    }
    if !outcomes.is_empty() {
        record(RESULTS, &summary_table(&outcomes));
    }
}

fn run_case(runtime: &tokio::runtime::Runtime, case: Case) -> Outcome {
    let input = support::csv_file(case.rows);
    let dir = support::data_dir().join("work-upload");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    let options = SandboxOptions {
        latency: Duration::from_millis(case.latency_ms),
        rate_limit: Some(case.limit),
        ..SandboxOptions::default()
    };
    let sandbox = runtime
        .block_on(Sandbox::start(options, 0))
        .unwrap_or_else(|e| panic!("cannot start the sandbox: {e}"));
    let summary_path = dir.join(format!("{}.summary.json", case.name));
    let args = import_args(&case, &input, &sandbox.base_url(), &dir, &summary_path);
    eprintln!("{}: {}", case.name, printable(&args));
    if case.shared_for_secs > 0 {
        runtime.spawn(share_the_key(sandbox.base_url(), case));
    }
    // The sandbox serves on the runtime's worker thread while this one waits for the child.
    let run = support::run_measured(
        Path::new(BINARY),
        &args,
        &[("TESTSIGMA_API_KEY", "bench"), ("CI", "true")],
        &dir,
        &[0, 1],
    );
    let stats = sandbox.stats();
    runtime.block_on(sandbox.shutdown());
    let text = std::fs::read_to_string(&summary_path)
        .unwrap_or_else(|e| panic!("no summary at {}: {e}\n{}", summary_path.display(), run.stderr));
    let summary = serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary is not JSON: {e}\n{text}"));
    Outcome {
        case,
        run,
        stats,
        summary,
    }
}

/// Another client on the same key: `GET /test_runs/statuses` at twice the limit for
/// `shared_for_secs`, so the window is full and the uploader's requests are refused.
async fn share_the_key(base_url: String, case: Case) {
    let client = reqwest::Client::new();
    let url = format!("{base_url}/test_runs/statuses");
    let until = tokio::time::Instant::now() + Duration::from_secs(case.shared_for_secs);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(0.5 / f64::from(case.limit)));
    while tokio::time::Instant::now() < until {
        tick.tick().await;
        let request = client.get(&url).bearer_auth("bench").send();
        tokio::spawn(request);
    }
}

fn import_args(case: &Case, input: &Path, base_url: &str, dir: &Path, summary: &Path) -> Vec<String> {
    let report: PathBuf = dir.join(format!("{}.report.csv", case.name));
    [
        "import".to_owned(),
        input.display().to_string(),
        "--base-url".to_owned(),
        base_url.to_owned(),
        "--rate".to_owned(),
        case.rate.to_string(),
        "--concurrency".to_owned(),
        case.concurrency.to_string(),
        "--no-state".to_owned(),
        "--summary-json".to_owned(),
        summary.display().to_string(),
        "--report".to_owned(),
        report.display().to_string(),
    ]
    .to_vec()
}

fn printable(args: &[String]) -> String {
    format!("testsigma-import {}", args.join(" "))
}

fn describe(o: &Outcome) -> String {
    let c = &o.case;
    let ideal = c.ideal_rate();
    let pace = o.number("effective_rate");
    let elapsed = o.number("elapsed_seconds");
    let sent = o.number("requests_sent");
    let created = o.count("created");
    let failed = o.count("failed") + o.count("unknown") + o.count("not_sent") + o.count("invalid");
    let throughput = created as f64 / elapsed;
    let mut text = format!(
        "\n{}: {} rows, sandbox latency {} ms and limit {}/s; --rate {} --concurrency {} (load average {})\n\
         \x20 created {created}, not created {failed}, requests sent {sent}, sandbox refusals for the rate limit {}\n\
         \x20 send pace (effective_rate) {pace:.2}/s = {:.3} of the ideal {ideal:.2}/s; created/elapsed {throughput:.2}/s = {:.3}\n\
         \x20 elapsed {elapsed:.1} s (ideal {:.1} s, ratio {:.3}); uploader peak RSS {}\n",
        c.name,
        c.rows,
        c.latency_ms,
        c.limit,
        c.rate,
        c.concurrency,
        support::load_average(),
        o.stats.rate_limited,
        pace / ideal,
        throughput / ideal,
        c.rows as f64 / ideal,
        elapsed / (c.rows as f64 / ideal),
        rss_text(o.run.peak_rss_kib),
    );
    if c.shared_for_secs > 0 {
        let ideal_secs = c.shared_for_secs as f64 + c.rows as f64 / f64::from(c.rate);
        text.push_str(&format!(
            "  key shared for the first {} s: elapsed {elapsed:.1} s, ideal about {ideal_secs:.0} s ({:.2}x); every row created → {}\n",
            c.shared_for_secs,
            elapsed / ideal_secs,
            if failed == 0 { "PASS" } else { "FAIL" }
        ));
    } else if c.limit < c.rate {
        let within = elapsed <= 1.3 * c.rows as f64 / ideal && failed == 0;
        text.push_str(&format!(
            "  adaptive: ends within 1.3x of the ideal with no row failed → {}\n",
            if within { "PASS" } else { "FAIL" }
        ));
    } else {
        let ok = pace / ideal >= 0.95 && o.stats.rate_limited == 0 && failed == 0;
        text.push_str(&format!(
            "  at least 0.95 of the ideal, zero refusals, every row created → {}\n",
            if ok { "PASS" } else { "FAIL" }
        ));
    }
    if failed > 0 || o.run.stderr.contains("refused") {
        let tail: Vec<&str> = o.run.stderr.lines().rev().take(6).collect();
        text.push_str(&format!(
            "  uploader said: {}\n",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    text
}

fn summary_table(outcomes: &[Outcome]) -> String {
    let mut table = Table::new(&[
        "case",
        "ideal/s",
        "pace/s",
        "pace/ideal",
        "created/elapsed ÷ ideal",
        "refusals",
        "not created",
        "elapsed",
    ]);
    for o in outcomes {
        let ideal = o.case.ideal_rate();
        let elapsed = o.number("elapsed_seconds");
        let failed = o.count("failed") + o.count("unknown") + o.count("not_sent") + o.count("invalid");
        table.row(vec![
            o.case.name.to_owned(),
            format!("{ideal:.1}"),
            format!("{:.2}", o.number("effective_rate")),
            format!("{:.3}", o.number("effective_rate") / ideal),
            format!("{:.3}", o.count("created") as f64 / elapsed / ideal),
            o.stats.rate_limited.to_string(),
            failed.to_string(),
            format!("{elapsed:.1} s"),
        ]);
    }
    format!("\n{}", table.render())
}
