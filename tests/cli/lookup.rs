//! The service decides what exists: rows whose runs are already there are found before
//! anything is sent, whatever the ledger says (a fresh one, another working directory, a
//! deleted one, runs made by something else), in as few requests as the smaller of one
//! per row and one per page; a missing project or an unreadable list stops the run before
//! any create.

use serde_json::json;
use testsigma_import::Outcome;
use testsigma_import::sandbox::SandboxOptions;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::common::{PROJECT, Rig, bare_command, count, generated_rows, run};

/// `import FILE` into the rig's sandbox from `dir`, with the rig's state directory.
fn import_from(rig: &Rig, dir: &std::path::Path, file: &str, extra: &[&str]) -> crate::common::Output {
    let mut cmd = bare_command(dir, Some("k-lookup"));
    // The default ledger is the user's, wherever the job starts.
    cmd.env("XDG_STATE_HOME", rig.path(".state"));
    cmd.args(["import", file, "--base-url", &rig.sandbox.base_url()])
        .args(extra);
    run(cmd)
}

#[test]
fn a_second_import_creates_nothing_with_a_fresh_ledger_from_elsewhere_or_with_it_deleted() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("again", 0..12, true));
    let input = rig.path("runs.csv");
    let input = input.to_str().expect("a UTF-8 path");
    let first = import_from(&rig, rig.dir.path(), input, &["--rate", "50"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("ledger: starting a new one at "),
        "{}",
        first.stderr
    );
    let created = rig.report("runs.report.csv");
    assert_eq!(count(&created, Outcome::Created), 12);

    let elsewhere = tempfile::tempdir().expect("another working directory");
    let ledger_dir = rig.path(".state/testsigma-import");
    let cases: [(&str, &[&str]); 3] = [
        ("a fresh ledger", &["--state", "fresh.state.jsonl"]),
        ("another working directory", &[]),
        ("the ledger deleted", &[]),
    ];
    for (what, extra) in cases {
        if what == "the ledger deleted" {
            for entry in std::fs::read_dir(&ledger_dir).expect("the state directory") {
                std::fs::remove_file(entry.expect("an entry").path()).expect("delete the ledger");
            }
        }
        let report = elsewhere.path().join("again.report.csv");
        let report = report.to_str().expect("a UTF-8 path");
        let out = import_from(
            &rig,
            elsewhere.path(),
            input,
            &[&["--report", report][..], extra].concat(),
        );
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        assert_eq!(rig.sandbox.runs().len(), 12, "{what}: no new run");
        let rows = crate::common::read_csv_report(std::path::Path::new(report));
        assert_eq!(count(&rows, Outcome::AlreadyImported), 12, "{what}: {rows:?}");
        for (row, earlier) in rows.iter().zip(&created) {
            assert_eq!(
                (&row.test_run_id, &row.test_run_human_id),
                (&earlier.test_run_id, &earlier.test_run_human_id),
                "{what}: row {}",
                row.row
            );
        }
        assert!(out.stderr.contains("nothing new to import"), "{what}: {}", out.stderr);
    }
    assert_eq!(rig.sandbox.stats().posts_received, 12);
}

/// Runs made by something else, in a project of 350 runs (4 pages), are found. Few new
/// rows are asked for title by title; many are found by reading the list once.
#[test]
fn runs_made_elsewhere_are_found_in_the_fewer_requests_of_rows_and_pages() {
    for (rows, pages_or_rows) in [(2usize, 2u64), (20, 4)] {
        let rig = Rig::new(SandboxOptions::default());
        for i in 0..350 {
            let body = json!({
                "title": format!("Other run {i:03}"), "status": "ACTIVE", "project_id": PROJECT,
                "selection_type": "STATIC", "static_selection_filters": [], "label_names": [], "environment_ids": [],
            });
            rig.sandbox.insert_run(PROJECT, body).expect("seed a run");
        }
        rig.write("runs.csv", generated_rows("made", 0..rows, true));
        // The same rows, made by another tool before this one runs.
        let mut cmd = rig.import("runs.csv", Some("k-lookup"));
        cmd.args(["--no-state", "--no-lookup", "--rate", "50"]);
        assert_eq!(run(cmd).code, 0);
        let made = rig.sandbox.runs().len();
        let lists_before = rig.sandbox.stats().run_lists;

        let mut cmd = rig.import("runs.csv", Some("k-lookup"));
        cmd.args(["--state", "fresh.jsonl", "--rate", "50"]);
        let out = run(cmd);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(rig.sandbox.runs().len(), made, "nothing created twice");
        assert_eq!(count(&rig.report("runs.report.csv"), Outcome::AlreadyImported), rows);
        let lists = rig.sandbox.stats().run_lists - lists_before;
        assert!(
            lists <= pages_or_rows + 2,
            "{rows} rows among {made} runs: {lists} list requests, the fewer is {pages_or_rows}"
        );
    }
}

#[test]
fn a_missing_project_stops_the_run_before_any_create() {
    let rig = Rig::new(SandboxOptions {
        projects: Some(vec!["5e0f6a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b".to_owned()]),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows("gone", 0..40, true));
    let mut cmd = rig.import("runs.csv", Some("k-lookup"));
    cmd.args(["--state", "s.jsonl", "--summary-json", "summary.json"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("project {PROJECT} (row 2 and 39 more) does not exist")),
        "{}",
        out.stderr
    );
    assert_eq!(rig.sandbox.stats().posts_received, 0);
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::NotSent), 40);
    assert_eq!(rig.summary("summary.json")["exit_code"], 2);

    // A base URL without /api/v1 answers every path 404: the same stop, the same advice.
    let wrong = rig.sandbox.base_url().replace("/api/v1", "");
    let mut cmd = bare_command(rig.dir.path(), Some("k-lookup"));
    cmd.args(["import", "runs.csv", "--base-url", &wrong, "--no-state"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is not the API root (it ends in /api/v1)"),
        "{}",
        out.stderr
    );
    assert_eq!(rig.sandbox.stats().posts_received, 0);
}

/// A service whose list of runs the tool cannot read: nothing is concluded from it, and
/// nothing is created (exit 2).
#[test]
fn a_list_answer_that_cannot_be_read_stops_the_run_before_any_create() {
    let rig = Rig::new(SandboxOptions::default());
    let listener = rig
        .rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind a server");
    let addr = listener.local_addr().expect("its address");
    let posts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = posts.clone();
    rig.rt.spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let Some(head) = crate::common::read_request(&mut stream).await else {
                    return;
                };
                if head.starts_with("POST") {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                let body = if head.contains("/test_runs") {
                    json!({"message": "", "data": {"items": []}})
                } else {
                    json!({"message": "", "data": {"id": PROJECT}})
                }
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    rig.write("runs.csv", generated_rows("odd", 0..5, true));
    let mut cmd = bare_command(rig.dir.path(), Some("k-lookup"));
    cmd.args([
        "import",
        "runs.csv",
        "--base-url",
        &format!("http://{addr}/api/v1"),
        "--state",
        "s.jsonl",
    ]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("the answer could not be read") && out.stderr.contains("nothing was sent"),
        "{}",
        out.stderr
    );
    assert_eq!(posts.load(std::sync::atomic::Ordering::SeqCst), 0, "no create");
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::NotSent), 5);
}

/// `check` says what the ledger and the service already hold, and what an import would send.
#[test]
fn check_says_what_already_exists_and_what_would_be_sent() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows("chk", 0..12, true));
    let mut cmd = rig.import("runs.csv", Some("k-lookup"));
    cmd.args(["--rate", "50"]);
    assert_eq!(run(cmd).code, 0);
    rig.append("runs.csv", generated_rows("chk", 12..15, false));
    let mut cmd = bare_command(rig.dir.path(), Some("k-lookup"));
    cmd.args(["check", "runs.csv", "--base-url", &rig.sandbox.base_url()]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("existing runs: 12 already imported (12 by the ledger, 0 found at the service"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("; 3 would be sent"), "{}", out.stderr);
    assert_eq!(rig.sandbox.stats().posts_received, 12, "check creates nothing");
}
