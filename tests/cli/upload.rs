//! End-to-end tests of the upload: the real binary against an in-process sandbox on a
//! loopback port, asserting that every row is accounted for exactly once (report vs the
//! sandbox's stored runs), that the requests are the planned ones, that rate limits,
//! random failures and a refused key are handled, and that the key never leaks.

use std::collections::HashSet;
use std::path::Path;

use crate::common::*;
use serde_json::Value;
use testsigma_import::sandbox::SandboxOptions;
use testsigma_import::{Outcome, ReportRow};

const SAMPLE_ROWS: usize = 12;

/// Every created row of the report is a run the sandbox holds, with its ids, and the
/// sandbox holds no other run.
fn assert_created_rows_are_the_sandbox_runs(
    rows: &[ReportRow],
    rig_runs: &std::collections::HashMap<String, Vec<testsigma_import::sandbox::StoredRun>>,
) {
    let created: Vec<&ReportRow> = rows.iter().filter(|r| r.outcome == Outcome::Created).collect();
    let run_count: usize = rig_runs.values().map(Vec::len).sum();
    assert_eq!(created.len(), run_count, "created rows vs stored runs");
    for row in created {
        let runs = rig_runs
            .get(title(row))
            .unwrap_or_else(|| panic!("created row {} has no run in the sandbox", row.row));
        assert_eq!(runs.len(), 1, "row {} was created {} times", row.row, runs.len());
        assert_eq!(row.test_run_id.as_deref(), Some(runs[0].id.as_str()), "row {}", row.row);
        assert_eq!(
            row.test_run_human_id.as_deref(),
            Some(runs[0].human_id.as_str()),
            "row {}",
            row.row
        );
        assert_eq!(row.http_status, Some(200), "row {}", row.row);
        assert_eq!(row.error, None, "row {}", row.row);
        let request_id = row.request_id.as_deref().unwrap_or_default();
        assert!(
            uuid::Uuid::parse_str(request_id).is_ok(),
            "row {}: the sandbox's x-request-id, got {request_id:?}",
            row.row
        );
    }
}

#[test]
fn every_sample_row_is_created_as_planned() {
    let rig = Rig::new(SandboxOptions::default());
    rig.copy_sample();
    let mut cmd = rig.import("test-runs.csv", Some("k-sample"));
    cmd.args(["--plan", "plan.jsonl"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let rows = rig.report("test-runs.report.csv");
    let rows_seen: Vec<usize> = rows.iter().map(|r| r.row).collect();
    assert_eq!(
        rows_seen,
        (2..2 + SAMPLE_ROWS).collect::<Vec<_>>(),
        "one line per row, in input order"
    );
    assert_eq!(count(&rows, Outcome::Created), SAMPLE_ROWS);
    assert_eq!(rig.sandbox.runs().len(), SAMPLE_ROWS);
    assert_eq!(rig.sandbox.stats().posts_received, SAMPLE_ROWS as u64);
    let by_title = runs_by_title(&rig.sandbox);
    assert_created_rows_are_the_sandbox_runs(&rows, &by_title);
    assert!(
        rows.iter().all(|r| r.attempts == 1),
        "a healthy service needs one attempt per row"
    );
    let keys: Vec<&str> = rows.iter().map(|r| r.human_id.as_deref().unwrap_or_default()).collect();
    assert_eq!(
        keys,
        [
            "PORTAL-R1",
            "BUILD-812",
            "PAY-2026-12",
            "A11Y-7",
            "API-N-331",
            "MOB-4.2-IOS",
            "MOB-4.2-AND",
            "SR-88",
            "MIG-DRY-1",
            "PERF-Q4",
            "L10N-DEFR",
            "FREEZE-2026"
        ]
    );

    // The sandbox received exactly the planned bodies (the e-mail assignee resolved).
    let plan = rig.plan("plan.jsonl");
    assert_eq!(plan.len(), SAMPLE_ROWS);
    for line in &plan {
        let title = line["body"]["title"].as_str().expect("a planned title");
        let runs = &by_title[title];
        assert_eq!(runs[0].body, expected_body(line), "row {}", line["row"]);
        assert_eq!(runs[0].project_id, PROJECT);
    }
    let payments = &by_title["Payments sign-off"][0];
    assert_eq!(payments.body["assignee_id"], Value::String(ada_id()));
}

#[test]

fn the_plan_of_an_upload_is_the_exact_request_sent() {
    let rig = Rig::new(SandboxOptions::default());
    rig.copy_sample();
    let mut cmd = rig.import("test-runs.csv", Some("k-plan"));
    cmd.args(["--plan", "plan.jsonl", "--no-state", "--no-lookup"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let by_title = runs_by_title(&rig.sandbox);
    for line in rig.plan("plan.jsonl") {
        let title = line["body"]["title"].as_str().expect("a planned title");
        assert_eq!(by_title[title][0].body, line["body"], "row {}", line["row"]);
        assert_eq!(
            line.get("unresolved"),
            None,
            "row {}: nothing is unresolved once sent",
            line["row"]
        );
    }
}

#[test]
fn a_rate_limited_service_still_gets_every_row_once() {
    let rig = Rig::new(SandboxOptions {
        rate_limit: Some(3),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("rl", 1..21, true));
    let mut cmd = rig.import("runs.csv", Some("k-rate"));
    cmd.args(["--rate", "10", "--no-state", "--no-lookup"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let rows = rig.report("runs.report.csv");
    assert_eq!(rows.len(), 20);
    assert_eq!(count(&rows, Outcome::Created), 20, "no row lost: {rows:#?}");
    assert_created_rows_are_the_sandbox_runs(&rows, &runs_by_title(&rig.sandbox));
    let stats = rig.sandbox.stats();
    assert!(stats.rate_limited > 0, "the sandbox refused some requests: {stats}");
    // Every refused request was tried again, and every attempt is in the report.
    let attempts: u64 = rows.iter().map(|r| u64::from(r.attempts)).sum();
    assert_eq!(attempts, stats.posts_received, "{stats}");
    assert_eq!(stats.posts_received, 20 + stats.rate_limited, "{stats}");
    assert!(out.stderr.contains("rate limit"), "the summary says so: {}", out.stderr);
}

#[test]
fn random_failures_leave_every_row_created_or_failed_exactly_once() {
    let rig = Rig::new(SandboxOptions {
        fail_rate: 0.3,
        seed: Some(7),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("fr", 1..41, true));
    let mut cmd = rig.import("runs.csv", Some("k-fail"));
    // One request at a time: the seeded draws then meet the rows in the same order every run.
    cmd.args([
        "--rate",
        "50",
        "--concurrency",
        "1",
        "--max-retries",
        "1",
        "--no-state",
        "--no-lookup",
    ]);
    let out = run(cmd);

    let rows = rig.report("runs.report.csv");
    let titles: Vec<String> = rows.iter().map(|r| title(r).to_string()).collect();
    let wanted: Vec<String> = (1..41).map(|n| title_of(n, "fr")).collect();
    assert_eq!(titles, wanted, "every row once, in input order");
    let created = count(&rows, Outcome::Created);
    let failed = count(&rows, Outcome::Failed);
    assert_eq!(created + failed, 40, "{rows:#?}");
    assert!(
        created > 0 && failed > 0,
        "seed 7 gives both outcomes: {created} created, {failed} failed"
    );
    assert_eq!(out.code, if failed > 0 { 1 } else { 0 }, "{}", out.stderr);

    let by_title = runs_by_title(&rig.sandbox);
    assert_created_rows_are_the_sandbox_runs(&rows, &by_title);
    for row in rows.iter().filter(|r| r.outcome == Outcome::Failed) {
        assert!(!by_title.contains_key(title(row)), "failed row {} exists", row.row);
        assert!(
            matches!(row.http_status, Some(500 | 503)),
            "row {}: {:?}",
            row.row,
            row.http_status
        );
        assert_eq!(row.attempts, 2, "row {}: the first try and one retry", row.row);
        assert!(
            row.error.as_deref().is_some_and(|e| e.contains("--max-retries")),
            "{row:?}"
        );
        assert_eq!(row.test_run_id, None);
    }
    let stats = rig.sandbox.stats();
    let attempts: u64 = rows.iter().map(|r| u64::from(r.attempts)).sum();
    assert_eq!(
        attempts, stats.posts_received,
        "every attempt reached the sandbox: {stats}"
    );
    assert_eq!(stats.faults_injected, stats.posts_received - created as u64, "{stats}");

    // The failed rows, and only those, are in the failed-rows file.
    let mut reader = csv::Reader::from_path(rig.path("runs.failed.csv")).expect("runs.failed.csv");
    let headers: Vec<String> = reader.headers().expect("a header").iter().map(String::from).collect();
    assert_eq!(headers, ["Title", "Project", "Key", "error"]);
    let failed_titles: Vec<String> = reader.records().map(|r| r.expect("a record")[0].to_string()).collect();
    let want: Vec<String> = rows
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .map(|r| title(r).to_string())
        .collect();
    assert_eq!(failed_titles, want);
}

#[test]
fn a_refused_key_stops_the_run_and_creates_nothing() {
    let rig = Rig::new(SandboxOptions {
        api_key: Some("right-key-0451".into()),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("wk", 1..6, true));
    let mut cmd = rig.import("runs.csv", Some("wrong-key-9923"));
    cmd.args(["--concurrency", "1", "--state", "s.jsonl"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("refused the API key"), "{}", out.stderr);

    // The check of the project before any create meets the refusal: no row is sent.
    let rows = rig.report("runs.report.csv");
    assert_eq!(rows.len(), 5);
    for row in &rows {
        assert_eq!(row.outcome, Outcome::NotSent, "{row:?}");
        assert_eq!(row.attempts, 0, "{row:?}");
        let error = row.error.as_deref().unwrap_or_default();
        assert!(error.starts_with("not sent") && error.contains("401"), "{row:?}");
    }
    assert!(rig.sandbox.runs().is_empty());
    let stats = rig.sandbox.stats();
    assert_eq!(
        (stats.posts_received, stats.unauthorized, stats.created),
        (0, 1, 0),
        "{stats}"
    );

    // Nothing about those rows sticks in the ledger: with the right key all are sent.
    let mut cmd = rig.import("runs.csv", Some("right-key-0451"));
    cmd.args(["--concurrency", "1", "--state", "s.jsonl"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::Created), 5);
    assert_eq!(rig.sandbox.runs().len(), 5);
}

#[test]
fn a_refused_key_while_resolving_assignees_is_a_setup_error() {
    // The sample gives one assignee as an e-mail: GET /users comes first and meets the refusal.
    let rig = Rig::new(SandboxOptions {
        api_key: Some("right-key-0451".into()),
        ..SandboxOptions::default()
    });
    rig.copy_sample();
    let out = run(rig.import("test-runs.csv", Some("wrong-key-9923")));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("refused the API key"), "{}", out.stderr);
    assert!(rig.sandbox.runs().is_empty());
    assert_eq!(rig.sandbox.stats().posts_received, 0);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the dir") {
        let path = entry.expect("a dir entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_api_key_is_in_no_file_and_no_output() {
    const SECRET: &str = "tsk-7Hq2-SECRET-ZZ81x";
    let rig = Rig::new(SandboxOptions {
        fail_rate: 0.5,
        seed: Some(3),
        ..SandboxOptions::default()
    });
    let mut csv = String::from("Title,Project,Key,Status\n");
    for i in 1..9 {
        csv.push_str(&format!("Run key {i:03},{PROJECT},KEY-{i:03},ACTIVE\n"));
    }
    // One row the client refuses (a bad status), sent around with --skip-invalid.
    csv.push_str(&format!("Run key bad,{PROJECT},KEY-BAD,Pending\n"));
    rig.write("runs.csv", csv);
    let mut cmd = rig.import("runs.csv", Some(SECRET));
    cmd.args([
        "-vv",
        "--skip-invalid",
        "--max-retries",
        "0",
        "--rate",
        "50",
        "--concurrency",
        "1",
        "--plan",
        "plan.jsonl",
        "--state",
        "s.jsonl",
        "--summary-json",
        "summary.json",
    ]);
    let first = run(cmd);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let rows = rig.report("runs.report.csv");
    assert_eq!(count(&rows, Outcome::Invalid), 1);
    assert!(count(&rows, Outcome::Failed) > 0, "seed 3 fails some rows: {rows:#?}");
    assert!(
        first.stderr.contains("testsigma_import"),
        "-vv logs are on: {}",
        first.stderr
    );

    // And a refused key: its messages must not echo the key either.
    let keyed = rig.start_sandbox(SandboxOptions {
        api_key: Some("another-key".into()),
        ..SandboxOptions::default()
    });
    let mut cmd = rig.import_into(&keyed, "runs.csv", Some(SECRET));
    cmd.args([
        "-vv",
        "--skip-invalid",
        "--report",
        "refused.report.json",
        "--state",
        "s.jsonl",
    ]);
    let refused = run(cmd);
    assert_eq!(refused.code, 2, "{}", refused.stderr);

    let files = files_under(rig.dir.path());
    for name in [
        "runs.report.csv",
        "runs.failed.csv",
        "plan.jsonl",
        "s.jsonl",
        "summary.json",
        "refused.report.json",
    ] {
        assert!(files.contains(&rig.path(name)), "{name} was written: {files:?}");
    }
    for file in &files {
        let bytes = std::fs::read(file).expect("read a written file");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{} holds the API key",
            file.display()
        );
    }
    for (name, text) in [
        ("first stdout", &first.stdout),
        ("first stderr", &first.stderr),
        ("refused stdout", &refused.stdout),
        ("refused stderr", &refused.stderr),
    ] {
        assert!(!text.contains(SECRET), "{name} holds the API key:\n{text}");
    }
}

/// The report rows with what differs between two runs into two sandboxes taken out.
fn comparable(rows: &[ReportRow]) -> Vec<ReportRow> {
    rows.iter()
        .map(|r| {
            assert!(r.test_run_id.is_some() && r.request_id.is_some(), "{r:?}");
            ReportRow {
                test_run_id: None,
                test_run_human_id: None,
                request_id: None,
                ..r.clone()
            }
        })
        .collect()
}

#[test]
fn json_and_json_lines_reports_hold_the_same_rows_as_csv() {
    let rig = Rig::new(SandboxOptions::default());
    rig.copy_sample();
    let out = run({
        let mut cmd = rig.import("test-runs.csv", Some("k-formats"));
        cmd.args(["--no-state", "--no-lookup"]);
        cmd
    });
    assert_eq!(out.code, 0, "{}", out.stderr);
    let csv_rows = rig.report("test-runs.report.csv");

    let json_box = rig.start_sandbox(SandboxOptions::default());
    let mut cmd = rig.import_into(&json_box, "test-runs.csv", Some("k-formats"));
    cmd.args(["--no-state", "--no-lookup", "--report", "out.json"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: Value = serde_json::from_str(&rig.read("out.json")).expect("out.json is one JSON document");
    let objects = json.as_array().expect("a JSON array of rows");
    let columns: Vec<&str> = REPORT_HEADER.split(',').collect();
    for object in objects {
        let keys: Vec<&str> = object
            .as_object()
            .expect("a row object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted_columns = columns.clone();
        sorted_columns.sort_unstable();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        assert_eq!(sorted_keys, sorted_columns, "the CSV's columns, as keys");
    }
    let json_rows: Vec<ReportRow> = serde_json::from_value(json.clone()).expect("rows");
    assert_created_rows_are_the_sandbox_runs(&json_rows, &runs_by_title(&json_box));

    let jsonl_box = rig.start_sandbox(SandboxOptions::default());
    let mut cmd = rig.import_into(&jsonl_box, "test-runs.csv", Some("k-formats"));
    cmd.args(["--no-state", "--no-lookup", "--report", "out.jsonl"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = rig.read("out.jsonl");
    assert!(text.ends_with('\n'));
    let jsonl_rows: Vec<ReportRow> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON row per line"))
        .collect();
    assert_created_rows_are_the_sandbox_runs(&jsonl_rows, &runs_by_title(&jsonl_box));

    assert_eq!(csv_rows.len(), SAMPLE_ROWS);
    assert_eq!(comparable(&json_rows), comparable(&csv_rows));
    assert_eq!(comparable(&jsonl_rows), comparable(&csv_rows));
}

#[test]
fn import_sandbox_needs_no_key_and_no_base_url() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/test-runs.csv");
    std::fs::copy(&sample, dir.path().join("test-runs.csv")).expect("copy the sample");
    let mut cmd = bare_command(dir.path(), None);
    cmd.args(["import", "test-runs.csv", "--sandbox"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("sandbox"), "{}", out.stderr);
    let rows = read_csv_report(&dir.path().join("test-runs.report.csv"));
    assert_eq!(rows.len(), SAMPLE_ROWS);
    let ids: HashSet<&str> = rows.iter().filter_map(|r| r.test_run_id.as_deref()).collect();
    assert_eq!(count(&rows, Outcome::Created), SAMPLE_ROWS);
    assert_eq!(ids.len(), SAMPLE_ROWS, "every row has its own id");
}
