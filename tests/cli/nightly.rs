//! What a nightly job and a new user meet on an ordinary day: the failed-rows file that
//! finishes the job whatever stopped it, setup errors that leave last night's files alone,
//! a summary a monitor can trust, the quiet night, and the help.

use std::path::{Path, PathBuf};

use serde_json::Value;
use testsigma_import::Outcome;
use testsigma_import::sandbox::SandboxOptions;

use crate::common::{Output, PROJECT, Rig, count, run, runs_by_title};

const KEY: &str = "nightly-key-7d1e";

/// `Title,Project,Status` rows named `titles`, all ACTIVE.
fn rows(titles: &[&str]) -> String {
    let mut csv = String::from("Title,Project,Status\n");
    for title in titles {
        csv.push_str(&format!("{title},{PROJECT},ACTIVE\n"));
    }
    csv
}

/// Imports `file` into `rig`'s sandbox with the test key and `extra` arguments.
fn import(rig: &Rig, file: &str, extra: &[&str]) -> Output {
    let mut cmd = rig.import(file, Some(KEY));
    cmd.args(extra);
    run(cmd)
}

/// The titles in a failed-rows file, in its order.
fn failed_titles(rig: &Rig, name: &str) -> Vec<String> {
    let text = rig.read(name);
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    reader
        .records()
        .map(|r| r.expect("a failed-rows record")[0].to_string())
        .collect()
}

/// The line that names the failed-rows file.
fn failed_rows_line(out: &Output) -> &str {
    out.stderr
        .lines()
        .find(|l| l.starts_with("failed rows: "))
        .unwrap_or_else(|| panic!("a failed-rows line: {}", out.streams()))
}

/// Every run in the sandbox, by title, once: the job is finished and nothing doubled.
fn assert_each_run_once(rig: &Rig, sandbox: &testsigma_import::sandbox::Sandbox, titles: &[&str]) {
    let by_title = runs_by_title(sandbox);
    let mut found: Vec<&str> = by_title.keys().map(String::as_str).collect();
    found.sort_unstable();
    let mut want = titles.to_vec();
    want.sort_unstable();
    assert_eq!(found, want, "{}", rig.dir.path().display());
    for (title, runs) in &by_title {
        assert_eq!(runs.len(), 1, "{title} was created {} times", runs.len());
    }
}

#[test]
fn after_invalid_rows_the_failed_rows_file_fixed_and_imported_finishes_the_job() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!("Title,Project,Status\nOne,{PROJECT},ACTIVE\nTwo,{PROJECT},OPEN\nThree,{PROJECT},CLOSED\n"),
    );
    let out = import(&rig, "runs.csv", &[]);
    assert_eq!(out.code, 3, "{}", out.streams());
    assert!(rig.sandbox.runs().is_empty());
    // The valid rows that were not sent are in it too, in input order.
    assert_eq!(failed_titles(&rig, "runs.failed.csv"), ["One", "Two", "Three"]);
    assert_eq!(
        failed_rows_line(&out),
        "failed rows: runs.failed.csv (3 rows: 1 invalid, 2 not sent): fix the rows there (its error column says what is wrong with each); then import that file"
    );

    // Fixed where it says, and imported: every row is created, once.
    let fixed = rig.read("runs.failed.csv").replace(",OPEN,", ",ACTIVE,");
    rig.write("runs.failed.csv", fixed);
    let out = import(&rig, "runs.failed.csv", &[]);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_eq!(count(&rig.report("runs.failed.report.csv"), Outcome::Created), 3);
    assert_each_run_once(&rig, &rig.sandbox, &["One", "Two", "Three"]);
}

#[test]
fn after_a_refused_key_the_failed_rows_file_imports_with_the_right_key() {
    let rig = Rig::new(SandboxOptions {
        api_key: Some(KEY.to_string()),
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", rows(&["One", "Two", "Three"]));
    let mut cmd = rig.import("runs.csv", Some("a-wrong-key"));
    cmd.args(["--summary-json", "summary.json"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert!(out.stderr.contains("the service refused the API key"), "{}", out.stderr);
    assert_eq!(failed_titles(&rig, "runs.failed.csv"), ["One", "Two", "Three"]);
    assert_eq!(
        failed_rows_line(&out),
        "failed rows: runs.failed.csv (3 rows: 3 not sent): set TESTSIGMA_API_KEY (or --api-key-file) to a key the service accepts; then import that file, or run the same command again"
    );
    assert!(!out.stderr.contains("fix the rows"), "{}", out.stderr);
    assert_eq!(rig.summary("summary.json")["counts"]["not_sent"], 3);
    assert!(rig.sandbox.runs().is_empty());

    let out = import(&rig, "runs.failed.csv", &[]);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_each_run_once(&rig, &rig.sandbox, &["One", "Two", "Three"]);
}

#[test]
fn after_a_dead_service_the_failed_rows_file_holds_only_what_is_left() {
    let rig = Rig::new(SandboxOptions::default());
    let service = rig.start_sandbox(SandboxOptions::default());
    let url = service.base_url();
    let port: u16 = url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the sandbox's port");
    let night = |file: &str| {
        let mut cmd = crate::common::bare_command(rig.dir.path(), Some(KEY));
        cmd.args(["import", file, "--base-url", &url, "--max-retries", "0"]);
        run(cmd)
    };
    // The first night goes well.
    rig.write("runs.csv", rows(&["One", "Two"]));
    let out = night("runs.csv");
    assert_eq!(out.code, 0, "{}", out.streams());

    // The second night the file has gained two rows and the service is gone.
    let made = service.runs();
    rig.rt.block_on(service.shutdown());
    rig.write("runs.csv", rows(&["One", "Two", "Three", "Four"]));
    let out = night("runs.csv");
    assert_eq!(out.code, 2, "{}", out.streams());
    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [
            (2, Outcome::AlreadyImported),
            (3, Outcome::AlreadyImported),
            (4, Outcome::NotSent),
            (5, Outcome::NotSent)
        ]
    );
    assert_eq!(failed_titles(&rig, "runs.failed.csv"), ["Three", "Four"]);
    assert_eq!(
        failed_rows_line(&out),
        "failed rows: runs.failed.csv (2 rows: 2 not sent): the service could not be reached or did not answer: try again later (rows whose runs may exist are looked up first); then import that file, or run the same command again"
    );

    // Once it is back, the file finishes the job, and the next night finds nothing to do.
    let back = rig
        .rt
        .block_on(testsigma_import::sandbox::Sandbox::start(
            SandboxOptions::default(),
            port,
        ))
        .expect("the service is back on its port");
    back.restore(made);
    let out = night("runs.failed.csv");
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_each_run_once(&rig, &back, &["One", "Two", "Three", "Four"]);
    let out = night("runs.csv");
    assert_eq!(out.code, 0, "{}", out.streams());
    assert_eq!(count(&rig.report("runs.report.csv"), Outcome::AlreadyImported), 4);
    assert_each_run_once(&rig, &back, &["One", "Two", "Three", "Four"]);
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("a readable dir") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("a readable file");
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_run_without_a_key_leaves_every_earlier_file_as_it_was() {
    let rig = Rig::new(SandboxOptions::default());
    // Last night: one row created, one invalid (sent without it), so there is a report, a
    // failed-rows file and a ledger.
    rig.write(
        "runs.csv",
        format!("Title,Project,Status\nOne,{PROJECT},ACTIVE\nTwo,{PROJECT},OPEN\n"),
    );
    let out = import(&rig, "runs.csv", &["--skip-invalid"]);
    assert_eq!(out.code, 1, "{}", out.streams());
    assert!(rig.path("runs.failed.csv").exists());
    rig.write("summary.json", "{}");
    let before: Vec<(PathBuf, Vec<u8>)> = files_under(rig.dir.path())
        .into_iter()
        .filter(|(p, _)| !p.ends_with("summary.json"))
        .collect();

    // Tonight the key is missing: exit 2, and the report (with last night's ids), the
    // failed-rows file and the ledger are byte for byte what they were.
    rig.write("runs.csv", rows(&["One", "Three"]));
    let mut cmd = rig.import("runs.csv", None);
    cmd.args(["--summary-json", "summary.json"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert!(out.stderr.contains("error: no API key"), "{}", out.stderr);
    let after: Vec<(PathBuf, Vec<u8>)> = files_under(rig.dir.path())
        .into_iter()
        .filter(|(p, _)| !p.ends_with("summary.json") && !p.ends_with("runs.csv"))
        .collect();
    let before: Vec<(PathBuf, Vec<u8>)> = before.into_iter().filter(|(p, _)| !p.ends_with("runs.csv")).collect();
    assert_eq!(after, before, "no earlier file changed, none was added");
    // Only the summary says what happened.
    let summary = rig.summary("summary.json");
    assert_eq!(summary["exit_code"], 2, "{summary:#}");
    assert!(
        summary["error"].as_str().is_some_and(|e| e.starts_with("no API key")),
        "{summary:#}"
    );
    assert_eq!(summary["report"], Value::Null, "{summary:#}");

    // A file never imported gets no ledger and no lock either, nor an explicit --state.
    rig.write("new.csv", rows(&["Fresh"]));
    for extra in [&[][..], &["--state", "explicit.jsonl"][..]] {
        let mut cmd = rig.import("new.csv", None);
        cmd.args(extra);
        let out = run(cmd);
        assert_eq!(out.code, 2, "{extra:?}: {}", out.streams());
        let made: Vec<PathBuf> = files_under(rig.dir.path())
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name.starts_with("new") || name.starts_with("explicit")
            })
            .collect();
        assert_eq!(made, [rig.path("new.csv")], "{extra:?}");
    }
    assert!(rig.sandbox.runs().len() == 1 && rig.sandbox.stats().posts_received == 1);
}

/// An RFC 3339 time in a summary.
fn time_of(summary: &Value, field: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = summary[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {summary:#}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{field}: {text}: {e}"))
}

#[test]
fn the_summary_says_when_which_version_what_input_which_service_and_ledger() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", rows(&["One", "Two"]));
    let out = import(&rig, "runs.csv", &["--summary-json", "summary.json"]);
    assert_eq!(out.code, 0, "{}", out.streams());
    let summary = rig.summary("summary.json");
    assert!(
        time_of(&summary, "started_at") <= time_of(&summary, "finished_at"),
        "{summary:#}"
    );
    assert_eq!(summary["version"], env!("CARGO_PKG_VERSION"), "{summary:#}");
    assert_eq!(summary["input"], "runs.csv", "{summary:#}");
    assert_eq!(summary["base_url"], rig.sandbox.base_url(), "{summary:#}");
    assert_eq!(summary["report"], "runs.report.csv", "{summary:#}");
    let state = summary["state"].as_str().unwrap_or_default();
    assert!(
        state.ends_with(".state.jsonl") && Path::new(state).is_file(),
        "the ledger it used: {summary:#}"
    );
    assert_eq!(summary["exit_code"], 0, "{summary:#}");
    assert_eq!(summary["dry_run"], false, "{summary:#}");
    assert_eq!(summary["rows"], 2, "{summary:#}");
    assert_eq!(summary["requests_sent"], 2, "the creates: {summary:#}");
    assert_eq!(summary["counts"]["created"], 2, "{summary:#}");
    assert_eq!(
        summary["counts"]["planned"], 0,
        "every outcome, zeros included: {summary:#}"
    );

    // A dry run and a rehearsal say so, and name the in-process sandbox as the ledger does.
    for (extra, dry_run, base_url) in [
        (&["--dry-run"][..], true, rig.sandbox.base_url()),
        (&["--sandbox"][..], false, "in-process-sandbox".to_string()),
    ] {
        let mut args = vec!["--summary-json", "summary.json"];
        args.extend_from_slice(extra);
        let out = import(&rig, "runs.csv", &args);
        assert_eq!(out.code, 0, "{extra:?}: {}", out.streams());
        let summary = rig.summary("summary.json");
        assert_eq!(summary["dry_run"], dry_run, "{summary:#}");
        assert_eq!(summary["base_url"], base_url.as_str(), "{summary:#}");
        assert_eq!(summary["input"], "runs.csv", "{summary:#}");
        time_of(&summary, "started_at");
        time_of(&summary, "finished_at");
    }

    // A run refused before its rows are read still says when, which version and what input.
    let out = import(
        &rig,
        "runs.csv",
        &["--summary-json", "summary.json", "--timezone", "Mars/Olympus"],
    );
    assert_eq!(out.code, 2, "{}", out.streams());
    let summary = rig.summary("summary.json");
    assert_eq!(summary["exit_code"], 2, "{summary:#}");
    assert_eq!(summary["input"], "runs.csv", "{summary:#}");
    assert_eq!(summary["version"], env!("CARGO_PKG_VERSION"), "{summary:#}");
    assert!(
        summary["error"].as_str().is_some_and(|e| e.contains("Mars/Olympus")),
        "{summary:#}"
    );
    time_of(&summary, "finished_at");
}

#[test]
fn a_quiet_night_exits_0_and_says_there_was_nothing_to_import() {
    let rig = Rig::new(SandboxOptions::default());
    // Last night had rows and one failed: a report and a failed-rows file.
    rig.write(
        "runs.csv",
        format!("Title,Project,Status\nOne,{PROJECT},ACTIVE\nTwo,{PROJECT},OPEN\n"),
    );
    let out = import(&rig, "runs.csv", &["--skip-invalid"]);
    assert_eq!(out.code, 1, "{}", out.streams());
    let posts = rig.sandbox.stats().posts_received;

    // Tonight's export has its headers and no rows.
    rig.write("runs.csv", "Title,Project,Status\r\n");
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["--summary-json", "summary.json"];
        args.extend_from_slice(extra);
        let out = import(&rig, "runs.csv", &args);
        assert_eq!(out.code, 0, "{extra:?}: {}", out.streams());
        assert!(
            out.stderr
                .contains("runs.csv: no data rows below the header row 1: nothing to import tonight"),
            "{extra:?}: {}",
            out.streams()
        );
        assert!(!out.stderr.contains("error"), "{extra:?}: {}", out.streams());
        assert!(!out.stderr.contains("0 of 0"), "{extra:?}: {}", out.streams());
        let summary = rig.summary("summary.json");
        assert_eq!(summary["exit_code"], 0, "{summary:#}");
        assert_eq!(summary["rows"], 0, "{summary:#}");
        assert_eq!(summary["error"], Value::Null, "{summary:#}");
        assert_eq!(summary["failed_rows_file"], Value::Null, "{summary:#}");
        // Tonight's report, with no rows; last night's failed rows are gone with it.
        assert!(rig.report("runs.report.csv").is_empty());
        assert!(!rig.path("runs.failed.csv").exists(), "{extra:?}");
    }
    assert_eq!(rig.sandbox.stats().posts_received, posts, "nothing sent");

    // A file never imported gets no ledger on a quiet night.
    rig.write("quiet.csv", "Title,Project\n");
    let out = import(&rig, "quiet.csv", &["--state", "quiet.jsonl"]);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert!(!rig.path("quiet.jsonl").exists() && !rig.path("quiet.jsonl.lock").exists());

    // `check` agrees: nothing to check is no failure.
    let mut cmd = crate::common::bare_command(rig.dir.path(), Some(KEY));
    cmd.args(["check", "quiet.csv", "--base-url", &rig.sandbox.base_url()]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    assert!(out.stderr.contains("nothing to check"), "{}", out.streams());
}

/// Whether `line` starts with an RFC 3339 time and a space.
fn is_stamped(line: &str) -> bool {
    line.split_once(' ')
        .is_some_and(|(at, _)| chrono::DateTime::parse_from_rfc3339(at).is_ok())
}

/// `>> import.log`: without a terminal (and outside CI and the journal, which stamp lines
/// themselves), every line says when it was written, so the log reads night by night.
#[test]
fn lines_written_to_a_log_file_start_with_the_time() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", rows(&["One"]));
    rig.write("empty.csv", "");
    let stamped = |file: &str, extra: &[&str]| {
        let mut cmd = rig.import(file, Some(KEY));
        cmd.env_remove("CI").env_remove("JOURNAL_STREAM").args(extra);
        run(cmd)
    };
    for (file, code) in [("runs.csv", 0), ("empty.csv", 2)] {
        let out = stamped(file, &[]);
        assert_eq!(out.code, code, "{}", out.streams());
        assert!(!out.stderr.is_empty());
        assert!(out.stderr.lines().all(is_stamped), "{}", out.stderr);
    }
    let out = stamped("runs.csv", &["--timestamps", "never"]);
    assert!(
        out.stderr.lines().any(|l| l == "report: runs.report.csv"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.lines().any(is_stamped), "{}", out.stderr);

    // CI runners stamp their logs themselves; --timestamps always stamps there too.
    let out = import(&rig, "runs.csv", &[]);
    assert!(!out.stderr.lines().any(is_stamped), "{}", out.stderr);
    let out = import(&rig, "runs.csv", &["--timestamps", "always"]);
    assert!(out.stderr.lines().all(is_stamped), "{}", out.stderr);
}

#[test]
fn the_help_shows_the_defaults_under_headings_and_a_man_page_comes_from_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut cmd = crate::common::bare_command(dir.path(), None);
    cmd.args(["import", "--help"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let help = &out.stdout;
    for line in [
        "--rate <N>         Requests per second, at most, in any one-second window [default: 8]",
        "--concurrency <N>  Requests in flight, at most [default: 4]",
        "--max-retries <N>  Retries per row for retryable failures [default: 5]",
        "[default: 30]",
        "API root [default: https://test-management.testsigma.com/api/v1]",
        "[default: <input stem>.report.csv in the working directory]",
        "[default: <input stem>-<hash>.state.jsonl, one per input file, in $XDG_STATE_HOME/testsigma-import or ~/.local/state/testsigma-import]",
    ] {
        assert!(help.contains(line), "{line}\n{help}");
    }
    for heading in [
        "Input:", "Columns:", "Dates:", "Re-runs:", "Service:", "Upload:", "Output:",
    ] {
        assert!(help.lines().any(|l| l == heading), "{heading}\n{help}");
    }
    // The examples name inputs that cannot be taken for the plan option's file.
    let examples = help.split_once("Examples:").map(|(_, e)| e).unwrap_or_default();
    assert!(!examples.contains("import plan."), "{examples}");

    // A word people reach for gets the option that does the job, not a guess by spelling.
    let mut cmd = crate::common::bare_command(dir.path(), None);
    cmd.args(["import", "runs.csv", "--limit", "5"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.streams());
    assert!(out.stderr.contains("use --rate N"), "{}", out.stderr);
    assert!(!out.stderr.contains("--delimiter"), "{}", out.stderr);

    // The man pages: one per command, from the same definitions.
    let mut cmd = crate::common::bare_command(dir.path(), None);
    cmd.args(["man", "pages"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.streams());
    let page = std::fs::read_to_string(dir.path().join("pages/testsigma-import-import.1")).expect("the import page");
    assert!(page.starts_with(".ie"), "roff: {}", &page[..page.len().min(200)]);
    assert!(page.contains(".TH testsigma-import-import 1"), "{page}");
    assert!(page.contains("[default: 8]"), "{page}");
    assert!(dir.path().join("pages/testsigma-import.1").is_file());
}
