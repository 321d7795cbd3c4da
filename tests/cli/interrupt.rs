//! Ctrl-C and SIGTERM in the middle of an upload: no new requests, those in flight
//! finish, the report and ledger hold every row, exit 130; a re-run sends the rest.

use std::time::Duration;

use crate::common::{Rig, count, generated_rows, run, runs_by_title, wait_until};
use testsigma_import::Outcome;
use testsigma_import::sandbox::SandboxOptions;

const ROWS: usize = 30;

fn interrupted_with(signal: &str) {
    let rig = Rig::new(SandboxOptions {
        latency: Duration::from_millis(200),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("int", 0..ROWS, true));
    let mut cmd = rig.import("runs.csv", Some("key"));
    cmd.args([
        "--rate",
        "5",
        "--concurrency",
        "2",
        "--state",
        "s.jsonl",
        "--summary-json",
        "summary.json",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("the binary starts");
    wait_until("a few runs to be created", || rig.sandbox.runs().len() >= 3);
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("the binary ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // It says how to go on, and its failed-rows file holds the rows not sent.
    assert!(
        stderr.contains("run the same command again to continue: the rows done are not sent again."),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("failed rows: runs.failed.csv (")
            && l.ends_with(": the run was interrupted; run the same command again to continue, or import that file")),
        "{stderr}"
    );

    // Every row has exactly one outcome; nothing in flight was abandoned.
    let rows = rig.report("runs.report.csv");
    assert_eq!(rows.len(), ROWS);
    let created = count(&rows, Outcome::Created);
    let not_sent = count(&rows, Outcome::NotSent);
    assert_eq!(created + not_sent, ROWS, "{rows:#?}");
    assert!(not_sent > 0, "the run stopped early");
    assert_eq!(
        created,
        rig.sandbox.runs().len(),
        "the report's created rows are the sandbox's runs"
    );
    for row in rows.iter().filter(|r| r.outcome == Outcome::NotSent) {
        assert_eq!(row.attempts, 0, "{row:?}");
        assert!(
            row.error.as_deref().is_some_and(|e| e.contains("interrupted")),
            "{row:?}"
        );
    }
    let summary: serde_json::Value = serde_json::from_str(&rig.read("summary.json")).expect("summary JSON");
    assert_eq!(summary["exit_code"], 130);

    // The next run sends exactly the rest.
    let mut again = rig.import("runs.csv", Some("key"));
    again.args(["--rate", "50", "--state", "s.jsonl"]);
    let out = run(again);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = rig.report("runs.report.csv");
    assert_eq!(count(&rows, Outcome::AlreadyImported), created);
    assert_eq!(count(&rows, Outcome::Created), not_sent);
    let by_title = runs_by_title(&rig.sandbox);
    assert_eq!(by_title.len(), ROWS);
    assert!(by_title.values().all(|runs| runs.len() == 1), "no row created twice");
}

#[test]
fn ctrl_c_finishes_what_is_in_flight_and_reports_every_row() {
    interrupted_with("-INT");
}

#[test]
fn sigterm_is_an_interrupt_too() {
    interrupted_with("-TERM");
}

/// A second Ctrl-C does not wait for the answers in flight (here each takes 10 s), but
/// the run still ends with every row in the report, as valid JSON: the rows in flight
/// `unknown` (they may exist), the rest `not_sent`; the next run does not resend them.
#[test]
fn a_second_ctrl_c_stops_at_once_and_still_reports_every_row() {
    // Long enough that however slowly the machine runs, both signals are handled before
    // an answer comes; the next run sends its ten rows at once, so it waits 10 s once.
    let rig = Rig::new(SandboxOptions {
        latency: Duration::from_secs(10),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("int2", 0..12, true));
    let mut cmd = rig.import("runs.csv", Some("key"));
    cmd.args([
        "--rate",
        "20",
        "--concurrency",
        "2",
        "--state",
        "s.jsonl",
        "--report",
        "runs.report.json",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("the binary starts");
    let mut stderr = StderrLines::of(&mut child);
    wait_until("two requests in flight", || rig.sandbox.stats().posts_received >= 2);
    let interrupt = || {
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    interrupt();
    // Not a pause: two signals that reach a process before it has handled the first are
    // one signal, and the run would wait for its answers.
    stderr.wait_for("interrupted: no new requests");
    interrupt();
    wait_until("the run to end after the second Ctrl-C", || {
        child.try_wait().expect("the child can be waited for").is_some()
    });
    let out = child.wait_with_output().expect("the binary ends");
    let stderr = stderr.all();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopping at once"), "{stderr}");

    let report: serde_json::Value =
        serde_json::from_str(&rig.read("runs.report.json")).expect("the report is whole JSON");
    let rows = report.as_array().expect("an array of rows");
    assert_eq!(rows.len(), 12, "{report:#}");
    let outcome = |r: &serde_json::Value| r["outcome"].as_str().unwrap_or("").to_owned();
    let unknown = rows.iter().filter(|r| outcome(r) == "unknown").count();
    let not_sent = rows.iter().filter(|r| outcome(r) == "not_sent").count();
    // Had it waited for their answers, they would be `created`.
    assert_eq!(unknown, 2, "the two in flight: {report:#}");
    for row in rows.iter().filter(|r| outcome(r) == "unknown") {
        assert_eq!(
            row["error"], "the run was stopped at once before the answer came; the run may exist",
            "{row}"
        );
    }
    assert_eq!(not_sent, 10, "{report:#}");

    // The rows given up on may exist: the next run does not send them again.
    let posts = rig.sandbox.stats().posts_received;
    let mut again = rig.import("runs.csv", Some("key"));
    again.args(["--rate", "50", "--concurrency", "10", "--state", "s.jsonl"]);
    let out = run(again);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let rows = rig.report("runs.report.csv");
    assert_eq!(count(&rows, Outcome::Unknown), 2, "{rows:#?}");
    assert_eq!(count(&rows, Outcome::Created), 10, "{rows:#?}");
    assert_eq!(rig.sandbox.stats().posts_received, posts + 10);
}

/// A child's stderr, read line by line as it comes, so a test can wait for a line.
struct StderrLines {
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    reader: std::thread::JoinHandle<()>,
}

impl StderrLines {
    fn of(child: &mut std::process::Child) -> StderrLines {
        use std::io::BufRead;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        StderrLines {
            lines,
            seen: Vec::new(),
            reader,
        }
    }

    /// Waits (bounded, like `wait_until`) for a line that starts with `start`.
    fn wait_for(&mut self, start: &str) {
        while !self.seen.iter().any(|l| l.starts_with(start)) {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!("no line {start:?} on stderr ({e}):\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Everything, once the child has ended.
    fn all(mut self) -> String {
        self.reader.join().expect("the stderr reader");
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }
}

/// A row waiting out a long `Retry-After` (50 s, under the one-minute bound on waits) is not
/// in flight: it was refused, so one SIGTERM (what `timeout`, `docker stop` and systemd
/// send) ends the wait, and the row is `failed`, certainly not created, rather than holding
/// the run until the pause is over.
#[test]
fn an_interrupt_ends_a_wait_for_a_retry() {
    use testsigma_import::sandbox::{Fault, FaultRule};
    let rig = Rig::new(SandboxOptions {
        faults: vec![FaultRule {
            fault: Fault::RetryAfterSeconds(50),
            probability: 1.0,
        }],
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("wait", 0..3, true));
    let mut cmd = rig.import("runs.csv", Some("key"));
    cmd.args(["--concurrency", "1", "--state", "s.jsonl"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("the binary starts");
    wait_until("the first refusal", || rig.sandbox.stats().posts_received >= 1);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // Not a measure of speed: without the fix the run would wait 50 s.
    wait_until("the run to end after SIGTERM", || {
        child.try_wait().expect("the child can be waited for").is_some()
    });
    let out = child.wait_with_output().expect("the binary ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let rows = rig.report("runs.report.csv");
    assert_eq!(
        rows.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [Outcome::Failed, Outcome::NotSent, Outcome::NotSent],
        "{rows:#?}"
    );
    let error = rows[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("interrupted before the next retry"), "{error}");
    assert!(rig.sandbox.runs().is_empty());

    assert_eq!(rig.sandbox.stats().posts_received, 1);

    // Refused, so certainly not created: the ledger says `failed`, and the next run sends
    // it without --retry-unknown.
    let ledger = rig.read("s.jsonl");
    let last: serde_json::Value =
        serde_json::from_str(ledger.lines().last().expect("a ledger line")).expect("a ledger line is JSON");
    assert_eq!(last["event"], "failed", "{ledger}");
}
