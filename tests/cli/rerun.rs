//! End-to-end tests of safe re-runs: the ledger keeps a second run from creating a run
//! twice (after a clean run, an appended file, a SIGKILL mid-run or a torn last line),
//! refuses a second run on the same ledger at once, and the failed-rows file and
//! `--summary-json` let a user or a script pick up where a run left off. Rows the ledger
//! skips need no `GET /users` for their e-mail assignees.

use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use testsigma_import::sandbox::SandboxOptions;
use testsigma_import::{Outcome, ReportRow};

fn import_with_state(rig: &Rig, file: &str, extra: &[&str]) -> Output {
    let mut cmd = rig.import(file, Some("k-rerun"));
    cmd.args(["--state", "s.jsonl"]).args(extra);
    run(cmd)
}

fn ids(rows: &[ReportRow]) -> Vec<(Option<String>, Option<String>)> {
    rows.iter()
        .map(|r| (r.test_run_id.clone(), r.test_run_human_id.clone()))
        .collect()
}

#[test]
fn a_second_run_sends_nothing_and_reports_the_earlier_ids() {
    let rig = Rig::new(SandboxOptions::default());
    rig.copy_sample();
    let first = import_with_state(&rig, "test-runs.csv", &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_rows = rig.report("test-runs.report.csv");
    assert_eq!(count(&first_rows, Outcome::Created), 12);
    let posts = rig.sandbox.stats().posts_received;
    assert_eq!(posts, 12);

    let second = import_with_state(&rig, "test-runs.csv", &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(rig.sandbox.stats().posts_received, posts, "nothing sent again");
    assert_eq!(rig.sandbox.runs().len(), 12);
    let rows = rig.report("test-runs.report.csv");
    assert_eq!(rows.len(), 12);
    for row in &rows {
        assert_eq!(row.outcome, Outcome::AlreadyImported, "{row:?}");
        assert_eq!(row.attempts, 0, "{row:?}");
        assert_eq!(row.http_status, None, "{row:?}");
    }
    assert_eq!(ids(&rows), ids(&first_rows), "the earlier ids");
    assert!(second.stderr.contains("nothing new to import"), "{}", second.stderr);
}

#[test]
fn rows_appended_to_the_file_are_the_only_ones_sent() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("app", 1..6, true));
    let first = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_rows = rig.report("runs.report.csv");

    rig.append("runs.csv", generated_rows("app", 6..9, false));
    let second = import_with_state(&rig, "runs.csv", &["--rate", "50", "--plan", "sent.jsonl"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    // The plan of a run holds the requests it sends: not the rows the ledger skips.
    let plan_titles: Vec<String> = rig
        .plan("sent.jsonl")
        .iter()
        .map(|line| line["body"]["title"].as_str().unwrap_or("").to_owned())
        .collect();
    let new_titles: Vec<String> = (6..9).map(|n| title_of(n, "app")).collect();
    assert_eq!(plan_titles, new_titles);
    let rows = rig.report("runs.report.csv");
    let outcomes: Vec<Outcome> = rows.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [[Outcome::AlreadyImported; 5].as_slice(), &[Outcome::Created; 3]].concat()
    );
    assert_eq!(ids(&rows[..5]), ids(&first_rows));
    assert_eq!(rig.sandbox.stats().posts_received, 8, "5, then only the 3 new rows");
    let by_title = runs_by_title(&rig.sandbox);
    assert_eq!(by_title.len(), 8);
    for row in &rows[5..] {
        assert_eq!(row.test_run_id.as_deref(), Some(by_title[title(row)][0].id.as_str()));
    }
}

#[test]
fn rows_already_imported_stay_so_when_an_invalid_row_stops_the_run() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("inv", 1..4, true));
    let first = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_rows = rig.report("runs.report.csv");

    // The file gains a new valid row and a row without a title.
    rig.append(
        "runs.csv",
        format!("{}, {PROJECT},INV-009\n", generated_rows("inv", 4..5, false)),
    );
    let second = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(second.stderr.contains("nothing was sent"), "{}", second.stderr);
    let rows = rig.report("runs.report.csv");
    let outcomes: Vec<Outcome> = rows.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            [Outcome::AlreadyImported; 3].as_slice(),
            &[Outcome::NotSent, Outcome::Invalid]
        ]
        .concat()
    );
    assert_eq!(ids(&rows[..3]), ids(&first_rows), "the earlier ids");
    assert!(
        rows[3].error.as_deref().is_some_and(|e| e.contains("--skip-invalid")),
        "{:?}",
        rows[3]
    );
    assert_eq!(rig.sandbox.stats().posts_received, 3, "nothing sent the second time");
}

/// A run killed mid-upload (SIGKILL), on a service that also drops some connections after
/// creating the run: some rows were sent and never answered. The next run, once --timeout
/// has passed, looks them up at the service: none is left `unknown`, none is created twice
/// and none is missing.
#[test]
fn after_a_sigkill_mid_run_the_next_run_leaves_no_row_unknown_twice_or_missing() {
    const ROWS: usize = 40;
    let rig = Rig::new(SandboxOptions::default());
    let dropping = rig.start_sandbox(SandboxOptions {
        latency: Duration::from_millis(300),
        faults: vec![testsigma_import::sandbox::FaultRule {
            fault: testsigma_import::sandbox::Fault::ResetAfterRead,
            probability: 0.25,
        }],
        seed: Some(7),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("kill", 1..ROWS + 1, true));
    let mut cmd = rig.import_into(&dropping, "runs.csv", Some("k-rerun"));
    cmd.args([
        "--state",
        "s.jsonl",
        "--rate",
        "5",
        "--concurrency",
        "4",
        "--max-retries",
        "0",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn the import");
    wait_until("8 runs in the sandbox", || dropping.runs().len() >= 8);
    child.kill().expect("SIGKILL the import");
    child.wait().expect("reap the import");
    let created = dropping.runs();
    assert!(created.len() < ROWS, "killed mid-run, after {} runs", created.len());

    // The same service, no longer dropping connections, holding the same runs.
    let healthy = swap(&rig, dropping, SandboxOptions::default());
    healthy.restore(created.clone());
    // The lost answers are looked up once --timeout has passed since they were sent.
    std::thread::sleep(Duration::from_millis(2_100));
    let mut cmd = rig.import_into(&healthy, "runs.csv", Some("k-rerun"));
    cmd.args(["--state", "s.jsonl", "--rate", "20", "--timeout", "2"]);
    let second = run(cmd);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let rows = rig.report("runs.report.csv");
    assert_eq!(rows.len(), ROWS, "no row missing");
    let by_title = runs_by_title(&healthy);
    assert_eq!(by_title.len(), ROWS, "every row has a run");
    for row in &rows {
        assert!(
            matches!(row.outcome, Outcome::Created | Outcome::AlreadyImported),
            "{row:?}"
        );
        let runs = &by_title[title(row)];
        assert_eq!(runs.len(), 1, "row {} has {} runs", row.row, runs.len());
        assert_eq!(row.test_run_id.as_deref(), Some(runs[0].id.as_str()), "row {}", row.row);
    }
    assert_eq!(
        count(&rows, Outcome::AlreadyImported),
        created.len(),
        "{}",
        second.stderr
    );
}

#[test]
fn a_torn_last_ledger_line_is_tolerated_with_a_warning() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("torn", 1..4, true));
    let first = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    rig.append("s.jsonl", r#"{"v":1,"event":"created","scope":"http://127.0.0.1"#);
    let torn_line = rig.read("s.jsonl").lines().count();

    rig.append("runs.csv", generated_rows("torn", 4..5, false));
    let second = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("warning") && second.stderr.contains(&format!("({torn_line})")),
        "names the torn line {torn_line}: {}",
        second.stderr
    );
    let outcomes: Vec<Outcome> = rig.report("runs.report.csv").iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::AlreadyImported,
            Outcome::AlreadyImported,
            Outcome::AlreadyImported,
            Outcome::Created
        ]
    );
    assert_eq!(rig.sandbox.runs().len(), 4);

    // The next append marked the torn line, so the ledger reads cleanly from now on.
    let ledger = rig.read("s.jsonl");
    let lines: Vec<&str> = ledger.lines().collect();
    let marker: Value = serde_json::from_str(lines[torn_line]).expect("the line after the torn one");
    assert_eq!(marker["event"], "torn");
    let third = import_with_state(&rig, "runs.csv", &[]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(!third.stderr.contains("warning"), "{}", third.stderr);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::AlreadyImported), 4);
}

/// Kills the child when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_run_on_a_locked_ledger_is_refused_and_names_the_holder() {
    // Creates that take 30 s to answer; the checks before them answer at once.
    let rig = Rig::new(SandboxOptions {
        faults: vec![testsigma_import::sandbox::FaultRule {
            fault: testsigma_import::sandbox::Fault::Slow(Duration::from_secs(30)),
            probability: 1.0,
        }],
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("lock", 1..3, true));
    let mut cmd = rig.import("runs.csv", Some("k-rerun"));
    cmd.args(["--state", "s.jsonl", "--report", "first.report.csv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = KillOnDrop(cmd.spawn().expect("spawn the slow import"));
    let pid = holder.0.id();
    wait_until("the first run to take the lock", || {
        std::fs::read_to_string(rig.path("s.jsonl.lock")).is_ok_and(|s| s.trim() == pid.to_string())
    });
    wait_until("the first run to send both rows", || {
        std::fs::read_to_string(rig.path("s.jsonl")).is_ok_and(|s| s.matches("\"in_flight\"").count() == 2)
    });

    let second = import_with_state(&rig, "runs.csv", &["--report", "second.report.csv"]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(second.stderr.contains("in use by another"), "{}", second.stderr);
    assert!(second.stderr.contains(&format!("process {pid}")), "{}", second.stderr);
    assert_eq!(
        holder.0.try_wait().expect("the first run's status"),
        None,
        "the first run is still going"
    );

    // A killed holder leaves no stale lock: the next run proceeds (its rows are unknown,
    // since the first run sent them and its answers may still come within --timeout).
    holder.0.kill().expect("kill the first run");
    holder.0.wait().expect("reap the first run");
    let third = import_with_state(&rig, "runs.csv", &["--report", "third.report.csv"]);
    assert!(!third.stderr.contains("in use by another"), "{}", third.stderr);
    assert_eq!(third.code, 1, "{}", third.stderr);
    let rows = rig.report("third.report.csv");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(
            (row.outcome, row.attempts),
            (Outcome::Unknown, 0),
            "not sent again: {row:?}"
        );
    }
}

#[test]
fn the_failed_rows_file_imports_into_a_healthy_service() {
    let rig = Rig::new(SandboxOptions {
        fail_rate: 1.0,
        seed: Some(1),
        ..SandboxOptions::default()
    });
    rig.copy_sample();
    let first = import_with_state(
        &rig,
        "test-runs.csv",
        &["--max-retries", "0", "--rate", "50", "--plan", "plan.jsonl"],
    );
    assert_eq!(first.code, 1, "{}", first.stderr);
    let rows = rig.report("test-runs.report.csv");
    // Five refusals in a row before anything was created stop the run: the service is
    // down. The rows it refused are `failed` and go to the failed-rows file; the rest were
    // never sent (a re-run of the input sends them).
    let failed_rows = count(&rows, Outcome::Failed);
    // The fifth refusal stops it; up to three more requests may be in flight by then.
    assert!((5..=8).contains(&failed_rows), "{rows:#?}");
    assert_eq!(count(&rows, Outcome::NotSent), 12 - failed_rows, "{rows:#?}");
    assert!(rig.sandbox.runs().is_empty());

    // The original columns, cell for cell, plus the error.
    let mut original = csv::Reader::from_path(rig.path("test-runs.csv")).expect("the sample");
    let mut failed = csv::Reader::from_path(rig.path("test-runs.failed.csv")).expect("test-runs.failed.csv");
    let mut want_headers: Vec<String> = original.headers().expect("headers").iter().map(String::from).collect();
    want_headers.push("error".into());
    let headers: Vec<String> = failed.headers().expect("headers").iter().map(String::from).collect();
    assert_eq!(headers, want_headers);
    let original: Vec<csv::StringRecord> = original.records().map(|r| r.expect("a record")).collect();
    let failed_records: Vec<csv::StringRecord> = failed.records().map(|r| r.expect("a record")).collect();
    // Every row not done: the refused ones and those never sent, in input order.
    assert_eq!(failed_records.len(), 12);
    let not_done: Vec<(&csv::StringRecord, &ReportRow)> = original.iter().zip(&rows).collect();
    for ((orig, row), got) in not_done.iter().zip(&failed_records) {
        let cells: Vec<&str> = got.iter().collect();
        assert_eq!(cells[..cells.len() - 1], orig.iter().collect::<Vec<_>>()[..]);
        assert_eq!(Some(cells[cells.len() - 1]), row.error.as_deref());
    }

    // Fed back in against a healthy service, every row is created as first planned.
    let healthy = rig.start_sandbox(SandboxOptions::default());
    let mut cmd = rig.import_into(&healthy, "test-runs.failed.csv", Some("k-rerun"));
    cmd.args(["--state", "s.jsonl", "--rate", "50"]);
    let again = run(cmd);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let rows = rig.report("test-runs.failed.report.csv");
    // The one file finishes the job: every row is created once.
    assert_eq!(count(&rows, Outcome::Created), 12, "{rows:#?}");
    let by_title = runs_by_title(&healthy);
    assert_eq!(healthy.runs().len(), 12);
    for line in rig.plan("plan.jsonl") {
        let title = line["body"]["title"].as_str().expect("a planned title");
        assert_eq!(by_title[title][0].body, expected_body(&line), "row {}", line["row"]);
    }
}

/// The summary is written last; a path it cannot be written to is found before anything
/// is sent, not after the runs exist (which would end a successful import with exit 2).
#[test]
fn a_summary_json_path_that_cannot_be_written_stops_the_run_before_sending() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("sj", 1..3, true));
    let out = import_with_state(&rig, "runs.csv", &["--summary-json", "no-such-dir/summary.json"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--summary-json: cannot write no-such-dir/summary.json"),
        "{}",
        out.stderr
    );
    assert!(rig.sandbox.runs().is_empty());
    assert_eq!(rig.sandbox.stats().posts_received, 0);
    // A writable path is checked without leaving a probe behind; a run that then stops
    // early writes the summary that says so.
    let out = import_with_state(&rig, "missing.csv", &["--summary-json", "summary.json"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let summary = rig.summary("summary.json");
    assert_eq!(summary["exit_code"], 2, "{summary:#}");
    assert!(
        summary["error"].as_str().is_some_and(|e| e.contains("missing.csv")),
        "{summary:#}"
    );
}

#[test]
fn summary_json_holds_counts_per_outcome_and_the_exit_code() {
    let rig = Rig::new(SandboxOptions::default());
    let mut csv = generated_rows("sum", 1..5, true);
    // A row without a title is invalid.
    csv.push_str(&format!(",{PROJECT},SUM-BAD\n"));
    rig.write("runs.csv", csv);

    let first = import_with_state(&rig, "runs.csv", &["--skip-invalid", "--summary-json", "summary.json"]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let summary = rig.summary("summary.json");
    assert_eq!(
        summary["counts"],
        json!({"created": 4, "already_imported": 0, "changed": 0, "updated": 0, "invalid": 1, "failed": 0, "not_sent": 0, "unknown": 0, "planned": 0})
    );
    assert_eq!(summary["rows"], 5);
    assert_eq!(summary["requests_sent"], 4);
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["dry_run"], false);
    assert_eq!(summary["report"], "runs.report.csv");
    assert_eq!(summary["failed_rows_file"], "runs.failed.csv");

    let second = import_with_state(&rig, "runs.csv", &["--skip-invalid", "--summary-json", "summary.json"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    let summary = rig.summary("summary.json");
    assert_eq!(
        summary["counts"],
        json!({"created": 0, "already_imported": 4, "changed": 0, "updated": 0, "invalid": 1, "failed": 0, "not_sent": 0, "unknown": 0, "planned": 0})
    );
    assert_eq!(summary["requests_sent"], 0);
    assert_eq!(summary["exit_code"], 1);

    // Without the invalid row, everything is already imported: exit 0.
    rig.write("runs.csv", generated_rows("sum", 1..5, true));
    let third = import_with_state(&rig, "runs.csv", &["--summary-json", "summary.json"]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let summary = rig.summary("summary.json");
    assert_eq!(summary["counts"]["already_imported"], 4);
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["failed_rows_file"], Value::Null);
    assert!(
        !rig.path("runs.failed.csv").exists(),
        "a stale failed-rows file is removed"
    );
}

#[test]
fn a_dry_run_says_which_rows_the_ledger_holds() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("dry", 1..5, true));
    let first = import_with_state(&rig, "runs.csv", &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let created = rig.report("runs.report.csv");
    rig.append("runs.csv", generated_rows("dry", 5..7, false));

    // The same base URL and ledger, offline: every row planned, the known ones noted.
    let mut cmd = rig.import("runs.csv", None);
    cmd.args(["--state", "s.jsonl", "--dry-run"]);
    dry_run_says(
        cmd,
        "ledger s.jsonl: 4 of 6 planned rows are already imported; an import would look up the other 2 at the service and send those it does not hold",
    );
    let rows = rig.report("runs.report.csv");
    assert_eq!(count(&rows, Outcome::Planned), 6);
    for (row, earlier) in rows[..4].iter().zip(&created) {
        let run = earlier.test_run_human_id.as_deref().expect("a created run's human id");
        let note = row.error.as_deref().unwrap_or_default();
        assert!(
            note.starts_with(&format!("already imported as {run} (row {}, ", earlier.row)),
            "{row:?}"
        );
        assert!(note.ends_with("an import skips it (--force sends it again)"), "{note}");
    }
    assert!(rows[4..].iter().all(|r| r.error.is_none()), "{rows:?}");
    assert_eq!(rig.sandbox.stats().posts_received, 4, "the dry run sent nothing");

    // The dry run neither locked nor changed the ledger: the import goes ahead and sends
    // exactly the two rows the dry run said it would.
    let ledger_before = rig.read("s.jsonl");
    let second = import_with_state(&rig, "runs.csv", &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(rig.read("s.jsonl").starts_with(&ledger_before));
    let rows = rig.report("runs.report.csv");
    assert_eq!(count(&rows, Outcome::AlreadyImported), 4);
    assert_eq!(count(&rows, Outcome::Created), 2);

    // Another base URL holds none of them, but may be the same service moved: the dry run
    // says an import there would refuse (see the --moved-from tests below).
    let mut cmd = bare_command(rig.dir.path(), None);
    cmd.args([
        "import",
        "runs.csv",
        "--state",
        "s.jsonl",
        "--dry-run",
        "--base-url",
        "https://elsewhere.example.com/api/v1",
    ]);
    dry_run_says(
        cmd,
        "6 rows the ledger shows sent through another address, so an import to this one would refuse to run",
    );
}

/// Runs a dry run that must pass, and whose stderr must hold `line`.
fn dry_run_says(cmd: std::process::Command, line: &str) {
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains(line), "{}", out.stderr);
}

/// The same ledger, another base URL (the service moved hosts, say): the rows it shows as
/// created through the old address are not sent blindly. Without `--moved-from` the run
/// refuses, naming the flag; with it they are `already_imported` with their ids, and are
/// recorded under the new address, so the next run needs no flag and sends only new rows.
#[test]
fn a_ledger_made_through_another_address_is_not_resent_blindly() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("mv", 1..4, true));
    let first = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_rows = rig.report("runs.report.csv");
    let old = rig.sandbox.base_url();

    let moved = rig.start_sandbox(SandboxOptions::default());
    let to_moved = |extra: &[&str]| {
        let mut cmd = rig.import_into(&moved, "runs.csv", Some("k-rerun"));
        cmd.args(["--state", "s.jsonl", "--rate", "50"]).args(extra);
        run(cmd)
    };
    // A dry run says so first, as a nightly job's check would want.
    let dry = to_moved(&["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stderr.contains(
            "3 rows the ledger shows sent through another address, so an import to this one would refuse to run"
        ),
        "{}",
        dry.stderr
    );
    let refused = to_moved(&[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("3 rows (row 2 first) are in the ledger as sent through {old}"))
            && refused.stderr.contains(&format!("pass --moved-from {old}")),
        "{}",
        refused.stderr
    );
    assert_eq!(moved.stats().posts_received, 0);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::NotSent), 3);

    let carried = to_moved(&["--moved-from", &old]);
    assert_eq!(carried.code, 0, "{}", carried.stderr);
    let rows = rig.report("runs.report.csv");
    assert_eq!(count(&rows, Outcome::AlreadyImported), 3, "{rows:#?}");
    assert_eq!(ids(&rows), ids(&first_rows));
    assert_eq!(moved.stats().posts_received, 0);

    rig.append("runs.csv", generated_rows("mv", 4..5, false));
    let next = to_moved(&[]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    let rows = rig.report("runs.report.csv");
    assert_eq!(count(&rows, Outcome::AlreadyImported), 3, "{rows:#?}");
    assert_eq!(count(&rows, Outcome::Created), 1, "{rows:#?}");
    assert_eq!(moved.stats().posts_received, 1, "only the new row");
    assert_eq!(rig.sandbox.runs().len(), 3, "nothing more at the old address");
}

/// A nightly run whose key has gone missing stops (exit 2) before it could send anything,
/// and leaves last night's report as it was: it still says which rows are done, with their
/// ids. Only the summary says what happened tonight.
#[test]
fn without_a_key_the_last_report_stands_with_its_ids() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("nk", 1..4, true));
    let first = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let last_night = std::fs::read(rig.path("runs.report.csv")).expect("the report");
    let ledger = std::fs::read(rig.path("s.jsonl")).expect("the ledger");

    rig.append("runs.csv", generated_rows("nk", 4..5, false));
    let mut cmd = rig.import("runs.csv", None);
    cmd.args(["--state", "s.jsonl", "--summary-json", "summary.json"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        std::fs::read(rig.path("runs.report.csv")).expect("the report"),
        last_night
    );
    assert_eq!(std::fs::read(rig.path("s.jsonl")).expect("the ledger"), ledger);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::Created), 3);
    let summary = rig.summary("summary.json");
    assert_eq!(summary["exit_code"], 2, "{summary:#}");
    assert!(
        summary["error"].as_str().is_some_and(|e| e.contains("no API key")),
        "{summary:#}"
    );
    assert_eq!(rig.sandbox.stats().posts_received, 3);
}

/// Rows whose answer never came, under another spelling of the same service's address:
/// not resent either (they may exist), refused the same way as created ones.
#[test]
fn unknown_rows_under_another_address_are_not_resent_either() {
    let rig = Rig::new(SandboxOptions {
        faults: vec![testsigma_import::sandbox::FaultRule {
            fault: testsigma_import::sandbox::Fault::ErrorAfterCreate,
            probability: 1.0,
        }],
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("unk", 1..3, true));
    let first = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::Unknown), 2);

    let other = rig.sandbox.base_url().replace("127.0.0.1", "localhost");
    let mut cmd = bare_command(&rig.path(""), Some("k-rerun"));
    cmd.args(["import", "runs.csv", "--base-url", &other, "--state", "s.jsonl"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("pass --moved-from"), "{}", out.stderr);
    assert_eq!(rig.sandbox.stats().posts_received, 2, "nothing sent again");
}

/// A row edited after it was imported (same human_id, new title) is not sent again: it is
/// `changed`, naming the field, every night alike until `--update-changed` updates exactly
/// that run; after that the row is plainly `already_imported`.
#[test]
fn a_row_changed_since_it_was_imported_is_changed_until_updated() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("ed", 1..4, true));
    let first = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = rig.sandbox.runs();

    let edited = rig.read("runs.csv").replacen(&title_of(2, "ed"), "Renamed run", 1);
    rig.write("runs.csv", edited);
    for night in 0..2 {
        let second = import_with_state(&rig, "runs.csv", &["--rate", "50", "--summary-json", "n.json"]);
        assert_eq!(second.code, 0, "night {night}: {}", second.stderr);
        assert_eq!(rig.sandbox.stats().posts_received, 3, "nothing sent again");
        let rows = rig.report("runs.report.csv");
        let outcomes: Vec<Outcome> = rows.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            [Outcome::AlreadyImported, Outcome::Changed, Outcome::AlreadyImported]
        );
        let note = rows[1].error.as_deref().unwrap_or_default();
        assert!(
            note.starts_with("changed since it was imported as ") && note.contains(": title; nothing was sent"),
            "{note}"
        );
        let renamed = before
            .iter()
            .find(|run| run.body["title"] == title_of(2, "ed"))
            .expect("its run");
        assert_eq!(rows[1].test_run_id.as_deref(), Some(renamed.id.as_str()));
        assert!(
            second
                .stderr
                .contains("note: 1 row already imported has changed since (row 3)"),
            "{}",
            second.stderr
        );
        assert_eq!(rig.summary("n.json")["counts"]["changed"], 1);
    }

    let update = import_with_state(&rig, "runs.csv", &["--rate", "50", "--update-changed"]);
    assert_eq!(update.code, 0, "{}", update.stderr);
    let rows = rig.report("runs.report.csv");
    let outcomes: Vec<Outcome> = rows.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::AlreadyImported, Outcome::Updated, Outcome::AlreadyImported]
    );
    let stats = rig.sandbox.stats();
    assert_eq!((stats.posts_received, stats.updated), (3, 1), "{stats}");
    let after = rig.sandbox.runs();
    assert_eq!(after.len(), 3, "no run was added");
    let renamed = before
        .iter()
        .find(|run| run.body["title"] == title_of(2, "ed"))
        .expect("its run");
    for run in &after {
        if run.id == renamed.id {
            assert_eq!(run.body["title"], "Renamed run");
        } else {
            let was = before.iter().find(|b| b.id == run.id).expect("an earlier run");
            assert_eq!(run.body, was.body, "the other runs are untouched");
        }
    }

    let settled = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(settled.code, 0, "{}", settled.stderr);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::AlreadyImported), 3);
}

/// The in-process sandbox's port changes every run: a rehearsal with a ledger can be run
/// again (its rows are `already_imported`), and it never blocks a run into the service.
#[test]
fn in_process_sandbox_rehearsals_repeat_and_never_block_the_real_run() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("reh", 1..3, true));
    let rehearse = || {
        let mut cmd = bare_command(&rig.path(""), None);
        cmd.args(["import", "runs.csv", "--sandbox", "--state", "s.jsonl"]);
        run(cmd)
    };
    let first = rehearse();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let again = rehearse();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::AlreadyImported), 2);

    let real = import_with_state(&rig, "runs.csv", &["--rate", "50"]);
    assert_eq!(real.code, 0, "{}", real.stderr);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::Created), 2);
    assert_eq!(rig.sandbox.runs().len(), 2);
}

/// Rows sent through two other addresses: `--moved-from` takes the one it names, every
/// time; and rows that were unknown there stay unknown here without the flag next time.
#[test]
fn moved_from_takes_the_address_it_names_and_carries_unknown_rows_too() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("two", 1..4, true));
    assert_eq!(import_with_state(&rig, "runs.csv", &["--rate", "50"]).code, 0);
    let old = rig.start_sandbox(SandboxOptions::default());
    let into = |sandbox: &testsigma_import::sandbox::Sandbox, extra: &[&str]| {
        let mut cmd = rig.import_into(sandbox, "runs.csv", Some("k-rerun"));
        cmd.args(["--state", "s.jsonl", "--rate", "50"]).args(extra);
        run(cmd)
    };
    assert_eq!(into(&old, &["--force"]).code, 0);
    let old_ids = ids(&rig.report("runs.report.csv"));
    let new = rig.start_sandbox(SandboxOptions::default());
    for _ in 0..3 {
        let out = into(&new, &["--moved-from", &old.base_url()]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(ids(&rig.report("runs.report.csv")), old_ids);
    }
    assert_eq!(new.stats().posts_received, 0);

    // Unknown rows at the old address.
    let failing = rig.start_sandbox(SandboxOptions {
        faults: vec![testsigma_import::sandbox::FaultRule {
            fault: testsigma_import::sandbox::Fault::ErrorAfterCreate,
            probability: 1.0,
        }],
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("unk2", 1..3, true));
    assert_eq!(into(&failing, &[]).code, 1);
    let fresh = rig.start_sandbox(SandboxOptions::default());
    let carried = into(&fresh, &["--moved-from", &failing.base_url()]);
    assert_eq!(carried.code, 1, "{}", carried.stderr);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::Unknown), 2);
    let next = into(&fresh, &[]);
    assert_eq!(next.code, 1, "no refusal: {}", next.stderr);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::Unknown), 2);
    assert_eq!(fresh.stats().posts_received, 0);
}

/// A row's key is its human_id when the file has that column, else its title and start
/// date (`--key` names others). Two rows with one key are one run: the second is invalid,
/// naming the first, and nothing is sent; a key that tells them apart sends both.
#[test]
fn two_rows_with_one_key_are_invalid_and_a_finer_key_tells_them_apart() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "two.csv",
        format!("Title,Project,Start,Labels\nSame,{PROJECT},2025-03-01,a\nSame,{PROJECT},2025-03-01,b\n"),
    );
    let out = import_with_state(&rig, "two.csv", &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("invalid: row 3") && out.stderr.contains("row 2 has the same key (title, start_date)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        rig.outcomes("two.report.csv"),
        [(2, Outcome::NotSent), (3, Outcome::Invalid)]
    );
    assert!(rig.sandbox.runs().is_empty(), "nothing sent");

    let out = import_with_state(&rig, "two.csv", &["--key", "title,start_date,labels"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        rig.outcomes("two.report.csv"),
        [(2, Outcome::Created), (3, Outcome::Created)]
    );
    // The next night the same key finds both in the ledger.
    let out = import_with_state(&rig, "two.csv", &["--key", "title,start_date,labels"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        rig.outcomes("two.report.csv"),
        [(2, Outcome::AlreadyImported), (3, Outcome::AlreadyImported)]
    );
    assert_eq!(rig.sandbox.runs().len(), 2);
}

/// A nightly job whose export cannot be read must not leave last night's summary saying
/// exit 0: a run that ends before its rows are read says so in --summary-json.
#[test]
fn a_run_that_ends_before_its_rows_says_so_in_the_summary() {
    let rig = Rig::new(SandboxOptions::default());
    rig.copy_sample();
    let out = import_with_state(&rig, "test-runs.csv", &["--summary-json", "summary.json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(rig.summary("summary.json")["exit_code"], 0);

    rig.write("test-runs.csv", "");
    let out = import_with_state(&rig, "test-runs.csv", &["--summary-json", "summary.json"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let summary = rig.summary("summary.json");
    assert_eq!(summary["exit_code"], 2, "{summary:#}");
    assert_eq!(summary["rows"], 0, "{summary:#}");
    assert!(
        summary["error"]
            .as_str()
            .is_some_and(|e| e.contains("the file is empty")),
        "{summary:#}"
    );

    // A setting refused before the file is opened says so too, from the flag or the config;
    // a summary path that is the input file itself is never written.
    rig.copy_sample();
    for (extra, config) in [
        (
            &["--timezone", "Mars/Olympus", "--summary-json", "summary.json"][..],
            "",
        ),
        (&["--rate", "1.5"][..], "summary-json = \"summary.json\"\n"),
        (&[][..], "summary-json = \"summary.json\"\nrate = \"fast\"\n"),
        // Not valid TOML at all: the summary's own line still reads.
        (&[][..], "rate = fast\nsummary-json = \"summary.json\"\n[mapping\n"),
    ] {
        rig.write("testsigma-import.toml", "");
        let out = import_with_state(&rig, "test-runs.csv", &["--summary-json", "summary.json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        rig.write("testsigma-import.toml", config);
        let out = import_with_state(&rig, "test-runs.csv", extra);
        assert_eq!(out.code, 2, "{}", out.stderr);
        let summary = rig.summary("summary.json");
        assert_eq!(summary["exit_code"], 2, "{extra:?}: {summary:#}");
        let error = summary["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("--") || error.starts_with("config file"),
            "{summary:#}"
        );
    }
    // A rate refused by the settings, or by the argument parser: never over the input,
    // nor a config given as `--config=FILE`, nor a file that is not a summary.
    let input = rig.read("test-runs.csv");
    for rate in ["0", "abc"] {
        let out = import_with_state(
            &rig,
            "test-runs.csv",
            &["--rate", rate, "--summary-json", "test-runs.csv"],
        );
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_eq!(
            rig.read("test-runs.csv"),
            input,
            "--rate {rate}: the input is untouched"
        );
    }
    rig.write("other.toml", "rate = 5\n");
    rig.write("notes.txt", "mine\n");
    for extra in [
        &["--config=other.toml", "--summary-json", "other.toml"][..],
        &["--summary-json", "notes.txt"][..],
    ] {
        let mut args = vec!["--rate", "abc"];
        args.extend_from_slice(extra);
        let out = import_with_state(&rig, "test-runs.csv", &args);
        assert_eq!(out.code, 2, "{}", out.stderr);
    }
    assert_eq!(rig.read("other.toml"), "rate = 5\n");
    assert_eq!(rig.read("notes.txt"), "mine\n");

    // A value the argument parser itself refuses, before any setting is resolved: the
    // summary is still written where the flag says, in either spelling of it.
    rig.write("testsigma-import.toml", "");
    for summary_flag in [
        &["--summary-json", "summary.json"][..],
        &["--summary-json=summary.json"][..],
    ] {
        let out = import_with_state(&rig, "test-runs.csv", &["--summary-json", "summary.json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mut extra = vec!["--rate", "abc"];
        extra.extend_from_slice(summary_flag);
        let out = import_with_state(&rig, "test-runs.csv", &extra);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains("invalid value 'abc' for '--rate <N>'"),
            "{}",
            out.stderr
        );
        let summary = rig.summary("summary.json");
        assert_eq!(summary["exit_code"], 2, "{summary_flag:?}: {summary:#}");
        let error = summary["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("invalid value 'abc' for '--rate <N>'"), "{summary:#}");
    }
}

/// No output is written over a file the run reads or keeps: the ledger, the config, the
/// input (through a hard link too). Each clash is refused before anything is read or sent.
#[test]
fn an_output_over_the_ledger_the_config_or_the_input_is_refused() {
    let rig = Rig::new(SandboxOptions::default());
    rig.copy_sample();
    let out = import_with_state(&rig, "test-runs.csv", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ledger = rig.read("s.jsonl");
    std::fs::hard_link(rig.path("test-runs.csv"), rig.path("linked.csv")).expect("a hard link");
    rig.write("testsigma-import.toml", "rate = 8\n");
    let input = rig.read("test-runs.csv");
    for (extra, clash) in [
        (
            &["--summary-json", "s.jsonl"][..],
            "--summary-json s.jsonl is also --state",
        ),
        (&["--report", "s.jsonl"][..], "--state s.jsonl is also --report"),
        (
            &["--summary-json", "linked.csv"][..],
            "--summary-json linked.csv is the input file",
        ),
        (
            &["--summary-json", "testsigma-import.toml", "--dry-run"][..],
            "--summary-json testsigma-import.toml is the config file",
        ),
        (&["--plan", "linked.csv"][..], "--plan linked.csv is the input file"),
    ] {
        let out = import_with_state(&rig, "test-runs.csv", extra);
        assert_eq!(out.code, 2, "{extra:?}: {}", out.stderr);
        assert!(out.stderr.contains(clash), "{extra:?}: {}", out.stderr);
    }
    // A settings error's summary is not written over them either.
    let out = import_with_state(&rig, "test-runs.csv", &["--rate", "0", "--summary-json", "linked.csv"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(rig.read("s.jsonl"), ledger);
    assert_eq!(rig.read("test-runs.csv"), input);
    assert_eq!(rig.read("testsigma-import.toml"), "rate = 8\n");
    // Devices take any number of outputs.
    let out = import_with_state(
        &rig,
        "test-runs.csv",
        &["--report", "/dev/null", "--summary-json", "/dev/null", "--dry-run"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// One service address throughout (the ledger is per address), served by sandboxes that
/// answer differently: `old` stops, and a sandbox with `opts` starts on its port.
fn swap(
    rig: &Rig,
    old: testsigma_import::sandbox::Sandbox,
    opts: SandboxOptions,
) -> testsigma_import::sandbox::Sandbox {
    let port = old.addr().port();
    rig.rt.block_on(old.shutdown());
    rig.rt
        .block_on(testsigma_import::sandbox::Sandbox::start(opts, port))
        .expect("the port is free again")
}

/// A service that refuses every request, `GET /users` included (a key it does not take),
/// so that every lookup fails at once. (A lookup refused for the rate limit is tried again
/// for up to a minute.)
fn users_refused() -> SandboxOptions {
    SandboxOptions {
        api_key: Some("another-key".to_string()),
        ..SandboxOptions::default()
    }
}

/// The built-in users but those with `emails`.
fn users_without(emails: &[&str]) -> SandboxOptions {
    let users = testsigma_import::sandbox::builtin_users()
        .into_iter()
        .filter(|u| !emails.contains(&u.email.as_str()))
        .collect();
    SandboxOptions {
        users: Some(users),
        ..SandboxOptions::default()
    }
}

fn import_into_with_state(
    rig: &Rig,
    sandbox: &testsigma_import::sandbox::Sandbox,
    file: &str,
    extra: &[&str],
) -> Output {
    let mut cmd = rig.import_into(sandbox, file, Some("k-rerun"));
    cmd.args(["--state", "s.jsonl", "--max-retries", "0"]).args(extra);
    run(cmd)
}

/// A re-run whose rows the ledger shows as imported sends nothing. Their e-mail assignees
/// are still asked about (GET /users), so that a changed assignee shows every night, but
/// a lookup that fails, or a user list that no longer has the addresses, does not turn
/// "nothing new to import" into exit 2 or 3: it is said, and the rows are imported.
#[test]
fn a_rerun_with_nothing_to_send_goes_on_when_the_users_lookup_fails() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!(
            "Title,Project,Key,Assignee\nOne,{PROJECT},EM-1,ada@example.com\nTwo,{PROJECT},EM-2,Grace@Example.com\n"
        ),
    );
    rig.write(
        "plain.csv",
        format!("Title,Project,Assignee\nPlain,{PROJECT},alan@example.com\n"),
    );
    let healthy = rig.start_sandbox(SandboxOptions::default());
    for file in ["runs.csv", "plain.csv"] {
        let out = import_into_with_state(&rig, &healthy, file, &[]);
        assert_eq!(out.code, 0, "{file}: {}", out.stderr);
    }
    assert_eq!(healthy.runs().len(), 3);
    let imported = ids(&rig.report("runs.report.csv"));

    let refusing = swap(&rig, healthy, users_refused());
    for file in ["runs.csv", "plain.csv"] {
        let out = import_into_with_state(&rig, &refusing, file, &["--summary-json", "summary.json"]);
        assert_eq!(out.code, 0, "{file}: {}", out.stderr);
        assert!(out.stderr.contains("nothing new to import"), "{}", out.stderr);
        assert!(
            out.stderr
                .contains("warning: could not resolve assignee e-mail addresses")
                && out.stderr.contains("not checked for a changed assignee"),
            "{}",
            out.stderr
        );
        assert_eq!(rig.summary("summary.json")["exit_code"], 0);
    }
    let rows = rig.report("runs.report.csv");
    assert_eq!(
        rows.iter().map(|r| (r.row, r.outcome)).collect::<Vec<_>>(),
        [(2, Outcome::AlreadyImported), (3, Outcome::AlreadyImported)]
    );
    assert_eq!(ids(&rows), imported, "the earlier ids");
    assert!(rows.iter().all(|r| r.error.is_none()), "{rows:?}");
    assert_eq!(rig.outcomes("plain.report.csv"), [(2, Outcome::AlreadyImported)]);
    let stats = refusing.stats();
    assert_eq!(
        (stats.unauthorized, stats.posts_received),
        (2, 0),
        "one GET /users each: {stats}"
    );

    // A service that no longer lists the addresses: no row is invalid for it.
    let forgetful = swap(&rig, refusing, users_without(&["ada@example.com", "grace@example.com"]));
    let out = import_into_with_state(&rig, &forgetful, "runs.csv", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("invalid:"), "{}", out.stderr);
    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [(2, Outcome::AlreadyImported), (3, Outcome::AlreadyImported)]
    );
    assert_eq!(forgetful.stats().posts_received, 0);
}

/// A new row with an e-mail assignee needs the lookup: when it fails, nothing is sent
/// (exit 2) and the imported rows are still said to be imported. When it is made, an
/// imported row that has changed since is `changed`, and an imported row whose address no
/// user has any more is no problem (its row is not sent).
#[test]
fn a_new_row_with_an_email_needs_the_lookup_and_the_imported_rows_ride_along() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!(
            "Title,Project,Key,Assignee\nOne,{PROJECT},EM-1,ada@example.com\nTwo,{PROJECT},EM-2,grace@example.com\n"
        ),
    );
    let healthy = rig.start_sandbox(SandboxOptions::default());
    assert_eq!(import_into_with_state(&rig, &healthy, "runs.csv", &[]).code, 0);
    rig.append("runs.csv", format!("Three,{PROJECT},EM-3,alan@example.com\n"));

    let refusing = swap(&rig, healthy, users_refused());
    let out = import_into_with_state(&rig, &refusing, "runs.csv", &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("could not resolve assignee e-mail addresses: the service refused the API key"),
        "{}",
        out.stderr
    );
    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [
            (2, Outcome::AlreadyImported),
            (3, Outcome::AlreadyImported),
            (4, Outcome::NotSent)
        ]
    );
    let stats = refusing.stats();
    assert_eq!((stats.unauthorized, stats.posts_received), (1, 0), "{stats}");

    // Grace has left; row 2 was renamed since it was imported.
    let edited = rig.read("runs.csv").replacen("One,", "One renamed,", 1);
    rig.write("runs.csv", edited);
    let without_grace = swap(&rig, refusing, users_without(&["grace@example.com"]));
    let out = import_into_with_state(&rig, &without_grace, "runs.csv", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("invalid:"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("note: 1 row already imported has changed since (row 2)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [
            (2, Outcome::Changed),
            (3, Outcome::AlreadyImported),
            (4, Outcome::Created)
        ]
    );
    let runs = without_grace.runs();
    assert_eq!(runs.len(), 1);
    let alan = testsigma_import::sandbox::builtin_users()
        .into_iter()
        .find(|u| u.email == "alan@example.com")
        .expect("alan is a built-in user");
    assert_eq!(runs[0].body["assignee_id"], Value::String(alan.id));
}
