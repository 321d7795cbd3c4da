//! End-to-end tests of the everyday commands around an import (issue 7): the template
//! round-trips through a dry run, `check` against the sandbox (refused key, missing
//! project, unknown e-mail, a clean file) creates nothing, e-mail assignees are sent as
//! user ids (and the `invalid:` lines of unknown ones come in row order among the
//! others), shell completions, `--help` examples, `-v` / `--log-format json` / NO_COLOR
//! on stderr, the grouped end-of-run summary, and progress lines without a terminal.
//! A few tests borrow a pseudo-terminal from util-linux `script` and skip without it.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use calamine::{Data, Reader, Xlsx, open_workbook};
use serde_json::{Value, json};
use testsigma_import::Outcome;
use testsigma_import::sandbox::{SandboxOptions, SandboxStats, builtin_users};
use testsigma_import::template;

use crate::common::{BIN, Output, PROJECT, bare_command, count, run};

const OTHER_PROJECT: &str = "5e0f6a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
const ASSIGNEE: &str = "cbbc40a5-26e9-4b88-8c27-3626c9fbdaa4";
const KEY: &str = "everyday-key-3f9c";
/// The template's example dates: 2026-12-01 09:00 UTC, and the whole of 2026-12-05 UTC.
const EXAMPLE_START: i64 = 1_796_115_600;
const EXAMPLE_END: i64 = 1_796_515_199;

/// The shared rig, with this file's key in every command and no colour setting inherited.
struct Rig(crate::common::Rig);

impl std::ops::Deref for Rig {
    type Target = crate::common::Rig;

    fn deref(&self) -> &crate::common::Rig {
        &self.0
    }
}

impl Rig {
    fn new(opts: SandboxOptions) -> Rig {
        Rig(crate::common::Rig::new(opts))
    }

    /// The binary in the dir, with `args`, a clean environment and the test key.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = command_in(self.dir.path(), args);
        cmd.env("TESTSIGMA_API_KEY", KEY);
        cmd
    }

    /// `import FILE --base-url <sandbox> --no-state EXTRA…`
    fn import(&self, file: &str, extra: &[&str]) -> Output {
        let url = self.sandbox.base_url();
        let mut args = vec!["import", file, "--base-url", &url, "--no-state", "--no-lookup"];
        args.extend_from_slice(extra);
        run(self.command(&args))
    }

    /// `check FILE --base-url <sandbox>`, with `key` in TESTSIGMA_API_KEY.
    fn check(&self, file: &str, key: &str) -> Output {
        let url = self.sandbox.base_url();
        let mut cmd = self.command(&["check", file, "--base-url", &url]);
        cmd.env("TESTSIGMA_API_KEY", key);
        run(cmd)
    }

    /// Each report row's number and outcome, in order.
    /// The sandbox was asked for nothing that creates a run, and stored nothing.
    fn assert_nothing_created(&self, context: &str) {
        let stats: SandboxStats = self.sandbox.stats();
        assert_eq!(stats.posts_received, 0, "{context}: {stats}");
        assert_eq!(stats.created, 0, "{context}: {stats}");
        assert!(self.sandbox.runs().is_empty(), "{context}");
    }
}

/// The binary in `dir` with `args`, no key, and NO_COLOR neither set nor inherited (the
/// colour tests set it themselves).
fn command_in(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = bare_command(dir, None);
    cmd.env_remove("NO_COLOR").args(args);
    cmd
}

fn user_id(email: &str) -> String {
    builtin_users()
        .into_iter()
        .find(|u| u.email == email)
        .unwrap_or_else(|| panic!("{email} is a built-in user"))
        .id
}

/// `Title,Project` rows `Run NNN` in PROJECT, header first.
fn generated_rows(n: usize) -> String {
    let mut csv = String::from("Title,Project\n");
    for i in 1..=n {
        csv.push_str(&format!("Run {i:03},{PROJECT}\n"));
    }
    csv
}

/// The plan line the template's example row must produce, computed from
/// `template::example_row()` (the dates are fixed above, checked against its text).
fn expected_example_plan() -> Value {
    let example: HashMap<&str, String> = template::example_row().into_iter().collect();
    let value = |header: &str| -> String {
        example
            .get(header)
            .unwrap_or_else(|| panic!("the example row has `{header}`"))
            .clone()
    };
    let list = |header: &str| -> Vec<String> {
        value(header)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(value("Start Date"), "2026-12-01 09:00");
    assert_eq!(value("End Date"), "2026-12-05");
    json!({
        "row": 2,
        "method": "POST",
        "path": format!("/projects/{}/test_runs", value("Project ID")),
        "body": {
            "title": value("Title"),
            "description": value("Description"),
            "status": value("Status"),
            "project_id": value("Project ID"),
            "human_id": value("Human ID"),
            // The template has no Selection Type column: STATIC is the default.
            "selection_type": "STATIC",
            "static_selection_filters": [
                {"field": "id", "operator": "IN", "values": list("Test Case IDs")}
            ],
            "start_date": EXAMPLE_START,
            "end_date": EXAMPLE_END,
            "assignee_id": value("Assignee ID"),
            "label_names": list("Label Names"),
            "environment_ids": list("Environment IDs"),
        }
    })
}

#[test]
fn the_template_round_trips_through_a_dry_run() {
    let rig = Rig::new(SandboxOptions::default());
    let expected = expected_example_plan();
    // The hard-coded expectation, so a change on either side shows here plainly.
    assert_eq!(expected["body"]["title"], "Regression — release 1.4");
    assert_eq!(expected["body"]["project_id"], PROJECT);
    assert_eq!(expected["body"]["assignee_id"], ASSIGNEE);
    assert_eq!(expected["body"]["label_names"], json!(["Regression", "Release"]));
    assert_eq!(expected["body"]["environment_ids"], json!([]));
    assert_eq!(
        expected["body"]["static_selection_filters"][0]["values"],
        json!([
            "9ac271b6-4e89-4c93-8c75-2d625efa0b2d",
            "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091"
        ])
    );

    for (file, plan, stem) in [("t.xlsx", "p.jsonl", "t"), ("t.csv", "p-csv.jsonl", "t")] {
        let out = run(rig.command(&["template", file]));
        assert_eq!(out.code, 0, "{file}: {out:?}");
        // Offline first: a new user may have no key for `check` yet.
        assert_eq!(
            out.stderr,
            format!(
                "wrote {file}: fill it in, then check it offline with `testsigma-import import {file} --dry-run`\n\
                 with TESTSIGMA_API_KEY set, `testsigma-import check {file}` also asks the service (the key, the projects, the assignees)\n"
            ),
            "{file}"
        );
        assert_eq!(out.stdout, "", "{file}");

        let out = run(command_in(
            rig.dir.path(),
            &["import", file, "--dry-run", "--plan", plan],
        ));
        assert_eq!(out.code, 0, "{file}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 3, "{file}: {}", out.stderr);
        assert!(
            lines[0].starts_with("dry run: 1 row: 1 planned, 0 invalid; nothing was sent ("),
            "{file}: {}",
            out.stderr
        );
        assert_eq!(lines[1], format!("report: {stem}.report.csv"), "{file}");
        assert_eq!(lines[2], format!("plan: {plan}"), "{file}");

        let plan_text = rig.read(plan);
        assert_eq!(plan_text.lines().count(), 1, "{file}: {plan_text}");
        assert!(plan_text.ends_with('\n'), "{file}");
        let line: Value = serde_json::from_str(plan_text.trim_end()).expect("a plan line is JSON");
        assert_eq!(line, expected, "{file}");

        let report = rig.report(&format!("{stem}.report.csv"));
        assert_eq!(report.len(), 1, "{file}");
        assert_eq!(report[0].row, 2, "{file}");
        assert_eq!(report[0].outcome, Outcome::Planned, "{file}");
        assert_eq!(report[0].title.as_deref(), Some("Regression — release 1.4"), "{file}");
        assert_eq!(report[0].human_id.as_deref(), Some("REL-1.4"), "{file}");
        assert_eq!(report[0].error, None, "{file}");
        assert!(!rig.path(&format!("{stem}.failed.csv")).exists(), "{file}");
    }
    rig.assert_nothing_created("a dry run");
}

#[test]
fn the_xlsx_template_has_the_headers_and_real_date_cells() {
    let rig = Rig::new(SandboxOptions::default());
    let out = run(rig.command(&["template", "runs.xlsx"]));
    assert_eq!(out.code, 0, "{out:?}");
    let mut workbook: Xlsx<_> = open_workbook(rig.path("runs.xlsx")).expect("the template opens as xlsx");
    assert_eq!(workbook.sheet_names(), vec![template::SHEET_NAME.to_string()]);
    let range = workbook
        .worksheet_range(template::SHEET_NAME)
        .expect("the template's sheet");
    assert_eq!(range.get_size(), (2, template::headers().len()));
    let headers: Vec<String> = range
        .rows()
        .next()
        .expect("a header row")
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(headers, template::headers());
    let example: Vec<&Data> = range.rows().nth(1).expect("an example row").iter().collect();
    for (column, (header, text)) in template::example_row().iter().enumerate() {
        match *header {
            "Start Date" | "End Date" => {
                assert!(
                    matches!(example[column], Data::DateTime(_)),
                    "{header}: {:?}",
                    example[column]
                );
            }
            "Environment IDs" => assert_eq!(example[column], &Data::Empty, "{header}"),
            _ => assert_eq!(example[column], &Data::String(text.clone()), "{header}"),
        }
    }
}

#[test]
fn the_template_refuses_an_existing_file_without_force() {
    let rig = Rig::new(SandboxOptions::default());
    for file in ["t.xlsx", "t.csv"] {
        rig.write(file, "keep me");
        let out = run(rig.command(&["template", file]));
        assert_eq!(out.code, 2, "{file}: {out:?}");
        assert_eq!(
            out.stderr,
            format!("error: {file} exists; pass --force to overwrite it\n"),
            "{file}"
        );
        assert_eq!(rig.read(file), "keep me", "{file}: left alone");

        let out = run(rig.command(&["template", file, "--force"]));
        assert_eq!(out.code, 0, "{file}: {out:?}");
        assert_ne!(
            std::fs::read(rig.path(file)).expect("the template"),
            b"keep me",
            "{file}"
        );
        let out = run(rig.command(&["import", file, "--dry-run"]));
        assert_eq!(out.code, 0, "{file}: the forced template dry-runs: {out:?}");
    }
    let out = run(rig.command(&["template", "t.ods"]));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(".xlsx or .csv") && out.stderr.contains("`.ods`"),
        "{}",
        out.stderr
    );
    assert!(!rig.path("t.ods").exists());
}

#[test]
fn check_passes_a_clean_file_and_creates_nothing() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "clean.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},grace@example.com\nTwo,{PROJECT},{ASSIGNEE}\n"),
    );
    let out = rig.check("clean.csv", KEY);
    assert_eq!(out.code, 0, "{out:?}");
    let url = rig.sandbox.base_url();
    let expected = [
        "file: 2 rows, 2 valid, 0 invalid".to_string(),
        format!("project {PROJECT}: found (2 rows)"),
        format!("key: accepted by {url} (from TESTSIGMA_API_KEY)"),
        format!("assignee grace@example.com: user {}", user_id("grace@example.com")),
        "existing runs: 0 already imported (0 by the ledger, 0 found at the service in 1 request); 2 would be sent"
            .to_string(),
        "check passed: nothing was created; `import` with the same options will send every row".to_string(),
    ];
    assert_eq!(out.stderr.lines().collect::<Vec<_>>(), expected, "{}", out.stderr);
    assert!(!out.stderr.contains(KEY));
    rig.assert_nothing_created("check");

    // The template as it stands checks clean too.
    let out = run(rig.command(&["template", "t.xlsx"]));
    assert_eq!(out.code, 0, "{out:?}");
    let out = rig.check("t.xlsx", KEY);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .ends_with("check passed: nothing was created; `import` with the same options will send every row\n"),
        "{}",
        out.stderr
    );
    rig.assert_nothing_created("check of the template");
}

#[test]
fn check_reports_a_refused_key_with_exit_2() {
    let rig = Rig::new(SandboxOptions {
        api_key: Some("the-right-key".to_string()),
        ..SandboxOptions::default()
    });
    rig.write(
        "runs.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},ada@example.com\n"),
    );
    let out = rig.check("runs.csv", "a-wrong-key");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(
            "error: the service refused the API key (HTTP 401): Unauthorized. Check TESTSIGMA_API_KEY or --api-key-file"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("check passed"), "{}", out.stderr);
    assert!(!out.stderr.contains("a-wrong-key") && !out.stdout.contains("a-wrong-key"));
    assert!(rig.sandbox.stats().unauthorized >= 1, "{}", rig.sandbox.stats());
    rig.assert_nothing_created("check with a refused key");
}

#[test]
fn check_reports_a_missing_project_naming_it_and_its_rows() {
    let rig = Rig::new(SandboxOptions {
        projects: Some(vec![PROJECT.to_string()]),
        ..SandboxOptions::default()
    });
    rig.write(
        "runs.csv",
        format!("Title,Project\nOne,{OTHER_PROJECT}\nTwo,{PROJECT}\nThree,{OTHER_PROJECT}\n"),
    );
    let out = rig.check("runs.csv", KEY);
    assert_eq!(out.code, 3, "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    for expected in [
        format!("invalid: project {OTHER_PROJECT} does not exist or this key cannot see it (rows 2, 4)"),
        format!("project {PROJECT}: found (1 row)"),
        "check failed: 0 rows invalid, 1 problem found by the service (exit 3)".to_string(),
    ] {
        assert!(lines.contains(&expected.as_str()), "{expected}\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("check passed"), "{}", out.stderr);
    rig.assert_nothing_created("check with a missing project");
}

#[test]
fn check_names_the_closest_known_address_for_an_unknown_email() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},ada@exmaple.com\nTwo,{PROJECT},Grace@Example.com\nThree,{PROJECT},ada@exmaple.com\n"),
    );
    let out = rig.check("runs.csv", KEY);
    assert_eq!(out.code, 3, "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("invalid: assignee"))
        .unwrap_or_else(|| panic!("a line about the assignee: {}", out.stderr));
    assert!(
        line.starts_with(
            "invalid: assignee `ada@exmaple.com` (rows 2, 4): no user has this e-mail address; did you mean ada@example.com"
        ),
        "{line}"
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l == format!("assignee Grace@Example.com: user {}", user_id("grace@example.com"))),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .ends_with("check failed: 0 rows invalid, 1 problem found by the service (exit 3)\n"),
        "{}",
        out.stderr
    );
    rig.assert_nothing_created("check with an unknown e-mail");
}

#[test]
fn an_email_assignee_is_sent_as_the_users_id() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!("Title,Project,Assignee,Key\nOne,{PROJECT},Grace@Example.com,EV-1\nTwo,{PROJECT},{ASSIGNEE},EV-2\n"),
    );
    let out = rig.import("runs.csv", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let runs = rig.sandbox.runs();
    assert_eq!(runs.len(), 2);
    let by_key: HashMap<String, Value> = runs
        .into_iter()
        .map(|r| (r.body["human_id"].as_str().expect("a human_id").to_string(), r.body))
        .collect();
    let body = |title: &str, human_id: &str, assignee: &str| {
        json!({
            "title": title,
            "status": "ACTIVE",
            "project_id": PROJECT,
            "human_id": human_id,
            "selection_type": "STATIC",
            "static_selection_filters": [],
            "assignee_id": assignee,
            "label_names": [],
            "environment_ids": [],
        })
    };
    assert_eq!(by_key["EV-1"], body("One", "EV-1", &user_id("grace@example.com")));
    assert_eq!(by_key["EV-2"], body("Two", "EV-2", ASSIGNEE));
    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [(2, Outcome::Created), (3, Outcome::Created)]
    );
    // One GET /users before the first POST, and one POST per row.
    assert_eq!(rig.sandbox.stats().posts_received, 2);
}

/// Another client has just used up the window: the first six GET /users meet the
/// service's rate-limit 500. Each refusal slows the one pace and is tried again, not
/// counted against `--max-retries` (here 1), and every row is still created.
#[test]
fn a_users_lookup_refused_six_times_for_the_rate_limit_still_creates_every_row() {
    let rig = Rig::new(SandboxOptions {
        busy_reads: 6,
        ..SandboxOptions::default()
    });
    rig.write(
        "runs.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},grace@example.com\nTwo,{PROJECT},{ASSIGNEE}\n"),
    );
    let out = rig.import("runs.csv", &["--max-retries", "1"]);
    assert_eq!(out.code, 0, "{out:?}");
    let stats = rig.sandbox.stats();
    assert_eq!(
        (stats.rate_limited, stats.user_lists, stats.created),
        (6, 7, 2),
        "{stats}"
    );
    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [(2, Outcome::Created), (3, Outcome::Created)]
    );
    let grace = rig
        .sandbox
        .runs()
        .into_iter()
        .find(|r| r.body["title"] == "One")
        .expect("row 2 was created");
    assert_eq!(grace.body["assignee_id"], user_id("grace@example.com"));
}

/// A service that refuses every read for its rate limit (another client holding the key
/// for good) is not waited on for ever: after a minute of nothing but refusals the lookup
/// gives up, exit 2, nothing sent. (This test takes that minute.)
#[test]
fn a_users_lookup_that_stays_refused_gives_up_after_a_minute() {
    let rig = Rig::new(SandboxOptions {
        busy_reads: 10_000,
        ..SandboxOptions::default()
    });
    rig.write(
        "runs.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},grace@example.com\n"),
    );
    let out = rig.import("runs.csv", &["--max-retries", "1"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(
            "could not resolve assignee e-mail addresses: GET /users: HTTP 500: rate limit exceeded; the service has refused every request for its rate limit for "
        ),
        "{}",
        out.stderr
    );
    // Far more than --max-retries: rate-limit refusals are not failures.
    let stats = rig.sandbox.stats();
    assert!(stats.rate_limited > 2, "{stats}");
    assert_eq!(stats.posts_received, 0, "{stats}");
    assert_eq!(rig.outcomes("runs.report.csv"), [(2, Outcome::NotSent)]);
}

#[test]
fn an_unknown_email_on_import_is_invalid_and_nothing_is_sent() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!(
            "Title,Project,Assignee\nOne,{PROJECT},ada@example.com\nTwo,{PROJECT},grace@exmaple.com\nThree,{PROJECT},\n"
        ),
    );
    let out = rig.import("runs.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("invalid: row 3,"))
        .unwrap_or_else(|| panic!("a line about row 3: {}", out.stderr));
    assert!(
        line.contains("`grace@exmaple.com`: no user has this e-mail address; did you mean grace@example.com"),
        "{line}"
    );
    rig.assert_nothing_created("an unknown e-mail");

    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [(2, Outcome::NotSent), (3, Outcome::Invalid), (4, Outcome::NotSent)]
    );
    let report = rig.report("runs.report.csv");
    let error = report[1].error.as_deref().unwrap_or_default();
    assert!(error.contains("did you mean grace@example.com"), "{error}");
    // Every row not sent, the valid ones too, so that the file, fixed, finishes the job.
    let failed = rig.read("runs.failed.csv");
    let failed_lines: Vec<&str> = failed.lines().collect();
    assert_eq!(failed_lines.len(), 4, "{failed}");
    assert_eq!(failed_lines[0], "\u{feff}\"Title\",\"Project\",\"Assignee\",\"error\"");
    assert!(
        failed_lines[1].starts_with(&format!("One,{PROJECT},ada@example.com,")),
        "{failed}"
    );
    assert!(
        failed_lines[2].starts_with(&format!("Two,{PROJECT},grace@exmaple.com,")),
        "{failed}"
    );
    assert!(failed_lines[3].starts_with(&format!("Three,{PROJECT},,")), "{failed}");
    assert!(out.stderr.contains("failed rows: runs.failed.csv"), "{}", out.stderr);
}

/// An import takes a date column's order from its first proving value, and checks it
/// against every row before anything is sent: a later value proving the other order makes
/// the file be read again, and the column's rows are invalid, each told once.
#[test]
fn an_import_whose_date_column_proves_both_orders_late_sends_nothing() {
    let rig = Rig::new(SandboxOptions::default());
    let mut text =
        format!("Title,Project,Start\nA,{PROJECT},2024-03-17\nB,{PROJECT},03/04/2024\nC,{PROJECT},25/04/2024\n");
    for n in 0..300 {
        text.push_str(&format!("R{n},{PROJECT},2024-05-{:02}\n", n % 28 + 1));
    }
    text.push_str(&format!("Z,{PROJECT},04/26/2024\n"));
    rig.write("runs.csv", text);
    let out = rig.import("runs.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    rig.assert_nothing_created("a column of both orders");
    let row_lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("invalid: row ")).collect();
    let rows: Vec<&str> = row_lines
        .iter()
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    assert_eq!(
        rows,
        ["invalid: row 3", "invalid: row 4", "invalid: row 305"],
        "{}",
        out.stderr
    );
    assert!(
        row_lines.iter().all(|l| l.contains("mixes day-first and month-first")),
        "{row_lines:#?}"
    );
    let outcomes = rig.outcomes("runs.report.csv");
    assert_eq!(outcomes.len(), 304);
    let invalid: Vec<usize> = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Invalid)
        .map(|(row, _)| *row)
        .collect();
    assert_eq!(invalid, [3, 4, 305]);
}

#[test]
fn an_unknown_email_is_reported_in_the_same_run_as_other_invalid_rows() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},grace@exmaple.com\nTwo,{PROJECT},ada@example.com.\n"),
    );
    let out = rig.import("runs.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    for row in [
        "invalid: row 2, column `Assignee`: `grace@exmaple.com`: no user",
        "invalid: row 3,",
    ] {
        assert!(out.stderr.lines().any(|l| l.starts_with(row)), "{row}\n{}", out.stderr);
    }
    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [(2, Outcome::Invalid), (3, Outcome::Invalid)]
    );
    rig.assert_nothing_created("invalid rows");

    // Without a key the service cannot be asked; that is said, and the run is as before.
    let url = rig.sandbox.base_url();
    let out = run(command_in(
        rig.dir.path(),
        &["import", "runs.csv", "--base-url", &url, "--no-state", "--no-lookup"],
    ));
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("note: assignees and test case human ids were not checked against the service: no API key"),
        "{}",
        out.stderr
    );
    assert_eq!(
        rig.outcomes("runs.report.csv"),
        [(2, Outcome::NotSent), (3, Outcome::Invalid)]
    );
}

#[test]
fn an_unknown_email_on_import_names_the_files_header() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!("Title,Project,Owner\nOne,{PROJECT},ada@example.com\nTwo,{PROJECT},grace@exmaple.com\n"),
    );
    let out = rig.import("runs.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.lines().any(|l| l.starts_with(
            "invalid: row 3, column `Owner`: `grace@exmaple.com`: no user has this e-mail address; did you mean grace@example.com"
        )),
        "{}",
        out.stderr
    );
    let report = rig.report("runs.report.csv");
    let error = report[1].error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("Owner: "),
        "like every other invalid row's error: {error}"
    );
    rig.assert_nothing_created("an unknown e-mail");
}

/// The `invalid:` lines, each cut to its `invalid: row N` part.
fn invalid_rows(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("invalid: row "))
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect()
}

/// Rows invalid offline (read from the file) and rows whose e-mail no user has (known only
/// once the service is asked) are said in one list, in row order, as in the report and
/// the failed-rows file; the summary counts both, with or without --skip-invalid.
#[test]
fn invalid_lines_for_unknown_emails_take_their_places_in_row_order() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!(
            "Title,Project,Assignee\nOne,{PROJECT},ada@exmaple.com\n,{PROJECT},\nThree,{PROJECT},ada@example.com\nFour,{PROJECT},bob@example.com\nFive,project-5,\n"
        ),
    );
    let want = ["invalid: row 2", "invalid: row 3", "invalid: row 5", "invalid: row 6"];
    let out = rig.import("runs.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(invalid_rows(&out.stderr), want, "{}", out.stderr);
    assert!(
        out.stderr.lines().any(|l| l
            == "4 of 5 rows are invalid: nothing was sent. Fix them (see the report), or pass --skip-invalid to send the valid rows."),
        "{}",
        out.stderr
    );
    let in_order = [
        (2, Outcome::Invalid),
        (3, Outcome::Invalid),
        (4, Outcome::NotSent),
        (5, Outcome::Invalid),
        (6, Outcome::Invalid),
    ];
    assert_eq!(rig.outcomes("runs.report.csv"), in_order);
    let failed_titles = || -> Vec<String> {
        rig.read("runs.failed.csv")
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap_or_default().to_string())
            .collect()
    };
    // The row not sent is there too: it is not done either.
    assert_eq!(failed_titles(), ["One", "", "Three", "Four", "Five"]);
    rig.assert_nothing_created("invalid rows");

    // With --skip-invalid the same lines, then the valid row is sent.
    let out = rig.import("runs.csv", &["--skip-invalid"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(invalid_rows(&out.stderr), want, "{}", out.stderr);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("5 rows: 1 created, 4 invalid")),
        "{}",
        out.stderr
    );
    let mut sent = in_order;
    sent[2] = (4, Outcome::Created);
    assert_eq!(rig.outcomes("runs.report.csv"), sent);
    assert_eq!(failed_titles(), ["One", "", "Four", "Five"]);

    // Without an e-mail to check, the lines are said as soon as the file is read: still
    // before the closing line.
    rig.write(
        "plain.csv",
        format!("Title,Project\nOne,{PROJECT}\n,{PROJECT}\nThree,project-3\n"),
    );
    let out = rig.import("plain.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        invalid_rows(&lines[..2].join("\n")),
        ["invalid: row 3", "invalid: row 4"]
    );
    assert!(
        lines[2].starts_with("2 of 3 rows are invalid: nothing was sent."),
        "{}",
        out.stderr
    );

    // When the unknown addresses leave no valid row, the summary says so.
    rig.write(
        "none.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},ada@exmaple.com\n,{PROJECT},\n"),
    );
    let out = rig.import("none.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(invalid_rows(&out.stderr), ["invalid: row 2", "invalid: row 3"]);
    assert!(
        out.stderr
            .lines()
            .any(|l| l == "all 2 rows are invalid: nothing was sent. Fix them (see the report)."),
        "{}",
        out.stderr
    );
}

/// Past the first 50 lines the rest are counted: the 50 are the first rows', so an unknown
/// e-mail on row 2 is among them and one on the last row is counted with the others.
#[test]
fn the_first_fifty_invalid_lines_are_the_first_rows_whatever_was_found_first() {
    let rig = Rig::new(SandboxOptions::default());
    let mut text = format!("Title,Project,Assignee\nOne,{PROJECT},ada@exmaple.com\n");
    for _ in 3..=62 {
        text.push_str(&format!(",{PROJECT},\n"));
    }
    text.push_str(&format!("Last,{PROJECT},grace@exmaple.com\n"));
    rig.write("runs.csv", text);
    let out = rig.import("runs.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    let want: Vec<String> = (2..=51).map(|row| format!("invalid: row {row}")).collect();
    assert_eq!(invalid_rows(&out.stderr), want, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("… and "))
        .unwrap_or_else(|| panic!("a count of the rest: {}", out.stderr));
    assert_eq!(lines[at], "… and 12 more problems (every one is in the report):");
    assert_eq!(lines[at + 1].trim(), "11 × missing value in column `Title`");
    assert_eq!(lines[at + 2].trim(), "1 × unknown assignee in column `Assignee`");
    assert_eq!(
        lines[at + 3],
        "all 62 rows are invalid: nothing was sent. Fix them (see the report)."
    );
}

#[test]
fn completions_generate_for_each_shell() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(command_in(dir.path(), &["completions", shell]));
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert_eq!(out.stderr, "", "{shell}");
        for word in ["testsigma-import", "import", "check", "template", "--dry-run"] {
            assert!(out.stdout.contains(word), "{shell} completions mention {word}");
        }
    }
    let out = run(command_in(dir.path(), &["completions", "tcsh"]));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("bash") && out.stderr.contains("powershell"),
        "{}",
        out.stderr
    );
}

#[test]
fn every_subcommand_help_shows_examples() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for sub in ["import", "check", "sandbox", "template", "completions"] {
        for args in [vec![sub, "--help"], vec!["help", sub]] {
            let out = run(command_in(dir.path(), &args));
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            let examples = out
                .stdout
                .split_once("Examples:\n")
                .map(|(_, rest)| rest)
                .unwrap_or_else(|| panic!("{args:?} shows examples:\n{}", out.stdout));
            let first = examples.lines().next().unwrap_or_default();
            assert!(
                first.starts_with(&format!("  testsigma-import {sub} "))
                    || first.contains(&format!(" testsigma-import {sub} ")),
                "{args:?}: {first}"
            );
        }
    }
}

/// The lines of stderr that are the end-of-run summary, not logging.
fn is_summary_line(line: &str) -> bool {
    line.starts_with("report: ")
        || line.starts_with("failed rows: ")
        || line.starts_with("  failed, ")
        || line.split_once(": ").is_some_and(|(head, _)| {
            head.strip_suffix(" rows")
                .or_else(|| head.strip_suffix(" row"))
                .is_some_and(|n| n.parse::<usize>().is_ok())
        })
}

#[test]
fn verbose_logs_one_line_per_answer() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows(3));
    let out = rig.import("runs.csv", &["-v"]);
    assert_eq!(out.code, 0, "{out:?}");
    let answers: Vec<&str> = out.stderr.lines().filter(|l| l.contains(" answer ")).collect();
    assert_eq!(answers.len(), 3, "{}", out.stderr);
    for row in 2..=4 {
        let for_row: Vec<&&str> = answers
            .iter()
            .filter(|l| l.contains(&format!(" row={row} attempt=1 ")))
            .collect();
        assert_eq!(for_row.len(), 1, "row {row}: {}", out.stderr);
        assert!(for_row[0].contains(" INFO "), "{}", for_row[0]);
        assert!(for_row[0].contains("answer=created 200"), "{}", for_row[0]);
    }
    assert!(!out.stderr.contains(KEY));

    // Without -v, no log lines at all.
    let out = rig.import("runs.csv", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.lines().all(is_summary_line), "{}", out.stderr);
}

#[test]
fn json_logs_are_json_lines_with_a_level() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows(3));
    let out = rig.import("runs.csv", &["--log-format", "json", "-v"]);
    assert_eq!(out.code, 0, "{out:?}");
    let mut answered_rows = Vec::new();
    let mut messages = Vec::new();
    // Every line, the summary included, is JSON: a log shipper never sees a mixed stream.
    for line in out.stderr.lines() {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line is JSON ({e}): {line}"));
        messages.push(value["fields"]["message"].as_str().unwrap_or_default().to_string());
        let level = value["level"].as_str().unwrap_or_else(|| panic!("a level: {line}"));
        assert!(["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level), "{line}");
        if value["fields"]["message"] == "answer" {
            assert_eq!(level, "INFO", "{line}");
            answered_rows.push(value["fields"]["row"].as_u64().expect("the answer names its row"));
        }
    }
    answered_rows.sort_unstable();
    assert_eq!(answered_rows, [2, 3, 4], "{}", out.stderr);
    assert!(
        messages.iter().any(|m| m == "report: runs.report.csv"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(KEY));
}

#[test]
fn no_color_output_has_no_escape_bytes() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows(3));
    rig.write("bad.csv", format!("Title,Status,Project\n,OPEN,{PROJECT}\n"));
    let url = rig.sandbox.base_url();
    let runs: [&[&str]; 6] = [
        &[
            "-v",
            "import",
            "runs.csv",
            "--base-url",
            &url,
            "--no-state",
            "--no-lookup",
        ],
        &["-vv", "check", "runs.csv", "--base-url", &url],
        &["import", "bad.csv", "--dry-run"],
        &["import", "--help"],
        &["import", "runs.csv", "--no-such-flag"],
        &["template", "runs.csv"],
    ];
    for args in runs {
        let mut cmd = rig.command(args);
        cmd.env("NO_COLOR", "1");
        let out = run(cmd);
        assert!(!out.stdout.contains('\x1b'), "{args:?}: {:?}", out.stdout);
        assert!(!out.stderr.contains('\x1b'), "{args:?}: {:?}", out.stderr);
        assert!(
            !out.stderr.is_empty() || !out.stdout.is_empty(),
            "{args:?} said something"
        );
    }
}

#[test]

fn json_logs_carry_warnings_as_json_too() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", format!("Title,Project,Colour\nOne,{PROJECT},red\n"));
    let out = rig.import("runs.csv", &["--log-format", "json", "-v"]);
    assert_eq!(out.code, 0, "{out:?}");
    let mut messages = Vec::new();
    // Every line, the summary included, is JSON: a log shipper never sees a mixed stream.
    for line in out.stderr.lines() {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line is JSON ({e}): {line}"));
        messages.push(value["fields"]["message"].as_str().unwrap_or_default().to_string());
        assert!(value["level"].is_string(), "{line}");
    }
    assert!(
        out.stderr.contains("Colour"),
        "the warning is still there: {}",
        out.stderr
    );
}

/// `args` run on a pseudo-terminal through util-linux `script`, without CI, with `env`;
/// stdout and stderr arrive together, as on a screen. `None` where there is no such `script`.
fn on_a_terminal(rig: &Rig, env: &[(&str, &str)], args: &[&str]) -> Option<Output> {
    let version = std::process::Command::new("script").arg("--version").output();
    if !version.is_ok_and(|v| String::from_utf8_lossy(&v.stdout).contains("util-linux")) {
        eprintln!("skipped: no util-linux `script` to provide a terminal");
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(BIN).chain(args.iter().copied()).map(quote).collect();
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line.join(" "), "/dev/null"])
        .current_dir(rig.dir.path())
        .env_remove("CI")
        .env_remove("NO_COLOR")
        .env_remove("TESTSIGMA_BASE_URL")
        .env_remove("TESTSIGMA_PROJECT_ID")
        .env_remove("RUST_LOG")
        .env("TERM", "xterm-256color")
        .env("TESTSIGMA_API_KEY", KEY)
        .stdin(Stdio::null());
    for (name, value) in env {
        cmd.env(name, value);
    }
    Some(run(cmd))
}

/// Whether `text` holds an ANSI colour or style sequence (`ESC [ … m`).
fn has_sgr(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .is_some_and(|end| rest[end..].starts_with('m'))
    })
}

#[test]
fn on_a_terminal_no_color_means_no_colours() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows(10));
    let url = rig.sandbox.base_url();
    let runs: [&[&str]; 2] = [
        &[
            "-v",
            "import",
            "runs.csv",
            "--base-url",
            &url,
            "--no-state",
            "--no-lookup",
            "--rate",
            "50",
        ],
        &["import", "--help"],
    ];
    for args in runs {
        let Some(plain) = on_a_terminal(&rig, &[("NO_COLOR", "1")], args) else {
            return;
        };
        assert_eq!(plain.code, 0, "{args:?}: {plain:?}");
        assert!(!has_sgr(&plain.stdout), "{args:?}: {:?}", plain.stdout);
        // Without NO_COLOR the same run is coloured, so the check above means something.
        let Some(coloured) = on_a_terminal(&rig, &[], args) else {
            return;
        };
        assert_eq!(coloured.code, 0, "{args:?}: {coloured:?}");
        assert!(has_sgr(&coloured.stdout), "{args:?}: {:?}", coloured.stdout);
    }
    assert_eq!(rig.sandbox.runs().len(), 20);
}

/// The bar's rate has one decimal (`7.8/s`), as the summary's has, not indicatif's four.
#[test]
fn on_a_terminal_the_bar_shows_the_rate_with_one_decimal() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows(10));
    let url = rig.sandbox.base_url();
    let args = [
        "import",
        "runs.csv",
        "--base-url",
        &url,
        "--no-state",
        "--no-lookup",
        "--rate",
        "5",
    ];
    let Some(out) = on_a_terminal(&rig, &[("NO_COLOR", "1")], &args) else {
        return;
    };
    assert_eq!(out.code, 0, "{out:?}");
    let rates: Vec<&str> = out
        .stdout
        .split(" rows · ")
        .skip(1)
        .filter_map(|rest| rest.split_once("/s").map(|(rate, _)| rate))
        .collect();
    assert!(!rates.is_empty(), "the bar was drawn: {:?}", out.stdout);
    for rate in rates {
        let decimals = rate.split_once('.').map_or(0, |(_, d)| d.len());
        assert_eq!(decimals, 1, "{rate:?} in {:?}", out.stdout);
    }
}

#[test]

fn on_a_terminal_log_lines_do_not_break_the_progress_bar() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows(10));
    let url = rig.sandbox.base_url();
    let args = [
        "-v",
        "import",
        "runs.csv",
        "--base-url",
        &url,
        "--no-state",
        "--no-lookup",
        "--rate",
        "20",
    ];
    let Some(out) = on_a_terminal(&rig, &[("NO_COLOR", "1")], &args) else {
        return;
    };
    assert_eq!(out.code, 0, "{out:?}");
    // With log lines on stderr the bar gives way to the periodic line: no bar to break.
    assert!(
        !out.stdout.contains("10/10 rows"),
        "no bar is drawn under -v: {:?}",
        out.stdout
    );
    // Each log line starts a line of its own.
    let mut answers = 0;
    for segment in out.stdout.split(['\r', '\n']) {
        let segment = segment.trim_start_matches("\x1b[2K");
        if segment.contains(" INFO ") {
            answers += 1;
            assert!(
                segment.starts_with(|c: char| c.is_ascii_digit()),
                "a log line inside the bar: {segment:?}"
            );
        }
    }
    assert_eq!(answers, 10, "{:?}", out.stdout);
}

#[test]
fn the_summary_groups_failures_by_reason() {
    let rig = Rig::new(SandboxOptions {
        fail_rate: 1.0,
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows(5));
    let out = rig.import("runs.csv", &["--max-retries", "0"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = rig.report("runs.report.csv");
    assert_eq!(report.len(), 5);
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for row in &report {
        assert_eq!(row.outcome, Outcome::Failed, "{row:?}");
        assert_eq!(row.attempts, 1, "{row:?}");
        *reasons.entry(row.error.clone().unwrap_or_default()).or_default() += 1;
    }
    // Five rows refused alike: one reason, never five lines.
    assert_eq!(
        reasons.keys().collect::<Vec<_>>(),
        ["HTTP 503: Service Unavailable (gave up after 0 retries, --max-retries)"]
    );
    let grouped: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("  failed, ")).collect();
    assert_eq!(grouped.len(), reasons.len(), "{}", out.stderr);
    for (reason, n) in &reasons {
        let expected = format!("  failed, {n} row(s): {reason}");
        assert!(grouped.contains(&expected.as_str()), "{expected}\n{}", out.stderr);
    }
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines[0].starts_with("5 rows: 5 failed · 5 requests in "),
        "{}",
        out.stderr
    );
    assert!(lines.contains(&"report: runs.report.csv"), "{}", out.stderr);
    assert!(
        lines.contains(&"failed rows: runs.failed.csv (5 rows: 5 failed): the service could not be reached or did not answer: try again later (rows whose runs may exist are looked up first); then import that file, or run the same command again"),
        "{}",
        out.stderr
    );
    assert_eq!(
        lines.len(),
        1 + grouped.len() + 2,
        "nothing else, no line per row: {}",
        out.stderr
    );
    assert_eq!(rig.read("runs.failed.csv").lines().count(), 6);
    assert!(rig.sandbox.runs().is_empty());
}

#[test]
fn five_rows_refused_alike_make_one_summary_line() {
    // A service that refuses every create alike (a missing project is found before any
    // row is sent, so it cannot be the example).
    let rig = Rig::new(SandboxOptions {
        fail_rate: 1.0,
        ..SandboxOptions::default()
    });
    rig.write("runs.csv", generated_rows(5));
    let out = rig.import("runs.csv", &["--max-retries", "0"]);
    assert_eq!(out.code, 1, "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stderr);
    assert!(
        lines[0].starts_with("5 rows: 5 failed · 5 requests in "),
        "{}",
        out.stderr
    );
    assert_eq!(
        lines[1],
        "  failed, 5 row(s): HTTP 503: Service Unavailable (gave up after 0 retries, --max-retries)"
    );
    assert_eq!(lines[2], "report: runs.report.csv");
    assert_eq!(
        lines[3],
        "failed rows: runs.failed.csv (5 rows: 5 failed): the service could not be reached or did not answer: try again later (rows whose runs may exist are looked up first); then import that file, or run the same command again"
    );
    assert_eq!(rig.sandbox.stats().posts_received, 5);
    assert!(rig.sandbox.runs().is_empty());
}

/// The `progress:` lines of a run, checked for their shape.
fn progress_lines(stderr: &str, total: usize) -> Vec<&str> {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("progress")).collect();
    for line in &lines {
        let done = line
            .strip_prefix("progress: ")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(done, _)| done.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("progress: DONE/TOTAL …: {line}"));
        assert!(done < total, "{line}");
        assert!(line.contains(&format!("/{total} rows, ")), "{line}");
    }
    lines
}

#[test]
fn progress_without_a_terminal_is_a_line_per_ten_seconds() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows(25));
    let started = Instant::now();
    // At 2 requests/s, 25 rows take at least 12 s, so the 10-second mark passes mid-run.
    let out = rig.import("runs.csv", &["--rate", "2"]);
    let elapsed = started.elapsed().as_secs();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(rig.sandbox.runs().len(), 25);
    let lines = progress_lines(&out.stderr, 25);
    assert!(!lines.is_empty(), "a run past 10 s says how it goes: {}", out.stderr);
    assert!(
        lines.len() as u64 <= elapsed / 10 + 1,
        "one line per 10 s at most ({elapsed} s): {}",
        out.stderr
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("25 rows: 25 created · 25 requests in ")),
        "{}",
        out.stderr
    );
}

#[test]
fn quiet_prints_no_progress() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", generated_rows(25));
    let out = rig.import("runs.csv", &["--rate", "2", "--quiet"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(rig.sandbox.runs().len(), 25);
    assert_eq!(progress_lines(&out.stderr, 25), Vec::<&str>::new(), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "only the summary: {}", out.stderr);
    assert!(
        lines[0].starts_with("25 rows: 25 created · 25 requests in "),
        "{}",
        out.stderr
    );
    assert_eq!(lines[1], "report: runs.report.csv");
}

/// Validation failed and nothing was sent: exit 3, with or without --skip-invalid, when no
/// row is valid (the flag sends the valid rows, and there are none).
#[test]
fn no_valid_row_is_exit_3_even_with_skip_invalid() {
    let rig = Rig::new(SandboxOptions::default());
    // Invalid offline, or through an e-mail address no user has (found only online).
    rig.write(
        "runs.csv",
        format!("Title,Project,Status\nOne,{PROJECT},OPEN\nTwo,{PROJECT},DONE\n"),
    );
    rig.write(
        "emails.csv",
        format!("Title,Project,Assignee\nOne,{PROJECT},nobody@example.com\nTwo,{PROJECT},nobody@example.org\n"),
    );
    for (file, extra) in [
        ("runs.csv", &[][..]),
        ("runs.csv", &["--skip-invalid"][..]),
        ("emails.csv", &["--skip-invalid"][..]),
    ] {
        let out = rig.import(file, extra);
        assert_eq!(out.code, 3, "{file} {extra:?}: {out:?}");
        assert!(
            out.stderr.contains("all 2 rows are invalid: nothing was sent"),
            "{}",
            out.stderr
        );
        let report = format!("{}.report.csv", file.trim_end_matches(".csv"));
        assert_eq!(rig.outcomes(&report), [(2, Outcome::Invalid), (3, Outcome::Invalid)]);
    }
    rig.assert_nothing_created("no valid row");
}

/// An import stopped by invalid rows writes a failed-rows file with every row not sent, the
/// valid ones too: the original headers, then the error column, so it can be fixed and
/// imported (here from stdin too, which cannot be read a second time for its headers).
#[test]
fn an_import_stopped_by_invalid_rows_writes_a_whole_failed_rows_file() {
    let rig = Rig::new(SandboxOptions::default());
    let csv = format!("Title,Project,Status\nok,{PROJECT},ACTIVE\nbad,{PROJECT},OPEN\n");
    rig.write("c.csv", &csv);
    let out = rig.import("c.csv", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    let failed = rig.read("c.failed.csv");
    assert_eq!(
        failed,
        format!(
            "\u{feff}\"Title\",\"Project\",\"Status\",\"error\"\nok,{PROJECT},ACTIVE,\"not sent: 1 row(s) of the file are invalid, so nothing was sent (fix them, or pass --skip-invalid to send the valid rows)\"\nbad,{PROJECT},OPEN,Status: `OPEN`: status must be ACTIVE or CLOSED (map other words in [values.status])\n"
        )
    );

    let url = rig.sandbox.base_url();
    let mut cmd = rig.command(&[
        "import",
        "-",
        "--base-url",
        &url,
        "--no-state",
        "--no-lookup",
        "--report",
        "stdin.csv",
    ]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("its stdin");
        stdin.write_all(csv.as_bytes()).expect("the file on stdin");
    }
    let out = child.wait_with_output().expect("the binary ends");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rig.read("stdin.failed.csv"), failed);
    rig.assert_nothing_created("invalid rows");
}

/// `import … 2>&1 | head -1`: once the reader of stderr is gone, its lines are lost, not
/// the run; every row is still sent and reported, and the exit code is the run's.
#[test]
fn a_closed_stderr_does_not_stop_the_run() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write("runs.csv", crate::common::generated_rows("pipe", 0..5, true));
    let url = rig.sandbox.base_url();
    // Plain lines, then the tracing logs too (`-vv`), which write on every request.
    for (round, verbose) in [(1, None), (2, Some("-vv"))] {
        let mut args = Vec::from_iter(verbose);
        args.extend([
            "import",
            "runs.csv",
            "--base-url",
            &url,
            "--no-state",
            "--no-lookup",
            "--rate",
            "50",
        ]);
        let mut child = rig
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        drop(child.stderr.take());
        let status = child.wait().expect("the binary ends");
        assert_eq!(status.code(), Some(0), "{verbose:?}");
        assert_eq!(count(&rig.report("runs.report.csv"), Outcome::Created), 5);
        assert_eq!(rig.sandbox.runs().len(), 5 * round, "{verbose:?}");
    }
}

/// `--report /dev/stdout >> run.log`: the report is appended to the log, not written over
/// it, no failed-rows file is made in /dev, and `--plan -` cannot share standard output.
#[test]
fn a_report_to_standard_output_appends_and_is_alone_there() {
    let rig = Rig::new(SandboxOptions::default());
    rig.write(
        "runs.csv",
        format!("Title,Project,Status\nOne,{PROJECT},ACTIVE\nTwo,{PROJECT},OPEN\n"),
    );
    rig.write("run.log", "earlier\n");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(rig.path("run.log"))
        .expect("the log");
    let url = rig.sandbox.base_url();
    let out = rig
        .command(&[
            "import",
            "runs.csv",
            "--base-url",
            &url,
            "--no-state",
            "--no-lookup",
            "--report",
            "/dev/stdout",
        ])
        .stdout(log)
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let text = rig.read("run.log");
    assert!(text.starts_with("earlier\nrow,outcome,"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(!Path::new("/dev/stdout.failed.csv").exists());

    let out = rig.import("runs.csv", &["--report", "/dev/stdout", "--plan", "-"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("where `--plan -` writes the plan"),
        "{}",
        out.stderr
    );
}
