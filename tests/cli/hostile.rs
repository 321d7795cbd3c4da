//! The hostile side of an import, through the real binary against servers on 127.0.0.1:
//! a service that misbehaves (every sandbox fault, in one table), files that are strange
//! (empty, binary, truncated, encrypted, oversized), an API key that must never show up
//! in anything a run writes or prints nor travel to another host, and a report that runs
//! nothing when opened in a spreadsheet.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use testsigma_import::sandbox::{Fault, FaultRule, Sandbox, SandboxOptions, SandboxStats};
use testsigma_import::{Outcome, ReportRow};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::common::{Output, PROJECT, bare_command, read_csv_report, read_request, run, wait_until};

/// Unlike anything else a run could print, so finding it anywhere is a leak.
const KEY: &str = "tsk_live_Zq8x3Hc1-hostile-7e5b2a9d";
const SEED: u64 = 20_240_317;

// ---------------------------------------------------------------------------------------
// The rig: a temp dir, a runtime serving in-process servers, the binary run in the dir.

struct Rig {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Rig {
    fn new() -> Rig {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Rig {
            dir: tempfile::tempdir().expect("a temp dir"),
            rt,
        }
    }

    fn start(&self, opts: SandboxOptions) -> Sandbox {
        self.rt.block_on(Sandbox::start(opts, 0)).expect("the sandbox starts")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    fn read(&self, name: &str) -> String {
        let path = self.path(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The binary in the dir: no TESTSIGMA_* or RUST_LOG from the caller, CI=true, and
    /// `key` (if any) in TESTSIGMA_API_KEY.
    fn command(&self, key: Option<&str>) -> Command {
        bare_command(self.dir.path(), key)
    }

    /// `import FILE --base-url BASE` with `key`.
    fn import(&self, base: &str, file: &str, key: Option<&str>) -> Command {
        let mut cmd = self.command(key);
        cmd.args(["import", file, "--base-url", base]);
        cmd
    }

    fn report(&self, name: &str) -> Vec<ReportRow> {
        read_csv_report(&self.path(name))
    }
}

/// `Title,Project,Key` and `n` rows `Run <tag> NN` / `HX-NN`.
fn rows_csv(tag: &str, n: usize) -> String {
    let mut csv = String::from("Title,Project,Key\n");
    for i in 1..=n {
        csv.push_str(&format!("{},{PROJECT},HX-{i:02}\n", title_of(tag, i)));
    }
    csv
}

fn title_of(tag: &str, i: usize) -> String {
    format!("Run {tag} {i:02}")
}

fn count(rows: &[ReportRow], outcome: Outcome) -> usize {
    rows.iter().filter(|r| r.outcome == outcome).count()
}

fn title(row: &ReportRow) -> &str {
    row.title.as_deref().unwrap_or("")
}

/// Every stored run's title, with how many runs carry it.
fn sandbox_titles(sandbox: &Sandbox) -> HashMap<String, usize> {
    let mut titles = HashMap::new();
    for run in sandbox.runs() {
        let t = run.body["title"].as_str().unwrap_or("").to_string();
        *titles.entry(t).or_insert(0) += 1;
    }
    titles
}

fn fault(fault: Fault, probability: f64) -> FaultRule {
    FaultRule { fault, probability }
}

fn faulty(faults: Vec<FaultRule>) -> SandboxOptions {
    SandboxOptions {
        faults,
        seed: Some(SEED),
        ..SandboxOptions::default()
    }
}

// ---------------------------------------------------------------------------------------
// The fault matrix.

/// What a fault means for the rows that meet it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The sandbox created the run but the answer was lost or unusable: such rows must
    /// be `unknown` after exactly one attempt, with this status and error wording.
    CreatedUnanswered {
        http_status: Option<u16>,
        error: &'static str,
    },
    /// The connection died after the whole request was sent, and the sandbox created
    /// nothing; the client cannot tell this from a lost answer, so `unknown`, one attempt.
    NotCreatedUnanswered,
    /// The service said "later" and created nothing: retried, and every row ends
    /// created (or failed once `--max-retries` is used up).
    RetriedUntilCreated,
    /// A redirect to another host: the run stops (exit 2), that host hears nothing.
    Redirect,
    /// Several faults at once: only the invariants every case shares.
    Mixed,
}

struct Case {
    name: &'static str,
    /// The sandbox's random 503 share, which creates nothing.
    fail_rate: f64,
    /// `None` in a rule's place is the redirect, which needs the target's address.
    faults: Vec<Option<FaultRule>>,
    timeout: &'static str,
    expect: Expect,
}

/// `--timeout` where requests that never answer must run into it (`slow`, `mixed`; the
/// `slow` case's error names it): a thousand times what an answer takes on loopback, so
/// that on a loaded machine, or one whose CPUs are taken away for a second or two, no
/// other request meets it. At 1 s, an ordinary answer held up by such a stall timed out
/// too: one `unknown` row more than faults, or an attempt the sandbox never received.
const TIMED_OUT: &str = "5";
/// `--timeout` where no request is meant to time out: far beyond any stall.
const UNHURRIED: &str = "120";

fn matrix_cases() -> Vec<Case> {
    let one = |name, fault_rule: FaultRule, timeout, expect| Case {
        name,
        fail_rate: 0.0,
        faults: vec![Some(fault_rule)],
        timeout,
        expect,
    };
    // An answer that never comes while the run lasts: it misses `--timeout` however
    // slowly the machine runs.
    let slow = Fault::Slow(Duration::from_secs(3600));
    vec![
        one(
            "reset-before",
            fault(Fault::ResetBeforeRead, 0.4),
            UNHURRIED,
            Expect::NotCreatedUnanswered,
        ),
        one(
            "reset-after",
            fault(Fault::ResetAfterRead, 0.4),
            UNHURRIED,
            Expect::CreatedUnanswered {
                http_status: None,
                error: "the connection failed after sending",
            },
        ),
        one(
            "slow",
            fault(slow.clone(), 0.4),
            TIMED_OUT,
            Expect::CreatedUnanswered {
                http_status: None,
                error: "no answer within 5 s (--timeout); the run may exist",
            },
        ),
        one(
            "truncated",
            fault(Fault::TruncatedBody, 0.4),
            UNHURRIED,
            Expect::CreatedUnanswered {
                http_status: Some(200),
                error: "the answer's body could not be read",
            },
        ),
        one(
            "non-json",
            fault(Fault::NonJson, 0.4),
            UNHURRIED,
            Expect::CreatedUnanswered {
                http_status: Some(200),
                error: "HTTP 200 but the body holds no test run id, so the run may exist",
            },
        ),
        one(
            "no-id",
            fault(Fault::OkWithoutId, 0.4),
            UNHURRIED,
            Expect::CreatedUnanswered {
                http_status: Some(200),
                error: "HTTP 200 but the body holds no test run id, so the run may exist",
            },
        ),
        one(
            "error-after",
            fault(Fault::ErrorAfterCreate, 0.4),
            UNHURRIED,
            Expect::CreatedUnanswered {
                http_status: Some(500),
                error: "HTTP 500: Internal Server Error; the run may exist",
            },
        ),
        one(
            "retry-after",
            fault(Fault::RetryAfterSeconds(1), 0.3),
            UNHURRIED,
            Expect::RetriedUntilCreated,
        ),
        one(
            "retry-after-date",
            fault(Fault::RetryAfterDate(1), 0.3),
            UNHURRIED,
            Expect::RetriedUntilCreated,
        ),
        Case {
            name: "fail-rate 503",
            fail_rate: 0.3,
            faults: Vec::new(),
            timeout: UNHURRIED,
            expect: Expect::RetriedUntilCreated,
        },
        Case {
            name: "redirect",
            fail_rate: 0.0,
            faults: vec![None],
            timeout: UNHURRIED,
            expect: Expect::Redirect,
        },
        Case {
            name: "mixed",
            fail_rate: 0.0,
            faults: [
                Fault::ResetBeforeRead,
                Fault::ResetAfterRead,
                slow,
                Fault::TruncatedBody,
                Fault::NonJson,
                Fault::OkWithoutId,
                Fault::ErrorAfterCreate,
                Fault::RetryAfterSeconds(1),
                Fault::RetryAfterDate(1),
            ]
            .into_iter()
            .map(|f| Some(fault(f, 0.06)))
            .collect(),
            timeout: TIMED_OUT,
            expect: Expect::Mixed,
        },
    ]
}

const MATRIX_ROWS: usize = 20;
const MAX_RETRIES: u32 = 5;

/// One line of the printed matrix.
struct MatrixLine {
    name: &'static str,
    exit: i32,
    counts: BTreeMap<Outcome, usize>,
    posts: u64,
    faults: u64,
    max_attempts: u32,
    runs: usize,
    elsewhere: u64,
}

/// Every fault of the sandbox, one case each, all of them at once, and its random
/// 503, on 20 rows with `--max-retries 5 --concurrency 4 --rate 50`. For each: the
/// run finishes, every row has exactly one outcome, the report's created rows are
/// exactly the sandbox's runs (same ids), a row that may exist is `unknown` and never
/// `failed`, nothing that may have been acted on is sent twice, and no other host hears
/// anything. The table of outcomes per fault is printed (`-- --nocapture fault_matrix`).
#[test]
fn fault_matrix() {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for case in matrix_cases() {
        let rig = Rig::new();
        let elsewhere = rig.start(SandboxOptions::default());
        let faults: Vec<FaultRule> = case
            .faults
            .iter()
            .map(|rule| {
                rule.clone()
                    .unwrap_or_else(|| fault(Fault::RedirectTo(elsewhere.base_url()), 0.4))
            })
            .collect();
        let sandbox = rig.start(SandboxOptions {
            fail_rate: case.fail_rate,
            ..faulty(faults)
        });
        rig.write("runs.csv", rows_csv(case.name, MATRIX_ROWS));
        let mut cmd = rig.import(&sandbox.base_url(), "runs.csv", Some(KEY));
        cmd.args([
            "--timeout",
            case.timeout,
            "--max-retries",
            &MAX_RETRIES.to_string(),
            "--concurrency",
            "4",
            "--rate",
            "50",
            "--summary-json",
            "summary.json",
        ]);
        let out = run(cmd);
        let rows = rig.report("runs.report.csv");
        let summary: Value = serde_json::from_str(&rig.read("summary.json")).expect("--summary-json holds JSON");
        let found = check_case(&case, &out, &rows, &summary, &sandbox, &elsewhere);
        problems.extend(found.into_iter().map(|p| format!("{}: {p}", case.name)));
        let stats = sandbox.stats();
        lines.push(MatrixLine {
            name: case.name,
            exit: out.code,
            counts: Outcome::ALL.iter().map(|o| (*o, count(&rows, *o))).collect(),
            posts: stats.posts_received,
            faults: stats.faults_injected,
            max_attempts: rows.iter().map(|r| r.attempts).max().unwrap_or(0),
            runs: sandbox.runs().len(),
            elsewhere: elsewhere.stats().posts_received,
        });
    }
    print_matrix(&lines);
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn print_matrix(lines: &[MatrixLine]) {
    eprintln!(
        "\nfault matrix: {MATRIX_ROWS} rows per case, --max-retries {MAX_RETRIES} --concurrency 4 --rate 50, seed {SEED}"
    );
    eprintln!(
        "{:<17} {:>4} {:>7} {:>7} {:>6} {:>8} | {:>5} {:>6} {:>12} {:>12} {:>9}",
        "fault",
        "exit",
        "created",
        "unknown",
        "failed",
        "not_sent",
        "POSTs",
        "faults",
        "max attempts",
        "sandbox runs",
        "elsewhere"
    );
    for l in lines {
        let n = |o: Outcome| l.counts.get(&o).copied().unwrap_or(0);
        eprintln!(
            "{:<17} {:>4} {:>7} {:>7} {:>6} {:>8} | {:>5} {:>6} {:>12} {:>12} {:>9}",
            l.name,
            l.exit,
            n(Outcome::Created),
            n(Outcome::Unknown),
            n(Outcome::Failed),
            n(Outcome::NotSent),
            l.posts,
            l.faults,
            l.max_attempts,
            l.runs,
            l.elsewhere
        );
    }
}

/// Everything a case must satisfy; each broken rule is one line.
fn check_case(
    case: &Case,
    out: &Output,
    rows: &[ReportRow],
    summary: &Value,
    sandbox: &Sandbox,
    elsewhere: &Sandbox,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    let stats = sandbox.stats();
    let runs = sandbox.runs();
    let stored = sandbox_titles(sandbox);

    // Every row exactly once, in input order.
    let numbers: Vec<usize> = rows.iter().map(|r| r.row).collect();
    let want_numbers: Vec<usize> = (2..MATRIX_ROWS + 2).collect();
    check(numbers == want_numbers, format!("report rows {numbers:?}"));
    let titles: Vec<&str> = rows.iter().map(title).collect();
    let want_titles: Vec<String> = (1..=MATRIX_ROWS).map(|i| title_of(case.name, i)).collect();
    check(titles == want_titles, format!("report titles {titles:?}"));

    // Nothing created twice, nothing the file did not ask for.
    for (t, n) in &stored {
        check(*n == 1, format!("the sandbox holds {n} runs titled {t:?}"));
        check(want_titles.contains(t), format!("the sandbox holds a run titled {t:?}"));
    }

    // Created rows are exactly runs the sandbox holds, with its ids; rows it holds are
    // created or unknown, never failed or not sent.
    for row in rows {
        let t = title(row);
        let run = runs.iter().find(|r| r.body["title"] == t);
        match row.outcome {
            Outcome::Created => match run {
                None => check(
                    false,
                    format!("row {} is created but the sandbox has no such run", row.row),
                ),
                Some(run) => {
                    check(
                        row.test_run_id.as_deref() == Some(run.id.as_str())
                            && row.test_run_human_id.as_deref() == Some(run.human_id.as_str())
                            && row.http_status == Some(200),
                        format!("row {} created with {row:?}, the sandbox stored {run:?}", row.row),
                    );
                }
            },
            Outcome::Unknown => {}
            Outcome::Failed | Outcome::NotSent => check(
                run.is_none(),
                format!("row {} is {:?} but the sandbox created it", row.row, row.outcome),
            ),
            other => check(false, format!("row {} is {other:?}", row.row)),
        }
        check(
            row.outcome != Outcome::NotSent || row.attempts == 0,
            format!("row {} not_sent after {} attempts", row.row, row.attempts),
        );
        check(
            row.outcome != Outcome::Unknown || row.attempts >= 1,
            format!("row {} unknown without an attempt", row.row),
        );
        // A failed row in a case without redirects is one the service kept refusing.
        if row.outcome == Outcome::Failed && case.expect != Expect::Redirect {
            check(
                matches!(case.expect, Expect::RetriedUntilCreated | Expect::Mixed)
                    && row.attempts == MAX_RETRIES + 1
                    && matches!(row.http_status, Some(500 | 503)),
                format!("row {} failed: {row:?}", row.row),
            );
        }
    }

    // Every request the report counts reached the sandbox, and no other.
    let attempts: u64 = rows.iter().map(|r| u64::from(r.attempts)).sum();
    check(
        stats.posts_received == attempts,
        format!(
            "the sandbox received {} POSTs, the report counts {attempts} attempts",
            stats.posts_received
        ),
    );
    check(stats.faults_injected > 0, "no fault was injected".to_string());
    check(
        elsewhere.stats() == SandboxStats::default() && elsewhere.runs().is_empty(),
        format!("the other host heard something: {}", elsewhere.stats()),
    );

    // Exit code and summary agree with the rows.
    let all_created = rows.iter().all(|r| r.outcome == Outcome::Created);
    let want_exit = match case.expect {
        Expect::Redirect => 2,
        _ if all_created => 0,
        _ => 1,
    };
    check(
        out.code == want_exit,
        format!("exit {} (want {want_exit})\n{}", out.code, out.streams()),
    );
    check(
        summary["exit_code"] == want_exit,
        format!("summary exit_code {}", summary["exit_code"]),
    );
    for o in Outcome::ALL {
        check(
            summary["counts"][o.as_str()] == count(rows, o),
            format!("summary counts {} for {}", summary["counts"], o.as_str()),
        );
    }

    let unknown: Vec<&ReportRow> = rows.iter().filter(|r| r.outcome == Outcome::Unknown).collect();
    match case.expect {
        Expect::CreatedUnanswered { http_status, error } => {
            check(
                rows.iter()
                    .all(|r| matches!(r.outcome, Outcome::Created | Outcome::Unknown)),
                "a row is neither created nor unknown".to_string(),
            );
            for row in &unknown {
                check(
                    stored.contains_key(title(row)),
                    format!("row {} is unknown but the sandbox did not create it", row.row),
                );
                let message = row.error.as_deref().unwrap_or("");
                check(
                    row.http_status == http_status && message.contains(error),
                    format!("row {} unknown with {:?} {message:?}", row.row, row.http_status),
                );
            }
            check(
                rows.iter().all(|r| r.attempts == 1),
                "a row whose run may exist was sent again".to_string(),
            );
            check(runs.len() == MATRIX_ROWS, format!("{} runs stored", runs.len()));
            check(
                unknown.len() as u64 == stats.faults_injected,
                format!("{} unknown rows, {} faults", unknown.len(), stats.faults_injected),
            );
        }
        Expect::NotCreatedUnanswered => {
            check(
                rows.iter()
                    .all(|r| matches!(r.outcome, Outcome::Created | Outcome::Unknown)),
                "a row is neither created nor unknown".to_string(),
            );
            for row in &unknown {
                check(
                    !stored.contains_key(title(row)),
                    format!("row {} is unknown and the sandbox created it", row.row),
                );
            }
            check(
                rows.iter().all(|r| r.attempts == 1),
                "a row that may have been acted on was sent again".to_string(),
            );
            check(
                unknown.len() as u64 == stats.faults_injected,
                format!("{} unknown rows, {} faults", unknown.len(), stats.faults_injected),
            );
        }
        Expect::RetriedUntilCreated => {
            check(unknown.is_empty(), format!("{} unknown rows", unknown.len()));
            check(rows.iter().any(|r| r.attempts > 1), "no row was retried".to_string());
            // A created row took one POST more than the refusals it met; a row that
            // used up its retries took exactly as many as it met.
            let gave_up = count(rows, Outcome::Failed) as u64;
            check(
                stats.posts_received == MATRIX_ROWS as u64 + stats.faults_injected - gave_up,
                format!("{} POSTs for {} faults", stats.posts_received, stats.faults_injected),
            );
        }
        Expect::Redirect => {
            let base = elsewhere.base_url();
            let advice = format!("use --base-url {base}");
            check(
                out.stderr.contains(&advice),
                format!("stderr does not say {advice:?}:\n{}", out.stderr),
            );
            check(unknown.is_empty(), format!("{} unknown rows", unknown.len()));
            let redirected: Vec<&ReportRow> = rows.iter().filter(|r| r.outcome == Outcome::Failed).collect();
            check(!redirected.is_empty(), "no row met the redirect".to_string());
            for row in redirected {
                check(
                    row.http_status == Some(308) && row.error.as_deref().is_some_and(|e| e.contains(&advice)),
                    format!("row {} failed with {row:?}", row.row),
                );
            }
            for row in rows.iter().filter(|r| r.outcome == Outcome::NotSent) {
                check(
                    row.error.as_deref().is_some_and(|e| e.starts_with("not sent: ")),
                    format!("row {} not sent with {:?}", row.row, row.error),
                );
            }
        }
        Expect::Mixed => {}
    }
    problems
}

// ---------------------------------------------------------------------------------------
// Redirects and the Authorization header.

/// A TCP listener on 127.0.0.1 that notes every connection it accepts.
struct Recorder {
    base_url: String,
    addr: std::net::SocketAddr,
    accepted: Arc<Mutex<Vec<std::net::SocketAddr>>>,
}

impl Recorder {
    fn start(rig: &Rig) -> Recorder {
        let listener = rig
            .rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind a recorder");
        let addr = listener.local_addr().expect("its address");
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let noted = accepted.clone();
        rig.rt.spawn(async move {
            // A connection at all is the failure: what it would carry does not matter.
            while let Ok((_stream, peer)) = listener.accept().await {
                noted.lock().expect("the recorder's lock").push(peer);
            }
        });
        Recorder {
            base_url: format!("http://{addr}/api/v1"),
            addr,
            accepted,
        }
    }

    /// How many connections were made to it before this call. A listener is handed its
    /// connections in the order they were made, so once one made now has been accepted,
    /// every earlier one has been too: a count, not a guess at how long a stray connection
    /// takes to show up.
    fn connections_so_far(&self) -> usize {
        let probe = std::net::TcpStream::connect(self.addr).expect("connect to the recorder");
        let mine = probe.local_addr().expect("its address");
        let mut before = None;
        wait_until("the recorder to accept the probe", || {
            let accepted = self.accepted.lock().expect("the recorder's lock");
            before = accepted.iter().position(|peer| *peer == mine);
            before.is_some()
        });
        before.unwrap_or_default()
    }
}

/// A 308 to another host: the first row fails naming the base URL to use, the rest are
/// not sent, exit 2, and the other host never sees a connection (let alone the key).
#[test]
fn a_redirect_to_another_host_stops_the_run_and_that_host_hears_nothing() {
    let rig = Rig::new();
    let other = Recorder::start(&rig);
    let sandbox = rig.start(faulty(vec![fault(Fault::RedirectTo(other.base_url.clone()), 1.0)]));
    rig.write("runs.csv", rows_csv("redirect", 5));
    let mut cmd = rig.import(&sandbox.base_url(), "runs.csv", Some(KEY));
    cmd.args(["--concurrency", "1"]);
    let out = run(cmd);

    assert_eq!(out.code, 2, "{}", out.streams());
    let advice = format!("use --base-url {}", other.base_url);
    let location = format!("{}/projects/{PROJECT}/test_runs", other.base_url);
    let error = out.error_lines();
    assert_eq!(error.len(), 1, "{}", out.streams());
    assert!(
        error[0].contains("HTTP 308") && error[0].contains(&location) && error[0].contains(&advice),
        "{}",
        error[0]
    );
    let rows = rig.report("runs.report.csv");
    let outcomes: Vec<(usize, Outcome, u32, Option<u16>)> = rows
        .iter()
        .map(|r| (r.row, r.outcome, r.attempts, r.http_status))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (2, Outcome::Failed, 1, Some(308)),
            (3, Outcome::NotSent, 0, None),
            (4, Outcome::NotSent, 0, None),
            (5, Outcome::NotSent, 0, None),
            (6, Outcome::NotSent, 0, None),
        ]
    );
    assert!(
        rows[0].error.as_deref().is_some_and(|e| e.contains(&advice)),
        "{:?}",
        rows[0]
    );
    assert!(sandbox.runs().is_empty());
    assert_eq!(sandbox.stats().posts_received, 1);
    assert_eq!(other.connections_so_far(), 0, "the other host was contacted");
}

/// A service whose answer to a create never ends (chunks of 1 MB, streamed): the body is
/// not read past 1 MB, so memory stays small, and the row is `unknown`, since a 200 came
/// and the run may exist.
#[test]
fn an_answer_too_large_to_read_is_not_read_and_the_row_is_unknown() {
    let rig = Rig::new();
    let listener = rig
        .rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind a server");
    let addr = listener.local_addr().expect("its address");
    rig.rt.spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                if let Some(answer) = healthy_get(&request) {
                    let _ = stream.write_all(answer.as_bytes()).await;
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("100000\r\n{}\r\n", " ".repeat(1 << 20));
                for _ in 0..64 {
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    rig.write("runs.csv", rows_csv("huge", 1));
    let mut cmd = rig.import(&format!("http://{addr}/api/v1"), "runs.csv", Some(KEY));
    cmd.args(["--max-retries", "0"]);
    let out = run(cmd);
    assert_eq!(out.code, 1, "{}", out.streams());
    let rows = rig.report("runs.report.csv");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].outcome, rows[0].http_status), (Outcome::Unknown, Some(200)));
    let error = rows[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("the answer's body could not be read: it is over 1 MB"),
        "{error}"
    );
}

/// A service that is down (nothing listens on its port): the connection is never made.
/// The check of the rows' project before any create finds it, after its retries: every
/// row `not_sent`, exit 2 naming `--base-url`.
#[test]
fn a_service_that_cannot_be_reached_stops_the_run_after_the_first_rows_retries() {
    let rig = Rig::new();
    // A port held by a socket that is bound but does not listen: connections to it are
    // refused, and while it is held no other server (another test's, another program's)
    // can take it, nor can an outgoing connection use it as its own port. A port bound and
    // let go at once could be taken before the binary tried it.
    let held = tokio::net::TcpSocket::new_v4().expect("a socket");
    held.bind("127.0.0.1:0".parse().expect("an address")).expect("bind");
    let port = held.local_addr().expect("its address").port();
    rig.write("runs.csv", rows_csv("down", 30));
    let mut cmd = rig.import(&format!("http://127.0.0.1:{port}/api/v1"), "runs.csv", Some(KEY));
    // The default --timeout: nothing here is about timeouts. With `--timeout 2`, a machine
    // stalled for 2 s mid-attempt turned the refused connection into a request timeout,
    // and the row into `unknown`.
    cmd.args(["--max-retries", "2", "--concurrency", "2"]);
    cmd.args(["--summary-json", "summary.json"]);
    let out = run(cmd);
    drop(held);
    assert_eq!(out.code, 2, "{}", out.streams());
    // Connections never made sent nothing: the summary does not count them as requests.
    let summary: serde_json::Value =
        serde_json::from_str(&rig.read("summary.json")).unwrap_or_else(|e| panic!("the summary: {e}"));
    assert_eq!(summary["requests_sent"], 0, "{summary:#}");
    assert!(
        out.stderr.contains(&format!(
            "error: no connection to http://127.0.0.1:{port}/api/v1 could be made (could not connect"
        )) && out.stderr.contains("Check --base-url and the network."),
        "{}",
        out.stderr
    );
    // The check of the project before any create finds it: no row is tried at all.
    let rows = rig.report("runs.report.csv");
    assert_eq!(rows.len(), 30, "every row is in the report");
    assert_eq!(count(&rows, Outcome::NotSent), 30, "{rows:#?}");
    for row in &rows {
        let error = row.error.as_deref().unwrap_or("");
        assert!(error.starts_with("not sent: no connection to"), "{error}");
        assert_eq!((row.http_status, row.attempts), (None, 0));
    }
}

/// A service whose connections hang, as behind a firewall that drops the packets (here a
/// listener whose queue is full, so the kernel drops each new connection's first packet):
/// no connection is ever made, so nothing was sent. The connection's own timeout, half of
/// `--timeout`, says so before the request's would: the check of the project before any
/// create stops the run as for a refused connection, and no row is `unknown`.
#[cfg(target_os = "linux")]
#[test]
fn a_service_whose_connections_hang_is_unreachable_and_its_rows_not_unknown() {
    let rig = Rig::new();
    let (listener, addr) = rig.rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind("127.0.0.1:0".parse().expect("an address")).expect("bind");
        // Backlog 0: one connection waiting to be accepted fills the queue.
        let listener = socket.listen(0).expect("listen");
        let addr = listener.local_addr().expect("its address");
        (listener, addr)
    });
    // Never accepted: it keeps the queue full while the binary runs.
    let _queued = std::net::TcpStream::connect(addr).expect("the first connection is queued");
    rig.write("runs.csv", rows_csv("hang", 3));
    let mut cmd = rig.import(&format!("http://{addr}/api/v1"), "runs.csv", Some(KEY));
    // 4 s for the connection, 8 s for the request: a margin no stall reaches.
    cmd.args(["--timeout", "8", "--max-retries", "0", "--concurrency", "1"]);
    cmd.args(["--summary-json", "summary.json"]);
    let out = run(cmd);
    drop(listener);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert!(
        out.stderr.contains(&format!(
            "error: no connection to http://{addr}/api/v1 could be made (could not connect"
        )),
        "{}",
        out.stderr
    );
    let summary: Value = serde_json::from_str(&rig.read("summary.json")).expect("--summary-json holds JSON");
    assert_eq!(summary["requests_sent"], 0, "{summary:#}");
    let rows = rig.report("runs.report.csv");
    let outcomes: Vec<(Outcome, u32)> = rows.iter().map(|r| (r.outcome, r.attempts)).collect();
    assert_eq!(outcomes, [(Outcome::NotSent, 0); 3], "{rows:#?}");
    let error = rows[0].error.as_deref().unwrap_or_default();
    assert!(error.starts_with("not sent: no connection to"), "{error}");
}

/// A service that answers, even if only with refusals, is there: nothing is stopped,
/// each row keeps its own retries and outcome, and the exit code is 1, not 2.
#[test]
fn a_service_that_answers_with_refusals_is_not_taken_for_unreachable() {
    let rig = Rig::new();
    let sandbox = rig.start(SandboxOptions {
        fail_rate: 1.0,
        ..SandboxOptions::default()
    });
    rig.write("busy.csv", rows_csv("busy", 3));
    let mut cmd = rig.import(&sandbox.base_url(), "busy.csv", Some(KEY));
    cmd.args(["--max-retries", "0"]);
    let out = run(cmd);
    assert_eq!(out.code, 1, "{}", out.streams());
    assert!(!out.stderr.contains("could be made"), "{}", out.stderr);
    let rows = rig.report("busy.report.csv");
    assert_eq!(count(&rows, Outcome::Failed), 3, "{rows:#?}");
    assert_eq!(sandbox.stats().posts_received, 3);
}

// ---------------------------------------------------------------------------------------
// Bad files.

enum Contents {
    Bytes(Vec<u8>),
    /// A workbook with sheets `Notes` and `Runs`, each a title and one row.
    TwoSheets,
    /// The first half of a valid workbook.
    TruncatedWorkbook,
    /// A valid workbook whose zip entries are overwritten with garbage, central directory kept.
    CorruptedWorkbook,
    /// A workbook whose only sheet holds nothing.
    EmptySheet,
    Fixture(&'static str),
    Directory,
    Missing,
}

struct BadFile {
    what: &'static str,
    file: &'static str,
    contents: Contents,
    args: &'static [&'static str],
    /// Each must be in the one `error:` line.
    wanted: &'static [&'static str],
}

fn two_sheet_workbook() -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    for name in ["Notes", "Runs"] {
        let sheet = workbook.add_worksheet();
        sheet.set_name(name).expect("sheet name");
        sheet.write_string(0, 0, "Title").expect("write");
        sheet.write_string(0, 1, "Project").expect("write");
        sheet.write_string(1, 0, "A run").expect("write");
        sheet.write_string(1, 1, PROJECT).expect("write");
    }
    workbook.save_to_buffer().expect("a workbook")
}

/// A PNG header, NULs and every byte value: what a mis-saved export looks like.
fn binary_bytes() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    bytes
}

/// Files that must end the run with exit 2, one clear message naming the file, nothing
/// sent, and no panic; with a key and a live sandbox, so nothing but the file stops them.
#[test]
fn bad_files_exit_2_with_a_clear_message_and_send_nothing() {
    let cases = [
        BadFile {
            what: "empty file",
            file: "empty.csv",
            contents: Contents::Bytes(Vec::new()),
            args: &[],
            wanted: &["empty.csv", "the file is empty"],
        },
        BadFile {
            what: "binary file named .csv",
            file: "image.csv",
            contents: Contents::Bytes(binary_bytes()),
            args: &[],
            wanted: &["image.csv does not look like text"],
        },
        BadFile {
            what: "only NUL bytes",
            file: "zeros.csv",
            contents: Contents::Bytes(vec![0; 2048]),
            args: &[],
            wanted: &["zeros.csv does not look like text"],
        },
        BadFile {
            what: "truncated xlsx",
            file: "half.xlsx",
            contents: Contents::TruncatedWorkbook,
            args: &[],
            wanted: &["cannot read half.xlsx as a workbook", "damaged, truncated"],
        },
        BadFile {
            what: "corrupted xlsx",
            file: "garbled.xlsx",
            contents: Contents::CorruptedWorkbook,
            args: &[],
            wanted: &["cannot read garbled.xlsx as a workbook", "damaged, truncated"],
        },
        BadFile {
            what: "CSV text named .xlsx",
            file: "text.xlsx",
            contents: Contents::Bytes(format!("Title,Project\nA,{PROJECT}\n").into_bytes()),
            args: &[],
            wanted: &["cannot read text.xlsx as a workbook", "another type than its extension"],
        },
        BadFile {
            what: "xlsx named .xls",
            file: "renamed.xls",
            contents: Contents::Bytes(two_sheet_workbook()),
            args: &[],
            wanted: &["cannot read renamed.xls as a workbook"],
        },
        BadFile {
            what: "encrypted workbook",
            file: "locked.xlsx",
            contents: Contents::Fixture("msoffcrypto-encrypted.xlsx"),
            args: &[],
            wanted: &["locked.xlsx is password-protected", "remove the password"],
        },
        BadFile {
            what: "workbook with an empty sheet",
            file: "blank.xlsx",
            contents: Contents::EmptySheet,
            args: &[],
            wanted: &["blank.xlsx", "the file is empty"],
        },
        BadFile {
            what: "sheet that is not there",
            file: "book.xlsx",
            contents: Contents::TwoSheets,
            args: &["--sheet", "Plan"],
            wanted: &["book.xlsx", "--sheet Plan: there is no such sheet", "`Notes`, `Runs`"],
        },
        BadFile {
            what: "unclosed quote swallowing the file",
            file: "runaway.csv",
            contents: Contents::Bytes({
                let mut text = format!("Title,Project\n\"never closed,{PROJECT}\n").into_bytes();
                text.extend(format!("A row,{PROJECT}\n").repeat(120_000).into_bytes());
                text
            }),
            args: &[],
            wanted: &[
                "runaway.csv",
                "a quoted field is probably never closed",
                "--max-cell-bytes",
            ],
        },
        BadFile {
            what: "a directory named .csv",
            file: "folder.csv",
            contents: Contents::Directory,
            args: &[],
            wanted: &["folder.csv"],
        },
        BadFile {
            what: "no such file",
            file: "missing.csv",
            contents: Contents::Missing,
            args: &[],
            wanted: &["cannot open missing.csv"],
        },
    ];
    let rig = Rig::new();
    let sandbox = rig.start(SandboxOptions::default());
    let mut problems = Vec::new();
    for case in cases {
        let what = case.what;
        match case.contents {
            Contents::Bytes(bytes) => {
                rig.write(case.file, bytes);
            }
            Contents::TwoSheets => {
                rig.write(case.file, two_sheet_workbook());
            }
            Contents::TruncatedWorkbook => {
                let book = two_sheet_workbook();
                rig.write(case.file, &book[..book.len() / 2]);
            }
            Contents::CorruptedWorkbook => {
                let mut book = two_sheet_workbook();
                // The zip's directory sits in its last bytes; everything it points at
                // becomes noise, so no entry can be inflated or parsed.
                let directory = book.len() - 1200;
                for (i, b) in book[30..directory].iter_mut().enumerate() {
                    *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2];
                }
                rig.write(case.file, book);
            }
            Contents::EmptySheet => {
                let mut workbook = rust_xlsxwriter::Workbook::new();
                workbook.add_worksheet();
                rig.write(case.file, workbook.save_to_buffer().expect("a workbook"));
            }
            Contents::Fixture(name) => {
                let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
                rig.write(case.file, std::fs::read(&source).expect("the fixture"));
            }
            Contents::Directory => std::fs::create_dir(rig.path(case.file)).expect("a directory"),
            Contents::Missing => {}
        }
        let mut cmd = rig.import(&sandbox.base_url(), case.file, Some(KEY));
        cmd.args(["--project-id", PROJECT]).args(case.args);
        let out = run(cmd);
        let errors = out.error_lines();
        if out.code != 2 || errors.len() != 1 {
            problems.push(format!(
                "{what}: exit {}, {} error lines\n{}",
                out.code,
                errors.len(),
                out.streams()
            ));
            continue;
        }
        eprintln!("{what}: {}", errors[0]);
        for word in case.wanted {
            if !errors[0].contains(word) {
                problems.push(format!("{what}: want {word:?} in {}", errors[0]));
            }
        }
    }
    let stats = sandbox.stats();
    assert_eq!(stats.posts_received, 0, "a bad file sent something: {stats}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Writes `Title,Project,Description` with one row whose description is `size` bytes.
fn big_cell_csv(path: &Path, size: usize) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("create the big file");
    let mut out = std::io::BufWriter::new(file);
    write!(out, "Title,Project,Description\nBig one,{PROJECT},").expect("write");
    let chunk = vec![b'd'; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        out.write_all(&chunk[..n]).expect("write");
        left -= n;
    }
    out.write_all(b"\n").expect("write");
    out.flush().expect("flush");
}

const BIG_CELL: usize = 50_000_000;

/// A 50 MB cell stops the run (exit 2) before anything is sent, naming the row and the
/// flag; raising `--max-cell-bytes` lets the same file through.
#[test]
fn a_50_mb_cell_stops_the_run_until_max_cell_bytes_is_raised() {
    let rig = Rig::new();
    let sandbox = rig.start(SandboxOptions::default());
    big_cell_csv(&rig.path("big.csv"), BIG_CELL);

    let out = run(rig.import(&sandbox.base_url(), "big.csv", Some(KEY)));
    assert_eq!(out.code, 2, "{}", out.streams());
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.streams());
    assert!(
        errors[0].starts_with("error: big.csv: ")
            && errors[0].contains("row 2")
            && errors[0].ends_with("raise --max-cell-bytes"),
        "{}",
        errors[0]
    );
    assert_eq!(sandbox.stats().posts_received, 0);

    let mut cmd = rig.command(None);
    cmd.args(["import", "big.csv", "--dry-run", "--max-cell-bytes", "60000000"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let rows = rig.report("big.report.csv");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].row, rows[0].outcome, title(&rows[0])),
        (2, Outcome::Planned, "Big one")
    );
}

/// The message for a 50 MB unquoted cell names the cell and its size, as the limit's
/// own error does; it must not send the user looking for a stray quote that is not there.
#[test]
fn a_50_mb_unquoted_cell_is_reported_as_a_large_cell_not_a_stray_quote() {
    let rig = Rig::new();
    big_cell_csv(&rig.path("big.csv"), BIG_CELL);
    let mut cmd = rig.command(None);
    cmd.args(["import", "big.csv", "--dry-run"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    let errors = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.streams());
    // Its size may be "more than" a bound if the reader stops early; the place may not.
    assert!(
        errors[0].starts_with("error: big.csv: row 2, column 3 (`Description`) holds ")
            && errors[0].ends_with("raise --max-cell-bytes")
            && !errors[0].contains("quote"),
        "{}",
        errors[0]
    );
}

/// A quote left open takes every later line into one cell, up to the end of the file.
/// Well under the record cap, that would read as one valid row and exit 0 while three
/// rows vanished; instead the run stops before sending anything and names the cell.
#[test]
fn a_quote_never_closed_stops_the_run_instead_of_swallowing_the_rows_after_it() {
    let rig = Rig::new();
    let sandbox = rig.start(SandboxOptions::default());
    rig.write(
        "open.csv",
        format!("Title,Project,Labels\nFine,{PROJECT},x\nA,{PROJECT},\"smoke\nB,{PROJECT},x\nC,{PROJECT},y\n"),
    );
    let out = run(rig.import(&sandbox.base_url(), "open.csv", Some(KEY)));
    assert_eq!(out.code, 2, "{}", out.streams());
    assert!(
        out.stderr
            .contains("open.csv: row 3, column 3 (`Labels`): a quote opened there is never closed"),
        "{}",
        out.streams()
    );
    assert!(sandbox.runs().is_empty(), "nothing is sent from a file read wrong");
}

/// In a workbook too: a cell over `--max-cell-bytes` is named by its reference.
#[test]
fn an_oversized_workbook_cell_names_its_reference_and_the_flag() {
    let rig = Rig::new();
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (column, text) in ["Title", "Project", "Description"].into_iter().enumerate() {
        sheet.write_string(0, column as u16, text).expect("write");
    }
    sheet.write_string(1, 0, "Wordy").expect("write");
    sheet.write_string(1, 1, PROJECT).expect("write");
    sheet.write_string(1, 2, "w".repeat(5000)).expect("write");
    workbook.save(rig.path("wordy.xlsx")).expect("save");

    let mut cmd = rig.command(None);
    cmd.args(["import", "wordy.xlsx", "--dry-run", "--max-cell-bytes", "1000"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert_eq!(
        out.error_lines(),
        vec![
            "error: wordy.xlsx: cell C2 (`Description`) holds 5000 bytes, over the limit of 1000; shorten it or raise --max-cell-bytes"
        ]
    );

    let mut cmd = rig.command(None);
    cmd.args(["import", "wordy.xlsx", "--dry-run", "--max-cell-bytes", "5000"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_eq!(rig.report("wordy.report.csv")[0].outcome, Outcome::Planned);
}

/// 10,000 columns, as CSV and as xlsx: exit 2 naming the count, the limit and the flag;
/// `--max-columns 10000` (or `max-columns` in the config file) lets them through.
#[test]
fn ten_thousand_columns_stop_the_run_until_max_columns_is_raised() {
    const COLUMNS: usize = 10_000;
    let rig = Rig::new();
    let sandbox = rig.start(SandboxOptions::default());
    let headers: Vec<String> = ["Title".to_string(), "Project".to_string()]
        .into_iter()
        .chain((3..=COLUMNS).map(|i| format!("Extra {i}")))
        .collect();
    let mut values = vec!["Wide".to_string(), PROJECT.to_string()];
    values.resize(COLUMNS, "x".to_string());
    rig.write("wide.csv", format!("{}\n{}\n", headers.join(","), values.join(",")));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (column, (header, value)) in headers.iter().zip(&values).enumerate() {
        let column = u16::try_from(column).expect("under Excel's 16384 columns");
        sheet.write_string(0, column, header).expect("write");
        sheet.write_string(1, column, value).expect("write");
    }
    workbook.save(rig.path("wide.xlsx")).expect("save");

    for (file, place) in [("wide.csv", "row 1"), ("wide.xlsx", "row 1")] {
        let out = run(rig.import(&sandbox.base_url(), file, Some(KEY)));
        assert_eq!(out.code, 2, "{file}: {}", out.streams());
        assert_eq!(
            out.error_lines(),
            vec![format!(
                "error: {file}: {place} has 10000 columns, over the limit of 1000; delete the unused columns or raise --max-columns"
            )],
            "{file}"
        );

        let mut cmd = rig.command(None);
        cmd.args([
            "import",
            file,
            "--dry-run",
            "--max-columns",
            "10000",
            "--report",
            "raised.csv",
        ]);
        let out = run(cmd);
        assert_eq!(out.code, 0, "{file}: {}", out.streams());
        let rows = rig.report("raised.csv");
        assert_eq!(rows.len(), 1, "{file}");
        assert_eq!((rows[0].outcome, title(&rows[0])), (Outcome::Planned, "Wide"), "{file}");
    }
    assert_eq!(sandbox.stats().posts_received, 0);

    // The limit is an option like any other: the config file can raise it too.
    rig.write("testsigma-import.toml", "max-columns = 10000\n");
    let mut cmd = rig.command(None);
    cmd.args(["import", "wide.csv", "--dry-run", "--report", "config.csv"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
}

// ---------------------------------------------------------------------------------------
// Secrets.

/// A run of this many characters of a key is a leak: a quote cut short is still one.
const KEY_PART: usize = 12;

/// True when `haystack` holds any [`KEY_PART`] consecutive bytes of `key`.
fn holds_part_of(haystack: &[u8], key: &str) -> bool {
    key.as_bytes()
        .windows(KEY_PART.min(key.len()))
        .any(|part| haystack.windows(part.len()).any(|w| w == part))
}

/// Every file under `dir` (recursively) that holds part of `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("list a dir") {
                stack.push(entry.expect("a dir entry").path());
            }
            continue;
        }
        let bytes = std::fs::read(&path).expect("read a file the run wrote");
        if holds_part_of(&bytes, needle) {
            found.push(path.display().to_string());
        }
    }
    found
}

fn assert_no_key(out: &Output, key: &str, what: &str) {
    assert!(
        !holds_part_of(out.stdout.as_bytes(), key) && !holds_part_of(out.stderr.as_bytes(), key),
        "{what}: the key is in the output\n{}",
        out.streams()
    );
}

/// A run that meets every kind of answer (created, unknown, retried, invalid rows, an
/// e-mail assignee resolved through GET /users), with every output switched on, at every
/// log level and format: the key is in no file the runs wrote and on no stream.
#[test]
fn the_key_is_in_no_file_and_no_output_whatever_happens() {
    let rig = Rig::new();
    let sandbox = rig.start(SandboxOptions {
        api_key: Some(KEY.to_string()),
        ..faulty(vec![
            fault(Fault::OkWithoutId, 0.15),
            fault(Fault::ResetAfterRead, 0.15),
            fault(Fault::RetryAfterSeconds(1), 0.15),
        ])
    });
    let mut csv = String::from("Title,Project,Key,Assignee,Status\n");
    for i in 1..=8 {
        csv.push_str(&format!("Secret run {i},{PROJECT},SEC-{i},ada@example.com,ACTIVE\n"));
    }
    csv.push_str(&format!("Bad status,{PROJECT},SEC-9,,DONE\n"));
    rig.write("runs.csv", csv);
    // The key file lives outside the scanned dir: it is the one place the key belongs.
    let keys = tempfile::tempdir().expect("a temp dir");
    let key_file = keys.path().join("key.txt");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("write the key file");

    // No fault here hangs, so no short --timeout: a stalled machine could otherwise time
    // out `GET /users` and its retries, and the run would stop (exit 2).
    let common = [
        "--skip-invalid",
        "--no-lookup",
        "--max-retries",
        "2",
        "--rate",
        "50",
        "--summary-json",
    ];
    let variants: [(&str, &[&str], Option<&str>); 5] = [
        (
            "plain",
            &[
                "plain.summary.json",
                "--report",
                "plain.csv",
                "--plan",
                "plain.plan.jsonl",
            ],
            None,
        ),
        (
            "-vv",
            &[
                "vv.summary.json",
                "--report",
                "vv.json",
                "-vv",
                "--state",
                "vv.state.jsonl",
            ],
            None,
        ),
        (
            "-vv --log-format json",
            &[
                "json.summary.json",
                "--report",
                "json.jsonl",
                "-vv",
                "--log-format",
                "json",
                "--state",
                "json.state.jsonl",
            ],
            None,
        ),
        (
            "RUST_LOG=trace",
            &[
                "trace.summary.json",
                "--report",
                "trace.csv",
                "-vv",
                "--state",
                "trace.state.jsonl",
            ],
            Some("trace"),
        ),
        (
            "--api-key-file, --force",
            &[
                "file.summary.json",
                "--report",
                "file.csv",
                "--force",
                "--retry-unknown",
            ],
            None,
        ),
    ];
    for (what, args, rust_log) in variants {
        let key = (!what.starts_with("--api-key-file")).then_some(KEY);
        let mut cmd = rig.import(&sandbox.base_url(), "runs.csv", key);
        cmd.args(common).args(args);
        if key.is_none() {
            cmd.arg("--api-key-file").arg(&key_file);
        }
        if let Some(level) = rust_log {
            cmd.env("RUST_LOG", level);
        }
        let out = run(cmd);
        assert!(matches!(out.code, 0 | 1), "{what}: {}", out.streams());
        assert_no_key(&out, KEY, what);
        if what.starts_with("-vv") {
            assert!(
                out.stderr.contains("answer"),
                "{what}: no debug log at all:\n{}",
                out.stderr
            );
        }
    }
    let stats = sandbox.stats();
    assert!(stats.created > 0 && stats.faults_injected > 0, "{stats}");

    // The read-only check and a dry run, with the key set.
    let mut cmd = rig.command(Some(KEY));
    cmd.args(["check", "runs.csv", "--base-url", &sandbox.base_url(), "-vv"]);
    let out = run(cmd);
    assert_no_key(&out, KEY, "check");
    let mut cmd = rig.command(Some(KEY));
    cmd.args([
        "import",
        "runs.csv",
        "--dry-run",
        "--plan",
        "dry.plan.jsonl",
        "--report",
        "dry.csv",
        "-vv",
    ]);
    let out = run(cmd);
    assert_no_key(&out, KEY, "dry run");

    // A wrong key: refused (exit 2), and not repeated back either.
    let wrong = "tsk_live_WRONG-4d1c8e0f-hostile";
    let mut cmd = rig.import(&sandbox.base_url(), "runs.csv", Some(wrong));
    cmd.args(["--skip-invalid", "--report", "wrong.csv", "--no-state", "-vv"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert_no_key(&out, wrong, "wrong key");

    for needle in [KEY, wrong] {
        let found = files_holding(rig.dir.path(), needle);
        assert!(found.is_empty(), "the key is in {found:?}");
    }
}

/// What the hostile echo server answers; each answer repeats the request's
/// `Authorization` header somewhere, as a debugging proxy or a careless error page would.
#[derive(Clone, Copy, Debug)]
enum Echo {
    /// 400 `{"message": "... <header>"}`
    BadRequest,
    /// 422 with the header in `errors.details`
    Unprocessable,
    /// 200 with an HTML page (no id, so the row is unknown and the body is quoted)
    OkHtml,
    /// The same, padded so the key straddles the 200 characters an error quotes: a
    /// scrub after the cut would miss the key's first half.
    OkHtmlCut,
    /// 200 with a created run, and the header's value as `x-request-id`
    RequestIdHeader,
    /// 308 to another host, the key in the `Location`'s query
    RedirectLocation,
    /// 401 `{"message": "... <header>"}`
    Unauthorized,
    /// 500 on every request (including GET /users) `{"message": "... <header>"}`
    ServerError,
}

/// What a healthy service answers the GETs a run makes before its creates (the project
/// check, the lookups of existing runs, the users), so that a test's fault stays on the
/// creates. `None` for any other request.
fn healthy_get(head: &str) -> Option<String> {
    let path = head.strip_prefix("GET ")?.split_whitespace().next()?;
    let body = if path.contains("/test_runs") {
        serde_json::json!({"message": "", "data": [], "next_cursor": null})
    } else if path.ends_with("/users") {
        serde_json::json!({"message": "", "data": testsigma_import::sandbox::builtin_users()})
    } else {
        serde_json::json!({"message": "", "data": {"id": PROJECT, "name": "p"}})
    }
    .to_string();
    Some(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// An HTTP/1.1 server on 127.0.0.1 that answers every request per `mode`, one request
/// per connection; the GETs before the creates (but `GET /users`) as a healthy service.
fn start_echo_server(rig: &Rig, mode: Echo) -> String {
    let listener = rig
        .rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind the echo server");
    let addr = listener.local_addr().expect("its address");
    rig.rt.spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(head) = read_request(&mut stream).await else {
                    return;
                };
                if let Some(answer) = healthy_get(&head).filter(|_| !head.contains("/users")) {
                    let _ = stream.write_all(answer.as_bytes()).await;
                    return;
                }
                let auth = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .unwrap_or("authorization: (none)")
                    .to_string();
                let said = format!("we received {auth}");
                let value = auth.split_once(':').map_or("", |(_, v)| v.trim()).to_string();
                let token = value.split_once(' ').map_or("", |(_, t)| t.trim()).to_string();
                let json = |message: &str| serde_json::json!({ "message": message }).to_string();
                let mut extra = "x-request-id: echo-1".to_string();
                let (status, content_type, body) = match mode {
                    Echo::BadRequest => ("400 Bad Request", "application/json", json(&said)),
                    Echo::Unprocessable => (
                        "422 Unprocessable Entity",
                        "application/json",
                        serde_json::json!({
                            "message": "Validation failed",
                            "errors": {"code": 422, "message": "Unprocessable", "details": said}
                        })
                        .to_string(),
                    ),
                    Echo::OkHtml => (
                        "200 OK",
                        "text/html",
                        format!("<html><body><pre>{said}</pre></body></html>"),
                    ),
                    Echo::OkHtmlCut => {
                        let open = "<html><body><pre>";
                        let before_token = said.find(&token).unwrap_or(0);
                        let pad = "x".repeat(178usize.saturating_sub(open.len() + 1 + before_token));
                        ("200 OK", "text/html", format!("{open}{pad} {said}</pre></body></html>"))
                    }
                    Echo::RequestIdHeader => {
                        extra = format!("x-request-id: {value}");
                        let run = serde_json::json!({
                            "message": "",
                            "data": {"test_run": {"id": "echo-run-1", "human_id": "ECHO-R-1"}}
                        });
                        ("200 OK", "application/json", run.to_string())
                    }
                    Echo::RedirectLocation => {
                        extra = format!(
                            "location: https://elsewhere.invalid/api/v1/projects/{PROJECT}/test_runs?auth={token}"
                        );
                        ("308 Permanent Redirect", "application/json", json("moved"))
                    }
                    Echo::Unauthorized => ("401 Unauthorized", "application/json", json(&said)),
                    Echo::ServerError => ("500 Internal Server Error", "application/json", json(&said)),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}/api/v1")
}

/// Runs one import per mode against an echo server; returns every leak found, in the
/// output or in any file the runs wrote, and checks each run took the path it was meant to.
fn echo_leaks(modes: &[(Echo, i32)]) -> Vec<String> {
    let rig = Rig::new();
    let mut leaks = Vec::new();
    for &(mode, want_exit) in modes {
        let base = start_echo_server(&rig, mode);
        let name = format!("{mode:?}").to_lowercase();
        // An e-mail assignee makes the run ask GET /users first, which the 500 mode refuses.
        let assignee = if matches!(mode, Echo::ServerError) {
            "ada@example.com"
        } else {
            ""
        };
        rig.write(
            &format!("{name}.csv"),
            format!("Title,Project,Key,Assignee\nEchoed,{PROJECT},ECHO-1,{assignee}\n"),
        );
        let mut cmd = rig.import(&base, &format!("{name}.csv"), Some(KEY));
        cmd.args([
            "--max-retries",
            "0",
            "--summary-json",
            &format!("{name}.summary.json"),
            "--state",
            &format!("{name}.state.jsonl"),
            "-vv",
        ]);
        let out = run(cmd);
        assert_eq!(out.code, want_exit, "{mode:?}: {}", out.streams());
        if holds_part_of(out.stdout.as_bytes(), KEY) || holds_part_of(out.stderr.as_bytes(), KEY) {
            leaks.push(format!("{mode:?}: on stderr/stdout:\n{}", out.streams()));
        }
    }
    let found = files_holding(rig.dir.path(), KEY);
    if !found.is_empty() {
        leaks.push(format!("in files {found:?}"));
    }
    leaks
}

/// A service (or a proxy in front of it) that repeats the Authorization header in its
/// answers must not get the key into the report, the ledger, the summary or the output:
/// the importer quotes the service's words, so it must take its own key out of them.
#[test]
fn a_service_that_echoes_the_key_back_does_not_get_it_printed() {
    let leaks = echo_leaks(&[
        (Echo::BadRequest, 1),
        (Echo::Unprocessable, 1),
        (Echo::OkHtml, 1),
        (Echo::RedirectLocation, 2),
        (Echo::Unauthorized, 2),
        (Echo::ServerError, 2),
    ]);
    assert!(leaks.is_empty(), "the key leaked:\n{}", leaks.join("\n"));
}

/// A quote of the service's words is cut at 200 characters; a key that straddles the cut
/// must not leave its first half behind.
#[test]

fn a_key_cut_short_by_the_quote_limit_is_still_scrubbed() {
    let leaks = echo_leaks(&[(Echo::OkHtmlCut, 1)]);
    assert!(leaks.is_empty(), "the key leaked:\n{}", leaks.join("\n"));
}

/// The same for a header the report keeps: an `x-request-id` that reflects the
/// Authorization header's value.
#[test]

fn a_request_id_that_reflects_the_key_is_not_stored() {
    let leaks = echo_leaks(&[(Echo::RequestIdHeader, 0)]);
    assert!(leaks.is_empty(), "the key leaked:\n{}", leaks.join("\n"));
}

/// A config file whose `api-key` line the TOML parser cannot read must not print the
/// line back: the parser's error quotes the source.
#[test]
fn a_broken_config_file_does_not_print_the_key_it_holds() {
    let rig = Rig::new();
    rig.write("runs.csv", format!("Title,Project\nA,{PROJECT}\n"));
    let cases = [
        ("unquoted", format!("api-key = {KEY}\n")),
        ("unclosed quote", format!("api-key = \"{KEY}\n")),
        ("numeric", "api-key = 738294610583\n".to_string()),
        ("bad line after the key", format!("api-key = \"{KEY}\"\nrate = = 3\n")),
    ];
    let mut leaks = Vec::new();
    for (what, text) in cases {
        let config = rig.write("testsigma-import.toml", &text);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
        }
        let mut cmd = rig.command(None);
        cmd.args(["import", "runs.csv", "--dry-run"]);
        let out = run(cmd);
        if out.code != 2 {
            leaks.push(format!("{what}: exit {}", out.code));
        }
        let secret = if what == "numeric" { "738294610583" } else { KEY };
        if out.stderr.contains(secret) || out.stdout.contains(secret) {
            leaks.push(format!("{what}: {}", out.stderr.trim()));
        }
    }
    assert!(leaks.is_empty(), "the key leaked:\n{}", leaks.join("\n"));
}

/// A plain-http base URL off this machine is refused (exit 2, naming the flag) before
/// anything is sent; credentials in the URL are refused without being repeated.
#[test]
fn insecure_base_urls_are_refused_before_anything_is_sent() {
    let rig = Rig::new();
    rig.write("runs.csv", format!("Title,Project\nA,{PROJECT}\n"));
    // Only ever the refusal path: nothing may connect to this address.
    let remote = "http://10.255.255.1/api/v1";
    let flag = run({
        let mut cmd = rig.import(remote, "runs.csv", Some(KEY));
        cmd.args(["--timeout", "1", "--no-state"]);
        cmd
    });
    let env = run({
        let mut cmd = rig.command(Some(KEY));
        cmd.env("TESTSIGMA_BASE_URL", remote)
            .args(["import", "runs.csv", "--timeout", "1", "--no-state"]);
        cmd
    });
    for (what, out) in [("--base-url", &flag), ("TESTSIGMA_BASE_URL", &env)] {
        assert_eq!(out.code, 2, "{what}: {}", out.streams());
        assert_eq!(
            out.error_lines(),
            vec![format!(
                "error: --base-url `{remote}` is plain http:// to a host that is not this machine: the API key would cross the network in clear text. Use https://, or pass --allow-insecure if you really mean it"
            )],
            "{what}"
        );
    }

    let secret = "pw-in-url-61f0c2";
    let out = run({
        let mut cmd = rig.import(
            &format!("https://user:{secret}@127.0.0.1:1/api/v1"),
            "runs.csv",
            Some(KEY),
        );
        cmd.args(["--timeout", "1", "--no-state"]);
        cmd
    });
    assert_eq!(out.code, 2, "{}", out.streams());
    assert_no_key(&out, secret, "credentials in the URL");
    assert!(
        out.stderr.contains("credentials do not belong in the URL"),
        "{}",
        out.stderr
    );
}

/// `--allow-insecure` is what lets a non-loopback http:// URL through. `0.0.0.0` is not a
/// loopback address to the check, yet Linux connects it to this machine, so the traffic
/// never leaves it.
#[cfg(target_os = "linux")]
#[test]
fn allow_insecure_lets_a_non_loopback_http_url_through() {
    let rig = Rig::new();
    let sandbox = rig.start(SandboxOptions::default());
    rig.write("runs.csv", format!("Title,Project\nA,{PROJECT}\n"));
    let base = format!("http://0.0.0.0:{}/api/v1", sandbox.addr().port());

    let out = run({
        let mut cmd = rig.import(&base, "runs.csv", Some(KEY));
        cmd.arg("--no-state");
        cmd
    });
    assert_eq!(out.code, 2, "{}", out.streams());
    assert!(out.stderr.contains("--allow-insecure"), "{}", out.stderr);
    assert_eq!(sandbox.stats().posts_received, 0);

    let out = run({
        let mut cmd = rig.import(&base, "runs.csv", Some(KEY));
        cmd.args(["--no-state", "--allow-insecure"]);
        cmd
    });
    assert_eq!(out.code, 0, "{}", out.streams());
    assert!(!out.stderr.contains("--allow-insecure"), "{}", out.stderr);
    assert_eq!(sandbox.runs().len(), 1);
}

// ---------------------------------------------------------------------------------------
// The report in a spreadsheet.

/// Titles and keys that a spreadsheet would run as formulas reach the service exactly,
/// and reach the CSV report with a leading `'`; the JSON report keeps them exact.
#[test]
fn the_report_is_safe_to_open_in_a_spreadsheet() {
    let rig = Rig::new();
    let sandbox = rig.start(SandboxOptions::default());
    let cells = [
        (r#"=HYPERLINK("http://x","y")"#, "=1+1"),
        ("+33 call me", "-5"),
        ("@SUM(A1:A2)", "@me"),
        ("-2+3", "+KEY"),
        ("Plain = fine", "PLAIN-1"),
    ];
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["Title", "Project", "Key"]).expect("csv");
    for (t, k) in cells {
        writer.write_record([t, PROJECT, k]).expect("csv");
    }
    rig.write("formulas.csv", writer.into_inner().expect("csv"));

    let out = run(rig.import(&sandbox.base_url(), "formulas.csv", Some(KEY)));
    assert_eq!(out.code, 0, "{}", out.streams());
    let rows = rig.report("formulas.report.csv");
    let shown: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (title(r), r.human_id.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        shown,
        vec![
            (r#"'=HYPERLINK("http://x","y")"#, "'=1+1"),
            ("'+33 call me", "'-5"),
            ("'@SUM(A1:A2)", "'@me"),
            ("'-2+3", "'+KEY"),
            ("Plain = fine", "PLAIN-1"),
        ]
    );
    let raw = rig.read("formulas.report.csv");
    assert!(raw.contains(r#","'=HYPERLINK(""http://x"",""y"")","#), "{raw}");
    // No cell of the report starts a formula.
    let mut reader = csv::Reader::from_reader(raw.as_bytes());
    for record in reader.records() {
        for cell in record.expect("a report record").iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "cell {cell:?}");
        }
    }
    // The service got the real titles.
    let mut sent: Vec<String> = sandbox_titles(&sandbox).into_keys().collect();
    sent.sort();
    let mut want: Vec<String> = cells.iter().map(|(t, _)| t.to_string()).collect();
    want.sort();
    assert_eq!(sent, want);

    // A JSON report is for programs: exact values.
    let mut cmd = rig.command(None);
    cmd.args(["import", "formulas.csv", "--dry-run", "--report", "formulas.json"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let json: Value = serde_json::from_str(&rig.read("formulas.json")).expect("a JSON report");
    assert_eq!(json[0]["title"], r#"=HYPERLINK("http://x","y")"#);
    assert_eq!(json[0]["human_id"], "=1+1");
}
